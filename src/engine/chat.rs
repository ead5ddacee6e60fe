//! The agent methods: `chat.*`, `sessions.*`, `providers.*`, `models.list` and
//! `telemetry.recent`. The work lives in [`crate::orchestrator`]; these are its wire faces.
//! The provider chain's methods are in chat/providers.rs.

use std::path::Path;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::host::error_code;
use super::methods::{Method, NoParams};
use super::{EngineError, EngineHandle, ErrorCode};
use crate::orchestrator::TurnRecord;
use crate::orchestrator::runtime::{Runtime, SendParams, SendResult};
use crate::orchestrator::sessions::{Line, SessionInfo};

mod providers;
pub use providers::{
    ModelsList, ModelsParams, ModelsResult, ProbeOutcome, ProbeResult, ProviderIdParams,
    ProviderInfo, ProviderModels, ProvidersList, ProvidersListResult, ProvidersProbe,
    ProvidersReorder, ProvidersReset, ReorderParams, ReorderResult, ResetResult, list_providers,
};

impl EngineHandle {
    /// The agent runtime: provider chain and health, sessions, running turns.
    pub fn agent(&self) -> Arc<Runtime> {
        self.inner.agent.clone()
    }
}

// ---- chat -----------------------------------------------------------------------------------

pub struct ChatSend;

impl Method for ChatSend {
    const NAME: &'static str = "chat.send";
    const DESCRIPTION: &'static str = "Send a message in a session (created when missing): memory recall, the model call with self-healing, tool calls; streams deltas as events and returns the reply with usage, citations and runtime.selfHealing.";
    type Params = SendParams;
    type Output = SendResult;

    async fn run(engine: &EngineHandle, params: SendParams) -> Result<SendResult, EngineError> {
        Ok(engine.agent().send(engine, params).await?)
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AbortParams {
    /// The session whose turn to stop; every running turn when left out.
    #[serde(default)]
    pub session: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AbortResult {
    pub aborted: usize,
}

pub struct ChatAbort;

impl Method for ChatAbort {
    const NAME: &'static str = "chat.abort";
    const DESCRIPTION: &'static str =
        "Stop a running turn (or all): the model call, any wait and any tool call end at once.";
    type Params = AbortParams;
    type Output = AbortResult;

    async fn run(engine: &EngineHandle, p: AbortParams) -> Result<AbortResult, EngineError> {
        Ok(AbortResult {
            aborted: engine.agent().abort(p.session.as_deref()),
        })
    }
}

// ---- sessions -------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionsListResult {
    pub sessions: Vec<SessionInfo>,
    /// Sessions with a turn running now.
    pub running: Vec<String>,
}

pub struct SessionsList;

impl Method for SessionsList {
    const NAME: &'static str = "sessions.list";
    const DESCRIPTION: &'static str = "Saved sessions, newest first.";
    type Params = NoParams;
    type Output = SessionsListResult;

    async fn run(engine: &EngineHandle, _: NoParams) -> Result<SessionsListResult, EngineError> {
        let agent = engine.agent();
        let sessions = agent.with_sessions(engine, |s| Ok(s.list())).await?;
        Ok(SessionsListResult {
            sessions,
            running: agent.running(),
        })
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateParams {
    /// Letters, digits, `-` and `_`; generated when left out.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
}

pub struct SessionsCreate;

impl Method for SessionsCreate {
    const NAME: &'static str = "sessions.create";
    const DESCRIPTION: &'static str = "Start a new, empty session.";
    type Params = CreateParams;
    type Output = SessionInfo;

    async fn run(engine: &EngineHandle, p: CreateParams) -> Result<SessionInfo, EngineError> {
        let title = p.title.unwrap_or_else(|| "new session".into());
        engine
            .agent()
            .with_sessions(engine, |s| s.create(p.id.as_deref(), &title))
            .await
            .map_err(EngineError::from)
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionParams {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryResult {
    pub session: SessionInfo,
    /// Every line of the session: the messages, tool calls and results, and per-turn
    /// records (provider, usage, citations, selfHealing).
    pub lines: Vec<Line>,
}

pub struct SessionsHistory;

impl Method for SessionsHistory {
    const NAME: &'static str = "sessions.history";
    const DESCRIPTION: &'static str =
        "A session's transcript: messages, tool calls and per-turn telemetry.";
    type Params = SessionParams;
    type Output = HistoryResult;

    async fn run(engine: &EngineHandle, p: SessionParams) -> Result<HistoryResult, EngineError> {
        engine
            .agent()
            .with_sessions(engine, |s| {
                // Read first: reading the file brings the summary up to date.
                let lines = s.get(&p.id)?.lines.clone();
                Ok(HistoryResult {
                    session: s.info(&p.id)?,
                    lines,
                })
            })
            .await
            .map_err(EngineError::from)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteResult {
    pub deleted: String,
}

pub struct SessionsDelete;

impl Method for SessionsDelete {
    const NAME: &'static str = "sessions.delete";
    const DESCRIPTION: &'static str = "Delete a session and its file.";
    type Params = SessionParams;
    type Output = DeleteResult;

    async fn run(engine: &EngineHandle, p: SessionParams) -> Result<DeleteResult, EngineError> {
        let agent = engine.agent();
        if agent.running().contains(&p.id) {
            return Err(EngineError::invalid_request(format!(
                "session {} has a turn running; abort it first (chat.abort)",
                p.id
            )));
        }
        agent.with_sessions(engine, |s| s.delete(&p.id)).await?;
        Ok(DeleteResult { deleted: p.id })
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    pub id: String,
    /// Write the JSONL to this file instead of returning it.
    #[serde(default)]
    pub path: Option<String>,
    /// The file's mode (e.g. 420 for 0644); 0600 when left out, whatever the umask.
    #[serde(default)]
    pub mode: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportResult {
    pub id: String,
    pub lines: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The JSONL, when no path was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jsonl: Option<String>,
}

pub struct SessionsExport;

impl Method for SessionsExport {
    const NAME: &'static str = "sessions.export";
    const DESCRIPTION: &'static str = "A session as JSONL, returned or written to a file.";
    type Params = ExportParams;
    type Output = ExportResult;

    async fn run(engine: &EngineHandle, p: ExportParams) -> Result<ExportResult, EngineError> {
        let jsonl = engine
            .agent()
            .with_sessions(engine, |s| s.export(&p.id))
            .await?;
        let lines = jsonl.lines().count();
        match p.path {
            Some(path) => {
                // Written whole beside, synced and renamed (crate::files): a reader never
                // sees half a file, and the mode is exact whatever the umask.
                let mode = p.mode.unwrap_or(0o600) & 0o777;
                crate::files::write_atomic(Path::new(&path), jsonl.as_bytes(), mode).map_err(
                    |e| EngineError::new(ErrorCode::Internal, format!("cannot write {path}: {e}")),
                )?;
                Ok(ExportResult {
                    id: p.id,
                    lines,
                    path: Some(path),
                    jsonl: None,
                })
            }
            None => Ok(ExportResult {
                id: p.id,
                lines,
                path: None,
                jsonl: Some(jsonl),
            }),
        }
    }
}

// ---- telemetry ------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecentParams {
    /// Turns to return, newest last (default 50).
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecentResult {
    pub turns: Vec<TurnRecord>,
    /// How many turns the history keeps (`telemetry.history`; 0 when telemetry is off).
    pub capacity: usize,
}

pub struct TelemetryRecent;

impl Method for TelemetryRecent {
    const NAME: &'static str = "telemetry.recent";
    const DESCRIPTION: &'static str =
        "Recent turns with their self-heal attempts (the providers pane's timeline).";
    type Params = RecentParams;
    type Output = RecentResult;

    async fn run(engine: &EngineHandle, p: RecentParams) -> Result<RecentResult, EngineError> {
        let snapshot = engine.snapshot();
        let t = &snapshot.config().telemetry;
        let capacity = match t.level {
            crate::config::TelemetryLevel::Off => 0,
            _ => t.history as usize,
        };
        Ok(RecentResult {
            turns: engine.agent().history.recent(p.limit.unwrap_or(50)),
            capacity,
        })
    }
}

/// For faces: the engine error of a failed turn carries `details.runtime.selfHealing`.
pub fn failed_turn_telemetry(error: &EngineError) -> Option<Value> {
    error
        .details
        .as_ref()
        .and_then(|d| d.pointer("/runtime/selfHealing"))
        .cloned()
}

/// Re-exported so faces need not reach into the orchestrator for the mapping.
pub fn code_for(class: Option<crate::providers::FailureClass>) -> ErrorCode {
    error_code(class)
}
