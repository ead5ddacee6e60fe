//! Everything the app creates is private whatever the umask: after one of everything under
//! `umask 022`, the security audit finds no `fs.*` problem, every directory in the state dir
//! is 0700 and every file 0600, and the files written for the user are 0600 unless `--mode`
//! says otherwise.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_openclaw-rs");

/// The binary under `umask 022`, through a shell, as a user with that umask runs it.
fn run(state: &Path, args: &[&str]) -> Output {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("umask 022; exec \"$0\" \"$@\"")
        .arg(BIN)
        .arg("--home")
        .arg(state)
        .args(["--profile", "core"])
        .args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("OPENCLAW_RS_") {
            c.env_remove(key);
        }
    }
    c.env_remove("RUST_LOG")
        .env("OPENCLAW_RS_MEMORY__EMBEDDER", "hash");
    let out = c.output().expect("run");
    assert!(
        out.status.success(),
        "{args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        out.push(path.clone());
        if std::fs::symlink_metadata(&path).unwrap().is_dir() {
            walk(&path, out);
        }
    }
}

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/wasm")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn one_of_everything_under_umask_022_leaves_nothing_for_the_audit() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    run(&state, &["status"]);
    let chat = run(
        &state,
        &["chat", "hello there", "--session", "s1", "--json"],
    );
    assert!(!chat.stdout.is_empty());
    run(&state, &["memory", "add", "a note about zebras"]);
    run(&state, &["memory", "index"]);
    run(
        &state,
        &[
            "sandbox",
            "run",
            &fixture("host_kv.wat"),
            "--allow",
            "kv",
            "--json",
        ],
    );
    let wav = tmp.path().join("hello.wav");
    run(
        &state,
        &["tts", "say", "Hello.", "--out", wav.to_str().unwrap()],
    );
    let export = tmp.path().join("s1.jsonl");
    run(
        &state,
        &["sessions", "export", "s1", "-o", export.to_str().unwrap()],
    );
    // A fix (a config edit: a backup, the journal) and its undo.
    let config = state.join("config.toml");
    std::fs::write(&config, "[logging]\nredact = false\n").unwrap();
    run(
        &state,
        &[
            "security",
            "audit",
            "--only",
            "logging",
            "--fix",
            "--non-interactive",
        ],
    );
    assert!(
        state.join("config.toml.bak.1").exists(),
        "the fix was applied"
    );
    run(&state, &["undo"]);

    let audit = Command::new("sh")
        .arg("-c")
        .arg("umask 022; exec \"$0\" \"$@\"")
        .arg(BIN)
        .arg("--home")
        .arg(&state)
        .args(["--profile", "core", "security", "audit", "--json"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&audit.stdout).unwrap();
    let fs: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["checkId"].as_str().unwrap().starts_with("fs."))
        .collect();
    assert!(fs.is_empty(), "{fs:#?}");

    let mut all = Vec::new();
    walk(&state, &mut all);
    assert!(all.iter().any(|p| p.ends_with("journal.jsonl")), "{all:?}");
    assert!(
        all.iter().any(|p| p.to_string_lossy().contains("sessions")),
        "{all:?}"
    );
    let loose: Vec<String> = all
        .iter()
        .filter(|p| {
            let want = if p.is_dir() { 0o700 } else { 0o600 };
            mode(p) & 0o077 != 0 || (mode(p) != want && !p.is_symlink())
        })
        .map(|p| format!("{:o} {}", mode(p), p.display()))
        .collect();
    assert!(loose.is_empty(), "not private:\n{}", loose.join("\n"));
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&wav), 0o600, "tts say --out");
    assert_eq!(mode(&export), 0o600, "sessions export -o");

    // The user may ask for another mode.
    let shared = tmp.path().join("shared.jsonl");
    run(
        &state,
        &[
            "sessions",
            "export",
            "s1",
            "-o",
            shared.to_str().unwrap(),
            "--mode",
            "0644",
        ],
    );
    assert_eq!(mode(&shared), 0o644);
    let shared_wav = tmp.path().join("shared.wav");
    run(
        &state,
        &[
            "tts",
            "say",
            "Hi.",
            "--out",
            shared_wav.to_str().unwrap(),
            "--mode",
            "640",
        ],
    );
    assert_eq!(mode(&shared_wav), 0o640);
}
