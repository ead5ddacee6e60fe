//! Property tests of the providers' stream parsers: a valid SSE or NDJSON body, cut into
//! chunks anywhere (between `\r` and `\n`, inside a UTF-8 sequence, into empty chunks),
//! yields the events its structure says, whatever the cutting.

use openclaw_rs::config::ProviderKind;
use openclaw_rs::providers::sse::{Frame, SseReader};
use openclaw_rs::providers::{FinishReason, StreamEvent, Usage, stream_from_chunks};
use proptest::prelude::*;

/// Everything here reads from memory: one poll finishes it.
fn ready<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("a body in memory waited"),
    }
}

/// `body` cut at `cuts` (positions, any order, repeats make empty chunks).
fn cut(body: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut from = 0;
    for at in cuts {
        chunks.push(body[from..at].to_vec());
        from = at;
    }
    chunks.push(body[from..].to_vec());
    chunks
}

fn frames(chunks: Vec<Vec<u8>>) -> Vec<Frame> {
    let mut reader = SseReader::from_chunks(chunks);
    let mut out = Vec::new();
    while let Some(frame) = ready(reader.next_frame()).expect("reads") {
        out.push(frame);
    }
    out
}

/// One line of an SSE frame.
#[derive(Debug, Clone)]
enum Field {
    Comment(String),
    Event(String),
    /// `data:` then the value; `space`: with the one optional space after the colon.
    Data {
        value: String,
        space: bool,
    },
    /// A field the parser ignores (`id`, `retry`, anything else).
    Other(String, String),
}

/// Text without line ends: any characters, multi-byte ones included.
fn text() -> impl Strategy<Value = String> {
    "[^\r\n]{0,12}"
}

fn field() -> impl Strategy<Value = Field> {
    prop_oneof![
        text().prop_map(Field::Comment),
        text().prop_map(Field::Event),
        (text(), any::<bool>()).prop_map(|(value, space)| Field::Data { value, space }),
        (prop_oneof![Just("id"), Just("retry"), Just("x-y")], text())
            .prop_map(|(name, value)| Field::Other(name.to_string(), value)),
    ]
}

fn line_end() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("\n"), Just("\r\n"), Just("\r")]
}

/// A valid SSE body and the frames it holds, worked out from its structure.
fn sse_body() -> impl Strategy<Value = (Vec<u8>, Vec<Frame>)> {
    (
        proptest::collection::vec(proptest::collection::vec((field(), line_end()), 0..6), 0..6),
        line_end(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(frames, blank_end, bom, ends_with_blank)| {
            let mut body = String::new();
            if bom {
                body.push('\u{feff}');
            }
            let mut expected = Vec::new();
            let count = frames.len();
            for (i, fields) in frames.into_iter().enumerate() {
                let mut event = None;
                let mut data: Option<String> = None;
                for (field, end) in fields {
                    match field {
                        Field::Comment(text) => body.push_str(&format!(":{text}")),
                        Field::Event(name) => {
                            body.push_str(&format!("event: {name}"));
                            event = Some(name);
                        }
                        Field::Data { value, space } => {
                            body.push_str(if space { "data: " } else { "data:" });
                            body.push_str(&value);
                            // Without the space, a leading space of the value is the one
                            // the parser strips.
                            let value = if space {
                                value
                            } else {
                                value
                                    .strip_prefix(' ')
                                    .map_or(value.clone(), str::to_string)
                            };
                            match &mut data {
                                Some(d) => {
                                    d.push('\n');
                                    d.push_str(&value);
                                }
                                None => data = Some(value),
                            }
                        }
                        Field::Other(name, value) => body.push_str(&format!("{name}: {value}")),
                    }
                    body.push_str(end);
                }
                // The last frame may end with the body instead of a blank line.
                if i + 1 < count || ends_with_blank {
                    // After a line ended by `\r`, a `\n` would join that line end, not make
                    // a blank line.
                    let blank = if blank_end == "\n" && body.ends_with('\r') {
                        "\r\n"
                    } else {
                        blank_end
                    };
                    body.push_str(blank);
                }
                if let Some(data) = data {
                    expected.push(Frame { event, data });
                }
            }
            (body.into_bytes(), expected)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn sse_frames_survive_any_cutting(
        (body, expected) in sse_body(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        prop_assert_eq!(frames(vec![body.clone()]), expected.clone());
        prop_assert_eq!(frames(cut(&body, &cuts)), expected);
    }

    #[test]
    fn sse_every_two_way_cut_agrees((body, expected) in sse_body()) {
        for at in 0..=body.len() {
            prop_assert_eq!(frames(cut(&body, &[at])), expected.clone(), "cut at {}", at);
        }
    }
}

/// One Ollama NDJSON object: content, a line end, and blank lines after it.
#[derive(Debug, Clone)]
struct Piece {
    content: String,
    end: &'static str,
    blank: &'static str,
}

fn ndjson_body() -> impl Strategy<Value = (Vec<u8>, Vec<StreamEvent>)> {
    let piece = (
        "\\PC{0,10}",
        prop_oneof![Just("\n"), Just("\r\n")],
        prop_oneof![Just(""), Just("\n"), Just(" \r\n"), Just("\t\n")],
    )
        .prop_map(|(content, end, blank)| Piece {
            content,
            end,
            blank,
        });
    (
        proptest::collection::vec(piece, 0..8),
        0u64..1000,
        0u64..1000,
        prop_oneof![Just(""), Just("\n"), Just("\r\n")],
    )
        .prop_map(|(pieces, input, output, last_end)| {
            let mut body = String::new();
            let mut expected = Vec::new();
            for piece in pieces {
                let line = serde_json::json!({
                    "message": {"role": "assistant", "content": piece.content},
                    "done": false,
                });
                body.push_str(&line.to_string());
                body.push_str(piece.end);
                body.push_str(piece.blank);
                if !piece.content.is_empty() {
                    expected.push(StreamEvent::Text(piece.content));
                }
            }
            let done = serde_json::json!({
                "message": {"role": "assistant", "content": ""},
                "done": true,
                "done_reason": "stop",
                "prompt_eval_count": input,
                "eval_count": output,
            });
            body.push_str(&done.to_string());
            body.push_str(last_end);
            expected.push(StreamEvent::Usage(Usage {
                input_tokens: input,
                output_tokens: output,
            }));
            expected.push(StreamEvent::Finish(FinishReason::Stop));
            (body.into_bytes(), expected)
        })
}

fn events(kind: ProviderKind, chunks: Vec<Vec<u8>>) -> Result<Vec<StreamEvent>, String> {
    let mut stream = stream_from_chunks(kind, chunks).expect("a network provider");
    let mut out = Vec::new();
    loop {
        match ready(stream.next_event()) {
            Ok(Some(event)) => out.push(event),
            Ok(None) => return Ok(out),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// An OpenAI-style SSE reply: text deltas, a finish, usage, `[DONE]`.
fn openai_body() -> impl Strategy<Value = (Vec<u8>, Vec<StreamEvent>)> {
    (
        proptest::collection::vec("\\PC{1,10}", 0..8),
        line_end(),
    )
        .prop_map(|(deltas, end)| {
            let mut body = String::new();
            let mut expected = Vec::new();
            let mut frame = |data: String| {
                body.push_str(&format!(": keep-alive{end}data: {data}{end}{end}"));
            };
            for text in &deltas {
                frame(serde_json::json!({"choices": [{"delta": {"content": text}}]}).to_string());
                expected.push(StreamEvent::Text(text.clone()));
            }
            frame(
                serde_json::json!({"choices": [{"delta": {}, "finish_reason": "stop"}]})
                    .to_string(),
            );
            expected.push(StreamEvent::Finish(FinishReason::Stop));
            frame(
                serde_json::json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}})
                    .to_string(),
            );
            expected.push(StreamEvent::Usage(Usage {
                input_tokens: 3,
                output_tokens: 4,
            }));
            frame("[DONE]".into());
            (body.into_bytes(), expected)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn ndjson_events_survive_any_cutting(
        (body, expected) in ndjson_body(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        prop_assert_eq!(events(ProviderKind::Ollama, vec![body.clone()]), Ok(expected.clone()));
        prop_assert_eq!(events(ProviderKind::Ollama, cut(&body, &cuts)), Ok(expected));
    }

    #[test]
    fn ndjson_every_two_way_cut_agrees((body, expected) in ndjson_body()) {
        for at in 0..=body.len() {
            prop_assert_eq!(
                events(ProviderKind::Ollama, cut(&body, &[at])),
                Ok(expected.clone()),
                "cut at {}", at
            );
        }
    }

    #[test]
    fn openai_events_survive_any_cutting(
        (body, expected) in openai_body(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        prop_assert_eq!(events(ProviderKind::Openai, cut(&body, &cuts)), Ok(expected));
    }
}

/// Cuts that matter most, spelled out: inside `\r\n`, after a lone `\r` at a chunk's end,
/// and inside a multi-byte character.
#[test]
fn sse_known_hard_cuts() {
    let frame = |event: Option<&str>, data: &str| Frame {
        event: event.map(str::to_string),
        data: data.to_string(),
    };
    let chunks = |parts: &[&str]| parts.iter().map(|p| p.as_bytes().to_vec()).collect();
    assert_eq!(
        frames(chunks(&["data: a\r", "\n\r", "\ndata: b\r", "\r"])),
        [frame(None, "a"), frame(None, "b")]
    );
    // A lone `\r` then the blank line's `\r` in the next chunk: one frame, not a lost one.
    assert_eq!(
        frames(chunks(&["event: x\rdata: 1\r", "\rdata: 2\r\r"])),
        [frame(Some("x"), "1"), frame(None, "2")]
    );
    let body = "data: h\u{e9}llo \u{1f600}\n\n".as_bytes();
    for at in 0..=body.len() {
        assert_eq!(frames(cut(body, &[at])), [frame(None, "héllo 😀")]);
    }
}
