//! What each pane and popup shows, at 80x24 (the SSH minimum that must work) and 160x48.
//! Fixtures are built from the engine's own types and the real built-in profile, with
//! machine-specific values (paths, uptime) fixed so snapshots are stable.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use openclaw_rs::config::{self, Config, ProviderConfig, ProviderKind, SecretRef};
use openclaw_rs::engine::methods::{HealthCheck, HealthResult, StatusResult};
use openclaw_rs::tui::app::{App, Msg, PaneId};
use openclaw_rs::tui::keymap::Keymap;
use openclaw_rs::tui::theme::Theme;
use openclaw_rs::tui::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;

const STATE_DIR: &str = "/home/ada/.openclaw-rs";

fn profile_config() -> Config {
    let tmp = tempfile::tempdir().unwrap();
    config::load_profile(tmp.path(), "core").config
}

fn status(fallback: bool) -> StatusResult {
    serde_json::from_value(json!({
        "version": "0.1.0",
        "buildTrack": "core",
        "profile": if fallback { "edge" } else { "core" },
        "features": [],
        "stateDir": STATE_DIR,
        "configFile": format!("{STATE_DIR}/config.toml"),
        "uptimeMs": 12,
        "embedder": if fallback {
            json!({"requested": "minilm", "inUse": "hash",
                   "fallbackReason": "the minilm embedder was requested but this is a core build; using hash (install the edge build for model embeddings)"})
        } else {
            json!({"requested": "hash", "inUse": "hash"})
        },
        "sandbox": if fallback {
            json!({"requested": "wasmtime", "inUse": "wasmi",
                   "fallbackReason": "wasmtime was requested but this is a core build; using wasmi (install the edge build for the JIT)"})
        } else {
            json!({"requested": "wasmi", "inUse": "wasmi"})
        },
        "configErrors": 0,
        "configWarnings": 0,
    }))
    .unwrap()
}

fn check(name: &str, ok: bool, detail: &str) -> HealthCheck {
    HealthCheck {
        name: name.into(),
        ok,
        detail: detail.into(),
    }
}

/// A first run: defaults, nothing configured, everything healthy.
fn first_run() -> App {
    let mut app = App::new(Keymap::builtin("default").unwrap(), "default".into());
    let health = HealthResult {
        ok: true,
        checks: vec![
            check(
                "state_dir.writable",
                true,
                &format!("{STATE_DIR} is writable"),
            ),
            check("config.valid", true, "2 layer(s) applied"),
            check("sandbox.backend", true, "wasmi available"),
        ],
        diagnostics: Vec::new(),
    };
    feed(&mut app, status(false), health, profile_config());
    app.apply_result("findings.scan", Ok(first_run_findings()));
    app
}

/// An edge profile on a core build, a provider whose key is missing, a typo in config.toml.
fn configured() -> App {
    let mut app = App::new(Keymap::builtin("default").unwrap(), "default".into());
    let mut config = profile_config();
    config.providers.insert(
        "openai".into(),
        ProviderConfig {
            kind: Some(ProviderKind::Openai),
            base_url: Some("https://api.openai.com/v1".into()),
            api_key: Some(SecretRef::parse("env:OPENAI_API_KEY")),
            model: Some("gpt-4o-mini".into()),
            enabled: true,
        },
    );
    let health = HealthResult {
        ok: false,
        checks: vec![
            check(
                "state_dir.writable",
                true,
                &format!("{STATE_DIR} is writable"),
            ),
            check("config.valid", true, "3 layer(s) applied"),
            check(
                "sandbox.backend",
                false,
                "wasmtime was requested but this is a core build; using wasmi (install the edge build for the JIT)",
            ),
            check(
                "provider.openai.api_key",
                false,
                "environment variable OPENAI_API_KEY is not set",
            ),
        ],
        diagnostics: vec![
            config::Diagnostic::warning(
                format!("{STATE_DIR}/config.toml"),
                "unknown key 'sandbox.fule' is kept but nothing reads it; check its spelling",
            )
            .at("[sandbox]\nfule = 5\n", Some(10)),
        ],
    };
    feed(&mut app, status(true), health, config);
    app.apply_result("findings.scan", Ok(mixed_findings(true)));
    app
}

fn first_run_findings() -> serde_json::Value {
    json!({
        "schemaVersion": 1, "ok": true,
        "summary": {"critical": 0, "warn": 0, "info": 2},
        "findings": [
            {"checkId": "providers.none", "severity": "info", "title": "No model provider is configured",
             "detail": "Turns go to Ollama when it runs on this machine, else to the offline provider (answers from memory, no model)."},
            {"checkId": "summary.attack_surface", "severity": "info", "title": "Attack surface",
             "detail": "0 remote provider(s); tools may reach 0 host(s) over HTTP; 0 installed tool(s); voice off; secret scanning on; log redaction on."}
        ],
        "suppressed": []
    })
}

const CONFIG_DIFF: &str = "--- /home/ada/.openclaw-rs/config.toml (now)\n+++ /home/ada/.openclaw-rs/config.toml (after fix)\n@@ -1,4 +1,4 @@\n [providers.openai]\n kind = \"openai\"\n-api_key = \"<redacted>\"\n+api_key = \"env:OPENAI_API_KEY\"\n model = \"gpt-4o-mini\"\n";

fn mixed_findings(with_plaintext_key: bool) -> serde_json::Value {
    let mut findings = vec![json!({
        "checkId": "fs.config.perms_world_readable", "severity": "critical",
        "title": "A config file is readable by everyone",
        "detail": "/home/ada/.openclaw-rs/config.toml has mode 0644. It holds (or may hold) keys and settings that decide where your data goes.",
        "path": "/home/ada/.openclaw-rs/config.toml",
        "fix": {"id": "fs.config.perms_world_readable:/home/ada/.openclaw-rs/config.toml",
                "description": "chmod 0600 /home/ada/.openclaw-rs/config.toml",
                "diff": "chmod 0600 /home/ada/.openclaw-rs/config.toml (now 0644)\n"}
    })];
    if with_plaintext_key {
        findings.push(json!({
            "checkId": "config.secrets.plaintext_key", "severity": "critical",
            "title": "providers.openai.api_key is a literal key",
            "detail": "The fix replaces it with a reference to $OPENAI_API_KEY; then set OPENAI_API_KEY to your key.",
            "path": "providers.openai.api_key",
            "fix": {"id": "config.secrets.plaintext_key:providers.openai.api_key",
                    "description": "replace the literal key with env:OPENAI_API_KEY in /home/ada/.openclaw-rs/config.toml",
                    "diff": CONFIG_DIFF}
        }));
    }
    findings.push(json!({
        "checkId": "profile.sandbox_fallback", "severity": "warn",
        "title": "Profile edge asks for more than this build has",
        "detail": "wasmtime was requested but this is a core build; using wasmi."
    }));
    findings.push(json!({
        "checkId": "config.unknown_key", "severity": "warn",
        "title": "unknown key 'sandbox.fule' is kept but nothing reads it; check its spelling",
        "detail": "Nothing breaks, but the setting may not do what you meant.",
        "path": "/home/ada/.openclaw-rs/config.toml:2:1"
    }));
    findings.push(json!({
        "checkId": "summary.attack_surface", "severity": "info", "title": "Attack surface",
        "detail": "1 remote provider(s); tools may reach 0 host(s) over HTTP; 0 installed tool(s); voice off; secret scanning on; log redaction on."
    }));
    let critical = if with_plaintext_key { 2 } else { 1 };
    json!({
        "schemaVersion": 1, "ok": false,
        "summary": {"critical": critical, "warn": 2, "info": 1},
        "findings": findings,
        "suppressed": [{"checkId": "providers.keyless_remote", "severity": "warn",
                        "title": "Provider proxy is remote but has no key", "reason": "a proxy adds the key"}]
    })
}

fn feed(app: &mut App, status: StatusResult, health: HealthResult, config: Config) {
    app.apply_result("status", Ok(serde_json::to_value(status).unwrap()));
    app.apply_result("health", Ok(serde_json::to_value(health).unwrap()));
    app.apply_result(
        "config.get",
        Ok(json!({ "key": "", "value": config, "unknownKeys": [] })),
    );
}

fn key(app: &mut App, code: KeyCode) {
    app.handle(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn render(app: &App, width: u16, height: u16) -> Terminal<TestBackend> {
    let theme = Theme::builtin("default").unwrap();
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| ui::render(app, &theme, f)).unwrap();
    terminal
}

fn snapshot(name: &str, app: &App, width: u16, height: u16) {
    let terminal = render(app, width, height);
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(name, terminal.backend()));
}

fn focus(app: &mut App, pane: PaneId) {
    let digit = match pane {
        PaneId::Conversations => '1',
        PaneId::Memory => '2',
        PaneId::Providers => '3',
        PaneId::Findings => '4',
    };
    key(app, KeyCode::Char(digit));
    assert_eq!(app.focus, pane);
}

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
