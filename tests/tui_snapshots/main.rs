//! What each pane and popup shows, at 80x24 (the SSH minimum that must work) and 160x48.
//! Fixtures are built from the engine's own types and the real built-in profile, with
//! machine-specific values (paths, uptime) fixed so snapshots are stable. The fixtures and
//! helpers all modules share are here; each module is one pane, or the whole screen.

mod conversations;
mod findings;
mod memory;
mod paste;
mod providers;
mod screen;

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
            ..Default::default()
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
    // insta resolves this from the calling source file's directory, tests/tui_snapshots/.
    settings.set_snapshot_path("../../snapshots");
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
    if pane == PaneId::Providers {
        // Opening the pane asks for voice status; answer as this machine's core setup would.
        app.handle(Msg::CallDone {
            method: "tts.status".into(),
            result: Ok(tts_status()),
        });
    }
}

fn tts_status() -> serde_json::Value {
    json!({
        "enabled": false, "auto": false, "provider": "espeak-ng", "fallbackProviders": ["flite"],
        "providerStates": [
            {"id": "kittentts", "label": "KittenTTS (local command: custom)", "configured": false, "available": false},
            {"id": "espeak-ng", "label": "eSpeak NG", "configured": true, "available": true, "binaryPath": "/usr/bin/espeak-ng"},
            {"id": "flite", "label": "Flite", "configured": true, "available": false},
            {"id": "openai", "label": "OpenAI-compatible speech", "configured": false, "available": false},
            {"id": "elevenlabs", "label": "ElevenLabs", "configured": false, "available": false}
        ]
    })
}
