//! The `tts.*` and `stt.*` methods. The voice service is built on the first of them, so an
//! engine that never speaks holds nothing for voice.

use std::path::PathBuf;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::methods::{Method, NoParams};
use super::{EngineError, EngineHandle, ErrorCode};
use crate::voice::{
    ConvertParams, ConvertResult, Failure, Setup, SttStatus, TranscribeResult, TtsProviders,
    TtsStatus, Voice, VoiceError,
};

impl From<Failure> for EngineError {
    fn from(failure: Failure) -> Self {
        let code = match failure.error {
            VoiceError::Invalid(_) => ErrorCode::InvalidRequest,
            VoiceError::Timeout(_) => ErrorCode::Timeout,
            VoiceError::Unavailable(_) | VoiceError::Rejected(_) => ErrorCode::Unavailable,
            VoiceError::Failed(_) => ErrorCode::Unavailable,
        };
        let error = EngineError::new(code, failure.error.to_string());
        if failure.attempts.is_empty() {
            error
        } else {
            error.with_details(serde_json::json!({ "attempts": failure.attempts }))
        }
    }
}

impl From<VoiceError> for EngineError {
    fn from(error: VoiceError) -> Self {
        Failure {
            error,
            attempts: Vec::new(),
        }
        .into()
    }
}

impl EngineHandle {
    /// The voice service, built on first use.
    pub fn voice(&self) -> Arc<Voice> {
        self.inner
            .voice
            .get_or_init(|| Arc::new(Voice::new(&self.snapshot().loaded.paths.state_dir)))
            .clone()
    }

    /// Whether anything has used voice in this engine yet (for tests and benchmarks of
    /// laziness).
    pub fn voice_loaded(&self) -> bool {
        self.inner.voice.get().is_some()
    }
}

/// Run `f` with the voice service and the current configuration.
macro_rules! with_setup {
    ($engine:expr, |$voice:ident, $setup:ident| $body:expr) => {{
        let snapshot = $engine.snapshot();
        let $voice = $engine.voice();
        let $setup = Setup {
            config: &snapshot.config().voice,
            env: &snapshot.loaded.options.env,
        };
        $body
    }};
}

pub struct TtsStatusMethod;

impl Method for TtsStatusMethod {
    const NAME: &'static str = "tts.status";
    const DESCRIPTION: &'static str = "Whether voice is on, the active provider and its fallbacks, and what each provider needs (binaries are looked up, nothing is started).";
    type Params = NoParams;
    type Output = TtsStatus;

    async fn run(engine: &EngineHandle, _: NoParams) -> Result<TtsStatus, EngineError> {
        let engine = engine.clone();
        // Binary lookups touch the file system.
        tokio::task::spawn_blocking(move || {
            with_setup!(engine, |voice, setup| voice.status(&setup))
        })
        .await
        .map_err(|e| EngineError::internal(format!("tts.status failed: {e}")))
    }
}

pub struct TtsProvidersMethod;

impl Method for TtsProvidersMethod {
    const NAME: &'static str = "tts.providers";
    const DESCRIPTION: &'static str =
        "Every speech provider with whether it is configured and available, and its voices.";
    type Params = NoParams;
    type Output = TtsProviders;

    async fn run(engine: &EngineHandle, _: NoParams) -> Result<TtsProviders, EngineError> {
        Ok(with_setup!(engine, |voice, setup| voice
            .providers(&setup)
            .await))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnabledResult {
    pub enabled: bool,
}

pub struct TtsEnable;

impl Method for TtsEnable {
    const NAME: &'static str = "tts.enable";
    const DESCRIPTION: &'static str =
        "Turns voice on (kept in <state>/voice/prefs.json, above the configuration).";
    type Params = NoParams;
    type Output = EnabledResult;

    async fn run(engine: &EngineHandle, _: NoParams) -> Result<EnabledResult, EngineError> {
        engine.voice().set_enabled(true)?;
        Ok(EnabledResult { enabled: true })
    }
}

pub struct TtsDisable;

impl Method for TtsDisable {
    const NAME: &'static str = "tts.disable";
    const DESCRIPTION: &'static str =
        "Turns voice off (kept in <state>/voice/prefs.json, above the configuration).";
    type Params = NoParams;
    type Output = EnabledResult;

    async fn run(engine: &EngineHandle, _: NoParams) -> Result<EnabledResult, EngineError> {
        engine.voice().set_enabled(false)?;
        Ok(EnabledResult { enabled: false })
    }
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SetProviderParams {
    /// `kittentts`, `espeak-ng`, `flite`, `openai` or `elevenlabs`.
    pub provider: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetProviderResult {
    pub provider: String,
}

pub struct TtsSetProvider;

impl Method for TtsSetProvider {
    const NAME: &'static str = "tts.setProvider";
    const DESCRIPTION: &'static str =
        "Makes a provider the active one (first in the chain); an unknown id is INVALID_REQUEST.";
    type Params = SetProviderParams;
    type Output = SetProviderResult;

    async fn run(
        engine: &EngineHandle,
        params: SetProviderParams,
    ) -> Result<SetProviderResult, EngineError> {
        engine.voice().set_provider(&params.provider)?;
        Ok(SetProviderResult {
            provider: params.provider,
        })
    }
}

pub struct TtsConvert;

impl Method for TtsConvert {
    const NAME: &'static str = "tts.convert";
    const DESCRIPTION: &'static str = "Speaks text into an audio file under <state>/voice/cache, trying the provider chain in order; UNAVAILABLE with every attempt when none can.";
    type Params = ConvertParams;
    type Output = ConvertResult;

    async fn run(
        engine: &EngineHandle,
        params: ConvertParams,
    ) -> Result<ConvertResult, EngineError> {
        Ok(with_setup!(engine, |voice, setup| voice
            .convert(&setup, &params)
            .await)?)
    }
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TranscribeParams {
    /// A WAV file (other formats need sox).
    pub audio_path: PathBuf,
}

pub struct SttTranscribe;

impl Method for SttTranscribe {
    const NAME: &'static str = "stt.transcribe";
    const DESCRIPTION: &'static str = "Transcribes an audio file with the speech-to-text chain (pocketsphinx, a whisper command, an OpenAI-compatible endpoint).";
    type Params = TranscribeParams;
    type Output = TranscribeResult;

    async fn run(
        engine: &EngineHandle,
        params: TranscribeParams,
    ) -> Result<TranscribeResult, EngineError> {
        if params.audio_path.as_os_str().is_empty() {
            return Err(EngineError::invalid_request(
                "audioPath is empty; give the audio file to transcribe",
            ));
        }
        let snapshot = engine.snapshot();
        Ok(engine
            .voice()
            .transcribe(&snapshot.config().voice, &params.audio_path)
            .await?)
    }
}

pub struct SttStatusMethod;

impl Method for SttStatusMethod {
    const NAME: &'static str = "stt.status";
    const DESCRIPTION: &'static str =
        "Whether speech to text is on, its provider chain, and what each provider needs.";
    type Params = NoParams;
    type Output = SttStatus;

    async fn run(engine: &EngineHandle, _: NoParams) -> Result<SttStatus, EngineError> {
        let engine = engine.clone();
        tokio::task::spawn_blocking(move || {
            engine.voice().stt_status(&engine.snapshot().config().voice)
        })
        .await
        .map_err(|e| EngineError::internal(format!("stt.status failed: {e}")))
    }
}
