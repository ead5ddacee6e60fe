//! `openclaw-rs tts ...` and `openclaw-rs stt FILE`: the voice methods as commands.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;

use color_eyre::eyre::{Result, WrapErr};
use serde::Serialize;

use super::{emit, exit, print_json};
use crate::cli::TtsAction;
use crate::engine::voice::{
    SetProviderParams, SttTranscribe, TranscribeParams, TtsConvert, TtsDisable, TtsEnable,
    TtsProvidersMethod, TtsSetProvider, TtsStatusMethod,
};
use crate::engine::{Engine, EngineError, ErrorCode};
use crate::voice::{Attempt, ConvertParams};

pub async fn tts(engine: &Engine, action: TtsAction) -> Result<i32> {
    let handle = engine.handle();
    match action {
        TtsAction::Status { json } => {
            let result = handle.request::<TtsStatusMethod>(Default::default()).await;
            report(result, json, |s| {
                let mut out = format!(
                    "voice       {}{}\nprovider    {}\nfallback    {}\n\n",
                    if s.enabled { "on" } else { "off" },
                    if s.auto { " (speaks replies)" } else { "" },
                    s.provider,
                    if s.fallback_providers.is_empty() {
                        "none".to_string()
                    } else {
                        s.fallback_providers.join(" → ")
                    }
                );
                for p in &s.provider_states {
                    let state = match (p.available, p.configured) {
                        (true, _) => "available",
                        (false, true) => "missing",
                        (false, false) => "not configured",
                    };
                    let _ = writeln!(
                        out,
                        "{:<11} {:<15} {}{}",
                        p.id,
                        state,
                        p.label,
                        p.binary_path
                            .as_ref()
                            .map(|b| format!(" · {b}"))
                            .unwrap_or_default()
                    );
                }
                out
            })
        }
        TtsAction::Providers { json } => {
            let result = handle
                .request::<TtsProvidersMethod>(Default::default())
                .await;
            report(result, json, |r| {
                let mut out = String::new();
                for p in &r.providers {
                    let mark = if p.id == r.active { "*" } else { " " };
                    let state = match (p.available, p.configured) {
                        (true, _) => "available",
                        (false, true) => "missing",
                        (false, false) => "not configured",
                    };
                    let voices = match p.voices.len() {
                        0 => String::new(),
                        n if n > 8 => {
                            format!(" · voices: {}, … ({n})", p.voices[..8].join(", "))
                        }
                        _ => format!(" · voices: {}", p.voices.join(", ")),
                    };
                    let _ = writeln!(out, "{mark} {:<11} {:<15} {}{voices}", p.id, state, p.name);
                }
                out
            })
        }
        TtsAction::SetProvider { provider, json } => {
            let result = handle
                .request::<TtsSetProvider>(SetProviderParams { provider })
                .await;
            report(result, json, |r| {
                format!("active provider: {}\n", r.provider)
            })
        }
        TtsAction::Enable { json } => {
            let result = handle.request::<TtsEnable>(Default::default()).await;
            report(result, json, |_| "voice on\n".to_string())
        }
        TtsAction::Disable { json } => {
            let result = handle.request::<TtsDisable>(Default::default()).await;
            report(result, json, |_| "voice off\n".to_string())
        }
        TtsAction::Say {
            text,
            out,
            provider,
            voice,
            format,
            mode,
            json,
        } => {
            let text = if text == "-" {
                let mut buf = String::new();
                std::io::stdin()
                    .read_to_string(&mut buf)
                    .wrap_err("reading the text from stdin")?;
                buf
            } else {
                text
            };
            // The output file's extension picks the format unless one is given.
            let format = format.or_else(|| {
                out.as_deref()
                    .and_then(|o| o.extension())
                    .map(|e| e.to_string_lossy().into_owned())
            });
            let asked = format.clone().unwrap_or_else(|| "wav".into());
            let params = ConvertParams {
                text,
                provider,
                voice,
                format,
            };
            let result = handle.request::<TtsConvert>(params).await;
            if let (Ok(r), Some(out)) = (&result, &out) {
                std::fs::copy(&r.audio_path, out)
                    .and_then(|_| {
                        // copy gives the cache file's mode; the user's file is private
                        // unless they asked for another mode.
                        crate::platform::set_path_mode(out, mode.unwrap_or(0o600))
                    })
                    .wrap_err_with(|| format!("copying the audio to {}", out.display()))?;
            }
            if let Ok(r) = &result
                && !r
                    .output_format
                    .eq_ignore_ascii_case(asked.trim_start_matches('.'))
            {
                eprintln!(
                    "openclaw-rs: could not convert to {asked} (is sox installed, with a \
                     handler for it?); the audio is {}",
                    r.output_format
                );
            }
            report(result, json, |r| {
                let mut text = format!(
                    "{} · {} · {:.1} s of audio\n",
                    out.as_deref().unwrap_or(Path::new(&r.audio_path)).display(),
                    r.provider,
                    r.duration_ms as f64 / 1000.0
                );
                let fell_back: Vec<&Attempt> = r
                    .attempts
                    .iter()
                    .filter(|a| a.status != "ok" && a.status != "cached")
                    .collect();
                for a in fell_back {
                    let _ = writeln!(text, "  {}", attempt_line(a));
                }
                text
            })
        }
    }
}

pub async fn stt(engine: &Engine, file: &Path, json: bool) -> Result<i32> {
    let result = engine
        .handle()
        .request::<SttTranscribe>(TranscribeParams {
            audio_path: file.to_path_buf(),
        })
        .await;
    report(result, json, |r| format!("{}\n", r.text))
}

fn attempt_line(a: &Attempt) -> String {
    format!(
        "{} {} after {} ms{}",
        a.provider,
        a.status,
        a.latency_ms,
        a.reason
            .as_ref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    )
}

fn report<T: Serialize>(
    result: Result<T, EngineError>,
    json: bool,
    text: impl Fn(&T) -> String,
) -> Result<i32> {
    match result {
        Ok(value) if json => {
            print_json(&value)?;
            Ok(exit::OK)
        }
        Ok(value) => {
            emit(&text(&value))?;
            Ok(exit::OK)
        }
        Err(error) => {
            if json {
                print_json(&serde_json::json!({ "ok": false, "error": error }))?;
            }
            eprintln!("openclaw-rs: {}", error.message);
            // Each provider tried, and why it did not do.
            let attempts: Vec<Attempt> = error
                .details
                .as_ref()
                .and_then(|d| d.get("attempts"))
                .and_then(|a| serde_json::from_value(a.clone()).ok())
                .unwrap_or_default();
            for a in &attempts {
                eprintln!("  {}", attempt_line(a));
            }
            Ok(if error.code == ErrorCode::InvalidRequest {
                exit::USAGE
            } else {
                exit::FAILED
            })
        }
    }
}
