//! The fuzz targets' bodies, one function per target, each taking the raw fuzz input.
//!
//! Every function drives the product's own entry points and panics when an invariant breaks;
//! a panic is what libFuzzer reports as a crash. The same functions replay the saved corpora
//! under stable `cargo test` (`tests/fuzz_corpora.rs` includes this file), so they use only
//! dependencies the root crate's tests also have.

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use openclaw_rs::providers::{ChatStream, ProviderError, StreamEvent};

/// A target's body: it panics when the input breaks an invariant.
pub type Target = fn(&[u8]);

/// Every target by name, for replaying corpora.
pub const TARGETS: &[(&str, Target)] = &[
    ("batch_line", batch_line),
    ("config_load", config_load),
    ("sse_stream", sse_stream),
    ("ndjson_stream", ndjson_stream),
    ("tool_manifest", tool_manifest),
    ("tool_output", tool_output),
    ("tool_call_repair", tool_call_repair),
    ("markdown_chunk", markdown_chunk),
    ("stream_redact", stream_redact),
];

/// Run a future that never waits (everything here reads from memory) to its end.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a future over in-memory data waited"),
    }
}

/// A fuzz input read as a cutting plan and a body: the first byte says how many of the next
/// bytes are chunk sizes (0-16 bytes each, zero-length chunks included), used in turn until
/// the body is consumed.
struct Cut<'a> {
    sizes: &'a [u8],
    body: &'a [u8],
}

impl<'a> Cut<'a> {
    fn new(data: &'a [u8]) -> Self {
        let Some((&count, rest)) = data.split_first() else {
            return Cut {
                sizes: &[],
                body: &[],
            };
        };
        let count = usize::from(count % 16).min(rest.len());
        let (sizes, body) = rest.split_at(count);
        Cut { sizes, body }
    }

    /// The body in the planned chunks; one chunk when the plan has no sizes.
    fn chunks(&self) -> Vec<Vec<u8>> {
        if self.sizes.iter().all(|s| s % 17 == 0) {
            return vec![self.body.to_vec()];
        }
        let mut chunks = Vec::new();
        let mut rest = self.body;
        for size in self.sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at(usize::from(size % 17).min(rest.len()));
            chunks.push(chunk.to_vec());
            rest = tail;
        }
        chunks
    }

    /// One byte a chunk, for small bodies (the slowest cutting is only worth it when cheap).
    fn bytewise(&self) -> Option<Vec<Vec<u8>>> {
        (self.body.len() <= 2048).then(|| self.body.iter().map(|b| vec![*b]).collect())
    }
}

/// Every event of a reply stream, and how it ended (`None`: a clean end).
fn drain(mut stream: Box<dyn ChatStream>) -> (Vec<StreamEvent>, Option<ProviderError>) {
    let mut events = Vec::new();
    loop {
        match ready(stream.next_event()) {
            Ok(Some(event)) => events.push(event),
            Ok(None) => return (events, None),
            Err(error) => return (events, Some(error)),
        }
    }
}

fn provider_stream(
    kind: openclaw_rs::config::ProviderKind,
    chunks: Vec<Vec<u8>>,
) -> (Vec<StreamEvent>, Option<ProviderError>) {
    let stream = openclaw_rs::providers::stream_from_chunks(kind, chunks)
        .expect("every network provider has a stream decoder");
    drain(stream)
}

fn sse_frames(chunks: Vec<Vec<u8>>) -> Vec<openclaw_rs::providers::sse::Frame> {
    let mut reader = openclaw_rs::providers::sse::SseReader::from_chunks(chunks);
    let mut frames = Vec::new();
    while let Some(frame) = ready(reader.next_frame()).expect("a small body in memory reads") {
        frames.push(frame);
    }
    frames
}

/// SSE: the frames, and what the OpenAI and Anthropic decoders make of them, do not depend on
/// how the body is cut into chunks; no field carries a line end.
pub fn sse_stream(data: &[u8]) {
    use openclaw_rs::config::ProviderKind;
    let cut = Cut::new(data);
    let whole = vec![cut.body.to_vec()];
    let frames = sse_frames(whole.clone());
    for frame in &frames {
        assert!(!frame.data.contains('\r'), "a data field kept a line end");
        let event = frame.event.as_deref().unwrap_or("");
        assert!(
            !event.contains(['\r', '\n']),
            "an event name kept a line end"
        );
    }
    assert_eq!(
        sse_frames(cut.chunks()),
        frames,
        "frames depend on chunking"
    );
    if let Some(bytes) = cut.bytewise() {
        assert_eq!(sse_frames(bytes), frames, "frames depend on chunking");
    }
    for kind in [ProviderKind::Openai, ProviderKind::Anthropic] {
        let one = provider_stream(kind, whole.clone());
        assert_eq!(
            provider_stream(kind, cut.chunks()),
            one,
            "{kind:?} events depend on chunking"
        );
    }
}

/// NDJSON (Ollama): the events and the way the stream ends do not depend on chunking.
pub fn ndjson_stream(data: &[u8]) {
    use openclaw_rs::config::ProviderKind;
    let cut = Cut::new(data);
    let one = provider_stream(ProviderKind::Ollama, vec![cut.body.to_vec()]);
    assert_eq!(
        provider_stream(ProviderKind::Ollama, cut.chunks()),
        one,
        "events depend on chunking"
    );
    if let Some(bytes) = cut.bytewise() {
        assert_eq!(
            provider_stream(ProviderKind::Ollama, bytes),
            one,
            "events depend on chunking"
        );
    }
}

/// `--batch` over a body cut into chunks, with a dispatcher that echoes `echo` and refuses
/// every other method: one JSON response frame per request, counted right, the same output
/// for every cutting, and every line error naming a line that exists.
pub fn batch_line(data: &[u8]) {
    use openclaw_rs::batch::{Dispatch, Options, run};
    use openclaw_rs::engine::EngineError;
    use serde_json::Value;

    struct Echo;
    impl Dispatch for Echo {
        async fn dispatch(
            &self,
            method: &str,
            params: Value,
            _timeout: Option<std::time::Duration>,
        ) -> Result<Value, EngineError> {
            match method {
                "echo" => Ok(params),
                _ => Err(EngineError::not_found(format!("no method '{method}'"))),
            }
        }
    }

    /// Reads the planned chunks, one per read.
    struct Chunked(std::collections::VecDeque<Vec<u8>>);
    impl tokio::io::AsyncRead for Chunked {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            while let Some(mut chunk) = self.0.pop_front() {
                if chunk.is_empty() {
                    continue;
                }
                let n = chunk.len().min(buf.remaining());
                buf.put_slice(&chunk[..n]);
                if n < chunk.len() {
                    self.0.push_front(chunk.split_off(n));
                }
                break;
            }
            Poll::Ready(Ok(()))
        }
    }

    let batch = |chunks: Vec<Vec<u8>>| {
        let mut out = Vec::new();
        let summary = ready(run(
            &Echo,
            Chunked(chunks.into()),
            &mut out,
            Options::default(),
        ))
        .expect("memory I/O");
        (summary, out)
    };
    let cut = Cut::new(data);
    let (summary, out) = batch(vec![cut.body.to_vec()]);
    let text = std::str::from_utf8(&out).expect("the output is UTF-8");
    let input_lines = cut.body.split(|b| *b == b'\n').count();
    let mut failed = 0;
    let mut frames = 0;
    for line in text.lines() {
        // Ids are echoed byte for byte, numbers beyond f64 included (`5e6665`): read the
        // frame's members raw, and only the ones the checks need as values.
        type Raw = Box<serde_json::value::RawValue>;
        let frame: std::collections::HashMap<String, Raw> =
            serde_json::from_str(line).expect("every output line is a JSON object");
        frames += 1;
        assert!(frame.contains_key("id"), "a frame without id: {line}");
        let member = |key: &str| -> Value {
            frame.get(key).map_or(Value::Null, |raw| {
                serde_json::from_str(raw.get()).expect("a frame member is JSON")
            })
        };
        match member("ok").as_bool() {
            Some(true) => assert!(frame.contains_key("payload"), "{line}"),
            Some(false) => {
                failed += 1;
                let error = &member("error");
                assert!(
                    error["code"].is_string() && error["message"].is_string(),
                    "{line}"
                );
                if let Some(n) = error["details"]["line"].as_u64() {
                    assert!(
                        n >= 1 && n as usize <= input_lines,
                        "line {n} of {input_lines}"
                    );
                }
            }
            None => panic!("a frame without ok: {line}"),
        }
    }
    assert_eq!(frames, summary.requests, "one frame per request");
    assert_eq!(failed, summary.failed, "failures counted");
    assert_eq!(
        batch(cut.chunks()),
        (summary, out),
        "output depends on chunking"
    );
}

/// The input as three parts: config file, user profile file, environment lines, joined by
/// NUL bytes. Files are written as given (not necessarily UTF-8).
fn parts(data: &[u8]) -> [&[u8]; 3] {
    let mut it = data.splitn(3, |b| *b == 0);
    [(); 3].map(|_| it.next().unwrap_or(&[]))
}

fn state_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("openclaw-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("profiles")).expect("temp dir");
        dir
    })
}

/// Config and profile loading: never panics; the effective configuration always validates;
/// every error about a file's text points at a line inside that file.
pub fn config_load(data: &[u8]) {
    use openclaw_rs::config::{LoadOptions, load, load_profile};
    let [config, profile, env] = parts(data);
    let state = state_dir();
    let config_file = state.join("config.toml");
    let profile_name = if profile.first().is_some_and(|b| b % 2 == 0) {
        "core"
    } else {
        "fuzz"
    };
    let profile_file = state.join("profiles").join(format!("{profile_name}.toml"));
    for stale in ["core", "fuzz"] {
        let _ = std::fs::remove_file(state.join("profiles").join(format!("{stale}.toml")));
    }
    std::fs::write(&config_file, config).expect("temp file");
    std::fs::write(&profile_file, profile).expect("temp file");
    let env = String::from_utf8_lossy(env)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (format!("OPENCLAW_RS_{k}"), v.to_string()))
        .collect();
    let opts = LoadOptions {
        state_dir: state.clone(),
        config_file: Some(config_file.clone()),
        profile: Some(profile_name.to_string()),
        env,
        ..Default::default()
    };
    let files = [(config_file, config), (profile_file, profile)];
    for loaded in [load(&opts), load_profile(state, profile_name)] {
        let problems = loaded.config.validate();
        assert!(
            problems.is_empty(),
            "the effective configuration is invalid: {problems:?}"
        );
        for diagnostic in loaded.errors() {
            let Some((_, text)) = files
                .iter()
                .find(|(path, _)| path.display().to_string() == diagnostic.source)
            else {
                continue;
            };
            if diagnostic.message.starts_with("not valid UTF-8") {
                continue;
            }
            let lines = text.split(|b| *b == b'\n').count();
            match diagnostic.line {
                Some(line) => assert!(
                    line >= 1 && line <= lines,
                    "{diagnostic} (file has {lines} lines)"
                ),
                None => panic!("an error in a file without a line: {diagnostic}"),
            }
        }
    }
}

/// `tool.toml`: parsing never panics; a manifest that parses has a valid name and a plain
/// module file name, lowers limits but never raises them, and its parameter schema either
/// compiles or is reported.
pub fn tool_manifest(data: &[u8]) {
    use openclaw_rs::config::SandboxConfig;
    use openclaw_rs::sandbox::Limits;
    use openclaw_rs::sandbox::manifest::{parse_manifest, valid_tool_name, validate_input};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(manifest) = parse_manifest(text) else {
        return;
    };
    assert!(valid_tool_name(&manifest.name));
    assert!(!manifest.module.contains('/') && !matches!(manifest.module.as_str(), "" | "." | ".."));
    let base = Limits::from_config(&SandboxConfig::default());
    let limits = manifest.limits.apply(base.clone());
    assert!(limits.fuel <= base.fuel || base.fuel == 0, "fuel raised");
    assert!(limits.memory_bytes <= base.memory_bytes, "memory raised");
    assert!(
        limits.timeout_ms <= base.timeout_ms && limits.timeout_ms >= 1,
        "timeout"
    );
    assert!(
        limits.max_output_bytes <= base.max_output_bytes,
        "output cap raised"
    );
    for input in [
        serde_json::json!({}),
        serde_json::json!({"text": "x"}),
        serde_json::Value::Null,
    ] {
        if let Err(errors) = validate_input(manifest.parameters.as_ref(), &input) {
            assert!(!errors.is_empty(), "a refusal without a reason");
        }
    }
}

/// A module's output bytes to the text the model is told: decoding never panics, the cap is
/// kept, and what the model gets is the output's text, cut at a character boundary.
pub fn tool_output(data: &[u8]) {
    use openclaw_rs::orchestrator::tools::{CUT_NOTE, MAX_OUTPUT, output_text};
    use openclaw_rs::sandbox::decode_output;
    let Some((&plan, output)) = data.split_first() else {
        return;
    };
    // The low half of the first byte sets the output cap, the high half how many times the
    // decoded value is repeated in the tool's output (so outputs pass 16 KiB).
    let cap = u64::from(plan & 0x0f) * 512;
    let repeat = 1 + usize::from(plan >> 4) * 64;
    let Ok(value) = decode_output(output, cap) else {
        return;
    };
    assert!(output.len() as u64 <= cap, "an output over the cap decoded");
    let value = if repeat == 1 {
        value
    } else {
        serde_json::Value::Array(vec![value; repeat])
    };
    let full = match &value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    let text = output_text(&value);
    if full.len() > MAX_OUTPUT {
        let kept = text
            .strip_suffix(CUT_NOTE)
            .expect("a long output says it was cut");
        assert!(
            kept.len() <= MAX_OUTPUT && full.starts_with(kept),
            "cut wrong"
        );
        assert!(kept.len() + 4 > MAX_OUTPUT, "cut too short");
    } else {
        assert_eq!(text, full, "an output under the cap is changed");
    }
}

/// A model's tool call repaired against the tools offered: never panics; a call that runs
/// has an object for arguments, and its name is one of the tools offered.
pub fn tool_call_repair(data: &[u8]) {
    use openclaw_rs::orchestrator::tools::repair;
    use openclaw_rs::providers::{ToolCall, ToolSpec};
    let text = String::from_utf8_lossy(data);
    let (name, arguments) = text.split_once('\n').unwrap_or(("echo", &text));
    let specs: Vec<ToolSpec> = ["echo", "read_file", "Read_File"]
        .into_iter()
        .map(|name| ToolSpec {
            name: name.into(),
            description: String::new(),
            parameters: serde_json::json!({"type": "object"}),
        })
        .collect();
    let call = ToolCall {
        id: "c1".into(),
        name: name.into(),
        arguments: arguments.into(),
    };
    let repaired = repair(&call, &specs);
    match (&repaired.args, &repaired.error) {
        (Some(args), None) => {
            assert!(args.is_object(), "arguments that are not an object run");
            assert!(
                specs.iter().any(|s| s.name == repaired.call.name),
                "an unknown tool runs"
            );
            let reparsed: serde_json::Value = serde_json::from_str(&repaired.call.arguments)
                .expect("repaired arguments are JSON");
            assert_eq!(
                &reparsed, args,
                "the arguments as run are not the arguments sent on"
            );
        }
        (None, Some(error)) => assert!(!error.is_empty()),
        other => panic!("a repair with neither or both of args and error: {other:?}"),
    }
}

/// The markdown chunker: never panics, and its chunks cover the text in order. Every word
/// outside headings appears, chunk after chunk, as a contiguous run of the text's words;
/// consecutive runs overlap or touch but never skip a word, and never go backwards.
pub fn markdown_chunk(data: &[u8]) {
    use openclaw_rs::memory::chunk::{ChunkOptions, chunk_text};
    let (options, body) = match data {
        [tokens, overlap, rest @ ..] => (
            ChunkOptions {
                tokens: usize::from(*tokens),
                overlap: usize::from(*overlap),
            },
            rest,
        ),
        _ => (ChunkOptions::default(), data),
    };
    let text = String::from_utf8_lossy(body);
    let chunks = chunk_text(&text, options);

    let words = content_words(&text);
    // Where the chunks so far may lie in `words`, as (start, end) runs: a chunk's words can
    // occur more than once.
    let mut states: Vec<(usize, usize)> = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let got: Vec<&str> = chunk.text.split_whitespace().collect();
        assert!(!got.is_empty(), "an empty chunk");
        assert!(chunk.line_start <= chunk.line_end, "lines out of order");
        let len = got.len();
        let fits = |s: usize| words.get(s..s + len) == Some(got.as_slice());
        let mut next: Vec<(usize, usize)> = if i == 0 {
            fits(0).then_some((0, len)).into_iter().collect()
        } else {
            // Starts no earlier than the previous chunk, skips no word, adds at least one.
            states
                .iter()
                .flat_map(|&(start, end)| (start..=end).filter(move |&s| s + len > end))
                .filter(|&s| fits(s))
                .map(|s| (s, s + len))
                .collect()
        };
        next.sort_unstable();
        next.dedup();
        assert!(
            !next.is_empty(),
            "chunk {i} {:?} is not the next run of the text's words",
            chunk.text
        );
        states = next;
    }
    let covered = states.iter().any(|&(_, end)| end == words.len());
    assert!(
        covered || (chunks.is_empty() && words.is_empty()),
        "words left out at the end"
    );
}

/// The words a chunker must keep: every line's, except heading lines outside code fences.
fn content_words(text: &str) -> Vec<&str> {
    let mut words = Vec::new();
    let mut fence: Option<&str> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        match fence {
            Some(marker) => {
                if trimmed.starts_with(marker) {
                    fence = None;
                }
            }
            None => {
                if let Some(marker) = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m)) {
                    fence = Some(marker);
                } else if is_heading(line) {
                    continue;
                }
            }
        }
        words.extend(line.split_whitespace());
    }
    words
}

/// `#`-`######`, then a space, a tab or the end, then a non-empty title.
fn is_heading(line: &str) -> bool {
    let level = line.bytes().take_while(|b| *b == b'#').count();
    let rest = &line[level..];
    (1..=6).contains(&level)
        && (rest.is_empty() || rest.starts_with([' ', '\t']))
        && !rest.trim().trim_end_matches('#').trim().is_empty()
}

/// The streaming redactor: for the text cut into the planned pieces, the streamed output
/// equals the one-shot redaction, holds no match of any secret pattern the audit scans for,
/// and never holds back more than `max_hold()`; with `block`, it stops exactly before the
/// first secret.
pub fn stream_redact(data: &[u8]) {
    use openclaw_rs::config::SecretAction;
    use openclaw_rs::secrets::redact::{StreamRedactor, find, max_hold, redact};
    use openclaw_rs::secrets::scan;
    let cut = Cut::new(data);
    let text = String::from_utf8_lossy(cut.body);
    let pieces = str_pieces(&text, cut.sizes);

    let one_shot = redact(&text);
    let hits = scan(&one_shot);
    assert!(
        hits.is_empty(),
        "the redaction still holds a secret: {hits:?}"
    );
    let mut redactor = StreamRedactor::new(SecretAction::Redact);
    let mut streamed = String::new();
    for piece in &pieces {
        streamed.push_str(&redactor.push(piece));
        assert!(
            redactor.held() <= max_hold(),
            "held {} bytes",
            redactor.held()
        );
    }
    streamed.push_str(&redactor.finish());
    assert_eq!(streamed, one_shot, "streamed and one-shot redaction differ");

    let mut blocker = StreamRedactor::new(SecretAction::Block);
    let mut passed = String::new();
    for piece in &pieces {
        passed.push_str(&blocker.push(piece));
    }
    passed.push_str(&blocker.close());
    match find(&text).first() {
        Some(first) => {
            assert_eq!(
                passed,
                text[..first.range.start],
                "block passed on the wrong prefix"
            );
            assert_eq!(blocker.blocked(), Some(first.rule));
        }
        None => {
            assert_eq!(passed, text, "block changed a text without secrets");
            assert_eq!(blocker.blocked(), None);
        }
    }
}

/// `text` cut by the plan's sizes (each `% 17` bytes, moved forward to a character
/// boundary); the whole text as one piece when the plan has no sizes.
fn str_pieces<'t>(text: &'t str, sizes: &[u8]) -> Vec<&'t str> {
    if sizes.iter().all(|s| s % 17 == 0) {
        return vec![text];
    }
    let mut pieces = Vec::new();
    let mut rest = text;
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let mut at = usize::from(size % 17).min(rest.len());
        while !rest.is_char_boundary(at) {
            at += 1;
        }
        let (piece, tail) = rest.split_at(at);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}
