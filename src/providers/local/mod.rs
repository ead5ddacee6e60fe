//! The `local` provider: a quantized GGUF chat model run in-process on the CPU, with no
//! server and no key. The model is read on the first turn (progress goes out as engine
//! events), kept while turns come, and freed after `idle_unload_s` without one. Generation
//! runs on its own thread and streams each piece of text as soon as its token is sampled;
//! dropping the stream (an abort, a timeout) stops it before the next token.
//!
//! Only the edge build carries the inference code (candle); a core build knows the kind and
//! reports it unconfigured, so the core dependency tree does not grow.

#[cfg(feature = "edge")]
mod engine;
#[cfg(feature = "edge")]
pub mod llama;
#[cfg(feature = "edge")]
pub mod mapped;
#[cfg(feature = "edge")]
pub mod weights;

use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{Config, ProviderConfig};

/// The `task` of the engine's progress events while a model is read (the conversations
/// pane shows them on the reply being waited for).
pub const LOAD_TASK: &str = "providers.local.load";
/// The file `dist/fetch-models.sh` places in the models cache.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// Its folder under the models cache.
pub const DEFAULT_MODEL_DIR: &str = "smollm2";
/// Reply length when neither the request nor `max_tokens` sets one.
pub const DEFAULT_MAX_TOKENS: u32 = 512;
pub const DEFAULT_IDLE_UNLOAD_S: u64 = 300;
/// SmolLM2's own recommendation for chat.
pub const DEFAULT_TEMPERATURE: f64 = 0.2;
pub const DEFAULT_TOP_P: f64 = 0.9;

/// How one `local` provider runs, from its configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalSettings {
    pub model_path: PathBuf,
    pub max_tokens: u32,
    /// `None`: never unloaded.
    pub idle_unload: Option<Duration>,
    pub temperature: f64,
    pub top_p: f64,
    /// `None`: a new seed per reply.
    pub seed: Option<u64>,
}

impl LocalSettings {
    pub fn from_config(provider: Option<&ProviderConfig>) -> Self {
        let p = provider.cloned().unwrap_or_default();
        Self {
            model_path: p.model_path.unwrap_or_else(default_model_path),
            max_tokens: p.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS).max(1),
            idle_unload: match p.idle_unload_s.unwrap_or(DEFAULT_IDLE_UNLOAD_S) {
                0 => None,
                s => Some(Duration::from_secs(s)),
            },
            temperature: p.temperature.unwrap_or(DEFAULT_TEMPERATURE),
            top_p: p.top_p.unwrap_or(DEFAULT_TOP_P),
            seed: p.seed,
        }
    }
}

/// Where the model is looked for when `model_path` is unset: the models cache that
/// `dist/fetch-models.sh` fills (`OPENCLAW_RS_MODELS_DIR`, else `~/.cache/openclaw-rs/models`).
pub fn default_model_path() -> PathBuf {
    models_root()
        .join(DEFAULT_MODEL_DIR)
        .join(DEFAULT_MODEL_FILE)
}

fn models_root() -> PathBuf {
    std::env::var_os("OPENCLAW_RS_MODELS_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            directories::BaseDirs::new().map(|b| b.cache_dir().join("openclaw-rs").join("models"))
        })
        .unwrap_or_else(|| PathBuf::from("models"))
}

/// Where a model's weights, converted for the forward, are kept to be memory-mapped
/// (`<models cache>/weights`), whichever file they come from: named by the model's sha256.
pub fn weights_cache_dir() -> PathBuf {
    models_root().join("weights")
}

/// What `providers list` and the providers pane show of a local model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalModelStatus {
    pub model_path: String,
    /// `unloaded`, `loading` or `loaded`.
    pub state: String,
    /// A reply is being generated now.
    pub replying: bool,
    /// Resident memory of the whole process now, in bytes (the model lives in it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
    /// How long the last load took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_ms: Option<u64>,
    /// Generation speed of the last reply (tokens after the first, per second).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_s: Option<f64>,
    /// Prompt processing speed of the last reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_per_s: Option<f64>,
    /// Prompt in to first token out, of the last reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_token_ms: Option<u64>,
    /// The model's context window in tokens, once it has been read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_tokens: Option<u32>,
    /// Seconds without a turn after which it is freed; absent: kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_unload_s: Option<u64>,
}

impl LocalModelStatus {
    /// One line for lists and panes: state, memory, speed, file.
    pub fn summary(&self) -> String {
        let mut parts = vec![format!("in-process model, {}", self.state)];
        if self.replying {
            parts.push("replying".into());
        }
        if self.state == "loaded"
            && let Some(rss) = self.rss_bytes
        {
            parts.push(format!("RSS {} MB", rss >> 20));
        }
        if let Some(t) = self.tokens_per_s {
            parts.push(format!("{t:.0} tok/s"));
        }
        if let Some(ms) = self.first_token_ms {
            parts.push(format!("first token {ms} ms"));
        }
        if let Some(ms) = self.load_ms {
            parts.push(format!("load {ms} ms"));
        }
        if let Some(s) = self.idle_unload_s {
            parts.push(format!("unloads after {s}s idle"));
        }
        parts.push(self.model_path.clone());
        parts.join(" · ")
    }
}

/// Resident set size of this process, from /proc (Linux); `None` elsewhere.
pub fn process_rss_bytes() -> Option<u64> {
    crate::platform::resident_bytes()
}

#[cfg(feature = "edge")]
pub use engine::{Local, chatml, tokenizer_from_gguf};

/// Build the provider, or say why it cannot run: the model file is missing (with the path
/// looked at), or this is a core build.
#[cfg(feature = "edge")]
pub fn build(
    id: &str,
    _config: &Config,
    provider: Option<&ProviderConfig>,
    host: Option<std::sync::Arc<dyn super::ProviderHost>>,
) -> Result<std::sync::Arc<dyn super::Provider>, String> {
    let settings = LocalSettings::from_config(provider);
    if !settings.model_path.is_file() {
        return Err(format!(
            "no model file at {}; run dist/fetch-models.sh or set providers.{id}.model_path",
            settings.model_path.display()
        ));
    }
    Ok(std::sync::Arc::new(Local::new(id, settings, host)))
}

#[cfg(not(feature = "edge"))]
pub fn build(
    id: &str,
    _config: &Config,
    provider: Option<&ProviderConfig>,
    _host: Option<std::sync::Arc<dyn super::ProviderHost>>,
) -> Result<std::sync::Arc<dyn super::Provider>, String> {
    let settings = LocalSettings::from_config(provider);
    Err(format!(
        "providers.{id} (kind local) runs only in the edge build; this is the core build (model \
         file {})",
        settings.model_path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_come_from_the_provider_config_with_defaults() {
        let defaults = LocalSettings::from_config(None);
        assert!(
            defaults
                .model_path
                .ends_with("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
        );
        assert_eq!(defaults.max_tokens, DEFAULT_MAX_TOKENS);
        assert_eq!(
            defaults.idle_unload,
            Some(Duration::from_secs(DEFAULT_IDLE_UNLOAD_S))
        );
        let set = ProviderConfig {
            model_path: Some("/x/y.gguf".into()),
            max_tokens: Some(7),
            idle_unload_s: Some(0),
            temperature: Some(0.0),
            top_p: Some(0.5),
            seed: Some(9),
            ..Default::default()
        };
        let s = LocalSettings::from_config(Some(&set));
        assert_eq!(s.model_path, PathBuf::from("/x/y.gguf"));
        assert_eq!(
            (s.max_tokens, s.idle_unload, s.temperature, s.top_p, s.seed),
            (7, None, 0.0, 0.5, Some(9))
        );
    }

    #[test]
    fn a_missing_model_file_is_unconfigured_with_the_path_looked_at() {
        let set = ProviderConfig {
            model_path: Some("/nonexistent/dir/model.gguf".into()),
            ..Default::default()
        };
        let Err(why) = build("local", &Config::default(), Some(&set), None) else {
            panic!("a missing file must not build");
        };
        assert!(why.contains("/nonexistent/dir/model.gguf"), "{why}");
    }
}
