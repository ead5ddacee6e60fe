//! Memory through the binary, including the faults a user can cause: kill -9 during
//! ingestion, a damaged full-text index, a huge file, bad queries over `--batch`.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::json;
use serde_json::Value;

fn cmd(home: &Path) -> Command {
    let mut c = common::bin(home);
    c.env("RUST_BACKTRACE", "0");
    c
}

/// The binary with the `hash` embedder, whatever the build's profile prefers: these tests
/// are about storage, crashes and bounds, and the edge profile's MiniLM would make a 50 MB
/// file take many minutes in a debug build. The embedder tests use [`run_configured`].
fn run(home: &Path, args: &[&str]) -> Output {
    hash(cmd(home)).args(args).output().expect("run")
}

fn hash(mut command: Command) -> Command {
    command.env("OPENCLAW_RS_MEMORY__EMBEDDER", "hash");
    command
}

/// The binary with the embedder `config.toml` names.
fn run_configured(home: &Path, args: &[&str]) -> Output {
    cmd(home).args(args).output().expect("run")
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
    let mut child = hash(cmd(home.path()))
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
    let query: String = (0..17_000).map(|i| format!("w{i} ")).collect::<String>() + "needle";
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
    let mut child = hash(cmd(home.path()))
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

/// A store whose arroy forest holds a first set of notes, and many more notes written
/// since: the next `memory index` has a build of some seconds to do. Returns the home, the
/// chunks in the forest, the chunks there will be, and the forest's `lastBuild`.
fn forest_and_more_notes() -> (tempfile::TempDir, usize, usize, Value) {
    let home =
        common::home_with_config("[memory]\nembedder = \"hash\"\nvector_index = \"arroy\"\n");
    let first = write_notes(home.path(), 10, 10);
    let out = run(home.path(), &["memory", "index", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = json(&run(home.path(), &["memory", "status", "--json"]));
    assert_eq!(status["vectorIndex"]["kind"], "arroy", "{status}");
    assert_eq!(status["vectorIndex"]["indexed"], first, "{status}");
    let built = status["vectorIndex"]["lastBuild"].clone();
    assert!(built["at"].is_number(), "{status}");
    let total = write_notes(home.path(), 120, 25);
    (home, first, total, built)
}

/// Start `memory index` with `-v` and return once its vector index build has begun, with
/// the rest of its stderr.
fn index_until_building(
    home: &Path,
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStderr>,
) {
    use std::io::BufRead;
    let mut child = hash(cmd(home))
        .args(["-v", "memory", "index"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut building = false;
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap_or(0) > 0 {
        if line.contains("building the vector index") {
            building = true;
            break;
        }
        line.clear();
    }
    assert!(building, "the build never started");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the build was not caught running"
    );
    (child, stderr)
}

/// After a build that did not finish: the previous forest answers, the new chunks wait as
/// pending and are still found by the scan.
fn previous_forest_answers(home: &Path, first: usize, total: usize, built: &Value) -> Value {
    let status = json(&run(home, &["memory", "status", "--json"]));
    let index = &status["vectorIndex"];
    assert_eq!(index["indexed"], first, "{status}");
    assert_eq!(&index["lastBuild"], built, "{status}");
    assert_eq!(status["vectors"], total, "{status}");
    assert!(
        index["pending"].as_u64().unwrap() >= (total - first) as u64,
        "{status}"
    );
    let search = json(&run(
        home,
        &[
            "memory",
            "search",
            "note 117-3 quartermaster hold 117",
            "--json",
        ],
    ));
    assert_eq!(search["mode"], "hybrid", "{search}");
    let hit = &search["hits"][0];
    assert!(hit["vector"]["rank"].is_number(), "{search}");
    assert!(
        hit["source"].as_str().unwrap().contains("n0117"),
        "{search}"
    );
    status
}

/// The next run builds what is pending.
fn next_run_builds_everything(home: &Path, total: usize) {
    let out = run(home, &["memory", "index", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = json(&run(home, &["memory", "status", "--json"]));
    assert_eq!(status["vectorIndex"]["indexed"], total, "{status}");
    assert_eq!(status["vectorIndex"]["pending"], 0, "{status}");
    assert!(status["vectorIndex"].get("build").is_none(), "{status}");
}

#[test]
fn kill_9_during_a_vector_index_build_leaves_the_previous_index_usable() {
    let (home, first, total, built) = forest_and_more_notes();
    let (mut child, _stderr) = index_until_building(home.path());
    let pid = child.id();
    child.kill().unwrap();
    child.wait().unwrap();
    let status = previous_forest_answers(home.path(), first, total, &built);
    // `memory status` says a build was interrupted, and by which process.
    let build = &status["vectorIndex"]["build"];
    assert_eq!(build["state"], "interrupted", "{status}");
    assert_eq!(build["pid"], pid, "{status}");
    let text = run(home.path(), &["memory", "status"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("building    interrupted"), "{text}");
    next_run_builds_everything(home.path(), total);
}

#[test]
#[cfg(unix)]
fn ctrl_c_cancels_a_vector_index_build_and_keeps_the_previous_index() {
    let (home, first, total, built) = forest_and_more_notes();
    let (mut child, mut rest) = index_until_building(home.path());
    // Ctrl-C in the terminal: SIGINT to the process.
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut rest, &mut stderr).unwrap();
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cancelled"), "{stderr}");
    let status = previous_forest_answers(home.path(), first, total, &built);
    assert!(status["vectorIndex"].get("build").is_none(), "{status}");
    next_run_builds_everything(home.path(), total);
}

#[test]
fn batch_streams_index_progress_and_memory_cancel_stops_the_build() {
    use std::io::BufRead;
    let (home, first, total, built) = forest_and_more_notes();
    let mut child = hash(cmd(home.path()))
        .arg("--batch")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    writeln!(stdin, r#"{{"id":"i","method":"memory.index"}}"#).unwrap();
    stdin.flush().unwrap();
    // Progress arrives line by line while the run goes on: files, then the build.
    let mut files = 0;
    loop {
        let line: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        assert!(line.get("ok").is_none(), "the run ended first: {line}");
        assert_eq!(
            (&line["id"], &line["event"]),
            (&"i".into(), &"progress".into())
        );
        assert_eq!(line["payload"]["task"], "memory.index", "{line}");
        let message = line["payload"]["message"].as_str().unwrap();
        if message.starts_with("vector index") {
            break;
        }
        files += 1;
    }
    assert!(files > 0, "no progress before the build");
    writeln!(stdin, r#"{{"id":"c","method":"memory.cancel"}}"#).unwrap();
    stdin.flush().unwrap();
    let mut answers = std::collections::HashMap::new();
    while answers.len() < 2 {
        let line: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        if line.get("ok").is_some() {
            answers.insert(line["id"].as_str().unwrap().to_string(), line);
        }
    }
    assert_eq!(answers["c"]["payload"]["cancelled"], 1, "{answers:?}");
    assert_eq!(answers["i"]["error"]["code"], "CANCELLED", "{answers:?}");
    // The same session goes on: its status shows the previous forest and what waits.
    writeln!(stdin, r#"{{"id":"s","method":"memory.status"}}"#).unwrap();
    drop(stdin);
    let line: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(line["payload"]["vectorIndex"]["indexed"], first, "{line}");
    child.wait().unwrap();
    previous_forest_answers(home.path(), first, total, &built);
    next_run_builds_everything(home.path(), total);
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
    let mut child = hash(cmd(home.path()))
        .args(["memory", "index", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).unwrap();
        text
    });
    // Anonymous memory is what the process holds itself. LMDB's and tantivy's mapped files
    // also count towards RSS, but as page cache the kernel reclaims, so they are not sampled.
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_anon_kib = 0u64;
    while child.try_wait().unwrap().is_none() {
        if let Ok(status) = std::fs::read_to_string(&status_path) {
            peak_anon_kib = peak_anon_kib.max(rss_anon_kib(&status));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let stdout = reader.join().unwrap();
    assert!(child.wait().unwrap().success(), "{stdout}");
    let result: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["indexedFiles"], 1);
    assert!(result["addedChunks"].as_u64().unwrap() > 10_000, "{result}");
    // The file never sits in memory whole, nor do its chunks.
    let peak_mib = peak_anon_kib as f64 / 1024.0;
    assert!(peak_anon_kib > 0, "RssAnon was never read");
    assert!(
        peak_mib < 128.0,
        "peak anonymous RSS {peak_mib:.0} MiB for a 50 MiB file"
    );
}

fn rss_anon_kib(status: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix("RssAnon:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A fake Ollama `/api/embed` on 127.0.0.1: vectors from letter counts, so texts sharing
/// letters are near each other. Returns the base URL; the server lives as long as the test.
fn fake_ollama_embeddings() -> String {
    use axum::Json;
    use axum::routing::post;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let app = axum::Router::new().route(
                "/api/embed",
                post(|Json(body): Json<Value>| async move {
                    let inputs: Vec<String> =
                        serde_json::from_value(body["input"].clone()).unwrap_or_default();
                    let embeddings: Vec<Vec<f32>> = inputs
                        .iter()
                        .map(|text| {
                            let mut v = vec![0.0f32; 26];
                            for b in text.to_ascii_lowercase().bytes() {
                                if b.is_ascii_lowercase() {
                                    v[usize::from(b - b'a')] += 1.0;
                                }
                            }
                            v
                        })
                        .collect();
                    Json(serde_json::json!({ "embeddings": embeddings }))
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{}", rx.recv().unwrap())
}

#[test]
fn a_remote_embedder_is_used_when_configured_and_recorded_as_the_store_identity() {
    let home = tempfile::tempdir().unwrap();
    let base = fake_ollama_embeddings();
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[memory]\nembedder = \"remote\"\n\n[memory.remote]\nkind = \"ollama\"\n\
             base_url = \"{base}\"\nmodel = \"letters\"\n"
        ),
    )
    .unwrap();
    let add = run_configured(home.path(), &["memory", "add", "zebra zoo buzz", "--json"]);
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    run_configured(
        home.path(),
        &["memory", "add", "apple banana cabbage", "--json"],
    );

    let status = json(&run_configured(
        home.path(),
        &["memory", "status", "--json"],
    ));
    assert_eq!(status["embedder"]["name"], "remote:ollama:letters");
    assert_eq!(status["embedder"]["dimensions"], 26);
    assert_eq!(status["vectors"], 2);
    assert!(status.get("embedderNotice").is_none(), "{status}");

    // No word in common, so only the vector side can find it.
    let found = json(&run_configured(
        home.path(),
        &["memory", "search", "zzz", "--json"],
    ));
    assert_eq!(found["mode"], "hybrid", "{found}");
    assert_eq!(found["embedder"], "remote:ollama:letters");
    assert!(
        found["hits"][0]["snippet"]
            .as_str()
            .unwrap()
            .contains("zebra"),
        "{found}"
    );
    assert!(found["hits"][0]["vector"].is_object(), "{found}");
}

#[test]
fn an_unreachable_remote_embedder_falls_back_visibly() {
    let home = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[memory]\nembedder = \"remote\"\n\n[memory.remote]\nkind = \"ollama\"\n\
             base_url = \"http://127.0.0.1:{port}\"\nmodel = \"m\"\n"
        ),
    )
    .unwrap();
    let status = json(&run_configured(
        home.path(),
        &["memory", "status", "--json"],
    ));
    assert_eq!(status["embedder"]["name"], "hash");
    let notice = status["embedderNotice"].as_str().unwrap();
    assert!(
        notice.contains("remote embedder is unavailable"),
        "{notice}"
    );
    assert!(notice.contains("cannot connect"), "{notice}");
}

/// The edge build with the model files: meaning, not shared words, finds the note.
#[cfg(feature = "edge")]
#[test]
fn minilm_finds_by_meaning_through_the_cli() {
    let Some(model_dir) = std::env::var_os("OPENCLAW_RS_MINILM_DIR") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "OPENCLAW_RS_MINILM_DIR must be set in CI (see .ci/run)"
        );
        eprintln!("skipped: OPENCLAW_RS_MINILM_DIR is not set");
        return;
    };
    let home = common::home_with_config(&format!(
        "[memory]\nembedder = \"minilm\"\nmodel_dir = {:?}\n",
        model_dir.to_string_lossy()
    ));
    for note in [
        "a cat sits on the mat",
        "stock markets fell sharply on Tuesday",
        "the train to the coast leaves at nine",
    ] {
        let out = run_configured(home.path(), &["memory", "add", note, "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let status = json(&run_configured(
        home.path(),
        &["memory", "status", "--json"],
    ));
    assert_eq!(status["embedder"]["name"], "minilm", "{status}");
    assert_eq!(status["embedder"]["dimensions"], 384);
    let found = json(&run_configured(
        home.path(),
        &["memory", "search", "kitten resting on a rug", "--json"],
    ));
    assert_eq!(found["mode"], "hybrid", "{found}");
    assert!(
        found["hits"][0]["snippet"]
            .as_str()
            .unwrap()
            .contains("cat"),
        "{found}"
    );
}

/// The edge build without model files says where it looked and runs on `hash`.
#[cfg(feature = "edge")]
#[test]
fn minilm_without_model_files_falls_back_to_hash_visibly() {
    let home = tempfile::tempdir().unwrap();
    let empty = home.path().join("no-model-here");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[memory]\nembedder = \"minilm\"\nmodel_dir = {:?}\n",
            empty.to_string_lossy()
        ),
    )
    .unwrap();
    let status = json(&run_configured(
        home.path(),
        &["memory", "status", "--json"],
    ));
    assert_eq!(status["embedder"]["name"], "hash", "{status}");
    let notice = status["embedderNotice"].as_str().unwrap();
    assert!(notice.contains("no-model-here"), "{notice}");
    assert!(notice.contains("fetch-models.sh"), "{notice}");
}
