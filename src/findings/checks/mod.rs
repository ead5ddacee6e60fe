//! The registries: which checks make up the doctor and the security audit. Each check is a
//! small function in `doctor`, `audit` or `perms`; adding one is a function and an entry
//! here. `ids` names what a check reports: whole ids, or a dotted prefix for a family.

mod audit;
mod doctor;
pub(crate) mod memory;
mod perms;
mod tools;

use std::path::{Path, PathBuf};

use super::Check;
use super::fix::Step;

pub static DOCTOR: &[Check] = &[
    Check {
        ids: &["config.invalid", "config.unknown_key", "config.warning"],
        deep_only: false,
        run: doctor::config_diagnostics,
    },
    Check {
        ids: &["config.secret_unresolved"],
        deep_only: false,
        run: doctor::secret_references,
    },
    Check {
        ids: &["fs.state_dir.not_writable", "fs.disk.low_space"],
        deep_only: false,
        run: doctor::state_dir,
    },
    Check {
        ids: &["profile.sandbox_fallback", "profile.embedder_fallback"],
        deep_only: false,
        run: doctor::profile_vs_build,
    },
    Check {
        ids: &["memory.store.unreadable", "memory.store.inconsistent"],
        deep_only: false,
        run: memory::store,
    },
    Check {
        ids: &["memory.embedder.mismatch"],
        deep_only: false,
        run: memory::embedder,
    },
    Check {
        ids: &["memory.index.stale"],
        deep_only: false,
        run: memory::index_stale,
    },
    Check {
        ids: &["providers.none"],
        deep_only: false,
        run: doctor::providers_configured,
    },
    Check {
        ids: &["providers.unreachable"],
        deep_only: true,
        run: doctor::providers_reachable,
    },
    Check {
        ids: &["voice.binary_missing"],
        deep_only: false,
        run: doctor::voice_binaries,
    },
    Check {
        ids: &["logs.size_large"],
        deep_only: false,
        run: doctor::log_size,
    },
    Check {
        ids: &["terminal.colors_limited", "terminal.too_small"],
        deep_only: false,
        run: doctor::terminal,
    },
];

pub static AUDIT: &[Check] = &[
    Check {
        ids: &["fs.state_dir"],
        deep_only: false,
        run: perms::state_dir,
    },
    Check {
        ids: &["fs.config"],
        deep_only: false,
        run: perms::config_files,
    },
    Check {
        ids: &["fs.credentials"],
        deep_only: false,
        run: perms::credentials,
    },
    Check {
        ids: &["fs.sessions"],
        deep_only: false,
        run: perms::sessions,
    },
    Check {
        ids: &["fs.logs"],
        deep_only: false,
        run: perms::logs,
    },
    Check {
        ids: &["fs.tools"],
        deep_only: false,
        run: perms::tools,
    },
    Check {
        ids: &["fs.journal"],
        deep_only: false,
        run: perms::journal,
    },
    Check {
        ids: &["fs.cache"],
        deep_only: false,
        run: perms::cache,
    },
    Check {
        ids: &["config.unreadable"],
        deep_only: false,
        run: audit::config_unreadable,
    },
    Check {
        ids: &["config.secrets.url_credentials"],
        deep_only: false,
        run: audit::url_credentials,
    },
    Check {
        ids: &["config.secrets.plaintext_key"],
        deep_only: false,
        run: audit::plaintext_keys,
    },
    Check {
        ids: &["config.secrets.literal_in_file"],
        deep_only: false,
        run: audit::literal_secrets_in_files,
    },
    Check {
        ids: &["logging.redact_off"],
        deep_only: false,
        run: audit::logging_redact,
    },
    Check {
        ids: &[
            "sandbox.fuel_unlimited",
            "sandbox.memory_limit_high",
            "sandbox.http_unrestricted",
        ],
        deep_only: false,
        run: audit::sandbox_limits,
    },
    Check {
        ids: &[
            "providers.plaintext_http_remote",
            "providers.keyless_remote",
        ],
        deep_only: false,
        run: audit::provider_transport,
    },
    Check {
        ids: &["safety.secret_scanning_off"],
        deep_only: false,
        run: audit::secret_scanning,
    },
    Check {
        ids: &["secrets.leaked"],
        deep_only: true,
        run: audit::leaked_secrets,
    },
    Check {
        ids: &["tools.manifest_invalid", "tools.unpinned_module"],
        deep_only: false,
        run: tools::manifests,
    },
    Check {
        ids: &[
            "tools.pin_mismatch",
            "tools.capabilities_exceed_manifest",
            "tools.module_unreadable",
        ],
        deep_only: true,
        run: tools::modules,
    },
    Check {
        ids: &["summary.not_applicable"],
        deep_only: false,
        run: perms::not_applicable,
    },
    Check {
        ids: &["summary.attack_surface"],
        deep_only: false,
        run: audit::attack_surface,
    },
];

/// A config edit of `config.toml`, the layer a user owns (it outranks every profile).
fn set_config(file: &Path, key: &[&str], value: impl Into<toml::Value>) -> Step {
    Step::SetConfig {
        file: file.to_path_buf(),
        key: key.iter().map(|k| k.to_string()).collect(),
        value: value.into(),
    }
}

/// The environment variable that would override `key`, when one is set: a config.toml fix
/// cannot win against it, and the finding must say so.
fn env_override(ctx: &super::Context<'_>, key: &[&str]) -> Option<String> {
    let name = format!(
        "OPENCLAW_RS_{}",
        key.iter()
            .map(|k| k.to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join("__")
    );
    ctx.snapshot
        .loaded
        .options
        .env
        .contains_key(&name)
        .then_some(name)
}

fn config_file(ctx: &super::Context<'_>) -> PathBuf {
    ctx.snapshot.loaded.paths.config_file.clone()
}
