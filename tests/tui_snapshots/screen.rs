//! The whole screen: every pane at both sizes, help, the command palette, a terminal too
//! small, the status bar, and no secret value anywhere on it.

use super::*;

#[test]
fn panes_first_run_80x24() {
    for pane in PaneId::ALL {
        let mut app = first_run();
        focus(&mut app, pane);
        snapshot(&format!("first_run_{}_80x24", pane.name()), &app, 80, 24);
    }
}

#[test]
fn panes_configured_80x24() {
    for pane in PaneId::ALL {
        let mut app = configured();
        focus(&mut app, pane);
        snapshot(&format!("configured_{}_80x24", pane.name()), &app, 80, 24);
    }
}

#[test]
fn panes_configured_160x48() {
    for pane in PaneId::ALL {
        let mut app = configured();
        focus(&mut app, pane);
        key(&mut app, KeyCode::Down);
        snapshot(&format!("configured_{}_160x48", pane.name()), &app, 160, 48);
    }
}

#[test]
fn help_popup() {
    let mut app = first_run();
    key(&mut app, KeyCode::Char('?'));
    snapshot("help_80x24", &app, 80, 24);
    snapshot("help_160x48", &app, 160, 48);
    // Scrolled to the end, the last section is visible.
    for _ in 0..50 {
        key(&mut app, KeyCode::Down);
    }
    snapshot("help_scrolled_80x24", &app, 80, 24);
}

#[test]
fn help_popup_vim_keymap_shows_vim_keys() {
    let mut app = App::new(Keymap::builtin("vim").unwrap(), "default".into());
    app.handle(Msg::Key(KeyEvent::new(
        KeyCode::Char('?'),
        KeyModifiers::NONE,
    )));
    let text = render(&app, 160, 48).backend().to_string();
    assert!(text.contains("j, down"), "{text}");
    assert!(text.contains("keymap vim"));
}

#[test]
fn command_palette() {
    let mut app = first_run();
    key(&mut app, KeyCode::Char(':'));
    snapshot("palette_80x24", &app, 80, 24);
    for c in "help".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    snapshot("palette_filtered_80x24", &app, 80, 24);
}

#[test]
fn too_small_terminal_says_so() {
    let app = first_run();
    let text = render(&app, 40, 10).backend().to_string();
    assert!(text.contains("Terminal too small"), "{text}");
    assert!(text.contains("40x10"), "{text}");
}

#[test]
fn status_bar_shows_the_wasmi_fallback() {
    let app = configured();
    let text = render(&app, 80, 24).backend().to_string();
    let last_line = text.lines().last().unwrap();
    assert!(last_line.contains("edge"), "{last_line}");
    assert!(last_line.contains("wasmi (fallback)"), "{last_line}");
}

#[test]
fn no_secret_values_reach_the_screen() {
    let mut app = configured();
    let mut config = profile_config();
    config.providers.insert(
        "leaky".into(),
        ProviderConfig {
            kind: Some(ProviderKind::Openai),
            base_url: None,
            api_key: Some(SecretRef::parse("sk-live-0123456789")),
            model: None,
            enabled: true,
            ..Default::default()
        },
    );
    app.apply_result(
        "config.get",
        Ok(json!({ "key": "", "value": config, "unknownKeys": [] })),
    );
    for pane in PaneId::ALL {
        focus(&mut app, pane);
        for (w, h) in [(80, 24), (160, 48)] {
            let text = render(&app, w, h).backend().to_string();
            assert!(!text.contains("sk-live"), "{}: {text}", pane.name());
        }
    }
}
