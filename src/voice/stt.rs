//! Speech-to-text providers: `pocketsphinx` (the Debian CLI), a `whisper`-style command
//! template, and an OpenAI-compatible transcription endpoint.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{CloudVoiceConfig, SttConfig};

use super::tts::{BoxFuture, ProbeState};
use super::{VoiceError, process, wav};

pub use crate::config::STT_IDS;

/// The rate and layout pocketsphinx's acoustic model was trained on.
const SPHINX_RATE: u32 = 16_000;
const MAX_TRANSCRIPT_BYTES: u64 = 4 * 1024 * 1024;
/// Largest audio file sent to a transcription endpoint (OpenAI's own limit is 25 MB).
const MAX_UPLOAD_BYTES: u64 = 25 * 1024 * 1024;

pub struct SttRequest<'a> {
    /// A validated WAV file.
    pub audio: &'a Path,
    pub info: wav::WavInfo,
    pub timeout: Duration,
    pub scratch: &'a Path,
}

pub trait SttProvider: Send + Sync {
    fn id(&self) -> &'static str;
    fn label(&self) -> String;
    fn probe(&self) -> ProbeState;
    fn transcribe<'a>(
        &'a self,
        request: SttRequest<'a>,
    ) -> BoxFuture<'a, Result<String, VoiceError>>;
}

pub fn provider(id: &str, config: &SttConfig) -> Option<Box<dyn SttProvider>> {
    Some(match id {
        "pocketsphinx" => Box::new(Pocketsphinx),
        "whisper" => Box::new(WhisperCommand {
            bin: config.whisper.bin.clone(),
            args: config.whisper.args.clone(),
        }),
        "openai" => Box::new(OpenAiStt {
            config: config.openai.clone(),
        }),
        _ => return None,
    })
}

fn found(path: PathBuf) -> ProbeState {
    ProbeState {
        configured: true,
        available: true,
        binary_path: Some(path),
        reason: None,
    }
}

fn missing(configured: bool, reason: String) -> ProbeState {
    ProbeState {
        configured,
        available: false,
        binary_path: None,
        reason: Some(reason),
    }
}

// ---- pocketsphinx -----------------------------------------------------------------------------

/// Debian's pocketsphinx 0.8 ships `pocketsphinx_continuous`; pocketsphinx 5 ships one
/// `pocketsphinx` binary with a `single` mode that prints JSON.
pub struct Pocketsphinx;

impl Pocketsphinx {
    fn binary() -> Option<(PathBuf, bool)> {
        process::which("pocketsphinx_continuous")
            .map(|p| (p, false))
            .or_else(|| process::which("pocketsphinx").map(|p| (p, true)))
    }
}

impl SttProvider for Pocketsphinx {
    fn id(&self) -> &'static str {
        "pocketsphinx"
    }

    fn label(&self) -> String {
        "CMU PocketSphinx".into()
    }

    fn probe(&self) -> ProbeState {
        match Self::binary() {
            Some((path, _)) => found(path),
            None => missing(
                true,
                "neither pocketsphinx_continuous nor pocketsphinx is on PATH (apt-get install \
                 pocketsphinx pocketsphinx-en-us)"
                    .into(),
            ),
        }
    }

    fn transcribe<'a>(
        &'a self,
        request: SttRequest<'a>,
    ) -> BoxFuture<'a, Result<String, VoiceError>> {
        Box::pin(async move {
            let (bin, modern) = Self::binary()
                .ok_or_else(|| VoiceError::Unavailable(self.probe().reason.unwrap_or_default()))?;
            // The model expects 16 kHz mono; anything else is resampled first.
            let needs_resample =
                request.info.sample_rate != SPHINX_RATE || request.info.channels != 1;
            let resampled = request.scratch.join(format!(
                "stt-{}-{}-16k.wav",
                std::process::id(),
                super::tts::unique()
            ));
            let input = if needs_resample {
                super::sox_convert(
                    request.audio,
                    &resampled,
                    &["-r", "16000", "-c", "1", "-b", "16"],
                    request.timeout,
                )
                .await
                .map_err(|e| match e {
                    VoiceError::Unavailable(why) => VoiceError::Unavailable(format!(
                        "pocketsphinx needs 16 kHz mono audio and this is {} Hz with {} \
                         channel(s): {why}",
                        request.info.sample_rate, request.info.channels
                    )),
                    other => other,
                })?;
                resampled.clone()
            } else {
                request.audio.to_path_buf()
            };
            let path = input.to_string_lossy().into_owned();
            let args: Vec<String> = if modern {
                vec!["single".into(), path]
            } else {
                vec!["-infile".into(), path, "-logfn".into(), "/dev/null".into()]
            };
            let result =
                process::run(&bin, &args, None, request.timeout, MAX_TRANSCRIPT_BYTES).await;
            if needs_resample {
                let _ = tokio::fs::remove_file(&resampled).await;
            }
            let finished = result?;
            if !finished.success {
                return Err(VoiceError::Failed(format!(
                    "{} {}",
                    bin.display(),
                    finished.reason()
                )));
            }
            let stdout = String::from_utf8_lossy(&finished.stdout);
            let text = if modern {
                // One JSON object per utterance: {"b":0.0,"d":1.2,"p":1,"t":"the text",...}
                stdout
                    .lines()
                    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .filter_map(|v| v.get("t").and_then(|t| t.as_str()).map(str::to_string))
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                stdout
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            Ok(text)
        })
    }
}

// ---- whisper-style command --------------------------------------------------------------------

/// Any transcriber run as `bin args...` with `{input}` for the audio file; with `{out_dir}`
/// the transcript is the `.txt` it writes there (openai-whisper), else its stdout
/// (whisper.cpp's `whisper-cli -nt`).
pub struct WhisperCommand {
    bin: Option<String>,
    args: Vec<String>,
}

impl SttProvider for WhisperCommand {
    fn id(&self) -> &'static str {
        "whisper"
    }

    fn label(&self) -> String {
        "Whisper (local command)".into()
    }

    fn probe(&self) -> ProbeState {
        let Some(bin) = self.bin.as_deref().filter(|b| !b.is_empty()) else {
            return missing(
                false,
                "not configured: set voice.stt.whisper.bin and voice.stt.whisper.args (with \
                 {input})"
                    .into(),
            );
        };
        match process::which(bin) {
            Some(path) => found(path),
            None => missing(true, format!("binary '{bin}' not found")),
        }
    }

    fn transcribe<'a>(
        &'a self,
        request: SttRequest<'a>,
    ) -> BoxFuture<'a, Result<String, VoiceError>> {
        Box::pin(async move {
            let state = self.probe();
            let Some(bin) = state.binary_path else {
                return Err(VoiceError::Unavailable(state.reason.unwrap_or_default()));
            };
            if !self.args.iter().any(|a| a.contains("{input}")) {
                return Err(VoiceError::Unavailable(
                    "voice.stt.whisper.args must contain {input} (the audio file)".into(),
                ));
            }
            let out_dir = request.scratch.join(format!(
                "whisper-{}-{}",
                std::process::id(),
                super::tts::unique()
            ));
            let uses_dir = self.args.iter().any(|a| a.contains("{out_dir}"));
            if uses_dir {
                tokio::fs::create_dir_all(&out_dir)
                    .await
                    .map_err(|e| VoiceError::Failed(format!("{}: {e}", out_dir.display())))?;
            }
            let args: Vec<String> = self
                .args
                .iter()
                .map(|a| {
                    a.replace("{input}", &request.audio.to_string_lossy())
                        .replace("{out_dir}", &out_dir.to_string_lossy())
                })
                .collect();
            let result =
                process::run(&bin, &args, None, request.timeout, MAX_TRANSCRIPT_BYTES).await;
            let from_dir = if uses_dir {
                let text = read_first_txt(&out_dir).await;
                let _ = tokio::fs::remove_dir_all(&out_dir).await;
                Some(text)
            } else {
                None
            };
            let finished = result?;
            if !finished.success {
                return Err(VoiceError::Failed(format!(
                    "{} {}",
                    bin.display(),
                    finished.reason()
                )));
            }
            let text = match from_dir {
                Some(Some(text)) => text,
                Some(None) => {
                    return Err(VoiceError::Rejected(
                        "the whisper command wrote no .txt transcript to {out_dir}".into(),
                    ));
                }
                None => String::from_utf8_lossy(&finished.stdout).into_owned(),
            };
            Ok(text.split_whitespace().collect::<Vec<_>>().join(" "))
        })
    }
}

async fn read_first_txt(dir: &Path) -> Option<String> {
    let mut entries = tokio::fs::read_dir(dir).await.ok()?;
    while let Ok(Some(entry)) = entries.next_entry().await {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "txt") {
            return tokio::fs::read_to_string(&path).await.ok();
        }
    }
    None
}

// ---- OpenAI-compatible transcription ----------------------------------------------------------

pub struct OpenAiStt {
    config: CloudVoiceConfig,
}

impl SttProvider for OpenAiStt {
    fn id(&self) -> &'static str {
        "openai"
    }

    fn label(&self) -> String {
        "OpenAI-compatible transcription".into()
    }

    fn probe(&self) -> ProbeState {
        super::tts::cloud_probe(&self.config, "stt.openai")
    }

    fn transcribe<'a>(
        &'a self,
        request: SttRequest<'a>,
    ) -> BoxFuture<'a, Result<String, VoiceError>> {
        Box::pin(async move {
            let key = super::tts::resolve_key(self.config.api_key.as_ref(), "stt.openai")?;
            let size = tokio::fs::metadata(request.audio)
                .await
                .map(|m| m.len())
                .unwrap_or(0);
            if size > MAX_UPLOAD_BYTES {
                return Err(VoiceError::Invalid(format!(
                    "the audio is {} MiB; transcription endpoints take at most {} MiB",
                    size / (1024 * 1024),
                    MAX_UPLOAD_BYTES / (1024 * 1024)
                )));
            }
            let bytes = tokio::fs::read(request.audio)
                .await
                .map_err(|e| VoiceError::Failed(format!("{}: {e}", request.audio.display())))?;
            let part = reqwest::multipart::Part::bytes(bytes)
                .file_name("audio.wav")
                .mime_str("audio/wav")
                .map_err(|e| VoiceError::Failed(format!("building the upload: {e}")))?;
            let form = reqwest::multipart::Form::new()
                .text(
                    "model",
                    self.config
                        .model
                        .clone()
                        .unwrap_or_else(|| "whisper-1".into()),
                )
                .text("response_format", "json")
                .part("file", part);
            let base = self
                .config
                .base_url
                .as_deref()
                .unwrap_or(super::tts::OPENAI_BASE);
            let url = format!("{}/audio/transcriptions", base.trim_end_matches('/'));
            let response = super::tts::client(request.timeout)?
                .post(url)
                .bearer_auth(key)
                .multipart(form)
                .send()
                .await
                .map_err(|e| super::tts::request_error("openai", e, request.timeout))?;
            if !response.status().is_success() {
                return Err(super::tts::http_failure("openai", response).await);
            }
            let body: serde_json::Value = response.json().await.map_err(|e| {
                VoiceError::Rejected(format!("openai transcription is not JSON: {e}"))
            })?;
            body.get("text")
                .and_then(|t| t.as_str())
                .map(|t| t.trim().to_string())
                .ok_or_else(|| {
                    VoiceError::Rejected("openai transcription has no \"text\" field".into())
                })
        })
    }
}
