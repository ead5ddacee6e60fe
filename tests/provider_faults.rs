//! The self-healing orchestrator against a real fault server on 127.0.0.1: every turn goes
//! through `chat.send` on a real engine, over HTTP, in all three wire formats.

mod common;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_wire_format_streams_and_recovers_from_a_503() {
    for wire in ["openai", "anthropic", "ollama"] {
        let server = FakeProvider::start().await;
        server.require_key(KEY);
        let providers = match wire {
            "openai" => openai("p", &server, 1),
            "anthropic" => anthropic("p", &server, 1),
            _ => {
                // Ollama sends no key; a proxy in front may want one.
                format!("{}api_key = \"KEYREF\"\n", ollama("p", &server, 1))
            }
        };
        let s = setup("", &providers);
        server.script([
            Fault::Status(503),
            Fault::Reply("hi there from fake".into()),
        ]);
        let mut rx = s.h().subscribe();
        let r = send(&s.h(), "hello")
            .await
            .unwrap_or_else(|e| panic!("{wire}: {e:?}"));
        assert_eq!(r["reply"], "hi there from fake", "{wire}");
        assert_eq!(attempts(&r), vec!["p:overloaded", "p:ok"], "{wire}");
        assert_eq!(r["runtime"]["selfHealing"]["recovered"], true);
        assert_eq!(r["usage"]["inputTokens"], 11, "{wire}");
        let streamed: String = drain(&mut rx)
            .into_iter()
            .filter_map(|e| match e {
                EngineEvent::StreamDelta { text, .. } => Some(text),
                _ => None,
            })
            .collect();
        assert_eq!(
            streamed, "hi there from fake",
            "{wire}: deltas arrive as events"
        );
        // The model got the system prompt and the message, in its own format.
        let last = server.requests().pop().unwrap();
        assert_eq!(last["model"], "fake-model");
        assert!(last.to_string().contains("hello"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() {
    let server = FakeProvider::start().await;
    let s = setup("", &openai("p", &server, 1));
    server.script([Fault::RateLimit(1)]);
    let start = Instant::now();
    let r = send(&s.h(), "hi").await.unwrap();
    assert!(start.elapsed() >= Duration::from_secs(1));
    assert_eq!(attempts(&r), vec!["p:rate_limit", "p:ok"]);
    assert_eq!(r["runtime"]["selfHealing"]["backoffMs"], 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_fires_while_the_primary_is_in_cooldown() {
    let primary = FakeProvider::start().await;
    let backup = FakeProvider::start().await;
    let s = setup(
        "",
        &format!(
            "{}{}",
            openai("primary", &primary, 1),
            anthropic("backup", &backup, 2)
        ),
    );
    primary.script([Fault::Status(500), Fault::Status(500)]);
    backup.script([
        Fault::Reply("backup one".into()),
        Fault::Reply("backup two".into()),
    ]);
    let mut rx = s.h().subscribe();
    let r = send(&s.h(), "first").await.unwrap();
    assert_eq!(r["reply"], "backup one");
    assert_eq!(
        attempts(&r),
        vec!["primary:server", "primary:server", "backup:ok"]
    );
    assert!(
        drain(&mut rx).iter().any(|e| matches!(e,
            EngineEvent::ProviderState { provider, state, .. } if provider == "primary" && state == "cooldown")),
        "the cooldown is an event"
    );
    let listed = s.h().call("providers.list", Value::Null).await.unwrap();
    assert_eq!(listed["providers"][0]["id"], "primary");
    assert_eq!(listed["providers"][0]["state"], "cooldown");
    assert_eq!(listed["providers"][0]["cooldownReason"], "server");

    let calls = primary.chat_calls();
    let start = Instant::now();
    let r = send(&s.h(), "second").await.unwrap();
    assert_eq!(r["reply"], "backup two");
    assert_eq!(attempts(&r), vec!["primary:cooldown", "backup:ok"]);
    assert_eq!(
        primary.chat_calls(),
        calls,
        "no request to a provider in cooldown"
    );
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );

    // A successful probe ends the cooldown.
    let probe = s
        .h()
        .call("providers.probe", json!({"id": "primary"}))
        .await
        .unwrap();
    assert_eq!(probe["probes"][0]["ok"], true);
    let r = send(&s.h(), "third").await.unwrap();
    assert_eq!(attempts(&r), vec!["primary:ok"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_turn_outlives_its_deadline() {
    let primary = FakeProvider::start().await;
    let backup = FakeProvider::start().await;
    let s = setup(
        "deadline_ms = 1200\nrequest_timeout_ms = 60000\nidle_timeout_ms = 60000\nfirst_byte_timeout_ms = 60000\nfallback = []\n",
        &format!(
            "{}{}",
            openai("primary", &primary, 1),
            ollama("backup", &backup, 2)
        ),
    );
    primary.script([Fault::Endless]);
    backup.script([Fault::Silent]);
    let start = Instant::now();
    let e = send(&s.h(), "hi").await.unwrap_err();
    let took = start.elapsed();
    assert!(took < Duration::from_millis(1600), "{took:?}");
    assert_eq!(e.code, ErrorCode::Timeout);
    assert_eq!(e.details.as_ref().unwrap()["class"], "timeout.total");
    // The endless stream gets half the turn while the backup remains; the backup, last in
    // the chain, gets the rest.
    assert_eq!(
        error_attempts(&e),
        vec!["primary:timeout.total", "backup:timeout.total"]
    );
    assert!(
        e.message.contains("primary (timeout.total") && e.message.contains("backup (timeout.total"),
        "{}",
        e.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_and_a_429_do_not_lose_the_turn_while_a_third_provider_is_healthy() {
    let a = FakeProvider::start().await;
    let b = FakeProvider::start().await;
    let c = FakeProvider::start().await;
    // The core profile's budget: three attempts, one retry per provider.
    let s = setup(
        "max_attempts = 3\nfallback = []\n",
        &format!(
            "{}{}{}",
            openai("a", &a, 1),
            openai("b", &b, 2),
            openai("c", &c, 3)
        ),
    );
    a.script([Fault::Status(503), Fault::Status(503)]);
    b.script([Fault::RateLimit(1)]);
    c.script([Fault::Reply("from the third".into())]);
    let start = Instant::now();
    let r = send(&s.h(), "hi").await.unwrap();
    assert_eq!(r["reply"], "from the third");
    assert_eq!(
        attempts(&r),
        vec!["a:overloaded", "a:overloaded", "b:rate_limit", "c:ok"]
    );
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "no Retry-After wait on b"
    );

    // Every provider failing: the error names each one and why, and does not tell the user
    // to add a provider.
    a.script([Fault::Status(503), Fault::Status(503)]);
    b.script([Fault::Status(500), Fault::Status(500)]);
    c.script([Fault::AuthFailure]);
    s.h().call("providers.reset", Value::Null).await.unwrap();
    let e = send(&s.h(), "again").await.unwrap_err();
    for part in [
        "a (overloaded x2",
        "b (server",
        "c (auth",
        "every provider tried failed",
    ] {
        assert!(e.message.contains(part), "{part}: {}", e.message);
    }
    assert!(!e.message.contains("add "), "{}", e.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_stream_does_not_eat_the_turn_of_a_healthy_provider() {
    let primary = FakeProvider::start().await;
    let backup = FakeProvider::start().await;
    let s = setup(
        "deadline_ms = 2000\nrequest_timeout_ms = 60000\nattempt_share = 0.5\nfallback = []\n",
        &format!(
            "{}{}",
            openai("primary", &primary, 1),
            openai("backup", &backup, 2)
        ),
    );
    primary.script([Fault::Endless]);
    let start = Instant::now();
    let r = send(&s.h(), "hi").await.unwrap();
    let took = start.elapsed();
    assert_eq!(attempts(&r), vec!["primary:timeout.total", "backup:ok"]);
    let cut = r["runtime"]["selfHealing"]["attempts"][0]["latencyMs"]
        .as_u64()
        .unwrap();
    assert!((950..1300).contains(&cut), "half of 2000 ms: {cut}");
    assert!(took < Duration::from_millis(1800), "{took:?}");
    // It cooled down: the next turn does not call it.
    let calls = primary.chat_calls();
    let r = send(&s.h(), "again").await.unwrap();
    assert_eq!(attempts(&r), vec!["primary:cooldown", "backup:ok"]);
    assert_eq!(primary.chat_calls(), calls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_missing_model_providers_are_parked_until_a_probe_or_reset() {
    let bad = FakeProvider::start().await;
    let missing = FakeProvider::start().await;
    let good = FakeProvider::start().await;
    let s = setup(
        "park_after = 3\nfallback = []\n",
        &format!(
            "{}{}{}",
            openai("bad", &bad, 1),
            openai("missing", &missing, 2),
            openai("good", &good, 3)
        ),
    );
    bad.script((0..10).map(|_| Fault::Malformed));
    missing.script((0..10).map(|_| Fault::WrongModel));
    let mut rx = s.h().subscribe();
    for _ in 0..3 {
        let r = send(&s.h(), "hi").await.unwrap();
        assert_eq!(
            attempts(&r),
            vec!["bad:format", "missing:model_not_found", "good:ok"]
        );
    }
    let r = send(&s.h(), "hi").await.unwrap();
    assert_eq!(
        attempts(&r),
        vec!["bad:parked", "missing:parked", "good:ok"]
    );
    assert_eq!((bad.chat_calls(), missing.chat_calls()), (3, 3));
    assert!(
        drain(&mut rx).iter().any(|e| matches!(e,
            EngineEvent::ProviderState { provider, state, .. } if provider == "bad" && state == "parked")),
        "parking is an event"
    );
    let listed = s.h().call("providers.list", Value::Null).await.unwrap();
    for (i, class) in [(0, "format"), (1, "model_not_found")] {
        let p = &listed["providers"][i];
        assert_eq!(p["state"], "parked", "{p}");
        let reason = p["reason"].as_str().unwrap();
        assert!(
            reason.contains(class) && reason.contains("3 times in a row"),
            "{reason}"
        );
        assert!(p["parked"]["fake-model"].is_string(), "{p}");
    }
    // A successful probe unparks; so does a reset.
    s.h()
        .call("providers.probe", json!({"id": "bad"}))
        .await
        .unwrap();
    s.h()
        .call("providers.reset", json!({"id": "missing"}))
        .await
        .unwrap();
    let r = send(&s.h(), "hi").await.unwrap();
    assert_eq!(
        attempts(&r),
        vec!["bad:format", "missing:model_not_found", "good:ok"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_answer_is_marked_degraded_and_require_model_refuses_it() {
    let server = FakeProvider::start().await;
    let s = setup("", &openai("p", &server, 1));
    server.script([Fault::AuthFailure]);
    let r = send(&s.h(), "hi").await.unwrap();
    assert_eq!(attempts(&r), vec!["p:auth", "offline:ok"]);
    let heal = &r["runtime"]["selfHealing"];
    assert_eq!(heal["degraded"], true, "{heal}");
    assert_eq!(heal["degradedReason"], "no model answered (p auth)");
    // A model's answer is not degraded.
    s.h().call("providers.reset", Value::Null).await.unwrap();
    let r = send(&s.h(), "hi").await.unwrap();
    assert_eq!(r["runtime"]["selfHealing"]["degraded"], false);

    server.script([Fault::AuthFailure]);
    s.h().call("providers.reset", Value::Null).await.unwrap();
    let e = s
        .h()
        .call(
            "chat.send",
            json!({"session": "t", "message": "hi", "requireModel": true}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Unavailable, "{e:?}");
    assert_eq!(error_attempts(&e), vec!["p:auth"], "offline not asked");
    assert!(e.message.contains("requireModel"), "{}", e.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_first_byte_and_silent_streams_time_out_and_fall_back() {
    let primary = FakeProvider::start().await;
    let backup = FakeProvider::start().await;
    let s = setup(
        "first_byte_timeout_ms = 300\nidle_timeout_ms = 300\nfallback_after_retries = 0\n",
        &format!(
            "{}{}",
            openai("primary", &primary, 1),
            openai("backup", &backup, 2)
        ),
    );
    primary.script([Fault::SlowFirstByte(Duration::from_secs(5))]);
    let start = Instant::now();
    let r = send(&s.h(), "hi").await.unwrap();
    assert_eq!(
        attempts(&r),
        vec!["primary:timeout.first_byte", "backup:ok"]
    );
    assert!(start.elapsed() < Duration::from_secs(2));
    s.h().call("providers.reset", Value::Null).await.unwrap();
    primary.script([Fault::Silent]);
    let r = send(&s.h(), "hi").await.unwrap();
    assert_eq!(
        attempts(&r),
        vec!["primary:timeout.first_byte", "backup:ok"]
    );
    // Text, then nothing: the idle timeout, and the partial text is dropped.
    s.h().call("providers.reset", Value::Null).await.unwrap();
    primary.script([Fault::Stall]);
    let start = Instant::now();
    let r = send(&s.h(), "hi").await.unwrap();
    assert_eq!(attempts(&r), vec!["primary:timeout.idle", "backup:ok"]);
    assert_eq!(r["reply"], "hello from fake");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_stream_is_retried_and_the_partial_reply_discarded() {
    for wire in ["openai", "anthropic", "ollama"] {
        let server = FakeProvider::start().await;
        let providers = match wire {
            "openai" => openai("p", &server, 1),
            "anthropic" => anthropic("p", &server, 1),
            _ => ollama("p", &server, 1),
        };
        let s = setup("", &providers);
        server.script([Fault::Cut, Fault::Reply("whole answer".into())]);
        let mut rx = s.h().subscribe();
        let r = send(&s.h(), "hi").await.unwrap();
        assert_eq!(r["reply"], "whole answer", "{wire}");
        assert_eq!(attempts(&r), vec!["p:stream_interrupted", "p:ok"], "{wire}");
        assert!(
            drain(&mut rx)
                .iter()
                .any(|e| matches!(e, EngineEvent::StreamRestart { .. })),
            "{wire}: faces are told to drop the partial text"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_wrong_model_and_auth_fall_back_without_retry() {
    for (fault, class) in [
        (Fault::Malformed, "format"),
        (Fault::WrongModel, "model_not_found"),
        (Fault::AuthFailure, "auth"),
    ] {
        let primary = FakeProvider::start().await;
        let backup = FakeProvider::start().await;
        let s = setup(
            "",
            &format!(
                "{}{}",
                openai("primary", &primary, 1),
                ollama("backup", &backup, 2)
            ),
        );
        primary.script([fault]);
        let r = send(&s.h(), "hi").await.unwrap();
        assert_eq!(
            attempts(&r),
            vec![format!("primary:{class}"), "backup:ok".into()]
        );
        assert_eq!(
            primary.chat_calls(),
            1,
            "{class}: never retried on the same provider"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_overflow_is_not_retried_blindly() {
    let primary = FakeProvider::start().await;
    let backup = FakeProvider::start().await;
    let s = setup(
        "",
        &format!(
            "{}{}",
            openai("primary", &primary, 1),
            openai("backup", &backup, 2)
        ),
    );
    // A fresh session has nothing to drop: the turn stops and says why.
    primary.script([Fault::ContextOverflow]);
    let e = send(&s.h(), "hi").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidRequest);
    assert!(e.message.contains("/new"), "{}", e.message);
    assert_eq!((primary.chat_calls(), backup.chat_calls()), (1, 0));
    // With history, the older half is dropped and the shorter request tried once.
    for i in 0..3 {
        send(&s.h(), &format!("filler {i}")).await.unwrap();
    }
    primary.script([Fault::ContextOverflow]);
    let before = primary.chat_calls();
    let r = send(&s.h(), "after overflow").await.unwrap();
    assert_eq!(attempts(&r), vec!["primary:context_overflow", "primary:ok"]);
    let reqs = primary.requests();
    let (first, second) = (&reqs[before], &reqs[before + 1]);
    assert!(
        second["messages"].as_array().unwrap().len() < first["messages"].as_array().unwrap().len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_never_reach_results_events_or_errors() {
    let server = FakeProvider::start().await;
    server.require_key(KEY);
    let s = setup("", &openai("p", &server, 1));
    let mut rx = s.h().subscribe();
    let ok = send(&s.h(), "hi").await.unwrap();
    server.script([Fault::AuthFailure]);
    let fallback = send(&s.h(), "hi").await.unwrap();
    let listed = s.h().call("providers.list", Value::Null).await.unwrap();
    let history = s
        .h()
        .call("sessions.export", json!({"id": "t"}))
        .await
        .unwrap();
    let events: Vec<String> = drain(&mut rx)
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    for text in [
        ok.to_string(),
        fallback.to_string(),
        listed.to_string(),
        history.to_string(),
        events.join("\n"),
    ] {
        assert!(!text.contains("SECRET"), "{text}");
    }
    assert!(
        listed.to_string().contains("file:"),
        "the reference is shown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_are_repaired_and_their_errors_go_back_to_the_model() {
    let server = FakeProvider::start().await;
    let s = setup("", &openai("p", &server, 1));
    // Unclosed JSON to a built-in tool: repaired, then run in the sandbox. An unknown tool:
    // the error goes back to the model.
    server.script([
        Fault::ToolCall("text_stats".into(), "{\"text\": \"hi there\"".into()),
        Fault::ToolCall("echo".into(), "{}".into()),
        Fault::Reply("done with the tools".into()),
    ]);
    let mut rx = s.h().subscribe();
    let r = send(&s.h(), "count the words").await.unwrap();
    assert_eq!(r["reply"], "done with the tools");
    let stats = &r["toolCalls"][0];
    assert_eq!(stats["name"], "text_stats");
    assert_eq!(stats["arguments"], "{\"text\":\"hi there\"}");
    assert!(stats["repaired"].as_str().unwrap().contains("unclosed"));
    assert_eq!(stats["ok"], true, "{stats}");
    assert!(
        stats["output"].as_str().unwrap().contains("\"words\":2"),
        "{stats}"
    );
    let unknown = &r["toolCalls"][1];
    assert_eq!(unknown["name"], "echo");
    assert_eq!(unknown["ok"], false);

    let requests = server.requests();
    let second = &requests[requests.len() - 2];
    let messages = second["messages"].as_array().unwrap();
    let tool = messages.iter().find(|m| m["role"] == "tool").unwrap();
    assert_eq!(tool["tool_call_id"], "call_1");
    assert!(tool["content"].as_str().unwrap().contains("\"words\":2"));
    let assistant = messages.iter().find(|m| m["role"] == "assistant").unwrap();
    assert_eq!(
        assistant["tool_calls"][0]["function"]["arguments"],
        "{\"text\":\"hi there\"}"
    );
    let last = server.requests().pop().unwrap();
    let tool_results: Vec<&Value> = last["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .collect();
    assert!(
        tool_results[1]["content"]
            .as_str()
            .unwrap()
            .starts_with("error:"),
        "{last}"
    );
    let streamed: String = drain(&mut rx)
        .into_iter()
        .filter_map(|e| match e {
            EngineEvent::StreamDelta { text, .. } => Some(text),
            _ => None,
        })
        .collect();
    assert!(
        !streamed.contains("text_stats") && !streamed.contains("echo"),
        "a tool call is never reply text"
    );
}

/// A reply that stops at the token limit may have cut a tool call's arguments short: closing
/// the braces would run the tool on shortened values. The call is never run, and the model
/// is told why, in every wire format.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_call_cut_at_the_token_limit_never_runs() {
    for wire in ["openai", "anthropic", "ollama"] {
        let server = FakeProvider::start().await;
        let (providers, args) = match wire {
            "openai" => (openai("p", &server, 1), "{\"text\": \"hi th"),
            "anthropic" => (anthropic("p", &server, 1), "{\"text\": \"hi th"),
            // Ollama sends arguments parsed, so a cut call still arrives whole-looking.
            _ => (ollama("p", &server, 1), "{\"text\": \"hi th\"}"),
        };
        let s = setup("", &providers);
        server.script([
            Fault::CutToolCall("text_stats".into(), args.into()),
            Fault::Reply("said it shorter".into()),
        ]);
        let mut rx = s.h().subscribe();
        let r = send(&s.h(), "count the words").await.unwrap();
        assert_eq!(r["reply"], "said it shorter", "{wire}: {r}");
        let call = &r["toolCalls"][0];
        assert_eq!(call["name"], "text_stats", "{wire}: {call}");
        assert_eq!(call["ok"], false, "{wire}: {call}");
        assert!(call.get("repaired").is_none(), "{wire}: {call}");
        let output = call["output"].as_str().unwrap();
        assert!(output.contains("token limit"), "{wire}: {output}");
        assert!(!output.contains("words"), "{wire}: the tool ran: {output}");
        let ran = drain(&mut rx).into_iter().any(
            |e| matches!(e, EngineEvent::TurnToolCall { ref status, .. } if status == "running"),
        );
        assert!(!ran, "{wire}: the cut call was run");
        let requests = server.requests();
        assert_eq!(requests.len(), 2, "{wire}");
        let told = requests[1].to_string();
        assert!(told.contains("token limit"), "{wire}: {told}");
        assert!(!told.contains("\\\"words\\\""), "{wire}: {told}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tool_loop_is_bounded() {
    let server = FakeProvider::start().await;
    let s = setup("", &format!("{}\n", openai("p", &server, 1)));
    let rounds = s.h().snapshot().config().chat.max_tool_rounds as usize;
    server.script((0..rounds + 5).map(|_| Fault::ToolCall("echo".into(), "{}".into())));
    let r = send(&s.h(), "loop forever").await.unwrap();
    assert_eq!(r["toolRoundsExhausted"], true);
    assert_eq!(r["toolCalls"].as_array().unwrap().len(), rounds);
    let last = server.requests().pop().unwrap();
    assert!(
        last.get("tools").is_none(),
        "the last round offers no tools"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_stops_a_hanging_turn_promptly() {
    let server = FakeProvider::start().await;
    let s = setup(
        "first_byte_timeout_ms = 60000\nrequest_timeout_ms = 60000\ndeadline_ms = 60000\n",
        &openai("p", &server, 1),
    );
    server.script([Fault::Silent]);
    let h = s.h();
    let turn = tokio::spawn(async move { send(&h, "hi").await });
    // Wait until the turn is running and its request has reached the server.
    let waiting = Instant::now();
    while server.chat_calls() == 0 && waiting.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let start = Instant::now();
    let aborted = s
        .h()
        .call("chat.abort", json!({"session": "t"}))
        .await
        .unwrap();
    assert_eq!(aborted["aborted"], 1);
    let e = tokio::time::timeout(Duration::from_secs(2), turn)
        .await
        .expect("the turn ended")
        .unwrap()
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_millis(500));
    assert_eq!(e.code, ErrorCode::Cancelled);
    assert_eq!(error_attempts(&e), vec!["p:cancelled"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_persist_and_are_restored_on_start() {
    let server = FakeProvider::start().await;
    let s = setup("", &openai("p", &server, 1));
    send(&s.h(), "remember me").await.unwrap();
    let dir = s.h().snapshot().loaded.paths.state_dir.clone();
    let again = engine_in(&dir);
    let listed = again
        .handle()
        .call("sessions.list", Value::Null)
        .await
        .unwrap();
    assert_eq!(listed["sessions"][0]["id"], "t");
    assert_eq!(listed["sessions"][0]["messages"], 2);
    // The next turn carries the restored history to the model.
    again
        .handle()
        .call("chat.send", json!({"session": "t", "message": "and now?"}))
        .await
        .unwrap();
    let last = server.requests().pop().unwrap();
    assert!(last.to_string().contains("remember me"));
    let history = again
        .handle()
        .call("sessions.history", json!({"id": "t"}))
        .await
        .unwrap();
    let turns: Vec<&Value> = history["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["type"] == "turn")
        .collect();
    assert_eq!(turns.len(), 2);
    assert_eq!(
        turns[0]["record"]["selfHealing"]["attempts"][0]["provider"],
        "p"
    );
    let recent = again
        .handle()
        .call("telemetry.recent", Value::Null)
        .await
        .unwrap();
    assert_eq!(
        recent["turns"].as_array().unwrap().len(),
        1,
        "history is per run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_default_chain_is_ollama_then_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = engine_in(tmp.path());
    let listed = engine
        .handle()
        .call("providers.list", Value::Null)
        .await
        .unwrap();
    let ids: Vec<&str> = listed["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["ollama", "offline"]);
    assert_eq!(listed["providers"][1]["model"], "offline (no model)");

    // Ollama not running (a closed port here): the offline provider answers.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    std::fs::write(
        tmp.path().join("config.toml"),
        format!(
            "[providers.ollama]\nbase_url = \"http://127.0.0.1:{port}\"\n[chat]\nrecall_hits = 0\n"
        ),
    )
    .unwrap();
    let engine = engine_in(tmp.path());
    let r = engine
        .handle()
        .call("chat.send", json!({"message": "what is up"}))
        .await
        .unwrap();
    assert!(
        r["reply"]
            .as_str()
            .unwrap()
            .starts_with("offline (no model)"),
        "{r}"
    );
    assert_eq!(r["model"], "offline (no model)");
    // A refused connection is a network failure: retried once, then the next provider.
    assert_eq!(
        attempts(&r),
        vec!["ollama:network", "ollama:network", "offline:ok"]
    );

    // Ollama running: it answers, with the first model it has pulled.
    let server = FakeProvider::start().await;
    std::fs::write(
        tmp.path().join("config.toml"),
        format!(
            "[providers.ollama]\nbase_url = \"{}\"\n[chat]\nrecall_hits = 0\n",
            server.root_url()
        ),
    )
    .unwrap();
    let engine = engine_in(tmp.path());
    let r = engine
        .handle()
        .call("chat.send", json!({"message": "hi"}))
        .await
        .unwrap();
    assert_eq!(r["provider"], "ollama");
    assert_eq!(server.requests()[0]["model"], "fake-model");
    let models = engine
        .handle()
        .call("models.list", json!({"provider": "ollama"}))
        .await
        .unwrap();
    assert_eq!(
        models["providers"][0]["models"],
        json!(["fake-model", "fake-large"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_answers_from_memory_with_citations() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("config.toml"),
        "[self_heal]\nfallback = [\"offline\"]\n",
    )
    .unwrap();
    let engine = engine_in(tmp.path());
    let h = engine.handle();
    h.call(
        "memory.add",
        json!({"text": "The quartermaster keeps the spare lanterns in hold three."}),
    )
    .await
    .unwrap();
    let r = h
        .call(
            "chat.send",
            json!({"message": "where are the spare lanterns"}),
        )
        .await
        .unwrap();
    let reply = r["reply"].as_str().unwrap();
    assert!(reply.starts_with("offline (no model)"), "{reply}");
    assert!(
        reply.contains("[1]") && reply.contains("hold three"),
        "{reply}"
    );
    assert!(
        !r["citations"].as_array().unwrap().is_empty(),
        "recall adds citations"
    );
    assert!(
        r["citations"][0]["snippet"]
            .as_str()
            .unwrap()
            .contains("lanterns")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_in_a_model_reply_is_redacted_before_it_is_stored_or_returned() {
    let server = FakeProvider::start().await;
    let s = setup("", &openai("p", &server, 1));
    let token = format!("ghp_{}", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8");
    server.script([Fault::Reply(format!("here is the token: {token} enjoy"))]);
    let mut rx = s.h().subscribe();
    let r = send(&s.h(), "what is my token?").await.unwrap();
    let reply = r["reply"].as_str().unwrap();
    assert!(!reply.contains(&token), "{reply}");
    assert!(reply.contains("here is the token"), "{reply}");
    let rules: Vec<String> = serde_json::from_value(r["safety"]["rules"].clone()).unwrap();
    assert!(rules.iter().any(|id| id.contains("github")), "{rules:?}");
    let decision = drain(&mut rx).into_iter().find_map(|e| match e {
        EngineEvent::SafetyDecision {
            direction, rules, ..
        } => Some((direction, rules)),
        _ => None,
    });
    let (direction, event_rules) = decision.expect("a safety decision event");
    assert_eq!(direction, "modelReply");
    assert_eq!(event_rules, rules);
    // What the session keeps is the redacted reply, too.
    let history = s
        .h()
        .call("sessions.history", serde_json::json!({"id": r["session"]}))
        .await
        .unwrap();
    assert!(!history.to_string().contains(&token));
}

fn chain(h: &EngineHandle) -> Vec<String> {
    openclaw_rs::engine::chat::list_providers(h)
        .providers
        .into_iter()
        .map(|p| p.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reordered_chain_is_saved_and_a_restart_keeps_it_with_the_comments() {
    let first = FakeProvider::start().await;
    let second = FakeProvider::start().await;
    let s = setup(
        "",
        &format!(
            "# my providers, hand-written\n{}\n# the backup one\n{}",
            openai("first", &first, 1),
            ollama("second", &second, 2)
        ),
    );
    let file = s._tmp.path().join("config.toml");
    let before = std::fs::read_to_string(&file).unwrap();
    assert_eq!(chain(&s.h()), vec!["first", "second", "offline"]);

    let r = s
        .h()
        .call("providers.reorder", json!({"order": ["second", "offline"]}))
        .await
        .unwrap();
    assert_eq!(r["savedTo"], file.display().to_string(), "{r}");
    assert!(r.get("note").is_none(), "{r}");
    let ids: Vec<&str> = r["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["second", "offline", "first"]);

    // Only the one key changed: comments, keys and layout of the rest are as they were.
    let after = std::fs::read_to_string(&file).unwrap();
    assert!(after.contains("# my providers, hand-written\n"), "{after}");
    assert!(after.contains("# the backup one\n"), "{after}");
    assert!(
        after.contains("chain_order = [\"second\", \"offline\"]"),
        "{after}"
    );
    let removed: Vec<&str> = before.lines().filter(|l| !after.contains(l)).collect();
    assert!(removed.is_empty(), "lines lost: {removed:?}");
    assert_eq!(
        std::fs::read_to_string(openclaw_rs::findings::fix::backup_path(&file, 1)).unwrap(),
        before,
        "the file before the change is in the backup ring"
    );

    // A fresh engine on the same home: the saved order, and turns follow it.
    let fresh = engine_in(s._tmp.path());
    assert!(fresh.handle().snapshot().diagnostics.is_empty());
    assert_eq!(chain(&fresh.handle()), vec!["second", "offline", "first"]);
    second.script([Fault::Reply("from second".into())]);
    let r = send(&fresh.handle(), "who answers?").await.unwrap();
    assert_eq!(r["provider"], "second");
    assert_eq!(first.chat_calls(), 0);

    // An empty order goes back to priority order, saved too.
    fresh
        .handle()
        .call("providers.reorder", json!({"order": []}))
        .await
        .unwrap();
    assert_eq!(
        chain(&engine_in(s._tmp.path()).handle()),
        vec!["first", "second", "offline"]
    );
    assert_eq!(
        std::fs::read_to_string(openclaw_rs::findings::fix::backup_path(&file, 1)).unwrap(),
        before,
        "moving providers again does not push older backups out of the ring"
    );
    // Unknown ids change nothing, on disk or in memory.
    let text = std::fs::read_to_string(&file).unwrap();
    let e = fresh
        .handle()
        .call("providers.reorder", json!({"order": ["nope"]}))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorder_that_cannot_be_saved_holds_for_the_run_and_says_why() {
    let first = FakeProvider::start().await;
    let s = setup("", &openai("first", &first, 1));
    // A config file that is a link: the fix engine's rules refuse to write through it.
    let file = s._tmp.path().join("config.toml");
    let real = s._tmp.path().join("real.toml");
    std::fs::rename(&file, &real).unwrap();
    std::os::unix::fs::symlink(&real, &file).unwrap();
    let before = std::fs::read_to_string(&real).unwrap();
    let r = s
        .h()
        .call("providers.reorder", json!({"order": ["offline"]}))
        .await
        .unwrap();
    assert!(r.get("savedTo").is_none(), "{r}");
    let note = r["note"].as_str().unwrap();
    assert!(
        note.contains("this run only") && note.contains("symbolic link"),
        "{note}"
    );
    assert!(note.contains("chain_order = [\"offline\"]"), "{note}");
    assert_eq!(chain(&s.h()), vec!["offline", "first"]);
    assert_eq!(std::fs::read_to_string(&real).unwrap(), before);
    // `persist: false` is this run only by request, and leaves the file alone.
    let r = s
        .h()
        .call(
            "providers.reorder",
            json!({"order": ["first"], "persist": false}),
        )
        .await
        .unwrap();
    assert!(r.get("savedTo").is_none(), "{r}");
    assert_eq!(chain(&s.h()), vec!["first", "offline"]);
    assert_eq!(std::fs::read_to_string(&real).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_as_an_http_date_is_honoured_capped_and_past_means_now() {
    let server = FakeProvider::start().await;
    // retry_after_max_ms is 2000 here.
    let s = setup("", &openai("p", &server, 1));
    let date = |d: std::time::SystemTime| httpdate::fmt_http_date(d);
    let now = std::time::SystemTime::now;

    // Two seconds ahead; whole seconds on the wire, so the wait is between 1 and 2 s.
    server.script([Fault::RateLimitHeader(date(now() + Duration::from_secs(2)))]);
    let start = Instant::now();
    let r = send(&s.h(), "soon").await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(900), "{r}");
    assert_eq!(attempts(&r), vec!["p:rate_limit", "p:ok"]);
    let waited = r["runtime"]["selfHealing"]["backoffMs"].as_u64().unwrap();
    assert!((900..=2000).contains(&waited), "{waited}");

    // A date in the past: retried at once.
    server.script([Fault::RateLimitHeader(
        "Wed, 21 Oct 2015 07:28:00 GMT".into(),
    )]);
    let start = Instant::now();
    let r = send(&s.h(), "past").await.unwrap();
    assert!(start.elapsed() < Duration::from_millis(900), "{r}");
    assert_eq!(attempts(&r), vec!["p:rate_limit", "p:ok"]);
    assert_eq!(r["runtime"]["selfHealing"]["backoffMs"], 0);

    // An hour ahead is past the cap: no waiting, a cooldown and the fallback at once.
    server.script([Fault::RateLimitHeader(date(
        now() + Duration::from_secs(3600),
    ))]);
    let start = Instant::now();
    let r = send(&s.h(), "later").await.unwrap();
    assert!(start.elapsed() < Duration::from_millis(900), "{r}");
    assert_eq!(attempts(&r), vec!["p:rate_limit", "offline:ok"]);
    let list = openclaw_rs::engine::chat::list_providers(&s.h());
    assert_eq!(list.providers[0].state, "cooldown");
}
