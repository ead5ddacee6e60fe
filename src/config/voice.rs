//! The `[voice]` section of the schema: speech providers, their ids and defaults.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{SecretRef, secret};

/// The ids `voice.provider`, `voice.fallback` and `tts.setProvider` accept, in listing order.
pub const TTS_IDS: &[&str] = &["kittentts", "espeak-ng", "flite", "openai", "elevenlabs"];

/// The ids `voice.stt.provider` and `voice.stt.fallback` accept, in listing order.
pub const STT_IDS: &[&str] = &["pocketsphinx", "whisper", "openai"];

/// The presets `voice.kittentts.preset` accepts; `voice::tts` holds their commands.
pub const KITTENTTS_PRESETS: &[&str] = &["piper", "espeak-ng", "flite"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct VoiceConfig {
    pub enabled: bool,
    /// Speak replies automatically.
    pub auto: bool,
    pub provider: String,
    pub fallback: Vec<String>,
    /// Voice name for the active provider (each provider has its own names); its default
    /// when left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voice: Option<String>,
    /// Longest text one `tts.convert` accepts, in characters.
    pub max_text_length: u32,
    /// Text is spoken in pieces of at most this many characters, cut at sentence ends.
    pub segment_chars: u32,
    /// Wall-clock limit per provider attempt; a local process still running then is killed.
    pub timeout_ms: u64,
    /// Converted audio kept under `<state>/voice/cache`, oldest dropped first.
    pub cache_max_files: u32,
    pub cache_max_mb: u32,
    pub kittentts: KittenTtsConfig,
    pub openai: CloudVoiceConfig,
    pub elevenlabs: CloudVoiceConfig,
    pub stt: SttConfig,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            auto: false,
            provider: "espeak-ng".into(),
            fallback: Vec::new(),
            voice: None,
            max_text_length: 4_000,
            segment_chars: 400,
            timeout_ms: 20_000,
            cache_max_files: 64,
            cache_max_mb: 64,
            kittentts: KittenTtsConfig::default(),
            openai: CloudVoiceConfig::default(),
            elevenlabs: CloudVoiceConfig::default(),
            stt: SttConfig::default(),
        }
    }
}

/// The `kittentts` provider: any local command that turns text into audio.
/// `OPENCLAW_RS_KITTENTTS_BIN` and `OPENCLAW_RS_KITTENTTS_ARGS` override `bin` and `args`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct KittenTtsConfig {
    /// `piper`, `espeak-ng` or `flite`: the binary and arguments of that program.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// The program: a name looked up on PATH, or a path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bin: Option<String>,
    /// Argument template: `{text}` (else the text goes to stdin), `{out}` (else audio is read
    /// from stdout), `{voice}` (left out with the flag before it when no voice is set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// The voice: for piper, the path of the `.onnx` model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voice: Option<String>,
}

/// A cloud speech provider (`openai`: any OpenAI-compatible base URL; `elevenlabs`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct CloudVoiceConfig {
    /// Shown with any password and query string redacted.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "secret::serialize_redacted_url"
    )]
    pub base_url: Option<String>,
    /// `env:NAME` or `file:PATH`; never the key itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<SecretRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Voice name (openai) or voice id (elevenlabs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voice: Option<String>,
}

/// Speech to text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct SttConfig {
    pub enabled: bool,
    /// `pocketsphinx`, `whisper` (a command template) or `openai`.
    pub provider: String,
    pub fallback: Vec<String>,
    pub timeout_ms: u64,
    pub whisper: WhisperConfig,
    pub openai: CloudVoiceConfig,
}

impl Default for SttConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            provider: "pocketsphinx".into(),
            fallback: Vec::new(),
            timeout_ms: 60_000,
            whisper: WhisperConfig::default(),
            openai: CloudVoiceConfig::default(),
        }
    }
}

/// A whisper-style command: `{input}` is the audio file; with `{out_dir}` the transcript is
/// the `.txt` file it writes there, else its stdout.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct WhisperConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bin: Option<String>,
    pub args: Vec<String>,
}
