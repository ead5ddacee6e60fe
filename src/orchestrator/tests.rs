//! The self-heal policy against scripted in-process providers, on paused time: fast, and
//! deterministic to the millisecond.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::time::Instant;

use super::*;
use crate::config::{ProviderKind, SelfHealConfig};
use crate::providers::{
    BoxFuture, ChatRequest, ChatStream, FailureClass, FinishReason, Provider, ProviderError,
    StreamEvent, TimeoutKind, Timeouts,
};

#[derive(Clone)]
enum Step {
    Reply(&'static str),
    Fail(FailureClass, Option<Duration>),
    /// Answers after this long.
    Slow(Duration, &'static str),
    /// Some text, then the stream breaks.
    Cut(&'static str),
    /// Headers, then nothing ever.
    Hang,
    /// Some text, then nothing ever.
    Stall(&'static str),
    /// Text every 100 ms, forever.
    Endless,
}

struct Scripted {
    id: String,
    steps: Mutex<VecDeque<Step>>,
    calls: Mutex<u32>,
}

impl Scripted {
    fn new(id: &str, steps: Vec<Step>) -> Arc<Self> {
        Arc::new(Self {
            id: id.into(),
            steps: Mutex::new(steps.into()),
            calls: Mutex::new(0),
        })
    }

    fn calls(&self) -> u32 {
        *self.calls.lock().unwrap()
    }
}

struct Forever;

impl ChatStream for Forever {
    fn next_event(&mut self) -> BoxFuture<'_, Result<Option<StreamEvent>, ProviderError>> {
        Box::pin(async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(Some(StreamEvent::Text("more ".into())))
        })
    }
}

struct Events(VecDeque<Result<StreamEvent, ProviderError>>, bool);

impl ChatStream for Events {
    fn next_event(&mut self) -> BoxFuture<'_, Result<Option<StreamEvent>, ProviderError>> {
        Box::pin(async move {
            if self.1 && self.0.is_empty() {
                std::future::pending::<()>().await;
            }
            self.0.pop_front().transpose()
        })
    }
}

fn text_events(text: &str) -> VecDeque<Result<StreamEvent, ProviderError>> {
    VecDeque::from([
        Ok(StreamEvent::Text(text.to_string())),
        Ok(StreamEvent::Finish(FinishReason::Stop)),
    ])
}

impl Provider for Scripted {
    fn id(&self) -> &str {
        &self.id
    }
    fn kind(&self) -> ProviderKind {
        ProviderKind::Openai
    }
    fn default_model(&self) -> String {
        format!("{}-model", self.id)
    }
    fn chat<'a>(
        &'a self,
        _: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Box<dyn ChatStream>, ProviderError>> {
        Box::pin(async move {
            *self.calls.lock().unwrap() += 1;
            let step = self
                .steps
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Step::Reply("default"));
            match step {
                Step::Reply(t) => {
                    Ok(Box::new(Events(text_events(t), false)) as Box<dyn ChatStream>)
                }
                Step::Fail(class, retry_after) => Err(ProviderError {
                    class,
                    message: "scripted".into(),
                    status: None,
                    retry_after,
                }),
                Step::Slow(d, t) => {
                    tokio::time::sleep(d).await;
                    Ok(Box::new(Events(text_events(t), false)) as Box<dyn ChatStream>)
                }
                Step::Cut(t) => Ok(Box::new(Events(
                    VecDeque::from([
                        Ok(StreamEvent::Text(t.to_string())),
                        Err(ProviderError::new(FailureClass::StreamInterrupted, "cut")),
                    ]),
                    false,
                )) as Box<dyn ChatStream>),
                Step::Hang => Ok(Box::new(Events(VecDeque::new(), true)) as Box<dyn ChatStream>),
                Step::Endless => Ok(Box::new(Forever) as Box<dyn ChatStream>),
                Step::Stall(t) => Ok(Box::new(Events(
                    VecDeque::from([Ok(StreamEvent::Text(t.to_string()))]),
                    true,
                )) as Box<dyn ChatStream>),
            }
        })
    }
    fn models(&self) -> BoxFuture<'_, Result<Vec<String>, ProviderError>> {
        Box::pin(async { Ok(vec![]) })
    }
}

fn policy() -> SelfHealConfig {
    SelfHealConfig {
        max_attempts: 4,
        backoff_ms: 100,
        backoff_max_ms: 1_000,
        fallback_after_retries: 1,
        deadline_ms: 30_000,
        retry_after_max_ms: 5_000,
        circuit_threshold: 5,
        ..Default::default()
    }
}

fn entry(p: &Arc<Scripted>) -> ChainEntry {
    ChainEntry {
        id: p.id.clone(),
        target: Ok(p.clone() as Arc<dyn Provider>),
        model: String::new(),
        timeouts: Timeouts {
            connect: Duration::from_secs(1),
            first_byte: Duration::from_secs(2),
            idle: Duration::from_secs(2),
            total: Duration::from_secs(10),
        },
    }
}

struct Run {
    result: Result<Reply, HealError>,
    telemetry: SelfHealing,
    restarts: usize,
    elapsed: Duration,
}

async fn run_with(
    policy: &SelfHealConfig,
    health: &HealthBook,
    chain: &[ChainEntry],
    cancel: &Cancel,
) -> Run {
    let rng = Mutex::new(StdRng::seed_from_u64(7));
    let restarts = Mutex::new(0usize);
    let sink = |p: Progress<'_>| {
        if let Progress::Restart { .. } = p {
            *restarts.lock().unwrap() += 1;
        }
    };
    let start = Instant::now();
    let healer = Healer {
        policy,
        health,
        cancel,
        deadline: start + Duration::from_millis(policy.deadline_ms),
        rng: &rng,
        sink: &sink,
    };
    let mut telemetry = SelfHealing::new(policy.enabled, "core", policy.max_attempts);
    let result = healer
        .complete(chain, &ChatRequest::default(), &mut telemetry)
        .await;
    Run {
        result,
        telemetry,
        restarts: *restarts.lock().unwrap(),
        elapsed: start.elapsed(),
    }
}

async fn run(chain: &[ChainEntry]) -> Run {
    run_with(&policy(), &HealthBook::default(), chain, &Cancel::default()).await
}

fn statuses(t: &SelfHealing) -> Vec<String> {
    t.attempts
        .iter()
        .map(|a| {
            format!(
                "{}:{}",
                a.provider,
                a.reason.as_deref().unwrap_or(&a.status)
            )
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_503_is_retried_with_backoff_and_recovers() {
    let a = Scripted::new(
        "a",
        vec![
            Step::Fail(FailureClass::Overloaded, None),
            Step::Reply("hi"),
        ],
    );
    let r = run(&[entry(&a)]).await;
    assert_eq!(r.result.unwrap().text, "hi");
    assert_eq!(statuses(&r.telemetry), vec!["a:overloaded", "a:ok"]);
    assert!(r.telemetry.recovered);
    assert!(
        r.telemetry.backoff_ms <= 100,
        "first retry waits at most backoff_ms"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_when_short_and_capped_when_long() {
    let a = Scripted::new(
        "a",
        vec![
            Step::Fail(FailureClass::RateLimit, Some(Duration::from_secs(2))),
            Step::Reply("hi"),
        ],
    );
    let r = run(&[entry(&a)]).await;
    assert!(r.result.is_ok());
    assert_eq!(r.telemetry.backoff_ms, 2_000);
    assert!(r.elapsed >= Duration::from_secs(2));

    // Longer than retry_after_max_ms: no waiting, the next provider at once, and a cooldown.
    let a = Scripted::new(
        "a",
        vec![Step::Fail(
            FailureClass::RateLimit,
            Some(Duration::from_secs(600)),
        )],
    );
    let b = Scripted::new("b", vec![Step::Reply("from b")]);
    let health = HealthBook::default();
    let r = run_with(
        &policy(),
        &health,
        &[entry(&a), entry(&b)],
        &Cancel::default(),
    )
    .await;
    assert_eq!(r.result.unwrap().text, "from b");
    assert!(r.elapsed < Duration::from_millis(10), "{:?}", r.elapsed);
    assert_eq!(statuses(&r.telemetry), vec!["a:rate_limit", "b:ok"]);
    assert_eq!(
        health.view("a", Instant::now()).cooldown_left,
        Some(Duration::from_secs(60))
    );
}

#[tokio::test(start_paused = true)]
async fn fallback_fires_at_once_while_the_primary_is_in_cooldown() {
    let a = Scripted::new(
        "a",
        vec![Step::Fail(
            FailureClass::RateLimit,
            Some(Duration::from_secs(900)),
        )],
    );
    let b = Scripted::new("b", vec![Step::Reply("one"), Step::Reply("two")]);
    let health = HealthBook::default();
    let chain = [entry(&a), entry(&b)];
    run_with(&policy(), &health, &chain, &Cancel::default()).await;
    assert_eq!(a.calls(), 1);
    let r = run_with(&policy(), &health, &chain, &Cancel::default()).await;
    assert_eq!(r.result.unwrap().text, "two");
    assert_eq!(a.calls(), 1, "a provider in cooldown is not called");
    assert_eq!(statuses(&r.telemetry), vec!["a:cooldown", "b:ok"]);
    assert_eq!(
        r.elapsed,
        Duration::ZERO,
        "no waiting for a provider in cooldown"
    );
    assert!(r.telemetry.recovered);
}

#[tokio::test(start_paused = true)]
async fn format_and_context_overflow_are_not_retried() {
    for class in [FailureClass::ContextOverflow] {
        let a = Scripted::new("a", vec![Step::Fail(class, None)]);
        let b = Scripted::new("b", vec![Step::Reply("b")]);
        let r = run(&[entry(&a), entry(&b)]).await;
        assert_eq!(r.result.unwrap_err().class, Some(class));
        assert_eq!((a.calls(), b.calls()), (1, 0));
    }
    // A request the provider refused (400) stops; an unparseable reply falls back.
    let p = policy();
    let mut rng = StdRng::seed_from_u64(1);
    let mut e = ProviderError::format("bad request");
    e.status = Some(400);
    assert_eq!(decide(&p, &e, 0, &mut rng), Next::Stop);
    e.status = None;
    assert_eq!(decide(&p, &e, 0, &mut rng), Next::Fallback { cool: false });
    let a = Scripted::new("a", vec![Step::Fail(FailureClass::Format, None)]);
    let b = Scripted::new("b", vec![Step::Reply("b")]);
    let r = run(&[entry(&a), entry(&b)]).await;
    assert_eq!(r.result.unwrap().text, "b");
    assert_eq!(a.calls(), 1, "never retried on the same provider");
}

#[tokio::test(start_paused = true)]
async fn auth_falls_back_without_retry_and_cools_down() {
    let a = Scripted::new("a", vec![Step::Fail(FailureClass::Auth, None)]);
    let b = Scripted::new("b", vec![Step::Reply("b")]);
    let health = HealthBook::default();
    let r = run_with(
        &policy(),
        &health,
        &[entry(&a), entry(&b)],
        &Cancel::default(),
    )
    .await;
    assert!(r.result.is_ok());
    assert_eq!(a.calls(), 1);
    assert!(health.view("a", Instant::now()).cooldown_left.is_some());
}

#[tokio::test(start_paused = true)]
async fn slow_first_byte_times_out_and_falls_back() {
    let a = Scripted::new(
        "a",
        vec![
            Step::Slow(Duration::from_secs(60), "late"),
            Step::Slow(Duration::from_secs(60), "late"),
        ],
    );
    let b = Scripted::new("b", vec![Step::Reply("b")]);
    let r = run(&[entry(&a), entry(&b)]).await;
    assert_eq!(r.result.unwrap().text, "b");
    assert_eq!(
        statuses(&r.telemetry),
        vec!["a:timeout.first_byte", "a:timeout.first_byte", "b:ok"]
    );
    assert!(r.elapsed < Duration::from_secs(5), "{:?}", r.elapsed);
}

#[tokio::test(start_paused = true)]
async fn silent_and_stalled_streams_time_out_and_a_cut_stream_restarts_the_reply() {
    let a = Scripted::new(
        "a",
        vec![
            Step::Hang,
            Step::Stall("half "),
            Step::Cut("partial "),
            Step::Reply("whole"),
        ],
    );
    let p = SelfHealConfig {
        fallback_after_retries: 3,
        ..policy()
    };
    let r = run_with(&p, &HealthBook::default(), &[entry(&a)], &Cancel::default()).await;
    assert_eq!(
        r.result.unwrap().text,
        "whole",
        "no text from the failed attempts"
    );
    assert_eq!(
        statuses(&r.telemetry),
        vec![
            "a:timeout.first_byte",
            "a:timeout.idle",
            "a:stream_interrupted",
            "a:ok"
        ]
    );
    assert_eq!(r.restarts, 2, "faces are told to drop each partial reply");
}

#[tokio::test(start_paused = true)]
async fn no_attempt_outlives_the_turn_deadline() {
    let a = Scripted::new("a", vec![Step::Slow(Duration::from_secs(3600), "x"); 10]);
    let p = SelfHealConfig {
        deadline_ms: 1_500,
        first_byte_timeout_ms: 60_000,
        ..policy()
    };
    let mut e = entry(&a);
    e.timeouts.first_byte = Duration::from_secs(60);
    e.timeouts.total = Duration::from_secs(60);
    let r = run_with(&p, &HealthBook::default(), &[e], &Cancel::default()).await;
    let err = r.result.unwrap_err();
    assert_eq!(err.class, Some(FailureClass::Timeout(TimeoutKind::Total)));
    assert!(r.elapsed <= Duration::from_millis(1_500), "{:?}", r.elapsed);
}

#[tokio::test(start_paused = true)]
async fn max_attempts_bounds_the_turn() {
    let a = Scripted::new("a", vec![Step::Fail(FailureClass::Server, None); 10]);
    let b = Scripted::new("b", vec![Step::Fail(FailureClass::Server, None); 10]);
    let c = Scripted::new("c", vec![Step::Fail(FailureClass::Server, None); 10]);
    let p = SelfHealConfig {
        max_attempts: 3,
        ..policy()
    };
    let r = run_with(
        &p,
        &HealthBook::default(),
        &[entry(&a), entry(&b), entry(&c)],
        &Cancel::default(),
    )
    .await;
    let err = r.result.unwrap_err();
    assert_eq!(err.class, Some(FailureClass::Server));
    // a, a's one retry, then b and c get their first attempt but no retry: the budget of
    // three is spent.
    assert_eq!(
        statuses(&r.telemetry),
        vec!["a:server", "a:server", "b:server", "c:server"]
    );
    assert!(err.exhausted);
    assert_eq!(
        err.message,
        "no provider answered: a (server x2, last: scripted); b (server: scripted); \
         c (server: scripted)",
        "the final error names every provider tried and why"
    );
}

#[tokio::test(start_paused = true)]
async fn a_healthy_provider_is_reached_after_a_503_and_a_429() {
    // The core policy: three attempts, one retry per provider. The first provider's retry
    // and the second's 429 spend the budget; the third still gets its attempt.
    let a = Scripted::new("a", vec![Step::Fail(FailureClass::Overloaded, None); 2]);
    let b = Scripted::new(
        "b",
        vec![Step::Fail(
            FailureClass::RateLimit,
            Some(Duration::from_secs(1)),
        )],
    );
    let c = Scripted::new("c", vec![Step::Reply("from c")]);
    let p = SelfHealConfig {
        max_attempts: 3,
        ..policy()
    };
    let r = run_with(
        &p,
        &HealthBook::default(),
        &[entry(&a), entry(&b), entry(&c)],
        &Cancel::default(),
    )
    .await;
    assert_eq!(r.result.unwrap().text, "from c");
    assert_eq!(
        statuses(&r.telemetry),
        vec!["a:overloaded", "a:overloaded", "b:rate_limit", "c:ok"]
    );
    assert!(
        r.elapsed < Duration::from_secs(1),
        "no wait on b: {:?}",
        r.elapsed
    );
}

#[tokio::test(start_paused = true)]
async fn an_endless_stream_gets_its_share_of_the_turn_then_cools_down() {
    for (share, cut_ms) in [(0.5, 5_000), (0.25, 2_500)] {
        let a = Scripted::new("a", vec![Step::Endless, Step::Endless]);
        let b = Scripted::new("b", vec![Step::Reply("b"), Step::Reply("b again")]);
        let p = SelfHealConfig {
            deadline_ms: 10_000,
            attempt_share: share,
            ..policy()
        };
        let mut ea = entry(&a);
        ea.timeouts.total = Duration::from_secs(60);
        let chain = [ea, entry(&b)];
        let health = HealthBook::default();
        let r = run_with(&p, &health, &chain, &Cancel::default()).await;
        assert_eq!(r.result.unwrap().text, "b");
        assert_eq!(statuses(&r.telemetry), vec!["a:timeout.total", "b:ok"]);
        assert_eq!(r.telemetry.attempts[0].latency_ms, cut_ms, "share {share}");
        // A total timeout is not retried and cools the provider down: the next turn goes
        // straight to b.
        assert!(health.view("a", Instant::now()).cooldown_left.is_some());
        let r = run_with(&p, &health, &chain, &Cancel::default()).await;
        assert_eq!(statuses(&r.telemetry), vec!["a:cooldown", "b:ok"]);
        assert_eq!(a.calls(), 1);
    }
    // The last provider has no one to leave time for: it gets the rest of the turn.
    let a = Scripted::new("a", vec![Step::Endless]);
    let p = SelfHealConfig {
        deadline_ms: 10_000,
        ..policy()
    };
    let mut ea = entry(&a);
    ea.timeouts.total = Duration::from_secs(60);
    let r = run_with(&p, &HealthBook::default(), &[ea], &Cancel::default()).await;
    assert_eq!(
        r.result.unwrap_err().class,
        Some(FailureClass::Timeout(TimeoutKind::Total))
    );
    assert_eq!(r.telemetry.attempts[0].latency_ms, 10_000);
}

#[tokio::test(start_paused = true)]
async fn known_bad_answers_park_the_model_until_a_reset() {
    for class in [FailureClass::Format, FailureClass::ModelNotFound] {
        let a = Scripted::new("a", vec![Step::Fail(class, None); 10]);
        let b = Scripted::new("b", vec![Step::Reply("b"); 10]);
        let p = SelfHealConfig {
            park_after: 2,
            ..policy()
        };
        let health = HealthBook::default();
        let chain = [entry(&a), entry(&b)];
        for _ in 0..2 {
            let r = run_with(&p, &health, &chain, &Cancel::default()).await;
            assert_eq!(statuses(&r.telemetry)[0], format!("a:{class}"));
        }
        let r = run_with(&p, &health, &chain, &Cancel::default()).await;
        assert_eq!(statuses(&r.telemetry), vec!["a:parked", "b:ok"], "{class}");
        assert_eq!(a.calls(), 2, "{class}: a parked provider is not called");
        assert!(
            health
                .parked("a", "a-model")
                .unwrap()
                .contains(class.as_str())
        );
        health.reset("a");
        run_with(&p, &health, &chain, &Cancel::default()).await;
        assert_eq!(a.calls(), 3, "{class}: a reset unparks it");
    }
}

#[tokio::test(start_paused = true)]
async fn the_deadline_error_names_the_providers_it_left_untried() {
    let a = Scripted::new("a", vec![Step::Slow(Duration::from_secs(3600), "x")]);
    let b = Scripted::new("b", vec![Step::Reply("b")]);
    let p = SelfHealConfig {
        deadline_ms: 1_000,
        attempt_share: 1.0,
        ..policy()
    };
    let mut ea = entry(&a);
    ea.timeouts.first_byte = Duration::from_secs(60);
    let r = run_with(
        &p,
        &HealthBook::default(),
        &[ea, entry(&b)],
        &Cancel::default(),
    )
    .await;
    let err = r.result.unwrap_err();
    assert_eq!(err.untried, vec!["b".to_string()]);
    assert!(err.message.contains("not tried: b"), "{}", err.message);
    assert!(err.message.contains("a (timeout.total"), "{}", err.message);
}

#[tokio::test(start_paused = true)]
async fn open_circuit_is_skipped_then_half_open_trial_closes_it() {
    // Cooldowns of 1 ms, so what is seen here is the circuit alone.
    let p = SelfHealConfig {
        circuit_threshold: 2,
        circuit_open_ms: 5_000,
        fallback_after_retries: 0,
        cooldown_ms: 1,
        cooldown_max_ms: 1,
        ..policy()
    };
    let x = Scripted::new(
        "x",
        vec![
            Step::Fail(FailureClass::Network, None),
            Step::Fail(FailureClass::Network, None),
            Step::Reply("back"),
        ],
    );
    let b = Scripted::new("b", vec![Step::Reply("b"); 5]);
    let health = HealthBook::default();
    let chain = [entry(&x), entry(&b)];
    for _ in 0..2 {
        run_with(&p, &health, &chain, &Cancel::default()).await;
        tokio::time::advance(Duration::from_millis(5)).await;
    }
    assert_eq!(health.view("x", Instant::now()).circuit, CircuitState::Open);
    let r = run_with(&p, &health, &chain, &Cancel::default()).await;
    assert_eq!(statuses(&r.telemetry), vec!["x:circuit_open", "b:ok"]);
    assert_eq!(x.calls(), 2);
    tokio::time::advance(Duration::from_millis(5_001)).await;
    let r = run_with(&p, &health, &chain, &Cancel::default()).await;
    assert_eq!(statuses(&r.telemetry), vec!["x:ok"], "the half-open trial");
    assert_eq!(
        health.view("x", Instant::now()).circuit,
        CircuitState::Closed
    );
}

#[tokio::test(start_paused = true)]
async fn a_turn_dropped_mid_trial_frees_the_half_open_slot() {
    let p = SelfHealConfig {
        circuit_threshold: 1,
        circuit_open_ms: 1_000,
        fallback_after_retries: 0,
        cooldown_ms: 1,
        cooldown_max_ms: 1,
        ..policy()
    };
    let x = Scripted::new(
        "x",
        vec![
            Step::Fail(FailureClass::Server, None),
            Step::Hang,
            Step::Reply("back"),
        ],
    );
    let health = HealthBook::default();
    let chain = [entry(&x)];
    run_with(&p, &health, &chain, &Cancel::default()).await;
    assert_eq!(health.view("x", Instant::now()).circuit, CircuitState::Open);
    tokio::time::advance(Duration::from_millis(1_001)).await;
    // The trial hangs; the turn's future is dropped (as a batch `timeoutMs` does).
    let dropped = tokio::time::timeout(
        Duration::from_millis(100),
        run_with(&p, &health, &chain, &Cancel::default()),
    )
    .await;
    assert!(dropped.is_err(), "the turn was still running");
    assert_eq!(x.calls(), 2, "the trial reached the provider");
    let r = run_with(&p, &health, &chain, &Cancel::default()).await;
    assert_eq!(
        statuses(&r.telemetry),
        vec!["x:ok"],
        "admitted for the trial again"
    );
    assert_eq!(
        health.view("x", Instant::now()).circuit,
        CircuitState::Closed
    );
}

#[tokio::test(start_paused = true)]
async fn cancellation_stops_a_hanging_attempt_and_a_backoff() {
    let a = Scripted::new("a", vec![Step::Slow(Duration::from_secs(3600), "x")]);
    let cancel = Cancel::default();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c2.cancel();
    });
    let mut e = entry(&a);
    e.timeouts.first_byte = Duration::from_secs(3600);
    let r = run_with(&policy(), &HealthBook::default(), &[e], &cancel).await;
    assert_eq!(r.result.unwrap_err().class, Some(FailureClass::Cancelled));
    assert_eq!(r.elapsed, Duration::from_millis(300));
    assert_eq!(statuses(&r.telemetry), vec!["a:cancelled"]);
}

#[tokio::test(start_paused = true)]
async fn unconfigured_providers_are_skipped_and_self_heal_off_tries_once() {
    let b = Scripted::new(
        "b",
        vec![Step::Fail(FailureClass::Server, None), Step::Reply("b")],
    );
    let unconfigured = ChainEntry {
        id: "openai".into(),
        target: Err("no key".into()),
        model: String::new(),
        timeouts: entry(&b).timeouts,
    };
    let r = run(&[unconfigured.clone(), entry(&b)]).await;
    assert_eq!(
        statuses(&r.telemetry),
        vec!["openai:unconfigured", "b:server", "b:ok"]
    );
    let off = SelfHealConfig {
        enabled: false,
        ..policy()
    };
    let c = Scripted::new(
        "c",
        vec![Step::Fail(FailureClass::Server, None), Step::Reply("c")],
    );
    let d = Scripted::new("d", vec![Step::Reply("d")]);
    let r = run_with(
        &off,
        &HealthBook::default(),
        &[entry(&c), entry(&d)],
        &Cancel::default(),
    )
    .await;
    assert_eq!(r.result.unwrap_err().class, Some(FailureClass::Server));
    assert_eq!((c.calls(), d.calls()), (1, 0));
    // An unusable provider first is passed over: the one attempt goes to the next.
    let e = Scripted::new("e", vec![Step::Reply("e")]);
    let r = run_with(
        &off,
        &HealthBook::default(),
        &[unconfigured, entry(&e)],
        &Cancel::default(),
    )
    .await;
    assert_eq!(r.result.unwrap().text, "e");
}

#[test]
fn backoff_is_full_jitter_under_an_exponential_ceiling() {
    let p = policy();
    let mut rng = StdRng::seed_from_u64(3);
    for retry in 0..8 {
        let ceiling = (100u64 << retry).min(1_000);
        let samples: Vec<u64> = (0..200)
            .map(|_| heal::millis(backoff(&p, retry, &mut rng)))
            .collect();
        assert!(samples.iter().all(|s| *s <= ceiling));
        let spread = samples.iter().max().unwrap() - samples.iter().min().unwrap();
        assert!(
            spread > ceiling / 2,
            "jitter spans the range: {spread} of {ceiling}"
        );
    }
}
