use serde_json::json;

use super::*;
use crate::config::{LoadOptions, load};
use crate::engine::Engine;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/wasm")
        .join(name)
}

fn engine_with(config: &str) -> (tempfile::TempDir, Engine) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("config.toml"), config).unwrap();
    let loaded = load(&LoadOptions {
        state_dir: tmp.path().to_path_buf(),
        ..Default::default()
    });
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    (tmp, Engine::start(loaded, Vec::new()))
}

/// Install `fixture` as tool `name` with the given extra manifest lines.
fn install(tmp: &tempfile::TempDir, name: &str, fixture_file: &str, extra: &str) {
    let dir = tmp.path().join("tools").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixture(fixture_file), dir.join("tool.wat")).unwrap();
    std::fs::write(
        dir.join("tool.toml"),
        format!("name = \"{name}\"\ndescription = \"test\"\nmodule = \"tool.wat\"\n{extra}"),
    )
    .unwrap();
}

#[tokio::test]
async fn builtin_tools_compute_real_answers() {
    let (_tmp, engine) = engine_with("");
    let h = engine.handle();
    let text = "héllo wörld\nsecond line here\n\tthird";
    let stats = h
        .call(
            "tools.invoke",
            json!({ "name": "text_stats", "input": { "text": text } }),
        )
        .await
        .unwrap();
    assert_eq!(
        stats["output"],
        json!({ "bytes": text.len(), "chars": text.chars().count(), "words": 6, "lines": 3 })
    );
    let sum = h
        .call(
            "tools.invoke",
            json!({ "name": "checksum", "input": { "text": text } }),
        )
        .await
        .unwrap();
    assert_eq!(
        sum["output"]["sha256"],
        crate::sandbox::sha256_hex(text.as_bytes())
    );
    assert_eq!(sum["output"]["bytes"], text.len());
    let doc = json!({ "items": [{ "name": "a" }, { "name": "b", "tags": ["x", { "deep": [1, 2.5, null] }] }], "n": 3 });
    for (path, found) in [
        ("items.1.name", json!({ "found": true, "value": "b" })),
        (
            "items.1.tags.1.deep",
            json!({ "found": true, "value": [1, 2.5, null] }),
        ),
        ("n", json!({ "found": true, "value": 3 })),
        ("", json!({ "found": true, "value": doc })),
        ("items.7", json!({ "found": false })),
        ("items.x", json!({ "found": false })),
        ("n.deeper", json!({ "found": false })),
    ] {
        let got = h
            .call(
                "tools.invoke",
                json!({ "name": "json_query", "input": { "json": doc, "path": path } }),
            )
            .await
            .unwrap();
        assert_eq!(got["output"], found, "path {path}");
    }
    // Escapes in strings decode before hashing and counting.
    let tricky = "quote \" backslash \\ tab \t nul-free \u{1F600} é";
    let sum = h
        .call(
            "tools.invoke",
            json!({ "name": "checksum", "input": { "text": tricky } }),
        )
        .await
        .unwrap();
    assert_eq!(
        sum["output"]["sha256"],
        crate::sandbox::sha256_hex(tricky.as_bytes())
    );
}

#[tokio::test]
async fn input_is_checked_against_the_schema() {
    let (_tmp, engine) = engine_with("");
    let err = engine
        .handle()
        .call(
            "tools.invoke",
            json!({ "name": "checksum", "input": { "text": 5 } }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    assert!(
        err.details.unwrap()["errors"][0]
            .as_str()
            .unwrap()
            .contains("/text")
    );
    let err = engine
        .handle()
        .call("tools.invoke", json!({ "name": "nope" }))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
}

#[tokio::test]
async fn pins_and_capability_intersection_are_enforced() {
    let (tmp, engine) = engine_with("[sandbox]\ncapabilities = [\"fs\"]\n");
    install(&tmp, "pinned", "echo.wat", "sha256 = \"00\"\n");
    install(&tmp, "keeper", "host_kv.wat", "[capabilities]\nkv = true\n");
    let h = engine.handle();
    let list = h.request::<ToolsList>(NoParams {}).await.unwrap();
    let keeper = list.tools.iter().find(|t| t.name == "keeper").unwrap();
    assert_eq!(keeper.requested, ["kv"]);
    assert!(
        keeper.granted.is_empty(),
        "kv is not in sandbox.capabilities"
    );
    assert!(
        list.tools
            .iter()
            .any(|t| t.name == "json_query" && t.pinned)
    );

    let err = h
        .call("tools.invoke", json!({ "name": "pinned", "input": {} }))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Denied);
    assert_eq!(err.details.unwrap()["kind"], "hashMismatch");
    let err = h
        .call(
            "tools.invoke",
            json!({ "name": "keeper", "input": { "a": 1 } }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Denied);
    let details = err.details.unwrap();
    assert_eq!(details["kind"], "capabilityDenied");
    assert_eq!(details["capability"], "kv");
    assert_eq!(details["tool"], "keeper");

    let describe = h
        .call("tools.describe", json!({ "name": "keeper" }))
        .await
        .unwrap();
    assert_eq!(describe["imports"], json!(["kv"]));
    assert_eq!(describe["pinned"], false);
}

#[tokio::test]
async fn allowed_kv_persists_per_tool_and_events_are_emitted() {
    let (tmp, engine) = engine_with("");
    install(&tmp, "keeper", "host_kv.wat", "[capabilities]\nkv = true\n");
    let h = engine.handle();
    let mut events = h.subscribe();
    let out = h
        .call(
            "tools.invoke",
            json!({ "name": "keeper", "input": { "a": 1 } }),
        )
        .await
        .unwrap();
    assert_eq!(out["output"], json!({ "a": 1 }));
    assert_eq!(out["granted"], json!(["kv"]));
    assert!(tmp.path().join("tools/kv/keeper.json").is_file());
    let event = events.recv().await.unwrap();
    assert!(
        matches!(&event, EngineEvent::ToolCall { tool, status, .. } if tool == "keeper" && status == "ok"),
        "{event:?}"
    );
}

#[tokio::test]
async fn secrets_in_tool_output_are_redacted_or_blocked_per_config() {
    let key = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
    let (tmp, engine) = engine_with("");
    install(&tmp, "echo", "echo.wat", "");
    let h = engine.handle();
    let mut events = h.subscribe();
    let out = h
        .call(
            "tools.invoke",
            json!({ "name": "echo", "input": { "note": format!("token {key}") } }),
        )
        .await
        .unwrap();
    assert_eq!(out["output"]["note"], "token [REDACTED:github_token]");
    assert_eq!(out["safety"]["decision"], "review");
    assert!(!out.to_string().contains(key));
    let mut saw_decision = false;
    while let Ok(event) = events.try_recv() {
        let text = serde_json::to_string(&event).unwrap();
        assert!(!text.contains(key), "a secret reached an event: {text}");
        saw_decision |= matches!(event, EngineEvent::SafetyDecision { .. });
    }
    assert!(saw_decision);

    let (tmp, engine) = engine_with("[safety]\non_secret = \"block\"\n");
    install(&tmp, "echo", "echo.wat", "");
    let err = engine
        .handle()
        .call(
            "tools.invoke",
            json!({ "name": "echo", "input": { "note": key } }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Denied);
    assert!(!serde_json::to_string(&err).unwrap().contains(key));
}

#[tokio::test]
async fn sandbox_run_takes_explicit_limits_and_reports_status() {
    let (_tmp, engine) = engine_with("");
    let h = engine.handle();
    let err = h
        .call(
            "sandbox.run",
            json!({ "path": fixture("loop.wat"), "fuel": 100000, "backend": "wasmi" }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.details.unwrap()["kind"], "outOfFuel");
    let err = h
        .call(
            "sandbox.run",
            json!({ "path": fixture("loop.wat"), "fuel": 0, "timeoutMs": 100 }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Timeout);
    let ok = h
        .call(
            "sandbox.run",
            json!({ "path": fixture("echo.wat"), "input": [1, 2] }),
        )
        .await
        .unwrap();
    assert_eq!(ok["output"], json!([1, 2]));
    let err = h
        .call(
            "sandbox.run",
            json!({ "path": fixture("echo.wat"), "allow": ["root"] }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    let status = h.call("sandbox.status", Value::Null).await.unwrap();
    assert!(status["cache"]["runs"].as_u64().unwrap() >= 3);
    assert_eq!(status["backends"][0], "wasmi");
}

#[tokio::test]
async fn memory_search_reaches_the_engine_store() {
    let (_tmp, engine) = engine_with("");
    let h = engine.handle();
    h.call(
        "memory.add",
        json!({ "text": "Ferris the crab loves Rust." }),
    )
    .await
    .unwrap();
    let out = h
        .call(
            "sandbox.run",
            json!({ "path": fixture("host_memory.wat"), "input": { "query": "crab" }, "allow": ["memory"] }),
        )
        .await
        .unwrap();
    let hits = out["output"]["hits"].as_array().unwrap();
    assert!(!hits.is_empty(), "{out}");
    assert!(out["output"].to_string().contains("Ferris"), "{out}");
}

#[tokio::test]
async fn secrets_a_tool_logs_are_redacted_too() {
    let key = "AKIAABCDEFGHIJKLMNOP";
    let (tmp, engine) = engine_with("");
    let dir = tmp.path().join("tools/leaky");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("tool.wat"),
        format!(
            r#"(module
  (import "openclaw" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "key {key}")
  (data (i32.const 64) "{{}}")
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "run") (param i32 i32) (result i64)
    (call $log (i32.const 2) (i32.const 16) (i32.const 24))
    (i64.or (i64.shl (i64.const 64) (i64.const 32)) (i64.const 2))))"#
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("tool.toml"),
        "name = \"leaky\"\ndescription = \"d\"\nmodule = \"tool.wat\"\n",
    )
    .unwrap();
    let out = engine
        .handle()
        .call("tools.invoke", json!({ "name": "leaky" }))
        .await
        .unwrap();
    assert_eq!(out["logs"][0]["message"], "key [REDACTED:aws_access_key]");
    assert_eq!(out["safety"]["decision"], "review");
    assert!(!out.to_string().contains(key));
}

#[cfg(not(feature = "edge"))]
#[tokio::test]
async fn wasmtime_on_a_core_build_falls_back_to_wasmi_and_says_so() {
    let (_tmp, engine) = engine_with("");
    let out = engine
        .handle()
        .call(
            "sandbox.run",
            json!({ "path": fixture("echo.wat"), "backend": "wasmtime", "input": { "a": 1 } }),
        )
        .await
        .unwrap();
    assert_eq!(out["backend"], "wasmi");
    assert!(
        out["fallbackReason"]
            .as_str()
            .unwrap()
            .contains("core build")
    );
}

#[cfg(feature = "edge")]
#[tokio::test]
async fn both_backends_answer_on_an_edge_build() {
    let (_tmp, engine) = engine_with("");
    for backend in ["wasmi", "wasmtime"] {
        let out = engine
            .handle()
            .call(
                "tools.invoke",
                json!({ "name": "checksum", "input": { "text": "abc" }, "backend": backend }),
            )
            .await
            .unwrap();
        assert_eq!(out["backend"], backend);
        assert_eq!(
            out["output"]["sha256"],
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

/// `sandbox.disk_cache`: a second engine (a later process) on the same state dir loads the
/// compiled tool from `<state>/cache/wasmtime/`, and `sandbox.status` says so.
#[cfg(feature = "edge")]
#[tokio::test]
async fn a_later_engine_loads_compiled_tools_from_the_disk_cache() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("config.toml"),
        "[sandbox]\nbackend = \"wasmtime\"\ndisk_cache = true\n",
    )
    .unwrap();
    let invoke_and_status = || async {
        let engine = Engine::start(
            load(&LoadOptions {
                state_dir: tmp.path().to_path_buf(),
                ..Default::default()
            }),
            Vec::new(),
        );
        let h = engine.handle();
        let out = h
            .call(
                "tools.invoke",
                json!({ "name": "text_stats", "input": { "text": "a b c" } }),
            )
            .await
            .unwrap();
        assert_eq!(out["output"]["words"], 3);
        h.call("sandbox.status", json!({})).await.unwrap()["cache"]["disk"].clone()
    };
    let first = invoke_and_status().await;
    assert_eq!(
        (&first["hits"], &first["misses"], &first["writes"]),
        (&json!(0), &json!(1), &json!(1))
    );
    assert_eq!(
        first["dir"],
        tmp.path().join("cache/wasmtime").display().to_string()
    );
    let second = invoke_and_status().await;
    assert_eq!((&second["hits"], &second["misses"]), (&json!(1), &json!(0)));
    assert!(second["bytes"].as_u64().unwrap() > 0);
}

/// Off, or on a core build (wasmi has no compiled code to keep): no disk cache, no stats.
#[tokio::test]
async fn no_disk_cache_stats_without_one() {
    let config = if cfg!(feature = "edge") {
        "[sandbox]\ndisk_cache = false\n"
    } else {
        "[sandbox]\ndisk_cache = true\n"
    };
    let (tmp, engine) = engine_with(config);
    let h = engine.handle();
    h.call(
        "tools.invoke",
        json!({ "name": "text_stats", "input": { "text": "a b c" } }),
    )
    .await
    .unwrap();
    let status = h.call("sandbox.status", json!({})).await.unwrap();
    assert!(status["cache"].get("disk").is_none(), "{status}");
    assert!(!tmp.path().join("cache").exists());
}

#[test]
fn errors_reach_the_wire_with_kind_and_fields() {
    let e: EngineError = SandboxError::CapabilityDenied {
        capability: "http".into(),
    }
    .into();
    assert_eq!(e.code, ErrorCode::Denied);
    let details = e.details.unwrap();
    assert_eq!(details["kind"], "capabilityDenied");
    assert_eq!(details["capability"], "http");
    let e: EngineError = SandboxError::Timeout { timeout_ms: 5 }.into();
    assert_eq!(e.code, ErrorCode::Timeout);
    assert_eq!(e.details.unwrap()["timeoutMs"], 5);
}

#[test]
fn an_invalid_module_over_a_static_limit_names_the_limit_in_its_details() {
    let e: EngineError = SandboxError::InvalidModule {
        reason: "too many".into(),
        limit: Some("locals".into()),
    }
    .into();
    assert_eq!(e.details.unwrap()["limit"], "locals");
    let e: EngineError = SandboxError::invalid("malformed").into();
    assert!(e.details.unwrap().get("limit").is_none());
}
