//! The CLI face: subcommands that print what the engine answers.
//!
//! stdout carries the result (JSON where asked); diagnostics and logs go to stderr.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr};
use serde_json::{Value, json};

use crate::cli::ConfigAction;
use crate::config::{self, Diagnostic, Loaded};
use crate::engine::methods::{Status, StatusResult};
use crate::engine::{Engine, EngineError};

/// Exit statuses shared by every face.
pub mod exit {
    pub const OK: i32 = 0;
    /// A request failed, or findings at or above the threshold.
    pub const FAILED: i32 = 1;
    /// Usage or startup error: bad flags, a broken config file.
    pub const USAGE: i32 = 2;
}

pub fn print_diagnostics(diagnostics: &[Diagnostic]) {
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    for d in diagnostics {
        let _ = writeln!(err, "{d}");
    }
}

/// For commands that must not run on a broken configuration: report and say what to do.
pub fn refuse_on_errors(loaded: &Loaded) -> Option<i32> {
    if !loaded.has_errors() {
        return None;
    }
    print_diagnostics(&loaded.diagnostics);
    eprintln!(
        "openclaw-rs: the configuration has errors (above); fix them, or run \
         `openclaw-rs config check` for details"
    );
    Some(exit::USAGE)
}

/// Write a command's whole output. A reader that went away early (`| head`) is not an
/// error worth a report: the output was simply not wanted.
fn emit(text: &str) -> Result<()> {
    emit_bytes(text.as_bytes())
}

/// [`emit`] for bytes.
pub fn emit_bytes(bytes: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.wrap_err("writing to stdout"),
    }
}

fn to_json(value: &impl serde::Serialize) -> Result<String> {
    let mut text = serde_json::to_string_pretty(value).wrap_err("rendering JSON")?;
    text.push('\n');
    Ok(text)
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    emit(&to_json(value)?)
}

pub async fn status(engine: &Engine, as_json: bool) -> Result<i32> {
    let status = engine
        .handle()
        .request::<Status>(Default::default())
        .await
        .map_err(|e| color_eyre::eyre::eyre!(e))?;
    if as_json {
        print_json(&status)?;
    } else {
        emit(&status_text(&status))?;
    }
    Ok(exit::OK)
}

pub fn status_text(s: &StatusResult) -> String {
    let sandbox = match &s.sandbox.fallback_reason {
        Some(reason) => format!("{} (fallback: {reason})", s.sandbox.in_use.as_str()),
        None => s.sandbox.in_use.as_str().to_string(),
    };
    let features = if s.features.is_empty() {
        "none".to_string()
    } else {
        s.features.join(", ")
    };
    format!(
        "openclaw-rs {} ({} build)\n\
         profile     {}\n\
         sandbox     {sandbox}\n\
         features    {features}\n\
         state dir   {}\n\
         config      {} ({} error(s), {} warning(s))\n",
        s.version,
        s.build_track,
        s.profile,
        s.state_dir,
        s.config_file,
        s.config_errors,
        s.config_warnings,
    )
}

pub async fn call(
    engine: &Engine,
    method: &str,
    params: Option<&str>,
    timeout_ms: Option<u64>,
) -> Result<i32> {
    let params: Value = match params {
        None => Value::Null,
        Some(text) => match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("openclaw-rs: --params is not valid JSON: {e}");
                return Ok(exit::USAGE);
            }
        },
    };
    let result = engine
        .handle()
        .call_with_timeout(method, params, timeout_ms.map(Duration::from_millis))
        .await;
    match result {
        Ok(payload) => {
            print_json(&payload)?;
            Ok(exit::OK)
        }
        Err(error) => {
            print_json(&json!({ "ok": false, "error": error }))?;
            eprintln!("openclaw-rs: {error}");
            Ok(exit::FAILED)
        }
    }
}

/// `config path|show|check`. `face_diagnostics` are problems in the faces' own files (theme,
/// keymap): `check` counts them; `show` mentions them.
pub fn config(
    loaded: &Loaded,
    face_diagnostics: &[Diagnostic],
    action: &ConfigAction,
) -> Result<i32> {
    let mut out = String::new();
    let code = config_into(loaded, face_diagnostics, action, &mut out)?;
    emit(&out)?;
    Ok(code)
}

fn config_into(
    loaded: &Loaded,
    face_diagnostics: &[Diagnostic],
    action: &ConfigAction,
    out: &mut String,
) -> Result<i32> {
    match action {
        ConfigAction::Path { json: true } => out.push_str(&to_json(&loaded.paths)?),
        ConfigAction::Path { json: false } => {
            let p = &loaded.paths;
            writeln!(out, "state dir   {}", p.state_dir.display())?;
            for (label, path) in [
                ("config", &p.config_file),
                ("profiles", &p.profiles_dir),
                ("themes", &p.themes_dir),
                ("keymaps", &p.keymaps_dir),
            ] {
                let absent = if path.exists() { "" } else { "  (absent)" };
                writeln!(out, "{label:<11} {}{absent}", path.display())?;
            }
            writeln!(out, "log         {}", p.log_file.display())?;
        }
        ConfigAction::Show { json } => {
            if let Some(code) = refuse_on_errors(loaded) {
                return Ok(code);
            }
            print_diagnostics(&loaded.diagnostics);
            print_diagnostics(face_diagnostics);
            if *json {
                out.push_str(&to_json(&json!({
                    "profile": loaded.profile,
                    "layers": loaded.layers,
                    "config": loaded.config,
                    "unknownKeys": loaded.unknown_keys,
                }))?);
            } else {
                writeln!(
                    out,
                    "# effective configuration (profile {}); secrets are shown as references",
                    loaded.profile.name
                )?;
                for layer in &loaded.layers {
                    let state = if layer.applied {
                        ""
                    } else {
                        "  (left out: errors)"
                    };
                    writeln!(out, "# layer {:<16} {}{state}", layer.kind, layer.source)?;
                }
                let mut shown = loaded.config.clone();
                shown.profile = Some(loaded.profile.name.clone());
                out.push_str(
                    &toml::to_string_pretty(&shown).wrap_err("rendering the configuration")?,
                );
                if !loaded.unknown_keys.is_empty() {
                    writeln!(out, "\n# unknown keys, kept but not read:")?;
                    for key in &loaded.unknown_keys {
                        writeln!(out, "#   {key}")?;
                    }
                }
            }
        }
        ConfigAction::Check { json } => {
            let all: Vec<&Diagnostic> = loaded.diagnostics.iter().chain(face_diagnostics).collect();
            let errors = all.iter().filter(|d| d.is_error()).count();
            let warnings = all.len() - errors;
            if *json {
                out.push_str(&to_json(&json!({
                    "ok": errors == 0,
                    "errors": errors,
                    "warnings": warnings,
                    "diagnostics": all,
                    "layers": loaded.layers,
                }))?);
            } else {
                for d in &all {
                    writeln!(out, "{d}")?;
                }
                for layer in &loaded.layers {
                    let state = if layer.applied { "ok" } else { "LEFT OUT" };
                    writeln!(out, "{state:<8} {:<16} {}", layer.kind, layer.source)?;
                }
                let verdict = if errors == 0 {
                    "; configuration is usable"
                } else {
                    ""
                };
                writeln!(out, "{errors} error(s), {warnings} warning(s){verdict}")?;
            }
            return Ok(if errors == 0 { exit::OK } else { exit::USAGE });
        }
    }
    Ok(exit::OK)
}

/// A JSON frame for a failure before any request ran, so a script reading stdout sees why.
pub fn startup_error_frame(loaded: &Loaded) -> String {
    let error = EngineError::new(
        crate::engine::ErrorCode::Unavailable,
        "startup failed: the configuration has errors; run `openclaw-rs config check`",
    )
    .with_details(json!({ "diagnostics": loaded.diagnostics }));
    let frame = crate::batch::Frame {
        id: &None,
        ok: false,
        payload: None,
        error: Some(error),
    };
    serde_json::to_string(&frame).unwrap_or_default()
}

/// Whether the process environment asks for no colour (https://no-color.org).
pub fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Build the engine's inputs from the CLI's global flags and the process environment.
pub fn load_options(global: &crate::cli::GlobalArgs) -> Result<config::LoadOptions> {
    let state_dir =
        config::resolve_home(global.home.as_deref()).wrap_err("cannot find the state directory")?;
    Ok(config::LoadOptions {
        state_dir,
        config_file: global.config.clone(),
        profile: global.profile.clone(),
        theme: global.theme.clone(),
        keymap: global.keymap.clone(),
        env: Default::default(),
    }
    .with_process_env())
}
