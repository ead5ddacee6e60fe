use super::*;

fn key(state: &mut ConversationsState, code: KeyCode, mods: KeyModifiers) -> Vec<Command> {
    state
        .edit_key(KeyEvent::new(code, mods))
        .unwrap_or_default()
}

fn typed(state: &mut ConversationsState, text: &str) {
    for c in text.chars() {
        key(state, KeyCode::Char(c), KeyModifiers::NONE);
    }
}

#[test]
fn enter_sends_alt_enter_adds_a_line_and_history_recalls() {
    let mut s = ConversationsState::default();
    typed(&mut s, "line one");
    key(&mut s, KeyCode::Enter, KeyModifiers::ALT);
    typed(&mut s, "line two");
    let cmds = key(&mut s, KeyCode::Enter, KeyModifiers::NONE);
    let Command::Call { method, params } = &cmds[0] else {
        panic!()
    };
    assert_eq!(*method, "chat.send");
    assert_eq!(params["message"], "line one\nline two");
    assert!(s.input.is_empty() && s.running());
    // A second send while one runs is refused, not queued behind the user's back.
    typed(&mut s, "again");
    assert!(key(&mut s, KeyCode::Enter, KeyModifiers::NONE).is_empty());
    key(&mut s, KeyCode::Up, KeyModifiers::NONE);
    assert_eq!(s.input, "again");
    key(&mut s, KeyCode::Up, KeyModifiers::NONE);
    assert_eq!(s.input, "line one\nline two");
}

#[test]
fn slash_commands_complete_and_run() {
    let mut s = ConversationsState::default();
    typed(&mut s, "/se");
    assert_eq!(s.completions().len(), 2, "/sessions and /search");
    typed(&mut s, "a");
    key(&mut s, KeyCode::Tab, KeyModifiers::NONE);
    assert_eq!(s.input, "/search ");
    typed(&mut s, "lanterns");
    let cmds = key(&mut s, KeyCode::Enter, KeyModifiers::NONE);
    assert!(matches!(
        &cmds[0],
        Command::Call {
            method: "memory.search",
            ..
        }
    ));
    typed(&mut s, "/model groq/llama");
    key(&mut s, KeyCode::Enter, KeyModifiers::NONE);
    assert_eq!(
        (s.provider.as_deref(), s.model.as_deref()),
        (Some("groq"), Some("llama"))
    );
    typed(&mut s, "/bogus");
    key(&mut s, KeyCode::Enter, KeyModifiers::NONE);
    assert!(matches!(s.transcript.last(), Some(Entry::Error(e)) if e.contains("/help")));
}

#[test]
fn esc_aborts_a_running_turn_and_streaming_text_accumulates() {
    let mut s = ConversationsState::default();
    typed(&mut s, "hi");
    key(&mut s, KeyCode::Enter, KeyModifiers::NONE);
    s.delta("s1", "hel", false);
    s.delta("s1", "lo", false);
    assert_eq!(s.current.as_deref(), Some("s1"));
    assert_eq!(s.streaming.as_ref().unwrap().text, "hello");
    s.delta("other", "x", false);
    assert_eq!(
        s.streaming.as_ref().unwrap().text,
        "hello",
        "other sessions ignored"
    );
    s.restart("s1", "groq");
    assert_eq!(s.streaming.as_ref().unwrap().text, "");
    let cmds = key(&mut s, KeyCode::Esc, KeyModifiers::NONE);
    assert!(
        matches!(&cmds[0], Command::Call { method: "chat.abort", params } if params["session"] == "s1")
    );
}

#[test]
fn scroll_stays_put_while_text_streams_and_follows_at_the_end() {
    let mut s = ConversationsState::default();
    s.rendered.set((100, 20));
    s.scroll_by(-10);
    assert_eq!(s.scroll, Some(70));
    s.rendered.set((130, 20));
    assert_eq!(s.scroll, Some(70), "new lines do not move the view");
    s.scroll_by(1000);
    assert_eq!(s.scroll, None, "at the end it follows again");
}
