//! The provider chain's methods: `providers.list` (each provider's state, health window and
//! key, in chain order), `providers.probe`, `providers.reset`, `providers.reorder` (written
//! to config.toml), and `models.list`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::config::redact_url;
use crate::engine::methods::{Method, NoParams};
use crate::engine::{EngineError, EngineHandle};
use crate::orchestrator::heal::millis;
use crate::orchestrator::runtime::{Runtime, emit_change, provider_kind, provider_model};
use crate::orchestrator::sessions::now_ms;
use crate::orchestrator::{CircuitState, health};
use crate::providers::OFFLINE_LABEL;

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
