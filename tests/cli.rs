//! The binary as scripts use it: exit statuses, stdout that is JSON only, errors with
//! file:line:column, secrets that never print.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::BIN;
use serde_json::Value;

/// The binary with a private state dir and none of the caller's OPENCLAW_RS_* settings.
fn cmd(home: &Path) -> Command {
    common::bin(home)
}

fn run_with_stdin(mut c: Command, stdin: &str) -> Output {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `--batch` reading `stdin`.
fn batch(home: &Path, stdin: &str) -> Output {
    let mut c = cmd(home);
    c.arg("--batch");
    run_with_stdin(c, stdin)
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

#[test]
fn batch_mixed_input_frames_every_line_and_exits_1() {
    let home = tempfile::tempdir().unwrap();
    let input = concat!(
        "{\"id\":1,\"method\":\"status\"}\n",
        "{\"id\":2,\"method\":\"config.get\",\"params\":{\"key\":\"sandbox.backend\"}}\n",
        "{not json\n",
        "{\"id\":4,\"method\":\"no.such.method\"}\n",
        "\n",
        "{\"id\":\"six\",\"method\":\"health\",\"timeoutMs\":5000}\n",
    );
    let out = batch(home.path(), input);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frames = json_lines(&out);
    assert_eq!(frames.len(), 5, "one frame per request, blank line skipped");
    assert_eq!(frames[0]["id"], 1);
    assert_eq!(frames[0]["ok"], true);
    assert_eq!(frames[0]["payload"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        frames[1]["payload"]["value"],
        if cfg!(feature = "edge") {
            "wasmtime"
        } else {
            "wasmi"
        }
    );
    assert_eq!(frames[2]["ok"], false);
    assert_eq!(frames[2]["error"]["code"], "INVALID_REQUEST");
    assert_eq!(frames[2]["error"]["details"]["line"], 3);
    assert_eq!(frames[3]["id"], 4);
    assert_eq!(frames[3]["error"]["code"], "INVALID_REQUEST");
    assert_eq!(frames[4]["id"], "six");
    assert!(frames[4]["payload"]["checks"].is_array());
}

#[test]
fn batch_all_good_exits_0_and_reads_files() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("requests.jsonl");
    std::fs::write(
        &file,
        "{\"id\":1,\"method\":\"methods.list\"}\n{\"id\":2,\"method\":\"profile.get\"}\n",
    )
    .unwrap();
    let out = cmd(home.path()).arg("--batch").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let frames = json_lines(&out);
    assert_eq!(frames.len(), 2);
    assert!(frames[0]["payload"]["methods"].as_array().unwrap().len() >= 5);

    let out = cmd(home.path())
        .arg("--batch")
        .arg(home.path().join("absent.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn batch_refuses_a_broken_config_with_a_frame_and_exit_2() {
    let home = common::home_with_config("[sandbox]\nfuel = \"lots\"\n");
    let out = batch(home.path(), "{\"id\":1,\"method\":\"status\"}\n");
    assert_eq!(out.status.code(), Some(2));
    let frames = json_lines(&out);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0]["error"]["code"], "UNAVAILABLE");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("config.toml:2:8"), "{stderr}");
}

#[test]
fn config_check_names_file_line_and_column() {
    let home = common::home_with_config("[ui]\ntheme = \"light\"\n\n[sandbox\n");
    let out = cmd(home.path()).args(["config", "check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = format!("{}:4:", home.path().join("config.toml").display());
    assert!(all.contains(&expected), "{all}");

    let out = cmd(home.path())
        .args(["config", "check", "--json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["diagnostics"][0]["line"], 4);

    // Every other command refuses to run on it, with the same location.
    let out = cmd(home.path()).args(["status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&expected));
}

#[test]
fn config_show_redacts_and_keeps_unknown_keys() {
    let home = common::home_with_config(
        "[providers.openai]\nkind = \"openai\"\napi_key = \"sk-live-SECRET123\"\n\n[providers.local]\nkind = \"ollama\"\napi_key = \"env:LOCAL_KEY\"\n\n[plugins]\ntoken = \"tok-SECRET456\"\n",
    );
    for args in [
        &["config", "show"][..],
        &["config", "show", "--json"],
        &["config", "check"],
        &["status", "--json"],
    ] {
        let out = cmd(home.path()).args(args).output().unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains("SECRET"), "{args:?} leaked: {all}");
    }
    let out = cmd(home.path()).args(["config", "show"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("env:LOCAL_KEY"),
        "references are shown: {stdout}"
    );
    assert!(stdout.contains("<redacted>"));
    assert!(
        stdout.contains("plugins"),
        "unknown keys are listed: {stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("literal key"), "{stderr}");

    let out = cmd(home.path())
        .args(["call", "config.get", "--params", "{\"key\":\"providers\"}"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("SECRET"));
}

#[test]
fn status_reports_track_and_the_edge_fallback() {
    let home = tempfile::tempdir().unwrap();
    let out = cmd(home.path())
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let track = if cfg!(feature = "edge") {
        "edge"
    } else {
        "core"
    };
    assert_eq!(status["buildTrack"], track);
    assert_eq!(status["profile"], track);

    let out = cmd(home.path())
        .args(["status", "--profile", "edge"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("profile     edge"), "{text}");
    if cfg!(feature = "edge") {
        assert!(text.contains("sandbox     wasmtime"), "{text}");
    } else {
        assert!(text.contains("wasmi (fallback"), "{text}");
    }
}

#[test]
fn first_run_creates_a_private_state_dir() {
    let parent = tempfile::tempdir().unwrap();
    let home = parent.path().join("fresh");
    let out = cmd(&home).args(["status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&home), 0o700);
    assert_eq!(mode(&home.join("config.toml")), 0o600);
    // `config path` only reports; it creates nothing.
    let other = parent.path().join("untouched");
    let out = cmd(&other).args(["config", "path"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(!other.exists());
}

#[test]
fn call_reports_usage_and_engine_errors_distinctly() {
    let home = tempfile::tempdir().unwrap();
    let out = cmd(home.path())
        .args(["call", "status", "--params", "{oops"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = cmd(home.path()).args(["call", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["error"]["code"], "INVALID_REQUEST");
    let out = cmd(home.path())
        .args([
            "call",
            "config.get",
            "--params",
            "{\"key\":\"self_heal.max_attempts\"}",
        ])
        .env("OPENCLAW_RS_SELF_HEAL__MAX_ATTEMPTS", "7")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["value"], 7, "environment overrides config");
}

#[test]
fn unknown_profile_and_bad_flags_exit_2() {
    let home = tempfile::tempdir().unwrap();
    let out = cmd(home.path())
        .args(["status", "--profile", "turbo"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown profile 'turbo'"));
    let out = cmd(home.path()).args(["--no-such-flag"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_and_completions_cover_every_command() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "status",
        "call",
        "config",
        "completions",
        "--batch",
        "--profile",
        "--config",
        "--home",
        "--theme",
        "--keymap",
    ] {
        assert!(help.contains(word), "--help lacks {word}");
    }
    let out = Command::new(BIN)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("openclaw-rs"));
}

#[test]
fn values_in_type_errors_and_urls_in_output_are_hidden() {
    let home = common::home_with_config("[providers]\nopenai = \"sk-live-TYPOSECRET\"\n");
    let out = batch(home.path(), "");
    assert_eq!(out.status.code(), Some(2));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains("TYPOSECRET"), "{all}");
    assert!(all.contains("config.toml:2:"), "still located: {all}");

    std::fs::write(
        home.path().join("config.toml"),
        "[providers.proxy]\nkind = \"openai\"\nbase_url = \"https://me:hunter2@proxy.example/v1?key=QUERYSECRET\"\n",
    )
    .unwrap();
    let out = cmd(home.path()).args(["config", "show"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("hunter2") && !text.contains("QUERYSECRET"),
        "{text}"
    );
    assert!(text.contains("proxy.example/v1"), "{text}");
}

#[test]
fn params_must_be_an_object_and_batch_wants_a_file() {
    let home = tempfile::tempdir().unwrap();
    let out = cmd(home.path())
        .args(["call", "status", "--params", "[]"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("JSON object")
    );
    let out = cmd(home.path())
        .arg("--batch")
        .arg(home.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a directory"));
}

#[test]
fn completions_into_a_closed_pipe_do_not_panic() {
    let mut child = Command::new(BIN)
        .args(["completions", "zsh"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_ne!(
        out.status.code(),
        Some(101),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn config_check_reports_broken_theme_and_keymap_files() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("themes")).unwrap();
    std::fs::create_dir_all(home.path().join("keymaps")).unwrap();
    std::fs::write(
        home.path().join("themes/default.toml"),
        "[styles]\n\"ui.text\" = \"blurple\"\n",
    )
    .unwrap();
    std::fs::write(
        home.path().join("keymaps/default.toml"),
        "[global]\nx = \"explode\"\n",
    )
    .unwrap();
    let out = cmd(home.path()).args(["config", "check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("themes/default.toml:2:"), "{text}");
    assert!(text.contains("keymaps/default.toml:2:"), "{text}");
    // Other commands still run: these files only matter to the TUI.
    let out = cmd(home.path())
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["configErrors"], 2);
}
