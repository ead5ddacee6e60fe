//! The findings pane: a fix confirmed and its result, the clean state, the filter, and a
//! suppression with its reason.

use super::*;

#[test]
fn findings_fix_flow_confirm_then_after() {
    let mut app = configured();
    focus(&mut app, PaneId::Findings);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char('f'));
    assert!(matches!(
        app.overlay,
        openclaw_rs::tui::app::Overlay::Confirm(_)
    ));
    snapshot("findings_confirm_fix_80x24", &app, 80, 24);
    snapshot("findings_confirm_fix_160x48", &app, 160, 48);

    let commands = app.handle(Msg::Key(KeyEvent::new(
        KeyCode::Char('y'),
        KeyModifiers::NONE,
    )));
    assert_eq!(
        commands,
        vec![openclaw_rs::tui::app::Command::Call {
            method: "findings.fix",
            params: json!({"fixId": "config.secrets.plaintext_key:providers.openai.api_key"}),
        }]
    );
    app.handle(Msg::CallDone {
        method: "findings.fix".into(),
        result: Ok(
            json!({"fixId": "config.secrets.plaintext_key:providers.openai.api_key",
                          "changed": true, "journalSeq": 1, "diff": CONFIG_DIFF}),
        ),
    });
    app.apply_result("findings.scan", Ok(mixed_findings(false)));
    snapshot("findings_after_fix_80x24", &app, 80, 24);
}

#[test]
fn findings_clean_state_and_filter() {
    let mut app = first_run();
    focus(&mut app, PaneId::Findings);
    snapshot("findings_clean_80x24", &app, 80, 24);
    let mut app = configured();
    focus(&mut app, PaneId::Findings);
    key(&mut app, KeyCode::Char('/'));
    for c in "unknown".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Enter);
    let text = render(&app, 80, 24).backend().to_string();
    assert!(text.contains("sandbox.fule"), "{text}");
    assert!(!text.contains("literal key"), "filtered out: {text}");
}

#[test]
fn suppress_asks_for_a_reason_and_sends_it() {
    let mut app = configured();
    focus(&mut app, PaneId::Findings);
    key(&mut app, KeyCode::Char('s'));
    snapshot("findings_suppress_prompt_80x24", &app, 80, 24);
    for c in "shared box".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    let commands = app.handle(Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
    assert_eq!(
        commands,
        vec![openclaw_rs::tui::app::Command::Call {
            method: "findings.suppress",
            params: json!({"checkId": "fs.config.perms_world_readable",
                           "path": "/home/ada/.openclaw-rs/config.toml", "reason": "shared box"}),
        }]
    );
}
