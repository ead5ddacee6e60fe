//! Text-to-speech providers: local programs (`kittentts`, `espeak-ng`, `flite`) and cloud
//! endpoints (`openai`, `elevenlabs`). Building one costs nothing: binaries are looked up and
//! processes started only when a conversion or a status asks.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use crate::config::{CloudVoiceConfig, SecretRef, VoiceConfig};

use super::{VoiceError, process, wav};

pub type Env = std::collections::BTreeMap<String, String>;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub use crate::config::TTS_IDS;

/// Largest audio one attempt may produce (a minute of 48 kHz stereo is ~11 MiB).
pub const MAX_AUDIO_BYTES: u64 = 64 * 1024 * 1024;

/// What a provider reports about itself without converting anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeState {
    /// It has what it needs in the configuration.
    pub configured: bool,
    /// It could run now: its binary exists, or its key resolves.
    pub available: bool,
    pub binary_path: Option<PathBuf>,
    /// Why it is not available, in words a user can act on.
    pub reason: Option<String>,
}

/// One piece of text to speak.
pub struct Request<'a> {
    pub text: &'a str,
    pub voice: Option<&'a str>,
    pub timeout: Duration,
    /// Where a provider may write its output file.
    pub scratch: &'a Path,
}

pub trait TtsProvider: Send + Sync {
    fn id(&self) -> &'static str;
    fn label(&self) -> String;
    /// Looks up binaries and keys; starts nothing.
    fn probe(&self) -> ProbeState;
    /// The voices it offers; may start the program to ask it.
    fn voices(&self, timeout: Duration) -> BoxFuture<'_, Vec<String>>;
    /// Everything besides text and voice that changes the audio, for the cache key.
    fn identity(&self) -> String;
    /// A complete, validated WAV file.
    fn synthesize<'a>(&'a self, request: Request<'a>)
    -> BoxFuture<'a, Result<Vec<u8>, VoiceError>>;
}

/// Build the provider `id` from the configuration. `None` for an unknown id.
/// `env` holds the `OPENCLAW_RS_*` variables the configuration was loaded with.
pub fn provider(id: &str, config: &VoiceConfig, env: &Env) -> Option<Box<dyn TtsProvider>> {
    Some(match id {
        "kittentts" => Box::new(CommandTts::kittentts(config, env)),
        "espeak-ng" => Box::new(CommandTts::preset("espeak-ng", "espeak-ng", None)),
        "flite" => Box::new(CommandTts::preset("flite", "flite", None)),
        "openai" => Box::new(OpenAiTts {
            config: config.openai.clone(),
        }),
        "elevenlabs" => Box::new(ElevenLabsTts {
            config: config.elevenlabs.clone(),
        }),
        _ => return None,
    })
}

// ---- local commands ---------------------------------------------------------------------------

/// How to run one program: its binary and argument template.
struct Preset {
    bin: &'static str,
    args: &'static [&'static str],
    /// The program cannot speak without a voice (piper needs its model file).
    needs_voice: bool,
}

const PRESETS: &[(&str, Preset)] = &[
    (
        "piper",
        Preset {
            bin: "piper",
            args: &["--model", "{voice}", "--output_file", "{out}"],
            needs_voice: true,
        },
    ),
    (
        "espeak-ng",
        Preset {
            bin: "espeak-ng",
            args: &["-v", "{voice}", "-w", "{out}", "--stdin"],
            needs_voice: false,
        },
    ),
    (
        "flite",
        Preset {
            bin: "flite",
            args: &["-voice", "{voice}", "-o", "{out}", "-t", "{text}"],
            needs_voice: false,
        },
    ),
];

pub fn preset_names() -> Vec<&'static str> {
    PRESETS.iter().map(|(name, _)| *name).collect()
}

/// A local program that turns text into a WAV, described by a binary and argument template.
pub struct CommandTts {
    id: &'static str,
    /// What the user named: a preset, `custom`, or the program itself.
    flavour: String,
    bin: String,
    args: Vec<String>,
    voice: Option<String>,
    needs_voice: bool,
    configured: bool,
    /// A problem with the configuration itself (an unknown preset, unparsable arguments).
    config_error: Option<String>,
}

impl CommandTts {
    fn preset(id: &'static str, name: &str, voice: Option<String>) -> Self {
        let (_, preset) = PRESETS
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or(&PRESETS[1]);
        Self {
            id,
            flavour: name.to_string(),
            bin: preset.bin.to_string(),
            args: preset.args.iter().map(|a| a.to_string()).collect(),
            voice,
            needs_voice: preset.needs_voice,
            configured: true,
            config_error: None,
        }
    }

    /// `kittentts`: a preset or a custom command; the environment overrides the file.
    fn kittentts(config: &VoiceConfig, env: &Env) -> Self {
        let k = &config.kittentts;
        let var = |name: &str| env.get(name).filter(|v| !v.trim().is_empty()).cloned();
        let env_bin = var("OPENCLAW_RS_KITTENTTS_BIN");
        let env_args = var("OPENCLAW_RS_KITTENTTS_ARGS");
        let mut me = match k.preset.as_deref() {
            Some(name) if PRESETS.iter().any(|(n, _)| *n == name) => {
                Self::preset("kittentts", name, k.voice.clone())
            }
            other => Self {
                id: "kittentts",
                flavour: "custom".into(),
                bin: String::new(),
                args: Vec::new(),
                voice: k.voice.clone(),
                needs_voice: false,
                configured: false,
                config_error: other.map(|name| {
                    format!(
                        "voice.kittentts.preset '{name}' is not one of {}",
                        preset_names().join(", ")
                    )
                }),
            },
        };
        if let Some(bin) = env_bin.or_else(|| k.bin.clone()) {
            me.bin = bin;
            me.configured = true;
            if k.preset.is_none() {
                me.flavour = Path::new(&me.bin)
                    .file_name()
                    .map_or_else(|| "custom".into(), |n| n.to_string_lossy().into_owned());
            }
        }
        if let Some(raw) = env_args {
            match shlex::split(&raw) {
                Some(args) => me.args = args,
                None => {
                    me.config_error =
                        Some("OPENCLAW_RS_KITTENTTS_ARGS has an unbalanced quote or escape".into());
                }
            }
        } else if let Some(args) = &k.args {
            me.args = args.clone();
        }
        me
    }

    /// The arguments for one conversion, and whether text goes on stdin and audio comes on
    /// stdout. A `{voice}` token with no voice set is left out with the flag before it.
    fn expand(&self, text: &str, voice: Option<&str>, out: &Path) -> (Vec<String>, bool, bool) {
        let mut args: Vec<String> = Vec::with_capacity(self.args.len());
        let text_in_args = self.args.iter().any(|a| a.contains("{text}"));
        let out_in_args = self.args.iter().any(|a| a.contains("{out}"));
        for arg in &self.args {
            if arg.contains("{voice}") {
                match voice {
                    Some(v) => args.push(arg.replace("{voice}", v)),
                    None => {
                        if args.last().is_some_and(|prev| prev.starts_with('-')) {
                            args.pop();
                        }
                    }
                }
                continue;
            }
            args.push(
                arg.replace("{out}", &out.to_string_lossy())
                    .replace("{text}", text),
            );
        }
        (args, !text_in_args, !out_in_args)
    }
}

impl TtsProvider for CommandTts {
    fn id(&self) -> &'static str {
        self.id
    }

    fn label(&self) -> String {
        match self.id {
            "kittentts" => format!("KittenTTS (local command: {})", self.flavour),
            "espeak-ng" => "eSpeak NG".into(),
            "flite" => "Flite".into(),
            other => other.into(),
        }
    }

    fn probe(&self) -> ProbeState {
        if let Some(error) = &self.config_error {
            return ProbeState {
                configured: false,
                available: false,
                binary_path: None,
                reason: Some(error.clone()),
            };
        }
        if !self.configured || self.bin.is_empty() {
            return ProbeState {
                configured: false,
                available: false,
                binary_path: None,
                reason: Some(
                    "not configured: set voice.kittentts.preset (piper, espeak-ng, flite) or \
                     voice.kittentts.bin, or OPENCLAW_RS_KITTENTTS_BIN"
                        .into(),
                ),
            };
        }
        match process::which(&self.bin) {
            Some(path) => ProbeState {
                configured: true,
                available: true,
                binary_path: Some(path),
                reason: None,
            },
            None => ProbeState {
                configured: true,
                available: false,
                binary_path: None,
                reason: Some(missing_binary(self.id, &self.bin)),
            },
        }
    }

    fn voices(&self, timeout: Duration) -> BoxFuture<'_, Vec<String>> {
        Box::pin(async move {
            let configured: Vec<String> = self.voice.iter().cloned().collect();
            let Some(bin) = process::which(&self.bin) else {
                return configured;
            };
            let (ask, column): (&[&str], usize) = match self.flavour.as_str() {
                "espeak-ng" => (&["--voices"], 1),
                "flite" => (&["-lv"], 0),
                _ => return configured,
            };
            let args: Vec<String> = ask.iter().map(|a| a.to_string()).collect();
            let Ok(out) = process::run(&bin, &args, None, timeout, 1024 * 1024).await else {
                return configured;
            };
            let text = String::from_utf8_lossy(&out.stdout);
            let mut voices: Vec<String> = if self.flavour == "flite" {
                // "Voices available: kal awb_time kal16 ..."
                text.split(':')
                    .nth(1)
                    .unwrap_or("")
                    .split_whitespace()
                    .map(str::to_string)
                    .collect()
            } else {
                // A header line, then "Pty Language Age/Gender VoiceName File ...".
                text.lines()
                    .skip(1)
                    .filter_map(|l| l.split_whitespace().nth(column).map(str::to_string))
                    .collect()
            };
            for v in configured.into_iter().rev() {
                if !voices.contains(&v) {
                    voices.insert(0, v);
                }
            }
            voices
        })
    }

    fn identity(&self) -> String {
        format!(
            "{}\u{1f}{}\u{1f}{}",
            self.flavour,
            self.bin,
            self.args.join("\u{1f}")
        )
    }

    fn synthesize<'a>(
        &'a self,
        request: Request<'a>,
    ) -> BoxFuture<'a, Result<Vec<u8>, VoiceError>> {
        Box::pin(async move {
            let state = self.probe();
            let Some(bin) = state.binary_path else {
                return Err(VoiceError::Unavailable(
                    state.reason.unwrap_or_else(|| "not available".into()),
                ));
            };
            let voice = request.voice.or(self.voice.as_deref());
            if self.needs_voice && voice.is_none() {
                return Err(VoiceError::Unavailable(format!(
                    "{} needs a voice model: set voice.kittentts.voice to its .onnx file",
                    self.flavour
                )));
            }
            let out = request.scratch.join(format!(
                "{}-{}-{}.wav",
                self.id,
                std::process::id(),
                unique()
            ));
            let (args, text_on_stdin, audio_on_stdout) = self.expand(request.text, voice, &out);
            let mut input = request.text.as_bytes().to_vec();
            input.push(b'\n');
            let result = process::run(
                &bin,
                &args,
                text_on_stdin.then_some(input.as_slice()),
                request.timeout,
                MAX_AUDIO_BYTES,
            )
            .await;
            let from_file = if audio_on_stdout {
                None
            } else {
                let bytes = tokio::fs::read(&out).await.ok();
                let _ = tokio::fs::remove_file(&out).await;
                bytes
            };
            let finished = result?;
            if !finished.success {
                return Err(VoiceError::Failed(format!(
                    "{} {}",
                    bin.display(),
                    finished.reason()
                )));
            }
            let mut bytes = match from_file {
                Some(bytes) => bytes,
                None if audio_on_stdout => finished.stdout,
                None => {
                    return Err(VoiceError::Rejected(format!(
                        "{} exited successfully but wrote no audio file",
                        bin.display()
                    )));
                }
            };
            wav::repair_streamed(&mut bytes);
            wav::validate(&bytes)?;
            Ok(bytes)
        })
    }
}

fn missing_binary(id: &str, bin: &str) -> String {
    if id == "kittentts" {
        format!(
            "binary '{bin}' not found (set voice.kittentts.bin or OPENCLAW_RS_KITTENTTS_BIN to \
             an installed program)"
        )
    } else {
        format!("binary '{bin}' not found on PATH (install it, e.g. apt-get install {bin})")
    }
}

/// A name no other conversion in this process uses at the same time.
pub(super) fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

// ---- cloud ------------------------------------------------------------------------------------

pub(super) const OPENAI_BASE: &str = "https://api.openai.com/v1";
const OPENAI_VOICES: &[&str] = &[
    "alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer",
];
const ELEVENLABS_BASE: &str = "https://api.elevenlabs.io";
/// ElevenLabs' "Rachel", the voice its own examples use.
const ELEVENLABS_VOICE: &str = "21m00Tcm4TlvDq8Ikwm";
/// Raw PCM comes back at this rate with `output_format=pcm_22050`.
const ELEVENLABS_RATE: u32 = 22_050;

pub(super) fn cloud_probe(config: &CloudVoiceConfig, id: &str) -> ProbeState {
    let Some(key) = &config.api_key else {
        return ProbeState {
            configured: false,
            available: false,
            binary_path: None,
            reason: Some(format!(
                "no API key: set voice.{id}.api_key = \"env:NAME\" (or file:PATH)"
            )),
        };
    };
    match key.is_available() {
        Ok(()) => ProbeState {
            configured: true,
            available: true,
            binary_path: None,
            reason: None,
        },
        Err(e) => ProbeState {
            configured: true,
            available: false,
            binary_path: None,
            reason: Some(format!("voice.{id}.api_key: {e}")),
        },
    }
}

pub(super) fn resolve_key(key: Option<&SecretRef>, id: &str) -> Result<String, VoiceError> {
    let key = key.ok_or_else(|| {
        VoiceError::Unavailable(format!(
            "no API key: set voice.{id}.api_key = \"env:NAME\" (or file:PATH)"
        ))
    })?;
    key.resolve()
        .map_err(|e| VoiceError::Unavailable(format!("voice.{id}.api_key: {e}")))
}

/// An HTTP failure as an attempt reason: status and a short, key-free body excerpt.
pub(super) async fn http_failure(id: &str, response: reqwest::Response) -> VoiceError {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let excerpt: String = body.chars().take(200).collect();
    let hint = match status.as_u16() {
        401 | 403 => " (check the API key)",
        429 => " (rate limited)",
        500..=599 => " (server error)",
        _ => "",
    };
    VoiceError::Failed(format!(
        "{id} answered HTTP {}{hint}: {}",
        status.as_u16(),
        excerpt.trim()
    ))
}

pub(super) fn request_error(id: &str, e: reqwest::Error, timeout: Duration) -> VoiceError {
    if e.is_timeout() {
        VoiceError::Timeout(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX))
    } else {
        // Without the URL: a base URL can carry credentials.
        VoiceError::Failed(format!("{id} request failed: {}", e.without_url()))
    }
}

async fn read_capped(
    id: &str,
    mut response: reqwest::Response,
    timeout: Duration,
) -> Result<Vec<u8>, VoiceError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| request_error(id, e, timeout))?
    {
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > MAX_AUDIO_BYTES {
            return Err(VoiceError::Rejected(format!(
                "{id} sent more than {} MiB",
                MAX_AUDIO_BYTES / (1024 * 1024)
            )));
        }
    }
    Ok(bytes)
}

pub(super) fn client(timeout: Duration) -> Result<reqwest::Client, VoiceError> {
    crate::net::client_builder()
        .timeout(timeout)
        .build()
        .map_err(|e| VoiceError::Failed(format!("HTTP client: {e}")))
}

/// The speech endpoint of any OpenAI-compatible server.
pub struct OpenAiTts {
    config: CloudVoiceConfig,
}

impl TtsProvider for OpenAiTts {
    fn id(&self) -> &'static str {
        "openai"
    }

    fn label(&self) -> String {
        "OpenAI-compatible speech".into()
    }

    fn probe(&self) -> ProbeState {
        cloud_probe(&self.config, "openai")
    }

    fn voices(&self, _: Duration) -> BoxFuture<'_, Vec<String>> {
        Box::pin(async move { OPENAI_VOICES.iter().map(|v| v.to_string()).collect() })
    }

    fn identity(&self) -> String {
        format!(
            "{}\u{1f}{}",
            self.config.base_url.as_deref().unwrap_or(OPENAI_BASE),
            self.config.model.as_deref().unwrap_or("gpt-4o-mini-tts")
        )
    }

    fn synthesize<'a>(
        &'a self,
        request: Request<'a>,
    ) -> BoxFuture<'a, Result<Vec<u8>, VoiceError>> {
        Box::pin(async move {
            let key = resolve_key(self.config.api_key.as_ref(), "openai")?;
            let base = self.config.base_url.as_deref().unwrap_or(OPENAI_BASE);
            let url = format!("{}/audio/speech", base.trim_end_matches('/'));
            let body = serde_json::json!({
                "model": self.config.model.as_deref().unwrap_or("gpt-4o-mini-tts"),
                "input": request.text,
                "voice": request.voice.or(self.config.voice.as_deref()).unwrap_or("alloy"),
                "response_format": "wav",
            });
            let response = client(request.timeout)?
                .post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .map_err(|e| request_error("openai", e, request.timeout))?;
            if !response.status().is_success() {
                return Err(http_failure("openai", response).await);
            }
            let mut bytes = read_capped("openai", response, request.timeout).await?;
            wav::repair_streamed(&mut bytes);
            wav::validate(&bytes)?;
            Ok(bytes)
        })
    }
}

/// ElevenLabs text-to-speech, asked for raw PCM so no decoder is needed.
pub struct ElevenLabsTts {
    config: CloudVoiceConfig,
}

impl TtsProvider for ElevenLabsTts {
    fn id(&self) -> &'static str {
        "elevenlabs"
    }

    fn label(&self) -> String {
        "ElevenLabs".into()
    }

    fn probe(&self) -> ProbeState {
        cloud_probe(&self.config, "elevenlabs")
    }

    fn voices(&self, _: Duration) -> BoxFuture<'_, Vec<String>> {
        Box::pin(async move {
            vec![
                self.config
                    .voice
                    .clone()
                    .unwrap_or_else(|| ELEVENLABS_VOICE.into()),
            ]
        })
    }

    fn identity(&self) -> String {
        format!(
            "{}\u{1f}{}",
            self.config.base_url.as_deref().unwrap_or(ELEVENLABS_BASE),
            self.config
                .model
                .as_deref()
                .unwrap_or("eleven_multilingual_v2")
        )
    }

    fn synthesize<'a>(
        &'a self,
        request: Request<'a>,
    ) -> BoxFuture<'a, Result<Vec<u8>, VoiceError>> {
        Box::pin(async move {
            let key = resolve_key(self.config.api_key.as_ref(), "elevenlabs")?;
            let base = self.config.base_url.as_deref().unwrap_or(ELEVENLABS_BASE);
            let voice = request
                .voice
                .or(self.config.voice.as_deref())
                .unwrap_or(ELEVENLABS_VOICE);
            if voice.is_empty() || !voice.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(VoiceError::Invalid(format!(
                    "elevenlabs voice ids are letters and digits, not '{voice}'"
                )));
            }
            let url = format!(
                "{}/v1/text-to-speech/{voice}?output_format=pcm_{ELEVENLABS_RATE}",
                base.trim_end_matches('/')
            );
            let body = serde_json::json!({
                "text": request.text,
                "model_id": self.config.model.as_deref().unwrap_or("eleven_multilingual_v2"),
            });
            let response = client(request.timeout)?
                .post(url)
                .header("xi-api-key", key)
                .json(&body)
                .send()
                .await
                .map_err(|e| request_error("elevenlabs", e, request.timeout))?;
            if !response.status().is_success() {
                return Err(http_failure("elevenlabs", response).await);
            }
            let pcm = read_capped("elevenlabs", response, request.timeout).await?;
            // A JSON error body with a 200, or an HTML page, is not PCM.
            if pcm.starts_with(b"{") || pcm.starts_with(b"<") {
                return Err(VoiceError::Rejected(
                    "elevenlabs answered with text, not audio".into(),
                ));
            }
            let bytes = wav::from_pcm16(&pcm, ELEVENLABS_RATE)?;
            wav::validate(&bytes)?;
            Ok(bytes)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_the_config_accepts_has_a_command_and_no_other() {
        assert_eq!(preset_names(), crate::config::KITTENTTS_PRESETS);
    }

    fn custom(args: &[&str]) -> CommandTts {
        CommandTts {
            id: "kittentts",
            flavour: "custom".into(),
            bin: "tts".into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            voice: None,
            needs_voice: false,
            configured: true,
            config_error: None,
        }
    }

    #[test]
    fn templates_place_text_voice_and_output() {
        let out = Path::new("/tmp/o.wav");
        let t = custom(&["-v", "{voice}", "-w", "{out}", "--stdin"]);
        let (args, stdin, stdout) = t.expand("hi", None, out);
        assert_eq!(
            args,
            ["-w", "/tmp/o.wav", "--stdin"],
            "voice and its flag dropped"
        );
        assert!(stdin && !stdout);
        let (args, ..) = t.expand("hi", Some("en-us"), out);
        assert_eq!(args, ["-v", "en-us", "-w", "/tmp/o.wav", "--stdin"]);

        let (args, stdin, stdout) = custom(&["--say", "{text}"]).expand("a b; rm -rf /", None, out);
        // The text is one argument, never a shell word list.
        assert_eq!(args, ["--say", "a b; rm -rf /"]);
        assert!(!stdin && stdout);
    }

    #[test]
    fn unknown_preset_and_unconfigured_kittentts_say_what_to_set() {
        let mut config = VoiceConfig::default();
        let env = Env::new();
        let state = CommandTts::kittentts(&config, &env).probe();
        assert!(!state.configured && !state.available);
        assert!(state.reason.unwrap().contains("voice.kittentts"));
        config.kittentts.preset = Some("festival".into());
        let state = CommandTts::kittentts(&config, &env).probe();
        assert!(state.reason.unwrap().contains("festival"));
    }

    #[test]
    fn environment_overrides_the_kittentts_command() {
        let mut config = VoiceConfig::default();
        config.kittentts.preset = Some("piper".into());
        let env: Env = [
            (
                "OPENCLAW_RS_KITTENTTS_BIN".to_string(),
                "/opt/tts/say".to_string(),
            ),
            (
                "OPENCLAW_RS_KITTENTTS_ARGS".to_string(),
                "--out '{out}' --voice \"my voice\"".to_string(),
            ),
        ]
        .into();
        let t = CommandTts::kittentts(&config, &env);
        assert_eq!(t.bin, "/opt/tts/say");
        assert_eq!(t.args, ["--out", "{out}", "--voice", "my voice"]);
        let bad: Env = [(
            "OPENCLAW_RS_KITTENTTS_ARGS".to_string(),
            "'open".to_string(),
        )]
        .into();
        let state = CommandTts::kittentts(&config, &bad).probe();
        assert!(state.reason.unwrap().contains("OPENCLAW_RS_KITTENTTS_ARGS"));
    }
}
