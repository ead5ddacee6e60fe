//! A fake model provider on 127.0.0.1:0 speaking the OpenAI (`/v1/chat/completions`,
//! `/v1/models`), Anthropic (`/v1/messages`, `/v1/models`) and Ollama (`/api/chat`,
//! `/api/tags`) wire formats, with scripted faults. Each request takes the next step of the
//! script; an empty script answers normally.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
pub enum Fault {
    /// A normal streamed answer with this text.
    Reply(String),
    /// A tool call (name, raw argument text), then the turn ends with finish `tool_calls`.
    ToolCall(String, String),
    /// A tool call whose reply stops at the token limit: finish `length` (OpenAI),
    /// stop_reason `max_tokens` (Anthropic), done_reason `length` (Ollama).
    CutToolCall(String, String),
    /// 429 with `Retry-After: secs`.
    RateLimit(u64),
    /// 429 with this `Retry-After` value as it is (an HTTP date, say).
    RateLimitHeader(String),
    Status(u16),
    /// Headers only after this long.
    SlowFirstByte(Duration),
    /// Two text chunks, then the body ends without a finish.
    Cut,
    /// A data line that is not JSON.
    Malformed,
    /// Text chunks every 20 ms, forever.
    Endless,
    /// Headers, then silence (no chunk at all) forever.
    Silent,
    /// One text chunk, then silence forever: a stream that stalls mid-way.
    Stall,
    /// This many one-token text frames at this many tokens per second, then a normal end:
    /// a stream faster than any reader of it.
    Flood {
        tokens: usize,
        per_sec: u64,
    },
    /// A streamed answer sent exactly in these pieces: first `reasoning` (OpenAI's
    /// `reasoning_content`, Anthropic's thinking deltas, Ollama's `thinking`), then `text`.
    Pieces {
        reasoning: Vec<String>,
        text: Vec<String>,
    },
    /// This status with this error message in the body.
    StatusBody(u16, String),
    /// 404 model not found.
    WrongModel,
    /// 401.
    AuthFailure,
    /// 400 context length exceeded.
    ContextOverflow,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Wire {
    OpenAi,
    Anthropic,
    Ollama,
}

#[derive(Default)]
pub struct Inner {
    script: Mutex<VecDeque<Fault>>,
    /// The bodies of chat requests, in order.
    pub requests: Mutex<Vec<Value>>,
    /// Expected key; requests without it get 401.
    key: Mutex<Option<String>>,
    models: Mutex<Vec<String>>,
}

#[derive(Clone)]
pub struct FakeProvider {
    pub addr: SocketAddr,
    pub inner: Arc<Inner>,
}

impl FakeProvider {
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        *inner.models.lock().unwrap() = vec!["fake-model".into(), "fake-large".into()];
        let app = Router::new()
            .route("/v1/chat/completions", post(openai))
            .route("/v1/messages", post(anthropic))
            .route("/api/chat", post(ollama))
            .route("/v1/models", get(models_openai))
            .route("/api/tags", get(models_ollama))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, inner }
    }

    pub fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        self.inner.script.lock().unwrap().extend(faults);
    }

    pub fn require_key(&self, key: &str) {
        *self.inner.key.lock().unwrap() = Some(key.to_string());
    }

    pub fn requests(&self) -> Vec<Value> {
        self.inner.requests.lock().unwrap().clone()
    }

    pub fn chat_calls(&self) -> usize {
        self.inner.requests.lock().unwrap().len()
    }

    /// `base_url` for an OpenAI-compatible provider.
    pub fn openai_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// `base_url` for Anthropic and Ollama.
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn authorized(inner: &Inner, headers: &HeaderMap) -> bool {
    let Some(key) = inner.key.lock().unwrap().clone() else {
        return true;
    };
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {key}"));
    let x_api = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == key);
    bearer || x_api
}

async fn models_openai(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    if !authorized(&inner, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            "{\"error\":{\"message\":\"bad key\"}}",
        )
            .into_response();
    }
    let models = inner.models.lock().unwrap().clone();
    axum::Json(json!({"data": models.iter().map(|m| json!({"id": m})).collect::<Vec<_>>()}))
        .into_response()
}

async fn models_ollama(State(inner): State<Arc<Inner>>) -> Response {
    let models = inner.models.lock().unwrap().clone();
    axum::Json(json!({"models": models.iter().map(|m| json!({"name": m})).collect::<Vec<_>>()}))
        .into_response()
}

async fn openai(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    handle(inner, headers, body, Wire::OpenAi).await
}

async fn anthropic(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    handle(inner, headers, body, Wire::Anthropic).await
}

async fn ollama(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    handle(inner, headers, body, Wire::Ollama).await
}

fn error_body(status: u16, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap();
    (
        code,
        json!({"error": {"message": message, "type": "fake"}}).to_string(),
    )
        .into_response()
}

async fn handle(inner: Arc<Inner>, headers: HeaderMap, body: Bytes, wire: Wire) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    inner.requests.lock().unwrap().push(request.clone());
    if !authorized(&inner, &headers) {
        return error_body(401, "invalid api key");
    }
    let fault = inner
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| Fault::Reply("hello from fake".into()));
    let model = request["model"]
        .as_str()
        .unwrap_or("fake-model")
        .to_string();
    let chunks: Vec<String> = match fault {
        Fault::RateLimit(secs) => {
            let mut r = error_body(429, "rate limited");
            r.headers_mut()
                .insert("retry-after", secs.to_string().parse().unwrap());
            return r;
        }
        Fault::RateLimitHeader(value) => {
            let mut r = error_body(429, "rate limited");
            r.headers_mut()
                .insert("retry-after", value.parse().unwrap());
            return r;
        }
        Fault::Status(code) => return error_body(code, "scripted failure"),
        Fault::StatusBody(code, message) => return error_body(code, &message),
        Fault::Pieces { reasoning, text } => {
            // An empty reply is the opening frames (Anthropic's two) and the end.
            let mut frames = reply_chunks(wire, "", true);
            let at = if wire == Wire::Anthropic { 2 } else { 0 };
            let pieces: Vec<String> = reasoning
                .iter()
                .map(|r| reasoning_frame(wire, r))
                .chain(text.iter().map(|t| text_frame(wire, t)))
                .collect();
            frames.splice(at..at, pieces);
            frames
        }
        Fault::WrongModel => return error_body(404, &format!("model '{model}' not found")),
        Fault::AuthFailure => return error_body(401, "invalid api key"),
        Fault::ContextOverflow => {
            return error_body(400, "This model's maximum context length is 8192 tokens");
        }
        Fault::SlowFirstByte(d) => {
            tokio::time::sleep(d).await;
            reply_chunks(wire, "slow hello", true)
        }
        Fault::Reply(text) => reply_chunks(wire, &text, true),
        Fault::ToolCall(name, args) => tool_chunks(wire, &name, &args, false),
        Fault::CutToolCall(name, args) => tool_chunks(wire, &name, &args, true),
        Fault::Cut => reply_chunks(wire, "partial answer that never", false),
        Fault::Malformed => vec![frame(wire, None, "{\"choices\": [ this is not json")],
        Fault::Endless => return streaming(wire, Endless::Text),
        Fault::Flood { tokens, per_sec } => return flood(wire, tokens, per_sec),
        Fault::Silent => return streaming(wire, Endless::Silent),
        Fault::Stall => return streaming(wire, Endless::Stall),
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(16);
    tokio::spawn(async move {
        for c in chunks {
            if tx.send(Ok(Bytes::from(c))).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    body_response(wire, rx)
}

enum Endless {
    Text,
    Silent,
    Stall,
}

fn streaming(wire: Wire, kind: Endless) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(4);
    tokio::spawn(async move {
        if let Endless::Text | Endless::Stall = kind {
            for c in reply_chunks(wire, "", false).into_iter().take(1) {
                let _ = tx.send(Ok(Bytes::from(c))).await;
            }
        }
        if let Endless::Stall = kind {
            let _ = tx.send(Ok(Bytes::from(text_frame(wire, "stalled ")))).await;
        }
        loop {
            let chunk = match kind {
                Endless::Text => text_frame(wire, "more "),
                Endless::Silent | Endless::Stall => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    continue;
                }
            };
            if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    body_response(wire, rx)
}

/// The token that `Fault::Flood` sends `i`-th; `flood_text` is all of them joined.
pub fn flood_token(i: usize) -> String {
    format!("t{i} ")
}

pub fn flood_text(tokens: usize) -> String {
    (0..tokens).map(flood_token).collect()
}

fn flood(wire: Wire, tokens: usize, per_sec: u64) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    tokio::spawn(async move {
        // An empty text has no text frames: the opening frames, then the closing ones.
        let mut frames = reply_chunks(wire, "", false);
        let head = frames.len();
        frames.extend((0..tokens).map(|i| text_frame(wire, &flood_token(i))));
        frames.extend(reply_chunks(wire, "", true).into_iter().skip(head));
        // Each write carries the frames due by now, so the rate holds whatever the timer's
        // granularity.
        let started = std::time::Instant::now();
        let mut sent = 0;
        while sent < frames.len() {
            let due = head + (started.elapsed().as_micros() as u64 * per_sec / 1_000_000) as usize;
            let due = if due >= head + tokens {
                frames.len()
            } else {
                due.max(sent + 1)
            };
            let chunk: String = frames[sent..due].concat();
            if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                return;
            }
            sent = due;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    body_response(wire, rx)
}

fn body_response(wire: Wire, rx: mpsc::Receiver<Result<Bytes, Infallible>>) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let content_type = if wire == Wire::Ollama {
        "application/x-ndjson"
    } else {
        "text/event-stream"
    };
    Response::builder()
        .header("content-type", content_type)
        .body(Body::from_stream(stream))
        .unwrap()
}

fn frame(wire: Wire, event: Option<&str>, data: &str) -> String {
    match (wire, event) {
        (Wire::Ollama, _) => format!("{data}\n"),
        (_, Some(e)) => format!("event: {e}\ndata: {data}\n\n"),
        (_, None) => format!("data: {data}\n\n"),
    }
}

fn text_frame(wire: Wire, text: &str) -> String {
    match wire {
        Wire::OpenAi => frame(wire, None, &json!({"choices": [{"index": 0, "delta": {"content": text}}]}).to_string()),
        Wire::Anthropic => frame(
            wire,
            Some("content_block_delta"),
            &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}).to_string(),
        ),
        Wire::Ollama => frame(wire, None, &json!({"message": {"role": "assistant", "content": text}, "done": false}).to_string()),
    }
}

fn reasoning_frame(wire: Wire, text: &str) -> String {
    match wire {
        Wire::OpenAi => frame(wire, None, &json!({"choices": [{"index": 0, "delta": {"reasoning_content": text}}]}).to_string()),
        Wire::Anthropic => frame(
            wire,
            Some("content_block_delta"),
            &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": text}}).to_string(),
        ),
        Wire::Ollama => frame(wire, None, &json!({"message": {"role": "assistant", "content": "", "thinking": text}, "done": false}).to_string()),
    }
}

/// A streamed reply split in three; `finish` false leaves the end off (a cut stream).
fn reply_chunks(wire: Wire, text: &str, finish: bool) -> Vec<String> {
    let mut out = Vec::new();
    if wire == Wire::Anthropic {
        out.push(frame(
            wire,
            Some("message_start"),
            &json!({"type": "message_start", "message": {"usage": {"input_tokens": 11}}})
                .to_string(),
        ));
        out.push(frame(wire, Some("content_block_start"), &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}).to_string()));
    }
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    for piece in words.chunks(words.len().div_ceil(3).max(1)) {
        out.push(text_frame(wire, &piece.concat()));
    }
    if !finish {
        return out;
    }
    match wire {
        Wire::OpenAi => {
            out.push(frame(
                wire,
                None,
                &json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                    .to_string(),
            ));
            out.push(frame(
                wire,
                None,
                &json!({"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 3}})
                    .to_string(),
            ));
            out.push(frame(wire, None, "[DONE]"));
        }
        Wire::Anthropic => {
            out.push(frame(wire, Some("message_delta"), &json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}}).to_string()));
            out.push(frame(
                wire,
                Some("message_stop"),
                &json!({"type": "message_stop"}).to_string(),
            ));
        }
        Wire::Ollama => {
            out.push(frame(wire, None, &json!({"message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop", "prompt_eval_count": 11, "eval_count": 3}).to_string()));
        }
    }
    out
}

/// A streamed tool call; `cut` ends the reply at the token limit instead.
fn tool_chunks(wire: Wire, name: &str, args: &str, cut: bool) -> Vec<String> {
    let (openai_finish, anthropic_stop, ollama_done) = if cut {
        ("length", "max_tokens", "length")
    } else {
        ("tool_calls", "tool_use", "stop")
    };
    match wire {
        Wire::OpenAi => {
            // The arguments arrive in two pieces, as real servers send them.
            let (a, b) = args.split_at(args.len() / 2);
            vec![
                frame(wire, None, &json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": name, "arguments": a}}]}}]}).to_string()),
                frame(wire, None, &json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": b}}]}}]}).to_string()),
                frame(wire, None, &json!({"choices": [{"index": 0, "delta": {}, "finish_reason": openai_finish}]}).to_string()),
                frame(wire, None, "[DONE]"),
            ]
        }
        Wire::Anthropic => vec![
            frame(wire, Some("message_start"), &json!({"type": "message_start", "message": {"usage": {"input_tokens": 5}}}).to_string()),
            frame(wire, Some("content_block_start"), &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_1", "name": name, "input": {}}}).to_string()),
            frame(wire, Some("content_block_delta"), &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": args}}).to_string()),
            frame(wire, Some("message_delta"), &json!({"type": "message_delta", "delta": {"stop_reason": anthropic_stop}, "usage": {"output_tokens": 2}}).to_string()),
            frame(wire, Some("message_stop"), &json!({"type": "message_stop"}).to_string()),
        ],
        Wire::Ollama => {
            // Ollama sends parsed arguments; a cut call still arrives as an object.
            let parsed: Value = serde_json::from_str(args).unwrap_or(json!({}));
            vec![
                frame(wire, None, &json!({"message": {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": name, "arguments": parsed}}]}, "done": false}).to_string()),
                frame(wire, None, &json!({"message": {"role": "assistant", "content": ""}, "done": true, "done_reason": ollama_done}).to_string()),
            ]
        }
    }
}
