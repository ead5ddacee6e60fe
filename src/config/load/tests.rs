//! Tests of the layer merge: precedence, diagnostics with lines, resets to the profile.

use super::*;
use crate::config::{Level, SandboxBackendPref};

fn opts(dir: &std::path::Path) -> LoadOptions {
    LoadOptions {
        state_dir: dir.to_path_buf(),
        ..Default::default()
    }
}

#[test]
fn builtin_profiles_parse_cleanly_and_validate() {
    for (name, text) in BUILTIN_PROFILES {
        let mut diags = Vec::new();
        let outcome = check_layer(name, text, &mut diags).expect("parses");
        assert!(diags.is_empty(), "{name}: {diags:?}");
        assert!(outcome.unknown.is_empty());
        let config = finish(&outcome.table).unwrap();
        assert!(config.validate().is_empty(), "{name}");
    }
}

#[test]
fn profiles_really_differ() {
    let core: Config = toml::from_str(builtin_profile("core").unwrap()).unwrap();
    let edge: Config = toml::from_str(builtin_profile("edge").unwrap()).unwrap();
    assert_eq!(core.sandbox.backend, SandboxBackendPref::Wasmi);
    assert_eq!(edge.sandbox.backend, SandboxBackendPref::Wasmtime);
    assert!(edge.self_heal.max_attempts > core.self_heal.max_attempts);
}

#[test]
fn default_config_template_is_all_defaults_and_valid_when_uncommented() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = Paths::new(tmp.path().to_path_buf(), None);
    crate::config::ensure_state_dir(&paths).unwrap();
    let loaded = load(&opts(tmp.path()));
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);

    // Uncommenting every `# key = value` line must still give a valid file, so the
    // template cannot drift from the schema.
    let uncommented: String = super::super::paths::DEFAULT_CONFIG_TOML
        .lines()
        .map(|l| {
            let t = l.trim_start();
            match t.strip_prefix("# ") {
                Some(rest)
                    if rest.contains(" = ")
                        && !rest.starts_with("profile")
                        && !rest.starts_with("[")
                        && !rest.starts_with("kind")
                        && !rest.starts_with("base_url")
                        && !rest.starts_with("api_key")
                        && !rest.starts_with("model =")
                        && !rest.starts_with("models =")
                        && !rest.starts_with("priority")
                        && !rest.starts_with("capabilities")
                        && !rest.starts_with("timeouts")
                        && !rest.starts_with("max_tokens")
                        && !rest.starts_with("check_id")
                        && !rest.starts_with("path =")
                        && !rest.starts_with("reason") =>
                {
                    rest.to_string()
                }
                _ => l.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut diags = Vec::new();
    let outcome = check_layer("template", &uncommented, &mut diags);
    assert!(outcome.is_some() && diags.is_empty(), "{diags:?}");
}

#[test]
fn precedence_builtin_user_profile_file_env_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("profiles")).unwrap();
    std::fs::write(
        dir.join("profiles/core.toml"),
        "[sandbox]\nfuel = 1\nmemory_mb = 11\ntimeout_ms = 111\n[ui]\ntheme = \"light\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("config.toml"),
        "[sandbox]\nmemory_mb = 22\ntimeout_ms = 222\n",
    )
    .unwrap();
    let mut o = opts(dir);
    o.profile = Some("core".into());
    o.env
        .insert("OPENCLAW_RS_SANDBOX__TIMEOUT_MS".into(), "333".into());
    o.env.insert("OPENCLAW_RS_THEME".into(), "basic".into());
    let loaded = load(&o);
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    let c = &loaded.config;
    assert_eq!(c.sandbox.fuel, 1, "user profile beats built-in");
    assert_eq!(c.sandbox.memory_mb, 22, "config.toml beats user profile");
    assert_eq!(c.sandbox.timeout_ms, 333, "environment beats config.toml");
    assert_eq!(c.ui.theme, "basic");
    assert_eq!(
        c.sandbox.max_output_kb, 256,
        "untouched keys keep the built-in"
    );

    o.theme = Some("default".into());
    let loaded = load(&o);
    assert_eq!(loaded.config.ui.theme, "default", "flags beat everything");
}

#[test]
fn profile_selection_flag_env_file_default() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("config.toml"), "profile = \"edge\"\n").unwrap();
    let mut o = opts(dir);
    assert_eq!(load(&o).profile.name, "edge");
    o.env.insert("OPENCLAW_RS_PROFILE".into(), "core".into());
    assert_eq!(load(&o).profile.name, "core");
    o.profile = Some("edge".into());
    let loaded = load(&o);
    assert_eq!(loaded.profile.name, "edge");
    assert_eq!(loaded.config.sandbox.backend, SandboxBackendPref::Wasmtime);
}

#[test]
fn unknown_and_traversing_profiles_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(tmp.path());
    o.profile = Some("nope".into());
    let loaded = load(&o);
    assert!(loaded.has_errors());
    assert_eq!(loaded.profile.name, default_profile_name());
    o.profile = Some("../../etc/passwd".into());
    let loaded = load(&o);
    assert!(loaded.errors().any(|d| d.message.contains("not valid")));
}

#[test]
fn custom_user_profile_sits_on_the_build_default() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("profiles")).unwrap();
    std::fs::write(
        tmp.path().join("profiles/work.toml"),
        "[self_heal]\nmax_attempts = 7\n",
    )
    .unwrap();
    let mut o = opts(tmp.path());
    o.profile = Some("work".into());
    let loaded = load(&o);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    assert_eq!(loaded.profile.name, "work");
    assert_eq!(loaded.profile.base, default_profile_name());
    assert_eq!(loaded.config.self_heal.max_attempts, 7);
}

#[test]
fn syntax_error_names_file_line_column_and_other_layers_still_apply() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("config.toml");
    std::fs::write(&path, "[ui]\ntheme = \"light\"\n[sandbox\nfuel = 1\n").unwrap();
    let mut o = opts(tmp.path());
    o.env
        .insert("OPENCLAW_RS_SANDBOX__FUEL".into(), "99".into());
    let loaded = load(&o);
    let err = loaded.errors().next().expect("an error");
    assert_eq!(err.source, path.display().to_string());
    assert_eq!(err.line, Some(3));
    assert!(err.column.is_some());
    assert_eq!(loaded.config.sandbox.fuel, 99);
    assert_eq!(
        loaded.config.ui.theme, "default",
        "the broken file is left out"
    );
}

#[test]
fn type_error_points_at_the_value() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("config.toml"),
        "[sandbox]\n\nfuel = \"lots\"\n",
    )
    .unwrap();
    let loaded = load(&opts(tmp.path()));
    let err = loaded.errors().next().expect("an error");
    assert_eq!(err.line, Some(3), "{err}");
}

#[test]
fn unknown_keys_are_kept_and_warned_with_their_line() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("config.toml"),
        "[sandbox]\nfule = 5\n[experimental]\nflag = true\n",
    )
    .unwrap();
    let loaded = load(&opts(tmp.path()));
    assert!(!loaded.has_errors());
    let warn = loaded
        .diagnostics
        .iter()
        .find(|d| d.message.contains("sandbox.fule"))
        .expect("warned");
    assert_eq!(warn.level, Level::Warning);
    assert_eq!(warn.line, Some(2));
    assert!(loaded.unknown_keys.contains(&"experimental".to_string()));
    assert_eq!(loaded.raw["sandbox"]["fule"].as_integer(), Some(5));
    assert_eq!(loaded.raw["experimental"]["flag"].as_bool(), Some(true));
}

#[test]
fn inline_keys_warn_and_never_leak() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("config.toml"),
        "[providers.openai]\nkind = \"openai\"\napi_key = \"sk-live-abcdef\"\n",
    )
    .unwrap();
    let loaded = load(&opts(tmp.path()));
    let warn = loaded
        .diagnostics
        .iter()
        .find(|d| d.message.contains("literal key"))
        .expect("warned");
    assert_eq!(warn.line, Some(3));
    assert!(!warn.to_string().contains("sk-live"));
    let shown = serde_json::to_string(&loaded.config).unwrap();
    assert!(!shown.contains("sk-live"), "{shown}");
}

#[test]
fn env_type_errors_name_the_variable() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(tmp.path());
    o.env
        .insert("OPENCLAW_RS_SANDBOX__FUEL".into(), "plenty".into());
    o.env.insert(
        "OPENCLAW_RS_SELF_HEAL__FALLBACK".into(),
        "[\"offline\"]".into(),
    );
    let loaded = load(&o);
    let err = loaded.errors().next().expect("an error");
    assert!(err.source.contains("OPENCLAW_RS_SANDBOX__FUEL"), "{err}");
    assert_eq!(loaded.config.self_heal.fallback, vec!["offline"]);
}

/// Found while writing the `config_load` fuzz target's invariant: a value in the user's
/// profile file that fails validation was "reset" to itself, leaving the effective
/// configuration invalid.
#[test]
fn a_faulty_user_profile_value_falls_back_to_the_builtin_profile() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("profiles")).unwrap();
    std::fs::write(
        tmp.path().join("profiles").join("core.toml"),
        "[self_heal]\nmax_attempts = 0\n[memory]\ndimensions = 64\n",
    )
    .unwrap();
    let mut o = opts(tmp.path());
    o.profile = Some("core".into());
    for loaded in [load(&o), load_profile(tmp.path(), "core")] {
        assert!(loaded.config.validate().is_empty());
        assert_eq!(loaded.config.self_heal.max_attempts, 3);
        assert_eq!(loaded.config.memory.dimensions, 64, "valid keys stay");
        assert!(
            loaded
                .errors()
                .any(|d| d.message.ends_with("using the built-in profile's value")),
            "{:?}",
            loaded.diagnostics
        );
    }
}

#[test]
fn failed_validation_resets_only_the_faulty_keys() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("config.toml"),
        "[memory]\nchunk_tokens = 10\nchunk_overlap = 50\ndimensions = 64\n[self_heal]\nmax_attempts = 0\nattempt_share = 1.5\npark_after = 5\n",
    )
    .unwrap();
    let mut o = opts(tmp.path());
    o.keymap = Some("vim".into());
    o.profile = Some("core".into());
    let loaded = load(&o);
    assert!(loaded.errors().any(|d| d.message.contains("chunk_overlap")));
    assert!(loaded.errors().any(|d| d.message.contains("max_attempts")));
    assert!(loaded.errors().any(|d| d.message.contains("attempt_share")));
    assert_eq!(loaded.config.self_heal.attempt_share, 0.5);
    assert_eq!(loaded.config.self_heal.park_after, 5);
    assert_eq!(loaded.config.memory.chunk_tokens, 400);
    assert_eq!(loaded.config.memory.chunk_overlap, 80);
    assert_eq!(loaded.config.self_heal.max_attempts, 3);
    assert_eq!(
        loaded.config.memory.dimensions, 64,
        "valid keys of the file stay"
    );
    assert_eq!(loaded.config.ui.keymap, "vim", "flags stay");
}

#[test]
fn one_provider_field_can_be_overridden_from_a_higher_layer() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("config.toml"),
        "[providers.work]\nkind = \"openai\"\nmodel = \"a\"\n[providers.ollama]\nmodel = \"llama3.2\"\n",
    )
    .unwrap();
    let mut o = opts(tmp.path());
    o.env
        .insert("OPENCLAW_RS_PROVIDERS__WORK__MODEL".into(), "b".into());
    let loaded = load(&o);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let work = &loaded.config.providers["work"];
    assert_eq!(work.model.as_deref(), Some("b"));
    assert_eq!(work.kind, Some(crate::config::ProviderKind::Openai));
    assert_eq!(
        loaded.config.providers["ollama"].kind,
        Some(crate::config::ProviderKind::Ollama),
        "a kind-named id needs no kind"
    );
}

#[test]
fn a_provider_without_a_kind_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("config.toml"),
        "[providers.mystery]\nmodel = \"x\"\n",
    )
    .unwrap();
    let loaded = load(&opts(tmp.path()));
    assert!(
        loaded
            .errors()
            .any(|d| d.message.contains("providers.mystery.kind"))
    );
    assert!(!loaded.config.providers.contains_key("mystery"));
}

#[test]
fn debug_output_hides_raw_values_and_environment_values() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("config.toml"),
        "[providers.openai]\napi_key = \"sk-live-RAWSECRET\"\n",
    )
    .unwrap();
    let mut o = opts(tmp.path());
    o.env.insert(
        "OPENCLAW_RS_PROVIDERS__X__API_KEY".into(),
        "ENVSECRET".into(),
    );
    let loaded = load(&o);
    let shown = format!("{loaded:?}");
    assert!(
        !shown.contains("RAWSECRET") && !shown.contains("ENVSECRET"),
        "{shown}"
    );
}

#[test]
fn missing_explicit_config_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(tmp.path());
    o.config_file = Some(tmp.path().join("absent.toml"));
    assert!(load(&o).has_errors());
}
