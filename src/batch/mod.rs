//! `--batch`: JSON lines in, JSON lines out.
//!
//! One response frame per request. A malformed or oversized line gets an error frame naming
//! its line number and the run goes on. A streaming method (`chat.send`, `memory.index`)
//! runs beside the reading of later lines, so a `chat.abort`, a `memory.cancel` or a
//! `status` sent while it runs is read and answered at once; its progress goes out as event
//! lines (`{"id", "event", "payload"}`, no `ok` key) before its response frame. Every other
//! request runs alone: the next line is read only once it has answered, so a script can
//! rely on its effects. Turns of one session run in input order; the other `memory.*`
//! requests wait for a running `memory.index`, so they see what it indexed.
//! [`Options::strict_order`] runs every request one at a time, responses in input order
//! (`--strict-order`).
//!
//! Everything written goes through one queue drained by one writer, so lines of different
//! requests never mix within a line.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use crate::engine::{EngineError, EngineEvent, EngineHandle};

mod frame;
#[cfg(test)]
mod tests;

use frame::{Call, Parsed, parse_line, read_line, stream_event};
pub use frame::{EventFrame, Frame, Id};

/// Longest request line accepted, in bytes (newline excluded).
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// What runs a request. The engine in production; tests substitute slow or failing ones.
pub trait Dispatch {
    fn dispatch(
        &self,
        method: &str,
        params: Value,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Value, EngineError>>;

    /// Engine events from now on, to stream a running request's progress. None: no events.
    fn subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<EngineEvent>> {
        None
    }
}

/// Methods whose progress is streamed as event lines before their response frame.
pub const STREAMING_METHODS: &[&str] = &["chat.send", MEMORY_INDEX];

const MEMORY_INDEX: &str = crate::engine::memory::INDEX_TASK;

/// `memory.*` requests that do not wait for a running `memory.index`: they are how one
/// watches and stops it.
const BESIDE_INDEX: &[&str] = &["memory.cancel", "memory.status"];

impl Dispatch for EngineHandle {
    fn dispatch(
        &self,
        method: &str,
        params: Value,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Value, EngineError>> {
        self.call_with_timeout(method, params, timeout)
    }

    fn subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<EngineEvent>> {
        Some(EngineHandle::subscribe(self))
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub requests: usize,
    pub failed: usize,
}

impl Summary {
    /// The process exit status the protocol promises: 0 all ok, 1 some request failed.
    pub fn exit_code(&self) -> i32 {
        if self.failed == 0 { 0 } else { 1 }
    }
}

/// One whole output line, queued for the writer.
struct Out {
    line: Vec<u8>,
    /// Progress is worth nothing late: an event line is flushed at once.
    flush: bool,
}

type Sink = tokio::sync::mpsc::UnboundedSender<Out>;

fn queue(sink: &Sink, frame: &impl Serialize, flush: bool) {
    let mut line = match serde_json::to_vec(frame) {
        Ok(line) => line,
        // Frames hold only JSON values and ids that were JSON already.
        Err(e) => format!(
            "{{\"id\":null,\"ok\":false,\"error\":{{\"code\":\"INTERNAL\",\"message\":{}}}}}",
            Value::String(format!("a frame could not be serialized: {e}"))
        )
        .into_bytes(),
    };
    line.push(b'\n');
    // The receiver lives as long as `run`, which outlives every request.
    let _ = sink.send(Out { line, flush });
}

/// Whose events a streaming request reports: a session's (turns) or a task's (progress).
enum Owner {
    /// `Progress` events of this task.
    Task(&'static str),
    /// Named in the request's params.
    Named(String),
    /// Not named: the engine makes one up. The request takes the first session it sees
    /// that no other request of this run named or took; turns without a session run one
    /// at a time so this is never ambiguous.
    Unnamed(Option<String>),
}

impl Owner {
    fn owns(&mut self, conversation: &str, shared: &Shared) -> bool {
        match self {
            Owner::Task(_) => false,
            Owner::Named(session) => session == conversation,
            Owner::Unnamed(Some(session)) => session == conversation,
            Owner::Unnamed(taken) => {
                if lock(&shared.known).insert(conversation.to_string()) {
                    *taken = Some(conversation.to_string());
                    true
                } else {
                    false
                }
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What the requests of one run share.
#[derive(Default)]
struct Shared {
    /// Sessions named by streaming requests so far, and those unnamed requests took.
    known: Mutex<HashSet<String>>,
    /// One queue per session (`None`: turns without a session): a turn of a session starts
    /// when the one before it in the input has answered.
    turns: Mutex<HashMap<Option<String>, Arc<tokio::sync::Mutex<()>>>>,
    /// Held by a running `memory.index`; the other memory requests wait for it.
    memory: Arc<tokio::sync::Mutex<()>>,
}

impl Shared {
    fn turn_queue(&self, session: Option<&str>) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.turns)
            .entry(session.map(str::to_string))
            .or_default()
            .clone()
    }
}

fn conversation_of(event: &EngineEvent) -> Option<&str> {
    match event {
        EngineEvent::StreamDelta { conversation, .. }
        | EngineEvent::ReasoningDelta { conversation, .. }
        | EngineEvent::StreamRestart { conversation, .. } => Some(conversation),
        _ => None,
    }
}

/// Queue one engine event as an event line, when it is one this request reports.
/// A reader that fell behind is told how many events it missed.
fn queue_event(
    sink: &Sink,
    id: &Id,
    owner: &mut Owner,
    shared: &Shared,
    event: Result<EngineEvent, tokio::sync::broadcast::error::RecvError>,
) {
    use tokio::sync::broadcast::error::RecvError;
    let (event, payload) = match event {
        Ok(event) => {
            let mine = match owner {
                Owner::Task(mine) => {
                    matches!(&event, EngineEvent::Progress { task, .. } if task == *mine)
                }
                _ => conversation_of(&event).is_some_and(|c| owner.owns(c, shared)),
            };
            if !mine {
                return;
            }
            match stream_event(event) {
                Some(pair) => pair,
                None => return,
            }
        }
        Err(RecvError::Lagged(missed)) => {
            ("events.skipped", serde_json::json!({ "events": missed }))
        }
        Err(RecvError::Closed) => return,
    };
    queue(sink, &EventFrame { id, event, payload }, true);
}

/// Run one request and queue its event lines and response frame. True when it failed.
async fn serve<D: Dispatch>(
    dispatch: &D,
    shared: &Shared,
    sink: &Sink,
    id: Id,
    call: Call,
    mut owner: Option<Owner>,
) -> bool {
    let Call {
        method,
        params,
        timeout,
        events,
    } = call;
    let result = match owner.as_mut() {
        None if method.starts_with("memory.") && !BESIDE_INDEX.contains(&method.as_str()) => {
            let memory = shared.memory.clone();
            let _after_index = memory.lock().await;
            dispatch.dispatch(&method, params, timeout).await
        }
        None => dispatch.dispatch(&method, params, timeout).await,
        Some(owner) => {
            // Waits for the turn before it in the same session (or the index run before
            // it); `timeoutMs` starts after.
            let queue_lock = match owner {
                Owner::Task(_) => shared.memory.clone(),
                Owner::Named(session) => shared.turn_queue(Some(session.as_str())),
                Owner::Unnamed(_) => shared.turn_queue(None),
            };
            let _turn = queue_lock.lock().await;
            let rx = if events { dispatch.subscribe() } else { None };
            stream(
                dispatch, shared, sink, &id, owner, rx, &method, params, timeout,
            )
            .await
        }
    };
    let failed = result.is_err();
    let frame = match result {
        Ok(payload) => Frame {
            id: &id,
            ok: true,
            payload: Some(payload),
            error: None,
        },
        Err(error) => Frame {
            id: &id,
            ok: false,
            payload: None,
            error: Some(error),
        },
    };
    queue(sink, &frame, false);
    failed
}

/// Run a streaming request, queueing its events as they happen.
#[allow(clippy::too_many_arguments)]
async fn stream<D: Dispatch>(
    dispatch: &D,
    shared: &Shared,
    sink: &Sink,
    id: &Id,
    owner: &mut Owner,
    rx: Option<tokio::sync::broadcast::Receiver<EngineEvent>>,
    method: &str,
    params: Value,
    timeout: Option<Duration>,
) -> Result<Value, EngineError> {
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};
    let call = dispatch.dispatch(method, params, timeout);
    let Some(mut rx) = rx else {
        return call.await;
    };
    tokio::pin!(call);
    let result = loop {
        tokio::select! {
            // Events first: what was already emitted goes out before the response.
            biased;
            event = rx.recv() => {
                if matches!(event, Err(RecvError::Closed)) {
                    break (&mut call).await;
                }
                queue_event(sink, id, owner, shared, event);
            }
            result = &mut call => break result,
        }
    };
    // Anything emitted in the call's last moments, still in the channel.
    loop {
        let event = match rx.try_recv() {
            Ok(event) => Ok(event),
            Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
            Err(_) => break,
        };
        queue_event(sink, id, owner, shared, event);
    }
    result
}

/// How a batch runs its requests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Every request alone and in input order, streaming ones included (`--strict-order`):
    /// a line is read only once the request before it has answered.
    pub strict_order: bool,
}

/// A request running: when it ends, whether it held up reading and whether it failed.
type Task<'a> = Pin<Box<dyn Future<Output = (bool, bool)> + 'a>>;

/// Run a whole batch. Only I/O errors on the streams themselves end it early. At the end
/// of the input, requests still running are awaited and answered.
pub async fn run<D, R, W>(
    dispatch: &D,
    input: R,
    output: W,
    options: Options,
) -> io::Result<Summary>
where
    D: Dispatch,
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let reader = BufReader::with_capacity(64 * 1024, input);
    // A stream keeps a half-read line across the `select!` below, where a future would
    // lose it when another branch wins. The flag: more input is already buffered.
    let lines = futures_util::stream::unfold(Some((reader, Vec::new())), |state| async move {
        let (mut reader, mut buf) = state?;
        match read_line(&mut reader, &mut buf).await {
            Ok(Some(line)) => {
                let buffered = !reader.buffer().is_empty();
                Some((Ok((line, buffered)), Some((reader, buf))))
            }
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    });
    tokio::pin!(lines);
    let mut writer = tokio::io::BufWriter::with_capacity(64 * 1024, output);
    let (sink, mut outbox) = tokio::sync::mpsc::unbounded_channel::<Out>();
    let shared = Shared::default();
    let mut tasks: FuturesUnordered<Task<'_>> = FuturesUnordered::new();
    let mut summary = Summary::default();
    let mut number = 0usize;
    let mut input_done = false;
    // A request that must run alone is running: read no further until it answers.
    let mut holding = false;
    let mut buffered = false;
    let mut dirty = false;
    loop {
        while let Ok(out) = outbox.try_recv() {
            writer.write_all(&out.line).await?;
            dirty = true;
            if out.flush {
                writer.flush().await?;
                dirty = false;
            }
        }
        if input_done && tasks.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            Some(out) = outbox.recv() => {
                writer.write_all(&out.line).await?;
                dirty = true;
                if out.flush {
                    writer.flush().await?;
                    dirty = false;
                }
            }
            Some((held, failed)) = tasks.next(), if !tasks.is_empty() => {
                holding &= !held;
                summary.failed += usize::from(failed);
            }
            line = lines.next(), if !input_done && !holding => {
                let Some(line) = line else {
                    input_done = true;
                    continue;
                };
                number += 1;
                let (line, more) = line?;
                buffered = more;
                match parse_line(number, line) {
                    None => {}
                    Some(Parsed::Failed(id, error)) => {
                        summary.requests += 1;
                        summary.failed += 1;
                        let frame = Frame { id: &id, ok: false, payload: None, error: Some(error) };
                        queue(&sink, &frame, false);
                    }
                    Some(Parsed::Run(id, call)) => {
                        summary.requests += 1;
                        let owner = owner_of(&call.method, &call.params, &shared);
                        let alone = options.strict_order || owner.is_none();
                        holding = alone;
                        let (sink, shared) = (&sink, &shared);
                        tasks.push(Box::pin(async move {
                            (alone, serve(dispatch, shared, sink, id, call, owner).await)
                        }));
                    }
                }
            }
            // Only when nothing else is ready, and no further input is already buffered.
            // An interactive caller waits for each answer; a piped file, whose next lines
            // are already there, is written in large blocks.
            () = std::future::ready(()), if dirty && (!buffered || input_done) => {
                writer.flush().await?;
                dirty = false;
            }
        }
    }
    writer.flush().await?;
    Ok(summary)
}

/// Whose events a streaming request reports (`None`: not a streaming method). The session
/// a turn names is recorded at once so that no request without a session takes its events.
fn owner_of(method: &str, params: &Value, shared: &Shared) -> Option<Owner> {
    match method {
        MEMORY_INDEX => return Some(Owner::Task(MEMORY_INDEX)),
        _ if !STREAMING_METHODS.contains(&method) => return None,
        _ => {}
    }
    Some(match params.get("session").and_then(Value::as_str) {
        Some(session) => {
            lock(&shared.known).insert(session.to_string());
            Owner::Named(session.to_string())
        }
        None => Owner::Unnamed(None),
    })
}
