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

pub use crate::cli::exit;

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
pub(crate) fn emit(text: &str) -> Result<()> {
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

pub(crate) fn print_json(value: &impl serde::Serialize) -> Result<()> {
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
    let embedder = match &s.embedder.fallback_reason {
        Some(reason) => format!("{} (fallback: {reason})", s.embedder.in_use.as_str()),
        None => s.embedder.in_use.as_str().to_string(),
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
         embedder    {embedder}\n\
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

/// `doctor` and `security audit`: run, optionally fix, report. A run that fails exits 2,
/// so a script can tell "findings" (1) from "could not check" (2).
pub async fn findings(
    engine: &Engine,
    audit: bool,
    args: &crate::cli::FindingsArgs,
) -> Result<i32> {
    match run_findings(engine, audit, args).await {
        Ok(code) => Ok(code),
        Err(report) => {
            eprintln!("openclaw-rs: the checks could not run: {report:?}");
            Ok(exit::RUNTIME)
        }
    }
}

async fn run_findings(
    engine: &Engine,
    audit: bool,
    args: &crate::cli::FindingsArgs,
) -> Result<i32> {
    use crate::engine::methods::{DoctorRun, ScanParams, SecurityAudit};
    let handle = engine.handle();
    let params = || ScanParams {
        deep: args.deep,
        only: args.only.clone(),
        skip: args.skip.clone(),
        severity_min: Some(args.severity_min),
        terminal: None,
    };
    let scan = || async {
        let report = if audit {
            handle.request::<SecurityAudit>(params()).await
        } else {
            handle.request::<DoctorRun>(params()).await
        };
        report.map_err(|e| color_eyre::eyre::eyre!(e))
    };
    let mut report = scan().await?;
    if args.fix {
        // Questions go to stderr, so --json output stays clean while asking.
        let interactive = !args.non_interactive
            && !args.dry_run
            && std::io::IsTerminal::is_terminal(&std::io::stdin());
        let changed = fix_findings(&handle, &report, args.dry_run, interactive).await?;
        if changed {
            report = scan().await?;
        }
    }
    if args.json {
        print_json(&report)?;
    } else {
        emit(&report_text(&report, audit))?;
    }
    Ok(if report.ok { exit::OK } else { exit::FAILED })
}

/// Apply (or preview) each fixable finding. Progress goes to stderr; stdout stays the report.
async fn fix_findings(
    handle: &crate::engine::EngineHandle,
    report: &crate::findings::Report,
    dry_run: bool,
    interactive: bool,
) -> Result<bool> {
    let fixes: Vec<&crate::findings::FixInfo> =
        report.fixable().filter_map(|f| f.fix.as_ref()).collect();
    if fixes.is_empty() {
        eprintln!("nothing to fix");
        return Ok(false);
    }
    let mut changed = false;
    for (n, fix) in fixes.iter().enumerate() {
        eprintln!(
            "[{}/{}] {} — {}",
            n + 1,
            fixes.len(),
            fix.id,
            fix.description
        );
        if dry_run {
            eprint!("{}", indent(&fix.diff));
            continue;
        }
        if interactive {
            eprint!("{}", indent(&fix.diff));
            match ask("apply this fix? [y/N/q] ").await?.as_str() {
                "y" | "yes" => {}
                "q" | "quit" => break,
                _ => {
                    eprintln!("  skipped");
                    continue;
                }
            }
        }
        let result = handle
            .request::<crate::engine::methods::FindingsFix>(crate::engine::methods::FixParams {
                fix_id: fix.id.clone(),
                dry_run: false,
            })
            .await;
        match result {
            Ok(applied) if applied.changed => {
                changed = true;
                let seq = applied
                    .journal_seq
                    .map_or(String::new(), |s| format!(" (undo: openclaw-rs undo {s})"));
                eprintln!("  applied{seq}");
            }
            Ok(_) => eprintln!("  already in place"),
            Err(e) => eprintln!("  not applied: {}", e.message),
        }
    }
    if dry_run {
        eprintln!("dry run: nothing was changed");
    }
    Ok(changed)
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

/// One answer from the terminal, lower-cased; EOF is "no".
async fn ask(question: &str) -> Result<String> {
    eprint!("{question}");
    let answer = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .await
    .wrap_err("reading the answer")?
    .wrap_err("reading the answer")?;
    Ok(answer.trim().to_ascii_lowercase())
}

/// The human form of a report: worst first, each finding with its fix.
pub fn report_text(report: &crate::findings::Report, audit: bool) -> String {
    let command = if audit {
        "openclaw-rs security audit --fix"
    } else {
        "openclaw-rs doctor --fix"
    };
    let mut out = String::new();
    for f in &report.findings {
        let _ = writeln!(
            out,
            "{:<8} {}  {}",
            f.severity.as_str(),
            f.check_id,
            f.title
        );
        if let Some(path) = &f.path {
            let _ = writeln!(out, "         at {path}");
        }
        if !f.detail.is_empty() {
            let _ = writeln!(out, "         {}", f.detail);
        }
        if let Some(fix) = &f.fix {
            let _ = writeln!(out, "         fix: {} ({command})", fix.description);
        }
    }
    for s in &report.suppressed {
        let _ = writeln!(
            out,
            "suppressed {}  {} — {}",
            s.finding.check_id, s.finding.title, s.reason
        );
    }
    let s = report.summary;
    let _ = writeln!(
        out,
        "{} critical, {} warn, {} info{}",
        s.critical,
        s.warn,
        s.info,
        if report.suppressed.is_empty() {
            String::new()
        } else {
            format!(", {} suppressed", report.suppressed.len())
        }
    );
    out
}

pub async fn undo(engine: &Engine, seq: Option<u64>, as_json: bool) -> Result<i32> {
    let result = engine
        .handle()
        .request::<crate::engine::methods::FindingsUndo>(crate::engine::methods::UndoParams { seq })
        .await;
    match result {
        Ok(mut entry) => {
            entry.undo.clear();
            if as_json {
                print_json(&entry)?;
            } else {
                emit(&format!(
                    "undid #{} {}: {}\n",
                    entry.seq, entry.fix_id, entry.description
                ))?;
            }
            Ok(exit::OK)
        }
        Err(error) => {
            if as_json {
                print_json(&json!({ "ok": false, "error": error }))?;
            }
            eprintln!("openclaw-rs: {}", error.message);
            Ok(exit::FAILED)
        }
    }
}

pub mod agent;
pub mod generate;
pub mod memory;
pub mod sandbox;
pub mod voice;
