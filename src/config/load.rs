//! Loading and merging the configuration layers.
//!
//! Each layer is parsed and type-checked on its own, so an error points at the file, line and
//! column (or the environment variable) that caused it. A layer with an error is left out and
//! the rest still apply: the TUI runs on what is valid and shows the error, the CLI exits 2.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Serialize;

use super::{BUILD_TRACK, Config, Diagnostic, Paths, key_offset};

/// Profiles compiled into the binary. A file of the same name in `<state>/profiles/`
/// overrides the keys it sets.
pub const BUILTIN_PROFILES: &[(&str, &str)] = &[
    ("core", include_str!("../../profiles/core.toml")),
    ("edge", include_str!("../../profiles/edge.toml")),
];

pub fn builtin_profile(name: &str) -> Option<&'static str> {
    BUILTIN_PROFILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

/// The profile a build uses when nothing selects one: the build track's own.
pub fn default_profile_name() -> &'static str {
    BUILD_TRACK
}

/// Everything that selects and overrides configuration, gathered by the binary's edge so that
/// loading itself is a pure function of its inputs (and testable without touching the process
/// environment).
#[derive(Clone, Default)]
pub struct LoadOptions {
    pub state_dir: PathBuf,
    /// `--config PATH`; must exist when given.
    pub config_file: Option<PathBuf>,
    /// `--profile NAME`.
    pub profile: Option<String>,
    /// `--theme NAME`.
    pub theme: Option<String>,
    /// `--keymap NAME`.
    pub keymap: Option<String>,
    /// The `OPENCLAW_RS_*` environment variables.
    pub env: BTreeMap<String, String>,
}

/// Environment values may be secrets: debug output names the variables only.
impl std::fmt::Debug for LoadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadOptions")
            .field("state_dir", &self.state_dir)
            .field("config_file", &self.config_file)
            .field("profile", &self.profile)
            .field("theme", &self.theme)
            .field("keymap", &self.keymap)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl LoadOptions {
    /// Take the `OPENCLAW_RS_*` variables from the process environment.
    pub fn with_process_env(mut self) -> Self {
        self.env = std::env::vars()
            .filter(|(k, _)| k.starts_with("OPENCLAW_RS_"))
            .collect();
        self
    }

    fn env_special(&self, name: &str) -> Option<&str> {
        self.env
            .get(&format!("OPENCLAW_RS_{name}"))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileSource {
    pub name: String,
    /// Whether a built-in profile of this name exists.
    pub builtin: bool,
    /// The user's override file, if present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_file: Option<PathBuf>,
    /// The built-in profile the user file sits on (the profile itself, or the build's default
    /// for a profile that exists only as a user file).
    pub base: String,
}

/// One layer as it took part in the merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigLayer {
    /// `builtin-profile`, `user-profile`, `config-file`, `environment`, `flags`.
    pub kind: String,
    pub source: String,
    /// False when the layer had an error and was left out.
    pub applied: bool,
}

#[derive(Clone)]
pub struct Loaded {
    pub config: Config,
    /// The merged document, unknown keys included: they are kept, never dropped silently.
    pub raw: toml::Table,
    pub paths: Paths,
    pub profile: ProfileSource,
    pub layers: Vec<ConfigLayer>,
    pub diagnostics: Vec<Diagnostic>,
    /// Dotted paths of keys nothing reads (also reported as warnings).
    pub unknown_keys: Vec<String>,
    /// What it was loaded from, so the same layers can be read again.
    pub options: LoadOptions,
}

/// `raw` holds values as written, literal keys included: debug output leaves it out.
impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("config", &self.config)
            .field("paths", &self.paths)
            .field("profile", &self.profile)
            .field("layers", &self.layers)
            .field("diagnostics", &self.diagnostics)
            .field("unknown_keys", &self.unknown_keys)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }
}

/// A profile, theme or keymap name that is safe to use as a file name in the state dir.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

struct LayerOutcome {
    table: toml::Table,
    unknown: Vec<String>,
}

/// Parse and type-check one layer. Errors and warnings go to `diags`; `None` leaves it out.
fn check_layer(source: &str, text: &str, diags: &mut Vec<Diagnostic>) -> Option<LayerOutcome> {
    let table: toml::Table = match toml::from_str(text) {
        Ok(t) => t,
        Err(e) => {
            diags.push(Diagnostic::from_toml(source, text, &e));
            return None;
        }
    };
    let mut unknown = Vec::new();
    let typed: Config = match toml::Deserializer::parse(text)
        .and_then(|de| serde_ignored::deserialize(de, |path| unknown.push(path.to_string())))
    {
        Ok(c) => c,
        Err(e) => {
            diags.push(Diagnostic::from_toml(source, text, &e));
            return None;
        }
    };
    for path in &unknown {
        let segments: Vec<String> = path.split('.').map(str::to_string).collect();
        diags.push(
            Diagnostic::warning(
                source,
                format!("unknown key '{path}' is kept but nothing reads it; check its spelling"),
            )
            .at(text, key_offset(text, &segments)),
        );
    }
    for (id, provider) in &typed.providers {
        if provider.api_key.as_ref().is_some_and(|k| k.is_inline()) {
            let segments = ["providers", id.as_str(), "api_key"].map(String::from);
            diags.push(
                Diagnostic::warning(
                    source,
                    format!(
                        "providers.{id}.api_key holds a literal key; store a reference such as \
                         \"env:OPENAI_API_KEY\" or \"file:/path/to/key\" instead"
                    ),
                )
                .at(text, key_offset(text, &segments)),
            );
        }
    }
    Some(LayerOutcome { table, unknown })
}

/// Deep merge: tables merge key by key, anything else in `upper` replaces `lower`.
fn merge(lower: &mut toml::Table, upper: toml::Table) {
    for (key, value) in upper {
        match (lower.get_mut(&key), value) {
            (Some(toml::Value::Table(low)), toml::Value::Table(up)) => merge(low, up),
            (_, value) => {
                lower.insert(key, value);
            }
        }
    }
}

/// `OPENCLAW_RS_SELF_HEAL__MAX_ATTEMPTS=5` -> `self_heal.max_attempts = 5`.
/// Values are read as TOML (numbers, booleans, arrays), else as plain strings.
fn env_layer(opts: &LoadOptions, diags: &mut Vec<Diagnostic>) -> Vec<(String, LayerOutcome)> {
    let mut layers = Vec::new();
    for (name, raw) in &opts.env {
        let Some(rest) = name.strip_prefix("OPENCLAW_RS_") else {
            continue;
        };
        if !rest.contains("__") {
            // Plain variables are commands' own switches (or read elsewhere), not keys.
            continue;
        }
        let segments: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if segments.iter().any(|s| s.is_empty()) {
            diags.push(Diagnostic::warning(
                format!("environment variable {name}"),
                "empty key segment; use OPENCLAW_RS_SECTION__KEY",
            ));
            continue;
        }
        let value = parse_env_value(raw);
        let mut table = toml::Table::new();
        let mut cursor = &mut table;
        for segment in &segments[..segments.len() - 1] {
            cursor = cursor
                .entry(segment.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .expect("just inserted a table");
        }
        cursor.insert(segments[segments.len() - 1].clone(), value);
        let text = toml::to_string(&table).unwrap_or_default();
        let source = format!("environment variable {name}");
        let mut local = Vec::new();
        if let Some(outcome) = check_layer(&source, &text, &mut local) {
            layers.push((source, outcome));
        }
        // Positions inside the synthesized text mean nothing to the user.
        diags.extend(local.into_iter().map(|mut d| {
            d.line = None;
            d.column = None;
            d
        }));
    }
    layers
}

fn parse_env_value(raw: &str) -> toml::Value {
    let probe = format!("v = {raw}");
    toml::from_str::<toml::Table>(&probe)
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

fn read_file(path: &std::path::Path, diags: &mut Vec<Diagnostic>) -> Option<String> {
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Some(text),
            Err(e) => {
                diags.push(Diagnostic::error(
                    path.display().to_string(),
                    format!(
                        "not valid UTF-8 (first bad byte at offset {}); save the file as UTF-8",
                        e.utf8_error().valid_up_to()
                    ),
                ));
                None
            }
        },
        Err(e) => {
            diags.push(Diagnostic::error(
                path.display().to_string(),
                format!("cannot read: {e}"),
            ));
            None
        }
    }
}

/// Load every layer. Never fails: problems are diagnostics, and the result is always usable.
pub fn load(opts: &LoadOptions) -> Loaded {
    load_layers(opts, true)
}

/// A profile alone: the built-in merged with the user's profile file, without `config.toml`,
/// the environment or flags.
pub fn load_profile(state_dir: &std::path::Path, name: &str) -> Loaded {
    let opts = LoadOptions {
        state_dir: state_dir.to_path_buf(),
        profile: Some(name.to_string()),
        ..Default::default()
    };
    load_layers(&opts, false)
}

fn load_layers(opts: &LoadOptions, with_config_file: bool) -> Loaded {
    let paths = Paths::new(opts.state_dir.clone(), opts.config_file.clone());
    let mut diags = Vec::new();
    let mut layers = Vec::new();
    let mut unknown_keys = Vec::new();

    // The config file is read first: its `profile` key selects the profile beneath it.
    let config_source = paths.config_file.display().to_string();
    let config_outcome = if !with_config_file {
        None
    } else if paths.config_file.exists() {
        read_file(&paths.config_file, &mut diags)
            .and_then(|text| check_layer(&config_source, &text, &mut diags))
    } else {
        if opts.config_file.is_some() {
            diags.push(Diagnostic::error(
                &config_source,
                "config file does not exist; check the --config path",
            ));
        }
        None
    };
    let file_profile = config_outcome
        .as_ref()
        .and_then(|o| o.table.get("profile"))
        .and_then(toml::Value::as_str)
        .map(str::to_string);

    let requested = opts
        .profile
        .clone()
        .or_else(|| opts.env_special("PROFILE").map(str::to_string))
        .or(file_profile);
    let profile = select_profile(requested, &paths, &mut diags);

    // Layer 1: the built-in profile. Layer 2: the user's profile file.
    let base_text = builtin_profile(&profile.base).unwrap_or_default();
    let mut merged = toml::Table::new();
    let base_source = format!("built-in profile {}", profile.base);
    // The built-in profiles are tested to parse; failing here is a build defect, and the
    // compiled-in defaults still apply.
    let base_outcome = check_layer(&base_source, base_text, &mut diags);
    let base_applied = base_outcome.is_some();
    if let Some(outcome) = base_outcome {
        merge(&mut merged, outcome.table);
    }
    let builtin_only = merged.clone();
    layers.push(ConfigLayer {
        kind: "builtin-profile".into(),
        source: base_source,
        applied: base_applied,
    });
    if let Some(file) = &profile.user_file {
        let source = file.display().to_string();
        let outcome =
            read_file(file, &mut diags).and_then(|text| check_layer(&source, &text, &mut diags));
        layers.push(ConfigLayer {
            kind: "user-profile".into(),
            source,
            applied: outcome.is_some(),
        });
        if let Some(outcome) = outcome {
            unknown_keys.extend(outcome.unknown);
            merge(&mut merged, outcome.table);
        }
    }
    let profile_only = merged.clone();

    // Layer 3: config.toml.
    if with_config_file {
        layers.push(ConfigLayer {
            kind: "config-file".into(),
            source: config_source,
            applied: config_outcome.is_some(),
        });
    }
    if let Some(outcome) = config_outcome {
        unknown_keys.extend(outcome.unknown);
        merge(&mut merged, outcome.table);
    }

    // Layer 4: environment.
    for (source, outcome) in env_layer(opts, &mut diags) {
        unknown_keys.extend(outcome.unknown);
        merge(&mut merged, outcome.table);
        layers.push(ConfigLayer {
            kind: "environment".into(),
            source,
            applied: true,
        });
    }

    // Layer 5: flags. OPENCLAW_RS_THEME and OPENCLAW_RS_KEYMAP stand in for a missing flag,
    // so they rank above OPENCLAW_RS_UI__THEME but below the flag itself.
    let mut ui = toml::Table::new();
    let theme = opts.theme.as_deref().or_else(|| opts.env_special("THEME"));
    let keymap = opts
        .keymap
        .as_deref()
        .or_else(|| opts.env_special("KEYMAP"));
    if let Some(theme) = theme {
        ui.insert("theme".into(), toml::Value::String(theme.into()));
    }
    if let Some(keymap) = keymap {
        ui.insert("keymap".into(), toml::Value::String(keymap.into()));
    }
    if !ui.is_empty() {
        let mut flags = toml::Table::new();
        flags.insert("ui".into(), toml::Value::Table(ui));
        merge(&mut merged, flags);
        layers.push(ConfigLayer {
            kind: "flags".into(),
            source: "command line".into(),
            applied: true,
        });
    }

    let config = match finish(&merged) {
        Ok(config) => {
            let problems = config.validate();
            if problems.is_empty() {
                config
            } else {
                // Only the values at fault fall back: to the profile's, or to the built-in
                // profile's where the user's profile file holds the fault itself. Every other
                // key of every layer, flags included, still applies.
                let keys: Vec<&str> = problems
                    .iter()
                    .flat_map(|p| p.keys.iter().map(String::as_str))
                    .collect();
                let fallbacks = [
                    (&profile_only, "the profile's value"),
                    (&builtin_only, "the built-in profile's value"),
                ];
                let (config, used) = fallbacks
                    .into_iter()
                    .find_map(|(source, used)| {
                        let mut repaired = merged.clone();
                        for key in &keys {
                            reset_key(&mut repaired, source, key);
                        }
                        valid_config(&repaired).map(|config| (config, used))
                    })
                    .unwrap_or_else(|| (Config::default(), "the built-in default"));
                for problem in problems {
                    diags.push(Diagnostic::error(
                        "effective configuration",
                        format!("{}; using {used}", problem.message),
                    ));
                }
                config
            }
        }
        Err(message) => {
            diags.push(Diagnostic::error("effective configuration", message));
            valid_config(&profile_only)
                .or_else(|| valid_config(&builtin_only))
                .unwrap_or_default()
        }
    };
    Loaded {
        config,
        raw: merged,
        paths,
        profile,
        layers,
        diagnostics: diags,
        unknown_keys,
        options: opts.clone(),
    }
}

/// Put `key` (dotted) back to its value in `source`, or remove it where `source` lacks it.
fn reset_key(table: &mut toml::Table, source: &toml::Table, key: &str) {
    let segments: Vec<&str> = key.split('.').collect();
    let Some((last, parents)) = segments.split_last() else {
        return;
    };
    let mut target = table;
    let mut from = Some(source);
    for segment in parents {
        from = from
            .and_then(|t| t.get(*segment))
            .and_then(toml::Value::as_table);
        match target.get_mut(*segment).and_then(toml::Value::as_table_mut) {
            Some(inner) => target = inner,
            None => return,
        }
    }
    match from.and_then(|t| t.get(*last)) {
        Some(value) => {
            target.insert(last.to_string(), value.clone());
        }
        None => {
            target.remove(*last);
        }
    }
}

/// The table as a configuration, when it is one that passes [`Config::validate`].
fn valid_config(table: &toml::Table) -> Option<Config> {
    finish(table).ok().filter(|c| c.validate().is_empty())
}

fn finish(table: &toml::Table) -> Result<Config, String> {
    let mut config = toml::Value::Table(table.clone())
        .try_into::<Config>()
        .map_err(|e| super::diag::hide_values(e.message()))?;
    config.normalize();
    Ok(config)
}

fn select_profile(
    requested: Option<String>,
    paths: &Paths,
    diags: &mut Vec<Diagnostic>,
) -> ProfileSource {
    let fallback = default_profile_name().to_string();
    let name = match requested {
        Some(name) if valid_name(&name) => name,
        Some(name) => {
            diags.push(Diagnostic::error(
                "profile",
                format!(
                    "profile name '{name}' is not valid: use letters, digits, '-' and '_' only"
                ),
            ));
            fallback.clone()
        }
        None => fallback.clone(),
    };
    let builtin = builtin_profile(&name).is_some();
    let user_file = paths.profiles_dir.join(format!("{name}.toml"));
    let user_file = user_file.exists().then_some(user_file);
    if !builtin && user_file.is_none() {
        diags.push(Diagnostic::error(
            "profile",
            format!(
                "unknown profile '{name}': the built-in profiles are {}; or create {}",
                BUILTIN_PROFILES
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", "),
                paths.profiles_dir.join(format!("{name}.toml")).display()
            ),
        ));
        return ProfileSource {
            name: fallback.clone(),
            builtin: true,
            user_file: None,
            base: fallback,
        };
    }
    ProfileSource {
        base: if builtin { name.clone() } else { fallback },
        name,
        builtin,
        user_file,
    }
}

#[cfg(test)]
mod tests {
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
}
