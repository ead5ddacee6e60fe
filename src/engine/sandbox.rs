//! The `tools.*` and `sandbox.*` methods: tool discovery, schema-checked invocation through
//! the SafetyLayer, ad-hoc module runs, and the sandbox's status. Every run reports its
//! outcome as an [`EngineEvent::ToolCall`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::methods::{Method, NoParams};
use super::{EngineError, EngineEvent, EngineHandle, ErrorCode, Snapshot};
use crate::config::{BackendChoice, SandboxBackendPref};
use crate::sandbox::manifest::{self, Tool, ToolProblem, ToolSource};
use crate::sandbox::safety::{Decision, Direction, SafetyLayer, SafetyReport};
use crate::sandbox::{
    BackendKind, CacheStats, Grants, HostEnv, HostServices, Limits, Sandbox, SandboxError, ToolLog,
    wasmtime_cache_dir,
};

impl EngineHandle {
    /// The sandbox service; its backends start on first use. `sandbox.disk_cache` is read
    /// then: changing it takes a restart.
    pub fn sandbox(&self) -> Arc<Sandbox> {
        self.inner
            .sandbox
            .get_or_init(|| {
                let snapshot = self.snapshot();
                let disk = snapshot
                    .config()
                    .sandbox
                    .disk_cache
                    .then(|| wasmtime_cache_dir(&snapshot.loaded.paths.state_dir));
                Arc::new(Sandbox::with_disk_cache(disk))
            })
            .clone()
    }

    /// Report a SafetyLayer decision to every face, when there is something to report.
    /// Providers call this for model replies.
    pub fn report_safety(&self, direction: Direction, subject: &str, report: &SafetyReport) {
        if report.decision == Decision::Allow && report.rules.is_empty() {
            return;
        }
        self.emit(EngineEvent::SafetyDecision {
            direction: direction.as_str().into(),
            subject: subject.into(),
            decision: report.decision.as_str().into(),
            rules: report.rules.clone(),
            reasons: report.reasons.clone(),
        });
    }
}

/// The wire code of a sandbox failure: what the request or the tool did wrong.
fn sandbox_error_code(error: &SandboxError) -> ErrorCode {
    match error {
        SandboxError::Timeout { .. } => ErrorCode::Timeout,
        SandboxError::CapabilityDenied { .. }
        | SandboxError::PolicyDenied { .. }
        | SandboxError::HashMismatch { .. } => ErrorCode::Denied,
        SandboxError::InvalidModule { .. } => ErrorCode::InvalidRequest,
        SandboxError::Host { .. } => ErrorCode::Internal,
        // The tool ran and failed: the request was fine, the tool was not.
        SandboxError::OutOfFuel { .. }
        | SandboxError::MemoryLimit { .. }
        | SandboxError::StackOverflow
        | SandboxError::Trap { .. }
        | SandboxError::BadOutput { .. }
        | SandboxError::HostArgument { .. } => ErrorCode::Unavailable,
    }
}

/// A sandbox failure on the wire: its code, its sentence, and its fields with `kind` as
/// details a script can act on.
impl From<SandboxError> for EngineError {
    fn from(error: SandboxError) -> Self {
        let mut details = serde_json::to_value(&error).unwrap_or_else(|_| json!({}));
        if let Some(map) = details.as_object_mut() {
            map.insert("kind".into(), json!(error.kind()));
        }
        EngineError::new(sandbox_error_code(&error), error.to_string()).with_details(details)
    }
}

/// The SafetyLayer as the configuration sets it up.
pub fn safety_layer(snapshot: &Snapshot) -> SafetyLayer {
    SafetyLayer::new(&snapshot.config().safety)
}

fn tools_dir(snapshot: &Snapshot) -> PathBuf {
    snapshot.loaded.paths.state_dir.join("tools")
}

/// What the configuration allows any tool: `sandbox.capabilities`, with `http` limited to
/// `sandbox.http_allow`.
pub fn allowed_grants(snapshot: &Snapshot) -> Grants {
    let sandbox = &snapshot.config().sandbox;
    let has = |name: &str| sandbox.capabilities.iter().any(|c| c == name);
    Grants {
        memory: has("memory"),
        kv: has("kv"),
        fs: has("fs"),
        http: if has("http") {
            sandbox.http_allow.clone()
        } else {
            Vec::new()
        },
    }
}

/// `memory_search` for tools, through the engine's own `memory.search`.
struct EngineServices {
    engine: EngineHandle,
    runtime: tokio::runtime::Handle,
}

impl HostServices for EngineServices {
    fn memory_search(&self, params: &[u8], deadline: Instant) -> Result<Vec<u8>, String> {
        let params: crate::memory::types::SearchParams =
            serde_json::from_slice(params).map_err(|e| format!("bad memory.search params: {e}"))?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let engine = self.engine.clone();
        let result = self.runtime.block_on(async move {
            tokio::time::timeout(
                remaining,
                engine.request::<super::memory::MemorySearch>(params),
            )
            .await
        });
        match result {
            Ok(Ok(found)) => serde_json::to_vec(&found).map_err(|e| e.to_string()),
            Ok(Err(e)) => Err(e.message),
            Err(_) => Err("the run's deadline passed during memory.search".into()),
        }
    }
}

fn host_env(engine: &EngineHandle, snapshot: &Snapshot, kv_namespace: &str) -> HostEnv {
    let state_dir = &snapshot.loaded.paths.state_dir;
    HostEnv {
        workspace: crate::memory::workspace_dir(state_dir, snapshot.config().workspace.as_deref()),
        kv_file: Some(
            tools_dir(snapshot)
                .join("kv")
                .join(format!("{kv_namespace}.json")),
        ),
        services: Some(Arc::new(EngineServices {
            engine: engine.clone(),
            runtime: tokio::runtime::Handle::current(),
        })),
    }
}

// ---- results ---------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolInfo {
    pub name: String,
    pub description: String,
    pub source: ToolSource,
    /// Capabilities the manifest asks for (`http:HOST` per host).
    pub requested: Vec<String>,
    /// What the configuration lets it have: requested ∩ allowed.
    pub granted: Vec<String>,
    /// Whether the manifest pins the module's sha256 (built-ins are part of the binary).
    pub pinned: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
}

fn tool_info(tool: &Tool, allowed: &Grants) -> ToolInfo {
    let requested = &tool.manifest.capabilities;
    ToolInfo {
        name: tool.manifest.name.clone(),
        description: tool.manifest.description.clone(),
        source: tool.source.clone(),
        requested: requested.names(),
        granted: requested.intersect(allowed).names(),
        pinned: tool.manifest.sha256.is_some() || tool.source == ToolSource::Builtin,
        module: tool.module_path().map(|p| p.display().to_string()),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolsListResult {
    pub tools: Vec<ToolInfo>,
    /// Tool directories that could not be used, and why.
    pub problems: Vec<ToolProblem>,
}

/// The outcome of `tools.invoke` and `sandbox.run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolCallResult {
    pub tool: String,
    /// The tool's output, after the SafetyLayer (secrets redacted, control characters gone).
    pub output: Value,
    pub backend: BackendKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    pub fuel_used: u64,
    pub duration_us: u64,
    pub cache_hit: bool,
    pub module_sha256: String,
    pub granted: Vec<String>,
    pub limits: Limits,
    pub logs: Vec<ToolLog>,
    /// The SafetyLayer's decision over input and output together.
    pub safety: SafetyReport,
}

/// One run, from checked input to checked output, with its event.
struct Call {
    name: String,
    bytes: Vec<u8>,
    pin: Option<String>,
    input: Value,
    choice: BackendChoice,
    limits: Limits,
    grants: Grants,
    kv_namespace: Option<String>,
}

async fn run_call(engine: &EngineHandle, call: Call) -> Result<ToolCallResult, EngineError> {
    let snapshot = engine.snapshot();
    let safety = safety_layer(&snapshot);
    let (input, mut report) = safety.check_json(&call.input, Direction::ToolInput);
    engine.report_safety(Direction::ToolInput, &call.name, &report);
    let event = |status: &str, fuel: u64, us: u64, report: &SafetyReport| EngineEvent::ToolCall {
        tool: call.name.clone(),
        backend: call.choice.in_use.as_str().into(),
        status: status.into(),
        duration_us: us,
        fuel_used: fuel,
        safety: report.decision.as_str().into(),
        safety_rules: report.rules.clone(),
    };
    if report.decision == Decision::Block {
        engine.emit(event("blocked", 0, 0, &report));
        return Err(EngineError::new(
            ErrorCode::Denied,
            format!(
                "the SafetyLayer blocked the input of {}: {}",
                call.name,
                report.reasons.join("; ")
            ),
        )
        .with_details(json!({ "kind": "safetyBlocked", "safety": report })));
    }
    let sandbox = engine.sandbox();
    let namespace = call
        .kv_namespace
        .clone()
        .unwrap_or_else(|| format!("run-{}", &crate::sandbox::sha256_hex(&call.bytes)[..16]));
    let env = host_env(engine, &snapshot, &namespace);
    let (backend, limits, grants, pin, bytes) = (
        call.choice.in_use,
        call.limits.clone(),
        call.grants.clone(),
        call.pin.clone(),
        call.bytes,
    );
    let started = Instant::now();
    let outcome = tokio::task::spawn_blocking(move || {
        // One deadline for compiling and running.
        sandbox.call(
            backend,
            &bytes,
            pin.as_deref(),
            &input,
            &limits,
            &grants,
            &env,
        )
    })
    .await
    .map_err(|e| EngineError::internal(format!("the sandbox task failed: {e}")))?;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => {
            let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            engine.emit(event(error.kind(), 0, us, &report));
            let mut e: EngineError = error.into();
            if let Some(details) = e.details.as_mut().and_then(Value::as_object_mut) {
                details.insert("tool".into(), json!(call.name));
                details.insert("backend".into(), json!(backend));
            }
            return Err(e);
        }
    };
    let (output, mut out_report) = safety.check_json(&outcome.output, Direction::ToolOutput);
    // Log lines are output too: a tool may log what it read.
    let logs: Vec<ToolLog> = outcome
        .logs
        .into_iter()
        .map(|log| {
            let checked = safety.check_text(&log.message, Direction::ToolOutput);
            out_report.merge(checked.report);
            ToolLog {
                level: log.level,
                message: checked.text,
            }
        })
        .collect();
    engine.report_safety(Direction::ToolOutput, &call.name, &out_report);
    report.merge(out_report);
    report.rules.sort();
    engine.emit(event(
        if report.decision == Decision::Block {
            "blocked"
        } else {
            "ok"
        },
        outcome.fuel_used,
        outcome.duration_us,
        &report,
    ));
    if report.decision == Decision::Block {
        return Err(EngineError::new(
            ErrorCode::Denied,
            format!(
                "the SafetyLayer blocked the output of {}: {}",
                call.name,
                report.reasons.join("; ")
            ),
        )
        .with_details(json!({ "kind": "safetyBlocked", "safety": report })));
    }
    Ok(ToolCallResult {
        tool: call.name,
        output,
        backend,
        fallback_reason: call.choice.fallback_reason,
        fuel_used: outcome.fuel_used,
        duration_us: outcome.duration_us,
        cache_hit: outcome.cache_hit,
        module_sha256: outcome.module_sha256,
        granted: call.grants.names(),
        limits: call.limits,
        logs,
        safety: report,
    })
}

fn find_tool(snapshot: &Snapshot, name: &str) -> Result<Tool, EngineError> {
    let (tools, _) = manifest::discover(&tools_dir(snapshot));
    tools
        .into_iter()
        .find(|t| t.manifest.name == name)
        .ok_or_else(|| {
            EngineError::not_found(format!(
                "no tool named '{name}'; `openclaw-rs tools list` shows them"
            ))
            .with_details(json!({ "tool": name }))
        })
}

// ---- tools.list --------------------------------------------------------------------------------

pub struct ToolsList;

impl Method for ToolsList {
    const NAME: &'static str = "tools.list";
    const DESCRIPTION: &'static str = "Built-in and installed (<state>/tools/NAME/tool.toml) tools, \
        with requested and granted capabilities; broken tool directories are listed as problems.";
    type Params = NoParams;
    type Output = ToolsListResult;

    async fn run(engine: &EngineHandle, _: NoParams) -> Result<ToolsListResult, EngineError> {
        let snapshot = engine.snapshot();
        let dir = tools_dir(&snapshot);
        let (tools, problems) = tokio::task::spawn_blocking(move || manifest::discover(&dir))
            .await
            .map_err(|e| EngineError::internal(format!("tool discovery failed: {e}")))?;
        let allowed = allowed_grants(&snapshot);
        Ok(ToolsListResult {
            tools: tools.iter().map(|t| tool_info(t, &allowed)).collect(),
            problems,
        })
    }
}

// ---- tools.describe ----------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolNameParams {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolsDescribeResult {
    #[serde(flatten)]
    pub info: ToolInfo,
    /// JSON schema of the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    /// The limits a call runs with (the config's, lowered by the manifest).
    pub limits: Limits,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256_pin: Option<String>,
    /// sha256 of the module file as it is now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_matches: Option<bool>,
    /// Capabilities the module's imports would use.
    pub imports: Vec<String>,
}

pub struct ToolsDescribe;

impl Method for ToolsDescribe {
    const NAME: &'static str = "tools.describe";
    const DESCRIPTION: &'static str = "One tool: parameter schema, limits, capabilities requested, \
        granted and imported, and whether the module matches its sha256 pin.";
    type Params = ToolNameParams;
    type Output = ToolsDescribeResult;

    async fn run(
        engine: &EngineHandle,
        params: ToolNameParams,
    ) -> Result<ToolsDescribeResult, EngineError> {
        let snapshot = engine.snapshot();
        let tool = find_tool(&snapshot, &params.name)?;
        let allowed = allowed_grants(&snapshot);
        let limits = tool
            .manifest
            .limits
            .apply(Limits::from_config(&snapshot.config().sandbox));
        let bytes = tool.module_bytes().ok();
        let module_sha256 = bytes
            .as_deref()
            .filter(|_| tool.source == ToolSource::Installed)
            .map(crate::sandbox::sha256_hex);
        let imports = bytes
            .as_deref()
            .and_then(|b| crate::sandbox::assemble(b).ok())
            .and_then(|wasm| crate::sandbox::imported_capabilities(&wasm).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.as_str().to_string())
            .collect();
        Ok(ToolsDescribeResult {
            info: tool_info(&tool, &allowed),
            parameters: tool.manifest.parameters.clone(),
            limits,
            pin_matches: match (&tool.manifest.sha256, &module_sha256) {
                (Some(pin), Some(actual)) => Some(pin.eq_ignore_ascii_case(actual)),
                _ => None,
            },
            sha256_pin: tool.manifest.sha256.clone(),
            module_sha256,
            imports,
        })
    }
}

// ---- tools.invoke ------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolsInvokeParams {
    pub name: String,
    /// The tool's input; checked against its parameter schema.
    #[serde(default)]
    pub input: Value,
    /// `auto`, `wasmi` or `wasmtime`; the configured `sandbox.backend` when left out.
    #[serde(default)]
    pub backend: Option<SandboxBackendPref>,
}

pub struct ToolsInvoke;

impl Method for ToolsInvoke {
    const NAME: &'static str = "tools.invoke";
    const DESCRIPTION: &'static str = "Runs a tool by name: input checked against its schema and \
        by the SafetyLayer, capabilities = requested ∩ allowed, limits from the config.";
    type Params = ToolsInvokeParams;
    type Output = ToolCallResult;

    async fn run(
        engine: &EngineHandle,
        params: ToolsInvokeParams,
    ) -> Result<ToolCallResult, EngineError> {
        let snapshot = engine.snapshot();
        let tool = find_tool(&snapshot, &params.name)?;
        let input = if params.input.is_null() {
            json!({})
        } else {
            params.input
        };
        if let Err(errors) = manifest::validate_input(tool.manifest.parameters.as_ref(), &input) {
            return Err(EngineError::invalid_request(format!(
                "the input does not fit {}'s parameters: {}",
                params.name,
                errors.join("; ")
            ))
            .with_details(json!({ "tool": params.name, "errors": errors })));
        }
        let bytes = tool.module_bytes()?;
        let call = Call {
            name: tool.manifest.name.clone(),
            bytes,
            pin: tool.manifest.sha256.clone(),
            input,
            choice: params
                .backend
                .unwrap_or(snapshot.config().sandbox.backend)
                .resolve(),
            limits: tool
                .manifest
                .limits
                .apply(Limits::from_config(&snapshot.config().sandbox)),
            grants: tool
                .manifest
                .capabilities
                .intersect(&allowed_grants(&snapshot)),
            kv_namespace: Some(tool.manifest.name.clone()),
        };
        run_call(engine, call).await
    }
}

// ---- sandbox.run -------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SandboxRunParams {
    /// A module file: `.wasm`, or WebAssembly text (`.wat`).
    pub path: PathBuf,
    #[serde(default)]
    pub input: Value,
    #[serde(default)]
    pub backend: Option<SandboxBackendPref>,
    /// Fuel units (0 = unlimited); the config's when left out.
    #[serde(default)]
    pub fuel: Option<u64>,
    #[serde(default)]
    pub memory_mb: Option<u32>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub max_output_kb: Option<u32>,
    /// Capabilities to grant: `memory`, `kv`, `fs`, `http:HOST[:PORT]`; each must also be
    /// allowed by the config.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Refuse to run unless the file has this sha256.
    #[serde(default)]
    pub sha256: Option<String>,
}

pub struct SandboxRun;

impl Method for SandboxRun {
    const NAME: &'static str = "sandbox.run";
    const DESCRIPTION: &'static str = "Runs a module file (.wasm or .wat) with explicit limits, \
        backend and capabilities (granted only as far as the config allows).";
    type Params = SandboxRunParams;
    type Output = ToolCallResult;

    async fn run(
        engine: &EngineHandle,
        params: SandboxRunParams,
    ) -> Result<ToolCallResult, EngineError> {
        let snapshot = engine.snapshot();
        let config = &snapshot.config().sandbox;
        let requested = Grants::parse(&params.allow).map_err(|e| {
            EngineError::invalid_request(e).with_details(json!({ "allow": params.allow }))
        })?;
        let path = params.path.clone();
        let bytes = tokio::task::spawn_blocking(move || {
            let meta = std::fs::metadata(&path)?;
            if meta.len() > crate::sandbox::MAX_MODULE_BYTES as u64 {
                return Err(std::io::Error::other(format!(
                    "{} bytes is over the {} byte module limit",
                    meta.len(),
                    crate::sandbox::MAX_MODULE_BYTES
                )));
            }
            std::fs::read(&path)
        })
        .await
        .map_err(|e| EngineError::internal(format!("reading the module failed: {e}")))?
        .map_err(|e| {
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                ErrorCode::NotFound
            } else {
                ErrorCode::InvalidRequest
            };
            EngineError::new(code, format!("cannot read {}: {e}", params.path.display()))
        })?;
        let mut limits = Limits::from_config(config);
        if let Some(fuel) = params.fuel {
            limits.fuel = fuel;
        }
        if let Some(mb) = params.memory_mb {
            if mb == 0 || mb > 4096 {
                return Err(EngineError::invalid_request("memoryMb must be 1 to 4096"));
            }
            limits.memory_bytes = u64::from(mb) * 1024 * 1024;
        }
        if let Some(ms) = params.timeout_ms {
            limits.timeout_ms = ms.clamp(1, 600_000);
        }
        if let Some(kb) = params.max_output_kb {
            limits.max_output_bytes = u64::from(kb) * 1024;
        }
        let name = params
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "module".into());
        let call = Call {
            name,
            bytes,
            pin: params.sha256,
            input: if params.input.is_null() {
                json!({})
            } else {
                params.input
            },
            choice: params.backend.unwrap_or(config.backend).resolve(),
            limits,
            grants: requested.intersect(&allowed_grants(&snapshot)),
            kv_namespace: None,
        };
        run_call(engine, call).await
    }
}

// ---- sandbox.status ----------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SandboxStatusResult {
    /// Backends this build has.
    pub backends: Vec<BackendKind>,
    /// What `sandbox.backend` asks for and what runs.
    pub backend: BackendChoice,
    /// The limits a call gets from the configuration.
    pub limits: Limits,
    /// Capabilities the configuration allows tools (http: the allowed hosts).
    pub allowed: Vec<String>,
    pub cache: CacheStats,
    pub tools_dir: String,
}

pub struct SandboxStatus;

impl Method for SandboxStatus {
    const NAME: &'static str = "sandbox.status";
    const DESCRIPTION: &'static str = "Backends in this build, the one in use, default limits, allowed capabilities, and module cache counters (in memory, and on disk for wasmtime).";
    type Params = NoParams;
    type Output = SandboxStatusResult;

    async fn run(engine: &EngineHandle, _: NoParams) -> Result<SandboxStatusResult, EngineError> {
        let snapshot = engine.snapshot();
        Ok(SandboxStatusResult {
            backends: crate::sandbox::available_backends(),
            backend: snapshot.sandbox_backend.clone(),
            limits: Limits::from_config(&snapshot.config().sandbox),
            allowed: allowed_grants(&snapshot).names(),
            cache: engine.sandbox().stats(),
            tools_dir: tools_dir(&snapshot).display().to_string(),
        })
    }
}

#[cfg(test)]
mod tests;
