//! The registries: which checks make up the doctor and the security audit. Each check is a
//! small function in `doctor` or `audit`; adding one is a function and a line here.

mod audit;
mod doctor;
mod perms;

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
        ids: &[
            "fs.state_dir.perms_world_writable",
            "fs.state_dir.perms_group_writable",
            "fs.state_dir.perms_readable",
            "fs.state_dir.symlink",
        ],
        deep_only: false,
        run: perms::state_dir,
    },
    Check {
        ids: &[
            "fs.config.perms_writable",
            "fs.config.perms_group_readable",
            "fs.config.perms_world_readable",
            "fs.config.symlink",
        ],
        deep_only: false,
        run: perms::config_files,
    },
    Check {
        ids: &[
            "fs.credentials.perms_writable",
            "fs.credentials.perms_group_readable",
            "fs.credentials.perms_world_readable",
            "fs.credentials.symlink",
        ],
        deep_only: false,
        run: perms::credentials,
    },
    Check {
        ids: &[
            "fs.sessions.perms_world_writable",
            "fs.sessions.perms_group_writable",
            "fs.sessions.perms_readable",
            "fs.sessions.symlink",
        ],
        deep_only: false,
        run: perms::sessions,
    },
    Check {
        ids: &[
            "fs.logs.perms_world_writable",
            "fs.logs.perms_group_writable",
            "fs.logs.perms_readable",
            "fs.logs.perms_writable",
            "fs.logs.symlink",
        ],
        deep_only: false,
        run: perms::logs,
    },
    Check {
        ids: &[
            "fs.tools.perms_world_writable",
            "fs.tools.perms_group_writable",
            "fs.tools.perms_readable",
            "fs.tools.symlink",
        ],
        deep_only: false,
        run: perms::tools,
    },
    Check {
        ids: &["config.secrets.plaintext_key"],
        deep_only: false,
        run: audit::plaintext_keys,
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
