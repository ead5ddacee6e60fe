//! `chat`, `providers` and `sessions` through the binary, against the fake provider.

mod fake_provider;

use std::path::Path;
use std::process::{Command, Output};

use fake_provider::{FakeProvider, Fault};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_openclaw-rs");

fn run(home: &Path, args: &[&str]) -> Output {
    let mut c = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("OPENCLAW_RS_") {
            c.env_remove(key);
        }
    }
    c.env_remove("RUST_LOG");
    c.arg("--home").arg(home).args(args).output().expect("run")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_providers_and_sessions_from_the_command_line() {
    let server = FakeProvider::start().await;
    server.require_key("sk-cli-SECRET");
    server.script([
        Fault::Status(529),
        Fault::Reply("streamed to the terminal".into()),
    ]);
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("key"), "sk-cli-SECRET\n").unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[self_heal]\nbackoff_ms = 10\nfallback = [\"offline\"]\n[chat]\nrecall_hits = 0\n\
             [providers.fake]\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"file:{}\"\n\
             model = \"fake-model\"\n",
            server.openai_url(),
            home.path().join("key").display()
        ),
    )
    .unwrap();
    let h = home.path();
    let out = tokio::task::spawn_blocking({
        let h = h.to_path_buf();
        move || run(&h, &["chat", "--session", "cli", "hello"])
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "streamed to the terminal\n"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("recovered via fake after 2 attempts"), "{err}");

    let out = tokio::task::spawn_blocking({
        let h = h.to_path_buf();
        move || run(&h, &["chat", "--session", "cli", "--json", "again"])
    })
    .await
    .unwrap();
    let v = json(&out);
    assert_eq!(v["reply"], "hello from fake");
    assert_eq!(v["runtime"]["selfHealing"]["attempts"][0]["status"], "ok");

    let h2 = h.to_path_buf();
    let (list, sessions, export, probe) = tokio::task::spawn_blocking(move || {
        (
            run(&h2, &["providers", "list", "--json"]),
            run(&h2, &["sessions", "list", "--json"]),
            run(&h2, &["sessions", "export", "cli"]),
            run(&h2, &["providers", "probe", "fake"]),
        )
    })
    .await
    .unwrap();
    let list_v = json(&list);
    assert_eq!(list_v["providers"][0]["id"], "fake");
    assert!(!String::from_utf8_lossy(&list.stdout).contains("SECRET"));
    assert_eq!(json(&sessions)["sessions"][0]["id"], "cli");
    let lines: Vec<Value> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "session");
    assert_eq!(lines.iter().filter(|l| l["type"] == "turn").count(), 2);
    assert!(probe.status.success());
    assert!(String::from_utf8_lossy(&probe.stdout).contains("fake"));

    let bad = tokio::task::spawn_blocking({
        let h = h.to_path_buf();
        move || run(&h, &["sessions", "delete", "../../etc"])
    })
    .await
    .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not valid"));
}

#[test]
fn providers_reorder_from_the_command_line_is_saved_for_the_next_run() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        "# keep me\n[self_heal]\nfallback = [\"ollama\", \"offline\"]  # why: no keys here\n",
    )
    .unwrap();
    let h = home.path();
    let out = run(h, &["providers", "reorder", "offline"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("saved to"), "{text}");
    let list = json(&run(h, &["providers", "list", "--json"]));
    let ids: Vec<&str> = list["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["offline", "ollama"]);
    let config = std::fs::read_to_string(h.join("config.toml")).unwrap();
    assert!(config.starts_with("# keep me\n"), "{config}");
    assert!(config.contains("# why: no keys here"), "{config}");

    let bad = run(h, &["providers", "reorder", "nope", "--json"]);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(json(&bad)["error"]["code"], "NOT_FOUND");
}
