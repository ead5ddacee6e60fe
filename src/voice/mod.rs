//! Offline voice: text to speech through a chain of providers, and speech to text.
//!
//! Nothing here runs until asked: the engine builds [`Voice`] on the first voice method, and
//! providers look up their binaries or keys only when a conversion or a status needs them.
//! A conversion tries the chain provider by provider and records every attempt; when all
//! fail it says so with the attempts, and never hands back audio it did not get.

pub mod process;
pub mod stt;
pub mod text;
pub mod tts;
pub mod wav;

mod cache;
mod transcribe;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use self::cache::{cache_key, cached, prune_cache, touch};
use crate::config::VoiceConfig;
use crate::files;
pub use tts::{Env, ProbeState, TTS_IDS, TtsProvider};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoiceError {
    /// The provider cannot run here: no binary, no key, not configured.
    #[error("{0}")]
    Unavailable(String),
    #[error("no answer within {0} ms")]
    Timeout(u64),
    /// It answered, but not with usable audio or text.
    #[error("{0}")]
    Rejected(String),
    /// It ran and failed: an exit status, an HTTP error.
    #[error("{0}")]
    Failed(String),
    /// The request itself is wrong; no provider would do better.
    #[error("{0}")]
    Invalid(String),
}

impl VoiceError {
    /// The attempt status this error is recorded as.
    pub fn status(&self) -> &'static str {
        match self {
            VoiceError::Unavailable(_) => "unavailable",
            VoiceError::Timeout(_) => "timeout",
            VoiceError::Rejected(_) => "rejected",
            VoiceError::Failed(_) => "failed",
            VoiceError::Invalid(_) => "invalid",
        }
    }
}

/// One provider tried for one conversion: the shape of `runtime.selfHealing.attempts[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub provider: String,
    /// `ok`, `cached`, `unavailable`, `timeout`, `rejected`, `failed` or `invalid`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub latency_ms: u64,
}

/// A conversion or transcription that did not happen, with what was tried.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub error: VoiceError,
    pub attempts: Vec<Attempt>,
}

impl Failure {
    fn invalid(message: impl Into<String>) -> Self {
        Self {
            error: VoiceError::Invalid(message.into()),
            attempts: Vec::new(),
        }
    }
}

// ---- wire shapes ------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderState {
    pub id: String,
    pub label: String,
    pub configured: bool,
    pub available: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TtsStatus {
    pub enabled: bool,
    /// Replies are spoken as they arrive (when enabled).
    pub auto: bool,
    pub provider: String,
    pub fallback_providers: Vec<String>,
    pub provider_states: Vec<ProviderState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderInfo {
    pub id: String,
    pub name: String,
    pub configured: bool,
    pub available: bool,
    pub voices: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TtsProviders {
    pub providers: Vec<ProviderInfo>,
    pub active: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConvertParams {
    pub text: String,
    /// Try this provider first, then the configured chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<String>,
    /// `wav` (default) or any format sox writes here (`flac`, `ogg`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConvertResult {
    pub audio_path: String,
    pub provider: String,
    /// What `audioPath` holds: the format asked for, or `wav` when it could not be converted.
    pub output_format: String,
    pub duration_ms: u64,
    pub attempts: Vec<Attempt>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SttStatus {
    pub enabled: bool,
    pub provider: String,
    pub fallback_providers: Vec<String>,
    pub provider_states: Vec<ProviderState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TranscribeResult {
    pub text: String,
    pub provider: String,
    pub duration_ms: u64,
    pub attempts: Vec<Attempt>,
}

// ---- the service ------------------------------------------------------------------------------

/// Choices made with `tts.enable`, `tts.disable` and `tts.setProvider`; they outlive the
/// process (the CLI runs one command per process) and override the configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Prefs {
    #[serde(skip_serializing_if = "Option::is_none")]
    enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider: Option<String>,
}

pub struct Voice {
    /// `<state>/voice`: prefs, cache, scratch.
    dir: PathBuf,
    prefs: Mutex<Option<Prefs>>,
}

/// Everything a call needs from the engine's current snapshot.
pub struct Setup<'a> {
    pub config: &'a VoiceConfig,
    pub env: &'a Env,
}

impl Voice {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join("voice"),
            prefs: Mutex::new(None),
        }
    }

    fn prefs_path(&self) -> PathBuf {
        self.dir.join("prefs.json")
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.dir.join("cache")
    }

    fn scratch_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    fn prefs(&self) -> Prefs {
        let mut slot = self.prefs.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert_with(|| {
            std::fs::read(self.prefs_path())
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .unwrap_or_default()
        })
        .clone()
    }

    fn update_prefs(&self, change: impl FnOnce(&mut Prefs)) -> Result<(), VoiceError> {
        let mut prefs = self.prefs();
        change(&mut prefs);
        let text = serde_json::to_vec_pretty(&prefs)
            .map_err(|e| VoiceError::Failed(format!("voice preferences: {e}")))?;
        let path = self.prefs_path();
        let write = || -> std::io::Result<()> {
            files::create_private_dir_all(&self.dir)?;
            files::write_atomic(&path, &text, files::PRIVATE_FILE)
        };
        write().map_err(|e| VoiceError::Failed(format!("writing {}: {e}", path.display())))?;
        *self.prefs.lock().unwrap_or_else(|p| p.into_inner()) = Some(prefs);
        Ok(())
    }

    pub fn enabled(&self, config: &VoiceConfig) -> bool {
        self.prefs().enabled.unwrap_or(config.enabled)
    }

    /// The active provider: the one chosen with `tts.setProvider`, else the configuration's.
    pub fn active(&self, config: &VoiceConfig) -> String {
        self.prefs()
            .provider
            .filter(|p| TTS_IDS.contains(&p.as_str()))
            .unwrap_or_else(|| config.provider.clone())
    }

    /// The providers a conversion tries, in order, without repeats: the one asked for, the
    /// active one, the configured one (when `tts.setProvider` chose another), the fallbacks.
    pub fn chain(&self, config: &VoiceConfig, first: Option<&str>) -> Vec<String> {
        let active = self.active(config);
        let mut chain: Vec<String> = Vec::new();
        for id in first
            .into_iter()
            .chain([active.as_str(), config.provider.as_str()])
            .chain(config.fallback.iter().map(String::as_str))
        {
            if !chain.iter().any(|c| c == id) {
                chain.push(id.to_string());
            }
        }
        chain
    }

    pub fn set_enabled(&self, enabled: bool) -> Result<(), VoiceError> {
        self.update_prefs(|p| p.enabled = Some(enabled))
    }

    pub fn set_provider(&self, id: &str) -> Result<(), VoiceError> {
        if !TTS_IDS.contains(&id) {
            return Err(VoiceError::Invalid(format!(
                "unknown voice provider '{id}'; use one of {}",
                TTS_IDS.join(", ")
            )));
        }
        self.update_prefs(|p| p.provider = Some(id.to_string()))
    }

    pub fn status(&self, setup: &Setup<'_>) -> TtsStatus {
        let config = setup.config;
        let active = self.active(config);
        let fallback_providers = self
            .chain(config, None)
            .into_iter()
            .filter(|p| *p != active)
            .collect();
        TtsStatus {
            enabled: self.enabled(config),
            auto: config.auto,
            provider: active,
            fallback_providers,
            provider_states: TTS_IDS
                .iter()
                .filter_map(|id| tts::provider(id, config, setup.env))
                .map(|p| state_view(p.id(), p.label(), p.probe()))
                .collect(),
        }
    }

    pub async fn providers(&self, setup: &Setup<'_>) -> TtsProviders {
        let config = setup.config;
        // Listing voices starts the local programs; a short limit keeps a broken one from
        // holding up the list.
        let limit = Duration::from_millis(config.timeout_ms.min(5_000));
        let mut providers = Vec::new();
        for id in TTS_IDS {
            let Some(p) = tts::provider(id, config, setup.env) else {
                continue;
            };
            let state = p.probe();
            // Local programs are asked only when installed; cloud lists are static.
            let voices = p.voices(limit).await;
            providers.push(ProviderInfo {
                id: p.id().to_string(),
                name: p.label(),
                configured: state.configured,
                available: state.available,
                voices,
            });
        }
        TtsProviders {
            providers,
            active: self.active(config),
        }
    }

    /// Speak `params.text` with the first provider in the chain that can, caching the audio.
    pub async fn convert(
        &self,
        setup: &Setup<'_>,
        params: &ConvertParams,
    ) -> Result<ConvertResult, Failure> {
        let config = setup.config;
        let text = params.text.trim();
        if text.is_empty() {
            return Err(Failure::invalid("text is empty; give something to say"));
        }
        let length = text.chars().count();
        let max = config.max_text_length as usize;
        if length > max {
            return Err(Failure::invalid(format!(
                "text is {length} characters; voice.max_text_length allows {max} (shorten it or \
                 raise the limit)"
            )));
        }
        if let Some(first) = params.provider.as_deref()
            && !TTS_IDS.contains(&first)
        {
            return Err(Failure::invalid(format!(
                "unknown voice provider '{first}'; use one of {}",
                TTS_IDS.join(", ")
            )));
        }
        let format = normalize_format(params.format.as_deref()).map_err(Failure::invalid)?;
        let segments = text::segments(text, config.segment_chars.max(1) as usize);
        let timeout = Duration::from_millis(config.timeout_ms.max(1));
        let cache = self.cache_dir();
        let scratch = self.scratch_dir();
        for dir in [&cache, &scratch] {
            tokio::fs::create_dir_all(dir).await.map_err(|e| Failure {
                error: VoiceError::Failed(format!("{}: {e}", dir.display())),
                attempts: Vec::new(),
            })?;
        }
        let use_cache = config.cache_max_files > 0;

        let active = self.active(config);
        let mut attempts = Vec::new();
        for (index, id) in self
            .chain(config, params.provider.as_deref())
            .into_iter()
            .enumerate()
        {
            let started = Instant::now();
            let Some(provider) = tts::provider(&id, config, setup.env) else {
                attempts.push(Attempt {
                    provider: id.clone(),
                    status: "invalid".into(),
                    reason: Some(format!("'{id}' is not a voice provider")),
                    latency_ms: 0,
                });
                continue;
            };
            // A voice asked for belongs to the first provider; voice names mean nothing to
            // the others, which speak with their default (or the configured one if active).
            let voice = match params.voice.as_deref() {
                Some(v) if index == 0 => Some(v),
                _ => config.voice.as_deref().filter(|_| id == active),
            };
            let key = cache_key(&id, &provider.identity(), voice, text);
            let wav_path = cache.join(format!("{key}.wav"));

            if use_cache && let Some(info) = cached(&wav_path).await {
                attempts.push(Attempt {
                    provider: id.clone(),
                    status: "cached".into(),
                    reason: None,
                    latency_ms: elapsed_ms(started),
                });
                return Ok(self
                    .finish(
                        &wav_path, &key, &format, id, info, attempts, config, timeout,
                    )
                    .await);
            }

            match synthesize_all(provider.as_ref(), &segments, voice, timeout, &scratch).await {
                Ok(bytes) => {
                    let info = match wav::validate(&bytes) {
                        Ok(info) => info,
                        Err(e) => {
                            attempts.push(failed(&id, &e, started));
                            continue;
                        }
                    };
                    if let Err(e) = write_atomic(&wav_path, &bytes).await {
                        attempts.push(failed(&id, &e, started));
                        continue;
                    }
                    attempts.push(Attempt {
                        provider: id.clone(),
                        status: "ok".into(),
                        reason: None,
                        latency_ms: elapsed_ms(started),
                    });
                    return Ok(self
                        .finish(
                            &wav_path, &key, &format, id, info, attempts, config, timeout,
                        )
                        .await);
                }
                Err(e) => {
                    tracing::info!(provider = %id, "tts attempt failed: {e}");
                    attempts.push(failed(&id, &e, started));
                }
            }
        }
        let tried: Vec<String> = attempts
            .iter()
            .map(|a| format!("{} ({})", a.provider, a.status))
            .collect();
        Err(Failure {
            error: VoiceError::Unavailable(format!(
                "no voice provider could speak this: tried {}; see attempts for why, and \
                 `openclaw-rs tts status`",
                tried.join(", ")
            )),
            attempts,
        })
    }

    /// Convert to the asked format if possible, bound the cache, and build the result.
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        wav_path: &Path,
        key: &str,
        format: &str,
        provider: String,
        info: wav::WavInfo,
        attempts: Vec<Attempt>,
        config: &VoiceConfig,
        timeout: Duration,
    ) -> ConvertResult {
        let mut audio = wav_path.to_path_buf();
        let mut output_format = "wav".to_string();
        if format != "wav" {
            let target = self.cache_dir().join(format!("{key}.{format}"));
            let ready = tokio::fs::metadata(&target)
                .await
                .is_ok_and(|m| m.len() > 0);
            let converted = if ready {
                Ok(())
            } else {
                sox_convert(wav_path, &target, &[], timeout).await
            };
            match converted {
                Ok(()) => {
                    audio = target;
                    output_format = format.to_string();
                }
                Err(e) => tracing::warn!("kept WAV: converting to {format} failed: {e}"),
            }
        }
        touch(&audio);
        prune_cache(
            &self.cache_dir(),
            config.cache_max_files.max(1) as usize,
            u64::from(config.cache_max_mb) * 1024 * 1024,
            &[wav_path, &audio],
        );
        ConvertResult {
            audio_path: audio.display().to_string(),
            provider,
            output_format,
            duration_ms: info.duration_ms,
            attempts,
        }
    }
}

fn state_view(id: &str, label: String, state: ProbeState) -> ProviderState {
    ProviderState {
        id: id.to_string(),
        label,
        configured: state.configured,
        available: state.available,
        binary_path: state.binary_path.map(|p| p.display().to_string()),
    }
}

fn failed(id: &str, error: &VoiceError, started: Instant) -> Attempt {
    Attempt {
        provider: id.to_string(),
        status: error.status().into(),
        reason: Some(error.to_string()),
        latency_ms: elapsed_ms(started),
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn normalize_format(format: Option<&str>) -> Result<String, String> {
    let format = format.unwrap_or("wav").trim().to_ascii_lowercase();
    let format = format.trim_start_matches('.').to_string();
    if format.is_empty() || format.len() > 8 || !format.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "format '{format}' is not a file type; use wav, or one sox writes (flac, ogg, ...)"
        ));
    }
    Ok(format)
}

async fn synthesize_all(
    provider: &dyn TtsProvider,
    segments: &[String],
    voice: Option<&str>,
    timeout: Duration,
    scratch: &Path,
) -> Result<Vec<u8>, VoiceError> {
    let mut parts = Vec::with_capacity(segments.len());
    for segment in segments {
        let request = tts::Request {
            text: segment,
            voice,
            timeout,
            scratch,
        };
        parts.push(provider.synthesize(request).await?);
    }
    wav::join(&parts)
}

async fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), VoiceError> {
    let (owned_path, owned_bytes) = (path.to_path_buf(), bytes.to_vec());
    // File system calls block: off the async threads, as tokio::fs does.
    let result = tokio::task::spawn_blocking(move || {
        files::write_atomic(&owned_path, &owned_bytes, files::PRIVATE_FILE)
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    result.map_err(|e| VoiceError::Failed(format!("writing {}: {e}", path.display())))
}

/// `sox input [args] output`: resample, or change format by the output's extension.
pub async fn sox_convert(
    input: &Path,
    output: &Path,
    args: &[&str],
    timeout: Duration,
) -> Result<(), VoiceError> {
    let sox = process::which("sox").ok_or_else(|| {
        VoiceError::Unavailable("sox is not installed (apt-get install sox)".into())
    })?;
    // -R: repeatable (fixed dither seed), so the same audio always converts the same way.
    let mut argv = vec!["-R".to_string(), input.to_string_lossy().into_owned()];
    argv.extend(args.iter().map(|a| a.to_string()));
    argv.push(output.to_string_lossy().into_owned());
    let finished = process::run(&sox, &argv, None, timeout, 1024 * 1024).await?;
    let written = tokio::fs::metadata(output).await.is_ok_and(|m| m.len() > 0);
    if !finished.success || !written {
        let _ = tokio::fs::remove_file(output).await;
        return Err(VoiceError::Failed(format!("sox {}", finished.reason())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn chain_puts_the_asked_provider_first_without_repeats() {
        let tmp = tempfile::tempdir().unwrap();
        let voice = Voice::new(tmp.path());
        let config = VoiceConfig {
            provider: "kittentts".into(),
            fallback: vec!["espeak-ng".into(), "kittentts".into(), "flite".into()],
            ..Default::default()
        };
        assert_eq!(
            voice.chain(&config, None),
            ["kittentts", "espeak-ng", "flite"]
        );
        assert_eq!(
            voice.chain(&config, Some("flite")),
            ["flite", "kittentts", "espeak-ng"]
        );
    }

    #[test]
    fn preferences_persist_and_override_the_configuration() {
        let tmp = tempfile::tempdir().unwrap();
        let config = VoiceConfig::default();
        let voice = Voice::new(tmp.path());
        assert!(!voice.enabled(&config));
        voice.set_enabled(true).unwrap();
        voice.set_provider("flite").unwrap();
        let again = Voice::new(tmp.path());
        assert!(again.enabled(&config));
        assert_eq!(again.active(&config), "flite");
        // The configured provider stays in the chain, after the chosen one.
        assert_eq!(again.chain(&config, None), ["flite", "espeak-ng"]);
        assert!(matches!(
            again.set_provider("say"),
            Err(VoiceError::Invalid(_))
        ));
    }

    #[test]
    fn cache_keeps_the_newest_within_bounds_and_never_the_current() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut paths = Vec::new();
        for i in 0..5 {
            let p = dir.join(format!("{i}.wav"));
            std::fs::write(&p, vec![0u8; 100]).unwrap();
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000 + i);
            std::fs::File::options()
                .append(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
            paths.push(p);
        }
        prune_cache(dir, 2, 1_000_000, &[&paths[0]]);
        let left: Vec<bool> = paths.iter().map(|p| p.exists()).collect();
        // The oldest is the current conversion; it stays, with the newest one.
        assert_eq!(left, [true, false, false, false, true]);
        prune_cache(dir, 10, 150, &[]);
        assert_eq!(std::fs::read_dir(dir).unwrap().count(), 1);
    }

    #[test]
    fn formats_are_plain_file_types() {
        assert_eq!(normalize_format(None).unwrap(), "wav");
        assert_eq!(normalize_format(Some(".OGG")).unwrap(), "ogg");
        for bad in ["", "../x", "w a v", "mp3;rm"] {
            assert!(normalize_format(Some(bad)).is_err(), "{bad}");
        }
    }
}
