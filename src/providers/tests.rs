//! Every network provider against a server on 127.0.0.1 that answers with a given content
//! type and body: a whole JSON reply stands in for a stream, and a body that is neither is a
//! clear `format` error.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

use super::anthropic::Anthropic;
use super::ollama::Ollama;
use super::openai::OpenAi;
use super::{
    ChatMessage, ChatRequest, FailureClass, FinishReason, HttpTarget, Provider, ProviderError,
    Role, StreamEvent, Usage,
};

/// What the server answers every POST with: a content type (none if `None`) and a body.
type Answer = Arc<Mutex<(Option<String>, String)>>;

async fn answer(State(answer): State<Answer>) -> Response {
    let (content_type, body) = answer.lock().unwrap().clone();
    match content_type {
        Some(ct) => ([(CONTENT_TYPE, ct)], body).into_response(),
        // axum gives a String body `text/plain`; a raw body gets no content type.
        None => axum::body::Body::from(body).into_response(),
    }
}

async fn serve() -> (String, Answer) {
    let state: Answer = Arc::default();
    let app = axum::Router::new()
        .fallback(answer)
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), state)
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    OpenAi,
    Anthropic,
    Ollama,
}

const KINDS: [Kind; 3] = [Kind::OpenAi, Kind::Anthropic, Kind::Ollama];

fn provider(kind: Kind, base: &str, streaming: bool) -> Box<dyn Provider> {
    let http = |url: String| {
        HttpTarget::new(
            "p",
            &url,
            None,
            "m".into(),
            streaming,
            Duration::from_secs(2),
        )
        .unwrap()
    };
    match kind {
        Kind::OpenAi => Box::new(OpenAi::new(http(format!("{base}/v1")))),
        Kind::Anthropic => Box::new(Anthropic::new(http(base.to_string()), 100)),
        Kind::Ollama => Box::new(Ollama::new(http(base.to_string()))),
    }
}

/// A reply folded from its events: text, reasoning, tool calls (id, name, arguments) in
/// order, usage, finish. The same reply must fold the same however it was framed.
#[derive(Debug, Default, PartialEq)]
struct Folded {
    text: String,
    tools: Vec<(Option<String>, Option<String>, String)>,
    usage: Usage,
    finish: Option<FinishReason>,
}

async fn ask(provider: &dyn Provider) -> Result<Folded, ProviderError> {
    let request = ChatRequest {
        messages: vec![ChatMessage::new(Role::User, "hi")],
        ..Default::default()
    };
    let mut stream = provider.chat(&request).await?;
    let mut out = Folded::default();
    while let Some(event) = stream.next_event().await? {
        match event {
            StreamEvent::Text(t) => out.text.push_str(&t),
            StreamEvent::Reasoning(_) => {}
            StreamEvent::ToolCall {
                index,
                id,
                name,
                arguments,
            } => {
                if out.tools.len() <= index {
                    out.tools.resize(index + 1, (None, None, String::new()));
                }
                let slot = &mut out.tools[index];
                slot.0 = id.or(slot.0.take());
                slot.1 = name.or(slot.1.take());
                slot.2.push_str(&arguments);
            }
            StreamEvent::Usage(u) => out.usage = u,
            StreamEvent::Finish(f) => out.finish = Some(f),
        }
    }
    Ok(out)
}

const SSE: &str = "text/event-stream";
const NDJSON: &str = "application/x-ndjson";

/// The stream's content type and body, and the same reply as one JSON document.
fn text_reply(kind: Kind) -> (&'static str, String, String) {
    match kind {
        Kind::OpenAi => (
            SSE,
            [
                r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"}}]}"#,
                r#"{"choices":[{"index":0,"delta":{"content":" there"}}]}"#,
                r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
                r#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}"#,
                "[DONE]",
            ]
            .iter()
            .map(|d| format!("data: {d}\n\n"))
            .collect(),
            r#"{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":3}}"#.into(),
        ),
        Kind::Anthropic => (
            SSE,
            [
                ("message_start", r#"{"type":"message_start","message":{"usage":{"input_tokens":7}}}"#),
                ("content_block_start", r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#),
                ("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#),
                ("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" there"}}"#),
                ("content_block_stop", r#"{"type":"content_block_stop","index":0}"#),
                ("message_delta", r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}"#),
                ("message_stop", r#"{"type":"message_stop"}"#),
            ]
            .iter()
            .map(|(e, d)| format!("event: {e}\ndata: {d}\n\n"))
            .collect(),
            r#"{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"Hello there"}],"stop_reason":"end_turn","usage":{"input_tokens":7,"output_tokens":3}}"#.into(),
        ),
        Kind::Ollama => (
            NDJSON,
            [
                r#"{"message":{"role":"assistant","content":"Hello"},"done":false}"#,
                r#"{"message":{"role":"assistant","content":" there"},"done":false}"#,
                r#"{"message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":7,"eval_count":3}"#,
            ]
            .iter()
            .map(|l| format!("{l}\n"))
            .collect(),
            // Pretty-printed: a whole document is not one line.
            "{\n  \"message\": {\"role\": \"assistant\", \"content\": \"Hello there\"},\n  \"done\": true,\n  \"done_reason\": \"stop\",\n  \"prompt_eval_count\": 7,\n  \"eval_count\": 3\n}\n".into(),
        ),
    }
}

fn tool_reply(kind: Kind) -> (&'static str, String, String) {
    match kind {
        Kind::OpenAi => (
            SSE,
            [
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"lookup","arguments":"{\"q\":"}}]}}]}"#,
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"x\"}"}}]}}]}"#,
                r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
                "[DONE]",
            ]
            .iter()
            .map(|d| format!("data: {d}\n\n"))
            .collect(),
            r#"{"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"lookup","arguments":"{\"q\":\"x\"}"}}]},"finish_reason":"tool_calls"}]}"#.into(),
        ),
        Kind::Anthropic => (
            SSE,
            [
                ("message_start", r#"{"type":"message_start","message":{"usage":{"input_tokens":5}}}"#),
                ("content_block_start", r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_1","name":"lookup","input":{}}}"#),
                ("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"q\":"}}"#),
                ("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"\"x\"}"}}"#),
                ("message_delta", r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":2}}"#),
                ("message_stop", r#"{"type":"message_stop"}"#),
            ]
            .iter()
            .map(|(e, d)| format!("event: {e}\ndata: {d}\n\n"))
            .collect(),
            r#"{"type":"message","role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"lookup","input":{"q":"x"}}],"stop_reason":"tool_use","usage":{"input_tokens":5,"output_tokens":2}}"#.into(),
        ),
        Kind::Ollama => (
            NDJSON,
            [
                r#"{"message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"lookup","arguments":{"q":"x"}}}]},"done":false}"#,
                r#"{"message":{"role":"assistant","content":""},"done":true,"done_reason":"stop"}"#,
            ]
            .iter()
            .map(|l| format!("{l}\n"))
            .collect(),
            r#"{"message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"lookup","arguments":{"q":"x"}}}]},"done":true,"done_reason":"stop"}"#.into(),
        ),
    }
}

#[tokio::test]
async fn a_whole_json_reply_to_a_streaming_request_gives_what_the_stream_would() {
    let (base, answer) = serve().await;
    for kind in KINDS {
        let p = provider(kind, &base, true);
        for (stream_type, stream, whole) in [text_reply(kind), tool_reply(kind)] {
            *answer.lock().unwrap() = (Some(stream_type.into()), stream);
            let streamed = ask(p.as_ref()).await.unwrap();
            *answer.lock().unwrap() = (Some("application/json; charset=utf-8".into()), whole);
            let replayed = ask(p.as_ref())
                .await
                .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            assert_eq!(replayed, streamed, "{kind:?}");
        }
        // And the text reply is the one written above, so the comparison compares something.
        let (_, stream, _) = text_reply(kind);
        *answer.lock().unwrap() = (Some(text_reply(kind).0.into()), stream);
        let folded = ask(p.as_ref()).await.unwrap();
        assert_eq!(folded.text, "Hello there", "{kind:?}");
        assert_eq!(folded.finish, Some(FinishReason::Stop), "{kind:?}");
        assert_eq!(
            folded.usage,
            Usage {
                input_tokens: 7,
                output_tokens: 3
            },
            "{kind:?}"
        );
    }
}

#[tokio::test]
async fn a_reply_of_another_content_type_is_a_format_error_that_names_it() {
    let (base, answer) = serve().await;
    for kind in KINDS {
        for streaming in [true, false] {
            *answer.lock().unwrap() = (
                Some("text/html; charset=utf-8".into()),
                "<html>\n<body>Sign in to the proxy</body></html>".into(),
            );
            let e = ask(provider(kind, &base, streaming).as_ref())
                .await
                .unwrap_err();
            assert_eq!(e.class, FailureClass::Format, "{kind:?}: {e}");
            assert!(
                e.message.contains("content type text/html")
                    && e.message.contains("application/json")
                    && e.message.contains("Sign in to the proxy")
                    && e.message.contains("provider p"),
                "{kind:?}: {e}"
            );
        }
    }
}

#[tokio::test]
async fn the_content_type_decides_the_framing_and_none_means_what_was_asked() {
    let (base, answer) = serve().await;
    for kind in KINDS {
        let (stream_type, stream, whole) = text_reply(kind);
        // A stream answering a request that asked for a whole reply.
        *answer.lock().unwrap() = (Some(stream_type.into()), stream.clone());
        let folded = ask(provider(kind, &base, false).as_ref()).await.unwrap();
        assert_eq!(folded.text, "Hello there", "{kind:?}");
        // No content type: read as what was asked for.
        *answer.lock().unwrap() = (None, stream);
        let folded = ask(provider(kind, &base, true).as_ref()).await.unwrap();
        assert_eq!(folded.text, "Hello there", "{kind:?}");
        *answer.lock().unwrap() = (None, whole);
        let folded = ask(provider(kind, &base, false).as_ref()).await.unwrap();
        assert_eq!(folded.text, "Hello there", "{kind:?}");
    }
}

#[tokio::test]
async fn a_whole_error_object_is_classified_like_its_stream_event() {
    let (base, answer) = serve().await;
    *answer.lock().unwrap() = (
        Some("application/json".into()),
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#.into(),
    );
    let e = ask(provider(Kind::Anthropic, &base, true).as_ref())
        .await
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Overloaded, "{e}");
    *answer.lock().unwrap() = (
        Some("application/json".into()),
        r#"{"error":{"type":"rate_limit_error","message":"slow down"}}"#.into(),
    );
    let e = ask(provider(Kind::OpenAi, &base, true).as_ref())
        .await
        .unwrap_err();
    assert_eq!(e.class, FailureClass::RateLimit, "{e}");
}
