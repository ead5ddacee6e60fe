//! Security audit checks on the configuration and on what is stored.

use std::net::IpAddr;

use super::{config_file, env_override, set_config};
use crate::config::ProviderKind;
use crate::findings::{Context, Finding, Severity, show, state_paths};
use crate::secrets;

mod keys;
use keys::key_variable;
pub use keys::{literal_secrets_in_files, plaintext_keys};

/// Every problem in `config.toml` that stopped it from being read: what the audit could not
/// see may hide anything.
pub fn config_unreadable(ctx: &Context<'_>) -> Vec<Finding> {
    let config = show(&ctx.snapshot.loaded.paths.config_file);
    ctx.snapshot
        .loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error() && d.source == config)
        .map(|d| {
            Finding::new(
                "config.unreadable",
                Severity::Critical,
                "config.toml could not be audited",
            )
            .detail(format!(
                "{}. The audit skipped what it could not read; fix the file, then run the \
                     audit again.",
                d.message
            ))
            .path(d.location())
        })
        .collect()
}

/// Keys sometimes ride in URLs: `https://user:KEY@host` or `?api_key=KEY`.
pub fn url_credentials(ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (id, provider) in &ctx.snapshot.config().providers {
        let Some(url) = provider.base_url.as_deref() else {
            continue;
        };
        let has_password = url
            .split_once("://")
            .and_then(|(_, rest)| rest.split(['/', '?', '#']).next())
            .is_some_and(|authority| {
                authority
                    .rsplit_once('@')
                    .is_some_and(|(userinfo, _)| userinfo.contains(':'))
            });
        let has_secret_param = url.split_once('?').is_some_and(|(_, query)| {
            query.split('&').any(|pair| {
                let name = pair
                    .split('=')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                ["key", "token", "secret", "password", "sig", "auth"]
                    .iter()
                    .any(|w| name.contains(w))
            })
        });
        if has_password || has_secret_param {
            out.push(
                Finding::new(
                    "config.secrets.url_credentials",
                    Severity::Critical,
                    format!("providers.{id}.base_url carries a credential"),
                )
                .detail(format!(
                    "{} puts a password or key in the URL, where logs, proxies and shell history \
                     keep it. Move it to api_key = \"env:{}\" and remove it from the URL.",
                    crate::config::redact_url(url),
                    key_variable(id, provider.kind)
                ))
                .path(format!("providers.{id}.base_url")),
            );
        }
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

/// Hosts that must never be an allowlist entry: everything, whole top-level domains,
/// this machine, private and shared ranges, metadata services.
fn unrestricted_entry(entry: &str) -> Option<&'static str> {
    let entry = entry.trim().to_ascii_lowercase();
    // Ports and a trailing root dot do not change which host it is.
    let host = if let Some(rest) = entry.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default().to_string()
    } else if entry.matches(':').count() == 1 {
        entry.split(':').next().unwrap_or_default().to_string()
    } else {
        entry.clone()
    };
    let host = host.trim_end_matches('.');
    if host.is_empty()
        || host == "*"
        || host.starts_with("*:")
        || host == "0.0.0.0/0"
        || host == "::/0"
    {
        return Some("allows every host");
    }
    if let Some(suffix) = host.strip_prefix("*.")
        && !suffix.contains('.')
    {
        return Some("allows a whole top-level domain");
    }
    if host == "localhost" || host.ends_with(".localhost") {
        return Some("is this machine");
    }
    if host == "metadata.google.internal" || host == "metadata" {
        return Some("is a cloud metadata service");
    }
    let ip = host.split('/').next()?.parse::<IpAddr>().ok()?;
    // The same ranges, in the same IPv6 spellings, that http_fetch refuses without an
    // explicit IP rule (docs/tools.md, "http").
    if crate::sandbox::is_metadata(ip) {
        return Some("is a cloud metadata address");
    }
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    if ip.is_loopback() {
        return Some("is this machine");
    }
    crate::sandbox::non_public(ip).map(|_| {
        "is not a public address (private, shared, link-local, reserved or another \
         special-purpose range)"
    })
}

/// `why`, plus a word about an environment variable that a config.toml fix cannot beat.
fn with_env_note(ctx: &Context<'_>, key: &[&str], why: &str) -> String {
    match env_override(ctx, key) {
        Some(var) => format!("{why} {var} is set and overrides config.toml: unset it too."),
        None => why.to_string(),
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
            .detail(with_env_note(
                ctx,
                &["sandbox", "memory_mb"],
                "A runaway or hostile tool can take this much RAM per instance.",
            ))
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
            && let Some((scheme, host)) = scheme_host(url)
            && scheme.eq_ignore_ascii_case("http")
            && !is_local(host)
        {
            let https = format!("https://{}", &url[scheme.len() + "://".len()..]);
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
                    format!(
                        "use https:// for providers.{id}.base_url (if the server has no TLS yet, \
                         undo this and use an SSH tunnel)"
                    ),
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

/// Largest part of one file the deep scan reads; the rest is reported as not scanned.
const SCAN_LIMIT: u64 = 64 * 1024 * 1024;

/// Scan a file line by line, so memory stays bounded whatever its size.
fn scan_file(path: &std::path::Path) -> std::io::Result<(Vec<secrets::Hit>, bool)> {
    use std::io::{BufRead, Read};
    let file = std::fs::File::open(path)?;
    let truncated = file.metadata()?.len() > SCAN_LIMIT;
    let mut reader = std::io::BufReader::new(file.take(SCAN_LIMIT));
    let mut hits = Vec::new();
    let mut buf = Vec::new();
    let mut line = 0usize;
    loop {
        buf.clear();
        // A line longer than this is scanned in pieces; a key is far shorter.
        let read = reader
            .by_ref()
            .take(1024 * 1024)
            .read_until(b'\n', &mut buf)?;
        if read == 0 {
            break;
        }
        line += 1;
        let text = String::from_utf8_lossy(&buf);
        hits.extend(
            secrets::scan(&text)
                .into_iter()
                .map(|h| secrets::Hit { line, ..h }),
        );
    }
    Ok((hits, truncated))
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
        let Ok((hits, truncated)) = scan_file(&file) else {
            continue;
        };
        if hits.is_empty() {
            continue;
        }
        // A file name can itself hold a key.
        let shown = secrets::redact_assignments(&show(&file));
        let mut kinds: Vec<&str> = hits.iter().map(|h| h.rule).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let lines: Vec<String> = hits.iter().take(10).map(|h| h.line.to_string()).collect();
        out.push(
            Finding::new(
                "secrets.leaked",
                Severity::Critical,
                format!("{shown} holds secrets"),
            )
            .detail(format!(
                "Found {} ({}) on line(s) {}{}{}. Rotate those keys, then delete or clean \
                     the file.",
                hits.len(),
                kinds.join(", "),
                lines.join(", "),
                if hits.len() > 10 { ", …" } else { "" },
                if truncated {
                    "; only the first 64 MiB were scanned"
                } else {
                    ""
                },
            ))
            .path(shown),
        );
    }
    out
}

/// Regular files under `dir`, not following links, a few levels deep.
fn collect_files(dir: &std::path::Path, depth: usize, out: &mut Vec<std::path::PathBuf>) {
    // A linked dir is reported by the permission checks, never walked: it is elsewhere.
    let linked = std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink());
    if depth > 4 || linked {
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
        // The special-purpose ranges http_fetch refuses, in their IPv6 embeddings too.
        for entry in [
            "198.18.0.1",
            "192.0.0.8",
            "240.0.0.1",
            "[fec0::1]",
            "[64:ff9b::a9fe:a9fe]",
            "[2002:a00:1::1]:443",
            "2001:0:a9fe:a9fe::1",
        ] {
            assert!(unrestricted_entry(entry).is_some(), "{entry}");
        }
        assert_eq!(
            unrestricted_entry("[64:ff9b::a9fe:a9fe]"),
            Some("is a cloud metadata address")
        );
        assert!(unrestricted_entry("[64:ff9b::808:808]").is_none());
        assert!(unrestricted_entry("api.github.com").is_none());
        assert!(unrestricted_entry("8.8.8.8").is_none());
    }
}
