//! Tests of the `--batch` driver: ordering, streaming, errors per line.

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
    let input =
        "\u{feff}{\"id\":1,\"method\":\"echo\"}\n{\"id\":2,\"method\":\"echo\",\"timeoutMs\":0}\n";
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
    /// `memory.cancel` stops a running `memory.index`.
    cancel: tokio::sync::Notify,
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
            // Reports `steps` progress events `ms` apart, unless `memory.cancel` stops it.
            "memory.index" => {
                let steps = params["steps"].as_u64().unwrap_or(3);
                let ms = params["ms"].as_u64().unwrap_or(10);
                let work = async {
                    for done in 1..=steps {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        if let Some(tx) = &self.tx {
                            let _ = tx.send(EngineEvent::Progress {
                                task: "memory.index".into(),
                                done,
                                total: Some(steps),
                                message: "vector index: create new trees".into(),
                            });
                            // Another task's progress is not this request's.
                            let _ = tx.send(EngineEvent::Progress {
                                task: "local.load".into(),
                                done,
                                total: None,
                                message: "model".into(),
                            });
                        }
                    }
                    Ok(serde_json::json!({ "indexedFiles": 1 }))
                };
                tokio::select! {
                    r = work => r,
                    () = self.cancel.notified() => Err(EngineError::new(
                        crate::engine::ErrorCode::Cancelled,
                        "the vector index build was cancelled; the previous index is unchanged",
                    )),
                }
            }
            "memory.cancel" => {
                self.cancel.notify_waiters();
                Ok(serde_json::json!({ "cancelled": 1 }))
            }
            "memory.search" => Ok(serde_json::json!({ "hits": [] })),
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
                        Some(limit) => tokio::time::timeout(limit, work)
                            .await
                            .unwrap_or_else(|_| Err(crate::engine::timeout_error(method, limit))),
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
    let input = "{\"id\":\"t\",\"method\":\"chat.send\",\"params\":{\"pieces\":3,\"ms\":100}}\n";
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

#[tokio::test(start_paused = true)]
async fn memory_index_streams_progress_and_a_cancel_read_meanwhile_stops_it() {
    // 1,000 steps of 100 ms; the cancel on the next line ends it at once.
    let input = "{\"id\":\"i\",\"method\":\"memory.index\",\"params\":{\"steps\":1000,\"ms\":100}}\n\
                 {\"id\":\"c\",\"method\":\"memory.cancel\"}\n";
    let started = tokio::time::Instant::now();
    let (summary, lines) = run_turns(&Turns::new(), input, Options::default()).await;
    assert!(started.elapsed() < Duration::from_millis(50), "{lines:?}");
    assert_eq!(summary.failed, 1, "{lines:?}");
    assert_eq!(shape(&lines), vec!["\"c\":ok=true", "\"i\":ok=false"]);
    assert_eq!(lines[0]["payload"]["cancelled"], 1);
    assert_eq!(lines[1]["error"]["code"], "CANCELLED");

    // Left to run, its progress comes as event lines (only its own task's) before the
    // response, in the engine event's shape.
    let input = "{\"id\":\"i\",\"method\":\"memory.index\",\"params\":{\"steps\":2}}\n";
    let (_, lines) = run_turns(&Turns::new(), input, Options::default()).await;
    assert_eq!(
        shape(&lines),
        vec!["\"i\":progress", "\"i\":progress", "\"i\":ok=true"]
    );
    assert_eq!(
        lines[1]["payload"],
        serde_json::json!({"task": "memory.index", "done": 2, "total": 2,
                           "message": "vector index: create new trees"})
    );
}

#[tokio::test(start_paused = true)]
async fn other_memory_requests_wait_for_a_running_index_and_others_do_not() {
    let input = "{\"id\":\"i\",\"method\":\"memory.index\",\"params\":{\"steps\":3,\"ms\":100},\"events\":false}\n\
                 {\"id\":\"e\",\"method\":\"echo\"}\n\
                 {\"id\":\"s\",\"method\":\"memory.search\",\"params\":{\"query\":\"x\"}}\n";
    let (summary, lines) = run_turns(&Turns::new(), input, Options::default()).await;
    assert_eq!(summary.failed, 0, "{lines:?}");
    // The echo is answered while the index runs; the search only after it, so it sees
    // what the index run wrote.
    assert_eq!(
        shape(&lines),
        vec!["\"e\":ok=true", "\"i\":ok=true", "\"s\":ok=true"]
    );
}
