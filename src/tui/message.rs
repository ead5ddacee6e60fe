//! What flows between the app, its panes and the driver: the [`Command`]s the app asks the
//! driver to run, the [`Msg`]s that come back, the [`Effects`] a pane's update asks of the
//! app, and which part of the UI owns an engine answer.

use std::time::Instant;

use crossterm::event::KeyEvent;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::overlay::Overlay;
use super::voice::Speech;
use crate::engine::chat::{
    ChatAbort, ChatSend, ModelsList, SessionsCreate, SessionsDelete, SessionsExport,
    SessionsHistory, SessionsList,
};
use crate::engine::memory::{
    MemoryAdd, MemoryDelete, MemoryGet, MemoryGraphNeighbors, MemoryGraphNode, MemoryGraphPath,
    MemoryGraphTop, MemoryIndex, MemorySearch, MemoryStatus,
};
use crate::engine::voice::{
    TtsConvert, TtsDisable, TtsEnable, TtsProvidersMethod, TtsSetProvider, TtsStatusMethod,
};
use crate::engine::{EngineError, EngineEvent, Method};

/// What the app asks the driver to do. Method names come from the method table
/// (`M::NAME`), never typed out, so a renamed method fails to compile here.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Call an engine method; the result comes back as [`Msg::CallDone`].
    Call {
        method: &'static str,
        params: Value,
    },
    /// Call an engine method whose answer a newer question may overtake (a search as you
    /// type); the result comes back as [`Msg::TaggedDone`] with the same tag, so the app can
    /// drop stale answers.
    CallTagged {
        method: &'static str,
        params: Value,
        tag: u64,
    },
    /// Speak these pieces of text in order, converting each while the one before plays;
    /// how it goes comes back as [`Msg::Speech`].
    Speak {
        pieces: Vec<String>,
    },
    Quit,
}

/// Everything that can happen to the app.
#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    /// Text the terminal handed over as one paste (bracketed paste): typed into the field
    /// that has focus, never taken as keys.
    Paste(String),
    Resize(u16, u16),
    CallDone {
        method: String,
        result: Result<Value, EngineError>,
    },
    TaggedDone {
        method: String,
        tag: u64,
        result: Result<Value, EngineError>,
    },
    Engine(EngineEvent),
    /// Time passed: the driver woke at `App::next_deadline`.
    Tick(Instant),
    /// The event stream dropped this many events because the UI fell behind.
    EventsLagged(u64),
    /// A signal (SIGTERM, SIGHUP) asked us to leave.
    Terminate,
    /// Progress of a [`Command::Speak`].
    Speech(Speech),
}

/// An answer read as its method's own result type: the method table's types, not JSON.
pub(crate) fn decode<M: Method>(value: Value) -> Result<M::Output, serde_json::Error>
where
    M::Output: DeserializeOwned,
{
    serde_json::from_value(value)
}

/// What a pane's action or answer asks of the app besides the pane's own state.
#[derive(Debug, Default)]
pub struct Effects {
    /// Engine work to run.
    pub commands: Vec<Command>,
    /// A popup to open.
    pub popup: Option<Overlay>,
    /// A line for the status bar.
    pub line: Option<String>,
    /// Bring the pane into view.
    pub focus: bool,
    /// Move the pane's cursor to this row.
    pub select: Option<usize>,
}

/// Which part of the UI an engine answer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    Conversations,
    Memory,
    Voice,
    /// The app's view, the providers pane and the findings pane (`App::apply_result`).
    View,
}

/// The owner of an answer to `method`. A `memory.search` answers the conversations pane's
/// `/search` while it waits for one, else the memory pane.
pub(crate) fn owner(method: &str, conversation_search: bool) -> Owner {
    match method {
        ChatSend::NAME
        | ChatAbort::NAME
        | SessionsList::NAME
        | SessionsCreate::NAME
        | SessionsHistory::NAME
        | SessionsDelete::NAME
        | SessionsExport::NAME
        | ModelsList::NAME => Owner::Conversations,
        MemorySearch::NAME if conversation_search => Owner::Conversations,
        MemoryAdd::NAME
        | MemorySearch::NAME
        | MemoryGet::NAME
        | MemoryDelete::NAME
        | MemoryIndex::NAME
        | MemoryStatus::NAME
        | MemoryGraphNeighbors::NAME
        | MemoryGraphPath::NAME
        | MemoryGraphNode::NAME
        | MemoryGraphTop::NAME => Owner::Memory,
        TtsStatusMethod::NAME
        | TtsProvidersMethod::NAME
        | TtsEnable::NAME
        | TtsDisable::NAME
        | TtsSetProvider::NAME
        | TtsConvert::NAME => Owner::Voice,
        _ => Owner::View,
    }
}
