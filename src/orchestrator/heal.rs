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
#[derive(Debug, Clone, PartialEq)]
pub struct HealError {
    /// `None`: no provider could be tried at all (all skipped).
    pub class: Option<FailureClass>,
    pub message: String,
}

impl HealError {
    fn from_provider(provider: &str, e: &ProviderError) -> Self {
        Self {
            class: Some(e.class),
            message: format!("{provider}: {}", e.message),
        }
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
    pub async fn complete(
        &self,
        chain: &[ChainEntry],
        request: &ChatRequest,
        telemetry: &mut SelfHealing,
    ) -> Result<Reply, HealError> {
        let max_attempts = if self.policy.enabled {
            self.policy.max_attempts.max(1)
        } else {
            1
        };
        let mut tries = 0u32;
        let mut last_error: Option<HealError> = None;
        let mut streamed = false;
        'chain: for entry in chain {
            // Self-heal off: one real attempt; passing over an unusable provider is no retry.
            if tries >= max_attempts || (!self.policy.enabled && telemetry.tries() > 0) {
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
                    return Err(HealError {
                        class: Some(FailureClass::Timeout(TimeoutKind::Total)),
                        message: format!(
                            "the turn's deadline ({} ms) passed{}",
                            self.policy.deadline_ms,
                            last_error
                                .as_ref()
                                .map(|e| format!("; last failure: {}", e.message))
                                .unwrap_or_default()
                        ),
                    });
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
                let outcome = tokio::select! {
                    _ = self.cancel.cancelled() => Err(ProviderError::new(FailureClass::Cancelled, "aborted")),
                    r = self.attempt(provider.as_ref(), entry, &request, &mut streamed) => r,
                };
                let latency_ms = millis(now.elapsed());
                match outcome {
                    Ok(mut reply) => {
                        self.record(telemetry, attempt(entry, &model, "ok", None, latency_ms));
                        self.changes(self.health.success(&entry.id, latency_ms, Instant::now()));
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
                        error.message = crate::findings::redact::redact(&error.message);
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
                        let next = if error.class == FailureClass::Cancelled || !self.policy.enabled
                        {
                            Next::Stop
                        } else {
                            let mut rng = match self.rng.lock() {
                                Ok(r) => r,
                                Err(p) => p.into_inner(),
                            };
                            decide(self.policy, &error, retries, &mut rng)
                        };
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
                        if let Some(guard) = trial.take() {
                            guard.settled();
                        }
                        let this = HealError::from_provider(&entry.id, &error);
                        last_error = Some(this.clone());
                        match next {
                            Next::Stop => return Err(this),
                            Next::Fallback { .. } => continue 'chain,
                            Next::Retry(wait) => {
                                if tries >= max_attempts {
                                    break 'chain;
                                }
                                // A wait that would end past the deadline is no retry at
                                // all: try the next provider at once instead.
                                if Instant::now() + wait >= self.deadline {
                                    continue 'chain;
                                }
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
        Err(last_error.unwrap_or_else(|| HealError {
            class: None,
            message: if chain.is_empty() {
                "no provider is configured".into()
            } else {
                format!(
                    "no provider could be tried: {}",
                    telemetry
                        .attempts
                        .iter()
                        .map(|a| format!(
                            "{} ({})",
                            a.provider,
                            a.reason.as_deref().unwrap_or(&a.status)
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
        }))
    }

    /// One attempt with its timeouts; no attempt runs past the turn's deadline.
    async fn attempt(
        &self,
        provider: &dyn Provider,
        entry: &ChainEntry,
        request: &ChatRequest,
        streamed: &mut bool,
    ) -> Result<Reply, ProviderError> {
        let start = Instant::now();
        let end = (start + entry.timeouts.total).min(self.deadline);
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
