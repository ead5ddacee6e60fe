//! The self-healing orchestrator against a real fault server on 127.0.0.1: every turn goes
//! through `chat.send` on a real engine, over HTTP, in all three wire formats. The engine
//! setup and helpers all modules share are here; each module is one family of faults.

#[path = "../common/mod.rs"]
mod common;

mod chain;
mod permanent;
mod secrets;
mod streams;
mod tools;
mod transient;

use std::path::Path;
use std::time::{Duration, Instant};

use common::fake_provider::{FakeProvider, Fault};
use openclaw_rs::config::{LoadOptions, load};
use openclaw_rs::engine::{Engine, EngineEvent, EngineHandle, ErrorCode};
use serde_json::{Value, json};

const KEY: &str = "sk-fake-SECRET-0123456789";

struct Setup {
    _tmp: tempfile::TempDir,
    engine: Engine,
}

impl Setup {
    fn h(&self) -> EngineHandle {
        self.engine.handle()
    }
}

/// The core profile on both builds: the assertions name core's policy (the edge profile
/// retries more), and core's `hash` embedder keeps the offline provider's memory instant.
fn engine_in(dir: &Path) -> Engine {
    Engine::start(
        load(&LoadOptions {
            state_dir: dir.to_path_buf(),
            profile: Some("core".into()),
            ..Default::default()
        }),
        Vec::new(),
    )
}

/// An engine whose config is `heal` (a `[self_heal]` body) plus `providers` (TOML).
fn setup(heal: &str, providers: &str) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("key"), KEY).unwrap();
    let key_ref = format!("file:{}", tmp.path().join("key").display());
    // The test's own `heal` lines win over these defaults.
    let defaults = "max_attempts = 4\nbackoff_ms = 10\nbackoff_max_ms = 40\n\
         fallback_after_retries = 1\ndeadline_ms = 8000\nfirst_byte_timeout_ms = 1000\n\
         idle_timeout_ms = 1000\nrequest_timeout_ms = 4000\nretry_after_max_ms = 2000\n\
         fallback = [\"offline\"]";
    let kept: Vec<&str> = defaults
        .lines()
        .filter(|l| {
            let key = l.split(" =").next().unwrap_or("");
            !heal.lines().any(|h| h.starts_with(&format!("{key} =")))
        })
        .collect();
    let config = format!(
        "[self_heal]\n{}\n{heal}\n[chat]\nrecall_hits = 0\n\n{}",
        kept.join("\n"),
        providers.replace("KEYREF", &key_ref)
    );
    std::fs::write(tmp.path().join("config.toml"), config).unwrap();
    let engine = engine_in(tmp.path());
    let diags = &engine.handle().snapshot().diagnostics;
    assert!(diags.is_empty(), "{diags:?}");
    Setup { _tmp: tmp, engine }
}

fn openai(id: &str, server: &FakeProvider, priority: i32) -> String {
    format!(
        "[providers.{id}]\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"KEYREF\"\nmodel = \"fake-model\"\npriority = {priority}\n",
        server.openai_url()
    )
}

fn anthropic(id: &str, server: &FakeProvider, priority: i32) -> String {
    format!(
        "[providers.{id}]\nkind = \"anthropic\"\nbase_url = \"{}\"\napi_key = \"KEYREF\"\nmodel = \"fake-model\"\npriority = {priority}\n",
        server.root_url()
    )
}

fn ollama(id: &str, server: &FakeProvider, priority: i32) -> String {
    format!(
        "[providers.{id}]\nkind = \"ollama\"\nbase_url = \"{}\"\nmodel = \"fake-model\"\npriority = {priority}\n",
        server.root_url()
    )
}

async fn send(h: &EngineHandle, message: &str) -> Result<Value, openclaw_rs::engine::EngineError> {
    h.call("chat.send", json!({ "session": "t", "message": message }))
        .await
}

fn attempts(result: &Value) -> Vec<String> {
    result["runtime"]["selfHealing"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{}:{}",
                a["provider"].as_str().unwrap(),
                a["reason"].as_str().or(a["status"].as_str()).unwrap()
            )
        })
        .collect()
}

fn error_attempts(e: &openclaw_rs::engine::EngineError) -> Vec<String> {
    attempts(e.details.as_ref().unwrap())
}

fn drain(rx: &mut tokio::sync::broadcast::Receiver<EngineEvent>) -> Vec<EngineEvent> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        out.push(e);
    }
    out
}
