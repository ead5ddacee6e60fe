//! Doctor checks: is the installation healthy and usable?

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::config::{Level, ProviderKind};
use crate::findings::{Context, Finding, Severity, show, state_paths};

pub fn config_diagnostics(ctx: &Context<'_>) -> Vec<Finding> {
    ctx.snapshot
        .diagnostics
        .iter()
        .map(|d| {
            let (id, severity) = match d.level {
                Level::Error => ("config.invalid", Severity::Critical),
                Level::Warning if d.message.starts_with("unknown key") => {
                    ("config.unknown_key", Severity::Warn)
                }
                Level::Warning => ("config.warning", Severity::Warn),
            };
            let detail = if d.level == Level::Error {
                "This part of the file is left out; everything else applies. Fix it, then run \
                 `openclaw-rs config check` (or refresh in the TUI)."
            } else {
                "Nothing breaks, but the setting may not do what you meant."
            };
            Finding::new(id, severity, d.message.clone())
                .detail(detail)
                .path(d.location())
        })
        .collect()
}

pub fn secret_references(ctx: &Context<'_>) -> Vec<Finding> {
    ctx.snapshot
        .config()
        .providers
        .iter()
        .filter(|(_, p)| p.enabled)
        .filter_map(|(id, p)| {
            let key = p.api_key.as_ref()?;
            let error = key.is_available().err()?;
            Some(
                Finding::new(
                    "config.secret_unresolved",
                    Severity::Warn,
                    format!("The key of provider {id} cannot be read"),
                )
                .detail(format!(
                    "{error}. Calls to {id} will fail until {} resolves.",
                    key.display_ref()
                ))
                .path(format!("providers.{id}.api_key")),
            )
        })
        .collect()
}

/// Below this much free space, indexes and logs start failing.
const LOW_SPACE: u64 = 256 * 1024 * 1024;

pub fn state_dir(ctx: &Context<'_>) -> Vec<Finding> {
    let dir = &ctx.snapshot.loaded.paths.state_dir;
    let mut out = Vec::new();
    let probe = dir.join(format!(".doctor-{}", std::process::id()));
    if let Err(e) = std::fs::write(&probe, b"ok").and_then(|()| std::fs::remove_file(&probe)) {
        out.push(
            Finding::new(
                "fs.state_dir.not_writable",
                Severity::Critical,
                "The state dir cannot be written",
            )
            .detail(format!(
                "{}: {e}. Nothing can be saved. Check the disk and the directory's owner, \
                     or pass --home DIR.",
                show(dir)
            ))
            .path(show(dir)),
        );
    }
    if let Some(free) = crate::platform::free_bytes(dir)
        && free < LOW_SPACE
    {
        out.push(
            Finding::new(
                "fs.disk.low_space",
                Severity::Warn,
                format!("Only {} MiB free for the state dir", free / (1024 * 1024)),
            )
            .detail("Memory indexes, logs and backups need room; free some space.")
            .path(show(dir)),
        );
    }
    out
}

pub fn profile_vs_build(ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let profile = &ctx.snapshot.loaded.profile.name;
    for (id, reason) in [
        (
            "profile.sandbox_fallback",
            &ctx.snapshot.sandbox_backend.fallback_reason,
        ),
        (
            "profile.embedder_fallback",
            &ctx.snapshot.embedder.fallback_reason,
        ),
    ] {
        if let Some(reason) = reason {
            out.push(
                Finding::new(
                    id,
                    Severity::Warn,
                    format!("Profile {profile} asks for more than this build has"),
                )
                .detail(format!(
                    "{reason}. Everything still works, on the fallback. To silence this, use \
                         the core profile (--profile core) or the edge build."
                )),
            );
        }
    }
    out
}

pub fn providers_configured(ctx: &Context<'_>) -> Vec<Finding> {
    if ctx.snapshot.config().providers.values().any(|p| p.enabled) {
        return Vec::new();
    }
    vec![
        Finding::new(
            "providers.none",
            Severity::Info,
            "No model provider is configured",
        )
        .detail(format!(
            "Turns go to Ollama when it runs on this machine, else (edge profile) to the \
                 in-process local model when its file is there, else to the offline provider \
                 (answers from memory, no model). Add a [providers.NAME] table to {} to use \
                 another.",
            show(&ctx.snapshot.loaded.paths.config_file)
        )),
    ]
}

/// `--deep`: can each enabled provider's endpoint be reached at all (TCP)?
pub fn providers_reachable(ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (id, provider) in &ctx.snapshot.config().providers {
        if !provider.enabled {
            continue;
        }
        let default = match provider.kind {
            Some(ProviderKind::Openai) => "https://api.openai.com/v1",
            Some(ProviderKind::Anthropic) => "https://api.anthropic.com",
            Some(ProviderKind::Ollama) => "http://127.0.0.1:11434",
            Some(ProviderKind::Offline | ProviderKind::Local) | None => continue,
        };
        let url = provider.base_url.as_deref().unwrap_or(default);
        let Some(address) = host_port(url) else {
            continue;
        };
        if let Err(why) = connect(&address) {
            out.push(
                Finding::new(
                    "providers.unreachable",
                    Severity::Warn,
                    format!("Provider {id} cannot be reached"),
                )
                .detail(format!(
                    "{} ({address}): {why}. Turns will fall back to the next provider.",
                    crate::config::redact_url(url)
                ))
                .path(format!("providers.{id}")),
            );
        }
    }
    out
}

/// `host:port` of a URL, with the scheme's default port.
fn host_port(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let has_port = authority.rsplit_once(':').is_some_and(|(host, port)| {
        !host.ends_with(':')
            && port.chars().all(|c| c.is_ascii_digit())
            && !authority.ends_with(']')
    });
    if has_port {
        Some(authority.to_string())
    } else {
        let port = if scheme == "https" { 443 } else { 80 };
        Some(format!("{authority}:{port}"))
    }
}

fn connect(address: &str) -> Result<(), String> {
    let addrs: Vec<_> = address
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve: {e}"))?
        .collect();
    let mut last = "no address".to_string();
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

pub fn voice_binaries(ctx: &Context<'_>) -> Vec<Finding> {
    let voice = &ctx.snapshot.config().voice;
    if !voice.enabled {
        return Vec::new();
    }
    let env = &ctx.snapshot.loaded.options.env;
    let mut chain = vec![&voice.provider];
    chain.extend(voice.fallback.iter().filter(|p| **p != voice.provider));
    chain
        .into_iter()
        .filter_map(|id| crate::voice::tts::provider(id, voice, env))
        // Local programs only: a cloud provider's missing key is the provider checks' job.
        .filter(|p| matches!(p.id(), "kittentts" | "espeak-ng" | "flite"))
        .filter_map(|p| {
            let state = p.probe();
            (state.configured && !state.available).then(|| (p.id(), state.reason))
        })
        .map(|(id, reason)| {
            Finding::new(
                "voice.binary_missing",
                Severity::Warn,
                format!("Voice provider {id} is not installed"),
            )
            .detail(format!(
                "Voice is on, but {id} cannot run: {}. Speech falls back to the next provider \
                 or fails. Install it, or set voice.enabled = false.",
                reason.unwrap_or_else(|| "its program is missing".into())
            ))
            .path(format!("voice.{id}"))
        })
        .collect()
}

/// Above this the log dir is worth a look.
const LARGE_LOGS: u64 = 50 * 1024 * 1024;

pub fn log_size(ctx: &Context<'_>) -> Vec<Finding> {
    let logs = state_paths(ctx.snapshot).logs;
    let Ok(entries) = std::fs::read_dir(&logs) else {
        return Vec::new();
    };
    let total: u64 = entries
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    if total < LARGE_LOGS {
        return Vec::new();
    }
    vec![
        Finding::new(
            "logs.size_large",
            Severity::Warn,
            format!("Logs take {} MiB", total / (1024 * 1024)),
        )
        .detail(format!(
            "Delete old files in {} when you no longer need them.",
            show(&logs)
        ))
        .path(show(&logs)),
    ]
}

pub fn terminal(ctx: &Context<'_>) -> Vec<Finding> {
    let Some(term) = ctx.terminal else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if term.colors < 256 && ctx.snapshot.config().ui.theme != "basic" {
        out.push(
            Finding::new("terminal.colors_limited", Severity::Info, "The terminal advertises only 16 colours")
                .detail("The basic theme is made for it: run with --theme basic or set ui.theme = \"basic\".")
                .path("ui.theme"),
        );
    }
    if term.width < 80 || term.height < 24 {
        out.push(
            Finding::new(
                "terminal.too_small",
                Severity::Warn,
                format!("The terminal is {}x{}", term.width, term.height),
            )
            .detail("Every pane is designed for 80x24 or more; some text is cut off below that."),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_adds_default_ports() {
        assert_eq!(
            host_port("https://api.openai.com/v1").as_deref(),
            Some("api.openai.com:443")
        );
        assert_eq!(
            host_port("http://127.0.0.1:11434").as_deref(),
            Some("127.0.0.1:11434")
        );
        assert_eq!(
            host_port("http://u:p@h:8080/x?y").as_deref(),
            Some("h:8080")
        );
        assert_eq!(host_port("http://[::1]:9/").as_deref(), Some("[::1]:9"));
    }

    #[test]
    fn connect_tells_open_from_closed_ports() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap();
        assert!(connect(&open.to_string()).is_ok());
        drop(listener);
        assert!(
            connect(&open.to_string()).is_err(),
            "nothing listens any more"
        );
    }
}
