//! The conversations pane: a transcript streaming in, tool cards, and a reply waiting for
//! the local model to load.

use super::*;

/// A session with a recovered turn (citations, a tool card) and a reply streaming in.
fn conversation() -> App {
    let mut app = first_run();
    let ok = |method: &str, value: serde_json::Value| Msg::CallDone {
        method: method.into(),
        result: Ok(value),
    };
    app.handle(ok(
        "sessions.list",
        json!({"sessions": [
            {"id": "lanterns", "title": "where are the spare lanterns", "createdAt": 1, "updatedAt": 3, "messages": 2},
            {"id": "s19a2b", "title": "plan the voyage", "createdAt": 1, "updatedAt": 2, "messages": 6}
        ], "running": []}),
    ));
    key(&mut app, KeyCode::Enter);
    for c in "where are the spare lanterns?".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Enter);
    app.handle(Msg::Engine(
        openclaw_rs::engine::EngineEvent::TurnToolCall {
            conversation: "lanterns".into(),
            id: "call_1".into(),
            name: "read_file".into(),
            arguments: "{\"path\":\"hold-3.md\"}".into(),
            status: "error".into(),
            output: Some("tools cannot run in this build".into()),
        },
    ));
    let attempts = json!([
        {"provider": "openai", "model": "gpt-4o-mini", "status": "error", "reason": "rate_limit", "latencyMs": 120},
        {"provider": "groq", "model": "llama-3.3-70b", "status": "ok", "latencyMs": 840}
    ]);
    app.handle(ok(
        "chat.send",
        json!({"session": "lanterns", "reply": "The spare lanterns are in hold three [1].",
               "provider": "groq", "model": "llama-3.3-70b",
               "usage": {"inputTokens": 120, "outputTokens": 12},
               "citations": [{"index": 1, "source": "MEMORY.md", "lineStart": 4, "lineEnd": 6,
                              "chunkId": 3, "snippet": "The quartermaster keeps the spare lanterns in hold three."}],
               "toolCalls": [], "latencyMs": 990,
               "runtime": {"selfHealing": {"enabled": true, "recovered": true, "profile": "core",
                           "maxAttempts": 3, "backoffMs": 0, "attempts": attempts}}}),
    ));
    for c in "and the oil?".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Enter);
    for piece in ["The lamp oil ", "is stored beside"] {
        app.handle(Msg::Engine(openclaw_rs::engine::EngineEvent::StreamDelta {
            conversation: "lanterns".into(),
            text: piece.into(),
        }));
    }
    for c in "/se".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    app
}

#[test]
fn conversations_transcript_streaming_and_completion() {
    let app = conversation();
    snapshot("conversations_transcript_80x24", &app, 80, 24);
    snapshot("conversations_transcript_160x48", &app, 160, 48);
    let text = render(&app, 80, 24).backend().to_string();
    assert!(
        text.contains("recovered via groq after 2 attempts"),
        "{text}"
    );
    assert!(
        text.contains("is stored beside▌"),
        "streaming text shows: {text}"
    );
    assert!(
        text.contains("/sessions") && text.contains("/search"),
        "completion: {text}"
    );
}

#[test]
fn conversations_tool_cards_expand() {
    let mut app = conversation();
    key(&mut app, KeyCode::Esc); // aborts the running turn (asks the engine)
    app.handle(Msg::CallDone {
        method: "chat.send".into(),
        result: Err(openclaw_rs::engine::EngineError::new(
            openclaw_rs::engine::ErrorCode::Cancelled,
            "the turn was aborted",
        )),
    });
    key(&mut app, KeyCode::Esc); // leaves the input
    key(&mut app, KeyCode::Char('t'));
    let text = render(&app, 80, 24).backend().to_string();
    assert!(text.contains("▾ tool read_file ✗"), "{text}");
    assert!(text.contains("→ tools cannot run"), "{text}");
    assert!(text.contains("the turn was aborted"), "{text}");
}

/// Two short turns, each with a tool card; nothing streaming, the input box left.
fn two_tool_cards() -> App {
    let mut app = first_run();
    app.handle(Msg::CallDone {
        method: "sessions.list".into(),
        result: Ok(json!({"sessions": [
            {"id": "dock", "title": "where is the oil?", "createdAt": 1, "updatedAt": 2, "messages": 6}
        ], "running": []})),
    });
    let turns = [
        (
            "where is the oil?",
            "read_file",
            "{\"path\":\"hold-3.md\"}",
            "error",
            "tools cannot run in this build",
            "In hold three.",
        ),
        (
            "and the lanterns?",
            "list_dir",
            "{\"path\":\"hold-3\"}",
            "ok",
            "lanterns.md\noil.md",
            "Beside the oil.",
        ),
    ];
    key(&mut app, KeyCode::Enter);
    for (i, (ask, tool, args, status, output, reply)) in turns.into_iter().enumerate() {
        for c in ask.chars() {
            key(&mut app, KeyCode::Char(c));
        }
        key(&mut app, KeyCode::Enter);
        app.handle(Msg::Engine(
            openclaw_rs::engine::EngineEvent::TurnToolCall {
                conversation: "dock".into(),
                id: format!("call_{i}"),
                name: tool.into(),
                arguments: args.into(),
                status: status.into(),
                output: Some(output.into()),
            },
        ));
        app.handle(Msg::CallDone {
            method: "chat.send".into(),
            result: Ok(json!({"session": "dock", "reply": reply,
                   "provider": "groq", "model": "llama-3.3-70b",
                   "usage": {"inputTokens": 90, "outputTokens": 4}, "citations": [],
                   "toolCalls": [], "latencyMs": 300,
                   "runtime": {"selfHealing": {"enabled": true, "recovered": false,
                               "profile": "core", "maxAttempts": 3, "backoffMs": 0,
                               "attempts": []}}})),
        });
    }
    key(&mut app, KeyCode::Esc); // leaves the input
    app
}

#[test]
fn conversations_tool_cards_open_one_at_a_time() {
    let mut app = two_tool_cards();
    let text = render(&app, 80, 24).backend().to_string();
    assert!(text.contains(" ▸ tool list_dir ✓"), "both closed: {text}");
    // `[` selects the latest card, `[` again the one before; `o` opens that one alone.
    key(&mut app, KeyCode::Char('['));
    key(&mut app, KeyCode::Char('['));
    key(&mut app, KeyCode::Char('o'));
    snapshot("conversations_one_card_open_80x24", &app, 80, 24);
    snapshot("conversations_one_card_open_160x48", &app, 160, 48);
    let text = render(&app, 160, 48).backend().to_string();
    assert!(text.contains("›▾ tool read_file ✗"), "{text}");
    assert!(text.contains("→ tools cannot run"), "{text}");
    assert!(text.contains(" ▸ tool list_dir ✓"), "{text}");
    assert!(
        !text.contains("lanterns.md"),
        "list_dir stays closed: {text}"
    );

    // `]` moves to the later card and `o` opens it too; `o` again closes it alone.
    key(&mut app, KeyCode::Char(']'));
    key(&mut app, KeyCode::Char('o'));
    let text = render(&app, 160, 48).backend().to_string();
    assert!(
        text.contains("›▾ tool list_dir ✓") && text.contains("lanterns.md"),
        "{text}"
    );
    assert!(text.contains(" ▾ tool read_file ✗"), "{text}");
    key(&mut app, KeyCode::Char('o'));
    let text = render(&app, 160, 48).backend().to_string();
    assert!(text.contains("›▸ tool list_dir ✓"), "{text}");
    assert!(text.contains(" ▾ tool read_file ✗"), "{text}");

    // `t` still acts on every card: all open, then all closed.
    key(&mut app, KeyCode::Char('t'));
    let text = render(&app, 160, 48).backend().to_string();
    assert!(
        text.contains("▾ tool list_dir") && text.contains("▾ tool read_file"),
        "{text}"
    );
    key(&mut app, KeyCode::Char('t'));
    let text = render(&app, 160, 48).backend().to_string();
    assert!(
        text.contains("▸ tool list_dir") && text.contains("▸ tool read_file"),
        "{text}"
    );
}

#[test]
fn selecting_a_card_scrolls_it_into_view() {
    let mut app = two_tool_cards();
    // Fill the transcript so the first card scrolls out of an 80x24 view.
    for i in 0..12 {
        app.conversations
            .transcript
            .push(openclaw_rs::tui::conversations::Entry::Note(format!(
                "note {i}"
            )));
    }
    let text = render(&app, 80, 24).backend().to_string();
    assert!(!text.contains("tool read_file"), "{text}");
    key(&mut app, KeyCode::Char('['));
    render(&app, 80, 24);
    key(&mut app, KeyCode::Char('['));
    let text = render(&app, 80, 24).backend().to_string();
    assert!(text.contains("›▸ tool read_file"), "{text}");
}

/// The first turn on the local model: the reply line says how far loading is, then the
/// text streams.
#[test]
fn conversations_show_the_local_model_loading() {
    let mut app = first_run();
    focus(&mut app, PaneId::Conversations);
    key(&mut app, KeyCode::Enter);
    for c in "hello".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Enter);
    app.handle(Msg::Engine(openclaw_rs::engine::EngineEvent::Progress {
        task: openclaw_rs::providers::local::LOAD_TASK.into(),
        done: 40 << 20,
        total: Some(98_362_432),
        message: "loading SmolLM2-135M-Instruct.Q4_1.gguf: 40 of 94 MB".into(),
    }));
    snapshot("conversations_local_loading_80x24", &app, 80, 24);
    snapshot("conversations_local_loading_160x48", &app, 160, 48);
    let text = render(&app, 80, 24).backend().to_string();
    assert!(text.contains("loading SmolLM2"), "{text}");
    app.handle(Msg::Engine(openclaw_rs::engine::EngineEvent::Progress {
        task: openclaw_rs::providers::local::LOAD_TASK.into(),
        done: 98_362_432,
        total: Some(98_362_432),
        message: "loading SmolLM2-135M-Instruct.Q4_1.gguf: 93 of 94 MB".into(),
    }));
    app.handle(Msg::Engine(openclaw_rs::engine::EngineEvent::StreamDelta {
        conversation: "s1".into(),
        text: "Hello! How".into(),
    }));
    let text = render(&app, 80, 24).backend().to_string();
    assert!(text.contains("assistant · replying…"), "{text}");
}
