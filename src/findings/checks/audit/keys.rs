//! Keys written down where they should not be: literal `api_key` values in config.toml and
//! the active profile's file (and in OPENCLAW_RS_PROVIDERS__ID__API_KEY), and any other
//! secret shape in those files, each with the environment variable to move it to.

use crate::config::{ProviderKind, SecretRef};
use crate::findings::checks::set_config;
use crate::findings::{Context, Finding, Severity, show, state_paths};
use crate::secrets;

/// Files a user writes config in: `config.toml` and the active profile's file.
fn user_files(ctx: &Context<'_>) -> Vec<std::path::PathBuf> {
    let mut files = vec![ctx.snapshot.loaded.paths.config_file.clone()];
    if let Some(profile) = &ctx.snapshot.loaded.profile.user_file {
        files.push(profile.clone());
    }
    files
}

/// `(provider id, kind)` of every literal `api_key` written in `file`, whatever wins the
/// merge: a key hidden under a higher layer is still a key on disk.
fn literal_keys_in(file: &std::path::Path) -> Vec<(String, Option<ProviderKind>)> {
    let Some(table) = std::fs::read_to_string(file)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
    else {
        return Vec::new();
    };
    let Some(providers) = table.get("providers").and_then(toml::Value::as_table) else {
        return Vec::new();
    };
    providers
        .iter()
        .filter(|(_, p)| {
            p.get("api_key")
                .and_then(toml::Value::as_str)
                .is_some_and(|v| SecretRef::parse(v).is_inline())
        })
        .map(|(id, p)| {
            let kind = p
                .get("kind")
                .and_then(|k| k.clone().try_into::<ProviderKind>().ok())
                .or_else(|| ProviderKind::from_id(id));
            (id.clone(), kind)
        })
        .collect()
}

/// The conventional variable for a provider's key.
pub(super) fn key_variable(id: &str, kind: Option<ProviderKind>) -> String {
    match (id, kind) {
        ("openai", _) => "OPENAI_API_KEY".into(),
        ("anthropic", _) => "ANTHROPIC_API_KEY".into(),
        _ => {
            let id: String = id
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            format!("OPENCLAW_RS_{id}_API_KEY")
        }
    }
}

pub fn plaintext_keys(ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let journal = state_paths(ctx.snapshot).journal;
    for file in user_files(ctx) {
        for (id, kind) in literal_keys_in(&file) {
            let variable = key_variable(&id, kind);
            out.push(
                Finding::new(
                    "config.secrets.plaintext_key",
                    Severity::Critical,
                    format!("providers.{id}.api_key is a literal key"),
                )
                .path(format!("{}: providers.{id}.api_key", show(&file)))
                .detail(format!(
                    "{} holds the key itself. Anyone who can read the file, a backup of it or a \
                     screenshot of it has your key. The fix replaces it with a reference to \
                     ${variable}; then set {variable} to your key in your shell profile. So \
                     that the fix can be undone, the old text stays in {}.bak.1 to .bak.5 and \
                     in {} (all mode 0600): once {variable} works, delete those and rotate the \
                     key if the file was ever shared.",
                    show(&file),
                    show(&file),
                    show(&journal),
                ))
                .with_fix(
                    format!(
                        "replace the literal key with env:{variable} in {}",
                        show(&file)
                    ),
                    vec![set_config(
                        &file,
                        &["providers", &id, "api_key"],
                        format!("env:{variable}"),
                    )],
                ),
            );
        }
    }
    // A literal that came from the environment: nothing on disk to fix.
    for (id, provider) in &ctx.snapshot.config().providers {
        let var = format!(
            "OPENCLAW_RS_PROVIDERS__{}__API_KEY",
            id.to_ascii_uppercase()
        );
        if provider.api_key.as_ref().is_some_and(SecretRef::is_inline)
            && ctx.snapshot.loaded.options.env.contains_key(&var)
        {
            out.push(
                Finding::new(
                    "config.secrets.plaintext_key",
                    Severity::Critical,
                    format!("providers.{id}.api_key is a literal key"),
                )
                .path(format!("environment: {var}"))
                .detail(format!(
                    "{var} holds the key itself. Set it to a reference such as env:{} instead.",
                    key_variable(id, provider.kind)
                )),
            );
        }
    }
    out
}

/// Byte ranges of the literal `providers.ID.api_key` values in `text`: the keys
/// [`plaintext_keys`] reports, with its `env:` fix.
fn known_key_spans(text: &str) -> Vec<std::ops::Range<usize>> {
    let Ok(doc) = toml_edit::Document::parse(text) else {
        return Vec::new();
    };
    let Some(providers) = doc
        .as_table()
        .get("providers")
        .and_then(|p| p.as_table_like())
    else {
        return Vec::new();
    };
    providers
        .iter()
        .filter_map(|(_, p)| p.as_table_like()?.get("api_key")?.span())
        .collect()
}

/// The dotted key whose value holds byte `pos`, when one does (not in a comment).
fn key_path_at(table: &dyn toml_edit::TableLike, pos: usize, path: &mut Vec<String>) -> bool {
    for (key, item) in table.iter() {
        path.push(key.to_string());
        let found = match item {
            toml_edit::Item::Table(t) => key_path_at(t, pos, path),
            toml_edit::Item::ArrayOfTables(tables) => tables.iter().enumerate().any(|(i, t)| {
                path.push(i.to_string());
                let found = key_path_at(t, pos, path);
                if !found {
                    path.pop();
                }
                found
            }),
            toml_edit::Item::Value(toml_edit::Value::InlineTable(t)) => {
                key_path_at(t, pos, path) || item.span().is_some_and(|s| s.contains(&pos))
            }
            _ => item.span().is_some_and(|s| s.contains(&pos)),
        };
        if found {
            return true;
        }
        path.pop();
    }
    false
}

/// The variable a user would keep this key in.
fn variable_for(path: &[String], rule: &str) -> String {
    if path.len() >= 2 && path[0].to_ascii_lowercase().starts_with("provider") {
        return key_variable(&path[1], ProviderKind::from_id(&path[1]));
    }
    match rule {
        "anthropic_key" => "ANTHROPIC_API_KEY".into(),
        "openai_key" => "OPENAI_API_KEY".into(),
        "github_token" => "GITHUB_TOKEN".into(),
        "gitlab_token" => "GITLAB_TOKEN".into(),
        "aws_access_key" => "AWS_ACCESS_KEY_ID".into(),
        _ => match path.first() {
            Some(id) => key_variable(id, None),
            None => "OPENCLAW_RS_SECRET".into(),
        },
    }
}

/// The 1-based line of byte `pos`.
fn line_of(text: &str, pos: usize) -> usize {
    text.as_bytes()[..pos.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Every key written in `config.toml` or the profile file outside the fields
/// [`plaintext_keys`] knows: under a misspelt table, an unknown key, an inline table, an
/// array, a comment. The whole text is scanned with the shared secret patterns, since the
/// configuration never reads those places and so nothing else would report them.
pub fn literal_secrets_in_files(ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let journal = state_paths(ctx.snapshot).journal;
    for file in user_files(ctx) {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let known = known_key_spans(&text);
        let doc = toml_edit::Document::parse(text.as_str()).ok();
        // Lines with a secret, grouped so a secret spanning lines (a PEM block) is one
        // finding: (first, last, rules, position of the first secret).
        let mut groups: Vec<(usize, usize, Vec<&'static str>, usize)> = Vec::new();
        for m in secrets::find(&text) {
            if known
                .iter()
                .any(|k| k.start <= m.range.start && m.range.end <= k.end)
            {
                continue;
            }
            let first = line_of(&text, m.range.start);
            let last = line_of(&text, m.range.end.saturating_sub(1).max(m.range.start));
            match groups.last_mut() {
                Some(g) if first <= g.1 => {
                    g.1 = g.1.max(last);
                    if !g.2.contains(&m.rule) {
                        g.2.push(m.rule);
                    }
                }
                _ => groups.push((first, last, vec![m.rule], m.range.start)),
            }
        }
        for (first, last, rules, pos) in groups {
            let mut path = Vec::new();
            let in_value = doc
                .as_ref()
                .is_some_and(|d| key_path_at(d.as_table(), pos, &mut path));
            if !in_value {
                path.clear();
            }
            // Key names are shown, so they go through the redactor too.
            let shown_path = crate::secrets::redact::redact(&path.join("."));
            let place = if in_value {
                format!(
                    "in the value of {shown_path}, which the configuration does not read as a key"
                )
            } else {
                "in a comment or outside any value".to_string()
            };
            let variable = variable_for(&path, rules[0]);
            let Some(sha256) = crate::findings::fix::lines_sha256(&text, first, last) else {
                continue;
            };
            let lines = if first == last {
                format!("line {first}")
            } else {
                format!("lines {first}-{last}")
            };
            let note = format!(
                "openclaw-rs: a key was removed here; set {variable} and refer to it as \"env:{variable}\""
            );
            out.push(
                Finding::new(
                    "config.secrets.literal_in_file",
                    Severity::Critical,
                    format!("{} holds a key on {lines}", show(&file)),
                )
                .path(format!("{}:{first}", show(&file)))
                .detail(format!(
                    "{} {lines} holds what looks like a secret ({}) {place}. Anyone who can \
                     read the file, a backup of it or a screenshot of it has it. Keep it in \
                     an environment variable, {variable}, and refer to it where it belongs \
                     as \"env:{variable}\" (a provider's key is api_key under \
                     [providers.ID]). The fix comments the {lines} out with the secret \
                     removed and this note. So that the fix can be undone, the old text stays \
                     in {}.bak.1 to .bak.5 and in {} (all mode 0600): delete those once done, \
                     and rotate the key if the file was ever shared.",
                    show(&file),
                    rules.join(", "),
                    show(&file),
                    show(&journal),
                ))
                .with_fix(
                    format!(
                        "comment out {lines} of {} with the secret removed; then set {variable}",
                        show(&file)
                    ),
                    vec![crate::findings::fix::Step::CommentOut {
                        file: file.clone(),
                        first,
                        last,
                        sha256,
                        note,
                    }],
                ),
            );
        }
    }
    out
}
