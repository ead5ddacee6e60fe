//! Per-provider health: cooldowns, the circuit breaker, and latency/error statistics over a
//! window. Times are tokio instants, so tests run on paused time.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::config::SelfHealConfig;
use crate::providers::FailureClass;

/// Samples kept per provider for latency and error rate.
const MAX_SAMPLES: usize = 256;
/// The statistics window.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Latency samples kept for the sparkline.
pub const SPARK_POINTS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Circuit {
    Closed,
    Open {
        until: Instant,
    },
    /// One trial request is allowed; `trial` is true while it runs.
    HalfOpen {
        trial: bool,
    },
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    latency_ms: u64,
    ok: bool,
}

#[derive(Debug)]
struct Entry {
    cooldown_until: Option<Instant>,
    cooldown_reason: Option<FailureClass>,
    /// Cooldowns in a row; picks the next step.
    cooldown_step: u32,
    circuit: Circuit,
    consecutive_failures: u32,
    samples: VecDeque<Sample>,
    last_error: Option<String>,
    /// Known-bad answers in a row (unparseable, model not found), per model.
    bad_streak: HashMap<String, u32>,
    /// Models not called any more, with why: a probe or a reset clears them.
    parked: BTreeMap<String, String>,
}

impl Default for Entry {
    fn default() -> Self {
        Self {
            cooldown_until: None,
            cooldown_reason: None,
            cooldown_step: 0,
            circuit: Circuit::Closed,
            consecutive_failures: 0,
            samples: VecDeque::new(),
            last_error: None,
            bad_streak: HashMap::new(),
            parked: BTreeMap::new(),
        }
    }
}

/// Whether a provider may be tried now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Go,
    /// The circuit was open and its time is up: this attempt is the half-open trial.
    Trial,
    Skip(&'static str),
}

/// A state change worth an engine event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Cooldown {
        provider: String,
        until_in: Duration,
        reason: FailureClass,
    },
    CooldownCleared {
        provider: String,
    },
    Circuit {
        provider: String,
        state: CircuitState,
    },
    Parked {
        provider: String,
        model: String,
        reason: String,
    },
    Unparked {
        provider: String,
    },
}

/// What `providers.list` reports of one provider's health.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthView {
    pub cooldown_left: Option<Duration>,
    pub cooldown_reason: Option<FailureClass>,
    pub circuit: CircuitState,
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
    pub error_rate: f64,
    pub samples: usize,
    pub last_error: Option<String>,
    /// Recent successful latencies, oldest first.
    pub recent_latencies: Vec<u64>,
    /// Parked models and why.
    pub parked: BTreeMap<String, String>,
}

/// Classes that say nothing about the provider's health.
fn counts_against(class: FailureClass) -> bool {
    !matches!(
        class,
        FailureClass::Format
            | FailureClass::ContextOverflow
            | FailureClass::Cancelled
            | FailureClass::ModelNotFound
    )
}

#[derive(Default)]
pub struct HealthBook {
    entries: Mutex<HashMap<String, Entry>>,
}

impl HealthBook {
    fn with<T>(&self, id: &str, f: impl FnOnce(&mut Entry) -> T) -> T {
        let mut map = match self.entries.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(map.entry(id.to_string()).or_default())
    }

    pub fn admit(&self, id: &str, now: Instant) -> (Admission, Vec<Change>) {
        self.with(id, |e| {
            let mut changes = Vec::new();
            if let Some(until) = e.cooldown_until {
                if until > now {
                    return (Admission::Skip("cooldown"), changes);
                }
                e.cooldown_until = None;
                changes.push(Change::CooldownCleared {
                    provider: id.to_string(),
                });
            }
            let admission = match e.circuit {
                Circuit::Closed => Admission::Go,
                Circuit::Open { until } if now < until => Admission::Skip("circuit_open"),
                Circuit::Open { .. } | Circuit::HalfOpen { trial: false } => {
                    e.circuit = Circuit::HalfOpen { trial: true };
                    changes.push(Change::Circuit {
                        provider: id.to_string(),
                        state: CircuitState::HalfOpen,
                    });
                    Admission::Trial
                }
                Circuit::HalfOpen { trial: true } => Admission::Skip("circuit_half_open"),
            };
            (admission, changes)
        })
    }

    /// Whether `admit` would let `model` of `id` run now; takes no trial slot.
    pub fn admissible(&self, id: &str, model: &str, now: Instant) -> bool {
        self.with(id, |e| {
            !e.parked.contains_key(model)
                && e.cooldown_until.is_none_or(|u| u <= now)
                && match e.circuit {
                    Circuit::Closed => true,
                    Circuit::Open { until } => now >= until,
                    Circuit::HalfOpen { trial } => !trial,
                }
        })
    }

    /// Why `model` of provider `id` is parked, if it is.
    pub fn parked(&self, id: &str, model: &str) -> Option<String> {
        self.with(id, |e| e.parked.get(model).cloned())
    }

    /// A known-bad answer (unparseable output, a model that does not exist): such failures
    /// neither cool down nor open the circuit, so without this the provider would be called
    /// on every turn. `park_after` in a row park the model; 0 never does.
    pub fn bad_answer(
        &self,
        id: &str,
        model: &str,
        class: FailureClass,
        message: &str,
        park_after: u32,
    ) -> Vec<Change> {
        self.with(id, |e| {
            let streak = e.bad_streak.entry(model.to_string()).or_default();
            *streak += 1;
            if park_after == 0 || *streak < park_after || e.parked.contains_key(model) {
                return Vec::new();
            }
            let reason = format!("{class} {streak} times in a row, last: {message}");
            e.parked.insert(model.to_string(), reason.clone());
            vec![Change::Parked {
                provider: id.to_string(),
                model: model.to_string(),
                reason,
            }]
        })
    }

    /// A good answer from `model` ends its streak of bad ones.
    pub fn good_answer(&self, id: &str, model: &str) {
        self.with(id, |e| {
            e.bad_streak.remove(model);
        });
    }

    /// Call parked models again (a successful probe, a reset).
    pub fn unpark(&self, id: &str) -> Vec<Change> {
        self.with(id, |e| {
            e.bad_streak.clear();
            if std::mem::take(&mut e.parked).is_empty() {
                Vec::new()
            } else {
                vec![Change::Unparked {
                    provider: id.to_string(),
                }]
            }
        })
    }

    /// Free a half-open trial slot whose outcome was never recorded, so the next turn may
    /// run the trial (see [`TrialGuard`]).
    pub fn release_trial(&self, id: &str) {
        self.with(id, |e| {
            if matches!(e.circuit, Circuit::HalfOpen { trial: true }) {
                e.circuit = Circuit::HalfOpen { trial: false };
            }
        });
    }

    pub fn success(&self, id: &str, latency_ms: u64, now: Instant) -> Vec<Change> {
        self.with(id, |e| {
            let mut changes = Vec::new();
            e.samples.push_back(Sample {
                at: now,
                latency_ms,
                ok: true,
            });
            trim(&mut e.samples);
            e.consecutive_failures = 0;
            e.cooldown_step = 0;
            if e.cooldown_until.take().is_some() {
                changes.push(Change::CooldownCleared {
                    provider: id.to_string(),
                });
            }
            e.cooldown_reason = None;
            if !matches!(e.circuit, Circuit::Closed) {
                e.circuit = Circuit::Closed;
                changes.push(Change::Circuit {
                    provider: id.to_string(),
                    state: CircuitState::Closed,
                });
            }
            changes
        })
    }

    /// Record a failure; `cool` puts the provider in cooldown (the next step of it).
    // The arguments are the failure's facts, each used once; a struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    pub fn failure(
        &self,
        id: &str,
        class: FailureClass,
        message: &str,
        latency_ms: u64,
        cool: bool,
        policy: &SelfHealConfig,
        now: Instant,
    ) -> Vec<Change> {
        self.with(id, |e| {
            let mut changes = Vec::new();
            e.last_error = Some(format!("{class}: {message}"));
            if class == FailureClass::Cancelled {
                // An abort says nothing of the provider; a trial it interrupted is retried.
                if matches!(e.circuit, Circuit::HalfOpen { trial: true }) {
                    e.circuit = Circuit::HalfOpen { trial: false };
                }
                return changes;
            }
            e.samples.push_back(Sample {
                at: now,
                latency_ms,
                ok: false,
            });
            trim(&mut e.samples);
            if !counts_against(class) {
                if matches!(e.circuit, Circuit::HalfOpen { trial: true }) {
                    e.circuit = Circuit::HalfOpen { trial: false };
                }
                return changes;
            }
            e.consecutive_failures += 1;
            let open_for = Duration::from_millis(policy.circuit_open_ms);
            let reopen = matches!(e.circuit, Circuit::HalfOpen { .. });
            let trip = matches!(e.circuit, Circuit::Closed)
                && e.consecutive_failures >= policy.circuit_threshold.max(1);
            if reopen || trip {
                e.circuit = Circuit::Open {
                    until: now + open_for,
                };
                changes.push(Change::Circuit {
                    provider: id.to_string(),
                    state: CircuitState::Open,
                });
            }
            if cool {
                let length = cooldown_length(policy, class, e.cooldown_step);
                e.cooldown_step = e.cooldown_step.saturating_add(1);
                let until = now + length;
                // A longer cooldown already running is not shortened.
                if e.cooldown_until.is_none_or(|u| u < until) {
                    e.cooldown_until = Some(until);
                    e.cooldown_reason = Some(class);
                }
                changes.push(Change::Cooldown {
                    provider: id.to_string(),
                    until_in: e.cooldown_until.map_or(length, |u| u - now),
                    reason: class,
                });
            }
            changes
        })
    }

    /// End a cooldown, close the circuit and unpark (a user's reset). Statistics stay.
    pub fn reset(&self, id: &str) -> Vec<Change> {
        let mut changes = self.unpark(id);
        self.with(id, |e| {
            if e.cooldown_until.take().is_some() {
                changes.push(Change::CooldownCleared {
                    provider: id.to_string(),
                });
            }
            e.cooldown_reason = None;
            e.cooldown_step = 0;
            e.consecutive_failures = 0;
            if !matches!(e.circuit, Circuit::Closed) {
                e.circuit = Circuit::Closed;
                changes.push(Change::Circuit {
                    provider: id.to_string(),
                    state: CircuitState::Closed,
                });
            }
            changes
        })
    }

    pub fn view(&self, id: &str, now: Instant) -> HealthView {
        self.with(id, |e| {
            let cutoff = now.checked_sub(WINDOW);
            let recent: Vec<Sample> = e
                .samples
                .iter()
                .filter(|s| cutoff.is_none_or(|c| s.at >= c))
                .copied()
                .collect();
            let mut ok: Vec<u64> = recent
                .iter()
                .filter(|s| s.ok)
                .map(|s| s.latency_ms)
                .collect();
            let recent_latencies = ok.iter().rev().take(SPARK_POINTS).rev().copied().collect();
            ok.sort_unstable();
            let failures = recent.iter().filter(|s| !s.ok).count();
            HealthView {
                cooldown_left: e.cooldown_until.filter(|u| *u > now).map(|u| u - now),
                cooldown_reason: e
                    .cooldown_reason
                    .filter(|_| e.cooldown_until.is_some_and(|u| u > now)),
                circuit: match e.circuit {
                    Circuit::Closed => CircuitState::Closed,
                    Circuit::Open { until } if now < until => CircuitState::Open,
                    Circuit::Open { .. } | Circuit::HalfOpen { .. } => CircuitState::HalfOpen,
                },
                latency_p50_ms: percentile(&ok, 50),
                latency_p95_ms: percentile(&ok, 95),
                error_rate: if recent.is_empty() {
                    0.0
                } else {
                    failures as f64 / recent.len() as f64
                },
                samples: recent.len(),
                last_error: e.last_error.clone(),
                recent_latencies,
                parked: e.parked.clone(),
            }
        })
    }
}

/// A half-open trial in flight. A turn's future can be dropped mid-trial (a `--batch`
/// `timeoutMs`, `call --timeout-ms`) before `success` or `failure` runs; without this the
/// slot would stay taken and the provider skipped until restart.
pub struct TrialGuard<'a> {
    book: &'a HealthBook,
    id: String,
    armed: bool,
}

impl<'a> TrialGuard<'a> {
    pub fn new(book: &'a HealthBook, id: &str) -> Self {
        Self {
            book,
            id: id.to_string(),
            armed: true,
        }
    }

    /// The outcome is recorded: the book's state is right, and the slot may already be
    /// another turn's trial, which must not be freed.
    pub fn settled(mut self) {
        self.armed = false;
    }
}

impl Drop for TrialGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.book.release_trial(&self.id);
        }
    }
}

fn trim(samples: &mut VecDeque<Sample>) {
    while samples.len() > MAX_SAMPLES {
        samples.pop_front();
    }
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[u64], p: usize) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// Cooldown `step` (0-based): `cooldown_ms` times 5^step up to `cooldown_max_ms`; billing
/// failures get `billing_cooldown_ms` from the start.
pub fn cooldown_length(policy: &SelfHealConfig, class: FailureClass, step: u32) -> Duration {
    if class == FailureClass::Billing {
        return Duration::from_millis(policy.billing_cooldown_ms.max(policy.cooldown_ms));
    }
    let factor = 5u64.saturating_pow(step.min(20));
    Duration::from_millis(
        policy
            .cooldown_ms
            .saturating_mul(factor)
            .min(policy.cooldown_max_ms.max(policy.cooldown_ms)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> SelfHealConfig {
        SelfHealConfig {
            circuit_threshold: 3,
            circuit_open_ms: 10_000,
            ..Default::default()
        }
    }

    #[test]
    fn cooldown_steps_are_1_5_25_60_minutes_and_billing_longer() {
        let p = SelfHealConfig::default();
        let mins: Vec<u64> = (0..5)
            .map(|s| cooldown_length(&p, FailureClass::RateLimit, s).as_secs() / 60)
            .collect();
        assert_eq!(mins, vec![1, 5, 25, 60, 60]);
        assert!(cooldown_length(&p, FailureClass::Billing, 0) > Duration::from_secs(3600));
    }

    #[test]
    fn cooldown_skips_until_over_and_success_clears_it() {
        let book = HealthBook::default();
        let p = policy();
        let t0 = Instant::now();
        book.failure("a", FailureClass::RateLimit, "429", 5, true, &p, t0);
        assert_eq!(book.admit("a", t0).0, Admission::Skip("cooldown"));
        let later = t0 + Duration::from_secs(61);
        assert_eq!(book.admit("a", later).0, Admission::Go);
        // A second cooldown in a row is the next step: five minutes.
        book.failure("a", FailureClass::RateLimit, "429", 5, true, &p, later);
        let view = book.view("a", later);
        assert_eq!(view.cooldown_left, Some(Duration::from_secs(300)));
        book.success("a", 10, later);
        assert_eq!(book.admit("a", later).0, Admission::Go);
        book.failure("a", FailureClass::RateLimit, "429", 5, true, &p, later);
        assert_eq!(
            book.view("a", later).cooldown_left,
            Some(Duration::from_secs(60)),
            "success started the steps over"
        );
    }

    #[test]
    fn circuit_opens_half_opens_with_one_trial_and_closes_on_success() {
        let book = HealthBook::default();
        let p = policy();
        let t0 = Instant::now();
        for _ in 0..2 {
            book.failure("a", FailureClass::Server, "500", 5, false, &p, t0);
        }
        assert_eq!(book.admit("a", t0).0, Admission::Go);
        let changes = book.failure("a", FailureClass::Server, "500", 5, false, &p, t0);
        assert!(changes.contains(&Change::Circuit {
            provider: "a".into(),
            state: CircuitState::Open
        }));
        assert_eq!(book.admit("a", t0).0, Admission::Skip("circuit_open"));
        let t1 = t0 + Duration::from_secs(11);
        assert_eq!(book.admit("a", t1).0, Admission::Trial);
        assert_eq!(
            book.admit("a", t1).0,
            Admission::Skip("circuit_half_open"),
            "one trial at a time"
        );
        // The trial fails: open again at once.
        book.failure("a", FailureClass::Server, "500", 5, false, &p, t1);
        assert_eq!(book.admit("a", t1).0, Admission::Skip("circuit_open"));
        let t2 = t1 + Duration::from_secs(11);
        assert_eq!(book.admit("a", t2).0, Admission::Trial);
        book.success("a", 5, t2);
        assert_eq!(book.admit("a", t2).0, Admission::Go);
        assert_eq!(book.view("a", t2).circuit, CircuitState::Closed);
    }

    #[test]
    fn bad_answers_in_a_row_park_the_model_until_a_reset() {
        let book = HealthBook::default();
        let bad = |model| book.bad_answer("a", model, FailureClass::Format, "junk", 3);
        assert!(bad("m").is_empty());
        assert!(bad("m").is_empty());
        book.good_answer("a", "m");
        assert!(bad("m").is_empty(), "a good answer starts the count over");
        assert!(bad("m").is_empty());
        assert!(matches!(&bad("m")[..], [Change::Parked { model, .. }] if model == "m"));
        assert!(book.parked("a", "m").unwrap().contains("3 times in a row"));
        assert_eq!(book.parked("a", "other"), None, "parked per model");
        assert_eq!(book.view("a", Instant::now()).parked.len(), 1);
        book.reset("a");
        assert_eq!(book.parked("a", "m"), None);
        assert!(
            book.bad_answer("a", "m", FailureClass::Format, "x", 0)
                .is_empty()
                && book
                    .bad_answer("a", "m", FailureClass::Format, "x", 0)
                    .is_empty()
                && book
                    .bad_answer("a", "m", FailureClass::Format, "x", 0)
                    .is_empty()
                && book.parked("a", "m").is_none(),
            "park_after = 0 never parks"
        );
    }

    #[test]
    fn format_errors_do_not_trip_the_circuit() {
        let book = HealthBook::default();
        let p = policy();
        let t0 = Instant::now();
        for _ in 0..10 {
            book.failure("a", FailureClass::Format, "bad", 5, false, &p, t0);
        }
        assert_eq!(book.admit("a", t0).0, Admission::Go);
    }

    #[test]
    fn stats_report_percentiles_and_error_rate_in_the_window() {
        let book = HealthBook::default();
        let p = policy();
        let t0 = Instant::now();
        for ms in 1..=100 {
            book.success("a", ms, t0);
        }
        book.failure("a", FailureClass::Server, "x", 1, false, &p, t0);
        let v = book.view("a", t0);
        assert_eq!(v.latency_p50_ms, Some(50));
        assert_eq!(v.latency_p95_ms, Some(95));
        assert!((v.error_rate - 1.0 / 101.0).abs() < 1e-9);
        let v = book.view("a", t0 + WINDOW + Duration::from_secs(1));
        assert_eq!(v.samples, 0, "old samples leave the window");
    }
}
