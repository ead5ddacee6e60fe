//! What the turn loop needs from the program that runs it, as types of this layer. The
//! orchestrator sits below the engine and never names it: the engine implements
//! [`TurnHost`] (engine/host.rs), maps [`TurnEvent`]s to its events and [`AgentError`]s to
//! wire codes, so a renamed engine method or event breaks at compile time, in one place.

use std::sync::Arc;

use serde_json::Value;

use crate::config::Snapshot;
use crate::providers::{BoxFuture, ProviderHost};
use crate::sandbox::safety::{Direction, SafetyReport};

/// The turn loop's view of the engine: the configuration in force, where its events go,
/// memory, the tools and the safety reports. Memory search comes with [`ProviderHost`].
pub trait TurnHost: ProviderHost {
    /// The configuration snapshot in force now.
    fn snapshot(&self) -> Arc<Snapshot>;
    /// The same host as the providers built for a turn hold it.
    fn provider_host(&self) -> Arc<dyn ProviderHost>;
    /// Tell every face what the turn is doing.
    fn emit_turn(&self, event: TurnEvent);
    /// Documents and chunks in memory (0 when memory cannot be read): recall skips an
    /// empty store.
    fn memory_size(&self) -> BoxFuture<'_, u64>;
    /// The tools a model may call. `Err`: they cannot be listed.
    fn list_tools(&self) -> BoxFuture<'_, Result<Vec<HostTool>, String>>;
    /// Run a tool on `input` (checked against its schema and by the SafetyLayer). `Ok`: its
    /// output; `Err`: what went wrong, as the model is told it.
    fn invoke_tool(&self, name: String, input: Value) -> BoxFuture<'_, Result<Value, String>>;
    /// A SafetyLayer decision over a model's reply, for every face.
    fn report_safety(&self, direction: Direction, subject: &str, report: &SafetyReport);
}

/// A tool as the turn offers it to a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostTool {
    pub name: String,
    pub description: String,
}

/// What a turn reports while it runs. The engine sends each out as its event of the same
/// name (`Attempt` as `telemetry`, `ToolCall` as `turnToolCall`).
#[derive(Debug, Clone, PartialEq)]
pub enum TurnEvent {
    StreamDelta {
        conversation: String,
        text: String,
    },
    ReasoningDelta {
        conversation: String,
        text: String,
    },
    StreamRestart {
        conversation: String,
        provider: String,
    },
    Attempt {
        provider: String,
        model: String,
        status: String,
        reason: Option<String>,
        latency_ms: u64,
    },
    ProviderState {
        provider: String,
        state: String,
        until_ms: Option<u64>,
        reason: Option<String>,
    },
    SafetyDecision {
        direction: String,
        subject: String,
        decision: String,
        rules: Vec<String>,
        reasons: Vec<String>,
    },
    ToolCall {
        conversation: String,
        id: String,
        name: String,
        arguments: String,
        status: String,
        output: Option<String>,
    },
}

/// Why an agent call failed, in this layer's words; the engine maps each to its wire code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentErrorKind {
    /// The request cannot be carried out as asked (empty message, busy session, bad id).
    InvalidRequest,
    NotFound,
    /// No provider could answer.
    Unavailable,
    Timeout,
    /// Refused: a key or billing, or the safety layer stopped the reply.
    Denied,
    Cancelled,
    Internal,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AgentError {
    pub kind: AgentErrorKind,
    pub message: String,
    /// What a script can act on (the session, the failure class, `runtime.selfHealing`).
    pub details: Option<Value>,
}

impl AgentError {
    pub fn new(kind: AgentErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
}

impl std::fmt::Display for AgentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AgentError {}
