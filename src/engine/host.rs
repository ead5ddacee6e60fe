//! The engine as host of the layers below it. Providers and the turn loop may not name the
//! engine (tests/house_rules.rs), so each defines what it needs as a trait of its own layer
//! ([`ProviderHost`], [`TurnHost`]) with its own event and error types; here the engine
//! implements them with its typed methods and maps those types to its events and wire
//! codes.

use std::sync::Arc;

use serde_json::Value;

use super::memory::{MemorySearch, MemoryStatus};
use super::methods::NoParams;
use super::sandbox::{ToolsInvoke, ToolsInvokeParams, ToolsList};
use super::{EngineError, EngineEvent, EngineHandle, ErrorCode};
use crate::config::Snapshot;
use crate::memory::types::{SearchParams, SearchResult};
use crate::orchestrator::{AgentError, AgentErrorKind, HostTool, TurnEvent, TurnHost};
use crate::providers::{BoxFuture, FailureClass, LoadProgress, ProviderHost};
use crate::sandbox::safety::{Direction, SafetyReport};

impl ProviderHost for EngineHandle {
    fn search_memory(&self, params: SearchParams) -> BoxFuture<'_, Result<SearchResult, String>> {
        Box::pin(async move {
            self.request::<MemorySearch>(params)
                .await
                .map_err(|e| e.message)
        })
    }

    fn progress(&self, progress: LoadProgress) {
        let LoadProgress {
            task,
            done,
            total,
            message,
        } = progress;
        self.emit(EngineEvent::Progress {
            task,
            done,
            total,
            message,
        });
    }
}

impl TurnHost for EngineHandle {
    fn snapshot(&self) -> Arc<Snapshot> {
        EngineHandle::snapshot(self)
    }

    fn provider_host(&self) -> Arc<dyn ProviderHost> {
        Arc::new(self.clone())
    }

    fn emit_turn(&self, event: TurnEvent) {
        self.emit(turn_event(event));
    }

    fn memory_size(&self) -> BoxFuture<'_, u64> {
        Box::pin(async move {
            match self.request::<MemoryStatus>(NoParams::default()).await {
                Ok(status) => status.documents + status.chunks,
                Err(_) => 0,
            }
        })
    }

    fn list_tools(&self) -> BoxFuture<'_, Result<Vec<HostTool>, String>> {
        Box::pin(async move {
            let listed = self
                .request::<ToolsList>(NoParams::default())
                .await
                .map_err(|e| e.message)?;
            Ok(listed
                .tools
                .into_iter()
                .map(|tool| HostTool {
                    name: tool.name,
                    description: tool.description,
                })
                .collect())
        })
    }

    fn invoke_tool(&self, name: String, input: Value) -> BoxFuture<'_, Result<Value, String>> {
        Box::pin(async move {
            let invoke = ToolsInvokeParams {
                name,
                input,
                backend: None,
            };
            match self.request::<ToolsInvoke>(invoke).await {
                Ok(result) => Ok(result.output),
                // The model is told the wire code too, as a script would see it.
                Err(e) => Err(format!("{}: {}", e.code.as_str(), e.message)),
            }
        })
    }

    fn report_safety(&self, direction: Direction, subject: &str, report: &SafetyReport) {
        EngineHandle::report_safety(self, direction, subject, report);
    }
}

/// A turn's event as the engine's event of the same meaning.
fn turn_event(event: TurnEvent) -> EngineEvent {
    match event {
        TurnEvent::StreamDelta { conversation, text } => {
            EngineEvent::StreamDelta { conversation, text }
        }
        TurnEvent::ReasoningDelta { conversation, text } => {
            EngineEvent::ReasoningDelta { conversation, text }
        }
        TurnEvent::StreamRestart {
            conversation,
            provider,
        } => EngineEvent::StreamRestart {
            conversation,
            provider,
        },
        TurnEvent::Attempt {
            provider,
            model,
            status,
            reason,
            latency_ms,
        } => EngineEvent::Telemetry {
            provider,
            model,
            status,
            reason,
            latency_ms,
        },
        TurnEvent::ProviderState {
            provider,
            state,
            until_ms,
            reason,
        } => EngineEvent::ProviderState {
            provider,
            state,
            until_ms,
            reason,
        },
        TurnEvent::SafetyDecision {
            direction,
            subject,
            decision,
            rules,
            reasons,
        } => EngineEvent::SafetyDecision {
            direction,
            subject,
            decision,
            rules,
            reasons,
        },
        TurnEvent::ToolCall {
            conversation,
            id,
            name,
            arguments,
            status,
            output,
        } => EngineEvent::TurnToolCall {
            conversation,
            id,
            name,
            arguments,
            status,
            output,
        },
    }
}

/// The wire code of an agent error kind.
pub fn agent_code(kind: AgentErrorKind) -> ErrorCode {
    match kind {
        AgentErrorKind::InvalidRequest => ErrorCode::InvalidRequest,
        AgentErrorKind::NotFound => ErrorCode::NotFound,
        AgentErrorKind::Unavailable => ErrorCode::Unavailable,
        AgentErrorKind::Timeout => ErrorCode::Timeout,
        AgentErrorKind::Denied => ErrorCode::Denied,
        AgentErrorKind::Cancelled => ErrorCode::Cancelled,
        AgentErrorKind::Internal => ErrorCode::Internal,
    }
}

/// The wire code a turn that failed with this class ends in.
pub fn error_code(class: Option<FailureClass>) -> ErrorCode {
    agent_code(crate::orchestrator::runtime::error_kind(class))
}

impl From<AgentError> for EngineError {
    fn from(e: AgentError) -> Self {
        let error = EngineError::new(agent_code(e.kind), e.message);
        match e.details {
            Some(details) => error.with_details(details),
            None => error,
        }
    }
}
