//! Bracketed paste: what a terminal pastes lands as text in the field that has focus, never
//! as keys.

use super::*;

/// What a terminal pastes: CRLF line ends, a tab, and escape sequences that would retitle the
/// window, clear the screen and colour text if they reached the terminal.
const PASTE: &str = "fn main() {\r\n\tprintln!(\"hi\");\r\n}\r\n\u{1b}]0;owned\u{7}\u{1b}[2J\u{1b}[31mwhy does this not build?";

/// Every symbol on the screen: none may be a control character (ESC, BEL, CR...).
fn assert_no_control(terminal: &Terminal<TestBackend>) {
    let buffer = terminal.backend().buffer();
    for cell in buffer.content() {
        assert!(
            !cell.symbol().chars().any(char::is_control),
            "control character on screen: {:?}",
            cell.symbol()
        );
    }
}

#[test]
fn a_multi_line_paste_fills_the_message_box_and_sends_nothing() {
    let mut app = first_run();
    focus(&mut app, PaneId::Conversations);
    key(&mut app, KeyCode::Enter);
    for c in "look: ".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    let commands = app.handle(Msg::Paste(PASTE.into()));
    assert!(commands.is_empty(), "a paste sends nothing: {commands:?}");
    assert!(app.conversations.composing);
    assert_eq!(
        app.conversations.input,
        "look: fn main() {\n    println!(\"hi\");\n}\nwhy does this not build?"
    );
    assert!(app.conversations.transcript.is_empty());
    snapshot("conversations_pasted_80x24", &app, 80, 24);
    snapshot("conversations_pasted_160x48", &app, 160, 48);
    assert_no_control(&render(&app, 80, 24));
    // Enter after the paste is what sends it, whole.
    let commands = app.handle(Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
    let sent = commands
        .iter()
        .find_map(|c| match c {
            openclaw_rs::tui::app::Command::Call {
                method: "chat.send",
                params,
            } => params["message"].as_str().map(str::to_string),
            _ => None,
        })
        .expect("Enter sends");
    assert!(sent.ends_with("}\nwhy does this not build?"), "{sent}");
}

#[test]
fn a_paste_into_one_line_fields_is_one_line() {
    // The palette: the query is one line, line breaks become spaces.
    let mut app = first_run();
    key(&mut app, KeyCode::Char(':'));
    app.handle(Msg::Paste("focus\r\nmemory\n".into()));
    let openclaw_rs::tui::app::Overlay::Palette(palette) = &app.overlay else {
        panic!("palette open");
    };
    assert_eq!(palette.query, "focus memory");
    assert_no_control(&render(&app, 80, 24));

    // A prompt (the findings filter): the same, and still open, not submitted.
    let mut app = first_run();
    focus(&mut app, PaneId::Findings);
    key(&mut app, KeyCode::Char('/'));
    app.handle(Msg::Paste("state\ndir\u{1b}[2J".into()));
    let openclaw_rs::tui::app::Overlay::Input(input) = &app.overlay else {
        panic!("filter prompt open: {:?}", app.overlay);
    };
    assert_eq!(input.text, "state dir");
    assert_no_control(&render(&app, 80, 24));

    // The memory search: one line, and a search is scheduled as if typed.
    let mut app = first_run();
    focus(&mut app, PaneId::Memory);
    app.handle(Msg::Paste("spare\nlanterns\u{7}".into()));
    assert!(app.memory.editing);
    assert_eq!(app.memory.query, "spare lanterns");
    assert!(app.next_deadline().is_some(), "the search is due");
    assert_no_control(&render(&app, 80, 24));
}

#[test]
fn a_paste_cannot_answer_a_confirm() {
    let mut app = configured();
    focus(&mut app, PaneId::Findings);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char('f'));
    assert!(matches!(
        app.overlay,
        openclaw_rs::tui::app::Overlay::Confirm(_)
    ));
    let commands = app.handle(Msg::Paste("y\n".into()));
    assert!(commands.is_empty(), "{commands:?}");
    assert!(matches!(
        app.overlay,
        openclaw_rs::tui::app::Overlay::Confirm(_)
    ));
}

/// The real event loop: a paste event from the terminal reaches the message box, and the
/// newlines in it do not send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_loop_types_a_paste_into_the_message_box() {
    use crossterm::event::Event;
    let home = tempfile::tempdir().unwrap();
    let loaded = config::load(&config::LoadOptions {
        state_dir: home.path().to_path_buf(),
        ..Default::default()
    });
    let engine = openclaw_rs::engine::Engine::start(loaded, openclaw_rs::tui::file_checks());
    let theme = Theme::builtin("default").unwrap();
    let mut app = App::new(Keymap::builtin("default").unwrap(), "default".into());
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let (events, input) = tokio::sync::mpsc::unbounded_channel();
    let press = |code: KeyCode, mods: KeyModifiers| Ok(Event::Key(KeyEvent::new(code, mods)));
    for event in [
        press(KeyCode::Char('1'), KeyModifiers::NONE),
        press(KeyCode::Enter, KeyModifiers::NONE),
        Ok(Event::Paste("one\ntwo\r\nthree\n".into())),
    ] {
        events.send(event).unwrap();
    }
    let typist = async {
        // The loop has drawn the paste; leave without sending it.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        events
            .send(press(KeyCode::Char('c'), KeyModifiers::CONTROL))
            .unwrap();
    };
    let (driven, ()) = tokio::join!(
        openclaw_rs::tui::drive(&mut terminal, &mut app, &theme, engine.handle(), input),
        typist
    );
    driven.expect("the TUI ran");
    assert_eq!(app.conversations.input, "one\ntwo\nthree\n");
    assert!(app.conversations.transcript.is_empty(), "nothing was sent");
    let screen = terminal.backend().to_string();
    assert!(
        screen.contains(" one") && screen.contains(" two") && screen.contains(" three"),
        "{screen}"
    );
}
