//! `--batch`: JSON lines in, JSON lines out.
//!
//! One response frame per request, in request order. A malformed or oversized line gets an
//! error frame naming its line number and the run goes on. Requests run one at a time, so a
//! script can rely on the effects of one request being visible to the next. While a
//! streaming method runs (`chat.send`), its progress goes out first as event lines
//! (`{"id", "event", "payload"}`, no `ok` key), then its response frame.

use std::future::Future;
use std::io;
use std::time::Duration;

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

async fn write_line<W: AsyncWrite + Unpin>(
    writer: &mut W,
    out: &mut Vec<u8>,
    frame: &impl Serialize,
) -> io::Result<()> {
    out.clear();
    serde_json::to_writer(&mut *out, frame).map_err(io::Error::other)?;
    out.push(b'\n');
    writer.write_all(out).await
}

/// Write one engine event as an event line, when it is one a streaming request reports.
/// A reader that fell behind is told how many events it missed.
async fn write_event<W: AsyncWrite + Unpin>(
    writer: &mut W,
    out: &mut Vec<u8>,
    id: &Id,
    event: Result<EngineEvent, tokio::sync::broadcast::error::RecvError>,
) -> io::Result<()> {
    use tokio::sync::broadcast::error::RecvError;
    let (event, payload) = match event {
        Ok(event) => match stream_event(event) {
            Some(pair) => pair,
            None => return Ok(()),
        },
        Err(RecvError::Lagged(missed)) => {
            ("events.skipped", serde_json::json!({ "events": missed }))
        }
        Err(RecvError::Closed) => return Ok(()),
    };
    write_line(writer, out, &EventFrame { id, event, payload }).await?;
    // Progress is worth nothing late: every event line goes out at once.
    writer.flush().await
}

/// Run one request; a streaming one writes its event lines to `writer` as they happen.
async fn run_request<D: Dispatch, W: AsyncWrite + Unpin>(
    dispatch: &D,
    writer: &mut W,
    out: &mut Vec<u8>,
    id: &Id,
    call: Call,
) -> io::Result<Result<Value, EngineError>> {
    let Call {
        method,
        params,
        timeout,
        events,
    } = call;
    let mut events = if events && STREAMING_METHODS.contains(&method.as_str()) {
        dispatch.subscribe()
    } else {
        None
    };
    let call = dispatch.dispatch(&method, params, timeout);
    let Some(rx) = events.as_mut() else {
        return Ok(call.await);
    };
    tokio::pin!(call);
    let result = loop {
        tokio::select! {
            // Events first: what was already emitted goes out before the response.
            biased;
            event = rx.recv() => {
                if matches!(event, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                    break (&mut call).await;
                }
                write_event(writer, out, id, event).await?;
            }
            result = &mut call => break result,
        }
    };
    // Anything emitted in the call's last moments, still in the channel.
    loop {
        match rx.try_recv() {
            Ok(event) => write_event(writer, out, id, Ok(event)).await?,
            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => {
                write_event(
                    writer,
                    out,
                    id,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)),
                )
                .await?
            }
            Err(_) => break,
        }
    }
    Ok(result)
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

/// Run a whole batch. Only I/O errors on the streams themselves end it early.
pub async fn run<D, R, W>(dispatch: &D, input: R, output: W) -> io::Result<Summary>
where
    D: Dispatch,
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = BufReader::with_capacity(64 * 1024, input);
    let mut writer = tokio::io::BufWriter::with_capacity(64 * 1024, output);
    let mut summary = Summary::default();
    let mut buf = Vec::new();
    let mut out = Vec::with_capacity(256);
    let mut number = 0usize;
    while let Some(line) = read_line(&mut reader, &mut buf).await? {
        number += 1;
        let (id, result) = match parse_line(number, line) {
            None => continue,
            Some(Parsed::Failed(id, error)) => (id, Err(error)),
            Some(Parsed::Run(id, call)) => {
                let result = run_request(dispatch, &mut writer, &mut out, &id, call).await?;
                (id, result)
            }
        };
        summary.requests += 1;
        let frame = match result {
            Ok(payload) => Frame {
                id: &id,
                ok: true,
                payload: Some(payload),
                error: None,
            },
            Err(error) => {
                summary.failed += 1;
                Frame {
                    id: &id,
                    ok: false,
                    payload: None,
                    error: Some(error),
                }
            }
        };
        write_line(&mut writer, &mut out, &frame).await?;
        // An interactive caller waits for each answer; a piped file does not need a flush
        // per line. Flush whenever no further input is already buffered.
        if reader.buffer().is_empty() {
            writer.flush().await?;
        }
    }
    writer.flush().await?;
    Ok(summary)
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
        let summary = run(&Fake, input, &mut out).await.unwrap();
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
        run(&Fake, input.as_bytes(), &mut out).await.unwrap();
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
        run(&Streamer { tx, events }, input.as_bytes(), &mut out)
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
