//! The agent runtime the engine owns: the provider chain, provider health, sessions, the
//! running turns (for abort), and the turn loop itself (recall, model call with self-heal,
//! tool calls in a bounded loop).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rand::SeedableRng;
use rand::rngs::StdRng;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::heal::{Cancel, ChainEntry, millis};
use super::health::{Change, HealthBook};
use super::host::{AgentError, AgentErrorKind, TurnEvent, TurnHost};
use super::sessions::{SessionError, SessionStore, now_ms};
use super::telemetry::{History, Runtime as RuntimeTelemetry};
use super::tools::ToolOutcome;
use crate::config::{ProviderKind, Snapshot};
use crate::providers::{self, ChatMessage, FailureClass, Provider, Role, Timeouts, Usage};
use crate::sandbox::safety::SafetyReport;

mod turn;

/// Built providers for one configuration snapshot.
struct Built {
    snapshot: Arc<Snapshot>,
    entries: Vec<ChainEntry>,
}

pub struct Runtime {
    pub health: HealthBook,
    pub history: History,
    sessions: tokio::sync::Mutex<Option<SessionStore>>,
    built: Mutex<Option<Built>>,
    /// A chain order for this run only, over `self_heal.chain_order`: set when a reorder
    /// was not (or could not be) saved to the config file.
    order: Mutex<Option<Vec<String>>>,
    running: Mutex<HashMap<String, Cancel>>,
    rng: Mutex<StdRng>,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SendParams {
    /// Session id; created when it does not exist. Left out: a new session.
    #[serde(default)]
    pub session: Option<String>,
    pub message: String,
    /// Try this provider first for this turn.
    #[serde(default)]
    pub provider: Option<String>,
    /// Model for `provider` (or the first provider of the chain).
    #[serde(default)]
    pub model: Option<String>,
    /// A model must answer: the offline provider is not asked, and a turn no model could
    /// answer fails with UNAVAILABLE instead of ending as an offline answer.
    #[serde(default)]
    pub require_model: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Citation {
    /// The `[n]` the context and the reply use.
    pub index: usize,
    pub source: String,
    pub line_start: u64,
    pub line_end: u64,
    pub chunk_id: Value,
    pub snippet: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendResult {
    pub session: String,
    pub reply: String,
    /// A model's visible reasoning, when it sent any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reasoning: String,
    pub provider: String,
    pub model: String,
    pub usage: Usage,
    pub citations: Vec<Citation>,
    pub tool_calls: Vec<ToolOutcome>,
    /// The tool loop reached `chat.max_tool_rounds`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tool_rounds_exhausted: bool,
    pub latency_ms: u64,
    pub runtime: RuntimeTelemetry,
    /// The SafetyLayer's decision over the reply (rule ids and reasons, never the match).
    #[serde(default, skip_serializing_if = "SafetyReport::is_clean")]
    pub safety: SafetyReport,
}

fn session_error(e: SessionError) -> AgentError {
    let kind = match &e {
        SessionError::BadId(_) | SessionError::Exists(_) => AgentErrorKind::InvalidRequest,
        SessionError::NotFound(_) => AgentErrorKind::NotFound,
        SessionError::Io { .. } => AgentErrorKind::Internal,
    };
    AgentError::new(kind, e.to_string())
}

/// The kind of error a failed turn with this failure class ends in.
pub fn error_kind(class: Option<FailureClass>) -> AgentErrorKind {
    match class {
        None => AgentErrorKind::Unavailable,
        Some(FailureClass::Cancelled) => AgentErrorKind::Cancelled,
        Some(FailureClass::Timeout(_)) => AgentErrorKind::Timeout,
        Some(FailureClass::Auth | FailureClass::Billing) => AgentErrorKind::Denied,
        Some(FailureClass::ModelNotFound) => AgentErrorKind::NotFound,
        Some(FailureClass::Format | FailureClass::ContextOverflow) => {
            AgentErrorKind::InvalidRequest
        }
        Some(_) => AgentErrorKind::Unavailable,
    }
}

/// Removes a session's cancel handle when its turn ends, however it ends.
struct Running<'a> {
    runtime: &'a Runtime,
    session: String,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.runtime.running.lock() {
            map.remove(&self.session);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

pub fn emit_change(host: &dyn TurnHost, change: Change) {
    let event = match change {
        Change::Cooldown {
            provider,
            until_in,
            reason,
        } => TurnEvent::ProviderState {
            provider,
            state: "cooldown".into(),
            until_ms: Some(now_ms() + millis(until_in)),
            reason: Some(reason.as_str().into()),
        },
        Change::CooldownCleared { provider } => TurnEvent::ProviderState {
            provider,
            state: "cooldown_cleared".into(),
            until_ms: None,
            reason: None,
        },
        Change::Parked {
            provider,
            model,
            reason,
        } => TurnEvent::ProviderState {
            provider,
            state: "parked".into(),
            until_ms: None,
            reason: Some(format!("{model}: {reason}")),
        },
        Change::Unparked { provider } => TurnEvent::ProviderState {
            provider,
            state: "unparked".into(),
            until_ms: None,
            reason: None,
        },
        Change::Circuit { provider, state } => TurnEvent::ProviderState {
            provider,
            state: format!("circuit_{}", state.as_str()),
            until_ms: None,
            reason: None,
        },
    };
    host.emit_turn(event);
}

impl Runtime {
    pub fn new() -> Self {
        let seed = now_ms() ^ u64::from(std::process::id()).rotate_left(32);
        Self {
            health: HealthBook::default(),
            history: History::new(),
            sessions: tokio::sync::Mutex::new(None),
            built: Mutex::new(None),
            order: Mutex::new(None),
            running: Mutex::new(HashMap::new()),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
        }
    }

    /// The provider ids in the order turns try them.
    pub fn chain_ids(snapshot: &Snapshot, order: &[String]) -> Vec<String> {
        let config = snapshot.config();
        let mut configured: Vec<(&String, i32)> = config
            .providers
            .iter()
            .filter(|(_, p)| p.enabled)
            .map(|(id, p)| (id, p.priority))
            .collect();
        configured.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(b.0)));
        let mut ids: Vec<String> = configured.into_iter().map(|(id, _)| id.clone()).collect();
        for id in &config.self_heal.fallback {
            let disabled = config.providers.get(id).is_some_and(|p| !p.enabled);
            let known = config.providers.contains_key(id) || ProviderKind::from_id(id).is_some();
            if known && !disabled && !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        let mut ordered: Vec<String> = order
            .iter()
            .filter(|id| ids.contains(id))
            .cloned()
            .collect();
        ordered.extend(ids.into_iter().filter(|id| !order.contains(id)));
        ordered
    }

    /// The chain for this snapshot, built once per configuration. Keys are checked now
    /// (never stored): a provider whose key cannot be resolved is unconfigured.
    pub fn chain(&self, host: &dyn TurnHost) -> Vec<ChainEntry> {
        let snapshot = host.snapshot();
        let order = self.order(&snapshot);
        let mut built = lock(&self.built);
        let fresh = built
            .as_ref()
            .is_some_and(|b| Arc::ptr_eq(&b.snapshot, &snapshot));
        if !fresh {
            let config = snapshot.config();
            let entries = Self::chain_ids(&snapshot, &[])
                .into_iter()
                .map(|id| {
                    let pc = config.providers.get(&id);
                    ChainEntry {
                        target: providers::build(&id, config, pc, Some(host.provider_host())),
                        timeouts: Timeouts::for_provider(config, pc),
                        model: String::new(),
                        id,
                    }
                })
                .collect();
            *built = Some(Built {
                snapshot: snapshot.clone(),
                entries,
            });
        }
        let entries = built
            .as_ref()
            .map(|b| b.entries.clone())
            .unwrap_or_default();
        drop(built);
        let config = snapshot.config();
        let ids = Self::chain_ids(&snapshot, &order);
        ids.iter()
            .filter_map(|id| entries.iter().find(|e| &e.id == id).cloned())
            .map(|mut e| {
                if let Some(Err(why)) = config
                    .providers
                    .get(&e.id)
                    .and_then(|p| p.api_key.as_ref())
                    .map(|k| k.is_available())
                {
                    e.target = Err(format!("{}: {why}", e.id));
                }
                e
            })
            .collect()
    }

    /// Order the chain for this run only; `None` goes back to `self_heal.chain_order`.
    pub fn set_order(&self, order: Option<Vec<String>>) {
        *lock(&self.order) = order;
    }

    /// The ids tried first: this run's order when one is set, else the configured one.
    pub fn order(&self, snapshot: &Snapshot) -> Vec<String> {
        lock(&self.order)
            .clone()
            .unwrap_or_else(|| snapshot.config().self_heal.chain_order.clone())
    }

    /// The session store, read from disk on first use.
    pub async fn sessions(
        &self,
        host: &dyn TurnHost,
    ) -> Result<tokio::sync::MutexGuard<'_, Option<SessionStore>>, AgentError> {
        let mut guard = self.sessions.lock().await;
        if guard.is_none() {
            let dir = host.snapshot().loaded.paths.state_dir.join("sessions");
            *guard = Some(SessionStore::open(&dir).map_err(session_error)?);
        }
        Ok(guard)
    }

    pub async fn with_sessions<T>(
        &self,
        host: &dyn TurnHost,
        f: impl FnOnce(&mut SessionStore) -> Result<T, SessionError>,
    ) -> Result<T, AgentError> {
        let mut guard = self.sessions(host).await?;
        match guard.as_mut() {
            Some(store) => f(store).map_err(session_error),
            None => Err(AgentError::new(
                AgentErrorKind::Internal,
                "session store not open",
            )),
        }
    }

    /// Abort the running turn of `session`, or every running turn. Returns how many.
    pub fn abort(&self, session: Option<&str>) -> usize {
        let map = lock(&self.running);
        let mut n = 0;
        for (id, cancel) in map.iter() {
            if session.is_none_or(|s| s == id) {
                cancel.cancel();
                n += 1;
            }
        }
        n
    }

    pub fn running(&self) -> Vec<String> {
        lock(&self.running).keys().cloned().collect()
    }
}

/// Drop the older half of the conversation (system messages and the last user message
/// stay). False when there is nothing left to drop.
fn compact(messages: &mut Vec<ChatMessage>) -> bool {
    let Some(last_user) = messages.iter().rposition(|m| m.role == Role::User) else {
        return false;
    };
    let droppable: Vec<usize> = (0..last_user)
        .filter(|&i| messages[i].role != Role::System)
        .collect();
    if droppable.is_empty() {
        return false;
    }
    let mut cut = droppable.len().div_ceil(2);
    // Never leave a tool result without the call it answers.
    while cut < droppable.len() && messages[droppable[cut]].role == Role::Tool {
        cut += 1;
    }
    let drop: std::collections::HashSet<usize> = droppable[..cut].iter().copied().collect();
    let mut i = 0;
    messages.retain(|_| {
        let keep = !drop.contains(&i);
        i += 1;
        keep
    });
    true
}

/// The display name of a provider entry's model, for lists.
pub fn provider_model(entry: &ChainEntry) -> String {
    match &entry.target {
        Ok(p) if p.kind() == ProviderKind::Offline => providers::OFFLINE_LABEL.to_string(),
        Ok(p) => p.default_model(),
        Err(_) => String::new(),
    }
}

pub fn provider_kind(entry: &ChainEntry, snapshot: &Snapshot) -> Option<ProviderKind> {
    match &entry.target {
        Ok(p) => Some(Provider::kind(p.as_ref())),
        Err(_) => snapshot
            .config()
            .providers
            .get(&entry.id)
            .and_then(|p| p.kind)
            .or_else(|| ProviderKind::from_id(&entry.id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compaction_keeps_system_and_the_question_and_never_orphans_tool_results() {
        let mut m = vec![
            ChatMessage::new(Role::System, "sys"),
            ChatMessage::new(Role::User, "1"),
            ChatMessage::new(Role::Assistant, "2"),
            ChatMessage::new(Role::Tool, "3"),
            ChatMessage::new(Role::Assistant, "4"),
            ChatMessage::new(Role::User, "now"),
        ];
        assert!(compact(&mut m));
        let texts: Vec<_> = m.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(texts, vec!["sys", "4", "now"]);
        let mut m = vec![
            ChatMessage::new(Role::System, "s"),
            ChatMessage::new(Role::User, "q"),
        ];
        assert!(!compact(&mut m));
    }
}
