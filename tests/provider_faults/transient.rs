//! Errors a retry can fix (503, 429, Retry-After): retried, then the next provider while the
//! primary cools down.

use super::*;

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
