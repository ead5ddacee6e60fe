//! `doctor` and `security audit` on broken installations built in temp dirs: the right
//! finding appears; `--fix` repairs exactly that; a second run is clean; `undo` restores the
//! prior state byte for byte; symlinks are refused; comments survive.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_openclaw-rs");

struct Home {
    _tmp: tempfile::TempDir,
    state: PathBuf,
}

impl Home {
    /// A fresh state dir as a first run leaves it (0700, commented config.toml 0600).
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        let home = Home { _tmp: tmp, state };
        let out = home.run(&["config", "path"]);
        assert!(out.status.success());
        let out = home.run(&["status"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        home
    }

    fn config(&self) -> PathBuf {
        self.state.join("config.toml")
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut c = Command::new(BIN);
        for (key, _) in std::env::vars() {
            if key.starts_with("OPENCLAW_RS_") {
                c.env_remove(key);
            }
        }
        c.env_remove("RUST_LOG")
            .arg("--home")
            .arg(&self.state)
            .args(args);
        c.output().unwrap()
    }

    /// Run a report command with --json; returns (exit code, report).
    fn report(&self, args: &[&str]) -> (i32, Value) {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(&all);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON report ({e}): {stdout}"));
        (out.status.code().unwrap_or(-1), report)
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn finding<'a>(report: &'a Value, id: &str) -> Option<&'a Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["checkId"] == id)
}

fn ids(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["checkId"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn world_readable_config_with_a_plaintext_key() {
    let home = Home::new();
    let original = "# my providers, hand-written\n[providers.openai]\nmodel = \"gpt-4o-mini\" # the cheap one\napi_key = \"sk-live-SCENARIOSECRET0123456789\"\n";
    std::fs::write(home.config(), original).unwrap();
    chmod(&home.config(), 0o644);

    let (code, report) = home.report(&["security", "audit"]);
    assert_eq!(code, 1);
    assert_eq!(report["schemaVersion"], 1);
    assert_eq!(report["ok"], false);
    let perms = finding(&report, "fs.config.perms_world_readable").expect("perms finding");
    assert_eq!(perms["severity"], "critical");
    assert!(
        perms["fix"]["diff"]
            .as_str()
            .unwrap()
            .contains("chmod 0600")
    );
    let key = finding(&report, "config.secrets.plaintext_key").expect("key finding");
    assert_eq!(key["severity"], "critical");
    assert!(
        key["fix"]["diff"]
            .as_str()
            .unwrap()
            .contains("+api_key = \"env:OPENAI_API_KEY\"")
    );

    // Dry run: diffs on stderr, nothing changes, and the secret is never printed.
    let out = home.run(&["security", "audit", "--fix", "--dry-run"]);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!printed.contains("SCENARIOSECRET"), "{printed}");
    assert!(printed.contains("dry run"), "{printed}");
    assert_eq!(std::fs::read_to_string(home.config()).unwrap(), original);
    assert_eq!(mode(&home.config()), 0o644);

    let (code, after) = home.report(&["security", "audit", "--fix", "--non-interactive"]);
    assert_eq!(code, 0, "{after}");
    assert!(finding(&after, "fs.config.perms_world_readable").is_none());
    assert!(finding(&after, "config.secrets.plaintext_key").is_none());
    assert_eq!(mode(&home.config()), 0o600);
    let fixed = std::fs::read_to_string(home.config()).unwrap();
    assert!(
        fixed.contains("api_key = \"env:OPENAI_API_KEY\""),
        "{fixed}"
    );
    assert!(fixed.contains("# my providers, hand-written") && fixed.contains("# the cheap one"));
    assert!(!fixed.contains("SCENARIOSECRET"));
    let backup = home.state.join("config.toml.bak.1");
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), original);
    assert_eq!(mode(&backup), 0o600);

    // Fixing again changes nothing.
    let out = home.run(&["security", "audit", "--fix", "--non-interactive"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to fix"));
    assert_eq!(std::fs::read_to_string(home.config()).unwrap(), fixed);

    // Undo both, newest first: the prior state, byte for byte.
    assert!(home.run(&["undo"]).status.success());
    assert!(home.run(&["undo"]).status.success());
    assert_eq!(std::fs::read_to_string(home.config()).unwrap(), original);
    assert_eq!(mode(&home.config()), 0o644);
    let out = home.run(&["undo"]);
    assert_eq!(out.status.code(), Some(1), "nothing left to undo");
}

#[test]
fn group_writable_state_dir() {
    let home = Home::new();
    chmod(&home.state, 0o770);
    let (_, report) = home.report(&["security", "audit", "--only", "fs.state_dir"]);
    assert_eq!(ids(&report), vec!["fs.state_dir.perms_group_writable"]);
    assert_eq!(report["findings"][0]["severity"], "warn");
    home.report(&[
        "security",
        "audit",
        "--only",
        "fs.state_dir",
        "--fix",
        "--non-interactive",
    ]);
    assert_eq!(mode(&home.state), 0o700);
    let (code, report) = home.report(&["security", "audit", "--only", "fs.state_dir"]);
    assert_eq!(code, 0);
    assert!(ids(&report).is_empty());
    assert!(home.run(&["undo"]).status.success());
    assert_eq!(mode(&home.state), 0o770);
}

#[test]
fn symlinked_config_is_reported_and_never_followed() {
    let home = Home::new();
    let outside_dir = tempfile::tempdir().unwrap();
    let outside = outside_dir.path().join("shared.toml");
    std::fs::write(&outside, "[ui]\ntheme = \"basic\"\n").unwrap();
    chmod(&outside, 0o644);
    std::fs::remove_file(home.config()).unwrap();
    std::os::unix::fs::symlink(&outside, home.config()).unwrap();

    let (_, report) = home.report(&["security", "audit", "--only", "fs.config"]);
    let link = finding(&report, "fs.config.symlink").expect("symlink finding");
    assert_eq!(link["severity"], "critical");
    assert!(link.get("fix").is_none(), "no automatic fix for a link");
    assert!(
        finding(&report, "fs.config.perms_world_readable").is_none(),
        "the target is not inspected"
    );

    home.report(&["security", "audit", "--fix", "--non-interactive"]);
    assert_eq!(mode(&outside), 0o644, "the link's target was not touched");
    assert_eq!(
        std::fs::read_to_string(&outside).unwrap(),
        "[ui]\ntheme = \"basic\"\n"
    );
    assert!(
        std::fs::symlink_metadata(home.config())
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn credentials_file_0644() {
    let home = Home::new();
    let key_file = home.state.join("openai.key");
    std::fs::write(&key_file, "sk-live-KEYFILESECRET0123456789\n").unwrap();
    chmod(&key_file, 0o644);
    std::fs::write(
        home.config(),
        format!(
            "[providers.openai]\napi_key = \"file:{}\"\n",
            key_file.display()
        ),
    )
    .unwrap();
    let (_, report) = home.report(&["security", "audit", "--only", "fs.credentials"]);
    let f = finding(&report, "fs.credentials.perms_world_readable").expect("finding");
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["path"], key_file.display().to_string());
    home.report(&[
        "security",
        "audit",
        "--only",
        "fs.credentials",
        "--fix",
        "--non-interactive",
    ]);
    assert_eq!(mode(&key_file), 0o600);
    assert!(home.run(&["undo"]).status.success());
    assert_eq!(mode(&key_file), 0o644);
    let all = String::from_utf8_lossy(&home.run(&["security", "audit"]).stdout).into_owned();
    assert!(!all.contains("KEYFILESECRET"));
}

#[test]
fn plain_http_remote_provider_keeps_comments_through_fix_and_undo() {
    let home = Home::new();
    let original = "[providers.lab]\nkind = \"openai\" # a vLLM box\nbase_url = \"http://10.0.0.7:8000/v1\" # no TLS yet\napi_key = \"env:LAB_KEY\"\n";
    std::fs::write(home.config(), original).unwrap();
    let (_, report) = home.report(&["security", "audit"]);
    let f = finding(&report, "providers.plaintext_http_remote").expect("finding");
    assert_eq!(f["severity"], "critical");
    home.report(&[
        "security",
        "audit",
        "--only",
        "providers",
        "--fix",
        "--non-interactive",
    ]);
    let fixed = std::fs::read_to_string(home.config()).unwrap();
    assert!(
        fixed.contains("base_url = \"https://10.0.0.7:8000/v1\" # no TLS yet"),
        "{fixed}"
    );
    assert!(fixed.contains("# a vLLM box"));
    assert!(home.run(&["undo"]).status.success());
    assert_eq!(std::fs::read_to_string(home.config()).unwrap(), original);
}

#[test]
fn edge_profile_on_this_build() {
    let home = Home::new();
    let (code, report) = home.report(&["doctor", "--profile", "edge"]);
    let fallback = finding(&report, "profile.sandbox_fallback");
    if cfg!(feature = "edge") {
        assert!(fallback.is_none(), "{report}");
    } else {
        assert_eq!(fallback.expect("finding")["severity"], "warn");
        assert!(finding(&report, "profile.embedder_fallback").is_some());
        assert_eq!(code, 1);
        let (code, _) = home.report(&["doctor", "--profile", "edge", "--severity-min", "critical"]);
        assert_eq!(code, 0, "warn findings do not fail a critical threshold");
    }
}

#[test]
fn suppressions_move_findings_with_their_reason_and_undo() {
    let home = Home::new();
    chmod(&home.state, 0o750);
    let out = home.run(&[
        "call",
        "findings.suppress",
        "--params",
        r#"{"checkId":"fs.state_dir.perms_readable","reason":"shared lab machine"}"#,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let (code, report) = home.report(&["security", "audit"]);
    assert!(finding(&report, "fs.state_dir.perms_readable").is_none());
    let suppressed = &report["suppressed"][0];
    assert_eq!(suppressed["checkId"], "fs.state_dir.perms_readable");
    assert_eq!(suppressed["reason"], "shared lab machine");
    assert_eq!(code, 0);
    assert!(home.run(&["undo"]).status.success());
    let (_, report) = home.report(&["security", "audit"]);
    assert!(finding(&report, "fs.state_dir.perms_readable").is_some());
}

#[test]
fn a_broken_config_is_a_doctor_finding_not_a_crash() {
    let home = Home::new();
    std::fs::write(home.config(), "[sandbox]\nfuel = \"lots\"\n").unwrap();
    let (code, report) = home.report(&["doctor"]);
    assert_eq!(code, 1);
    let f = finding(&report, "config.invalid").expect("finding");
    assert_eq!(f["severity"], "critical");
    assert!(f["path"].as_str().unwrap().ends_with("config.toml:2:8"));
}

#[test]
fn only_and_skip_select_checks_and_a_clean_install_exits_0() {
    let home = Home::new();
    let (code, report) = home.report(&["security", "audit"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(ids(&report), vec!["summary.attack_surface"]);
    let (_, report) = home.report(&["security", "audit", "--skip", "summary"]);
    assert!(ids(&report).is_empty());
    // The core profile: the edge profile turns voice on, which wants local binaries.
    let (code, report) = home.report(&["doctor", "--profile", "core"]);
    assert_eq!(code, 0, "{report}");
}

#[test]
fn a_linked_log_dir_is_reported_and_nothing_behind_it_changes() {
    let home = Home::new();
    let outside_dir = tempfile::tempdir().unwrap();
    let victim = outside_dir.path().join("passwd");
    std::fs::write(&victim, "root:x:0:0\n").unwrap();
    chmod(&victim, 0o644);
    let _ = std::fs::remove_dir_all(home.state.join("logs"));
    std::os::unix::fs::symlink(outside_dir.path(), home.state.join("logs")).unwrap();
    let (_, report) = home.report(&["security", "audit", "--only", "fs.logs"]);
    assert_eq!(ids(&report), vec!["fs.logs.symlink"], "{report}");
    home.report(&["security", "audit", "--fix", "--non-interactive"]);
    assert_eq!(mode(&victim), 0o644, "a file behind the link was changed");
}

#[test]
fn a_tampered_journal_is_refused() {
    let home = Home::new();
    let outside_dir = tempfile::tempdir().unwrap();
    let victim = outside_dir.path().join("shadow");
    std::fs::write(&victim, "secret\n").unwrap();
    chmod(&victim, 0o600);
    let fixes = home.state.join("fixes");
    std::fs::create_dir_all(&fixes).unwrap();
    let forged = serde_json::json!({
        "seq": 1, "fixId": "x", "checkId": "x", "description": "x", "appliedAtMs": 0,
        "undo": [{"op": "restoreMode", "path": victim, "mode": 0o666}]
    });
    let journal = fixes.join("journal.jsonl");
    std::fs::write(&journal, format!("{forged}\n")).unwrap();
    chmod(&journal, 0o666);
    let out = home.run(&["undo"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not safe"),
        "{out:?}"
    );
    assert_eq!(
        mode(&victim),
        0o600,
        "undo acted on a journal others could write"
    );
    let (_, report) = home.report(&["security", "audit", "--only", "fs.journal"]);
    let f = finding(&report, "fs.journal.perms_writable").expect("finding");
    assert_eq!(f["severity"], "critical");
}

#[test]
fn a_fix_that_cannot_be_journaled_is_reverted() {
    let home = Home::new();
    let original = "[sandbox]\nfuel = 0\n";
    std::fs::write(home.config(), original).unwrap();
    // A file where the journal dir belongs.
    std::fs::write(home.state.join("fixes"), "not a dir").unwrap();
    let out = home.run(&[
        "security",
        "audit",
        "--only",
        "sandbox",
        "--fix",
        "--non-interactive",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not applied"),
        "{out:?}"
    );
    assert_eq!(std::fs::read_to_string(home.config()).unwrap(), original);
}

#[test]
fn undo_through_call_never_prints_the_removed_key() {
    let home = Home::new();
    std::fs::write(
        home.config(),
        "[providers.openai]\napi_key = \"sk-live-UNDOSECRET0123456789abcdef\"\n",
    )
    .unwrap();
    home.report(&[
        "security",
        "audit",
        "--only",
        "config",
        "--fix",
        "--non-interactive",
    ]);
    let out = home.run(&["call", "findings.undo"]);
    assert!(out.status.success(), "{out:?}");
    let journal = home.run(&["call", "findings.journal"]);
    for shown in [&out.stdout, &journal.stdout] {
        assert!(!String::from_utf8_lossy(shown).contains("UNDOSECRET"));
    }
}

#[test]
fn a_key_in_the_profile_file_is_found_even_when_config_toml_overrides_it() {
    let home = Home::new();
    std::fs::create_dir_all(home.state.join("profiles")).unwrap();
    let profile = home.state.join("profiles/core.toml");
    std::fs::write(
        &profile,
        "[providers.openai]\napi_key = \"sk-live-PROFILESECRET0123456789\"\n",
    )
    .unwrap();
    chmod(&profile, 0o600);
    std::fs::write(
        home.config(),
        "[providers.openai]\napi_key = \"env:OPENAI_API_KEY\"\n",
    )
    .unwrap();
    let (_, report) = home.report(&["security", "audit", "--profile", "core"]);
    let f = finding(&report, "config.secrets.plaintext_key").expect("finding");
    assert!(
        f["path"].as_str().unwrap().contains("profiles/core.toml"),
        "{f}"
    );
    home.report(&[
        "security",
        "audit",
        "--profile",
        "core",
        "--fix",
        "--non-interactive",
    ]);
    let fixed = std::fs::read_to_string(&profile).unwrap();
    assert!(
        !fixed.contains("PROFILESECRET") && fixed.contains("env:OPENAI_API_KEY"),
        "{fixed}"
    );
}

#[test]
fn credentials_in_a_url_are_found_and_never_shown() {
    let home = Home::new();
    std::fs::write(
        home.config(),
        "[providers.proxy]\nkind = \"openai\"\nbase_url = \"HTTP://bob:URLPASS123@10.1.2.3:8080/v1?api_key=URLQUERY456\"\n",
    )
    .unwrap();
    let out = home.run(&["security", "audit", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("URLPASS123") && !text.contains("URLQUERY456"),
        "{text}"
    );
    let report: Value = serde_json::from_str(&text).unwrap();
    assert!(finding(&report, "config.secrets.url_credentials").is_some());
    assert!(
        finding(&report, "providers.plaintext_http_remote").is_some(),
        "upper-case scheme too"
    );
    let out = home.run(&["security", "audit", "--fix", "--dry-run"]);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !printed.contains("URLPASS123") && !printed.contains("URLQUERY456"),
        "{printed}"
    );
}

/// A key anywhere in `config.toml` or the profile file is found, whatever the key or table
/// around it (a misspelt table, an unknown key, an inline table, an array, a comment); the
/// secret is never printed; the fix comments each line out with the secret removed and
/// names the variable to set; undo restores both files byte for byte.
#[test]
fn a_key_outside_the_known_fields_is_found_fixed_and_never_shown() {
    let home = Home::new();
    let config = "# the old key was sk-proj-COMMENTSECRET0123456789ab\n\
        [provider.openai] # misspelt\n\
        api_key = \"sk-live-MISSPELTSECRET0123456789\"\n\n\
        [providers.anthropic]\n\
        api_key = \"sk-ant-KNOWNFIELDSECRET0123456789\"\n\n\
        [providers.openai]\n\
        backup_key = \"sk-ant-UNKNOWNSECRET0123456789ab\"\n\n\
        [mine]\n\
        extra = { token = \"ghp_INLINESECRET0123456789abcdefghijklm\" }\n\
        keys = [\n  \"glpat-ARRAYSECRET0123456789\",\n]\n";
    std::fs::write(home.config(), config).unwrap();
    chmod(&home.config(), 0o600);
    std::fs::create_dir_all(home.state.join("profiles")).unwrap();
    let profile = home.state.join("profiles/core.toml");
    let profile_text = "# aws: AKIAPROFILESECRET123\n[ui]\n";
    std::fs::write(&profile, profile_text).unwrap();
    chmod(&profile, 0o600);

    let audit = ["security", "audit", "--profile", "core"];
    let (_, report) = home.report(&audit);
    let literal: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["checkId"] == "config.secrets.literal_in_file")
        .collect();
    let paths: Vec<String> = literal
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    for line in [1, 3, 9, 12, 14] {
        assert!(
            paths
                .iter()
                .any(|p| p.ends_with(&format!("config.toml:{line}"))),
            "line {line}: {paths:?}"
        );
    }
    assert!(
        paths.iter().any(|p| p.ends_with("profiles/core.toml:1")),
        "{paths:?}"
    );
    assert_eq!(
        literal.len(),
        6,
        "the known field is not reported twice: {paths:?}"
    );
    let known = finding(&report, "config.secrets.plaintext_key").expect("known field");
    assert!(
        known["path"]
            .as_str()
            .unwrap()
            .contains("providers.anthropic.api_key")
    );
    let misspelt = literal
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with(":3"))
        .unwrap();
    assert!(
        misspelt["detail"]
            .as_str()
            .unwrap()
            .contains("OPENAI_API_KEY"),
        "the variable to set is named: {misspelt}"
    );
    assert!(literal.iter().all(|f| f["fix"]["diff"].is_string()));

    // No face prints a secret: JSON, human, --deep, the dry run.
    let mut printed = report.to_string();
    for args in [
        &audit[..],
        &["security", "audit", "--profile", "core", "--deep"],
        &["security", "audit", "--profile", "core", "--json", "--deep"],
        &[
            "security",
            "audit",
            "--profile",
            "core",
            "--fix",
            "--dry-run",
        ],
    ] {
        let out = home.run(args);
        printed.push_str(&String::from_utf8_lossy(&out.stdout));
        printed.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    assert!(printed.contains("literal_in_file"), "{printed}");
    assert!(!printed.contains("SECRET"), "{printed}");

    let (_, fixed) = home.report(&[
        "security",
        "audit",
        "--profile",
        "core",
        "--fix",
        "--non-interactive",
    ]);
    assert!(!fixed.to_string().contains("SECRET"));
    assert!(
        finding(&fixed, "config.secrets.literal_in_file").is_none(),
        "{fixed}"
    );
    assert!(
        finding(&fixed, "config.secrets.plaintext_key").is_none(),
        "{fixed}"
    );
    let now = std::fs::read_to_string(home.config()).unwrap();
    assert!(!now.contains("SECRET"), "{now}");
    assert_eq!(now.lines().count(), config.lines().count(), "{now}");
    assert!(
        now.contains(
            "# api_key = \"<redacted>\"  # openclaw-rs: a key was removed here; set OPENAI_API_KEY"
        ),
        "{now}"
    );
    assert!(now.contains("api_key = \"env:ANTHROPIC_API_KEY\""), "{now}");
    now.parse::<toml::Table>().expect("still TOML");
    let profile_now = std::fs::read_to_string(&profile).unwrap();
    assert!(
        !profile_now.contains("SECRET") && profile_now.contains("AWS_ACCESS_KEY_ID"),
        "{profile_now}"
    );

    // Undo every fix, newest first: both files byte for byte.
    while home.run(&["undo"]).status.success() {}
    assert_eq!(std::fs::read_to_string(home.config()).unwrap(), config);
    assert_eq!(std::fs::read_to_string(&profile).unwrap(), profile_text);
}
