//! The doctor's memory checks through the binary: the `--json` report of a damaged store,
//! and a doctor run in one process while another (here `--batch`, as the TUI would) holds
//! the store open.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The binary on `home`, with the `hash` embedder whatever the build's profile prefers.
fn cmd(home: &Path) -> Command {
    let mut c = common::bin(home);
    c.env("RUST_BACKTRACE", "0")
        .env("OPENCLAW_RS_MEMORY__EMBEDDER", "hash");
    c
}

/// `doctor --json --only memory`: (exit code, report).
fn doctor(mut command: Command) -> (i32, Value) {
    let out: Output = command
        .args(["doctor", "--json", "--only", "memory"])
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON report ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

fn check_ids(report: &Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["checkId"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn add(home: &Path, text: &str) {
    let out = cmd(home).args(["memory", "add", text]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_damaged_store_is_a_critical_finding_in_the_designs_json_shape() {
    let home = tempfile::tempdir().unwrap();
    let (code, report) = doctor(cmd(home.path()));
    assert_eq!(
        (code, check_ids(&report)),
        (0, vec![]),
        "no store, no finding"
    );

    add(
        home.path(),
        "The lighthouse keeper logs the weather every morning.",
    );
    let (code, report) = doctor(cmd(home.path()));
    assert_eq!((code, check_ids(&report)), (0, vec![]), "{report}");

    std::fs::write(home.path().join("memory/text/meta.json"), b"\0garbage").unwrap();
    let (code, report) = doctor(cmd(home.path()));
    assert_eq!(code, 1, "a finding at or above warn fails the run");
    assert_eq!(report["schemaVersion"], 1);
    assert_eq!(report["ok"], false);
    assert_eq!(
        report["summary"],
        serde_json::json!({"critical": 1, "warn": 0, "info": 0})
    );
    assert_eq!(report["suppressed"], serde_json::json!([]));
    let finding = &report["findings"][0];
    assert_eq!(finding["checkId"], "memory.store.unreadable");
    assert_eq!(finding["severity"], "critical");
    assert_eq!(
        finding["path"],
        home.path().join("memory").display().to_string()
    );
    let detail = finding["detail"].as_str().unwrap();
    assert!(
        detail.contains("openclaw-rs memory index --force"),
        "{detail}"
    );
    assert!(finding.get("fix").is_none(), "no automatic fix is offered");

    // The fix it names works, and the doctor agrees.
    let out = cmd(home.path())
        .args(["memory", "index", "--force"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let (code, report) = doctor(cmd(home.path()));
    assert_eq!((code, check_ids(&report)), (0, vec![]), "{report}");
}

#[test]
fn the_doctor_reads_a_store_another_process_holds_open() {
    let home = tempfile::tempdir().unwrap();
    let mut batch = cmd(home.path())
        .arg("--batch")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = batch.stdin.take().unwrap();
    let mut stdout = BufReader::new(batch.stdout.take().unwrap());
    let mut ask = |line: &str| -> Value {
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        let mut answer = String::new();
        stdout.read_line(&mut answer).unwrap();
        serde_json::from_str(&answer).unwrap()
    };
    let added = ask(
        r#"{"id":1,"method":"memory.add","params":{"text":"Ada Lovelace wrote the first program for the Analytical Engine."}}"#,
    );
    assert_eq!(added["ok"], true, "{added}");

    // The batch process has the store open (LMDB and tantivy) while these run.
    let (code, report) = doctor(cmd(home.path()));
    assert_eq!((code, check_ids(&report)), (0, vec![]), "{report}");
    let mut other_embedder = cmd(home.path());
    other_embedder.env("OPENCLAW_RS_MEMORY__DIMENSIONS", "64");
    let (code, report) = doctor(other_embedder);
    assert_eq!(
        (code, check_ids(&report)),
        (1, vec![("memory.embedder.mismatch".into(), "warn".into())]),
        "{report}"
    );

    // And the holder goes on working.
    let found = ask(r#"{"id":2,"method":"memory.search","params":{"query":"first program"}}"#);
    assert_eq!(found["payload"]["hits"][0]["chunkId"], 1, "{found}");
    drop(stdin);
    assert!(batch.wait().unwrap().success());
}

/// The embedder the doctor expects is the one the engine would really use: minilm without
/// its model files falls back to hash (and on a core build always does), so a hash store
/// matches; with the model (edge), the same store is a mismatch.
#[test]
fn the_expected_embedder_follows_the_minilm_fallback() {
    let home = tempfile::tempdir().unwrap();
    add(
        home.path(),
        "The lighthouse keeper logs the weather every morning.",
    );
    let no_model = tempfile::tempdir().unwrap();
    let mut minilm = cmd(home.path());
    minilm
        .env("OPENCLAW_RS_MEMORY__EMBEDDER", "minilm")
        .env("OPENCLAW_RS_MEMORY__MODEL_DIR", no_model.path());
    let (code, report) = doctor(minilm);
    assert_eq!((code, check_ids(&report)), (0, vec![]), "{report}");

    let Some(model) = std::env::var_os("OPENCLAW_RS_MINILM_DIR").filter(|_| cfg!(feature = "edge"))
    else {
        return;
    };
    let mut minilm = cmd(home.path());
    minilm
        .env("OPENCLAW_RS_MEMORY__EMBEDDER", "minilm")
        .env("OPENCLAW_RS_MEMORY__MODEL_DIR", &model);
    let (code, report) = doctor(minilm);
    assert_eq!(
        (code, check_ids(&report)),
        (1, vec![("memory.embedder.mismatch".into(), "warn".into())]),
        "{report}"
    );
    let title = report["findings"][0]["title"].as_str().unwrap();
    assert!(
        title.contains("hash") && title.contains("minilm"),
        "{title}"
    );
}

#[test]
fn a_store_from_an_older_version_is_reported_and_upgraded_by_the_next_open() {
    use openclaw_rs::memory::store::{Store, StoreError};
    let home = tempfile::tempdir().unwrap();
    add(home.path(), "Tide tables are printed every spring.");
    add(home.path(), "The ferry leaves at seven on weekdays.");
    let dir = home.path().join("memory");
    {
        // As the first schema left it (its vector tables' contents aside).
        let store = Store::open(&dir).unwrap();
        store
            .write(|txn| -> Result<(), StoreError> { store.meta_put(txn, "schema_version", &1u32) })
            .unwrap();
    }
    let (code, report) = doctor(cmd(home.path()));
    assert_eq!(
        (code, check_ids(&report)),
        (0, vec![("memory.store.outdated".into(), "info".into())]),
        "{report}"
    );
    assert!(
        report.to_string().contains("upgrades it in place"),
        "{report}"
    );

    // Any normal open upgrades it and makes the vectors again.
    let out = cmd(home.path())
        .args(["memory", "status", "--json"])
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (status["chunks"].as_u64(), status["vectors"].as_u64()),
        (Some(2), Some(2))
    );
    let (code, report) = doctor(cmd(home.path()));
    assert_eq!((code, check_ids(&report)), (0, vec![]), "{report}");
}
