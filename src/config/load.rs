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
mod tests;
