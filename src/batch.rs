//! `--batch`: JSON lines in, JSON lines out.
//!
//! One response frame per request. A malformed or oversized line gets an error frame naming
//! its line number and the run goes on. A streaming method (`chat.send`) runs beside the
//! reading of later lines, so a `chat.abort` or a `status` sent while a turn streams is
//! read and answered at once; its progress goes out as event lines (`{"id", "event",
//! "payload"}`, no `ok` key) before its response frame. Every other request runs alone:
//! the next line is read only once it has answered, so a script can rely on its effects.
//! Turns of one session run in input order. [`Options::strict_order`] runs every request
//! one at a time, responses in input order (`--strict-order`).
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

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use crate::engine::{EngineError, EngineEvent, EngineHandle};

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
pub const STREAMING_METHODS: &[&str] = &["chat.send"];

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

/// A request id, echoed byte for byte: ids of any JSON type and size come back unchanged.
pub type Id = Option<Box<RawValue>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Request {
    #[serde(default)]
    id: Id,
    method: String,
    #[serde(default)]
    params: Value,
    #[serde(default)]
    timeout_ms: Option<u64>,
    /// Stream progress as event lines (streaming methods only); false: the response alone.
    #[serde(default = "yes")]
    events: bool,
}

fn yes() -> bool {
    true
}

/// An event line: progress of the request `id`, before its response frame.
#[derive(Debug, Serialize)]
pub struct EventFrame<'a> {
    pub id: &'a Id,
    pub event: &'static str,
    pub payload: Value,
}

/// The batch name and payload of an engine event a streaming request reports.
fn stream_event(event: EngineEvent) -> Option<(&'static str, Value)> {
    use serde_json::json;
    match event {
        EngineEvent::StreamDelta { conversation, text } => Some((
            "chat.delta",
            json!({ "session": conversation, "text": text }),
        )),
        EngineEvent::ReasoningDelta { conversation, text } => Some((
            "chat.reasoning",
            json!({ "session": conversation, "text": text }),
        )),
        EngineEvent::StreamRestart {
            conversation,
            provider,
        } => Some((
            "chat.restart",
            json!({ "session": conversation, "provider": provider }),
        )),
        _ => None,
    }
}

/// Only the id of a line that is not a valid request, to echo it in the error frame.
#[derive(Deserialize)]
struct IdOnly {
    #[serde(default)]
    id: Id,
}

/// A response frame, exactly as it goes on the wire. A missing id is `null`.
#[derive(Debug, Serialize)]
pub struct Frame<'a> {
    pub id: &'a Id,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<EngineError>,
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

enum Line {
    Text(String),
    Oversized(usize),
    NotUtf8,
}

/// Read one line without ever holding more than [`MAX_LINE_BYTES`] of it.
async fn read_line<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    buf: &mut Vec<u8>,
) -> io::Result<Option<Line>> {
    buf.clear();
    let mut total = 0usize;
    let mut seen_any = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            if !seen_any {
                return Ok(None);
            }
            break;
        }
        seen_any = true;
        let (chunk, consumed, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], i + 1, true),
            None => (available, available.len(), false),
        };
        total += chunk.len();
        if total <= MAX_LINE_BYTES {
            buf.extend_from_slice(chunk);
        } else {
            buf.clear();
        }
        reader.consume(consumed);
        if done {
            break;
        }
    }
    if total > MAX_LINE_BYTES {
        return Ok(Some(Line::Oversized(total)));
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(match String::from_utf8(std::mem::take(buf)) {
        Ok(text) => Line::Text(text),
        Err(_) => Line::NotUtf8,
    }))
}

fn line_error(line: usize, message: String) -> EngineError {
    EngineError::invalid_request(format!("line {line}: {message}"))
        .with_details(serde_json::json!({ "line": line }))
}

/// A request ready to run, or the error frame a line gets instead.
enum Parsed {
    Run(Id, Call),
    Failed(Id, EngineError),
}

struct Call {
    method: String,
    params: Value,
    timeout: Option<Duration>,
    events: bool,
}

/// Turn one line into a request. `None` for blank lines, which are not requests.
fn parse_line(number: usize, line: Line) -> Option<Parsed> {
    let text = match line {
        Line::Text(text) => text,
        Line::Oversized(len) => {
            let message = format!("line is {len} bytes; the limit is {MAX_LINE_BYTES}");
            return Some(Parsed::Failed(None, line_error(number, message)));
        }
        Line::NotUtf8 => {
            return Some(Parsed::Failed(
                None,
                line_error(number, "line is not valid UTF-8".into()),
            ));
        }
    };
    // Editors on some systems start files with a byte order mark; it is not JSON.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    if text.trim().is_empty() {
        return None;
    }
    let request: Request = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let (id, error) = not_a_request(number, text, e);
            return Some(Parsed::Failed(id, error));
        }
    };
    let timeout = match request.timeout_ms {
        Some(0) => {
            let error = line_error(number, "timeoutMs must be at least 1".into());
            return Some(Parsed::Failed(request.id, error));
        }
        other => other.map(Duration::from_millis),
    };
    Some(Parsed::Run(
        request.id,
        Call {
            method: request.method,
            params: request.params,
            timeout,
            events: request.events,
        },
    ))
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

/// The session a streaming request's events belong to.
enum Owner {
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
            match conversation_of(&event) {
                Some(conversation) if owner.owns(conversation, shared) => {}
                _ => return,
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
        None => dispatch.dispatch(&method, params, timeout).await,
        Some(owner) => {
            let session = match owner {
                Owner::Named(session) => Some(session.clone()),
                Owner::Unnamed(_) => None,
            };
            // Waits for the turn before it in the same session; `timeoutMs` starts after.
            let queue_lock = shared.turn_queue(session.as_deref());
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

/// Say why a line is not a request, echoing its id when it has one.
fn not_a_request(number: usize, text: &str, error: serde_json::Error) -> (Id, EngineError) {
    if error.is_syntax() || error.is_eof() {
        return (None, line_error(number, format!("invalid JSON: {error}")));
    }
    let id = serde_json::from_str::<IdOnly>(text).ok().and_then(|r| r.id);
    let message = format!(
        "not a request ({error}); expected {{\"id\": ..., \"method\": \"...\", \"params\": {{...}}}}"
    );
    (id, line_error(number, message))
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
                        let owner = STREAMING_METHODS
                            .contains(&call.method.as_str())
                            .then(|| owner_of(&call.params, &shared));
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

/// The session a streaming request names, recorded at once so that no request without a
/// session takes its events.
fn owner_of(params: &Value, shared: &Shared) -> Owner {
    match params.get("session").and_then(Value::as_str) {
        Some(session) => {
            lock(&shared.known).insert(session.to_string());
            Owner::Named(session.to_string())
        }
        None => Owner::Unnamed(None),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Answers `echo` with its params, sleeps on `slow`, fails `boom`.
    struct Fake;

    impl Dispatch for Fake {
        async fn dispatch(
            &self,
            method: &str,
            params: Value,
            timeout: Option<Duration>,
        ) -> Result<Value, EngineError> {
            let work = async {
                match method {
                    "echo" => Ok(params),
                    "slow" => {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        Ok(Value::Null)
                    }
                    _ => Err(EngineError::invalid_request(format!(
                        "unknown method '{method}'"
                    ))),
                }
            };
            match timeout {
                Some(limit) => tokio::time::timeout(limit, work)
                    .await
                    .unwrap_or_else(|_| Err(crate::engine::timeout_error(method, limit))),
                None => work.await,
            }
        }
    }

    async fn run_fake(input: &[u8]) -> (Summary, Vec<Value>) {
        let mut out = Vec::new();
        let summary = run(&Fake, input, &mut out, Options::default())
            .await
            .unwrap();
        let frames = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).expect("every output line is JSON"))
            .collect();
        (summary, frames)
    }

    #[tokio::test]
    async fn good_requests_answer_in_order_with_ids() {
        let input = b"{\"id\":1,\"method\":\"echo\",\"params\":{\"a\":1}}\n\
                      {\"id\":\"two\",\"method\":\"echo\"}\r\n";
        let (summary, frames) = run_fake(input).await;
        assert_eq!(
            summary,
            Summary {
                requests: 2,
                failed: 0
            }
        );
        assert_eq!(frames[0]["id"], 1);
        assert_eq!(frames[0]["ok"], true);
        assert_eq!(frames[0]["payload"]["a"], 1);
        assert_eq!(frames[1]["id"], "two");
        assert!(frames[1].get("error").is_none());
    }

    #[tokio::test]
    async fn malformed_lines_get_framed_errors_and_the_run_goes_on() {
        let input = b"{\"id\":1,\"method\":\"echo\"}\n\
                      this is not json\n\
                      \n\
                      {\"id\":3}\n\
                      {\"id\":4,\"method\":\"echo\",\"parms\":{}}\n\
                      [1,2]\n\
                      {\"id\":5,\"method\":\"echo\"}";
        let (summary, frames) = run_fake(input).await;
        assert_eq!(summary.requests, 6, "blank line is not a request");
        assert_eq!(summary.failed, 4);
        assert_eq!(summary.exit_code(), 1);
        assert_eq!(frames[1]["error"]["code"], "INVALID_REQUEST");
        assert_eq!(frames[1]["error"]["details"]["line"], 2);
        assert_eq!(frames[1]["id"], Value::Null);
        assert!(
            frames[1]["error"]["message"]
                .as_str()
                .unwrap()
                .contains("invalid JSON")
        );
        assert_eq!(
            frames[2]["id"], 3,
            "id is echoed for a request missing its method"
        );
        assert_eq!(frames[2]["error"]["details"]["line"], 4);
        assert!(
            frames[3]["error"]["message"]
                .as_str()
                .unwrap()
                .contains("parms")
        );
        assert_eq!(frames[4]["error"]["details"]["line"], 6);
        assert_eq!(
            frames[5]["ok"], true,
            "last line without newline still runs"
        );
    }

    #[tokio::test]
    async fn oversized_line_is_rejected_without_buffering_it() {
        let mut input = Vec::new();
        input.extend_from_slice(b"{\"id\":1,\"method\":\"echo\",\"params\":\"");
        input.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 10));
        input.extend_from_slice(b"\"}\n{\"id\":2,\"method\":\"echo\"}\n");
        let (summary, frames) = run_fake(&input).await;
        assert_eq!(
            summary,
            Summary {
                requests: 2,
                failed: 1
            }
        );
        assert_eq!(frames[0]["error"]["details"]["line"], 1);
        assert!(
            frames[0]["error"]["message"]
                .as_str()
                .unwrap()
                .contains("limit")
        );
        assert_eq!(frames[1]["id"], 2);
        assert_eq!(frames[1]["ok"], true);
    }

    #[tokio::test]
    async fn a_line_exactly_at_the_limit_is_accepted() {
        let prefix = b"{\"id\":1,\"method\":\"echo\",\"params\":\"";
        let suffix = b"\"}";
        let fill = MAX_LINE_BYTES - prefix.len() - suffix.len();
        let mut input = prefix.to_vec();
        input.extend(std::iter::repeat_n(b'y', fill));
        input.extend_from_slice(suffix);
        let (summary, frames) = run_fake(&input).await;
        assert_eq!(summary.failed, 0, "{:?}", frames[0]["error"]);
    }

    #[tokio::test]
    async fn unknown_method_fails_with_invalid_request() {
        let (summary, frames) = run_fake(b"{\"id\":9,\"method\":\"nope\"}\n").await;
        assert_eq!(summary.failed, 1);
        assert_eq!(frames[0]["id"], 9);
        assert_eq!(frames[0]["error"]["code"], "INVALID_REQUEST");
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_ms_cancels_slow_requests() {
        let input = b"{\"id\":1,\"method\":\"slow\",\"timeoutMs\":20}\n\
                      {\"id\":2,\"method\":\"echo\",\"timeoutMs\":20}\n";
        let (summary, frames) = run_fake(input).await;
        assert_eq!(summary.failed, 1);
        assert_eq!(frames[0]["error"]["code"], "TIMEOUT");
        assert_eq!(frames[0]["error"]["details"]["timeoutMs"], 20);
        assert_eq!(frames[1]["ok"], true);
    }

    #[tokio::test]
    async fn ids_of_any_type_and_size_are_echoed_exactly() {
        let input = "{\"id\":12345678901234567890123,\"method\":\"echo\"}\n\
                     {\"id\":[1,{\"a\":null}],\"method\":\"echo\"}\n\
                     {\"id\":1.50,\"method\":\"nope\"}\n\
                     {\"id\":\"x\"}\n";
        let mut out = Vec::new();
        run(&Fake, input.as_bytes(), &mut out, Options::default())
            .await
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("{\"id\":12345678901234567890123,"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].starts_with("{\"id\":[1,{\"a\":null}],"),
            "{}",
            lines[1]
        );
        assert!(lines[2].starts_with("{\"id\":1.50,"), "{}", lines[2]);
        assert!(lines[3].starts_with("{\"id\":\"x\","), "{}", lines[3]);
    }

    #[tokio::test]
    async fn a_byte_order_mark_is_ignored_and_zero_timeouts_are_refused() {
        let input = "\u{feff}{\"id\":1,\"method\":\"echo\"}\n{\"id\":2,\"method\":\"echo\",\"timeoutMs\":0}\n";
        let (summary, frames) = run_fake(input.as_bytes()).await;
        assert_eq!(frames[0]["ok"], true, "{:?}", frames[0]);
        assert_eq!(summary.failed, 1);
        assert!(
            frames[1]["error"]["message"]
                .as_str()
                .unwrap()
                .contains("timeoutMs")
        );
    }

    #[tokio::test]
    async fn invalid_utf8_is_framed() {
        let (summary, frames) = run_fake(b"\xff\xfe\n{\"id\":1,\"method\":\"echo\"}\n").await;
        assert_eq!(summary.failed, 1);
        assert!(
            frames[0]["error"]["message"]
                .as_str()
                .unwrap()
                .contains("UTF-8")
        );
    }

    #[tokio::test]
    async fn engine_frames_use_the_wire_codes() {
        let tmp = tempfile::tempdir().unwrap();
        let engine = crate::engine::Engine::start(
            crate::config::load(&crate::config::LoadOptions {
                state_dir: tmp.path().to_path_buf(),
                ..Default::default()
            }),
            Vec::new(),
        );
        let mut out = Vec::new();
        let summary = run(
            &engine.handle(),
            &b"{\"id\":1,\"method\":\"status\"}\n{\"id\":2,\"method\":\"config.get\",\"params\":{\"key\":\"x.y\"}}\n"[..],
            &mut out,
            Options::default(),
        )
        .await
        .unwrap();
        assert_eq!(summary.failed, 1);
        let text = String::from_utf8(out).unwrap();
        let frames: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            frames[0]["payload"]["buildTrack"],
            crate::config::BUILD_TRACK
        );
        assert_eq!(frames[1]["error"]["code"], "NOT_FOUND");
    }

    /// `chat.send` emits `events` on the engine's channel, then answers; `status` emits
    /// the same but is not a streaming method.
    struct Streamer {
        tx: tokio::sync::broadcast::Sender<EngineEvent>,
        events: Vec<EngineEvent>,
    }

    impl Dispatch for Streamer {
        async fn dispatch(
            &self,
            method: &str,
            _: Value,
            _: Option<Duration>,
        ) -> Result<Value, EngineError> {
            for e in &self.events {
                let _ = self.tx.send(e.clone());
            }
            Ok(serde_json::json!({ "method": method }))
        }

        fn subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<EngineEvent>> {
            Some(self.tx.subscribe())
        }
    }

    fn delta(text: &str) -> EngineEvent {
        EngineEvent::StreamDelta {
            conversation: "s".into(),
            text: text.into(),
        }
    }

    async fn run_streamer(capacity: usize, events: Vec<EngineEvent>, input: &str) -> Vec<Value> {
        let (tx, _) = tokio::sync::broadcast::channel(capacity);
        let mut out = Vec::new();
        run(
            &Streamer { tx, events },
            input.as_bytes(),
            &mut out,
            Options::default(),
        )
        .await
        .unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn streaming_events_come_before_the_response_and_only_for_streaming_methods() {
        let events = vec![
            delta("half "),
            EngineEvent::StreamRestart {
                conversation: "s".into(),
                provider: "backup".into(),
            },
            EngineEvent::ReasoningDelta {
                conversation: "s".into(),
                text: "thinking".into(),
            },
            EngineEvent::Notice {
                level: crate::config::Level::Warning,
                message: "not a stream event".into(),
            },
            delta("whole"),
        ];
        let input = "{\"id\":1,\"method\":\"chat.send\"}\n\
                     {\"id\":2,\"method\":\"status\"}\n\
                     {\"id\":3,\"method\":\"chat.send\",\"events\":false}\n";
        let lines = run_streamer(64, events, input).await;
        let shape: Vec<String> = lines
            .iter()
            .map(|l| match l.get("event") {
                Some(e) => format!("{}:{}", l["id"], e.as_str().unwrap()),
                None => format!("{}:ok={}", l["id"], l["ok"]),
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                "1:chat.delta",
                "1:chat.restart",
                "1:chat.reasoning",
                "1:chat.delta",
                "1:ok=true",
                "2:ok=true",
                "3:ok=true"
            ]
        );
        assert_eq!(
            lines[0]["payload"],
            serde_json::json!({"session": "s", "text": "half "})
        );
        assert_eq!(lines[1]["payload"]["provider"], "backup");
        assert!(lines[..4].iter().all(|l| l.get("ok").is_none()));
    }

    /// Turns that take time: `chat.send` (`session`, `pieces`, `ms`) streams `pieces` deltas
    /// `ms` apart in its session (a made-up one when not named) unless `chat.abort` stops
    /// it; it records turns of one session that overlap.
    #[derive(Default)]
    struct Turns {
        tx: Option<tokio::sync::broadcast::Sender<EngineEvent>>,
        abort: tokio::sync::Notify,
        running: std::sync::Mutex<Vec<String>>,
        overlaps: std::sync::atomic::AtomicUsize,
        made_up: std::sync::atomic::AtomicUsize,
    }

    impl Turns {
        fn new() -> Self {
            Self {
                tx: Some(tokio::sync::broadcast::channel(256).0),
                ..Self::default()
            }
        }
    }

    impl Dispatch for Turns {
        async fn dispatch(
            &self,
            method: &str,
            params: Value,
            timeout: Option<Duration>,
        ) -> Result<Value, EngineError> {
            use std::sync::atomic::Ordering;
            match method {
                "echo" => Ok(params),
                "chat.abort" => {
                    self.abort.notify_waiters();
                    Ok(Value::Null)
                }
                "chat.send" => {
                    let session = match params["session"].as_str() {
                        Some(s) => s.to_string(),
                        None => format!("made-{}", self.made_up.fetch_add(1, Ordering::SeqCst)),
                    };
                    {
                        let mut running = self.running.lock().unwrap();
                        if running.contains(&session) {
                            self.overlaps.fetch_add(1, Ordering::SeqCst);
                        }
                        running.push(session.clone());
                    }
                    let pieces = params["pieces"].as_u64().unwrap_or(3);
                    let ms = params["ms"].as_u64().unwrap_or(10);
                    let work = async {
                        for i in 0..pieces {
                            tokio::time::sleep(Duration::from_millis(ms)).await;
                            if let Some(tx) = &self.tx {
                                let _ = tx.send(EngineEvent::StreamDelta {
                                    conversation: session.clone(),
                                    text: format!("{i} "),
                                });
                            }
                        }
                        Ok(serde_json::json!({ "session": session }))
                    };
                    let limited = async {
                        match timeout {
                            Some(limit) => {
                                tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
                                    Err(crate::engine::timeout_error(method, limit))
                                })
                            }
                            None => work.await,
                        }
                    };
                    let result = tokio::select! {
                        r = limited => r,
                        () = self.abort.notified() => Err(EngineError::new(
                            crate::engine::ErrorCode::Cancelled,
                            "the turn was aborted",
                        )),
                    };
                    self.running.lock().unwrap().retain(|s| s != &session);
                    result
                }
                _ => Err(EngineError::invalid_request("unknown method")),
            }
        }

        fn subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<EngineEvent>> {
            self.tx.as_ref().map(|tx| tx.subscribe())
        }
    }

    async fn run_turns(turns: &Turns, input: &str, options: Options) -> (Summary, Vec<Value>) {
        let mut out = Vec::new();
        let summary = run(turns, input.as_bytes(), &mut out, options)
            .await
            .unwrap();
        let lines = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).expect("every output line is whole JSON"))
            .collect();
        (summary, lines)
    }

    /// `id:ok` for responses, `id:event` for event lines.
    fn shape(lines: &[Value]) -> Vec<String> {
        lines
            .iter()
            .map(|l| match l.get("event") {
                Some(e) => format!("{}:{}", l["id"], e.as_str().unwrap()),
                None => format!("{}:ok={}", l["id"], l["ok"]),
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn later_lines_are_answered_while_a_turn_streams_unless_order_is_strict() {
        let input = "{\"id\":1,\"method\":\"chat.send\",\"params\":{\"session\":\"s\",\"pieces\":3,\"ms\":100},\"events\":false}\n\
                     {\"id\":2,\"method\":\"echo\"}\n";
        let (summary, lines) = run_turns(&Turns::new(), input, Options::default()).await;
        assert_eq!(
            summary,
            Summary {
                requests: 2,
                failed: 0
            }
        );
        assert_eq!(shape(&lines), vec!["2:ok=true", "1:ok=true"]);
        let strict = Options { strict_order: true };
        let (_, lines) = run_turns(&Turns::new(), input, strict).await;
        assert_eq!(shape(&lines), vec!["1:ok=true", "2:ok=true"]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_abort_read_during_a_turn_stops_it_and_the_end_of_input_waits_for_turns() {
        // The turn would stream for 100 s; the abort on the next line stops it at once.
        let input = "{\"id\":\"t\",\"method\":\"chat.send\",\"params\":{\"session\":\"s\",\"pieces\":1000,\"ms\":100}}\n\
                     {\"id\":\"a\",\"method\":\"chat.abort\",\"params\":{\"session\":\"s\"}}\n\
                     {\"id\":\"late\",\"method\":\"chat.abort\",\"params\":{\"session\":\"s\"}}\n";
        let started = tokio::time::Instant::now();
        let (summary, lines) = run_turns(&Turns::new(), input, Options::default()).await;
        assert!(started.elapsed() < Duration::from_millis(50));
        assert_eq!(summary.failed, 1, "{lines:?}");
        let t = lines
            .iter()
            .find(|l| l["id"] == "t" && l.get("ok").is_some())
            .unwrap();
        assert_eq!(t["error"]["code"], "CANCELLED");
        assert!(lines.iter().any(|l| l["id"] == "late" && l["ok"] == true));

        // The input ends while a turn streams: the turn runs to its end and is answered.
        let input =
            "{\"id\":\"t\",\"method\":\"chat.send\",\"params\":{\"pieces\":3,\"ms\":100}}\n";
        let (summary, lines) = run_turns(&Turns::new(), input, Options::default()).await;
        assert_eq!(
            summary,
            Summary {
                requests: 1,
                failed: 0
            }
        );
        assert_eq!(
            shape(&lines),
            vec![
                "\"t\":chat.delta",
                "\"t\":chat.delta",
                "\"t\":chat.delta",
                "\"t\":ok=true"
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn turns_of_one_session_run_in_order_and_events_go_to_their_own_request() {
        let turns = Turns::new();
        let input = "{\"id\":1,\"method\":\"chat.send\",\"params\":{\"session\":\"x\",\"pieces\":3,\"ms\":30}}\n\
                     {\"id\":2,\"method\":\"chat.send\",\"params\":{\"pieces\":3,\"ms\":20}}\n\
                     {\"id\":3,\"method\":\"chat.send\",\"params\":{\"session\":\"x\",\"pieces\":2,\"ms\":5}}\n\
                     {\"id\":4,\"method\":\"chat.send\",\"params\":{\"pieces\":2,\"ms\":5}}\n\
                     {\"id\":5,\"method\":\"chat.send\",\"params\":{\"session\":\"y\",\"pieces\":4,\"ms\":7},\"timeoutMs\":20}\n";
        let (summary, lines) = run_turns(&turns, input, Options::default()).await;
        assert_eq!(
            summary,
            Summary {
                requests: 5,
                failed: 1
            },
            "{lines:?}"
        );
        assert_eq!(turns.overlaps.load(std::sync::atomic::Ordering::SeqCst), 0);
        let session_of = |id: i64| -> String {
            let end = lines
                .iter()
                .find(|l| l["id"] == id && l.get("ok").is_some())
                .unwrap();
            end["payload"]["session"]
                .as_str()
                .unwrap_or("y")
                .to_string()
        };
        for id in 1..=5 {
            let session = session_of(id);
            let events: Vec<&Value> = lines
                .iter()
                .filter(|l| l["id"] == id && l.get("event").is_some())
                .collect();
            assert!(
                events
                    .iter()
                    .all(|e| e["payload"]["session"] == session.as_str()),
                "request {id}: {events:?}"
            );
            let want = [3, 3, 2, 2, 2][id as usize - 1];
            assert_eq!(events.len(), want, "request {id}: {lines:?}");
        }
        // Request 3 waited for request 1 (same session), 4 for 2 (both without one); the
        // turn of session y ran beside them and its timeout counted from its start.
        let end = |id: i64| {
            lines
                .iter()
                .position(|l| l["id"] == id && l.get("ok").is_some())
                .unwrap()
        };
        assert!(end(1) < end(3) && end(2) < end(4));
        assert!(end(5) < end(1), "{lines:?}");
        assert_eq!(lines[end(5)]["error"]["code"], "TIMEOUT");
    }

    #[tokio::test]
    async fn a_reader_that_falls_behind_is_told_how_many_events_it_missed() {
        let events: Vec<EngineEvent> = (0..40).map(|i| delta(&format!("{i} "))).collect();
        let lines = run_streamer(8, events, "{\"id\":1,\"method\":\"chat.send\"}\n").await;
        assert_eq!(lines[0]["event"], "events.skipped");
        assert_eq!(lines[0]["payload"]["events"], 32);
        let deltas: Vec<&str> = lines[1..]
            .iter()
            .filter_map(|l| l["payload"]["text"].as_str())
            .collect();
        assert_eq!(deltas.len(), 8);
        assert_eq!(deltas[0], "32 ");
        assert_eq!(lines.last().unwrap()["ok"], true);
    }
}
