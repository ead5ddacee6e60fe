//! Secrets never leave: a model that leaks keys in one- to three-character deltas, in its
//! reply and its reasoning, and a provider whose error body echoes a key, run through every
//! face (CLI `chat`, `chat --json`, `--batch`, the TUI's own event loop in-process) and then
//! every output is scanned: stdout, stderr (with debug logs on), every file under the state
//! dir (sessions, the TUI's log file), `sessions export` and `providers list`. No piece of
//! any key may be anywhere; the markers that replace them must be.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::fake_provider::{FakeProvider, Fault};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const BIN: &str = env!("CARGO_BIN_EXE_openclaw-rs");

/// In the reply.
const GITHUB: &str = "ghp_LeAkEdT0kEn0123456789abcdefghijABCDX";
/// In the reasoning.
const AWS: &str = "AKIAL3AKEDREASON0NLY";
/// In a provider's error body.
const OPENAI: &str = "sk-proj-ErrorBodyLeakQwErTyUiOpZxCvBn";

/// Any ten characters in a row of a key count as a leak, not only the whole key.
fn leaks(haystack: &str) -> Vec<String> {
    let mut found = Vec::new();
    for secret in [GITHUB, AWS, OPENAI] {
        let chars: Vec<char> = secret.chars().collect();
        for window in chars.windows(10) {
            let piece: String = window.iter().collect();
            if haystack.contains(&piece) {
                found.push(format!("{piece} (of {secret})"));
                break;
            }
        }
    }
    found
}

#[track_caller]
fn assert_clean(place: &str, text: &str) {
    let found = leaks(text);
    assert!(found.is_empty(), "{place} leaks {found:?}:\n{text}");
}

/// The text cut into pieces of 1, 2 or 3 characters.
fn pieces(text: &str, seed: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut n) = (0, seed);
    while i < chars.len() {
        let end = (i + 1 + n % 3).min(chars.len());
        out.push(chars[i..end].iter().collect());
        i = end;
        n = n.wrapping_mul(7).wrapping_add(3);
    }
    out
}

fn leaky_reply(seed: usize) -> Fault {
    Fault::Pieces {
        reasoning: pieces(
            &format!("The user's AWS key is {AWS}, I should not say it."),
            seed,
        ),
        text: pieces(
            &format!("Here is the token: {GITHUB} — keep it safe."),
            seed + 1,
        ),
    }
}

fn leaky_error() -> Fault {
    Fault::StatusBody(
        400,
        format!("invalid request: the key {OPENAI} is not allowed"),
    )
}

fn run(home: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("OPENCLAW_RS_") {
            c.env_remove(key);
        }
    }
    c.env_remove("RUST_LOG")
        .arg("--home")
        .arg(home)
        .arg("-vv")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    if let Some(mut input) = child.stdin.take() {
        use std::io::Write as _;
        input
            .write_all(stdin.unwrap_or("").as_bytes())
            .expect("stdin");
    }
    child.wait_with_output().expect("run")
}

async fn run_async(home: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let home = home.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let stdin = stdin.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&home, &args, stdin.as_deref())
    })
    .await
    .expect("join")
}

fn out(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn files_under(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, found);
        } else {
            found.push(path);
        }
    }
}

/// The TUI's event loop in-process: open the conversations pane, send a message, wait for
/// the turn to be recorded, quit. Returns the last screen.
async fn tui_turn(home: &Path) -> String {
    let loaded = openclaw_rs::config::load(&openclaw_rs::config::LoadOptions {
        state_dir: home.to_path_buf(),
        ..Default::default()
    });
    // The TUI's log file, as the binary sets it up for the TUI.
    openclaw_rs::logging::init(2, Some(&loaded.paths.log_file), false).expect("logging");
    let engine = openclaw_rs::engine::Engine::start(loaded, openclaw_rs::tui::file_checks());
    let keymap = openclaw_rs::tui::keymap::Keymap::builtin("default").expect("keymap");
    let theme = openclaw_rs::tui::theme::Theme::builtin("default").expect("theme");
    let mut app = openclaw_rs::tui::app::App::new(keymap, "default".into());
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
    let (keys, input) = tokio::sync::mpsc::unbounded_channel();
    let press = move |code: KeyCode, modifiers: KeyModifiers| {
        let _ = keys.send(Ok(Event::Key(KeyEvent::new(code, modifiers))));
    };
    let sessions = home.join("sessions");
    let typist = async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        press(KeyCode::Char('1'), KeyModifiers::NONE);
        press(KeyCode::Enter, KeyModifiers::NONE);
        for c in "what is my token?".chars() {
            press(KeyCode::Char(c), KeyModifiers::NONE);
        }
        press(KeyCode::Enter, KeyModifiers::NONE);
        // The turn is over when its record is in a session file.
        let turns = |dir: &Path| {
            let mut files = Vec::new();
            files_under(dir, &mut files);
            files
                .iter()
                .filter_map(|f| std::fs::read_to_string(f).ok())
                .map(|t| t.matches("\"type\":\"turn\"").count())
                .sum::<usize>()
        };
        let before = turns(&sessions);
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if turns(&sessions) > before {
                break;
            }
        }
        // Let the reply's result reach the screen, then quit.
        tokio::time::sleep(Duration::from_millis(300)).await;
        press(KeyCode::Char('c'), KeyModifiers::CONTROL);
    };
    let handle = engine.handle();
    let (driven, ()) = tokio::join!(
        openclaw_rs::tui::drive(&mut terminal, &mut app, &theme, handle, input),
        typist
    );
    driven.expect("the TUI ran");
    let buffer = terminal.backend().buffer().clone();
    let mut screen = String::new();
    for y in 0..buffer.area.height {
        for x in 0..buffer.area.width {
            screen.push_str(buffer[(x, y)].symbol());
        }
        screen.push('\n');
    }
    screen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaking_model_leaks_nothing_through_any_face_or_file() {
    assert_eq!(GITHUB.len(), 4 + 36, "a token of the documented shape");
    let server = FakeProvider::start().await;
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::write(h.join("key"), "sk-fake-provider-key\n").unwrap();
    std::fs::write(
        h.join("config.toml"),
        format!(
            "[self_heal]\nbackoff_ms = 10\nfallback = []\nchain_order = [\"fake\"]\n\
             [chat]\nrecall_hits = 0\n\
             [providers.fake]\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"file:{}\"\n\
             model = \"fake-model\"\n",
            server.openai_url(),
            h.join("key").display()
        ),
    )
    .unwrap();
    let mut seen: Vec<(String, String)> = Vec::new();

    // CLI chat, printed as it streams; then --json with the reasoning.
    server.script([leaky_reply(0), leaky_reply(1)]);
    let o = run_async(h, &["chat", "--session", "cli", "what is my token?"], None).await;
    let (stdout, stderr) = out(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(stdout.contains("[REDACTED:github_token]"), "{stdout}");
    seen.push(("chat stdout".into(), stdout));
    seen.push(("chat stderr".into(), stderr));
    let o = run_async(h, &["chat", "--session", "cli", "--json", "again"], None).await;
    let (stdout, stderr) = out(&o);
    assert!(o.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(
        v["reply"],
        "Here is the token: [REDACTED:github_token] — keep it safe."
    );
    assert!(
        v["reasoning"]
            .as_str()
            .is_some_and(|r| r.contains("[REDACTED:aws_access_key]")),
        "{v}"
    );
    seen.push(("chat --json stdout".into(), stdout));
    seen.push(("chat --json stderr".into(), stderr));

    // A provider error that echoes a key: stderr, the turn record, the health book.
    server.script([leaky_error()]);
    let o = run_async(h, &["chat", "--session", "cli", "and now?"], None).await;
    let (stdout, stderr) = out(&o);
    assert!(!o.status.success());
    assert!(stderr.contains("[REDACTED:openai_key]"), "{stderr}");
    seen.push(("failed chat stdout".into(), stdout));
    seen.push(("failed chat stderr".into(), stderr));

    // --batch: event lines (deltas, reasoning) and responses, a reply and an error.
    server.script([leaky_reply(2), leaky_error()]);
    let requests = "{\"id\":1,\"method\":\"chat.send\",\"params\":{\"session\":\"batch\",\"message\":\"token?\"}}\n\
                    {\"id\":2,\"method\":\"chat.send\",\"params\":{\"session\":\"batch\",\"message\":\"again\"}}\n\
                    {\"id\":3,\"method\":\"providers.list\",\"params\":{}}\n";
    let o = run_async(h, &["--batch", "-"], Some(requests)).await;
    let (stdout, stderr) = out(&o);
    assert!(stdout.contains("\"event\":\"chat.delta\""), "{stdout}");
    assert!(stdout.contains("\"event\":\"chat.reasoning\""), "{stdout}");
    assert!(stdout.contains("[REDACTED:openai_key]"), "{stdout}");
    seen.push(("batch stdout".into(), stdout));
    seen.push(("batch stderr".into(), stderr));

    // The TUI's own loop, in-process, with its log file.
    server.script([leaky_reply(3)]);
    let screen = tui_turn(h).await;
    assert!(
        screen.contains("REDACTED"),
        "the reply is on screen:\n{screen}"
    );
    seen.push(("TUI screen".into(), screen));

    // What is kept: every session's export, the providers list, every file.
    for session in ["cli", "batch"] {
        let o = run_async(h, &["sessions", "export", session], None).await;
        let (stdout, stderr) = out(&o);
        assert!(o.status.success(), "{stderr}");
        assert!(stdout.contains("REDACTED"), "{stdout}");
        seen.push((format!("sessions export {session}"), stdout));
        seen.push((format!("sessions export {session} stderr"), stderr));
    }
    let o = run_async(h, &["sessions", "list", "--json"], None).await;
    seen.push(("sessions list".into(), out(&o).0));
    let mut files = Vec::new();
    files_under(h, &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("openclaw-rs.log")),
        "the TUI's log file: {files:?}"
    );
    for file in files {
        let bytes = std::fs::read(&file).unwrap_or_default();
        seen.push((
            file.display().to_string(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }
    for (place, text) in &seen {
        assert_clean(place, text);
    }
}
