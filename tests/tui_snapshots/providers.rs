//! The providers pane: the chain mid-incident, the local model's state, and the voice
//! section.

use super::*;

/// The chain mid-incident: the primary in cooldown, one circuit open, an unconfigured key.
fn providers_incident() -> App {
    let mut app = first_run();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let provider = |id: &str, kind: &str, state: &str, extra: serde_json::Value| {
        let mut p = json!({"id": id, "kind": kind, "model": "m", "models": [], "position": 1,
            "state": state, "circuit": "closed", "errorRate": 0.0, "samples": 0,
            "windowMs": 900000, "recentLatenciesMs": []});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        p
    };
    app.apply_result(
        "providers.list",
        Ok(json!({"offlineOnly": false, "providers": [
            provider("openai", "openai", "cooldown", json!({"model": "gpt-4o-mini",
                "cooldownUntilMs": now + 25 * 60_000, "cooldownReason": "rate_limit",
                "latencyP50Ms": 410, "latencyP95Ms": 1900, "errorRate": 0.25, "samples": 8,
                "recentLatenciesMs": [380, 410, 450, 1900, 390, 420], "keyRef": "env:OPENAI_API_KEY",
                "baseUrl": "https://api.openai.com/v1", "lastError": "rate_limit: HTTP 429: slow down"})),
            provider("groq", "openai", "healthy", json!({"model": "llama-3.3-70b",
                "latencyP50Ms": 230, "latencyP95Ms": 300, "samples": 4,
                "recentLatenciesMs": [220, 230, 300, 210]})),
            provider("anthropic", "anthropic", "circuit_open", json!({"circuit": "open",
                "errorRate": 1.0, "samples": 5})),
            provider("ollama", "ollama", "unconfigured", json!({"reason": "providers.ollama: environment variable PROXY_KEY is not set"})),
            provider("offline", "offline", "healthy", json!({"model": "offline (no model)"})),
        ]})),
    );
    app.apply_result(
        "telemetry.recent",
        Ok(json!({"capacity": 200, "turns": [
            {"at": 1, "session": "lanterns", "ok": true, "provider": "groq", "model": "llama", "latencyMs": 990,
             "selfHealing": {"enabled": true, "recovered": true, "profile": "core", "maxAttempts": 3, "backoffMs": 0,
               "attempts": [
                 {"provider": "openai", "model": "gpt-4o-mini", "status": "error", "reason": "rate_limit", "latencyMs": 120},
                 {"provider": "groq", "model": "llama", "status": "ok", "latencyMs": 840}]}},
            {"at": 2, "session": "voyage", "ok": true, "provider": "groq", "model": "llama", "latencyMs": 250,
             "selfHealing": {"enabled": true, "recovered": true, "profile": "core", "maxAttempts": 3, "backoffMs": 0,
               "attempts": [
                 {"provider": "openai", "model": "gpt-4o-mini", "status": "skipped", "reason": "cooldown", "latencyMs": 0},
                 {"provider": "groq", "model": "llama", "status": "ok", "latencyMs": 250}]}}
        ]})),
    );
    focus(&mut app, PaneId::Providers);
    app
}

#[test]
fn providers_matrix_timeline_and_keys() {
    let mut app = providers_incident();
    snapshot("providers_incident_80x24", &app, 80, 24);
    snapshot("providers_incident_160x48", &app, 160, 48);
    let text = render(&app, 80, 24).backend().to_string();
    assert!(text.contains("cooldown") && text.contains("25m"), "{text}");
    assert!(text.contains("↷ openai cooldown → ✓ groq 250ms"), "{text}");
    // Keys: probe, reset and move act on the selected provider.
    let cmds = app.handle(Msg::Key(KeyEvent::new(
        KeyCode::Char('p'),
        KeyModifiers::NONE,
    )));
    assert_eq!(
        cmds,
        vec![openclaw_rs::tui::app::Command::Call {
            method: "providers.probe",
            params: json!({"id": "openai"})
        }]
    );
    let cmds = app.handle(Msg::Key(KeyEvent::new(
        KeyCode::Char('J'),
        KeyModifiers::SHIFT,
    )));
    assert_eq!(
        cmds,
        vec![openclaw_rs::tui::app::Command::Call {
            method: "providers.reorder",
            params: json!({"order": ["groq", "openai", "anthropic", "ollama", "offline"]})
        }]
    );
    // The engine's answer goes to the status line: saved, or why it holds for this run only.
    let list = serde_json::to_value(app.view.providers.clone().unwrap()).unwrap();
    let mut answer = list.clone();
    answer["savedTo"] = json!("/home/ada/.openclaw-rs/config.toml");
    app.handle(Msg::CallDone {
        method: "providers.reorder".into(),
        result: Ok(answer),
    });
    assert_eq!(
        app.last_event.as_deref(),
        Some("chain order saved to /home/ada/.openclaw-rs/config.toml")
    );
    let mut answer = list;
    answer["note"] = json!("the new order holds for this run only; it could not be saved");
    app.handle(Msg::CallDone {
        method: "providers.reorder".into(),
        result: Ok(answer),
    });
    assert!(
        app.last_event.as_deref().unwrap().contains("this run only"),
        "{:?}",
        app.last_event
    );
    let cmds = app.handle(Msg::Key(KeyEvent::new(
        KeyCode::Char('x'),
        KeyModifiers::NONE,
    )));
    assert_eq!(
        cmds,
        vec![openclaw_rs::tui::app::Command::Call {
            method: "providers.reset",
            params: json!({"id": "openai"})
        }],
        "the selection moved with the provider"
    );
}

/// The edge chain with no keys: Ollama down, the local model answering; its state on the
/// providers pane's detail line.
#[test]
fn providers_local_model_state() {
    let mut app = first_run();
    let provider = |id: &str, kind: &str, state: &str, extra: serde_json::Value| {
        let mut p = json!({"id": id, "kind": kind, "model": "m", "models": [], "position": 1,
            "state": state, "circuit": "closed", "errorRate": 0.0, "samples": 0,
            "windowMs": 900000, "recentLatenciesMs": []});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        p
    };
    app.apply_result(
        "providers.list",
        Ok(json!({"offlineOnly": false, "providers": [
            provider("ollama", "ollama", "degraded", json!({"errorRate": 1.0, "samples": 2,
                "lastError": "network: connection refused"})),
            provider("local", "local", "healthy", json!({"model": "SmolLM2-135M-Instruct.Q4_1",
                "latencyP50Ms": 900, "latencyP95Ms": 2400, "samples": 2,
                "recentLatenciesMs": [2400, 900],
                "local": {"modelPath": "/home/ada/.cache/openclaw-rs/models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                    "state": "loaded", "replying": false, "rssBytes": 190_000_000u64, "loadMs": 420,
                    "tokensPerS": 48.3, "promptTokensPerS": 610.0, "firstTokenMs": 150,
                    "contextTokens": 4096, "idleUnloadS": 300}})),
            provider("offline", "offline", "healthy", json!({"model": "offline (no model)"})),
        ]})),
    );
    focus(&mut app, PaneId::Providers);
    key(&mut app, KeyCode::Down);
    snapshot("providers_local_80x24", &app, 80, 24);
    snapshot("providers_local_160x48", &app, 160, 48);
    let text = render(&app, 160, 48).backend().to_string();
    assert!(
        text.contains("in-process model, loaded") && text.contains("48 tok/s"),
        "{text}"
    );
}

/// The voice section after speaking a reply: kittentts was missing, espeak-ng spoke, and no
/// audio player was found, so the file's path is shown.
#[test]
fn providers_voice_section_after_a_fallback() {
    for (width, height) in [(80, 24), (160, 48)] {
        let mut app = configured();
        focus(&mut app, PaneId::Providers);
        app.handle(Msg::Engine(openclaw_rs::engine::EngineEvent::StreamDelta {
            conversation: "c1".into(),
            text: "The build passed.".into(),
        }));
        key(&mut app, KeyCode::Char('s'));
        app.handle(Msg::Speech(openclaw_rs::tui::voice::Speech::Converted {
            index: 0,
            total: 1,
            result: Ok(json!({
                "audioPath": format!("{STATE_DIR}/voice/cache/4f2a.wav"),
                "provider": "espeak-ng", "outputFormat": "wav", "durationMs": 1400,
                "attempts": [
                    {"provider": "kittentts", "status": "unavailable",
                     "reason": "binary 'piper' not found", "latencyMs": 0},
                    {"provider": "espeak-ng", "status": "ok", "latencyMs": 95}
                ]
            })),
        }));
        app.handle(Msg::Speech(openclaw_rs::tui::voice::Speech::Played(
            openclaw_rs::tui::voice::PlayOutcome::NoPlayer {
                path: format!("{STATE_DIR}/voice/cache/4f2a.wav"),
            },
        )));
        snapshot(
            &format!("providers_voice_{width}x{height}"),
            &app,
            width,
            height,
        );
    }
}
