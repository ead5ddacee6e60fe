//! `sandbox run|status` and `tools list|describe|invoke`: thin faces over the `sandbox.*`
//! and `tools.*` methods. Results go to stdout (JSON with `--json`); notes go to stderr.

use std::fmt::Write as _;

use color_eyre::eyre::Result;
use serde_json::{Value, json};

use super::{emit, exit, print_json};
use crate::cli::{SandboxAction, ToolsAction};
use crate::config::SandboxBackendPref;
use crate::engine::sandbox::{
    SandboxRun, SandboxRunParams, SandboxStatus, ToolCallResult, ToolNameParams, ToolsDescribe,
    ToolsInvoke, ToolsInvokeParams, ToolsList,
};
use crate::engine::{Engine, EngineError, methods::NoParams};

fn parse_input(text: Option<&str>) -> Result<Value, i32> {
    match text {
        None => Ok(json!({})),
        Some(text) => serde_json::from_str(text).map_err(|e| {
            eprintln!("openclaw-rs: --input is not valid JSON: {e}");
            exit::USAGE
        }),
    }
}

fn parse_backend(name: Option<&str>) -> Result<Option<SandboxBackendPref>, i32> {
    match name {
        None => Ok(None),
        Some(name) => serde_json::from_value(json!(name)).map(Some).map_err(|_| {
            eprintln!("openclaw-rs: --backend {name}: use auto, wasmi or wasmtime");
            exit::USAGE
        }),
    }
}

/// A failed call: the error frame as JSON on stdout when asked, the message on stderr.
fn failed(error: &EngineError, as_json: bool) -> Result<i32> {
    if as_json {
        print_json(&json!({ "ok": false, "error": error }))?;
    }
    eprintln!("openclaw-rs: {}", error.message);
    Ok(exit::FAILED)
}

fn report_call(result: &ToolCallResult, as_json: bool) -> Result<i32> {
    if as_json {
        print_json(result)?;
        return Ok(exit::OK);
    }
    let mut text = serde_json::to_string_pretty(&result.output)?;
    text.push('\n');
    emit(&text)?;
    for log in &result.logs {
        eprintln!("[{}] {}", log.level, log.message);
    }
    let fallback = result
        .fallback_reason
        .as_deref()
        .map_or(String::new(), |r| format!(" ({r})"));
    eprintln!(
        "{} on {}{fallback}: {:.2} ms, {} fuel, cache {}; safety {}{}",
        result.tool,
        result.backend.as_str(),
        result.duration_us as f64 / 1000.0,
        result.fuel_used,
        if result.cache_hit { "hit" } else { "miss" },
        result.safety.decision.as_str(),
        if result.safety.rules.is_empty() {
            String::new()
        } else {
            format!(" ({})", result.safety.rules.join(", "))
        },
    );
    Ok(exit::OK)
}

pub async fn sandbox(engine: &Engine, action: SandboxAction) -> Result<i32> {
    let handle = engine.handle();
    match action {
        SandboxAction::Run {
            file,
            input,
            backend,
            fuel,
            memory_mb,
            timeout_ms,
            max_output_kb,
            allow,
            sha256,
            json,
        } => {
            let input = match parse_input(input.as_deref()) {
                Ok(v) => v,
                Err(code) => return Ok(code),
            };
            let backend = match parse_backend(backend.as_deref()) {
                Ok(b) => b,
                Err(code) => return Ok(code),
            };
            let params = SandboxRunParams {
                path: file,
                input,
                backend,
                fuel,
                memory_mb,
                timeout_ms,
                max_output_kb,
                allow,
                sha256,
            };
            match handle.request::<SandboxRun>(params).await {
                Ok(result) => report_call(&result, json),
                Err(error) => failed(&error, json),
            }
        }
        SandboxAction::Status { json } => {
            let status = match handle.request::<SandboxStatus>(NoParams {}).await {
                Ok(s) => s,
                Err(error) => return failed(&error, json),
            };
            if json {
                print_json(&status)?;
                return Ok(exit::OK);
            }
            let mut out = String::new();
            let backends: Vec<&str> = status.backends.iter().map(|b| b.as_str()).collect();
            writeln!(out, "backends    {}", backends.join(", "))?;
            let fallback = status
                .backend
                .fallback_reason
                .as_deref()
                .map_or(String::new(), |r| format!(" (fallback: {r})"));
            writeln!(
                out,
                "in use      {}{fallback}",
                status.backend.in_use.as_str()
            )?;
            let l = &status.limits;
            writeln!(
                out,
                "limits      fuel {}, memory {} MiB, timeout {} ms, output {} KiB",
                if l.fuel == 0 {
                    "unlimited".to_string()
                } else {
                    l.fuel.to_string()
                },
                l.memory_bytes / (1024 * 1024),
                l.timeout_ms,
                l.max_output_bytes / 1024
            )?;
            writeln!(
                out,
                "allowed     {}",
                if status.allowed.is_empty() {
                    "nothing beyond log, now_ms, random".to_string()
                } else {
                    status.allowed.join(", ")
                }
            )?;
            let c = &status.cache;
            writeln!(
                out,
                "cache       {} module(s), {} hit(s), {} compile(s); {} run(s), {} failed",
                c.entries, c.hits, c.compiles, c.runs, c.failures
            )?;
            if let Some(d) = &c.disk {
                writeln!(
                    out,
                    "disk cache  {} file(s), {} KiB in {}; {} loaded, {} compiled, {} refused, \
                     {} invalid",
                    d.files,
                    d.bytes / 1024,
                    d.dir,
                    d.hits,
                    d.misses,
                    d.refused,
                    d.invalid
                )?;
            }
            writeln!(out, "tools dir   {}", status.tools_dir)?;
            emit(&out)?;
            Ok(exit::OK)
        }
    }
}

pub async fn tools(engine: &Engine, action: ToolsAction) -> Result<i32> {
    let handle = engine.handle();
    match action {
        ToolsAction::List { json } => {
            let list = match handle.request::<ToolsList>(NoParams {}).await {
                Ok(l) => l,
                Err(error) => return failed(&error, json),
            };
            if json {
                print_json(&list)?;
                return Ok(exit::OK);
            }
            let mut out = String::new();
            for tool in &list.tools {
                let granted = if tool.granted.is_empty() {
                    "-".to_string()
                } else {
                    tool.granted.join(",")
                };
                let source = match tool.source {
                    crate::sandbox::manifest::ToolSource::Builtin => "builtin",
                    crate::sandbox::manifest::ToolSource::Installed if tool.pinned => "installed",
                    crate::sandbox::manifest::ToolSource::Installed => "unpinned",
                };
                writeln!(
                    out,
                    "{:<20} {:<9} {:<16} {}",
                    tool.name, source, granted, tool.description
                )?;
            }
            emit(&out)?;
            for problem in &list.problems {
                eprintln!("openclaw-rs: {}: {}", problem.path, problem.message);
            }
            Ok(exit::OK)
        }
        ToolsAction::Describe { name, json } => {
            let described = match handle
                .request::<ToolsDescribe>(ToolNameParams { name })
                .await
            {
                Ok(d) => d,
                Err(error) => return failed(&error, json),
            };
            if json {
                print_json(&described)?;
                return Ok(exit::OK);
            }
            let mut out = String::new();
            let i = &described.info;
            writeln!(out, "{} — {}", i.name, i.description)?;
            writeln!(out, "requested   {}", i.requested.join(", "))?;
            writeln!(out, "granted     {}", i.granted.join(", "))?;
            writeln!(out, "imports     {}", described.imports.join(", "))?;
            if let Some(pin) = &described.sha256_pin {
                let state = match described.pin_matches {
                    Some(true) => "matches",
                    Some(false) => "DOES NOT MATCH the module",
                    None => "module unreadable",
                };
                writeln!(out, "sha256      {pin} ({state})")?;
            }
            writeln!(
                out,
                "limits      fuel {}, memory {} MiB, timeout {} ms",
                described.limits.fuel,
                described.limits.memory_bytes / (1024 * 1024),
                described.limits.timeout_ms
            )?;
            if let Some(schema) = &described.parameters {
                writeln!(out, "parameters  {}", serde_json::to_string_pretty(schema)?)?;
            }
            emit(&out)?;
            Ok(exit::OK)
        }
        ToolsAction::Invoke {
            name,
            input,
            backend,
            json,
        } => {
            let input = match parse_input(input.as_deref()) {
                Ok(v) => v,
                Err(code) => return Ok(code),
            };
            let backend = match parse_backend(backend.as_deref()) {
                Ok(b) => b,
                Err(code) => return Ok(code),
            };
            let params = ToolsInvokeParams {
                name,
                input,
                backend,
            };
            match handle.request::<ToolsInvoke>(params).await {
                Ok(result) => report_call(&result, json),
                Err(error) => failed(&error, json),
            }
        }
    }
}
