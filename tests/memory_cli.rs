//! Memory through the binary, including the faults a user can cause: kill -9 during
//! ingestion, a damaged full-text index, a huge file, bad queries over `--batch`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_openclaw-rs");

fn cmd(home: &Path) -> Command {
    let mut c = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("OPENCLAW_RS_") {
            c.env_remove(key);
        }
    }
    c.env_remove("RUST_LOG");
    c.env("RUST_BACKTRACE", "0");
    c.arg("--home").arg(home);
    c
}

fn run(home: &Path, args: &[&str]) -> Output {
    cmd(home).args(args).output().expect("run")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn write_notes(home: &Path, files: usize, sections: usize) -> usize {
    let dir = home.join("workspace/memory");
    std::fs::create_dir_all(&dir).unwrap();
    for f in 0..files {
        let mut text = String::new();
        for s in 0..sections {
            text.push_str(&format!(
                "## Section {s}\nnote {f}-{s}: the quartermaster counted {s} barrels of \
                 provisions in hold {f} before the voyage.\n\n"
            ));
        }
        std::fs::write(dir.join(format!("n{f:04}.md")), text).unwrap();
    }
    files * sections
}

#[test]
fn add_search_get_and_delete_over_batch() {
    let home = tempfile::tempdir().unwrap();
    let input = r#"{"id":1,"method":"memory.add","params":{"text":"Ada Lovelace wrote the first program for the Analytical Engine.","tags":["history"]}}
{"id":2,"method":"memory.search","params":{"query":"first program","limit":5}}
{"id":3,"method":"memory.search","params":{"query":"   "}}
{"id":4,"method":"memory.get","params":{"chunkId":999}}
{"id":5,"method":"memory.graph.node","params":{"node":"entity:ada lovelace"}}
{"id":6,"method":"memory.delete","params":{"chunkId":1}}
{"id":7,"method":"memory.search","params":{"query":"first program"}}
"#;
    let mut child = cmd(home.path())
        .arg("--batch")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let frames: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(frames.len(), 7);
    assert_eq!(frames[0]["payload"]["chunkIds"], serde_json::json!([1]));
    let hit = &frames[1]["payload"]["hits"][0];
    assert_eq!(hit["chunkId"], 1);
    assert!(
        hit["snippet"]
            .as_str()
            .unwrap()
            .contains("«first» «program»")
    );
    assert!(hit["text"]["rank"].is_number() && hit["vector"]["rank"].is_number());
    assert_eq!(frames[2]["error"]["code"], "INVALID_REQUEST");
    assert_eq!(frames[3]["error"]["code"], "NOT_FOUND");
    assert_eq!(frames[4]["payload"]["chunks"][0]["chunkId"], 1);
    assert_eq!(frames[5]["payload"]["deletedChunks"], 1);
    assert_eq!(frames[6]["payload"]["hits"], serde_json::json!([]));
    // Some requests failed: exit 1, and stdout was JSON only.
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_100_kb_query_is_answered_and_shortened() {
    let home = tempfile::tempdir().unwrap();
    run(home.path(), &["memory", "add", "needle in the haystack"]);
    let query: String = (0..20_000).map(|i| format!("w{i} ")).collect::<String>() + "needle";
    assert!(query.len() > 100_000);
    let out = run(home.path(), &["memory", "search", &query, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result = json(&out);
    assert!(result["notice"].as_str().unwrap().contains("shortened"));
}

#[test]
fn kill_9_during_ingestion_loses_no_committed_chunk() {
    let home = tempfile::tempdir().unwrap();
    let total = write_notes(home.path(), 400, 25);
    let mut child = cmd(home.path())
        .args(["memory", "index"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until some chunks are committed, then kill without warning.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = 0;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        let status = json(&run(home.path(), &["memory", "status", "--json"]));
        seen = status["chunks"].as_u64().unwrap_or(0);
        if seen >= 500 {
            break;
        }
    }
    let finished_early = child.try_wait().unwrap().is_some();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(seen > 0, "no chunk was ever committed");

    // It opens, checks itself, and every chunk seen before the kill is still there.
    let status = json(&run(home.path(), &["memory", "status", "--json"]));
    assert!(status["chunks"].as_u64().unwrap() >= seen, "{status}");
    assert_eq!(status["consistency"]["ok"], true, "{status}");
    assert_eq!(status["chunks"], status["textEntries"], "{status}");
    assert_eq!(status["chunks"], status["vectors"], "{status}");
    let search = json(&run(
        home.path(),
        &["memory", "search", "quartermaster barrels", "--json"],
    ));
    assert!(!search["hits"].as_array().unwrap().is_empty());

    // Indexing again finishes the job: every chunk once.
    let out = run(home.path(), &["memory", "index", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = json(&run(home.path(), &["memory", "status", "--json"]));
    assert_eq!(
        status["chunks"].as_u64().unwrap() as usize,
        total,
        "{status}"
    );
    assert_eq!(status["textEntries"].as_u64().unwrap() as usize, total);
    assert_eq!(status["vectors"].as_u64().unwrap() as usize, total);
    if finished_early {
        eprintln!("note: the index finished before the kill; the kill tested nothing mid-way");
    }
}

#[test]
fn a_damaged_text_index_is_reported_and_force_rebuilds_it() {
    let home = tempfile::tempdir().unwrap();
    write_notes(home.path(), 2, 3);
    assert!(run(home.path(), &["memory", "index"]).status.success());
    assert!(
        run(home.path(), &["memory", "add", "a note kept in LMDB"])
            .status
            .success()
    );
    std::fs::write(home.path().join("memory/text/meta.json"), b"\0garbage").unwrap();

    let out = run(home.path(), &["memory", "search", "quartermaster"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("full-text index") && stderr.contains("memory index --force"),
        "{stderr}"
    );

    let out = run(home.path(), &["memory", "index", "--force", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out)["forced"], true);
    let status = json(&run(home.path(), &["memory", "status", "--json"]));
    assert_eq!(status["chunks"], 7);
    assert_eq!(status["textEntries"], 7);
    let hits = json(&run(
        home.path(),
        &["memory", "search", "kept in LMDB", "--json"],
    ));
    assert_eq!(hits["hits"][0]["source"], "note");
}

#[test]
fn a_50_mb_file_is_indexed_in_bounded_memory() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("workspace/memory");
    std::fs::create_dir_all(&dir).unwrap();
    let mut file = std::io::BufWriter::new(std::fs::File::create(dir.join("huge.md")).unwrap());
    let paragraph = "The archivist catalogued another crate of letters from the harbour office, \
                     each one stamped and dated, and noted the ship names in the ledger. ";
    let mut written = 0;
    let mut n = 0;
    while written < 50 * 1024 * 1024 {
        let line = format!("{n} {paragraph}{paragraph}\n");
        file.write_all(line.as_bytes()).unwrap();
        written += line.len();
        n += 1;
    }
    file.flush().unwrap();
    drop(file);
    // Reaped with wait4 below, which also gives the peak RSS.
    #[allow(clippy::zombie_processes)]
    let child = cmd(home.path())
        .args(["memory", "index", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.unwrap(), &mut stdout).unwrap();
    let mut status = 0;
    // SAFETY: wait4 on our own child; the kernel fills rusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut usage) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{stdout}"
    );
    let result: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["indexedFiles"], 1);
    assert!(result["addedChunks"].as_u64().unwrap() > 10_000, "{result}");
    // The file never sits in memory whole, nor do its chunks.
    let peak_mib = usage.ru_maxrss as f64 / 1024.0;
    assert!(
        peak_mib < 160.0,
        "peak RSS {peak_mib:.0} MiB for a 50 MiB file"
    );
}
