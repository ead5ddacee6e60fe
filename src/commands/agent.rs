//! `openclaw-rs chat`, `providers ...` and `sessions ...`: the agent methods as commands,
//! human text or `--json` (the same shapes `--batch` returns).

use std::fmt::Write as _;
use std::io::Read as _;

use color_eyre::eyre::{Result, WrapErr};

use super::memory::report;
use super::{emit, exit, print_json};
use crate::cli::{ChatArgs, ProvidersAction, SessionsAction};
use crate::engine::chat::{
    ChatSend, ModelsList, ProbeResult, ProvidersList, ProvidersListResult, ProvidersProbe,
    ProvidersReorder, ProvidersReset, SessionsCreate, SessionsDelete, SessionsExport,
    SessionsHistory, SessionsList,
};
use crate::engine::{Engine, EngineEvent, ErrorCode};
use crate::orchestrator::SelfHealing;
use crate::orchestrator::runtime::SendParams;
use crate::orchestrator::sessions::{Line, now_ms};
use crate::providers::Role;

pub async fn chat(engine: &Engine, args: ChatArgs) -> Result<i32> {
    let handle = engine.handle();
    let message = if args.message == "-" {
        let mut buf = String::new();
        std::io::stdin()
            .read_to_string(&mut buf)
            .wrap_err("reading the message from stdin")?;
        buf
    } else {
        args.message
    };
    let params = SendParams {
        session: args.session,
        message,
        provider: args.provider,
        model: args.model,
        require_model: args.require_model,
    };
    // Human mode prints the reply as it streams; a restart (failed attempt) says so.
    let mut printer = StreamPrinter::default();
    let result = if args.json {
        handle.request::<ChatSend>(params).await
    } else {
        // Subscribed before the request is sent, so no event of the turn is missed.
        let mut events = handle.subscribe();
        let request = handle.request::<ChatSend>(params);
        tokio::pin!(request);
        let mut open = true;
        let result = loop {
            tokio::select! {
                biased;
                event = events.recv(), if open => match event {
                    Ok(event) => printer.event(event),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => printer.lagged(),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => open = false,
                },
                result = &mut request => break result,
            }
        };
        // The engine publishes a turn's events before it answers, so whatever is left of
        // them is queued now: drain it instead of waiting an arbitrary time.
        loop {
            match events.try_recv() {
                Ok(event) => printer.event(event),
                Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => printer.lagged(),
                Err(_) => break,
            }
        }
        result
    };
    match result {
        Ok(r) if args.json => {
            print_json(&r)?;
            Ok(exit::OK)
        }
        Ok(r) => {
            printer.finish(&r.reply)?;
            emit("\n")?;
            for t in &r.tool_calls {
                eprintln!(
                    "[tool {} {}{}]",
                    t.name,
                    if t.ok { "ok" } else { "failed" },
                    t.repaired
                        .as_deref()
                        .map(|n| format!(", repaired: {n}"))
                        .unwrap_or_default()
                );
            }
            for c in &r.citations {
                eprintln!("[{}] {}:{}-{}", c.index, c.source, c.line_start, c.line_end);
            }
            let badge = r
                .runtime
                .self_healing
                .badge()
                .map(|b| format!(" · {b}"))
                .unwrap_or_default();
            eprintln!(
                "[{} · {} · {} in / {} out tokens · {} ms{badge} · session {}]",
                r.provider,
                r.model,
                r.usage.input_tokens,
                r.usage.output_tokens,
                r.latency_ms,
                r.session
            );
            Ok(exit::OK)
        }
        Err(error) => {
            if args.json {
                print_json(&serde_json::json!({ "ok": false, "error": error }))?;
            } else if let Some(t) = crate::engine::chat::failed_turn_telemetry(&error)
                .and_then(|v| serde_json::from_value::<SelfHealing>(v).ok())
            {
                eprint!("{}", attempts_text(&t));
            }
            eprintln!("openclaw-rs: {}", error.message);
            Ok(if error.code == ErrorCode::InvalidRequest {
                exit::USAGE
            } else {
                exit::FAILED
            })
        }
    }
}

/// Prints a streamed reply in human mode and, once the turn has answered, completes it from
/// the stored reply, so the terminal never shows less than what was saved: events can be
/// dropped when the printer falls behind a fast stream (the engine's channel is bounded).
#[derive(Default)]
struct StreamPrinter {
    /// Text printed since the current attempt or tool round began.
    printed: String,
    /// Deltas were missed: print no more of them (there would be a hole) until the end.
    behind: bool,
}

impl StreamPrinter {
    fn event(&mut self, event: EngineEvent) {
        match event {
            EngineEvent::StreamDelta { text, .. } if !self.behind => {
                let _ = emit(&text);
                self.printed.push_str(&text);
            }
            EngineEvent::StreamRestart { provider, .. } => {
                if !self.printed.is_empty() {
                    let _ = emit("\n");
                    eprintln!("[the reply broke off; starting over on {provider}]");
                }
                self.restart();
            }
            // The text before a tool call is not the reply; the next round's text is.
            EngineEvent::TurnToolCall { status, .. } if status == "running" => {
                if !self.printed.is_empty() {
                    let _ = emit("\n");
                }
                self.restart();
            }
            _ => {}
        }
    }

    fn restart(&mut self) {
        self.printed.clear();
        self.behind = false;
    }

    fn lagged(&mut self) {
        self.behind = true;
    }

    /// Prints what the stream did not: the rest of the reply, or all of it when the printed
    /// text is not its beginning (a missed restart, or the SafetyLayer redacted the reply).
    fn finish(&self, reply: &str) -> Result<()> {
        match reply.strip_prefix(self.printed.as_str()) {
            Some(rest) => emit(rest),
            None => {
                emit("\n")?;
                eprintln!("[the saved reply differs from the streamed text; it follows whole]");
                emit(reply)
            }
        }
    }
}

fn attempts_text(t: &SelfHealing) -> String {
    let mut out = String::new();
    for (i, a) in t.attempts.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {}. {} {} {}{} ({} ms)",
            i + 1,
            a.provider,
            a.model,
            a.status,
            a.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default(),
            a.latency_ms
        );
    }
    out
}

pub fn providers_text(r: &ProvidersListResult) -> String {
    let mut out = format!(
        "{:<3} {:<12} {:<10} {:<24} {:<18} {:>7} {:>7} {:>6}\n",
        "#", "provider", "kind", "model", "state", "p50", "p95", "errors"
    );
    let now = now_ms();
    for p in &r.providers {
        let ms = |v: Option<u64>| v.map_or_else(|| "—".to_string(), |v| format!("{v}ms"));
        let state = match p.cooldown_until_ms {
            Some(until) => format!("cooldown {}s", until.saturating_sub(now).div_ceil(1000)),
            None => p.state.clone(),
        };
        let _ = writeln!(
            out,
            "{:<3} {:<12} {:<10} {:<24} {:<18} {:>7} {:>7} {:>5.0}%",
            p.position,
            p.id,
            p.kind,
            crate::tui::widgets::truncate_right(&p.model, 24),
            state,
            ms(p.latency_p50_ms),
            ms(p.latency_p95_ms),
            p.error_rate * 100.0
        );
        if let Some(reason) = &p.reason {
            let _ = writeln!(out, "      {reason}");
        }
        if let Some(local) = &p.local {
            let _ = writeln!(out, "      {}", local.summary());
        }
    }
    if r.offline_only {
        out.push_str(
            "\nOnly the offline provider can answer (no model): add a provider to config.toml \
             or start Ollama.\n",
        );
    }
    out
}

fn reorder_text(r: &crate::engine::chat::ReorderResult) -> String {
    let mut out = providers_text(&r.list);
    match (&r.note, &r.saved_to) {
        (Some(note), _) => {
            let _ = writeln!(out, "\n{note}");
        }
        (None, Some(file)) => {
            let _ = writeln!(out, "\nsaved to {file}");
        }
        (None, None) => {}
    }
    out
}

fn probe_text(r: &ProbeResult) -> String {
    let mut out = String::new();
    for p in &r.probes {
        let _ = match &p.error {
            None => writeln!(out, "{:<12} ok in {} ms", p.id, p.latency_ms),
            Some(e) => writeln!(
                out,
                "{:<12} failed ({}): {e}",
                p.id,
                p.class.as_deref().unwrap_or("error")
            ),
        };
    }
    out
}

pub async fn providers(engine: &Engine, action: ProvidersAction) -> Result<i32> {
    let h = engine.handle();
    match action {
        ProvidersAction::List { json } => report(
            h.request::<ProvidersList>(Default::default()).await,
            json,
            providers_text,
        ),
        ProvidersAction::Probe { id, json } => {
            let result = h
                .request::<ProvidersProbe>(crate::engine::chat::ProviderIdParams { id })
                .await;
            let failed = result
                .as_ref()
                .is_ok_and(|r| r.probes.iter().any(|p| !p.ok));
            let code = report(result, json, probe_text)?;
            Ok(if code == exit::OK && failed {
                exit::FAILED
            } else {
                code
            })
        }
        ProvidersAction::Reset { id, json } => report(
            h.request::<ProvidersReset>(crate::engine::chat::ProviderIdParams { id })
                .await,
            json,
            |r| format!("reset: {}\n", r.reset.join(", ")),
        ),
        ProvidersAction::Reorder { ids, json } => {
            let result = h
                .request::<ProvidersReorder>(crate::engine::chat::ReorderParams {
                    order: ids,
                    persist: true,
                })
                .await;
            // This process ends now: an order that was not saved did not happen.
            let unsaved = result.as_ref().is_ok_and(|r| r.saved_to.is_none());
            let code = report(result, json, reorder_text)?;
            Ok(if code == exit::OK && unsaved {
                exit::FAILED
            } else {
                code
            })
        }
        ProvidersAction::Models { id, json } => report(
            h.request::<ModelsList>(crate::engine::chat::ModelsParams {
                provider: id,
                discover: true,
            })
            .await,
            json,
            |r| {
                let mut out = String::new();
                for p in &r.providers {
                    let _ = writeln!(out, "{}:", p.provider);
                    for m in &p.models {
                        let _ = writeln!(out, "  {m}");
                    }
                    if let Some(e) = &p.error {
                        let _ = writeln!(out, "  ({e})");
                    }
                }
                out
            },
        ),
    }
}

pub async fn sessions(engine: &Engine, action: SessionsAction) -> Result<i32> {
    let h = engine.handle();
    match action {
        SessionsAction::List { json } => report(
            h.request::<SessionsList>(Default::default()).await,
            json,
            |r| {
                if r.sessions.is_empty() {
                    return "no sessions yet: `openclaw-rs chat \"hello\"` starts one\n".into();
                }
                let mut out = String::new();
                for s in &r.sessions {
                    let _ = writeln!(out, "{:<20} {:>4} msgs  {}", s.id, s.messages, s.title);
                }
                out
            },
        ),
        SessionsAction::Create { id, title, json } => report(
            h.request::<SessionsCreate>(crate::engine::chat::CreateParams { id, title })
                .await,
            json,
            |s| format!("created session {}\n", s.id),
        ),
        SessionsAction::History { id, json } => report(
            h.request::<SessionsHistory>(crate::engine::chat::SessionParams { id })
                .await,
            json,
            |r| {
                let mut out = format!("{} — {}\n", r.session.id, r.session.title);
                for line in &r.lines {
                    match line {
                        Line::Message { message, .. } => {
                            let who = match message.role {
                                Role::User => "you",
                                Role::Assistant => "assistant",
                                Role::Tool => "tool",
                                Role::System => "system",
                            };
                            if !message.content.is_empty() {
                                let _ = writeln!(out, "\n{who}: {}", message.content);
                            }
                            for c in &message.tool_calls {
                                let _ = writeln!(out, "\n{who} calls {} {}", c.name, c.arguments);
                            }
                        }
                        Line::Turn { record, .. } => {
                            if let Some(t) = record
                                .get("selfHealing")
                                .cloned()
                                .and_then(|v| serde_json::from_value::<SelfHealing>(v).ok())
                                .and_then(|t| t.badge())
                            {
                                let _ = writeln!(out, "  [{t}]");
                            }
                        }
                        _ => {}
                    }
                }
                out
            },
        ),
        SessionsAction::Delete { id, json } => report(
            h.request::<SessionsDelete>(crate::engine::chat::SessionParams { id })
                .await,
            json,
            |r| format!("deleted session {}\n", r.deleted),
        ),
        SessionsAction::Export { id, output, mode } => {
            let params = crate::engine::chat::ExportParams {
                id,
                path: output.map(|p| p.display().to_string()),
                mode,
            };
            report(
                h.request::<SessionsExport>(params).await,
                false,
                |r| match (&r.path, &r.jsonl) {
                    (Some(path), _) => {
                        eprintln!("wrote {} line(s) to {path}", r.lines);
                        String::new()
                    }
                    (None, Some(jsonl)) => jsonl.clone(),
                    (None, None) => String::new(),
                },
            )
        }
    }
}
