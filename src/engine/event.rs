//! What the engine tells its faces without being asked: the TUI redraws on these, and
//! `--batch` can stream them later. Serialized in the same shape everywhere.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Level;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum EngineEvent {
    /// Long work advancing: ingestion, audits, index rebuilds.
    #[serde(rename_all = "camelCase")]
    Progress {
        task: String,
        done: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
        message: String,
    },
    /// A piece of a streamed reply.
    #[serde(rename_all = "camelCase")]
    StreamDelta { conversation: String, text: String },
    /// A provider attempt finished; the shape of `runtime.selfHealing.attempts[]`.
    #[serde(rename_all = "camelCase")]
    Telemetry {
        provider: String,
        model: String,
        status: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        latency_ms: u64,
    },
    /// The configuration was read again.
    #[serde(rename_all = "camelCase")]
    ConfigReloaded { errors: usize, warnings: usize },
    /// Doctor or audit results changed; panes should re-read them.
    #[serde(rename_all = "camelCase")]
    FindingsChanged { critical: u32, warn: u32, info: u32 },
    /// Something the user should see in the status bar.
    Notice { level: Level, message: String },
    /// A sandboxed tool call finished (`tools.invoke`, `sandbox.run`).
    #[serde(rename_all = "camelCase")]
    ToolCall {
        tool: String,
        backend: String,
        /// `ok`, or the error kind (`outOfFuel`, `capabilityDenied`, ...).
        status: String,
        duration_us: u64,
        fuel_used: u64,
        /// The SafetyLayer's decision over input and output: allow, review or block.
        safety: String,
        /// Safety rule ids that matched; never the matched text.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        safety_rules: Vec<String>,
    },
    /// The SafetyLayer flagged or refused content (a tool's, or a model reply).
    #[serde(rename_all = "camelCase")]
    SafetyDecision {
        /// `toolInput`, `toolOutput` or `modelReply`.
        direction: String,
        /// The tool or provider the content belongs to.
        subject: String,
        decision: String,
        rules: Vec<String>,
        reasons: Vec<String>,
    },
    /// A piece of a model's visible reasoning, shown dimmed.
    #[serde(rename_all = "camelCase")]
    ReasoningDelta { conversation: String, text: String },
    /// The streamed reply so far is void: an attempt failed and the next starts over.
    #[serde(rename_all = "camelCase")]
    StreamRestart {
        conversation: String,
        provider: String,
    },
    /// A tool call of a turn: `running`, then `ok` or `error` with its output.
    #[serde(rename_all = "camelCase")]
    TurnToolCall {
        conversation: String,
        id: String,
        name: String,
        arguments: String,
        status: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        output: Option<String>,
    },
    /// A provider entered or left a cooldown, or its circuit changed
    /// (`cooldown`, `cooldown_cleared`, `circuit_open`, `circuit_half_open`, `circuit_closed`).
    #[serde(rename_all = "camelCase")]
    ProviderState {
        provider: String,
        state: String,
        /// Cooldown end, ms since the Unix epoch.
        #[serde(skip_serializing_if = "Option::is_none")]
        until_ms: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

impl EngineEvent {
    /// One line for the status bar's "last event".
    /// Events that only ask panes to refetch: what changed shows in the panes themselves,
    /// and a status-bar line would hide the message of the action that caused them.
    pub fn is_quiet(&self) -> bool {
        matches!(
            self,
            EngineEvent::FindingsChanged { .. }
                | EngineEvent::ConfigReloaded { errors: 0, .. }
                // Streamed text shows in the transcript; a status line per piece is noise.
                | EngineEvent::StreamDelta { .. }
                | EngineEvent::ReasoningDelta { .. }
        )
    }

    pub fn summary(&self) -> String {
        match self {
            EngineEvent::Progress {
                task,
                done,
                total: Some(total),
                ..
            } => format!("{task} {done}/{total}"),
            EngineEvent::Progress { task, done, .. } => format!("{task} {done}"),
            EngineEvent::StreamDelta { conversation, .. } => format!("reply in {conversation}"),
            EngineEvent::Telemetry {
                provider,
                status,
                latency_ms,
                ..
            } => format!("{provider} {status} in {latency_ms} ms"),
            EngineEvent::ConfigReloaded {
                errors: 0,
                warnings,
            } => {
                format!("configuration reloaded ({warnings} warning(s))")
            }
            EngineEvent::ConfigReloaded { errors, .. } => {
                format!("configuration reloaded with {errors} error(s): see findings")
            }
            EngineEvent::FindingsChanged {
                critical,
                warn,
                info,
            } => format!("findings: {critical} critical, {warn} warn, {info} info"),
            EngineEvent::Notice { message, .. } => message.clone(),
            EngineEvent::ToolCall {
                tool,
                status,
                duration_us,
                ..
            } => format!("tool {tool}: {status} in {} ms", duration_us / 1000),
            EngineEvent::SafetyDecision {
                subject,
                decision,
                rules,
                ..
            } => format!("safety {decision} for {subject}: {}", rules.join(", ")),
            EngineEvent::ReasoningDelta { conversation, .. } => {
                format!("reasoning in {conversation}")
            }
            EngineEvent::StreamRestart { provider, .. } => {
                format!("reply restarted on {provider}")
            }
            EngineEvent::TurnToolCall { name, status, .. } => format!("tool {name}: {status}"),
            EngineEvent::ProviderState {
                provider,
                state,
                reason,
                ..
            } => match reason {
                Some(reason) => format!("{provider}: {state} ({reason})"),
                None => format!("{provider}: {state}"),
            },
        }
    }
}
