//! The seed's telemetry shape (`runtime.selfHealing`) and the bounded history behind
//! `telemetry.recent`.

use std::collections::VecDeque;
use std::sync::Mutex;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One provider attempt, or a provider passed over (status `skipped`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub provider: String,
    pub model: String,
    /// `ok`, `error`, `skipped` or `cancelled`.
    pub status: String,
    /// The failure class (`rate_limit`, `timeout.first_byte`, ...) or why it was skipped
    /// (`cooldown`, `circuit_open`, `unconfigured`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub latency_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SelfHealing {
    pub enabled: bool,
    /// The turn succeeded after at least one failed or skipped attempt.
    pub recovered: bool,
    pub profile: String,
    pub max_attempts: u32,
    /// Time spent waiting between attempts (backoff and Retry-After).
    pub backoff_ms: u64,
    pub attempts: Vec<Attempt>,
    /// The offline provider answered, not a model (`degradedReason` says why).
    #[serde(default)]
    pub degraded: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded_reason: Option<String>,
}

impl SelfHealing {
    pub fn new(enabled: bool, profile: &str, max_attempts: u32) -> Self {
        Self {
            enabled,
            recovered: false,
            profile: profile.to_string(),
            max_attempts,
            backoff_ms: 0,
            attempts: Vec::new(),
            degraded: false,
            degraded_reason: None,
        }
    }

    /// Attempts that reached a provider (skips excluded).
    pub fn tries(&self) -> usize {
        self.attempts
            .iter()
            .filter(|a| a.status != "skipped")
            .count()
    }

    /// "recovered via groq after 2 attempts", for badges and status lines.
    pub fn badge(&self) -> Option<String> {
        let last = self.attempts.last()?;
        if self.degraded {
            Some(match &self.degraded_reason {
                Some(why) => format!("offline answer: {why}"),
                None => "offline answer".into(),
            })
        } else if self.recovered {
            Some(format!(
                "recovered via {} after {} attempt{}",
                last.provider,
                self.attempts.len(),
                if self.attempts.len() == 1 { "" } else { "s" }
            ))
        } else if last.status != "ok" {
            Some(format!(
                "failed after {} attempt{}: {}",
                self.attempts.len(),
                if self.attempts.len() == 1 { "" } else { "s" },
                last.reason.as_deref().unwrap_or(&last.status)
            ))
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Runtime {
    pub self_healing: SelfHealing,
}

/// One finished turn in the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TurnRecord {
    /// Milliseconds since the Unix epoch.
    pub at: u64,
    pub session: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub provider: String,
    pub model: String,
    pub latency_ms: u64,
    pub self_healing: SelfHealing,
}

pub struct History {
    records: Mutex<VecDeque<TurnRecord>>,
}

impl History {
    pub fn new() -> Self {
        Self {
            records: Mutex::new(VecDeque::new()),
        }
    }

    /// Keep at most `cap` turns; 0 keeps nothing (telemetry off).
    pub fn push(&self, record: TurnRecord, cap: usize) {
        let mut records = match self.records.lock() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        records.push_back(record);
        while records.len() > cap {
            records.pop_front();
        }
    }

    /// The newest `limit` turns, newest last.
    pub fn recent(&self, limit: usize) -> Vec<TurnRecord> {
        let records = match self.records.lock() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        let skip = records.len().saturating_sub(limit);
        records.iter().skip(skip).cloned().collect()
    }
}

impl Default for History {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(provider: &str, status: &str, reason: Option<&str>) -> Attempt {
        Attempt {
            provider: provider.into(),
            model: "m".into(),
            status: status.into(),
            reason: reason.map(str::to_string),
            latency_ms: 1,
        }
    }

    #[test]
    fn badge_names_the_provider_that_recovered() {
        let mut t = SelfHealing::new(true, "core", 3);
        t.attempts
            .push(attempt("openai", "error", Some("rate_limit")));
        t.attempts.push(attempt("groq", "ok", None));
        t.recovered = true;
        assert_eq!(t.badge().unwrap(), "recovered via groq after 2 attempts");
        let mut t = SelfHealing::new(true, "core", 3);
        t.attempts.push(attempt("openai", "ok", None));
        assert_eq!(t.badge(), None);
    }

    #[test]
    fn an_offline_answer_always_has_a_badge() {
        let mut t = SelfHealing::new(true, "core", 3);
        t.attempts.push(attempt("offline", "ok", None));
        t.degraded = true;
        t.degraded_reason = Some("no model answered (openai auth)".into());
        assert_eq!(
            t.badge().unwrap(),
            "offline answer: no model answered (openai auth)"
        );
    }

    #[test]
    fn history_is_bounded() {
        let h = History::new();
        for i in 0..10 {
            h.push(
                TurnRecord {
                    at: i,
                    session: "s".into(),
                    ok: true,
                    error: None,
                    provider: "p".into(),
                    model: "m".into(),
                    latency_ms: 1,
                    self_healing: SelfHealing::new(true, "core", 3),
                },
                4,
            );
        }
        let recent = h.recent(100);
        assert_eq!(recent.len(), 4);
        assert_eq!(recent[0].at, 6);
        assert_eq!(h.recent(2)[1].at, 9);
    }
}
