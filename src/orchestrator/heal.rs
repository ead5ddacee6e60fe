//! One model call with self-healing: retries with backoff and full jitter, `Retry-After`,
//! fallback along the chain, cooldowns, the circuit breaker, per-attempt timeouts and the
//! turn's deadline, and cancellation.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::RngExt;
use rand::rngs::StdRng;
use tokio::sync::Notify;
use tokio::time::{Instant, timeout_at};

use super::health::{Admission, Change, HealthBook, TrialGuard};
use super::telemetry::{Attempt, SelfHealing};
use crate::config::SelfHealConfig;
use crate::providers::{
    ChatRequest, FailureClass, FinishReason, Provider, ProviderError, StreamEvent, TimeoutKind,
    Timeouts, ToolCall, Usage,
};

/// A cancellation flag that can be awaited. Cloning shares it.
#[derive(Clone, Default)]
pub struct Cancel(Arc<(AtomicBool, Notify)>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.0.store(true, Ordering::SeqCst);
        self.0.1.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.0.load(Ordering::SeqCst)
    }

    pub async fn cancelled(&self) {
        loop {
            // Registered before the check, so a cancel in between is not missed.
            let notified = self.0.1.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

/// One provider in the chain, ready or with the reason it cannot run.
#[derive(Clone)]
pub struct ChainEntry {
    pub id: String,
    pub target: Result<Arc<dyn Provider>, String>,
    /// Empty: the provider's default.
    pub model: String,
    pub timeouts: Timeouts,
}

impl ChainEntry {
    pub fn model_label(&self) -> String {
        match (&self.target, self.model.is_empty()) {
            (_, false) => self.model.clone(),
            (Ok(p), true) => p.default_model(),
            (Err(_), true) => String::new(),
        }
    }
}

/// What the loop reports as it goes; the turn maps these to engine events.
pub enum Progress<'a> {
    Attempt(&'a Attempt),
    Health(Change),
    Text(&'a str),
    Reasoning(&'a str),
    /// Text streamed by a failed attempt is void: a retry starts the reply over.
    Restart {
        provider: &'a str,
    },
}

pub type Sink<'a> = &'a (dyn Fn(Progress<'_>) + Send + Sync);

/// A finished model reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub text: String,
    pub reasoning: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    pub finish: FinishReason,
    pub provider: String,
    pub model: String,
}

/// A turn that could not be completed, with the last classified cause.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HealError {
    /// `None`: no provider could be tried at all (all skipped).
    pub class: Option<FailureClass>,
    pub message: String,
    /// The chain ran out (every provider failed, was skipped, or the deadline passed), as
    /// opposed to the policy stopping the turn (an abort, a refused request).
    pub exhausted: bool,
    /// Configured providers never tried because the turn's deadline passed first.
    pub untried: Vec<String>,
}

impl HealError {
    fn from_provider(provider: &str, e: &ProviderError) -> Self {
        Self {
            class: Some(e.class),
            message: format!("{provider}: {}", e.message),
            ..Self::default()
        }
    }
}

/// One provider's failures in a model call, for the final error.
struct Failed {
    provider: String,
    class: FailureClass,
    message: String,
    times: u32,
}

impl Failed {
    fn note(list: &mut Vec<Failed>, provider: &str, e: &ProviderError) {
        match list.iter_mut().find(|f| f.provider == provider) {
            Some(f) => {
                f.class = e.class;
                f.message = e.message.clone();
                f.times += 1;
            }
            None => list.push(Failed {
                provider: provider.to_string(),
                class: e.class,
                message: e.message.clone(),
                times: 1,
            }),
        }
    }
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.times {
            1 => write!(f, "{} ({}: {})", self.provider, self.class, self.message),
            n => write!(
                f,
                "{} ({} x{n}, last: {})",
                self.provider, self.class, self.message
            ),
        }
    }
}

/// Answers that say the provider (or model) cannot serve this at all, which cooldowns and
/// the circuit ignore: counted toward parking instead.
fn known_bad(e: &ProviderError) -> bool {
    match e.class {
        FailureClass::ModelNotFound => true,
        FailureClass::Format => !matches!(e.status, Some(400 | 422)),
        _ => false,
    }
}

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Retry(Duration),
    Fallback { cool: bool },
    Stop,
}

/// Exponential backoff with full jitter: uniform in `[0, min(max, base * 2^retry)]`.
pub fn backoff(policy: &SelfHealConfig, retry: u32, rng: &mut StdRng) -> Duration {
    let ceiling = policy
        .backoff_ms
        .saturating_mul(1u64 << retry.min(30))
        .min(policy.backoff_max_ms);
    Duration::from_millis(rng.random_range(0..=ceiling))
}

/// The policy: which failures are retried here, which fall back, which stop the turn.
pub fn decide(
    policy: &SelfHealConfig,
    error: &ProviderError,
    retries_done: u32,
    rng: &mut StdRng,
) -> Next {
    let may_retry = retries_done < policy.fallback_after_retries;
    match error.class {
        FailureClass::Cancelled | FailureClass::ContextOverflow => Next::Stop,
        // The provider refused the request itself: sending it again anywhere is blind.
        FailureClass::Format if matches!(error.status, Some(400 | 422)) => Next::Stop,
        // An unparseable answer is the provider's fault; another may do better.
        FailureClass::Format | FailureClass::ModelNotFound => Next::Fallback { cool: false },
        FailureClass::Auth | FailureClass::Billing => Next::Fallback { cool: true },
        // The attempt ran out its whole time (or its share of the turn's): another try
        // here would take as long, so move on and cool down like any transient failure.
        FailureClass::Timeout(TimeoutKind::Total) => Next::Fallback { cool: true },
        FailureClass::RateLimit => {
            let cap = Duration::from_millis(policy.retry_after_max_ms);
            match error.retry_after {
                Some(wait) if may_retry && wait <= cap => Next::Retry(wait),
                None if may_retry => Next::Retry(backoff(policy, retries_done, rng)),
                _ => Next::Fallback { cool: true },
            }
        }
        FailureClass::Overloaded
        | FailureClass::Server
        | FailureClass::Timeout(_)
        | FailureClass::Network
        | FailureClass::StreamInterrupted => {
            if may_retry {
                let wait = match error.retry_after {
                    Some(wait) if wait <= Duration::from_millis(policy.retry_after_max_ms) => wait,
                    _ => backoff(policy, retries_done, rng),
                };
                Next::Retry(wait)
            } else {
                Next::Fallback { cool: true }
            }
        }
    }
}

pub struct Healer<'a> {
    pub policy: &'a SelfHealConfig,
    pub health: &'a HealthBook,
    pub cancel: &'a Cancel,
    pub deadline: Instant,
    pub rng: &'a Mutex<StdRng>,
    pub sink: Sink<'a>,
}

impl Healer<'_> {
    fn record(&self, telemetry: &mut SelfHealing, attempt: Attempt) {
        (self.sink)(Progress::Attempt(&attempt));
        telemetry.attempts.push(attempt);
    }

    fn changes(&self, changes: Vec<Change>) {
        for c in changes {
            (self.sink)(Progress::Health(c));
        }
    }

    /// Run `request` along `chain` until one provider answers or the policy gives up.
    ///
    /// Every admissible provider gets at least one attempt while the deadline allows;
    /// `max_attempts` bounds the retries on top of those first attempts.
    pub async fn complete(
        &self,
        chain: &[ChainEntry],
        request: &ChatRequest,
        telemetry: &mut SelfHealing,
    ) -> Result<Reply, HealError> {
        let max_attempts = self.policy.max_attempts.max(1);
        let first_record = telemetry.attempts.len();
        let mut tries = 0u32;
        let mut last_error: Option<HealError> = None;
        // The last failure per provider, in the order they were tried: the final error
        // names each one.
        let mut failures: Vec<Failed> = Vec::new();
        let mut streamed = false;
        'chain: for (index, entry) in chain.iter().enumerate() {
            // Self-heal off: one real attempt; passing over an unusable provider is no retry.
            if !self.policy.enabled && tries > 0 {
                break;
            }
            let model = entry.model_label();
            let provider = match &entry.target {
                Ok(p) => p.clone(),
                Err(reason) => {
                    tracing::debug!("{} skipped: {reason}", entry.id);
                    self.record(telemetry, skipped(entry, &model, "unconfigured"));
                    continue;
                }
            };
            if Instant::now() >= self.deadline {
                return Err(self.deadline_error(&chain[index..], &failures));
            }
            if self.health.parked(&entry.id, &model).is_some() {
                self.record(telemetry, skipped(entry, &model, "parked"));
                continue;
            }
            let (admission, changes) = self.health.admit(&entry.id, Instant::now());
            self.changes(changes);
            if let Admission::Skip(why) = admission {
                self.record(telemetry, skipped(entry, &model, why));
                continue;
            }
            // Frees the half-open slot on every path that ends without an outcome.
            let mut trial =
                (admission == Admission::Trial).then(|| TrialGuard::new(self.health, &entry.id));
            let mut retries = 0u32;
            loop {
                if self.cancel.is_cancelled() {
                    return Err(cancelled());
                }
                let now = Instant::now();
                if now >= self.deadline {
                    return Err(self.deadline_error(&chain[index + 1..], &failures));
                }
                tries += 1;
                if streamed {
                    (self.sink)(Progress::Restart {
                        provider: &entry.id,
                    });
                    streamed = false;
                }
                let mut request = request.clone();
                if !entry.model.is_empty() {
                    request.model = entry.model.clone();
                }
                // While a later provider could still answer, this one gets only its share
                // of the time left.
                let others = self.others_remain(&chain[index + 1..], now);
                let share_end = others.then(|| now + (self.deadline - now).mul_f64(self.share()));
                let outcome = tokio::select! {
                    _ = self.cancel.cancelled() => Err(ProviderError::new(FailureClass::Cancelled, "aborted")),
                    r = self.attempt(provider.as_ref(), entry, &request, &mut streamed, share_end) => r,
                };
                let latency_ms = millis(now.elapsed());
                match outcome {
                    Ok(mut reply) => {
                        self.record(telemetry, attempt(entry, &model, "ok", None, latency_ms));
                        self.changes(self.health.success(&entry.id, latency_ms, Instant::now()));
                        self.health.good_answer(&entry.id, &model);
                        if let Some(guard) = trial.take() {
                            guard.settled();
                        }
                        telemetry.recovered = telemetry.recovered
                            || telemetry.attempts.iter().any(|a| a.status != "ok");
                        reply.provider = entry.id.clone();
                        reply.model = model;
                        return Ok(reply);
                    }
                    Err(mut error) => {
                        // As received: the log writer redacts it (logging.redact).
                        tracing::debug!("{} failed: {}", entry.id, error.message);
                        // A provider's message can echo its response body (or our request):
                        // from here it reaches the health book, the providers list, the
                        // turn's error and the session file, so it is redacted once, here.
                        error.message = crate::secrets::redact::redact(&error.message);
                        let status = if error.class == FailureClass::Cancelled {
                            "cancelled"
                        } else {
                            "error"
                        };
                        self.record(
                            telemetry,
                            attempt(
                                entry,
                                &model,
                                status,
                                Some(error.class.as_str()),
                                latency_ms,
                            ),
                        );
                        let mut next =
                            if error.class == FailureClass::Cancelled || !self.policy.enabled {
                                Next::Stop
                            } else {
                                let mut rng = match self.rng.lock() {
                                    Ok(r) => r,
                                    Err(p) => p.into_inner(),
                                };
                                decide(self.policy, &error, retries, &mut rng)
                            };
                        if let Next::Retry(wait) = next {
                            let now = Instant::now();
                            // No retry when the budget is spent, when the wait would end past
                            // the deadline, or when it would take more than this provider's
                            // share while another could answer: the next provider, at once.
                            let over_share = self.others_remain(&chain[index + 1..], now)
                                && wait > (self.deadline - now).mul_f64(self.share());
                            if tries >= max_attempts || now + wait >= self.deadline || over_share {
                                next = Next::Fallback { cool: false };
                            }
                        }
                        let cool = matches!(next, Next::Fallback { cool: true });
                        self.changes(self.health.failure(
                            &entry.id,
                            error.class,
                            &error.message,
                            latency_ms,
                            cool,
                            self.policy,
                            Instant::now(),
                        ));
                        if known_bad(&error) {
                            self.changes(self.health.bad_answer(
                                &entry.id,
                                &model,
                                error.class,
                                &error.message,
                                self.policy.park_after,
                            ));
                        }
                        if let Some(guard) = trial.take() {
                            guard.settled();
                        }
                        let this = HealError::from_provider(&entry.id, &error);
                        Failed::note(&mut failures, &entry.id, &error);
                        last_error = Some(this.clone());
                        match next {
                            Next::Stop => return Err(this),
                            Next::Fallback { .. } => continue 'chain,
                            Next::Retry(wait) => {
                                tokio::select! {
                                    _ = self.cancel.cancelled() => return Err(cancelled()),
                                    _ = tokio::time::sleep(wait) => {}
                                }
                                telemetry.backoff_ms += millis(wait);
                                retries += 1;
                                // The failures may have opened the circuit meanwhile.
                                let (admission, changes) =
                                    self.health.admit(&entry.id, Instant::now());
                                self.changes(changes);
                                if let Admission::Skip(why) = admission {
                                    self.record(telemetry, skipped(entry, &model, why));
                                    continue 'chain;
                                }
                                if admission == Admission::Trial {
                                    trial = Some(TrialGuard::new(self.health, &entry.id));
                                }
                            }
                        }
                    }
                }
            }
        }
        let skips: Vec<String> = telemetry.attempts[first_record..]
            .iter()
            .filter(|a| a.status == "skipped")
            .map(|a| {
                format!(
                    "{} (skipped: {})",
                    a.provider,
                    a.reason.as_deref().unwrap_or("skipped")
                )
            })
            .collect();
        Err(match last_error {
            Some(last) => HealError {
                class: last.class,
                message: format!(
                    "no provider answered: {}",
                    failures
                        .iter()
                        .map(Failed::to_string)
                        .chain(skips)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                exhausted: true,
                untried: Vec::new(),
            },
            None => HealError {
                class: None,
                message: if chain.is_empty() {
                    "no provider is configured".into()
                } else {
                    format!("no provider could be tried: {}", skips.join(", "))
                },
                exhausted: true,
                untried: Vec::new(),
            },
        })
    }

    fn share(&self) -> f64 {
        self.policy.attempt_share.clamp(f64::MIN_POSITIVE, 1.0)
    }

    /// Whether a provider in `rest` could be tried now (configured, not cooling down, not
    /// parked, circuit not open).
    fn others_remain(&self, rest: &[ChainEntry], now: Instant) -> bool {
        self.policy.enabled
            && rest
                .iter()
                .any(|e| e.target.is_ok() && self.health.admissible(&e.id, &e.model_label(), now))
    }

    /// The turn's deadline passed: what was tried, and what never was.
    fn deadline_error(&self, rest: &[ChainEntry], failures: &[Failed]) -> HealError {
        let untried: Vec<String> = rest
            .iter()
            .filter(|e| e.target.is_ok())
            .map(|e| e.id.clone())
            .collect();
        let tried = failures
            .iter()
            .map(Failed::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        let mut message = format!(
            "the turn's deadline ({} ms) passed",
            self.policy.deadline_ms
        );
        if !tried.is_empty() {
            message.push_str(&format!("; tried: {tried}"));
        }
        if !untried.is_empty() {
            message.push_str(&format!("; not tried: {}", untried.join(", ")));
        }
        HealError {
            class: Some(FailureClass::Timeout(TimeoutKind::Total)),
            message,
            exhausted: true,
            untried,
        }
    }

    /// One attempt with its timeouts; no attempt runs past the turn's deadline, nor past
    /// `share_end` (its share of the turn while another provider remains).
    async fn attempt(
        &self,
        provider: &dyn Provider,
        entry: &ChainEntry,
        request: &ChatRequest,
        streamed: &mut bool,
        share_end: Option<Instant>,
    ) -> Result<Reply, ProviderError> {
        let start = Instant::now();
        let end = (start + entry.timeouts.total)
            .min(self.deadline)
            .min(share_end.unwrap_or(self.deadline));
        let first = (start + entry.timeouts.first_byte).min(end);
        let fired = |limit: Instant, kind: TimeoutKind| {
            let kind = if limit >= end {
                TimeoutKind::Total
            } else {
                kind
            };
            ProviderError::new(
                FailureClass::Timeout(kind),
                format!("no answer within {} ms", millis(limit - start)),
            )
        };
        let mut stream = timeout_at(first, provider.chat(request))
            .await
            .map_err(|_| fired(first, TimeoutKind::FirstByte))??;
        let mut reply = Reply {
            text: String::new(),
            reasoning: String::new(),
            tool_calls: Vec::new(),
            usage: Usage::default(),
            finish: FinishReason::Stop,
            provider: String::new(),
            model: String::new(),
        };
        let mut calls: BTreeMap<usize, ToolCall> = BTreeMap::new();
        let mut got_first = false;
        loop {
            let (limit, kind) = if got_first {
                (
                    (Instant::now() + entry.timeouts.idle).min(end),
                    TimeoutKind::Idle,
                )
            } else {
                (first, TimeoutKind::FirstByte)
            };
            let event = timeout_at(limit, stream.next_event())
                .await
                .map_err(|_| fired(limit, kind))??;
            got_first = true;
            match event {
                None => break,
                Some(StreamEvent::Text(t)) => {
                    *streamed = true;
                    (self.sink)(Progress::Text(&t));
                    reply.text.push_str(&t);
                }
                Some(StreamEvent::Reasoning(t)) => {
                    *streamed = true;
                    (self.sink)(Progress::Reasoning(&t));
                    reply.reasoning.push_str(&t);
                }
                Some(StreamEvent::ToolCall {
                    index,
                    id,
                    name,
                    arguments,
                }) => {
                    let call = calls.entry(index).or_insert_with(|| ToolCall {
                        id: String::new(),
                        name: String::new(),
                        arguments: String::new(),
                    });
                    if let Some(id) = id.filter(|i| !i.is_empty()) {
                        call.id = id;
                    }
                    if let Some(name) = name.filter(|n| !n.is_empty()) {
                        call.name = name;
                    }
                    call.arguments.push_str(&arguments);
                }
                Some(StreamEvent::Usage(u)) => reply.usage = u,
                Some(StreamEvent::Finish(f)) => reply.finish = f,
            }
        }
        reply.tool_calls = calls
            .into_iter()
            .map(|(index, mut call)| {
                if call.id.is_empty() {
                    call.id = format!("call_{index}");
                }
                call
            })
            .collect();
        Ok(reply)
    }
}

fn cancelled() -> HealError {
    HealError {
        class: Some(FailureClass::Cancelled),
        message: "the turn was aborted".into(),
        ..HealError::default()
    }
}

fn attempt(
    entry: &ChainEntry,
    model: &str,
    status: &str,
    reason: Option<&str>,
    latency_ms: u64,
) -> Attempt {
    Attempt {
        provider: entry.id.clone(),
        model: model.to_string(),
        status: status.to_string(),
        reason: reason.map(str::to_string),
        latency_ms,
    }
}

fn skipped(entry: &ChainEntry, model: &str, why: &str) -> Attempt {
    attempt(entry, model, "skipped", Some(why), 0)
}

pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
