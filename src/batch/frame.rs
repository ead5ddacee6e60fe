//! `--batch` wire shapes: request lines read and parsed, response and event frames.

use std::io;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::MAX_LINE_BYTES;
use crate::engine::{EngineError, EngineEvent};

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
pub(super) fn stream_event(event: EngineEvent) -> Option<(&'static str, Value)> {
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
        // The engine event's own fields (src/engine/event.rs), without its `type`.
        EngineEvent::Progress {
            task,
            done,
            total,
            message,
        } => {
            let mut payload = json!({ "task": task, "done": done, "message": message });
            if let Some(total) = total {
                payload["total"] = json!(total);
            }
            Some(("progress", payload))
        }
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

pub(super) enum Line {
    Text(String),
    Oversized(usize),
    NotUtf8,
}

/// Read one line without ever holding more than [`MAX_LINE_BYTES`] of it.
pub(super) async fn read_line<R: AsyncRead + Unpin>(
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
pub(super) enum Parsed {
    Run(Id, Call),
    Failed(Id, EngineError),
}

pub(super) struct Call {
    pub(super) method: String,
    pub(super) params: Value,
    pub(super) timeout: Option<Duration>,
    pub(super) events: bool,
}

/// Turn one line into a request. `None` for blank lines, which are not requests.
pub(super) fn parse_line(number: usize, line: Line) -> Option<Parsed> {
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
