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

use super::{EngineError, EngineHandle, ErrorCode};
use crate::config::{self, BackendChoice, Diagnostic, EmbedderChoice, Level};

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

// ---- doctor, security audit, fixes ------------------------------------------------------------

use crate::findings::{self, Report, Selection, Severity, TerminalInfo, fix};

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScanParams {
    /// Slower checks too: secret scans of stored files, live provider probes.
    #[serde(default)]
    pub deep: bool,
    /// Check ids (or dotted prefixes such as `fs.config`) to run; all when empty.
    #[serde(default)]
    pub only: Vec<String>,
    /// Check ids or prefixes to leave out.
    #[serde(default)]
    pub skip: Vec<String>,
    /// `ok` is false when a finding is at or above this severity (default `warn`).
    #[serde(default)]
    pub severity_min: Option<Severity>,
    /// The terminal the TUI runs in, for the terminal checks.
    #[serde(default)]
    pub terminal: Option<TerminalInfo>,
}

/// Which registries a scan runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Doctor,
    Audit,
    Both,
}

/// Runs on a blocking thread (the memory checks wait for the engine's memory slot).
fn scan_blocking(
    engine: &EngineHandle,
    snapshot: &crate::engine::Snapshot,
    scope: Scope,
    params: &ScanParams,
) -> Report {
    let ctx = findings::Context {
        snapshot,
        deep: params.deep,
        terminal: params.terminal,
        memory: findings::MemoryAccess::shared(engine.memory_slot()),
    };
    let registry: Vec<&findings::Check> = match scope {
        Scope::Doctor => findings::checks::DOCTOR.iter().collect(),
        Scope::Audit => findings::checks::AUDIT.iter().collect(),
        Scope::Both => findings::checks::DOCTOR
            .iter()
            .chain(findings::checks::AUDIT)
            .collect(),
    };
    findings::run(
        &registry,
        &ctx,
        &Selection {
            only: params.only.clone(),
            skip: params.skip.clone(),
        },
        &snapshot.config().security.audit.suppressions,
        params.severity_min.unwrap_or(Severity::Warn),
    )
}

async fn scan(
    engine: &EngineHandle,
    scope: Scope,
    params: ScanParams,
) -> Result<Report, EngineError> {
    let snapshot = engine.snapshot();
    let engine = engine.clone();
    tokio::task::spawn_blocking(move || scan_blocking(&engine, &snapshot, scope, &params))
        .await
        .map_err(|e| EngineError::internal(format!("checks failed: {e}")))
}

/// The three report methods differ only in which registries they run.
macro_rules! scan_method {
    ($name:ident, $wire:literal, $scope:expr, $description:literal) => {
        pub struct $name;

        impl Method for $name {
            const NAME: &'static str = $wire;
            const DESCRIPTION: &'static str = $description;
            type Params = ScanParams;
            type Output = Report;

            async fn run(engine: &EngineHandle, params: ScanParams) -> Result<Report, EngineError> {
                scan(engine, $scope, params).await
            }
        }
    };
}

scan_method!(
    DoctorRun,
    "doctor.run",
    Scope::Doctor,
    "Checks that the installation is healthy: config, secrets resolve, state dir, profile vs build, memory store and embedder, providers, voice, logs."
);
scan_method!(
    SecurityAudit,
    "security.audit",
    Scope::Audit,
    "Audits permissions, stored secrets, sandbox limits and provider transport; `deep` also scans stored files for leaked secrets."
);
scan_method!(
    FindingsScan,
    "findings.scan",
    Scope::Both,
    "Doctor and security audit together, as the findings pane shows them."
);

fn fix_error(error: fix::FixError) -> EngineError {
    use fix::FixError as E;
    let code = match &error {
        E::Symlink(_) | E::Refused(_) | E::Conflict { .. } => ErrorCode::Denied,
        E::NotInJournal(_) | E::NothingToUndo => ErrorCode::NotFound,
        E::UnsafeJournal(_) => ErrorCode::Denied,
        E::BadConfig { .. } => ErrorCode::InvalidRequest,
        E::Io { .. } | E::RevertFailed { .. } => ErrorCode::Internal,
    };
    EngineError::new(code, error.to_string())
}

/// After a change on disk: read the config again. The reload's ConfigReloaded event makes
/// every face fetch fresh status, configuration and findings.
fn after_change(engine: &EngineHandle) {
    engine.reload();
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FixParams {
    /// The `fix.id` of a finding.
    pub fix_id: String,
    /// Show the diff and change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

pub struct FindingsFix;

impl Method for FindingsFix {
    const NAME: &'static str = "findings.fix";
    const DESCRIPTION: &'static str = "Applies one finding's fix (or shows its diff with dryRun), with backups and an undo journal entry.";
    type Params = FixParams;
    type Output = fix::Applied;

    async fn run(engine: &EngineHandle, params: FixParams) -> Result<fix::Applied, EngineError> {
        let engine = engine.clone();
        tokio::task::spawn_blocking(move || {
            let snapshot = engine.snapshot();
            let report = scan_blocking(&engine, &snapshot, Scope::Both, &ScanParams::default());
            let plan = report
                .findings
                .iter()
                .chain(report.suppressed.iter().map(|s| &s.finding))
                .filter_map(|f| f.plan.as_ref())
                .find(|p| p.id == params.fix_id)
                .ok_or_else(|| {
                    EngineError::not_found(format!(
                        "no current finding has fix '{}'; it may be fixed already",
                        params.fix_id
                    ))
                })?;
            if params.dry_run {
                return Ok(fix::Applied {
                    fix_id: plan.id.clone(),
                    changed: false,
                    journal_seq: None,
                    diff: plan.dry_run(),
                });
            }
            let applied = plan
                .apply(&findings::state_paths(&snapshot).journal)
                .map_err(fix_error)?;
            if applied.changed {
                after_change(&engine);
            }
            Ok(applied)
        })
        .await
        .map_err(|e| EngineError::internal(format!("fix failed: {e}")))?
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FixAllParams {
    #[serde(default)]
    pub dry_run: bool,
    /// `doctor`, `audit` or `all` (default).
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub only: Vec<String>,
    #[serde(default)]
    pub skip: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FixFailure {
    pub fix_id: String,
    pub error: EngineError,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FixAllResult {
    pub dry_run: bool,
    pub applied: Vec<fix::Applied>,
    pub failed: Vec<FixFailure>,
}

pub struct FindingsFixAll;

impl Method for FindingsFixAll {
    const NAME: &'static str = "findings.fixAll";
    const DESCRIPTION: &'static str = "Applies every available fix (suppressed findings excluded), each with its own undo entry; with dryRun, lists their diffs.";
    type Params = FixAllParams;
    type Output = FixAllResult;

    async fn run(engine: &EngineHandle, params: FixAllParams) -> Result<FixAllResult, EngineError> {
        let scope = match params.scope.as_deref() {
            None | Some("all") => Scope::Both,
            Some("doctor") => Scope::Doctor,
            Some("audit") => Scope::Audit,
            Some(other) => {
                return Err(EngineError::invalid_request(format!(
                    "scope '{other}' is not doctor, audit or all"
                )));
            }
        };
        let engine = engine.clone();
        tokio::task::spawn_blocking(move || {
            let snapshot = engine.snapshot();
            let scan_params = ScanParams {
                only: params.only,
                skip: params.skip,
                ..Default::default()
            };
            let report = scan_blocking(&engine, &snapshot, scope, &scan_params);
            let journal = findings::state_paths(&snapshot).journal;
            let mut result = FixAllResult {
                dry_run: params.dry_run,
                applied: Vec::new(),
                failed: Vec::new(),
            };
            for plan in report.fixable().filter_map(|f| f.plan.as_ref()) {
                if params.dry_run {
                    result.applied.push(fix::Applied {
                        fix_id: plan.id.clone(),
                        changed: false,
                        journal_seq: None,
                        diff: plan.dry_run(),
                    });
                    continue;
                }
                match plan.apply(&journal) {
                    Ok(applied) => result.applied.push(applied),
                    Err(e) => result.failed.push(FixFailure {
                        fix_id: plan.id.clone(),
                        error: fix_error(e),
                    }),
                }
            }
            if result.applied.iter().any(|a| a.changed) {
                after_change(&engine);
            }
            result
        })
        .await
        .map_err(|e| EngineError::internal(format!("fixes failed: {e}")))
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UndoParams {
    /// The journal number of the fix to undo; the newest when left out.
    #[serde(default)]
    pub seq: Option<u64>,
}

pub struct FindingsUndo;

impl Method for FindingsUndo {
    const NAME: &'static str = "findings.undo";
    const DESCRIPTION: &'static str = "Reverts the newest applied fix (or the one numbered `seq`) exactly; refuses when a file changed since.";
    type Params = UndoParams;
    type Output = fix::JournalEntry;

    async fn run(
        engine: &EngineHandle,
        params: UndoParams,
    ) -> Result<fix::JournalEntry, EngineError> {
        let engine = engine.clone();
        tokio::task::spawn_blocking(move || {
            let journal = findings::state_paths(&engine.snapshot()).journal;
            let mut entry = fix::undo(&journal, params.seq).map_err(fix_error)?;
            after_change(&engine);
            // Undo data holds earlier file contents (possibly a removed literal key).
            entry.undo.clear();
            Ok(entry)
        })
        .await
        .map_err(|e| EngineError::internal(format!("undo failed: {e}")))?
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JournalResult {
    pub entries: Vec<fix::JournalEntry>,
}

pub struct FindingsJournal;

impl Method for FindingsJournal {
    const NAME: &'static str = "findings.journal";
    const DESCRIPTION: &'static str =
        "Every applied fix, oldest first, with whether it was undone.";
    type Params = NoParams;
    type Output = JournalResult;

    async fn run(engine: &EngineHandle, _: NoParams) -> Result<JournalResult, EngineError> {
        let journal = findings::state_paths(&engine.snapshot()).journal;
        let mut entries = tokio::task::spawn_blocking(move || fix::journal(&journal))
            .await
            .map_err(|e| EngineError::internal(format!("journal read failed: {e}")))?
            .map_err(fix_error)?;
        // Undo data holds earlier file contents; the listing says what, not what was there.
        for entry in &mut entries {
            entry.undo.clear();
        }
        Ok(JournalResult { entries })
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SuppressParams {
    pub check_id: String,
    /// Only this finding's path; every path of the check when left out.
    #[serde(default)]
    pub path: Option<String>,
    pub reason: String,
}

pub struct FindingsSuppress;

impl Method for FindingsSuppress {
    const NAME: &'static str = "findings.suppress";
    const DESCRIPTION: &'static str = "Accepts a finding on purpose: adds a [[security.audit.suppressions]] entry to config.toml (undoable like a fix).";
    type Params = SuppressParams;
    type Output = fix::Applied;

    async fn run(
        engine: &EngineHandle,
        params: SuppressParams,
    ) -> Result<fix::Applied, EngineError> {
        if params.reason.trim().is_empty() {
            return Err(EngineError::invalid_request(
                "a suppression needs a reason, so the next reader knows why",
            ));
        }
        if params.check_id.trim().is_empty() {
            return Err(EngineError::invalid_request("checkId is empty"));
        }
        let engine = engine.clone();
        tokio::task::spawn_blocking(move || {
            let snapshot = engine.snapshot();
            let already = snapshot
                .config()
                .security
                .audit
                .suppressions
                .iter()
                .any(|s| s.check_id == params.check_id && s.path == params.path);
            if already {
                return Ok(fix::Applied {
                    fix_id: format!("suppress:{}", params.check_id),
                    changed: false,
                    journal_seq: None,
                    diff: String::new(),
                });
            }
            let mut table = toml::Table::new();
            table.insert("check_id".into(), params.check_id.clone().into());
            if let Some(path) = &params.path {
                table.insert("path".into(), path.clone().into());
            }
            table.insert("reason".into(), params.reason.trim().to_string().into());
            let plan = fix::Plan {
                id: format!("suppress:{}", params.check_id),
                check_id: params.check_id.clone(),
                description: format!("suppress {}: {}", params.check_id, params.reason.trim()),
                steps: vec![fix::Step::AppendConfig {
                    file: snapshot.loaded.paths.config_file.clone(),
                    key: vec!["security".into(), "audit".into(), "suppressions".into()],
                    table,
                }],
            };
            let applied = plan
                .apply(&findings::state_paths(&snapshot).journal)
                .map_err(fix_error)?;
            after_change(&engine);
            Ok(applied)
        })
        .await
        .map_err(|e| EngineError::internal(format!("suppress failed: {e}")))?
    }
}
