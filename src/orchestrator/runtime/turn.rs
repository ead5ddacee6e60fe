//! The turn loop: recall, the model call with self-heal, tool calls, and how a turn ends.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::time::Instant;

// A part of `runtime`, split off for length: it works on the same private state.
use super::{
    Citation, Running, Runtime, SendParams, SendResult, compact, emit_change, error_kind, lock,
    provider_kind,
};
use crate::config::{ProviderKind, TelemetryLevel};
use crate::memory::types::SearchParams;
use crate::orchestrator::guard::StreamGuard;
use crate::orchestrator::heal::{Cancel, ChainEntry, HealError, Healer, Progress, millis};
use crate::orchestrator::host::{AgentError, AgentErrorKind, TurnEvent, TurnHost};
use crate::orchestrator::sessions::{Line, now_ms};
use crate::orchestrator::telemetry::{Runtime as RuntimeTelemetry, SelfHealing, TurnRecord};
use crate::orchestrator::tools::{self, ToolOutcome};
use crate::providers::{ChatMessage, ChatRequest, FailureClass, FinishReason, Role, Usage};
use crate::sandbox::safety::{Direction, SafetyLayer};
use crate::secrets::redact::{redact, redact_json, redact_json_text};

impl Runtime {
    async fn recall(&self, host: &dyn TurnHost, query: &str, hits: u32) -> Vec<Citation> {
        if hits == 0 || query.trim().is_empty() || query.trim_start().starts_with("/tool") {
            return Vec::new();
        }
        if host.memory_size().await == 0 {
            return Vec::new();
        }
        let search = SearchParams {
            query: query.to_string(),
            limit: Some(hits as usize),
            ..SearchParams::default()
        };
        let Ok(found) = host.search_memory(search).await else {
            return Vec::new();
        };
        found
            .hits
            .into_iter()
            .enumerate()
            .map(|(i, hit)| Citation {
                index: i + 1,
                source: hit.source,
                line_start: u64::from(hit.line_start),
                line_end: u64::from(hit.line_end),
                chunk_id: Value::from(hit.chunk_id),
                snippet: hit.snippet.replace(['«', '»'], ""),
            })
            .collect()
    }

    /// One agent turn. Deltas, attempts and health changes go out as the host's events.
    pub async fn send(
        &self,
        host: &dyn TurnHost,
        params: SendParams,
    ) -> Result<SendResult, AgentError> {
        let message = params.message.trim().to_string();
        if message.is_empty() {
            return Err(AgentError::new(
                AgentErrorKind::InvalidRequest,
                "chat.send needs a non-empty message",
            ));
        }
        let started = Instant::now();
        let snapshot = host.snapshot();
        let config = snapshot.config().clone();
        // Checked before anything is written: a typo leaves the session as it was.
        let mut chain = self.chain(host);
        if let Some(first) = &params.provider {
            let Some(pos) = chain.iter().position(|e| &e.id == first) else {
                return Err(AgentError::new(
                    AgentErrorKind::NotFound,
                    format!("no provider '{first}' in the chain; `providers list` shows them"),
                ));
            };
            let entry = chain.remove(pos);
            chain.insert(0, entry);
        }
        if let (Some(model), Some(first)) = (&params.model, chain.first_mut()) {
            first.model = model.clone();
        }
        let offline = |e: &ChainEntry| provider_kind(e, &snapshot) == Some(ProviderKind::Offline);
        let before = chain.len();
        if params.require_model {
            chain.retain(|e| !offline(e));
        }
        // Set when the offline provider would have been asked: a turn no model answers is
        // then UNAVAILABLE (for scripts), not an offline answer.
        let forbid_offline = chain.len() < before;
        let title: String = message.chars().take(48).collect();
        let session = {
            let wanted = params.session.clone();
            self.with_sessions(host, |store| match wanted {
                Some(id) if store.exists(&id) => Ok(id),
                Some(id) => store.create(Some(&id), &title).map(|i| i.id),
                None => store.create(None, &title).map(|i| i.id),
            })
            .await?
        };
        let cancel = Cancel::default();
        {
            let mut running = lock(&self.running);
            if running.contains_key(&session) {
                return Err(AgentError::new(
                    AgentErrorKind::InvalidRequest,
                    format!(
                        "a turn is already running in session {session}; abort it first (chat.abort)"
                    ),
                ));
            }
            running.insert(session.clone(), cancel.clone());
        }
        let _running = Running {
            runtime: self,
            session: session.clone(),
        };

        let citations = self.recall(host, &message, config.chat.recall_hits).await;
        let history = self
            .with_sessions(host, |store| Ok(store.get(&session)?.messages()))
            .await?;
        let mut messages = vec![ChatMessage::new(
            Role::System,
            config.chat.system_prompt.clone(),
        )];
        if !citations.is_empty() {
            let mut context = String::from("Context from memory (cite as [n]):");
            for c in &citations {
                context.push_str(&format!(
                    "\n[{}] {}:{}-{}\n{}",
                    c.index, c.source, c.line_start, c.line_end, c.snippet
                ));
            }
            messages.push(ChatMessage::new(Role::System, context));
        }
        messages.extend(history);
        let user = ChatMessage::new(Role::User, message.clone());
        messages.push(user.clone());
        self.append(host, &session, user).await?;

        let tool_specs = tools::specs(host).await;

        let mut telemetry = SelfHealing::new(
            config.self_heal.enabled,
            &snapshot.loaded.profile.name,
            config.self_heal.max_attempts,
        );
        let deadline = started + Duration::from_millis(config.self_heal.deadline_ms);
        let sink_session = session.clone();
        let layer = SafetyLayer::new(&snapshot.config().safety);
        let guard = StreamGuard::new(&layer, cancel.clone());
        let guard = &guard;
        let sink = move |p: Progress<'_>| match p {
            Progress::Text(t) => {
                let text = guard.pass(t, false);
                if !text.is_empty() {
                    host.emit_turn(TurnEvent::StreamDelta {
                        conversation: sink_session.clone(),
                        text,
                    });
                }
            }
            Progress::Reasoning(t) => {
                let text = guard.pass(t, true);
                if !text.is_empty() {
                    host.emit_turn(TurnEvent::ReasoningDelta {
                        conversation: sink_session.clone(),
                        text,
                    });
                }
            }
            Progress::Restart { provider } => {
                guard.restart();
                host.emit_turn(TurnEvent::StreamRestart {
                    conversation: sink_session.clone(),
                    provider: provider.to_string(),
                })
            }
            Progress::Attempt(a) => host.emit_turn(TurnEvent::Attempt {
                provider: a.provider.clone(),
                model: a.model.clone(),
                status: a.status.clone(),
                reason: a.reason.clone(),
                latency_ms: a.latency_ms,
            }),
            Progress::Health(change) => emit_change(host, change),
        };
        let healer = Healer {
            policy: &config.self_heal,
            health: &self.health,
            cancel: &cancel,
            deadline,
            rng: &self.rng,
            sink: &sink,
        };

        let mut request = ChatRequest {
            model: String::new(),
            messages,
            tools: tool_specs.clone(),
            max_tokens: None,
        };
        let mut usage = Usage::default();
        let mut outcomes: Vec<ToolOutcome> = Vec::new();
        let mut compacted = false;
        let mut rounds = 0u32;
        let mut exhausted = false;
        let (reply, reasoning, provider, model, safety) = loop {
            let result = healer.complete(&chain, &request, &mut telemetry).await;
            // What the redactors held is decided now: passed on after a reply, void after
            // a failure (its streamed text is void too).
            let tails = guard.close();
            if let Some(rule) = guard.blocked() {
                return Err(self.blocked(host, &session, rule, telemetry, started).await);
            }
            if result.is_ok() {
                for (text, reasoning) in [(tails.reasoning, true), (tails.text, false)] {
                    if text.is_empty() {
                        continue;
                    }
                    let conversation = session.clone();
                    host.emit_turn(if reasoning {
                        TurnEvent::ReasoningDelta { conversation, text }
                    } else {
                        TurnEvent::StreamDelta { conversation, text }
                    });
                }
            }
            let reply = match result {
                Ok(reply) => reply,
                Err(e) if e.class == Some(FailureClass::ContextOverflow) && !compacted => {
                    // Not a blind retry: the request is shorter the second time.
                    compacted = compact(&mut request.messages);
                    if compacted {
                        continue;
                    }
                    return Err(self
                        .fail(host, &session, e, telemetry, started, forbid_offline)
                        .await);
                }
                Err(e) => {
                    return Err(self
                        .fail(host, &session, e, telemetry, started, forbid_offline)
                        .await);
                }
            };
            usage.add(reply.usage);
            // Tool-round text was streamed redacted; the history and the session keep it so.
            let mut assistant = ChatMessage::new(Role::Assistant, layer.redact_text(&reply.text));
            assistant.tool_calls = reply.tool_calls.clone();
            if reply.tool_calls.is_empty() || exhausted {
                assistant.tool_calls.clear();
                // The SafetyLayer sees the final reply before it is stored or returned:
                // a secret a model echoes back is redacted (or the reply blocked), as the
                // stream was.
                let checked = layer.check_text(&reply.text, Direction::ModelReply);
                host.report_safety(Direction::ModelReply, &reply.provider, &checked.report);
                assistant.content = checked.text.clone();
                self.append(host, &session, assistant).await?;
                break (
                    checked.text,
                    layer.redact_text(&reply.reasoning),
                    reply.provider,
                    reply.model,
                    checked.report,
                );
            }
            rounds += 1;
            // Repair what can be repaired before the calls go into the history; calls from a
            // reply cut at the token limit are not repaired but answered as not run.
            let cut = reply.finish == FinishReason::Length;
            let repaired: Vec<_> = reply
                .tool_calls
                .iter()
                .map(|c| {
                    if cut {
                        tools::cut_off(c)
                    } else {
                        tools::repair(c, &tool_specs)
                    }
                })
                .collect();
            // The calls run with their arguments as the model sent them (the sandbox checks
            // them); the history and the session keep them redacted like the text.
            assistant.tool_calls = repaired
                .iter()
                .map(|r| {
                    let mut call = r.call.clone();
                    if layer.scans_secrets() {
                        call.arguments = redact_json_text(&call.arguments);
                    }
                    call
                })
                .collect();
            request.messages.push(assistant.clone());
            self.append(host, &session, assistant).await?;
            for fixed in repaired {
                if cancel.is_cancelled() {
                    let e = HealError {
                        class: Some(FailureClass::Cancelled),
                        message: "the turn was aborted".into(),
                        ..HealError::default()
                    };
                    return Err(self
                        .fail(host, &session, e, telemetry, started, forbid_offline)
                        .await);
                }
                let outcome = tools::run(host, &session, fixed, &cancel).await;
                let result = ChatMessage::tool_result(&outcome.call(), outcome.content());
                request.messages.push(result.clone());
                self.append(host, &session, result).await?;
                outcomes.push(outcome);
            }
            if rounds >= config.chat.max_tool_rounds {
                // Last round: no tools offered, so the model answers in words.
                request.tools.clear();
                exhausted = true;
            }
        };

        // The offline provider is no model: its answer is marked, never a silent success.
        if let Some(entry) = chain.iter().find(|e| e.id == provider && offline(e)) {
            telemetry.degraded = true;
            telemetry.degraded_reason = Some(offline_reason(&telemetry, &entry.id));
        }
        let latency_ms = millis(started.elapsed());
        let result = SendResult {
            session: session.clone(),
            reply,
            reasoning,
            provider: provider.clone(),
            model: model.clone(),
            usage,
            citations,
            tool_calls: outcomes,
            tool_rounds_exhausted: exhausted,
            latency_ms,
            runtime: RuntimeTelemetry {
                self_healing: telemetry.clone(),
            },
            safety,
        };
        let record = TurnRecord {
            at: now_ms(),
            session: session.clone(),
            ok: true,
            error: None,
            provider,
            model,
            latency_ms,
            self_healing: telemetry,
        };
        self.finish(host, &session, record, &result).await;
        Ok(result)
    }

    async fn append(
        &self,
        host: &dyn TurnHost,
        session: &str,
        message: ChatMessage,
    ) -> Result<(), AgentError> {
        let line = Line::Message {
            at: now_ms(),
            message,
        };
        self.with_sessions(host, |store| store.append(session, line))
            .await
    }

    async fn finish(
        &self,
        host: &dyn TurnHost,
        session: &str,
        record: TurnRecord,
        result: &impl Serialize,
    ) {
        let config = host.snapshot();
        let telemetry = &config.config().telemetry;
        let cap = match telemetry.level {
            TelemetryLevel::Off => 0,
            _ => telemetry.history as usize,
        };
        let mut saved = serde_json::to_value(&record).unwrap_or(Value::Null);
        if let (Some(obj), Ok(Value::Object(extra))) =
            (saved.as_object_mut(), serde_json::to_value(result))
        {
            for key in ["usage", "citations", "reasoning"] {
                if let Some(v) = extra.get(key) {
                    obj.insert(key.to_string(), v.clone());
                }
            }
        }
        // Reasoning and errors were redacted where they were made; citations quote memory.
        if config.config().safety.secret_scanning {
            redact_json(&mut saved);
        }
        self.history.push(record, cap);
        let _ = self
            .with_sessions(host, |store| {
                let r = store.append(
                    session,
                    Line::Turn {
                        at: now_ms(),
                        record: saved,
                    },
                );
                store.sync(session);
                r
            })
            .await;
    }

    async fn fail(
        &self,
        host: &dyn TurnHost,
        session: &str,
        error: HealError,
        telemetry: SelfHealing,
        started: Instant,
        forbid_offline: bool,
    ) -> AgentError {
        let class = error.class;
        let mut advice = advice(&error, &telemetry);
        let mut kind = error_kind(class);
        if forbid_offline && error.exhausted && class != Some(FailureClass::Cancelled) {
            kind = AgentErrorKind::Unavailable;
            advice.push_str(" (requireModel: the offline provider was not asked)");
        }
        // Provider messages can echo a request or a response body; the healer redacted
        // them, and the whole line is redacted again for what the turn adds.
        let message = redact(&format!("{}; {advice}", error.message));
        let record = failed_turn_record(session, &message, &telemetry, started);
        let details = json!({
            "session": session,
            "class": class.map(|c| c.as_str()),
            "runtime": { "selfHealing": telemetry },
        });
        self.finish(host, session, record, &json!({})).await;
        AgentError::new(kind, message).with_details(details)
    }
}

/// What to do about a failed turn, for its situation: the deadline cut the chain short,
/// every provider failed, the others were passed over, or one provider failed.
fn advice(error: &HealError, telemetry: &SelfHealing) -> String {
    let Some(class) = error.class else {
        return "configure a provider, or wait for a cooldown to end (`providers reset` ends \
                it now)"
            .into();
    };
    if class == FailureClass::Cancelled || !error.exhausted {
        return class.advice().into();
    }
    if !error.untried.is_empty() {
        return format!(
            "the turn's deadline passed before {} could be tried; raise self_heal.deadline_ms \
             or lower the providers' timeouts",
            error.untried.join(", ")
        );
    }
    let mut tried: Vec<&str> = Vec::new();
    let mut passed: Vec<&str> = Vec::new();
    for a in &telemetry.attempts {
        let list = if a.status == "skipped" {
            &mut passed
        } else {
            &mut tried
        };
        if !list.contains(&a.provider.as_str()) {
            list.push(&a.provider);
        }
    }
    passed.retain(|p| !tried.contains(p));
    if tried.len() > 1 {
        "every provider tried failed (each one's error is above); try again later: `providers \
         probe` checks them and `providers reset` ends their cooldowns"
            .into()
    } else if !passed.is_empty() {
        format!(
            "{}; {} passed over (cooling down, parked, circuit open or unconfigured: `providers \
             list` says which; `providers reset` ends cooldowns and parking now)",
            class.advice(),
            passed.join(", ")
        )
    } else {
        class.advice().into()
    }
}

/// Why the offline provider answered: the model providers' failures and skips this turn.
fn offline_reason(telemetry: &SelfHealing, offline_id: &str) -> String {
    let mut seen: Vec<String> = Vec::new();
    for a in telemetry
        .attempts
        .iter()
        .filter(|a| a.provider != offline_id)
    {
        let why = format!(
            "{} {}",
            a.provider,
            a.reason.as_deref().unwrap_or(&a.status)
        );
        if !seen.contains(&why) {
            seen.push(why);
        }
    }
    if seen.is_empty() {
        "no model provider in the chain answered before it".into()
    } else {
        format!("no model answered ({})", seen.join(", "))
    }
}

impl Runtime {
    /// The turn stopped on a secret (`on_secret = "block"`): recorded like a failure, and
    /// reported as refused by the safety layer.
    async fn blocked(
        &self,
        host: &dyn TurnHost,
        session: &str,
        rule: &str,
        telemetry: SelfHealing,
        started: Instant,
    ) -> AgentError {
        let message = format!(
            "the reply was stopped: it held a secret (secret.{rule}) and safety.on_secret = \"block\"; \
             nothing from the secret on was shown or stored"
        );
        host.emit_turn(TurnEvent::SafetyDecision {
            direction: Direction::ModelReply.as_str().to_string(),
            subject: telemetry
                .attempts
                .last()
                .map(|a| a.provider.clone())
                .unwrap_or_default(),
            decision: "block".into(),
            rules: vec![format!("secret.{rule}")],
            reasons: vec![message.clone()],
        });
        let record = failed_turn_record(session, &message, &telemetry, started);
        let details = json!({
            "session": session,
            "rule": format!("secret.{rule}"),
            "runtime": { "selfHealing": telemetry },
        });
        self.finish(host, session, record, &json!({})).await;
        AgentError::new(AgentErrorKind::Denied, message).with_details(details)
    }
}

/// The record of a turn that ended in an error, named after the last provider tried.
fn failed_turn_record(
    session: &str,
    message: &str,
    telemetry: &SelfHealing,
    started: Instant,
) -> TurnRecord {
    let last = telemetry.attempts.last();
    TurnRecord {
        at: now_ms(),
        session: session.to_string(),
        ok: false,
        error: Some(message.to_string()),
        provider: last.map(|a| a.provider.clone()).unwrap_or_default(),
        model: last.map(|a| a.model.clone()).unwrap_or_default(),
        latency_ms: millis(started.elapsed()),
        self_healing: telemetry.clone(),
    }
}
