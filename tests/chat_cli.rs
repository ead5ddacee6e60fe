//! `chat`, `providers` and `sessions` through the binary, against the fake provider.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::fake_provider::{FakeProvider, Fault};
use common::{BIN, json};
use serde_json::Value;

fn run(home: &Path, args: &[&str]) -> Output {
    common::bin(home).args(args).output().expect("run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_providers_and_sessions_from_the_command_line() {
    let server = FakeProvider::start().await;
    server.require_key("sk-cli-SECRET");
    server.script([
        Fault::Status(529),
        Fault::Reply("streamed to the terminal".into()),
    ]);
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("key"), "sk-cli-SECRET\n").unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[self_heal]\nbackoff_ms = 10\nfallback = [\"offline\"]\n[chat]\nrecall_hits = 0\n\
             [providers.fake]\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"file:{}\"\n\
             model = \"fake-model\"\n",
            server.openai_url(),
            home.path().join("key").display()
        ),
    )
    .unwrap();
    let h = home.path();
    let out = tokio::task::spawn_blocking({
        let h = h.to_path_buf();
        move || run(&h, &["chat", "--session", "cli", "hello"])
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "streamed to the terminal\n"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("recovered via fake after 2 attempts"), "{err}");

    let out = tokio::task::spawn_blocking({
        let h = h.to_path_buf();
        move || run(&h, &["chat", "--session", "cli", "--json", "again"])
    })
    .await
    .unwrap();
    let v = json(&out);
    assert_eq!(v["reply"], "hello from fake");
    assert_eq!(v["runtime"]["selfHealing"]["attempts"][0]["status"], "ok");

    let h2 = h.to_path_buf();
    let (list, sessions, export, probe) = tokio::task::spawn_blocking(move || {
        (
            run(&h2, &["providers", "list", "--json"]),
            run(&h2, &["sessions", "list", "--json"]),
            run(&h2, &["sessions", "export", "cli"]),
            run(&h2, &["providers", "probe", "fake"]),
        )
    })
    .await
    .unwrap();
    let list_v = json(&list);
    assert_eq!(list_v["providers"][0]["id"], "fake");
    assert!(!String::from_utf8_lossy(&list.stdout).contains("SECRET"));
    assert_eq!(json(&sessions)["sessions"][0]["id"], "cli");
    let lines: Vec<Value> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "session");
    assert_eq!(lines.iter().filter(|l| l["type"] == "turn").count(), 2);
    assert!(probe.status.success());
    assert!(String::from_utf8_lossy(&probe.stdout).contains("fake"));

    let bad = tokio::task::spawn_blocking({
        let h = h.to_path_buf();
        move || run(&h, &["sessions", "delete", "../../etc"])
    })
    .await
    .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not valid"));
}

#[test]
fn providers_reorder_from_the_command_line_is_saved_for_the_next_run() {
    let home = common::home_with_config(
        "# keep me\n[self_heal]\nfallback = [\"ollama\", \"offline\"]  # why: no keys here\n",
    );
    let h = home.path();
    let out = run(h, &["providers", "reorder", "offline"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("saved to"), "{text}");
    let list = json(&run(h, &["providers", "list", "--json"]));
    let ids: Vec<&str> = list["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["offline", "ollama"]);
    let config = std::fs::read_to_string(h.join("config.toml")).unwrap();
    assert!(config.starts_with("# keep me\n"), "{config}");
    assert!(config.contains("# why: no keys here"), "{config}");

    let bad = run(h, &["providers", "reorder", "nope", "--json"]);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(json(&bad)["error"]["code"], "NOT_FOUND");
}

fn batch(home: &Path, input: &str) -> (Option<i32>, Vec<Value>) {
    use std::io::Write as _;
    let mut c = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("OPENCLAW_RS_") {
            c.env_remove(key);
        }
    }
    let mut child = c
        .env_remove("RUST_LOG")
        .arg("--home")
        .arg(home)
        .arg("--batch")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    (out.status.code(), lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_chat_send_streams_deltas_before_its_response() {
    let server = FakeProvider::start().await;
    server.script([
        Fault::Reply("one two three four five six seven eight nine".into()),
        Fault::Endless,
        Fault::Reply("quiet answer".into()),
    ]);
    let home = common::home_with_config(&format!(
        "[self_heal]\nfallback = []\n[chat]\nrecall_hits = 0\n\
             [providers.fake]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"fake-model\"\n",
        server.openai_url()
    ));
    let input = "{\"id\":\"a\",\"method\":\"chat.send\",\"params\":{\"session\":\"s\",\"message\":\"count\"}}\n\
                 {\"id\":7,\"method\":\"status\"}\n\
                 {\"id\":\"b\",\"method\":\"chat.send\",\"params\":{\"session\":\"s\",\"message\":\"go on\"},\"timeoutMs\":400}\n\
                 {\"id\":\"c\",\"method\":\"chat.send\",\"params\":{\"session\":\"s\",\"message\":\"hush\"},\"events\":false}\n";
    let h = home.path().to_path_buf();
    let (code, lines) = tokio::task::spawn_blocking(move || batch(&h, input))
        .await
        .unwrap();
    assert_eq!(code, Some(1), "request b times out: {lines:?}");

    // Request a: its deltas, in order, then its response; the deltas add up to the reply.
    let a_end = lines
        .iter()
        .position(|l| l["id"] == "a" && l.get("ok").is_some())
        .unwrap();
    let deltas: Vec<&Value> = lines[..a_end]
        .iter()
        .filter(|l| l["event"] == "chat.delta")
        .collect();
    assert!(deltas.len() >= 3, "{lines:?}");
    assert!(
        deltas
            .iter()
            .all(|d| d["id"] == "a" && d["payload"]["session"] == "s")
    );
    let text: String = deltas
        .iter()
        .map(|d| d["payload"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(lines[a_end]["payload"]["reply"], text);
    assert_eq!(text, "one two three four five six seven eight nine");
    let seven: Vec<&Value> = lines.iter().filter(|l| l["id"] == 7).collect();
    assert_eq!(seven.len(), 1, "a non-streaming method has no events");
    assert_eq!(seven[0]["ok"], true);

    // Request b never finishes (an endless stream): its deltas still came out while it
    // ran, before the TIMEOUT that ends it.
    let b: Vec<&Value> = lines.iter().filter(|l| l["id"] == "b").collect();
    let b_end = b.last().unwrap();
    assert_eq!(b_end["ok"], false);
    assert_eq!(b_end["error"]["code"], "TIMEOUT");
    assert!(
        b[..b.len() - 1]
            .iter()
            .filter(|l| l["event"] == "chat.delta")
            .count()
            >= 2,
        "{b:?}"
    );

    // Request c asked for no events: one line, as before.
    let c: Vec<&Value> = lines.iter().filter(|l| l["id"] == "c").collect();
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0]["payload"]["reply"], "quiet answer");

    // A script that reads only response lines sees one per request; turns of one session
    // answer in input order (status may come out before them: it ran while a streamed).
    let responses: Vec<&Value> = lines.iter().filter(|l| l.get("ok").is_some()).collect();
    let ids: Vec<String> = responses
        .iter()
        .map(|l| l["id"].to_string())
        .filter(|id| id != "7")
        .collect();
    assert_eq!(responses.len(), 4);
    assert_eq!(ids, vec!["\"a\"", "\"b\"", "\"c\""]);
    assert!(
        lines
            .iter()
            .all(|l| l.get("ok").is_some() != l.get("event").is_some())
    );
}

/// `--batch` driven line by line, as a coprocess: each stdout line with when it arrived.
struct Coprocess {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<(std::time::Instant, Value)>,
}

impl Coprocess {
    fn start(home: &Path, extra: &[&str]) -> Self {
        use std::io::BufRead as _;
        let mut c = Command::new(BIN);
        for (key, _) in std::env::vars() {
            if key.starts_with("OPENCLAW_RS_") {
                c.env_remove(key);
            }
        }
        let mut child = c
            .env_remove("RUST_LOG")
            .arg("--home")
            .arg(home)
            .arg("--batch")
            .args(extra)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let value: Value = serde_json::from_str(&line).expect("every line is whole JSON");
                if tx.send((std::time::Instant::now(), value)).is_err() {
                    return;
                }
            }
        });
        Self {
            stdin: child.stdin.take(),
            child,
            lines,
        }
    }

    fn send(&mut self, line: &str) -> std::time::Instant {
        use std::io::Write as _;
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
        std::time::Instant::now()
    }

    /// Lines up to and including the first that `done` accepts.
    fn until(&self, done: impl Fn(&Value) -> bool) -> Vec<(std::time::Instant, Value)> {
        let mut seen = Vec::new();
        loop {
            let next = self.lines.recv_timeout(std::time::Duration::from_secs(20));
            let (at, line) = next.unwrap_or_else(|_| panic!("no such line; saw {seen:?}"));
            let last = done(&line);
            seen.push((at, line));
            if last {
                return seen;
            }
        }
    }

    fn finish(mut self) -> Option<i32> {
        drop(self.stdin.take());
        self.child.wait().unwrap().code()
    }
}

fn response(id: &'static str) -> impl Fn(&Value) -> bool {
    move |l: &Value| l["id"] == id && l.get("ok").is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_answers_while_a_turn_streams_and_chat_abort_stops_it_within_100_ms() {
    let server = FakeProvider::start().await;
    // A reply that streams a piece every 20 ms and never ends, then a short one.
    server.script([Fault::Endless, Fault::Reply("after the input ended".into())]);
    let home = common::home_with_config(&format!(
        "[self_heal]\nfallback = []\n[chat]\nrecall_hits = 0\n\
             [providers.fake]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"fake-model\"\n",
        server.openai_url()
    ));
    let h = home.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut batch = Coprocess::start(&h, &[]);
        batch.send(r#"{"id":"t","method":"chat.send","params":{"session":"s","message":"go"}}"#);
        batch.until(|l| l["id"] == "t" && l["event"] == "chat.delta");

        // A request sent while the turn streams is answered while it still streams.
        batch.send(r#"{"id":"st","method":"status"}"#);
        let seen = batch.until(response("st"));
        assert!(seen.last().unwrap().1["ok"] == true);
        assert!(!seen.iter().any(|(_, l)| response("t")(l)), "{seen:?}");
        let seen = batch.until(|l| l["id"] == "t" && l["event"] == "chat.delta");
        assert!(
            !seen.iter().any(|(_, l)| response("t")(l)),
            "still streaming"
        );

        // The abort stops it within 100 ms of its line.
        let sent = batch.send(r#"{"id":"ab","method":"chat.abort","params":{"session":"s"}}"#);
        let seen = batch.until(response("t"));
        let (ended, turn) = seen.last().unwrap();
        let took = ended.duration_since(sent);
        eprintln!("the turn ended {took:?} after the abort line was written");
        assert_eq!(turn["error"]["code"], "CANCELLED", "{turn}");
        assert!(
            took < std::time::Duration::from_millis(100),
            "the turn ended {took:?} after the abort"
        );
        let abort = seen
            .iter()
            .map(|(_, l)| l)
            .find(|l| response("ab")(l))
            .cloned()
            .unwrap_or_else(|| batch.until(response("ab")).pop().unwrap().1);
        assert_eq!(abort["payload"]["aborted"], 1, "{abort}");

        // An abort of a turn that already ended, or of a session with none, stops nothing.
        batch.send(r#"{"id":"again","method":"chat.abort","params":{"session":"s"}}"#);
        let again = batch.until(response("again")).pop().unwrap().1;
        assert_eq!(again["payload"]["aborted"], 0, "{again}");
        batch.send(r#"{"id":"nobody","method":"chat.abort","params":{"session":"nobody"}}"#);
        let nobody = batch.until(response("nobody")).pop().unwrap().1;
        assert_eq!(nobody["payload"]["aborted"], 0, "{nobody}");

        // The input ends while a turn runs: the turn finishes and is answered.
        batch.send(
            r#"{"id":"last","method":"chat.send","params":{"session":"s","message":"once more"}}"#,
        );
        drop(batch.stdin.take());
        let last = batch.until(response("last")).pop().unwrap().1;
        assert_eq!(last["payload"]["reply"], "after the input ended", "{last}");
        assert_eq!(
            batch.finish(),
            Some(1),
            "the cancelled turn counts as failed"
        );
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_strict_order_answers_a_request_only_after_the_turn_before_it() {
    let server = FakeProvider::start().await;
    server.script([Fault::Endless]);
    let home = common::home_with_config(&format!(
        "[self_heal]\nfallback = []\n[chat]\nrecall_hits = 0\n\
             [providers.fake]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"fake-model\"\n",
        server.openai_url()
    ));
    let h = home.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut batch = Coprocess::start(&h, &["--strict-order"]);
        batch.send(r#"{"id":"t","method":"chat.send","params":{"session":"s","message":"go"},"timeoutMs":400}"#);
        batch.until(|l| l["id"] == "t" && l["event"] == "chat.delta");
        batch.send(r#"{"id":"st","method":"status"}"#);
        let seen = batch.until(response("st"));
        let turn = seen
            .iter()
            .position(|(_, l)| response("t")(l))
            .expect("the turn answered before the status request behind it");
        assert_eq!(seen[turn].1["error"]["code"], "TIMEOUT");
        assert_eq!(batch.finish(), Some(1));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_prints_all_of_a_reply_streamed_faster_than_the_terminal_reads() {
    const TOKENS: usize = 40_000;
    let server = FakeProvider::start().await;
    server.script([Fault::Flood {
        tokens: TOKENS,
        per_sec: 40_000,
    }]);
    let home = common::home_with_config(&format!(
        "[self_heal]\nfallback = []\n[chat]\nrecall_hits = 0\n\
             [providers.fake]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"fake-model\"\n",
        server.openai_url()
    ));
    let h = home.path().to_path_buf();
    let (out, history) = tokio::task::spawn_blocking(move || {
        (
            run(&h, &["chat", "--session", "fast", "flood me"]),
            run(&h, &["sessions", "history", "fast", "--json"]),
        )
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored: Vec<String> = json(&history)["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["role"] == "assistant")
        .map(|l| l["content"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0], common::fake_provider::flood_text(TOKENS));
    let printed = String::from_utf8(out.stdout).unwrap();
    // Compared by length first: a failure message with two 250 kB strings helps nobody.
    assert_eq!(
        printed.len(),
        stored[0].len() + 1,
        "printed vs stored bytes"
    );
    assert_eq!(printed, format!("{}\n", stored[0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_timeout_mid_trial_leaves_the_provider_admitted() {
    let server = FakeProvider::start().await;
    // a: a 500 opens the circuit (1 ms); b: the half-open trial hangs and the batch's
    // timeoutMs drops the turn; c: the provider must be tried again, not skipped as
    // "trial in flight".
    server.script([
        Fault::Status(500),
        Fault::Silent,
        Fault::Reply("back again".into()),
    ]);
    let home = common::home_with_config(&format!(
        "[self_heal]\nfallback = [\"offline\"]\nfallback_after_retries = 0\n\
             circuit_threshold = 1\ncircuit_open_ms = 1\ncooldown_ms = 1\ncooldown_max_ms = 1\n\
             first_byte_timeout_ms = 60000\ndeadline_ms = 60000\n[chat]\nrecall_hits = 0\n\
             [providers.fake]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"fake-model\"\n",
        server.openai_url()
    ));
    let input = "{\"id\":\"a\",\"method\":\"chat.send\",\"params\":{\"session\":\"s\",\"message\":\"one\"},\"events\":false}\n\
                 {\"id\":\"b\",\"method\":\"chat.send\",\"params\":{\"session\":\"s\",\"message\":\"two\"},\"events\":false,\"timeoutMs\":400}\n\
                 {\"id\":\"c\",\"method\":\"chat.send\",\"params\":{\"session\":\"s\",\"message\":\"three\"},\"events\":false}\n";
    let h = home.path().to_path_buf();
    let (_, lines) = tokio::task::spawn_blocking(move || batch(&h, input))
        .await
        .unwrap();
    let by_id = |id: &str| lines.iter().find(|l| l["id"] == id).unwrap().clone();
    assert_eq!(by_id("a")["payload"]["provider"], "offline", "{lines:?}");
    assert_eq!(by_id("b")["error"]["code"], "TIMEOUT", "{lines:?}");
    assert_eq!(server.chat_calls(), 3, "the trial ran, then c reached it");
    let c = by_id("c");
    assert_eq!(c["payload"]["reply"], "back again", "{c}");
    assert_eq!(
        c["payload"]["runtime"]["selfHealing"]["attempts"][0]["status"],
        "ok"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_answer_is_badged_and_require_model_exits_1() {
    let server = FakeProvider::start().await;
    server.script([Fault::AuthFailure, Fault::AuthFailure, Fault::AuthFailure]);
    let home = common::home_with_config(&format!(
        "[self_heal]\nfallback = [\"offline\"]\ncooldown_ms = 1\ncooldown_max_ms = 1\n\
             [chat]\nrecall_hits = 0\n\
             [providers.fake]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"fake-model\"\n",
        server.openai_url()
    ));
    let h = home.path().to_path_buf();
    let (plain, strict, strict_json) = tokio::task::spawn_blocking(move || {
        (
            run(&h, &["chat", "hello"]),
            run(&h, &["chat", "--require-model", "hello"]),
            run(&h, &["chat", "--require-model", "--json", "hello"]),
        )
    })
    .await
    .unwrap();
    // Without the flag the offline answer is printed, exit 0, and marked.
    assert_eq!(plain.status.code(), Some(0));
    let err = String::from_utf8_lossy(&plain.stderr);
    assert!(
        err.contains("offline answer: no model answered (fake auth)"),
        "{err}"
    );
    // With it, the turn fails: exit 1, UNAVAILABLE, and nothing from the offline provider.
    assert_eq!(strict.status.code(), Some(1));
    assert!(strict.stdout.is_empty(), "{:?}", strict.stdout);
    assert!(
        String::from_utf8_lossy(&strict.stderr).contains("requireModel"),
        "{}",
        String::from_utf8_lossy(&strict.stderr)
    );
    assert_eq!(strict_json.status.code(), Some(1));
    assert_eq!(json(&strict_json)["error"]["code"], "UNAVAILABLE");
}
