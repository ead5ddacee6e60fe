//! The CLI face: subcommands that print what the engine answers.
//!
//! stdout carries the result (JSON where asked); diagnostics and logs go to stderr.

use std::io::Write;
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

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value).wrap_err("writing JSON to stdout")?;
    writeln!(out).wrap_err("writing to stdout")?;
    Ok(())
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
        print!("{}", status_text(&status));
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

pub fn config(loaded: &Loaded, action: &ConfigAction) -> Result<i32> {
    match action {
        ConfigAction::Path { json } => {
            if *json {
                print_json(&loaded.paths)?;
            } else {
                let p = &loaded.paths;
                let exists = |path: &std::path::Path| if path.exists() { "" } else { "  (absent)" };
                println!("state dir   {}", p.state_dir.display());
                println!(
                    "config      {}{}",
                    p.config_file.display(),
                    exists(&p.config_file)
                );
                println!(
                    "profiles    {}{}",
                    p.profiles_dir.display(),
                    exists(&p.profiles_dir)
                );
                println!(
                    "themes      {}{}",
                    p.themes_dir.display(),
                    exists(&p.themes_dir)
                );
                println!(
                    "keymaps     {}{}",
                    p.keymaps_dir.display(),
                    exists(&p.keymaps_dir)
                );
                println!("log         {}", p.log_file.display());
            }
            Ok(exit::OK)
        }
        ConfigAction::Show { json } => {
            if let Some(code) = refuse_on_errors(loaded) {
                return Ok(code);
            }
            print_diagnostics(&loaded.diagnostics);
            if *json {
                print_json(&json!({
                    "profile": loaded.profile,
                    "layers": loaded.layers,
                    "config": loaded.config,
                    "unknownKeys": loaded.unknown_keys,
                }))?;
            } else {
                println!(
                    "# effective configuration (profile {}); secrets are shown as references",
                    loaded.profile.name
                );
                for layer in &loaded.layers {
                    let state = if layer.applied {
                        ""
                    } else {
                        "  (left out: errors)"
                    };
                    println!("# layer {:<16} {}{state}", layer.kind, layer.source);
                }
                let mut shown = loaded.config.clone();
                shown.profile = Some(loaded.profile.name.clone());
                print!(
                    "{}",
                    toml::to_string_pretty(&shown).wrap_err("rendering the configuration")?
                );
                if !loaded.unknown_keys.is_empty() {
                    println!("\n# unknown keys, kept but not read:");
                    for key in &loaded.unknown_keys {
                        println!("#   {key}");
                    }
                }
            }
            Ok(exit::OK)
        }
        ConfigAction::Check { json } => {
            let errors = loaded.errors().count();
            let warnings = loaded.diagnostics.len() - errors;
            if *json {
                print_json(&json!({
                    "ok": errors == 0,
                    "errors": errors,
                    "warnings": warnings,
                    "diagnostics": loaded.diagnostics,
                    "layers": loaded.layers,
                }))?;
            } else {
                print_diagnostics(&loaded.diagnostics);
                for layer in &loaded.layers {
                    let state = if layer.applied { "ok" } else { "LEFT OUT" };
                    println!("{state:<8} {:<16} {}", layer.kind, layer.source);
                }
                println!(
                    "{} error(s), {} warning(s){}",
                    errors,
                    warnings,
                    if errors == 0 {
                        "; configuration is usable"
                    } else {
                        ""
                    }
                );
            }
            Ok(if errors == 0 { exit::OK } else { exit::USAGE })
        }
    }
}

/// A JSON frame for a failure before any request ran, so a script reading stdout sees why.
pub fn startup_error_frame(loaded: &Loaded) -> Value {
    let error = EngineError::new(
        crate::engine::ErrorCode::Unavailable,
        "startup failed: the configuration has errors; run `openclaw-rs config check`",
    )
    .with_details(json!({ "diagnostics": loaded.diagnostics }));
    json!({ "id": Value::Null, "ok": false, "error": error })
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
