use crossterm::event::{KeyCode, KeyModifiers};

use super::*;

fn app() -> App {
    App::new(Keymap::builtin("default").unwrap(), "default".into())
}

fn press(app: &mut App, code: KeyCode, mods: KeyModifiers) -> Vec<Command> {
    app.handle(Msg::Key(KeyEvent::new(code, mods)))
}

fn ch(app: &mut App, c: char) -> Vec<Command> {
    press(app, KeyCode::Char(c), KeyModifiers::NONE)
}

#[test]
fn number_keys_jump_and_tab_cycles() {
    let mut app = app();
    ch(&mut app, '3');
    assert_eq!(app.focus, PaneId::Providers);
    press(&mut app, KeyCode::Tab, KeyModifiers::NONE);
    assert_eq!(app.focus, PaneId::Findings);
    press(&mut app, KeyCode::Tab, KeyModifiers::NONE);
    assert_eq!(app.focus, PaneId::Conversations, "wraps around");
    press(&mut app, KeyCode::BackTab, KeyModifiers::SHIFT);
    assert_eq!(app.focus, PaneId::Findings);
}

#[test]
fn quit_returns_the_quit_command() {
    let mut app = app();
    assert_eq!(ch(&mut app, 'q'), vec![Command::Quit]);
    assert!(app.should_quit);
    let mut app = self::app();
    assert_eq!(
        press(&mut app, KeyCode::Char('c'), KeyModifiers::CONTROL),
        vec![Command::Quit]
    );
}

#[test]
fn refresh_asks_the_engine() {
    let mut app = app();
    let commands = press(&mut app, KeyCode::Char('r'), KeyModifiers::CONTROL);
    let methods: Vec<_> = commands
        .iter()
        .map(|c| match c {
            Command::Call { method, .. } | Command::CallTagged { method, .. } => *method,
            Command::Quit | Command::Speak { .. } => "quit",
        })
        .collect();
    assert_eq!(methods, vec!["config.reload"]);
    let refetch = app.handle(Msg::Engine(EngineEvent::ConfigReloaded {
        errors: 0,
        warnings: 0,
    }));
    let methods: Vec<_> = refetch
        .iter()
        .filter_map(|c| match c {
            Command::Call { method, .. } | Command::CallTagged { method, .. } => Some(*method),
            Command::Quit | Command::Speak { .. } => None,
        })
        .collect();
    assert_eq!(
        methods,
        vec![
            "status",
            "health",
            "config.get",
            "findings.scan",
            "providers.list",
            "telemetry.recent",
            "sessions.list"
        ]
    );
    assert_eq!(app.calls_in_flight, 8);
}

#[test]
fn help_toggles_and_scrolls_with_movement_keys() {
    let mut app = app();
    ch(&mut app, '?');
    assert_eq!(app.overlay, Overlay::Help { scroll: 0 });
    press(&mut app, KeyCode::Down, KeyModifiers::NONE);
    assert_eq!(app.overlay, Overlay::Help { scroll: 1 });
    assert_eq!(app.selected(PaneId::Conversations), 0, "pane did not move");
    press(&mut app, KeyCode::Esc, KeyModifiers::NONE);
    assert_eq!(app.overlay, Overlay::None);
}

#[test]
fn palette_filters_types_and_runs_the_chosen_action() {
    let mut app = app();
    ch(&mut app, ':');
    assert!(matches!(app.overlay, Overlay::Palette(_)));
    for c in "findings".chars() {
        ch(&mut app, c);
    }
    assert_eq!(
        app.focus,
        PaneId::Conversations,
        "typing does not trigger bindings"
    );
    let Overlay::Palette(p) = &app.overlay else {
        panic!("palette closed")
    };
    assert_eq!(p.matches()[0], Action::FocusFindings);
    press(&mut app, KeyCode::Enter, KeyModifiers::NONE);
    assert_eq!(app.overlay, Overlay::None);
    assert_eq!(app.focus, PaneId::Findings);
}

#[test]
fn selection_moves_and_clamps() {
    let mut app = app();
    let findings: Vec<_> = (0..5)
        .map(|i| serde_json::json!({"checkId": format!("check.{i}"), "severity": "warn", "title": "t"}))
        .collect();
    app.apply_result(
        "findings.scan",
        Ok(serde_json::json!({"schemaVersion": 1, "ok": false,
            "summary": {"critical": 0, "warn": 5, "info": 0},
            "findings": findings, "suppressed": []})),
    );
    ch(&mut app, '4');
    press(&mut app, KeyCode::End, KeyModifiers::NONE);
    assert_eq!(app.selected(PaneId::Findings), 4);
    press(&mut app, KeyCode::Down, KeyModifiers::NONE);
    assert_eq!(app.selected(PaneId::Findings), 4, "stops at the last row");
    press(&mut app, KeyCode::Up, KeyModifiers::NONE);
    assert_eq!(app.selected(PaneId::Findings), 3);
    press(&mut app, KeyCode::Home, KeyModifiers::NONE);
    assert_eq!(app.selected(PaneId::Findings), 0);
}

#[test]
fn results_and_failures_land_in_the_view() {
    let mut app = app();
    app.dirty = false;
    app.apply_result("status", Err(EngineError::internal("disk on fire")));
    assert!(app.dirty);
    assert_eq!(app.view.errors.len(), 1);
    assert!(app.last_event.as_deref().unwrap().contains("disk on fire"));
    app.apply_result(
        "config.get",
        Ok(serde_json::json!({"key": "", "value": {"a": 1}})),
    );
    assert_eq!(app.view.config, Some(serde_json::json!({"a": 1})));
}

#[test]
fn engine_events_update_last_event_and_findings_changes_refetch() {
    let mut app = app();
    let cmds = app.handle(Msg::Engine(EngineEvent::FindingsChanged {
        critical: 1,
        warn: 0,
        info: 0,
    }));
    assert_eq!(cmds.len(), 1, "findings are fetched again");
    assert_eq!(
        app.last_event, None,
        "the pane shows the counts; the status bar stays"
    );
    app.handle(Msg::Engine(EngineEvent::ConfigReloaded {
        errors: 2,
        warnings: 0,
    }));
    assert!(app.last_event.as_deref().unwrap().contains("2 error(s)"));
}

#[test]
fn undo_asks_first_naming_the_fix() {
    let mut app = app();
    ch(&mut app, '4');
    let commands = ch(&mut app, 'u');
    assert!(matches!(
        &commands[0],
        Command::Call {
            method: "findings.journal",
            ..
        }
    ));
    app.apply_result(
        "findings.journal",
        Ok(serde_json::json!({"entries": [
            {"seq": 1, "fixId": "a", "checkId": "a", "description": "old", "appliedAtMs": 0, "undo": [], "undone": true},
            {"seq": 2, "fixId": "b", "checkId": "b", "description": "chmod 0600 x", "appliedAtMs": 0, "undo": []}
        ]})),
    );
    let Overlay::Confirm(confirm) = &app.overlay else {
        panic!("no confirm: {:?}", app.overlay)
    };
    assert!(confirm.body.contains("chmod 0600 x"));
    let commands = ch(&mut app, 'y');
    assert_eq!(
        commands,
        vec![Command::Call {
            method: "findings.undo",
            params: serde_json::json!({"seq": 2}),
        }]
    );
    app.apply_result("findings.journal", Ok(serde_json::json!({"entries": []})));
    assert_eq!(app.last_event.as_deref(), Some("no applied fix to undo"));
}

fn calls(commands: &[Command]) -> Vec<(&'static str, Value)> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::Call { method, params } | Command::CallTagged { method, params, .. } => {
                Some((*method, params.clone()))
            }
            Command::Quit | Command::Speak { .. } => None,
        })
        .collect()
}

fn tag_of(commands: &[Command], wanted: &str) -> u64 {
    commands
        .iter()
        .find_map(|c| match c {
            Command::CallTagged { method, tag, .. } if *method == wanted => Some(*tag),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no tagged {wanted} in {commands:?}"))
}

fn search_result(query: &str, chunk_ids: &[u32]) -> Value {
    let hits: Vec<Value> = chunk_ids
        .iter()
        .map(|id| {
            serde_json::json!({"chunkId": id, "snippet": format!("about «{query}» #{id}"),
                "source": "MEMORY.md", "lineStart": 1, "lineEnd": 3, "score": 0.5,
                "text": {"rank": 1, "score": 2.0}, "tags": [], "createdAt": 0})
        })
        .collect();
    serde_json::json!({"query": query, "mode": "hybrid", "fusion": "weighted",
        "embedder": "hash", "hits": hits, "tookMs": 1.0})
}

fn node(id: u32, kind: &str, key: &str, label: &str) -> Value {
    serde_json::json!({"id": id, "kind": kind, "key": key, "label": label, "degree": 2})
}

fn neighbors_result(center: Value, others: &[(Value, &str, bool)]) -> Value {
    let center_id = center["id"].as_u64().unwrap();
    let edges: Vec<Value> = others
        .iter()
        .map(|(n, kind, outgoing)| {
            let other = n["id"].as_u64().unwrap();
            let (from, to) = if *outgoing {
                (center_id, other)
            } else {
                (other, center_id)
            };
            serde_json::json!({"from": from, "to": to, "kind": kind, "count": 1})
        })
        .collect();
    let nodes: Vec<Value> = others.iter().map(|(n, _, _)| n.clone()).collect();
    serde_json::json!({"center": center, "nodes": nodes, "edges": edges, "truncated": false})
}

/// The memory pane focused, the search box open, and `text` typed; returns the search
/// command fired once the debounce passed.
fn typed_search(app: &mut App, text: &str) -> Vec<Command> {
    for c in text.chars() {
        assert!(ch(app, c).is_empty(), "typing alone calls nothing");
    }
    let due = app.next_deadline().expect("a search is due");
    app.handle(Msg::Tick(due))
}

fn memory_app() -> App {
    let mut app = app();
    let first = ch(&mut app, '2');
    let methods: Vec<_> = calls(&first).into_iter().map(|(m, _)| m).collect();
    assert_eq!(methods, vec!["memory.status", "memory.graph.top"]);
    // Passing through providers asks for voice status; memory is not asked again.
    let again = [ch(&mut app, '3'), ch(&mut app, '2')].concat();
    assert!(
        calls(&again).iter().all(|(m, _)| !m.starts_with("memory.")),
        "only once"
    );
    // Answer the voice status, so only memory's calls stay in flight.
    app.handle(Msg::CallDone {
        method: "tts.status".into(),
        result: Err(EngineError::internal("not under test")),
    });
    ch(&mut app, '/');
    assert!(app.memory.editing);
    app
}

#[test]
fn memory_typing_debounces_and_keys_go_to_the_box() {
    let mut app = memory_app();
    for c in "ada 4q".chars() {
        assert!(ch(&mut app, c).is_empty());
    }
    assert_eq!(app.focus, PaneId::Memory, "digits type, they do not jump");
    assert!(!app.should_quit, "q types");
    assert_eq!(app.memory.query, "ada 4q");
    let due = app.next_deadline().unwrap();
    assert!(
        app.handle(Msg::Tick(due - std::time::Duration::from_millis(1)))
            .is_empty(),
        "not before the deadline"
    );
    let fired = app.handle(Msg::Tick(due));
    assert_eq!(
        calls(&fired),
        vec![(
            "memory.search",
            serde_json::json!({"query": "ada 4q", "limit": 20})
        )]
    );
    assert_eq!(app.next_deadline(), None, "nothing left to wake for");
    // Backspace past the last letter: no search, the top nodes come back.
    press(&mut app, KeyCode::Char('u'), KeyModifiers::CONTROL);
    assert_eq!(app.memory.query, "");
    assert_eq!(app.next_deadline(), None);
    // Esc leaves the box; then keys are keys again.
    press(&mut app, KeyCode::Esc, KeyModifiers::NONE);
    assert!(!app.memory.editing);
    ch(&mut app, '3');
    assert_eq!(app.focus, PaneId::Providers);
}

#[test]
fn memory_stale_results_are_dropped() {
    let mut app = memory_app();
    let first = typed_search(&mut app, "ad");
    let old = tag_of(&first, "memory.search");
    let second = typed_search(&mut app, "a");
    let new = tag_of(&second, "memory.search");
    assert_ne!(old, new);
    app.handle(Msg::TaggedDone {
        method: "memory.search".into(),
        tag: new,
        result: Ok(search_result("ada", &[7, 8])),
    });
    app.handle(Msg::TaggedDone {
        method: "memory.search".into(),
        tag: old,
        result: Ok(search_result("ad", &[1])),
    });
    let results = app.memory.results.as_ref().unwrap();
    assert_eq!(
        results.query, "ada",
        "the older answer came late and was dropped"
    );
    assert_eq!(results.hits.len(), 2);
    assert_eq!(
        app.calls_in_flight, 3,
        "status, top and the new results' preview are still out"
    );
}

#[test]
fn memory_enter_on_a_hit_opens_its_chunk_node_and_back_returns() {
    let mut app = memory_app();
    let fired = typed_search(&mut app, "ada");
    let tag = tag_of(&fired, "memory.search");
    app.handle(Msg::TaggedDone {
        method: "memory.search".into(),
        tag,
        result: Ok(search_result("ada", &[7, 12])),
    });
    press(&mut app, KeyCode::Down, KeyModifiers::NONE);
    let opened = press(&mut app, KeyCode::Enter, KeyModifiers::NONE);
    let sent = calls(&opened);
    assert_eq!(
        sent[0],
        (
            "memory.graph.neighbors",
            serde_json::json!({"node": "chunk:12", "depth": 1, "edgeKinds": [], "limit": 50})
        )
    );
    assert_eq!(
        sent[1],
        (
            "memory.graph.node",
            serde_json::json!({"node": "chunk:12", "chunkLimit": 20})
        )
    );
    assert!(!app.memory.editing);
    assert_eq!(app.memory.mode, crate::tui::memory::Mode::Graph);
    let tag = tag_of(&opened, "memory.graph.neighbors");
    app.handle(Msg::TaggedDone {
        method: "memory.graph.neighbors".into(),
        tag,
        result: Ok(neighbors_result(
            node(40, "chunk", "chunk:12", "Ada wrote notes"),
            &[
                (
                    node(2, "document", "document:MEMORY.md", "MEMORY.md"),
                    "contains",
                    false,
                ),
                (
                    node(9, "entity", "entity:ada lovelace", "ada lovelace"),
                    "mentions",
                    true,
                ),
            ],
        )),
    });
    assert_eq!(app.memory.graph.trail[0].label, "chunk #12");
    // Rows: contains ← doc, mentions → entity. Follow the second.
    press(&mut app, KeyCode::Down, KeyModifiers::NONE);
    let followed = press(&mut app, KeyCode::Enter, KeyModifiers::NONE);
    assert_eq!(
        calls(&followed)[0].1["node"],
        serde_json::json!(9),
        "followed by node id"
    );
    assert_eq!(app.memory.graph.trail.len(), 2);
    let back = press(&mut app, KeyCode::Backspace, KeyModifiers::NONE);
    assert_eq!(calls(&back)[0].1["node"], serde_json::json!("chunk:12"));
    assert_eq!(app.memory.graph.trail.len(), 1);
    assert_eq!(app.memory.graph.selected, 1, "the cursor is where it was");
    // A late answer for the node we left is ignored.
    let late = tag_of(&followed, "memory.graph.neighbors");
    app.handle(Msg::TaggedDone {
        method: "memory.graph.neighbors".into(),
        tag: late,
        result: Ok(neighbors_result(node(9, "entity", "entity:x", "x"), &[])),
    });
    assert!(
        app.memory.graph.neighbors.is_none(),
        "still waiting for chunk:12"
    );
    // Back from the first crumb: the search again.
    press(&mut app, KeyCode::Backspace, KeyModifiers::NONE);
    assert_eq!(app.memory.mode, crate::tui::memory::Mode::Search);
    assert_eq!(app.memory.hits().len(), 2, "the results are still there");
}

#[test]
fn memory_edge_filter_changes_the_params() {
    let mut app = memory_app();
    press(&mut app, KeyCode::Esc, KeyModifiers::NONE);
    app.handle(Msg::CallDone {
        method: "memory.graph.top".into(),
        result: Ok(serde_json::json!({"nodes": [node(9, "entity", "entity:ada", "ada")]})),
    });
    let opened = press(&mut app, KeyCode::Enter, KeyModifiers::NONE);
    assert_eq!(calls(&opened)[0].1["node"], serde_json::json!(9));
    let filtered = ch(&mut app, 'e');
    assert_eq!(
        calls(&filtered),
        vec![(
            "memory.graph.neighbors",
            serde_json::json!({"node": 9, "depth": 1, "edgeKinds": ["contains"], "limit": 50})
        )]
    );
    let filtered = ch(&mut app, 'e');
    assert_eq!(
        calls(&filtered)[0].1["edgeKinds"],
        serde_json::json!(["mentions"])
    );
    // The node's chunks asked for on opening still land: the filter does not change them.
    app.handle(Msg::TaggedDone {
        method: "memory.graph.node".into(),
        tag: tag_of(&opened, "memory.graph.node"),
        result: Ok(
            serde_json::json!({"node": node(9, "entity", "entity:ada", "ada"),
            "edgeCounts": [], "chunks": []}),
        ),
    });
    assert!(app.memory.graph.node.is_some());
}

#[test]
fn memory_index_shows_progress_then_refreshes() {
    let mut app = memory_app();
    press(&mut app, KeyCode::Esc, KeyModifiers::NONE);
    let sent = ch(&mut app, 'i');
    assert_eq!(
        calls(&sent),
        vec![("memory.index", serde_json::json!({"force": false}))]
    );
    assert!(ch(&mut app, 'i').is_empty(), "one index run at a time");
    app.handle(Msg::Engine(EngineEvent::Progress {
        task: "memory.index".into(),
        done: 3,
        total: Some(10),
        message: "MEMORY.md".into(),
    }));
    assert_eq!(app.memory.indexing.as_ref().unwrap().done, 3);
    let after = app.handle(Msg::CallDone {
        method: "memory.index".into(),
        result: Ok(serde_json::json!({"scannedFiles": 1, "indexedFiles": 1,
            "unchangedFiles": 0, "removedFiles": 0, "addedChunks": 4, "removedChunks": 0,
            "reusedChunks": 0, "skipped": [], "tookMs": 12, "forced": false})),
    });
    assert!(app.memory.indexing.is_none());
    let methods: Vec<_> = calls(&after).into_iter().map(|(m, _)| m).collect();
    assert_eq!(methods, vec!["memory.status", "memory.graph.top"]);
    assert!(app.last_event.as_deref().unwrap().contains("+4"));
    // A full rebuild asks first.
    assert!(ch(&mut app, 'I').is_empty());
    assert!(matches!(app.overlay, Overlay::Confirm(_)));
    let sent = ch(&mut app, 'y');
    assert_eq!(
        calls(&sent),
        vec![("memory.index", serde_json::json!({"force": true}))]
    );
}

#[test]
fn memory_index_runs_in_the_background_and_the_cancel_key_stops_it() {
    let mut app = memory_app();
    press(&mut app, KeyCode::Esc, KeyModifiers::NONE);
    // Nothing runs: the cancel key sends nothing.
    assert!(ch(&mut app, 'x').is_empty());
    let sent = ch(&mut app, 'i');
    assert_eq!(calls(&sent)[0].0, "memory.index");
    app.handle(Msg::Engine(EngineEvent::Progress {
        task: "memory.index".into(),
        done: 1024,
        total: Some(3000),
        message: "vector index: loading vectors into the forest".into(),
    }));
    // While it builds, keys work as ever: the graph opens and closes, a search goes out.
    ch(&mut app, 'g');
    assert_eq!(app.memory.mode, crate::tui::memory::Mode::Graph);
    ch(&mut app, 'g');
    ch(&mut app, '/');
    let searched = typed_search(&mut app, "ada");
    assert_eq!(calls(&searched)[0].0, "memory.search");
    press(&mut app, KeyCode::Esc, KeyModifiers::NONE);
    assert_eq!(app.memory.indexing.as_ref().unwrap().done, 1024);
    // `x` asks the engine to stop it, once.
    let sent = ch(&mut app, 'x');
    assert_eq!(calls(&sent), vec![("memory.cancel", serde_json::json!({}))]);
    assert!(ch(&mut app, 'x').is_empty(), "already cancelling");
    app.handle(Msg::CallDone {
        method: "memory.cancel".into(),
        result: Ok(serde_json::json!({"cancelled": 1})),
    });
    // The run ends CANCELLED: said in the status bar, not kept as a failure, and the
    // status is read again (the dropped build's vectors show as pending there).
    let after = app.handle(Msg::CallDone {
        method: "memory.index".into(),
        result: Err(EngineError::new(
            crate::engine::ErrorCode::Cancelled,
            "the vector index build was cancelled; the previous index is unchanged",
        )),
    });
    assert!(app.memory.indexing.is_none() && !app.memory.cancelling);
    assert!(app.memory.error("memory.index").is_none());
    assert!(app.last_event.as_deref().unwrap().contains("cancelled"));
    let methods: Vec<_> = calls(&after).into_iter().map(|(m, _)| m).collect();
    assert!(methods.contains(&"memory.status"), "{methods:?}");
}

#[test]
fn memory_failures_are_shown_not_fatal() {
    let mut app = memory_app();
    app.handle(Msg::CallDone {
        method: "memory.status".into(),
        result: Err(EngineError::invalid_request(
            "unknown method 'memory.status'",
        )),
    });
    assert!(app.memory.error("memory.status").is_some());
    assert!(
        app.last_event
            .as_deref()
            .unwrap()
            .contains("unknown method")
    );
    app.handle(Msg::CallDone {
        method: "memory.status".into(),
        result: Ok(serde_json::json!({"not": "a status"})),
    });
    assert!(
        app.memory
            .error("memory.status")
            .unwrap()
            .contains("unexpected")
    );
}

#[test]
fn terminate_signal_quits() {
    let mut app = app();
    assert_eq!(app.handle(Msg::Terminate), vec![Command::Quit]);
}
