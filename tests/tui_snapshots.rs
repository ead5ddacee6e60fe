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

// ---- memory explorer ------------------------------------------------------------------------

mod memory {
    use super::*;
    use openclaw_rs::memory::types::{
        ChunkView, ComponentScore, Consistency, EdgeCount, EdgeKind, EdgeView, EmbedderIdentity,
        Fusion, GetResult, NeighborsResult, NodeKind, NodeResult, NodeView, SearchHit, SearchMode,
        SearchResult, StatusResult as MemoryStatus, TopResult, VectorIndexChoice, VectorIndexKind,
        VectorIndexStatus,
    };
    use openclaw_rs::tui::app::Command;

    fn identity(name: &str, dimensions: u32) -> EmbedderIdentity {
        EmbedderIdentity {
            name: name.into(),
            dimensions,
            model_hash: "hash-v1".into(),
        }
    }

    pub fn status(chunks: u64, mismatch: bool) -> MemoryStatus {
        MemoryStatus {
            enabled: true,
            dir: format!("{STATE_DIR}/memory"),
            workspace: "/home/ada/notes".into(),
            schema_version: 1,
            documents: if chunks == 0 { 0 } else { 56 },
            chunks,
            vectors: chunks,
            text_entries: chunks,
            nodes: if chunks == 0 { 0 } else { 789 },
            edges: if chunks == 0 { 0 } else { 2345 },
            lmdb_bytes: 0,
            text_bytes: 0,
            map_size_bytes: 1 << 30,
            embedder: identity("hash", 384),
            embedder_window: None,
            truncated_chunks: 0,
            embedder_notice: None,
            embedder_mismatch: mismatch.then(|| identity("minilm", 384)),
            last_index: None,
            consistency: Consistency {
                ok: true,
                checked_at: 0,
                ..Consistency::default()
            },
            vector_index: VectorIndexStatus {
                setting: VectorIndexChoice::Auto,
                kind: VectorIndexKind::Scan,
                stored: chunks,
                indexed: 0,
                pending: 0,
                last_build: None,
            },
        }
    }

    pub fn node(id: u32, kind: NodeKind, label: &str, degree: u32) -> NodeView {
        let key = match kind {
            NodeKind::Chunk => format!("chunk:{label}"),
            other => format!("{}:{label}", other.as_str()),
        };
        NodeView {
            id,
            kind,
            key,
            label: label.into(),
            degree,
            depth: None,
        }
    }

    /// A chunk node: key `chunk:<id>`, labelled by its first words.
    fn chunk_node(id: u32, chunk_id: u32, words: &str) -> NodeView {
        NodeView {
            key: format!("chunk:{chunk_id}"),
            label: words.into(),
            ..node(id, NodeKind::Chunk, words, 4)
        }
    }

    fn top() -> TopResult {
        TopResult {
            nodes: vec![
                node(2, NodeKind::Document, "MEMORY.md", 41),
                node(9, NodeKind::Entity, "ada lovelace", 17),
                node(10, NodeKind::Entity, "charles babbage", 11),
                node(11, NodeKind::Tag, "history", 8),
                node(12, NodeKind::Heading, "Projects › Engines", 6),
            ],
        }
    }

    fn hit(
        chunk_id: u32,
        score: f32,
        text: Option<(u32, f32)>,
        vector: Option<(u32, f32)>,
        snippet: &str,
        lines: (u32, u32),
    ) -> SearchHit {
        SearchHit {
            chunk_id,
            snippet: snippet.into(),
            source: "MEMORY.md".into(),
            line_start: lines.0,
            line_end: lines.1,
            heading: Some("People › Ada".into()),
            score,
            text: text.map(|(rank, score)| ComponentScore { rank, score }),
            vector: vector.map(|(rank, score)| ComponentScore { rank, score }),
            tags: if chunk_id == 12 {
                vec!["history".into()]
            } else {
                Vec::new()
            },
            created_at: 0,
        }
    }

    pub fn results(mode: SearchMode) -> SearchResult {
        SearchResult {
            query: "ada lovelace".into(),
            mode,
            fusion: Fusion::Weighted,
            embedder: "hash".into(),
            hits: vec![
                hit(
                    12,
                    0.91,
                    Some((1, 7.42)),
                    Some((2, 0.71)),
                    "«Ada» «Lovelace» wrote the first published program, for Babbage's Analytical Engine, in her notes of 1843.",
                    (12, 18),
                ),
                hit(
                    15,
                    0.77,
                    Some((2, 5.10)),
                    Some((1, 0.74)),
                    "Met «Ada» at the museum talk: the Difference Engine model still runs.",
                    (31, 33),
                ),
                hit(
                    31,
                    0.52,
                    Some((3, 3.33)),
                    None,
                    "Reading list: a biography of «Lovelace»; Babbage's passages on the engine.",
                    (54, 57),
                ),
                hit(
                    40,
                    0.31,
                    None,
                    Some((3, 0.48)),
                    "Poetical science: imagination applied to mathematics.",
                    (80, 82),
                ),
            ],
            notice: match mode {
                SearchMode::Keyword => Some(
                    "stored vectors were made by minilm (384d); run memory index --force".into(),
                ),
                SearchMode::Hybrid => None,
            },
            took_ms: 3.2,
        }
    }

    pub fn chunk(chunk_id: u32, lines: (u32, u32), text: &str) -> ChunkView {
        ChunkView {
            chunk_id,
            document_id: 1,
            source: "MEMORY.md".into(),
            line_start: lines.0,
            line_end: lines.1,
            heading: Some("People › Ada".into()),
            text: text.into(),
            tags: vec!["history".into()],
            created_at: 0,
            has_vector: true,
        }
    }

    const CHUNK_12: &str = "## Ada\nAda Lovelace wrote the first published program, for Babbage's Analytical\nEngine, in her notes of 1843. She saw that the engine could work on more than\nnumbers: music, symbols, anything with rules.\nSee [[charles babbage]] and #history.";

    fn edge(from: u32, to: u32, kind: EdgeKind, count: u32) -> EdgeView {
        EdgeView {
            from,
            to,
            kind,
            count,
        }
    }

    /// Around chunk #12: its document, what it mentions, its tag.
    fn around_chunk() -> NeighborsResult {
        let center = chunk_node(40, 12, "Ada Lovelace wrote the first published…");
        NeighborsResult {
            nodes: vec![
                node(2, NodeKind::Document, "MEMORY.md", 41),
                node(9, NodeKind::Entity, "ada lovelace", 17),
                node(10, NodeKind::Entity, "charles babbage", 11),
                node(11, NodeKind::Tag, "history", 8),
            ],
            edges: vec![
                edge(2, 40, EdgeKind::Contains, 1),
                edge(40, 9, EdgeKind::Mentions, 1),
                edge(40, 10, EdgeKind::LinksTo, 1),
                edge(40, 10, EdgeKind::Mentions, 1),
                edge(40, 11, EdgeKind::Tagged, 1),
            ],
            center,
            truncated: false,
        }
    }

    /// Around the entity `ada lovelace`: the chunks that name her, who she co-occurs with.
    fn around_ada() -> NeighborsResult {
        NeighborsResult {
            center: node(9, NodeKind::Entity, "ada lovelace", 17),
            nodes: vec![
                chunk_node(40, 12, "Ada Lovelace wrote the first published…"),
                chunk_node(41, 15, "Met Ada at the museum talk…"),
                chunk_node(42, 31, "Reading list: a biography of Lovelace…"),
                node(10, NodeKind::Entity, "charles babbage", 11),
                node(13, NodeKind::Entity, "analytical engine", 5),
            ],
            edges: vec![
                edge(40, 9, EdgeKind::Mentions, 1),
                edge(41, 9, EdgeKind::Mentions, 1),
                edge(42, 9, EdgeKind::Mentions, 1),
                edge(9, 10, EdgeKind::CoOccurs, 3),
                edge(9, 13, EdgeKind::CoOccurs, 2),
            ],
            truncated: true,
        }
    }

    fn ada_node() -> NodeResult {
        NodeResult {
            node: node(9, NodeKind::Entity, "ada lovelace", 17),
            edge_counts: vec![
                EdgeCount {
                    kind: EdgeKind::Mentions,
                    count: 12,
                },
                EdgeCount {
                    kind: EdgeKind::CoOccurs,
                    count: 5,
                },
            ],
            chunks: vec![
                chunk(12, (12, 18), CHUNK_12),
                chunk(
                    15,
                    (31, 33),
                    "Met Ada at the museum talk: the Difference Engine model still runs.",
                ),
                chunk(
                    31,
                    (54, 57),
                    "Reading list: a biography of Lovelace; Babbage's passages on the engine.",
                ),
            ],
        }
    }

    pub fn tag(commands: &[Command], wanted: &str) -> u64 {
        commands
            .iter()
            .find_map(|c| match c {
                Command::CallTagged { method, tag, .. } if *method == wanted => Some(*tag),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no {wanted} in {commands:?}"))
    }

    pub fn reply<T: serde::Serialize>(
        app: &mut App,
        method: &str,
        tag: u64,
        value: T,
    ) -> Vec<Command> {
        app.handle(Msg::TaggedDone {
            method: method.into(),
            tag,
            result: Ok(serde_json::to_value(value).unwrap()),
        })
    }

    pub fn done<T: serde::Serialize>(app: &mut App, method: &str, value: T) {
        app.handle(Msg::CallDone {
            method: method.into(),
            result: Ok(serde_json::to_value(value).unwrap()),
        });
    }

    /// The memory pane focused with a store of `chunks` chunks.
    pub fn opened(chunks: u64, mismatch: bool) -> App {
        let mut app = first_run();
        focus(&mut app, PaneId::Memory);
        done(&mut app, "memory.status", status(chunks, mismatch));
        let nodes = if chunks == 0 {
            TopResult { nodes: Vec::new() }
        } else {
            top()
        };
        done(&mut app, "memory.graph.top", nodes);
        app
    }

    /// "ada lovelace" typed and answered, the full first chunk fetched.
    pub fn searched(mode: SearchMode) -> App {
        let mut app = opened(1234, mode == SearchMode::Keyword);
        key(&mut app, KeyCode::Char('/'));
        for c in "ada lovelace".chars() {
            key(&mut app, KeyCode::Char(c));
        }
        let due = app.next_deadline().unwrap();
        let sent = app.handle(Msg::Tick(due));
        let after = reply(
            &mut app,
            "memory.search",
            tag(&sent, "memory.search"),
            results(mode),
        );
        reply(
            &mut app,
            "memory.get",
            tag(&after, "memory.get"),
            GetResult {
                chunk: Some(chunk(12, (12, 18), CHUNK_12)),
                document: None,
            },
        );
        key(&mut app, KeyCode::Esc);
        app
    }

    /// From the first hit to its chunk node, then to the entity `ada lovelace`.
    pub fn walked() -> App {
        let mut app = searched(SearchMode::Hybrid);
        let sent = app.handle(Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
        reply(
            &mut app,
            "memory.graph.neighbors",
            tag(&sent, "memory.graph.neighbors"),
            around_chunk(),
        );
        reply(
            &mut app,
            "memory.graph.node",
            tag(&sent, "memory.graph.node"),
            NodeResult {
                node: around_chunk().center,
                edge_counts: Vec::new(),
                chunks: vec![chunk(12, (12, 18), CHUNK_12)],
            },
        );
        // Rows: contains ← doc, links_to → babbage, mentions → ada, mentions → babbage, …
        key(&mut app, KeyCode::Down);
        key(&mut app, KeyCode::Down);
        let sent = app.handle(Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
        reply(
            &mut app,
            "memory.graph.neighbors",
            tag(&sent, "memory.graph.neighbors"),
            around_ada(),
        );
        reply(
            &mut app,
            "memory.graph.node",
            tag(&sent, "memory.graph.node"),
            ada_node(),
        );
        key(&mut app, KeyCode::Down);
        app
    }
}

#[test]
fn memory_empty_store() {
    let app = memory::opened(0, false);
    snapshot("memory_empty_80x24", &app, 80, 24);
    snapshot("memory_empty_160x48", &app, 160, 48);
}

#[test]
fn memory_search_results() {
    let app = memory::searched(openclaw_rs::memory::types::SearchMode::Hybrid);
    snapshot("memory_results_80x24", &app, 80, 24);
    snapshot("memory_results_160x48", &app, 160, 48);
    // One pane at full width: hits and preview side by side.
    snapshot("memory_results_140x30", &app, 140, 30);
}

#[test]
fn memory_keyword_only_search_warns() {
    let app = memory::searched(openclaw_rs::memory::types::SearchMode::Keyword);
    let text = render(&app, 80, 24).backend().to_string();
    assert!(text.contains("keyword search only"), "{text}");
    assert!(text.contains("≠ stored minilm"), "{text}");
    assert!(text.contains("I rebuild vectors"), "{text}");
    assert!(
        !text.contains('«'),
        "marks are drawn as highlights, not shown"
    );
}

#[test]
fn memory_graph_view() {
    let app = memory::walked();
    let trail: Vec<_> = app
        .memory
        .graph
        .trail
        .iter()
        .map(|c| c.label.as_str())
        .collect();
    assert_eq!(trail, vec!["chunk #12", "entity:ada lovelace"]);
    snapshot("memory_graph_80x24", &app, 80, 24);
    snapshot("memory_graph_160x48", &app, 160, 48);
    let mut app = app;
    key(&mut app, KeyCode::Char('c'));
    snapshot("memory_graph_chunks_80x24", &app, 80, 24);
}

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
