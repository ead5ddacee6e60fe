//! Configuration: the typed schema, the built-in profiles, and how layers merge.
//!
//! Precedence, lowest first: built-in profile < user profile file < `config.toml` <
//! environment (`OPENCLAW_RS_*`) < command-line flags. Every layer is a partial document of
//! the same schema; see [`load`].

mod diag;
mod load;
mod paths;
mod secret;
mod snapshot;
mod validate;
mod voice;

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use diag::{Diagnostic, Level, key_offset, line_col};
pub use load::{
    BUILTIN_PROFILES, ConfigLayer, LoadOptions, Loaded, ProfileSource, builtin_profile,
    default_profile_name, load, load_profile, valid_name,
};
pub use paths::{Paths, ensure_state_dir, resolve_home};
pub use secret::{REDACTED, SecretError, SecretRef, redact_url};
pub use snapshot::{FileCheck, Snapshot};
pub use validate::Problem;
pub use voice::{
    CloudVoiceConfig, KITTENTTS_PRESETS, KittenTtsConfig, STT_IDS, SttConfig, TTS_IDS, VoiceConfig,
    WhisperConfig,
};

/// The build track this binary was compiled as.
pub const BUILD_TRACK: &str = if cfg!(feature = "edge") {
    "edge"
} else {
    "core"
};

/// The whole effective configuration. Every field has a default, so any partial file is valid.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Config {
    /// Profile to use when neither `--profile` nor `OPENCLAW_RS_PROFILE` is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The assistant's working directory (`MEMORY.md`, `memory/`); default `<state>/workspace`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<PathBuf>,
    pub ui: UiConfig,
    pub sandbox: SandboxConfig,
    pub self_heal: SelfHealConfig,
    pub chat: ChatConfig,
    pub memory: MemoryConfig,
    pub voice: VoiceConfig,
    pub telemetry: TelemetryConfig,
    pub logging: LoggingConfig,
    pub safety: SafetyConfig,
    pub security: SecurityConfig,
    /// Model providers by id, in no particular order; `self_heal.fallback` orders them.
    pub providers: BTreeMap<String, ProviderConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct LoggingConfig {
    /// Redact secrets from log lines. Turning it off is an audit finding.
    pub redact: bool,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self { redact: true }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SecretAction {
    /// Replace the secret with a marker and go on.
    Redact,
    /// Refuse the content.
    Block,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct SafetyConfig {
    /// Scan tool input and output and model replies for secrets.
    pub secret_scanning: bool,
    pub on_secret: SecretAction,
    /// Largest tool input or output the safety layer passes, in KiB.
    pub max_content_kb: u32,
}

impl Default for SafetyConfig {
    fn default() -> Self {
        Self {
            secret_scanning: true,
            on_secret: SecretAction::Redact,
            max_content_kb: 1024,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct SecurityConfig {
    pub audit: AuditConfig,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct AuditConfig {
    /// Findings accepted on purpose: they move to `suppressed`, with the reason.
    pub suppressions: Vec<Suppression>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Suppression {
    #[serde(alias = "checkId")]
    pub check_id: String,
    /// Only this path; every path when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct UiConfig {
    /// Theme name: a built-in (`default`, `light`, `basic`) or a file in `<state>/themes/`.
    pub theme: String,
    /// Keymap name: a built-in (`default`, `vim`) or a file in `<state>/keymaps/`.
    pub keymap: String,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            theme: "default".into(),
            keymap: "default".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SandboxBackendPref {
    /// wasmtime on an edge build, wasmi on a core build.
    Auto,
    Wasmi,
    Wasmtime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SandboxBackend {
    Wasmi,
    Wasmtime,
}

impl SandboxBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxBackend::Wasmi => "wasmi",
            SandboxBackend::Wasmtime => "wasmtime",
        }
    }
}

/// What runs, and why it differs from what was asked for (if it does). An edge profile on
/// a core build asks for things the build lacks; it still runs, and says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Resolved<Requested, InUse> {
    pub requested: Requested,
    pub in_use: InUse,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
}

pub type BackendChoice = Resolved<SandboxBackendPref, SandboxBackend>;
pub type EmbedderChoice = Resolved<EmbedderKind, EmbedderKind>;

impl SandboxBackendPref {
    /// Resolve against what this binary was built with. wasmtime exists only in edge builds.
    pub fn resolve(self) -> BackendChoice {
        let edge = cfg!(feature = "edge");
        let (in_use, fallback_reason) = match (self, edge) {
            (SandboxBackendPref::Wasmi, _) => (SandboxBackend::Wasmi, None),
            (SandboxBackendPref::Auto, true) | (SandboxBackendPref::Wasmtime, true) => {
                (SandboxBackend::Wasmtime, None)
            }
            (SandboxBackendPref::Auto, false) => (SandboxBackend::Wasmi, None),
            (SandboxBackendPref::Wasmtime, false) => (
                SandboxBackend::Wasmi,
                Some(
                    "wasmtime was requested but this is a core build; using wasmi \
                     (install the edge build for the JIT)"
                        .to_string(),
                ),
            ),
        };
        BackendChoice {
            requested: self,
            in_use,
            fallback_reason,
        }
    }
}

impl EmbedderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EmbedderKind::Hash => "hash",
            EmbedderKind::Minilm => "minilm",
            EmbedderKind::Remote => "remote",
        }
    }

    /// Resolve against the build: the ONNX embedder exists only in edge builds.
    pub fn resolve(self) -> EmbedderChoice {
        let fallback = self == EmbedderKind::Minilm && !cfg!(feature = "edge");
        EmbedderChoice {
            requested: self,
            in_use: if fallback { EmbedderKind::Hash } else { self },
            fallback_reason: fallback.then(|| {
                "the minilm embedder was requested but this is a core build; using hash \
                 (install the edge build for model embeddings)"
                    .to_string()
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct SandboxConfig {
    pub backend: SandboxBackendPref,
    /// Instruction fuel per tool call; 0 means unlimited (an audit finding).
    pub fuel: u64,
    /// Linear memory cap per instance, in MiB.
    pub memory_mb: u32,
    /// Wall-clock limit per tool call, in milliseconds.
    pub timeout_ms: u64,
    /// Largest output a tool may return, in KiB.
    pub max_output_kb: u32,
    /// Hosts tools with the `http` capability may reach; empty means none.
    pub http_allow: Vec<String>,
    /// Capabilities tools may be granted (`memory`, `kv`, `fs`, `http`): a tool gets what
    /// its manifest requests and this list allows.
    pub capabilities: Vec<String>,
    /// Keep wasmtime's compiled code in `<state>/cache/wasmtime/` so later runs skip the
    /// compile (edge builds; wasmi has nothing to keep).
    pub disk_cache: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            backend: SandboxBackendPref::Auto,
            fuel: 50_000_000,
            memory_mb: 32,
            timeout_ms: 5_000,
            max_output_kb: 256,
            http_allow: Vec::new(),
            capabilities: vec!["memory".into(), "kv".into(), "fs".into(), "http".into()],
            disk_cache: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct SelfHealConfig {
    pub enabled: bool,
    /// Bounds retries: a provider is tried again only while the model call has made fewer
    /// than this many attempts. Each admissible provider's first attempt is outside the
    /// budget, so a call makes at most `max_attempts - 1` retries plus one attempt per
    /// provider in the chain.
    pub max_attempts: u32,
    /// First retry delay; doubles per retry up to `backoff_max_ms`, with jitter.
    pub backoff_ms: u64,
    pub backoff_max_ms: u64,
    /// First cooldown of a provider that failed with a rate limit or outage; each further
    /// cooldown in a row is 5 times longer, up to `cooldown_max_ms` (1 min, 5, 25, 1 h).
    /// A successful call or probe ends it and starts the steps over.
    pub cooldown_ms: u64,
    pub cooldown_max_ms: u64,
    /// Cooldown after a billing or quota failure: waiting minutes will not fix that.
    pub billing_cooldown_ms: u64,
    /// Consecutive failures that open a provider's circuit breaker.
    pub circuit_threshold: u32,
    /// How long an open circuit stays open before a trial request.
    pub circuit_open_ms: u64,
    /// Per-request timeout, so failover never waits out a long server timeout.
    pub request_timeout_ms: u64,
    /// Provider ids to try, in order, after the active one fails.
    pub fallback: Vec<String>,
    /// Provider ids tried first, in this order; the rest follow by priority, then
    /// `fallback`. The providers pane's K/J and `providers reorder` write it. Ids that are
    /// not in the chain are ignored.
    pub chain_order: Vec<String>,
    /// Retries on the same provider (transient failures) before falling back.
    pub fallback_after_retries: u32,
    /// The whole turn, every attempt and wait included, never runs longer than this.
    pub deadline_ms: u64,
    /// A server's `Retry-After` is honoured up to this long; longer means fall back.
    pub retry_after_max_ms: u64,
    /// Default timeouts of one attempt; a provider's `timeouts` override them.
    pub connect_timeout_ms: u64,
    /// Until the first streamed event (headers and first chunk).
    pub first_byte_timeout_ms: u64,
    /// Longest silence between two streamed chunks.
    pub idle_timeout_ms: u64,
    /// While another provider remains to be tried, one attempt (or one wait before a retry)
    /// gets at most this share of the turn's remaining time, so a provider that streams
    /// forever cannot eat the deadline of the ones after it. 0 < share <= 1.
    pub attempt_share: f64,
    /// Known-bad answers in a row (unparseable output, a model that does not exist) after
    /// which that model of the provider is parked: skipped until a probe or a reset.
    /// 0 never parks.
    pub park_after: u32,
}

impl Default for SelfHealConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_attempts: 3,
            backoff_ms: 250,
            backoff_max_ms: 4_000,
            cooldown_ms: 60_000,
            cooldown_max_ms: 3_600_000,
            billing_cooldown_ms: 18_000_000,
            circuit_threshold: 5,
            circuit_open_ms: 60_000,
            request_timeout_ms: 60_000,
            fallback: vec!["ollama".into(), "offline".into()],
            chain_order: Vec::new(),
            fallback_after_retries: 1,
            deadline_ms: 90_000,
            retry_after_max_ms: 10_000,
            connect_timeout_ms: 5_000,
            first_byte_timeout_ms: 20_000,
            idle_timeout_ms: 30_000,
            attempt_share: 0.5,
            park_after: 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ChatConfig {
    /// Model tool calls answered per turn before the turn ends with what it has.
    pub max_tool_rounds: u32,
    /// Memory hits added to each turn as cited context; 0 turns recall off.
    pub recall_hits: u32,
    /// The system prompt every session starts with.
    pub system_prompt: String,
    /// Ring the terminal bell when a reply finishes.
    pub bell: bool,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            max_tool_rounds: 4,
            recall_hits: 3,
            system_prompt: "You are a helpful personal assistant. When context from memory is \
                            given, cite it by its [number]."
                .into(),
            bell: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EmbedderKind {
    /// Feature hashing: no model, small and fast.
    Hash,
    /// all-MiniLM-L6-v2 through ONNX (edge builds).
    Minilm,
    /// An OpenAI-compatible or Ollama embeddings endpoint (`[memory.remote]`).
    Remote,
}

/// The wire format of a remote embeddings endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RemoteEmbedderKind {
    /// `POST {base_url}/embeddings` (OpenAI, vLLM, LM Studio, llama.cpp server, ...).
    #[default]
    Openai,
    /// `POST {base_url}/api/embed` (Ollama's native API).
    Ollama,
}

/// `[memory.remote]`: where `embedder = "remote"` sends text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct RemoteEmbedderConfig {
    pub kind: RemoteEmbedderKind,
    /// For example `https://api.openai.com/v1` or `http://127.0.0.1:11434`.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "secret::serialize_redacted_url"
    )]
    pub base_url: Option<String>,
    pub model: Option<String>,
    /// `env:NAME` or `file:PATH`; none for endpoints that need no key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<SecretRef>,
    /// The model's vector size. Left out, one probe request at open finds it; set it to open
    /// the store while the endpoint is down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    /// Texts per request.
    pub batch: u32,
    pub timeout_ms: u64,
}

impl Default for RemoteEmbedderConfig {
    fn default() -> Self {
        Self {
            kind: RemoteEmbedderKind::Openai,
            base_url: None,
            model: None,
            api_key: None,
            dimensions: None,
            batch: 64,
            timeout_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct MemoryConfig {
    pub enabled: bool,
    pub embedder: EmbedderKind,
    /// Vector dimensions for the `hash` embedder (the model fixes them for `minilm`).
    pub dimensions: u32,
    /// Directory holding the ONNX model and tokenizer for `minilm`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_dir: Option<PathBuf>,
    /// Files to ingest, relative to the workspace; globs allowed.
    pub paths: Vec<String>,
    pub chunk_tokens: u32,
    pub chunk_overlap: u32,
    /// Also remember conversation turns.
    pub ingest_conversations: bool,
    pub search: MemorySearchConfig,
    pub graph: MemoryGraphConfig,
    pub remote: RemoteEmbedderConfig,
    /// How vector neighbours are found: `scan` (exact, no build), `arroy` (approximate
    /// forest, built after each index run), or `auto` (arroy from the measured crossover up,
    /// docs/memory.md).
    pub vector_index: VectorIndexChoice,
}

// Settings types memory reads; they live with the settings (memory re-exports them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// Reciprocal rank fusion (k = 60): robust when the two scores are not comparable.
    Rrf,
    /// Weighted sum of normalised scores (`memory.search.vector_weight` / `text_weight`).
    #[default]
    Weighted,
}

/// `memory.vector_index`: how vector neighbours are found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VectorIndexChoice {
    /// The scan below the measured crossover, arroy above it (docs/memory.md).
    #[default]
    Auto,
    /// Every vector scored in int8, the best re-ranked by exact cosine.
    Scan,
    /// arroy's random-projection forest, re-ranked by exact cosine; chunks written since its
    /// last build are scanned and merged.
    Arroy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct MemorySearchConfig {
    /// `weighted` (vector_weight / text_weight) or `rrf` (reciprocal rank fusion, k = 60).
    pub fusion: Fusion,
    pub vector_weight: f32,
    pub text_weight: f32,
    /// MMR diversity, 0 (off) to 1.
    pub mmr: f32,
    /// Temporal decay half-life in days; 0 turns decay off. `MEMORY.md` never decays.
    pub half_life_days: f32,
    /// Vector neighbours below this cosine similarity are not hits.
    pub min_similarity: f32,
}

impl Default for MemorySearchConfig {
    fn default() -> Self {
        Self {
            fusion: Fusion::Weighted,
            vector_weight: 0.7,
            text_weight: 0.3,
            mmr: 0.0,
            half_life_days: 0.0,
            min_similarity: 0.2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct MemoryGraphConfig {
    /// New names one document may add to the graph.
    pub max_nodes_per_document: u32,
    /// Edges one chunk may add (mentions, links, tags and co-occurrences together).
    pub max_edges_per_chunk: u32,
}

impl Default for MemoryGraphConfig {
    fn default() -> Self {
        Self {
            max_nodes_per_document: 256,
            max_edges_per_chunk: 48,
        }
    }
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            embedder: EmbedderKind::Hash,
            dimensions: 384,
            model_dir: None,
            paths: vec!["MEMORY.md".into(), "memory/*.md".into()],
            chunk_tokens: 400,
            chunk_overlap: 80,
            ingest_conversations: false,
            search: MemorySearchConfig::default(),
            graph: MemoryGraphConfig::default(),
            remote: RemoteEmbedderConfig::default(),
            vector_index: VectorIndexChoice::Auto,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TelemetryLevel {
    /// Nothing is recorded.
    Off,
    /// Attempt outcomes and latencies.
    Basic,
    /// Everything in basic plus request sizes and classification detail.
    Full,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct TelemetryConfig {
    pub level: TelemetryLevel,
    /// Attempts kept in memory for the providers pane.
    pub history: u32,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            level: TelemetryLevel::Basic,
            history: 200,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Any OpenAI-compatible chat completions endpoint.
    Openai,
    Anthropic,
    Ollama,
    /// No model: answers from memory and runs explicit tool commands.
    Offline,
    /// A quantized GGUF chat model run in-process on the CPU (edge build).
    Local,
}

impl ProviderKind {
    /// The kind a provider id names, for `[providers.ollama]` without a `kind`.
    pub fn from_id(id: &str) -> Option<Self> {
        match id {
            "openai" => Some(ProviderKind::Openai),
            "anthropic" => Some(ProviderKind::Anthropic),
            "ollama" => Some(ProviderKind::Ollama),
            "offline" => Some(ProviderKind::Offline),
            "local" => Some(ProviderKind::Local),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProviderConfig {
    /// Required, except for ids that name a kind (`openai`, `anthropic`, `ollama`, `offline`,
    /// `local`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ProviderKind>,
    /// Shown with any password and query string redacted: URLs sometimes carry keys.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "secret::serialize_redacted_url"
    )]
    pub base_url: Option<String>,
    /// `env:NAME` or `file:PATH`; never the key itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// More models this provider serves (for `models.list` and `/model`), besides `model`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// Lower runs first; configured providers are tried in priority order, then
    /// `self_heal.fallback`.
    #[serde(default = "default_priority")]
    pub priority: i32,
    #[serde(default)]
    pub capabilities: ProviderCapabilities,
    /// Per-provider overrides of the `self_heal` timeouts.
    #[serde(default)]
    pub timeouts: ProviderTimeouts,
    /// Reply length limit sent with each request (Anthropic requires one); for `local`, the
    /// most tokens one reply generates (default 512).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// `local` only: the GGUF file to run. Default: the SmolLM2 file `dist/fetch-models.sh`
    /// places in the models cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_path: Option<std::path::PathBuf>,
    /// `local` only: free the model after this many seconds without a turn (default 300;
    /// 0 keeps it loaded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_unload_s: Option<u64>,
    /// `local` only: sampling temperature, 0 to 2 (default 0.2; 0 always takes the likeliest
    /// token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// `local` only: nucleus sampling, above 0 up to 1 (default 0.9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// `local` only: the sampler's seed; the same seed and conversation give the same reply.
    /// Default: a new seed per reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        Self {
            kind: None,
            base_url: None,
            api_key: None,
            model: None,
            enabled: true,
            models: Vec::new(),
            priority: default_priority(),
            capabilities: ProviderCapabilities::default(),
            timeouts: ProviderTimeouts::default(),
            max_tokens: None,
            model_path: None,
            idle_unload_s: None,
            temperature: None,
            top_p: None,
            seed: None,
        }
    }
}

fn yes() -> bool {
    true
}

fn default_priority() -> i32 {
    100
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ProviderCapabilities {
    /// Ask for a streamed reply. Off: one JSON answer per request.
    pub streaming: bool,
    /// Offer tools to the model.
    pub tools: bool,
}

impl Default for ProviderCapabilities {
    fn default() -> Self {
        Self {
            streaming: true,
            tools: true,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ProviderTimeouts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_byte_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_ms: Option<u64>,
    /// One attempt, start to end; default `self_heal.request_timeout_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<u64>,
}

impl Config {
    /// A value by dotted key (`sandbox.fuel`), as JSON, with secrets shown as references.
    pub fn get_json(&self, key: &str) -> Option<serde_json::Value> {
        let mut value = serde_json::to_value(self).ok()?;
        if key.is_empty() {
            return Some(value);
        }
        for segment in key.split('.') {
            value = value.get_mut(segment)?.take();
        }
        Some(value)
    }
}
