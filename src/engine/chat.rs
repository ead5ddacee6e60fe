//! The agent methods: `chat.*`, `sessions.*`, `providers.*`, `models.list` and
//! `telemetry.recent`. The work lives in [`crate::orchestrator`]; these are its wire faces.

use std::path::Path;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use super::methods::{Method, NoParams};
use super::{EngineError, EngineHandle, ErrorCode};
use crate::config::redact_url;
use crate::orchestrator::heal::millis;
use crate::orchestrator::runtime::{
    Runtime, SendParams, SendResult, emit_change, error_code, provider_kind, provider_model,
};
use crate::orchestrator::sessions::{Line, SessionInfo, now_ms};
use crate::orchestrator::{CircuitState, TurnRecord, health};
use crate::providers::OFFLINE_LABEL;

impl EngineHandle {
    /// The agent runtime: provider chain and health, sessions, running turns.
    pub fn agent(&self) -> Arc<Runtime> {
        self.inner.agent.clone()
    }
}

// ---- chat -----------------------------------------------------------------------------------

pub struct ChatSend;

impl Method for ChatSend {
    const NAME: &'static str = "chat.send";
    const DESCRIPTION: &'static str = "Send a message in a session (created when missing): memory recall, the model call with self-healing, tool calls; streams deltas as events and returns the reply with usage, citations and runtime.selfHealing.";
    type Params = SendParams;
    type Output = SendResult;

    async fn run(engine: &EngineHandle, params: SendParams) -> Result<SendResult, EngineError> {
        engine.agent().send(engine, params).await
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AbortParams {
    /// The session whose turn to stop; every running turn when left out.
    #[serde(default)]
    pub session: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AbortResult {
    pub aborted: usize,
}

pub struct ChatAbort;

impl Method for ChatAbort {
    const NAME: &'static str = "chat.abort";
    const DESCRIPTION: &'static str =
        "Stop a running turn (or all): the model call, any wait and any tool call end at once.";
    type Params = AbortParams;
    type Output = AbortResult;

    async fn run(engine: &EngineHandle, p: AbortParams) -> Result<AbortResult, EngineError> {
        Ok(AbortResult {
            aborted: engine.agent().abort(p.session.as_deref()),
        })
    }
}

// ---- sessions -------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionsListResult {
    pub sessions: Vec<SessionInfo>,
    /// Sessions with a turn running now.
    pub running: Vec<String>,
}

pub struct SessionsList;

impl Method for SessionsList {
    const NAME: &'static str = "sessions.list";
    const DESCRIPTION: &'static str = "Saved sessions, newest first.";
    type Params = NoParams;
    type Output = SessionsListResult;

    async fn run(engine: &EngineHandle, _: NoParams) -> Result<SessionsListResult, EngineError> {
        let agent = engine.agent();
        let sessions = agent.with_sessions(engine, |s| Ok(s.list())).await?;
        Ok(SessionsListResult {
            sessions,
            running: agent.running(),
        })
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateParams {
    /// Letters, digits, `-` and `_`; generated when left out.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
}

pub struct SessionsCreate;

impl Method for SessionsCreate {
    const NAME: &'static str = "sessions.create";
    const DESCRIPTION: &'static str = "Start a new, empty session.";
    type Params = CreateParams;
    type Output = SessionInfo;

    async fn run(engine: &EngineHandle, p: CreateParams) -> Result<SessionInfo, EngineError> {
        let title = p.title.unwrap_or_else(|| "new session".into());
        engine
            .agent()
            .with_sessions(engine, |s| s.create(p.id.as_deref(), &title))
            .await
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionParams {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryResult {
    pub session: SessionInfo,
    /// Every line of the session: the messages, tool calls and results, and per-turn
    /// records (provider, usage, citations, selfHealing).
    pub lines: Vec<Line>,
}

pub struct SessionsHistory;

impl Method for SessionsHistory {
    const NAME: &'static str = "sessions.history";
    const DESCRIPTION: &'static str =
        "A session's transcript: messages, tool calls and per-turn telemetry.";
    type Params = SessionParams;
    type Output = HistoryResult;

    async fn run(engine: &EngineHandle, p: SessionParams) -> Result<HistoryResult, EngineError> {
        engine
            .agent()
            .with_sessions(engine, |s| {
                // Read first: reading the file brings the summary up to date.
                let lines = s.get(&p.id)?.lines.clone();
                Ok(HistoryResult {
                    session: s.info(&p.id)?,
                    lines,
                })
            })
            .await
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteResult {
    pub deleted: String,
}

pub struct SessionsDelete;

impl Method for SessionsDelete {
    const NAME: &'static str = "sessions.delete";
    const DESCRIPTION: &'static str = "Delete a session and its file.";
    type Params = SessionParams;
    type Output = DeleteResult;

    async fn run(engine: &EngineHandle, p: SessionParams) -> Result<DeleteResult, EngineError> {
        let agent = engine.agent();
        if agent.running().contains(&p.id) {
            return Err(EngineError::invalid_request(format!(
                "session {} has a turn running; abort it first (chat.abort)",
                p.id
            )));
        }
        agent.with_sessions(engine, |s| s.delete(&p.id)).await?;
        Ok(DeleteResult { deleted: p.id })
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    pub id: String,
    /// Write the JSONL to this file instead of returning it.
    #[serde(default)]
    pub path: Option<String>,
    /// The file's mode (e.g. 420 for 0644); 0600 when left out, whatever the umask.
    #[serde(default)]
    pub mode: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportResult {
    pub id: String,
    pub lines: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The JSONL, when no path was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jsonl: Option<String>,
}

pub struct SessionsExport;

impl Method for SessionsExport {
    const NAME: &'static str = "sessions.export";
    const DESCRIPTION: &'static str = "A session as JSONL, returned or written to a file.";
    type Params = ExportParams;
    type Output = ExportResult;

    async fn run(engine: &EngineHandle, p: ExportParams) -> Result<ExportResult, EngineError> {
        let jsonl = engine
            .agent()
            .with_sessions(engine, |s| s.export(&p.id))
            .await?;
        let lines = jsonl.lines().count();
        match p.path {
            Some(path) => {
                // Written whole beside, synced and renamed (crate::files): a reader never
                // sees half a file, and the mode is exact whatever the umask.
                let mode = p.mode.unwrap_or(0o600) & 0o777;
                crate::files::write_atomic(Path::new(&path), jsonl.as_bytes(), mode).map_err(
                    |e| EngineError::new(ErrorCode::Internal, format!("cannot write {path}: {e}")),
                )?;
                Ok(ExportResult {
                    id: p.id,
                    lines,
                    path: Some(path),
                    jsonl: None,
                })
            }
            None => Ok(ExportResult {
                id: p.id,
                lines,
                path: None,
                jsonl: Some(jsonl),
            }),
        }
    }
}

// ---- providers ------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderInfo {
    pub id: String,
    /// `openai`, `anthropic`, `ollama`, `offline`; empty when unknown.
    pub kind: String,
    /// The default model; "offline (no model)" for the offline provider.
    pub model: String,
    pub models: Vec<String>,
    /// Query strings and passwords redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// `env:NAME` or `file:PATH`; never the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_ref: Option<String>,
    /// Position in the chain, from 1.
    pub position: usize,
    /// `healthy`, `degraded`, `cooldown`, `circuit_open`, `circuit_half_open`, `parked`,
    /// `unconfigured`.
    pub state: String,
    /// Why it is unconfigured or parked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Cooldown end, ms since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cooldown_until_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cooldown_reason: Option<String>,
    pub circuit: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p50_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p95_ms: Option<u64>,
    /// Failed share of the calls in the window, 0 to 1.
    pub error_rate: f64,
    /// Calls in the window.
    pub samples: usize,
    pub window_ms: u64,
    /// Latencies of the latest successful calls, oldest first (the pane's sparkline).
    pub recent_latencies_ms: Vec<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Parked models (not called until a probe or a reset) and why.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub parked: std::collections::BTreeMap<String, String>,
    /// An in-process model's state (`local`): loaded or not, memory, speed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<crate::providers::local::LocalModelStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvidersListResult {
    /// In chain order: the order turns try them.
    pub providers: Vec<ProviderInfo>,
    /// True when nothing but the offline provider can answer.
    pub offline_only: bool,
}

pub fn list_providers(engine: &EngineHandle) -> ProvidersListResult {
    let agent = engine.agent();
    let snapshot = engine.snapshot();
    let config = snapshot.config();
    let now = Instant::now();
    let providers: Vec<ProviderInfo> = agent
        .chain(engine)
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let pc = config.providers.get(&entry.id);
            let view = agent.health.view(&entry.id, now);
            let kind = provider_kind(entry, &snapshot);
            let mut models: Vec<String> = Vec::new();
            if let Some(pc) = pc {
                models.extend(pc.model.iter().cloned());
                models.extend(
                    pc.models
                        .iter()
                        .filter(|m| Some(*m) != pc.model.as_ref())
                        .cloned(),
                );
            }
            let parked = view.parked.get(&entry.model_label()).cloned();
            let (state, reason) = match &entry.target {
                Err(why) => ("unconfigured".to_string(), Some(why.clone())),
                Ok(_) if parked.is_some() => ("parked".into(), parked),
                Ok(_) if view.cooldown_left.is_some() => ("cooldown".into(), None),
                Ok(_) if view.circuit == CircuitState::Open => ("circuit_open".into(), None),
                Ok(_) if view.circuit == CircuitState::HalfOpen => {
                    ("circuit_half_open".into(), None)
                }
                Ok(_) if view.error_rate > 0.0 => ("degraded".into(), None),
                Ok(_) => ("healthy".into(), None),
            };
            let base_url = match kind {
                Some(crate::config::ProviderKind::Offline) => None,
                Some(crate::config::ProviderKind::Ollama) => {
                    Some(pc.and_then(|p| p.base_url.as_deref()).map_or_else(
                        || crate::providers::OLLAMA_DEFAULT_URL.to_string(),
                        redact_url,
                    ))
                }
                _ => pc.and_then(|p| p.base_url.as_deref()).map(redact_url),
            };
            ProviderInfo {
                id: entry.id.clone(),
                kind: kind
                    .map(|k| format!("{k:?}").to_lowercase())
                    .unwrap_or_default(),
                model: provider_model(entry),
                models,
                base_url,
                key_ref: pc.and_then(|p| p.api_key.as_ref()).map(|k| k.display_ref()),
                position: i + 1,
                state,
                reason,
                cooldown_until_ms: view.cooldown_left.map(|d| now_ms() + millis(d)),
                cooldown_reason: view.cooldown_reason.map(|c| c.as_str().to_string()),
                circuit: view.circuit.as_str().to_string(),
                latency_p50_ms: view.latency_p50_ms,
                latency_p95_ms: view.latency_p95_ms,
                error_rate: view.error_rate,
                samples: view.samples,
                window_ms: millis(health::WINDOW),
                recent_latencies_ms: view.recent_latencies,
                last_error: view.last_error,
                parked: view.parked,
                local: entry.target.as_ref().ok().and_then(|p| p.local_status()),
            }
        })
        .collect();
    let offline_only = providers
        .iter()
        .all(|p| p.kind == "offline" || p.state == "unconfigured");
    ProvidersListResult {
        providers,
        offline_only,
    }
}

pub struct ProvidersList;

impl Method for ProvidersList {
    const NAME: &'static str = "providers.list";
    const DESCRIPTION: &'static str = "The provider chain in order, with each provider's state (healthy, degraded, cooldown, circuit open/half-open, parked, unconfigured), latency p50/p95 and error rate over the window.";
    type Params = NoParams;
    type Output = ProvidersListResult;

    async fn run(engine: &EngineHandle, _: NoParams) -> Result<ProvidersListResult, EngineError> {
        Ok(list_providers(engine))
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderIdParams {
    /// One provider; all of them when left out.
    #[serde(default)]
    pub id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProbeOutcome {
    pub id: String,
    pub ok: bool,
    pub latency_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProbeResult {
    pub probes: Vec<ProbeOutcome>,
}

fn select(
    engine: &EngineHandle,
    id: Option<&str>,
) -> Result<Vec<crate::orchestrator::ChainEntry>, EngineError> {
    let chain = engine.agent().chain(engine);
    match id {
        None => Ok(chain),
        Some(id) => match chain.into_iter().find(|e| e.id == id) {
            Some(e) => Ok(vec![e]),
            None => Err(EngineError::not_found(format!(
                "no provider '{id}' in the chain; `providers list` shows them"
            ))),
        },
    }
}

pub struct ProvidersProbe;

impl Method for ProvidersProbe {
    const NAME: &'static str = "providers.probe";
    const DESCRIPTION: &'static str = "Ask a provider (or all) for its model list now; a success ends its cooldown, closes its circuit and unparks it.";
    type Params = ProviderIdParams;
    type Output = ProbeResult;

    async fn run(engine: &EngineHandle, p: ProviderIdParams) -> Result<ProbeResult, EngineError> {
        let agent = engine.agent();
        let snapshot = engine.snapshot();
        let policy = &snapshot.config().self_heal;
        let mut probes = Vec::new();
        for entry in select(engine, p.id.as_deref())? {
            let provider = match &entry.target {
                Ok(provider) => provider.clone(),
                Err(why) => {
                    probes.push(ProbeOutcome {
                        id: entry.id.clone(),
                        ok: false,
                        latency_ms: 0,
                        class: Some("unconfigured".into()),
                        error: Some(why.clone()),
                    });
                    continue;
                }
            };
            let start = Instant::now();
            let limit = entry.timeouts.first_byte.min(entry.timeouts.total);
            let result = match tokio::time::timeout(limit, provider.probe()).await {
                Ok(r) => r,
                Err(_) => Err(crate::providers::ProviderError::new(
                    crate::providers::FailureClass::Timeout(
                        crate::providers::TimeoutKind::FirstByte,
                    ),
                    format!("no answer within {} ms", millis(limit)),
                )),
            };
            let latency_ms = millis(start.elapsed());
            let changes = match &result {
                Ok(()) => {
                    let mut changes = agent.health.success(&entry.id, latency_ms, Instant::now());
                    // The provider answers again: its parked models get another chance.
                    changes.extend(agent.health.unpark(&entry.id));
                    changes
                }
                Err(e) => agent.health.failure(
                    &entry.id,
                    e.class,
                    &e.message,
                    latency_ms,
                    false,
                    policy,
                    Instant::now(),
                ),
            };
            for c in changes {
                emit_change(engine, c);
            }
            probes.push(ProbeOutcome {
                id: entry.id.clone(),
                ok: result.is_ok(),
                latency_ms,
                class: result.as_ref().err().map(|e| e.class.as_str().to_string()),
                error: result.err().map(|e| e.message),
            });
        }
        Ok(ProbeResult { probes })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResetResult {
    pub reset: Vec<String>,
}

pub struct ProvidersReset;

impl Method for ProvidersReset {
    const NAME: &'static str = "providers.reset";
    const DESCRIPTION: &'static str =
        "End a provider's (or every provider's) cooldown, close its circuit and unpark it now.";
    type Params = ProviderIdParams;
    type Output = ResetResult;

    async fn run(engine: &EngineHandle, p: ProviderIdParams) -> Result<ResetResult, EngineError> {
        let agent = engine.agent();
        let mut reset = Vec::new();
        for entry in select(engine, p.id.as_deref())? {
            for c in agent.health.reset(&entry.id) {
                emit_change(engine, c);
            }
            reset.push(entry.id);
        }
        Ok(ResetResult { reset })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReorderParams {
    /// Provider ids to try first, in this order; the rest keep their configured order.
    /// Empty: back to the configured order.
    #[serde(default)]
    pub order: Vec<String>,
    /// Save the order to the config file as `self_heal.chain_order` (the default), so it
    /// outlives this run; false: this run only.
    #[serde(default = "yes")]
    pub persist: bool,
}

impl Default for ReorderParams {
    fn default() -> Self {
        Self {
            order: Vec::new(),
            persist: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReorderResult {
    /// The chain as it is now, as `providers.list` gives it.
    #[serde(flatten)]
    pub list: ProvidersListResult,
    /// The config file the order was saved to; left out when it was not saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_to: Option<String>,
    /// Why the order holds for this run only, when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub struct ProvidersReorder;

impl Method for ProvidersReorder {
    const NAME: &'static str = "providers.reorder";
    const DESCRIPTION: &'static str = "Put providers first in the chain (the providers pane's move keys) and save the order to the config file as self_heal.chain_order, comments and other keys kept, with a backup.";
    type Params = ReorderParams;
    type Output = ReorderResult;

    async fn run(engine: &EngineHandle, p: ReorderParams) -> Result<ReorderResult, EngineError> {
        let snapshot = engine.snapshot();
        let known = Runtime::chain_ids(&snapshot, &[]);
        if let Some(bad) = p.order.iter().find(|id| !known.contains(id)) {
            return Err(EngineError::not_found(format!(
                "no provider '{bad}' in the chain; the chain is: {}",
                known.join(", ")
            )));
        }
        let mut order: Vec<String> = Vec::new();
        for id in p.order {
            if !order.contains(&id) {
                order.push(id);
            }
        }
        let agent = engine.agent();
        if !p.persist {
            agent.set_order(Some(order));
            return Ok(ReorderResult {
                list: list_providers(engine),
                saved_to: None,
                note: Some("this run only (persist: false)".into()),
            });
        }
        let file = snapshot.loaded.paths.config_file.clone();
        let lock_dir = crate::findings::state_paths(&snapshot).journal;
        let value = toml::Value::Array(order.iter().cloned().map(toml::Value::String).collect());
        let worker = engine.clone();
        let target = file.clone();
        let saved = tokio::task::spawn_blocking(move || {
            let changed = crate::findings::fix::set_config_key(
                &lock_dir,
                &target,
                &["self_heal", "chain_order"],
                value,
            )?;
            if changed {
                worker.reload();
            }
            Ok::<_, crate::findings::fix::FixError>(())
        })
        .await
        .map_err(|e| EngineError::internal(format!("saving the chain order failed: {e}")))?;
        let shown = order
            .iter()
            .map(|id| format!("\"{id}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let saved_ok = saved.is_ok();
        let note = match saved {
            Ok(()) => {
                agent.set_order(None);
                let now = engine.snapshot();
                // A variable or a broken file can still win over what was saved.
                if Runtime::chain_ids(&now, &agent.order(&now)) == Runtime::chain_ids(&now, &order)
                {
                    None
                } else {
                    agent.set_order(Some(order));
                    Some(format!(
                        "saved to {}, but another setting overrides it (an \
                         OPENCLAW_RS_SELF_HEAL__CHAIN_ORDER variable, or an error in the file: \
                         `openclaw-rs config check`); the new order holds for this run",
                        file.display()
                    ))
                }
            }
            Err(e) => {
                agent.set_order(Some(order));
                Some(format!(
                    "the new order holds for this run only; it could not be saved: {e}. To keep \
                     it, set self_heal.chain_order = [{shown}] in the config file"
                ))
            }
        };
        Ok(ReorderResult {
            list: list_providers(engine),
            saved_to: saved_ok.then(|| file.display().to_string()),
            note,
        })
    }
}

// ---- models ---------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelsParams {
    /// One provider; all of them when left out.
    #[serde(default)]
    pub provider: Option<String>,
    /// Ask the providers (Ollama's /api/tags, /models); off: configured models only.
    #[serde(default = "yes")]
    pub discover: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderModels {
    pub provider: String,
    pub models: Vec<String>,
    /// Why discovery failed, when it did (the configured models are still listed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelsResult {
    pub providers: Vec<ProviderModels>,
}

pub struct ModelsList;

impl Method for ModelsList {
    const NAME: &'static str = "models.list";
    const DESCRIPTION: &'static str =
        "Models per provider: configured ones, and what each provider reports serving.";
    type Params = ModelsParams;
    type Output = ModelsResult;

    async fn run(engine: &EngineHandle, p: ModelsParams) -> Result<ModelsResult, EngineError> {
        let snapshot = engine.snapshot();
        let mut out = Vec::new();
        for entry in select(engine, p.provider.as_deref())? {
            let pc = snapshot.config().providers.get(&entry.id);
            let mut models: Vec<String> = pc
                .map(|pc| pc.model.iter().chain(pc.models.iter()).cloned().collect())
                .unwrap_or_default();
            let mut error = None;
            match &entry.target {
                Ok(provider) if p.discover => {
                    let limit = entry.timeouts.first_byte.min(entry.timeouts.total);
                    match tokio::time::timeout(limit, provider.models()).await {
                        Ok(Ok(found)) => models.extend(found),
                        Ok(Err(e)) => error = Some(e.to_string()),
                        Err(_) => error = Some(format!("no answer within {} ms", millis(limit))),
                    }
                }
                Ok(provider) if provider.kind() == crate::config::ProviderKind::Offline => {
                    models.push(OFFLINE_LABEL.to_string());
                }
                Ok(_) => {}
                Err(why) => error = Some(why.clone()),
            }
            let mut seen = std::collections::HashSet::new();
            models.retain(|m| seen.insert(m.clone()));
            out.push(ProviderModels {
                provider: entry.id.clone(),
                models,
                error,
            });
        }
        Ok(ModelsResult { providers: out })
    }
}

// ---- telemetry ------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecentParams {
    /// Turns to return, newest last (default 50).
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecentResult {
    pub turns: Vec<TurnRecord>,
    /// How many turns the history keeps (`telemetry.history`; 0 when telemetry is off).
    pub capacity: usize,
}

pub struct TelemetryRecent;

impl Method for TelemetryRecent {
    const NAME: &'static str = "telemetry.recent";
    const DESCRIPTION: &'static str =
        "Recent turns with their self-heal attempts (the providers pane's timeline).";
    type Params = RecentParams;
    type Output = RecentResult;

    async fn run(engine: &EngineHandle, p: RecentParams) -> Result<RecentResult, EngineError> {
        let snapshot = engine.snapshot();
        let t = &snapshot.config().telemetry;
        let capacity = match t.level {
            crate::config::TelemetryLevel::Off => 0,
            _ => t.history as usize,
        };
        Ok(RecentResult {
            turns: engine.agent().history.recent(p.limit.unwrap_or(50)),
            capacity,
        })
    }
}

/// For faces: the engine error of a failed turn carries `details.runtime.selfHealing`.
pub fn failed_turn_telemetry(error: &EngineError) -> Option<Value> {
    error
        .details
        .as_ref()
        .and_then(|d| d.pointer("/runtime/selfHealing"))
        .cloned()
}

/// Re-exported so faces need not reach into the orchestrator for the mapping.
pub fn code_for(class: Option<crate::providers::FailureClass>) -> ErrorCode {
    error_code(class)
}
