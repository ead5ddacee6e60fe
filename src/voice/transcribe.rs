//! Speech to text: what `stt.status` reports, and `stt.transcribe`: the input checked and
//! capped, converted to WAV with sox when it is not one, then the STT chain tried in order.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{
    Attempt, Failure, SttStatus, TranscribeResult, Voice, VoiceError, elapsed_ms, failed,
    sox_convert, state_view, stt, tts, wav,
};
use crate::config::VoiceConfig;

/// Largest audio file `stt.transcribe` reads.
const MAX_STT_INPUT: u64 = 200 * 1024 * 1024;

impl Voice {
    pub fn stt_status(&self, config: &VoiceConfig) -> SttStatus {
        let stt = &config.stt;
        SttStatus {
            enabled: stt.enabled,
            provider: stt.provider.clone(),
            fallback_providers: stt
                .fallback
                .iter()
                .filter(|p| **p != stt.provider)
                .cloned()
                .collect(),
            provider_states: stt::STT_IDS
                .iter()
                .filter_map(|id| stt::provider(id, stt))
                .map(|p| state_view(p.id(), p.label(), p.probe()))
                .collect(),
        }
    }

    /// Transcribe a WAV (or, with sox, any audio sox reads) with the first provider that can.
    pub async fn transcribe(
        &self,
        config: &VoiceConfig,
        audio: &Path,
    ) -> Result<TranscribeResult, Failure> {
        let stt = &config.stt;
        if !stt.enabled {
            return Err(Failure {
                error: VoiceError::Unavailable(
                    "speech to text is off (voice.stt.enabled = false); turn it on in \
                     config.toml under [voice.stt], with OPENCLAW_RS_VOICE__STT__ENABLED=true, \
                     or run the edge profile"
                        .into(),
                ),
                attempts: Vec::new(),
            });
        }
        let meta = tokio::fs::metadata(audio)
            .await
            .map_err(|e| Failure::invalid(format!("cannot read {}: {e}", audio.display())))?;
        if !meta.is_file() {
            return Err(Failure::invalid(format!(
                "{} is not a file",
                audio.display()
            )));
        }
        if meta.len() > MAX_STT_INPUT {
            return Err(Failure::invalid(format!(
                "{} is {} MiB; transcription takes files up to {} MiB",
                audio.display(),
                meta.len() / (1024 * 1024),
                MAX_STT_INPUT / (1024 * 1024)
            )));
        }
        let scratch = self.scratch_dir();
        tokio::fs::create_dir_all(&scratch)
            .await
            .map_err(|e| Failure {
                error: VoiceError::Failed(format!("{}: {e}", scratch.display())),
                attempts: Vec::new(),
            })?;
        let timeout = Duration::from_millis(stt.timeout_ms.max(1));
        let mut bytes = tokio::fs::read(audio)
            .await
            .map_err(|e| Failure::invalid(format!("cannot read {}: {e}", audio.display())))?;
        wav::repair_streamed(&mut bytes);
        // Anything but WAV goes through sox first, when it is there.
        let converted = scratch.join(format!(
            "stt-in-{}-{}.wav",
            std::process::id(),
            tts::unique()
        ));
        let (input, info) = match wav::validate(&bytes) {
            Ok(info) => (audio.to_path_buf(), info),
            Err(not_wav) => {
                sox_convert(audio, &converted, &[], timeout)
                    .await
                    .map_err(|e| {
                        Failure::invalid(format!(
                            "{} is not usable audio ({not_wav}); converting it with sox failed: \
                             {e}",
                            audio.display()
                        ))
                    })?;
                let bytes = tokio::fs::read(&converted).await.unwrap_or_default();
                let info = wav::validate(&bytes).map_err(|e| {
                    Failure::invalid(format!("{} is not usable audio: {e}", audio.display()))
                })?;
                (converted.clone(), info)
            }
        };
        let mut chain = vec![stt.provider.clone()];
        for id in &stt.fallback {
            if !chain.contains(id) {
                chain.push(id.clone());
            }
        }
        let mut attempts = Vec::new();
        let mut result = None;
        for id in chain {
            let started = Instant::now();
            let Some(provider) = stt::provider(&id, stt) else {
                attempts.push(Attempt {
                    provider: id.clone(),
                    status: "invalid".into(),
                    reason: Some(format!("'{id}' is not a speech-to-text provider")),
                    latency_ms: 0,
                });
                continue;
            };
            let request = stt::SttRequest {
                audio: &input,
                info,
                timeout,
                scratch: &scratch,
            };
            match provider.transcribe(request).await {
                Ok(text) => {
                    attempts.push(Attempt {
                        provider: id.clone(),
                        status: "ok".into(),
                        reason: None,
                        latency_ms: elapsed_ms(started),
                    });
                    result = Some((id, text));
                    break;
                }
                Err(e) => attempts.push(failed(&id, &e, started)),
            }
        }
        if input == converted {
            let _ = tokio::fs::remove_file(&converted).await;
        }
        match result {
            Some((provider, text)) => Ok(TranscribeResult {
                text,
                provider,
                duration_ms: info.duration_ms,
                attempts,
            }),
            None => Err(Failure {
                error: VoiceError::Unavailable(
                    "no speech-to-text provider could transcribe this; see attempts, and \
                     `openclaw-rs call stt.status`"
                        .into(),
                ),
                attempts,
            }),
        }
    }
}
