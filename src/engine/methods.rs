//! The method table: one name, one params type, one result type per engine operation.
//!
//! `--batch`, `call` and the TUI all go through this table, so a method behaves and
//! serializes the same in every face. Adding a method is: a type implementing [`Method`] and
//! a line in [`METHODS`].

use std::future::Future;
use std::pin::Pin;

use schemars::{JsonSchema, Schema};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{EngineError, EngineHandle};
use crate::config::{self, BackendChoice, Diagnostic, EmbedderChoice, Level};
// The doctor, audit and fix methods live beside the other method groups; their types stay
// reachable here, where the faces have always named them.
pub use super::findings::{
    DoctorRun, FindingsFix, FindingsFixAll, FindingsJournal, FindingsScan, FindingsSuppress,
    FindingsUndo, FixAllParams, FixAllResult, FixFailure, FixParams, JournalResult, ScanParams,
    SecurityAudit, SuppressParams, UndoParams,
};

pub trait Method: 'static {
    const NAME: &'static str;
    const DESCRIPTION: &'static str;
    type Params: DeserializeOwned + JsonSchema + Send;
    type Output: Serialize + JsonSchema + Send;

    fn run(
        engine: &EngineHandle,
        params: Self::Params,
    ) -> impl Future<Output = Result<Self::Output, EngineError>> + Send;
}

pub type BoxedCall = Pin<Box<dyn Future<Output = Result<Value, EngineError>> + Send>>;

/// A method with its types erased to JSON, for name-based dispatch.
pub struct MethodEntry {
    pub name: &'static str,
    pub description: &'static str,
    params_schema: fn() -> Schema,
    result_schema: fn() -> Schema,
    call: fn(EngineHandle, Value) -> BoxedCall,
}

impl MethodEntry {
    const fn of<M: Method>() -> Self {
        Self {
            name: M::NAME,
            description: M::DESCRIPTION,
            params_schema: || schemars::schema_for!(M::Params),
            result_schema: || schemars::schema_for!(M::Output),
            call: call_erased::<M>,
        }
    }

    pub fn params_schema(&self) -> Schema {
        (self.params_schema)()
    }

    pub fn result_schema(&self) -> Schema {
        (self.result_schema)()
    }

    pub fn call(&self, engine: EngineHandle, params: Value) -> BoxedCall {
        (self.call)(engine, params)
    }
}

fn call_erased<M: Method>(engine: EngineHandle, params: Value) -> BoxedCall {
    Box::pin(async move {
        // Absent params mean "all defaults", so `{"method": "status"}` is a whole request.
        let params = match params {
            Value::Null => Value::Object(Default::default()),
            Value::Object(_) => params,
            other => {
                return Err(EngineError::invalid_request(format!(
                    "params for {} must be a JSON object, not {}",
                    M::NAME,
                    json_type(&other)
                ))
                .with_details(serde_json::json!({ "method": M::NAME })));
            }
        };
        let params: M::Params = serde_json::from_value(params).map_err(|e| {
            EngineError::invalid_request(format!("invalid params for {}: {e}", M::NAME))
                .with_details(serde_json::json!({ "method": M::NAME }))
        })?;
        let output = M::run(&engine, params).await?;
        serde_json::to_value(output).map_err(|e| {
            EngineError::internal(format!("{}: result not serializable: {e}", M::NAME))
        })
    })
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Every method the engine answers, in the order `methods.list` shows them.
pub static METHODS: &[MethodEntry] = &[
    MethodEntry::of::<Status>(),
    MethodEntry::of::<Health>(),
    MethodEntry::of::<ConfigGet>(),
    MethodEntry::of::<ConfigReload>(),
    MethodEntry::of::<ProfileGet>(),
    MethodEntry::of::<DoctorRun>(),
    MethodEntry::of::<SecurityAudit>(),
    MethodEntry::of::<FindingsScan>(),
    MethodEntry::of::<FindingsFix>(),
    MethodEntry::of::<FindingsFixAll>(),
    MethodEntry::of::<FindingsUndo>(),
    MethodEntry::of::<FindingsSuppress>(),
    MethodEntry::of::<FindingsJournal>(),
    MethodEntry::of::<super::memory::MemoryAdd>(),
    MethodEntry::of::<super::memory::MemorySearch>(),
    MethodEntry::of::<super::memory::MemoryGet>(),
    MethodEntry::of::<super::memory::MemoryDelete>(),
    MethodEntry::of::<super::memory::MemoryIndex>(),
    MethodEntry::of::<super::memory::MemoryCancel>(),
    MethodEntry::of::<super::memory::MemoryStatus>(),
    MethodEntry::of::<super::memory::MemoryGraphNeighbors>(),
    MethodEntry::of::<super::memory::MemoryGraphPath>(),
    MethodEntry::of::<super::memory::MemoryGraphNode>(),
    MethodEntry::of::<super::memory::MemoryGraphTop>(),
    MethodEntry::of::<super::voice::TtsStatusMethod>(),
    MethodEntry::of::<super::voice::TtsProvidersMethod>(),
    MethodEntry::of::<super::voice::TtsEnable>(),
    MethodEntry::of::<super::voice::TtsDisable>(),
    MethodEntry::of::<super::voice::TtsSetProvider>(),
    MethodEntry::of::<super::voice::TtsConvert>(),
    MethodEntry::of::<super::voice::SttTranscribe>(),
    MethodEntry::of::<super::voice::SttStatusMethod>(),
    MethodEntry::of::<super::sandbox::ToolsList>(),
    MethodEntry::of::<super::sandbox::ToolsDescribe>(),
    MethodEntry::of::<super::sandbox::ToolsInvoke>(),
    MethodEntry::of::<super::sandbox::SandboxRun>(),
    MethodEntry::of::<super::sandbox::SandboxStatus>(),
    MethodEntry::of::<super::chat::ChatSend>(),
    MethodEntry::of::<super::chat::ChatAbort>(),
    MethodEntry::of::<super::chat::SessionsList>(),
    MethodEntry::of::<super::chat::SessionsCreate>(),
    MethodEntry::of::<super::chat::SessionsHistory>(),
    MethodEntry::of::<super::chat::SessionsDelete>(),
    MethodEntry::of::<super::chat::SessionsExport>(),
    MethodEntry::of::<super::chat::ProvidersList>(),
    MethodEntry::of::<super::chat::ProvidersProbe>(),
    MethodEntry::of::<super::chat::ProvidersReset>(),
    MethodEntry::of::<super::chat::ProvidersReorder>(),
    MethodEntry::of::<super::chat::ModelsList>(),
    MethodEntry::of::<super::chat::TelemetryRecent>(),
    MethodEntry::of::<MethodsList>(),
];

pub fn find(name: &str) -> Option<&'static MethodEntry> {
    METHODS.iter().find(|m| m.name == name)
}

/// Params for methods that take none. Unknown fields are refused so typos surface.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

// ---- status ---------------------------------------------------------------------------------

pub struct Status;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusResult {
    pub version: String,
    /// `core` or `edge`: what this binary was built as.
    pub build_track: String,
    pub profile: String,
    /// Cargo features compiled in.
    pub features: Vec<String>,
    pub state_dir: String,
    pub config_file: String,
    pub uptime_ms: u64,
    pub sandbox: BackendChoice,
    pub embedder: EmbedderChoice,
    /// Problems in the configuration and in the faces' files (theme, keymap).
    pub config_errors: usize,
    pub config_warnings: usize,
}

impl Method for Status {
    const NAME: &'static str = "status";
    const DESCRIPTION: &'static str = "Version, build track, profile, features, state dir, uptime and the sandbox backend in use.";
    type Params = NoParams;
    type Output = StatusResult;

    async fn run(engine: &EngineHandle, _: NoParams) -> Result<StatusResult, EngineError> {
        let snapshot = engine.snapshot();
        let loaded = &snapshot.loaded;
        let count = |level| {
            snapshot
                .diagnostics
                .iter()
                .filter(|d| d.level == level)
                .count()
        };
        Ok(StatusResult {
            version: env!("CARGO_PKG_VERSION").to_string(),
            build_track: config::BUILD_TRACK.to_string(),
            profile: loaded.profile.name.clone(),
            features: compiled_features(),
            state_dir: loaded.paths.state_dir.display().to_string(),
            config_file: loaded.paths.config_file.display().to_string(),
            uptime_ms: u64::try_from(engine.uptime().as_millis()).unwrap_or(u64::MAX),
            sandbox: snapshot.sandbox_backend.clone(),
            embedder: snapshot.embedder.clone(),
            config_errors: count(Level::Error),
            config_warnings: count(Level::Warning),
        })
    }
}

pub fn compiled_features() -> Vec<String> {
    let mut features = Vec::new();
    if cfg!(feature = "edge") {
        features.push("edge".to_string());
    }
    features
}

// ---- health ---------------------------------------------------------------------------------

pub struct Health;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthResult {
    /// True when every check passed and the configuration has no errors.
    pub ok: bool,
    pub checks: Vec<HealthCheck>,
    /// Problems in config, profile, theme or keymap files, with file:line:column.
    pub diagnostics: Vec<Diagnostic>,
}

impl Method for Health {
    const NAME: &'static str = "health";
    const DESCRIPTION: &'static str = "Runs quick self-checks (state dir, configuration, sandbox backend, provider keys) and lists configuration diagnostics.";
    type Params = NoParams;
    type Output = HealthResult;

    async fn run(engine: &EngineHandle, _: NoParams) -> Result<HealthResult, EngineError> {
        let snapshot = engine.snapshot();
        let loaded = &snapshot.loaded;
        // File system work runs off the async threads so `timeoutMs` can cut it short.
        let dir = loaded.paths.state_dir.clone();
        let state_dir = tokio::task::spawn_blocking(move || state_dir_check(&dir))
            .await
            .map_err(|e| EngineError::internal(format!("state dir check failed: {e}")))?;
        let mut checks = vec![state_dir];

        let errors = snapshot.diagnostics.iter().filter(|d| d.is_error()).count();
        checks.push(HealthCheck {
            name: "config.valid".into(),
            ok: errors == 0,
            detail: if errors == 0 {
                format!(
                    "{} layer(s) applied",
                    loaded.layers.iter().filter(|l| l.applied).count()
                )
            } else {
                format!("{errors} error(s); running on what is valid, see diagnostics")
            },
        });

        for (name, choice) in [
            (
                "sandbox.backend",
                (
                    snapshot.sandbox_backend.in_use.as_str(),
                    &snapshot.sandbox_backend.fallback_reason,
                ),
            ),
            (
                "memory.embedder",
                (
                    snapshot.embedder.in_use.as_str(),
                    &snapshot.embedder.fallback_reason,
                ),
            ),
        ] {
            let (in_use, fallback) = choice;
            checks.push(HealthCheck {
                name: name.into(),
                ok: fallback.is_none(),
                detail: fallback
                    .clone()
                    .unwrap_or_else(|| format!("{in_use} available")),
            });
        }

        for (id, provider) in &snapshot.config().providers {
            let Some(key) = provider.api_key.as_ref().filter(|_| provider.enabled) else {
                continue;
            };
            let name = format!("provider.{id}.api_key");
            let check = match key.is_available() {
                Ok(()) if key.is_inline() => HealthCheck {
                    name,
                    ok: false,
                    detail: "a literal key is stored in the config; use env:NAME or file:PATH"
                        .into(),
                },
                Ok(()) => HealthCheck {
                    name,
                    ok: true,
                    detail: format!("{} is set", key.display_ref()),
                },
                Err(e) => HealthCheck {
                    name,
                    ok: false,
                    detail: e.to_string(),
                },
            };
            checks.push(check);
        }

        Ok(HealthResult {
            ok: checks.iter().all(|c| c.ok),
            checks,
            diagnostics: snapshot.diagnostics.clone(),
        })
    }
}

fn state_dir_check(dir: &std::path::Path) -> HealthCheck {
    let name = "state_dir.writable".to_string();
    // A real write, because modes alone miss read-only mounts and full disks.
    let probe = dir.join(format!(".health-{}", std::process::id()));
    match std::fs::write(&probe, b"ok").and_then(|()| std::fs::remove_file(&probe)) {
        Ok(()) => HealthCheck {
            name,
            ok: true,
            detail: format!("{} is writable", dir.display()),
        },
        Err(e) => HealthCheck {
            name,
            ok: false,
            detail: format!("{}: {e}", dir.display()),
        },
    }
}

// ---- config.get -----------------------------------------------------------------------------

pub struct ConfigGet;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigGetParams {
    /// Dotted key such as `sandbox.fuel`; omit for the whole configuration.
    #[serde(default)]
    pub key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigGetResult {
    pub key: String,
    /// The effective value; secrets appear as their reference (`env:NAME`), never the value.
    pub value: Value,
    /// Keys in the files that nothing reads; kept, and listed here by name only.
    pub unknown_keys: Vec<String>,
}

impl Method for ConfigGet {
    const NAME: &'static str = "config.get";
    const DESCRIPTION: &'static str =
        "The effective configuration (or one dotted key of it), with secrets redacted.";
    type Params = ConfigGetParams;
    type Output = ConfigGetResult;

    async fn run(
        engine: &EngineHandle,
        params: ConfigGetParams,
    ) -> Result<ConfigGetResult, EngineError> {
        let key = params.key.unwrap_or_default();
        let snapshot = engine.snapshot();
        let value = snapshot.config().get_json(&key).ok_or_else(|| {
            EngineError::not_found(format!(
                "no configuration key '{key}'; call config.get without a key to see them all"
            ))
            .with_details(serde_json::json!({ "key": key }))
        })?;
        Ok(ConfigGetResult {
            key,
            value,
            unknown_keys: snapshot.loaded.unknown_keys.clone(),
        })
    }
}

// ---- config.reload --------------------------------------------------------------------------

pub struct ConfigReload;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigReloadResult {
    pub profile: String,
    pub errors: usize,
    pub warnings: usize,
    pub diagnostics: Vec<Diagnostic>,
}

impl Method for ConfigReload {
    const NAME: &'static str = "config.reload";
    const DESCRIPTION: &'static str = "Reads every configuration layer again and switches to the result; \
         a broken file is reported and left out, as at startup.";
    type Params = NoParams;
    type Output = ConfigReloadResult;

    async fn run(engine: &EngineHandle, _: NoParams) -> Result<ConfigReloadResult, EngineError> {
        let engine = engine.clone();
        let snapshot = tokio::task::spawn_blocking(move || engine.reload())
            .await
            .map_err(|e| EngineError::internal(format!("reload failed: {e}")))?;
        let errors = snapshot.diagnostics.iter().filter(|d| d.is_error()).count();
        Ok(ConfigReloadResult {
            profile: snapshot.loaded.profile.name.clone(),
            errors,
            warnings: snapshot.diagnostics.len() - errors,
            diagnostics: snapshot.diagnostics.clone(),
        })
    }
}

// ---- profile.get ----------------------------------------------------------------------------

pub struct ProfileGet;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileGetParams {
    /// A profile name; omit for the active one.
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileResult {
    pub name: String,
    pub active: bool,
    pub builtin: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_file: Option<String>,
    /// The profile's values: the built-in merged with the user's file, before config.toml.
    pub values: Value,
    /// Every profile that can be selected.
    pub available: Vec<String>,
    /// Problems in the profile's user file; the values above leave out what was broken.
    pub diagnostics: Vec<Diagnostic>,
}

impl Method for ProfileGet {
    const NAME: &'static str = "profile.get";
    const DESCRIPTION: &'static str =
        "A profile's values (built-in merged with the user's override), and which profiles exist.";
    type Params = ProfileGetParams;
    type Output = ProfileResult;

    async fn run(
        engine: &EngineHandle,
        params: ProfileGetParams,
    ) -> Result<ProfileResult, EngineError> {
        let snapshot = engine.snapshot();
        let active = snapshot.loaded.profile.name.clone();
        let state_dir = snapshot.loaded.paths.state_dir.clone();
        let profiles_dir = snapshot.loaded.paths.profiles_dir.clone();
        let name = params.name.unwrap_or_else(|| active.clone());
        // Reads the profiles dir and files: off the async threads.
        let (available, profile_only) = tokio::task::spawn_blocking(move || {
            let available = available_profiles(&profiles_dir);
            let profile_only = available
                .contains(&name)
                .then(|| config::load_profile(&state_dir, &name));
            (available, profile_only.map(|p| (name, p)))
        })
        .await
        .map_err(|e| EngineError::internal(format!("profile lookup failed: {e}")))?;
        let Some((name, profile_only)) = profile_only else {
            return Err(EngineError::not_found(format!(
                "no such profile; available: {}",
                available.join(", ")
            ))
            .with_details(serde_json::json!({ "available": available })));
        };
        let mut values = serde_json::to_value(&profile_only.config)
            .map_err(|e| EngineError::internal(e.to_string()))?;
        if let Some(map) = values.as_object_mut() {
            map.remove("profile");
        }
        Ok(ProfileResult {
            active: name == active,
            builtin: profile_only.profile.builtin,
            user_file: profile_only
                .profile
                .user_file
                .map(|p| p.display().to_string()),
            name,
            values,
            available,
            diagnostics: profile_only.diagnostics,
        })
    }
}

fn available_profiles(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = config::BUILTIN_PROFILES
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "toml")
                && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
                && config::valid_name(stem)
                && !names.iter().any(|n| n == stem)
            {
                names.push(stem.to_string());
            }
        }
    }
    names
}

// ---- methods.list ---------------------------------------------------------------------------

pub struct MethodsList;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MethodInfo {
    pub name: String,
    pub description: String,
    pub params_schema: Value,
    pub result_schema: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MethodsListResult {
    pub methods: Vec<MethodInfo>,
}

impl Method for MethodsList {
    const NAME: &'static str = "methods.list";
    const DESCRIPTION: &'static str =
        "Every method with its description and the JSON schemas of its params and result.";
    type Params = NoParams;
    type Output = MethodsListResult;

    async fn run(_: &EngineHandle, _: NoParams) -> Result<MethodsListResult, EngineError> {
        Ok(MethodsListResult {
            methods: METHODS
                .iter()
                .map(|m| MethodInfo {
                    name: m.name.to_string(),
                    description: m.description.to_string(),
                    params_schema: m.params_schema().to_value(),
                    result_schema: m.result_schema().to_value(),
                })
                .collect(),
        })
    }
}
