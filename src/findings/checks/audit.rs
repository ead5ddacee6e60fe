//! Security audit checks on the configuration and on what is stored.

use std::net::IpAddr;

use super::{config_file, env_override, set_config};
use crate::config::{ProviderKind, SecretRef};
use crate::findings::{Context, Finding, Severity, secrets, show, state_paths};

/// Where a literal provider key was written, so the fix edits that file.
fn literal_key_source(ctx: &Context<'_>, id: &str) -> Option<std::path::PathBuf> {
    let paths = &ctx.snapshot.loaded.paths;
    let mut candidates = vec![paths.config_file.clone()];
    if let Some(profile) = &ctx.snapshot.loaded.profile.user_file {
        candidates.push(profile.clone());
    }
    candidates.into_iter().find(|file| {
        std::fs::read_to_string(file)
            .ok()
            .and_then(|text| text.parse::<toml::Table>().ok())
            .and_then(|t| {
                t.get("providers")?
                    .get(id)?
                    .get("api_key")?
                    .as_str()
                    .map(|v| SecretRef::parse(v).is_inline())
            })
            .unwrap_or(false)
    })
}

/// The conventional variable for a provider's key.
fn key_variable(id: &str, kind: Option<ProviderKind>) -> String {
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
    for (id, provider) in &ctx.snapshot.config().providers {
        if !provider.api_key.as_ref().is_some_and(SecretRef::is_inline) {
            continue;
        }
        let variable = key_variable(id, provider.kind);
        let finding = Finding::new(
            "config.secrets.plaintext_key",
            Severity::Critical,
            format!("providers.{id}.api_key is a literal key"),
        )
        .path(format!("providers.{id}.api_key"));
        let finding = match literal_key_source(ctx, id) {
            Some(file) => finding
                .detail(format!(
                    "{} holds the key itself. Anyone who can read the file, a backup of it or a \
                     screenshot of it has your key. The fix replaces it with a reference to \
                     ${variable}; then set {variable} to your key in your shell profile. The \
                     old value stays only in {} (mode 0600): delete that backup once \
                     {variable} works.",
                    show(&file),
                    show(&crate::findings::fix::backup_path(&file, 1)),
                ))
                .with_fix(
                    format!(
                        "replace the literal key with env:{variable} in {}",
                        show(&file)
                    ),
                    vec![set_config(
                        &file,
                        &["providers", id, "api_key"],
                        format!("env:{variable}"),
                    )],
                ),
            None => finding.detail(format!(
                "The key comes from an environment variable holding the key itself \
                 (OPENCLAW_RS_PROVIDERS__{}__API_KEY). Set it to a reference instead, such as \
                 env:{variable}.",
                id.to_ascii_uppercase()
            )),
        };
        out.push(finding);
    }
    out
}

/// A finding for a boolean that must be on, with the config.toml fix (and a word about an
/// environment variable that would override it).
fn must_be_on(ctx: &Context<'_>, id: &str, key: &[&str], title: &str, why: &str) -> Finding {
    let file = config_file(ctx);
    let mut detail = why.to_string();
    if let Some(var) = env_override(ctx, key) {
        detail.push_str(&format!(
            " {var} is set and overrides config.toml: unset it too."
        ));
    }
    Finding::new(id, Severity::Warn, title)
        .detail(detail)
        .path(key.join("."))
        .with_fix(
            format!("set {} = true in {}", key.join("."), show(&file)),
            vec![set_config(&file, key, true)],
        )
}

pub fn logging_redact(ctx: &Context<'_>) -> Vec<Finding> {
    if ctx.snapshot.config().logging.redact {
        return Vec::new();
    }
    vec![must_be_on(
        ctx,
        "logging.redact_off",
        &["logging", "redact"],
        "Secrets are not redacted from logs",
        "With logging.redact off, keys and tokens that pass through the engine can be written \
         to the log file.",
    )]
}

pub fn secret_scanning(ctx: &Context<'_>) -> Vec<Finding> {
    if ctx.snapshot.config().safety.secret_scanning {
        return Vec::new();
    }
    vec![must_be_on(
        ctx,
        "safety.secret_scanning_off",
        &["safety", "secret_scanning"],
        "Secret scanning is off",
        "Tool input and output and model replies are not checked for keys, so a tool or a \
         reply can carry a secret out unnoticed.",
    )]
}

fn is_local(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Hosts that must never be an allowlist entry: everything, private ranges, metadata.
fn unrestricted_entry(entry: &str) -> Option<&'static str> {
    let host = entry.trim().trim_start_matches("*.");
    if entry.trim() == "*" || host.is_empty() || host == "*" {
        return Some("allows every host");
    }
    if host.eq_ignore_ascii_case("metadata.google.internal") {
        return Some("is a cloud metadata service");
    }
    let ip = host.split('/').next().and_then(|h| {
        h.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok()
    })?;
    let private = match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local() || v4.is_unspecified(),
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80 || v6.is_unspecified()
        }
    };
    if ip.is_loopback() {
        Some("is this machine")
    } else if private {
        Some("is a private or link-local address")
    } else {
        None
    }
}

pub fn sandbox_limits(ctx: &Context<'_>) -> Vec<Finding> {
    let sandbox = &ctx.snapshot.config().sandbox;
    let profile = crate::config::load_profile(
        &ctx.snapshot.loaded.paths.state_dir,
        &ctx.snapshot.loaded.profile.name,
    );
    let file = config_file(ctx);
    let mut out = Vec::new();
    if sandbox.fuel == 0 {
        let fuel = if profile.config.sandbox.fuel == 0 {
            50_000_000
        } else {
            profile.config.sandbox.fuel
        };
        out.push(
            Finding::new(
                "sandbox.fuel_unlimited",
                Severity::Critical,
                "Tools run with unlimited fuel",
            )
            .detail(
                "sandbox.fuel = 0 lets a tool compute forever; only the wall-clock limit stops it.",
            )
            .path("sandbox.fuel")
            .with_fix(
                format!("set sandbox.fuel = {fuel} (the profile's budget)"),
                vec![set_config(
                    &file,
                    &["sandbox", "fuel"],
                    i64::try_from(fuel).unwrap_or(i64::MAX),
                )],
            ),
        );
    }
    if sandbox.memory_mb > 1024 {
        let limit = profile.config.sandbox.memory_mb.min(1024);
        out.push(
            Finding::new(
                "sandbox.memory_limit_high",
                Severity::Warn,
                format!("Tools may use {} MiB of memory each", sandbox.memory_mb),
            )
            .detail("A runaway or hostile tool can take this much RAM per instance.")
            .path("sandbox.memory_mb")
            .with_fix(
                format!("set sandbox.memory_mb = {limit}"),
                vec![set_config(
                    &file,
                    &["sandbox", "memory_mb"],
                    i64::from(limit),
                )],
            ),
        );
    }
    let bad: Vec<(&String, &str)> = sandbox
        .http_allow
        .iter()
        .filter_map(|entry| unrestricted_entry(entry).map(|why| (entry, why)))
        .collect();
    if !bad.is_empty() {
        let kept: Vec<toml::Value> = sandbox
            .http_allow
            .iter()
            .filter(|e| unrestricted_entry(e).is_none())
            .map(|e| toml::Value::String(e.clone()))
            .collect();
        let reasons: Vec<String> = bad.iter().map(|(e, why)| format!("'{e}' {why}")).collect();
        out.push(
            Finding::new(
                "sandbox.http_unrestricted",
                Severity::Critical,
                "Tools may reach any or private hosts",
            )
            .detail(format!(
                "In sandbox.http_allow, {}. A tool could then reach your LAN, this machine's \
                     services or cloud credentials.",
                reasons.join("; ")
            ))
            .path("sandbox.http_allow")
            .with_fix(
                "remove those entries from sandbox.http_allow",
                vec![set_config(
                    &file,
                    &["sandbox", "http_allow"],
                    toml::Value::Array(kept),
                )],
            ),
        );
    }
    out
}

/// `(scheme, host)` of a URL, without user info or port.
fn scheme_host(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let host = if host_port.starts_with('[') {
        host_port
            .split(']')
            .next()
            .map(|h| h.trim_start_matches('['))?
    } else {
        host_port.split(':').next()?
    };
    Some((scheme, host))
}

pub fn provider_transport(ctx: &Context<'_>) -> Vec<Finding> {
    let file = config_file(ctx);
    let mut out = Vec::new();
    for (id, provider) in &ctx.snapshot.config().providers {
        if !provider.enabled {
            continue;
        }
        let url = provider.base_url.as_deref();
        let remote = match url.and_then(scheme_host) {
            Some((_, host)) => !is_local(host),
            // Hosted APIs by default; a local server by default for ollama and offline.
            None => matches!(
                provider.kind,
                Some(ProviderKind::Openai | ProviderKind::Anthropic)
            ),
        };
        if let Some(url) = url
            && let Some(("http", host)) = scheme_host(url)
            && !is_local(host)
        {
            let https = format!("https://{}", &url["http://".len()..]);
            out.push(
                Finding::new(
                    "providers.plaintext_http_remote",
                    Severity::Critical,
                    format!("Provider {id} is reached over plain http"),
                )
                .detail(format!(
                    "{} sends prompts, replies and the API key unencrypted to {host}. If the \
                     server has no TLS, put it behind one or use an SSH tunnel to 127.0.0.1.",
                    crate::config::redact_url(url)
                ))
                .path(format!("providers.{id}.base_url"))
                .with_fix(
                    format!("use https:// for providers.{id}.base_url"),
                    vec![set_config(&file, &["providers", id, "base_url"], https)],
                ),
            );
        }
        let hosted = matches!(
            provider.kind,
            Some(ProviderKind::Openai | ProviderKind::Anthropic)
        );
        if remote && hosted && provider.api_key.is_none() {
            out.push(
                Finding::new(
                    "providers.keyless_remote",
                    Severity::Warn,
                    format!("Provider {id} is remote but has no key"),
                )
                .detail(format!(
                    "A remote endpoint without a key is either refused or open to anyone. Add \
                     api_key = \"env:{}\" under [providers.{id}], or suppress this finding if a \
                     proxy adds the key.",
                    key_variable(id, provider.kind)
                ))
                .path(format!("providers.{id}")),
            );
        }
    }
    out
}

/// `--deep`: files in the state dir that hold secrets. Says where, never what.
pub fn leaked_secrets(ctx: &Context<'_>) -> Vec<Finding> {
    let paths = state_paths(ctx.snapshot);
    let mut files = Vec::new();
    for dir in [&paths.logs, &paths.sessions, &paths.memory] {
        collect_files(dir, 0, &mut files);
    }
    let mut out = Vec::new();
    for file in files {
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        let hits = secrets::scan(&text);
        if hits.is_empty() {
            continue;
        }
        let mut kinds: Vec<&str> = hits.iter().map(|h| h.rule).collect();
        kinds.dedup();
        let lines: Vec<String> = hits.iter().take(10).map(|h| h.line.to_string()).collect();
        out.push(
            Finding::new(
                "secrets.leaked",
                Severity::Critical,
                format!("{} holds secrets", show(&file)),
            )
            .detail(format!(
                "Found {} ({}) on line(s) {}{}. Rotate those keys, then delete or clean the \
                     file.",
                hits.len(),
                kinds.join(", "),
                lines.join(", "),
                if hits.len() > 10 { ", …" } else { "" }
            ))
            .path(show(&file)),
        );
    }
    out
}

/// Regular files under `dir`, not following links, a few levels deep.
fn collect_files(dir: &std::path::Path, depth: usize, out: &mut Vec<std::path::PathBuf>) {
    if depth > 4 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            collect_files(&entry.path(), depth + 1, out);
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
}

pub fn attack_surface(ctx: &Context<'_>) -> Vec<Finding> {
    let config = ctx.snapshot.config();
    let remote = config
        .providers
        .values()
        .filter(|p| p.enabled)
        .filter(|p| match p.base_url.as_deref().and_then(scheme_host) {
            Some((_, host)) => !is_local(host),
            None => matches!(p.kind, Some(ProviderKind::Openai | ProviderKind::Anthropic)),
        })
        .count();
    let tools = std::fs::read_dir(state_paths(ctx.snapshot).tools)
        .map(|d| d.flatten().count())
        .unwrap_or(0);
    vec![
        Finding::new("summary.attack_surface", Severity::Info, "Attack surface").detail(format!(
            "{remote} remote provider(s); tools may reach {} host(s) over HTTP; {tools} \
                 installed tool(s); voice {}; secret scanning {}; log redaction {}.",
            config.sandbox.http_allow.len(),
            if config.voice.enabled { "on" } else { "off" },
            if config.safety.secret_scanning {
                "on"
            } else {
                "off"
            },
            if config.logging.redact { "on" } else { "off" },
        )),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_classified() {
        assert_eq!(
            scheme_host("http://user:pw@10.0.0.5:8080/v1"),
            Some(("http", "10.0.0.5"))
        );
        assert_eq!(scheme_host("https://[::1]:11434"), Some(("https", "::1")));
        assert!(is_local("127.0.0.1") && is_local("localhost") && is_local("::1"));
        assert!(!is_local("api.openai.com"));
        assert!(unrestricted_entry("*").is_some());
        assert!(unrestricted_entry("169.254.169.254").is_some());
        assert!(unrestricted_entry("192.168.1.10").is_some());
        assert!(unrestricted_entry("127.0.0.1").is_some());
        assert!(unrestricted_entry("fd00::1").is_some());
        assert!(unrestricted_entry("api.github.com").is_none());
        assert!(unrestricted_entry("8.8.8.8").is_none());
    }
}
