//! The sandbox and tools commands through the binary: exit statuses, JSON on stdout, the
//! error kinds a script can branch on.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::json;

fn run(home: &Path, args: &[&str]) -> Output {
    common::bin(home).args(args).output().expect("run")
}

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/wasm")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn sandbox_run_prints_output_and_fails_with_a_typed_error() {
    let home = tempfile::tempdir().unwrap();
    let out = run(
        home.path(),
        &[
            "sandbox",
            "run",
            &fixture("json_transform.wat"),
            "--input",
            r#"{"x":[1]}"#,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        json(&out),
        serde_json::json!({ "wrapped": { "x": [1] }, "tool": "transform" })
    );

    let out = run(
        home.path(),
        &[
            "sandbox",
            "run",
            &fixture("loop.wat"),
            "--fuel",
            "100000",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let frame = json(&out);
    assert_eq!(frame["ok"], false);
    assert_eq!(frame["error"]["details"]["kind"], "outOfFuel");
    assert!(String::from_utf8_lossy(&out.stderr).contains("fuel"));

    let out = run(
        home.path(),
        &["sandbox", "run", &fixture("host_kv.wat"), "--json"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"]["code"], "DENIED");

    let out = run(
        home.path(),
        &["sandbox", "run", &fixture("echo.wat"), "--input", "{nope"],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = run(
        home.path(),
        &["sandbox", "run", &fixture("echo.wat"), "--backend", "v8"],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn tools_list_describe_and_invoke() {
    let home = tempfile::tempdir().unwrap();
    let out = run(home.path(), &["tools", "list", "--json"]);
    assert!(out.status.success());
    let names: Vec<String> = json(&out)["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["json_query", "text_stats", "checksum"]);

    let out = run(home.path(), &["tools", "describe", "checksum"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"text\""));

    let out = run(
        home.path(),
        &[
            "tools",
            "invoke",
            "checksum",
            "--input",
            r#"{"text":"abc"}"#,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        json(&out)["sha256"],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let out = run(home.path(), &["tools", "invoke", "missing", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"]["code"], "NOT_FOUND");

    let out = run(home.path(), &["sandbox", "status", "--json"]);
    assert!(out.status.success());
    assert_eq!(json(&out)["backends"][0], "wasmi");
}

/// A tool that logs a token it made up itself (the SafetyLayer checks its input, not what
/// it builds), at debug level.
const LEAKY_TOOL: &str = r#"(module
  (import "openclaw" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "leaked ghp_abcdefghijklmnopqrstuvwxyz0123456789")
  (data (i32.const 128) "{}")
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "run") (param i32 i32) (result i64)
    (call $log (i32.const 3) (i32.const 16) (i32.const 47))
    (i64.or (i64.shl (i64.const 128) (i64.const 32)) (i64.const 2))))"#;

#[test]
fn logging_redact_decides_whether_a_secret_in_a_log_line_reaches_stderr() {
    const TOKEN: &str = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
    for (setting, shown) in [(None, false), (Some(true), false), (Some(false), true)] {
        let home = tempfile::tempdir().unwrap();
        if let Some(on) = setting {
            std::fs::write(
                home.path().join("config.toml"),
                format!("[logging]\nredact = {on}\n"),
            )
            .unwrap();
        }
        let wat = home.path().join("leaky.wat");
        std::fs::write(&wat, LEAKY_TOOL).unwrap();
        let out = run(
            home.path(),
            &[
                "-vv",
                "sandbox",
                "run",
                &wat.display().to_string(),
                "--input",
                "{}",
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        // The log line itself (the command also prints the tool's logs, SafetyLayer-checked).
        let line = stderr
            .lines()
            .find(|l| l.contains("openclaw_rs::sandbox::tool") && l.contains("leaked "))
            .unwrap_or_else(|| panic!("no log line of the tool: {stderr}"));
        assert_eq!(
            line.contains(TOKEN),
            shown,
            "logging.redact = {setting:?}: {line}"
        );
        if !shown {
            assert!(line.contains("[REDACTED:github_token]"), "{line}");
        }
    }
}
