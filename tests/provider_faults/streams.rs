//! Streams that never start, stall, never end or are cut: timeouts, the turn deadline, and
//! abort.

use super::*;

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
