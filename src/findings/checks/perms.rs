//! File and directory permissions in the state dir. Nothing here follows a symlink: a link
//! is reported as what it is, and left for the user to judge.

use std::path::Path;

use crate::config::SecretRef;
use crate::findings::fix::Step;
use crate::findings::{Context, Finding, Severity, show, state_paths};
use crate::platform::{self, NotApplicable};

/// What a path holds, which decides how tight it must be.
#[derive(Clone, Copy)]
enum Kind {
    /// A directory of private state: owner only.
    Dir,
    /// A file that holds or may hold secrets: owner read/write only.
    Secret,
    /// A file others should neither change nor read (logs).
    Private,
    /// Compiled code the sandbox loads (`<state>/cache/wasmtime/*.cwasm`).
    Code,
}

/// A permission problem: mode bits that must be clear, worst first within a kind.
struct Rule {
    bits: u32,
    id: &'static str,
    severity: Severity,
    title: &'static str,
}

const DIR_RULES: &[Rule] = &[
    Rule {
        bits: 0o002,
        id: "perms_world_writable",
        severity: Severity::Critical,
        title: "is writable by everyone",
    },
    Rule {
        bits: 0o020,
        id: "perms_group_writable",
        severity: Severity::Warn,
        title: "is writable by its group",
    },
    Rule {
        bits: 0o055,
        id: "perms_readable",
        severity: Severity::Warn,
        title: "can be listed by other users",
    },
];

const SECRET_RULES: &[Rule] = &[
    Rule {
        bits: 0o022,
        id: "perms_writable",
        severity: Severity::Critical,
        title: "can be changed by other users",
    },
    Rule {
        bits: 0o004,
        id: "perms_world_readable",
        severity: Severity::Critical,
        title: "is readable by everyone",
    },
    Rule {
        bits: 0o040,
        id: "perms_group_readable",
        severity: Severity::Warn,
        title: "is readable by its group",
    },
];

const PRIVATE_RULES: &[Rule] = &[
    Rule {
        bits: 0o022,
        id: "perms_writable",
        severity: Severity::Warn,
        title: "can be changed by other users",
    },
    Rule {
        bits: 0o044,
        id: "perms_readable",
        severity: Severity::Warn,
        title: "is readable by other users",
    },
];

/// The worst problem with `path`, if any, with a fix where one is safe.
fn check(prefix: &str, what: &str, path: &Path, kind: Kind) -> Option<Finding> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let shown = show(path);
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path)
            .map(|t| t.display().to_string())
            .unwrap_or_else(|_| "an unreadable target".into());
        let severity = match kind {
            Kind::Private | Kind::Code => Severity::Warn,
            Kind::Dir | Kind::Secret => Severity::Critical,
        };
        return Some(
            Finding::new(
                &format!("{prefix}.symlink"),
                severity,
                format!("{what} is a symbolic link"),
            )
            .detail(format!(
                "{shown} points to {target}. Writes and permission fixes would land outside \
                     the state dir, so the audit does not follow it and will not fix it. Replace \
                     the link with the real {}, or suppress this finding if the link is intended.",
                if matches!(kind, Kind::Dir) {
                    "directory"
                } else {
                    "file"
                }
            ))
            .path(&shown),
        );
    }
    if !matches!(kind, Kind::Dir) && meta.is_dir() {
        // A directory where a file belongs: chmod 0600 would lock its owner out of it.
        return Some(
            Finding::new(
                &format!("{prefix}.not_a_file"),
                Severity::Warn,
                format!("{what} is a directory"),
            )
            .detail(format!(
                "{shown} should be a file. Move the directory away; the audit will not change it."
            ))
            .path(&shown),
        );
    }
    let links = platform::link_count(&meta).unwrap_or(1);
    if !matches!(kind, Kind::Dir) && links > 1 {
        // Another name for the same file keeps the old contents after a fix rewrites this one.
        return Some(
            Finding::new(
                &format!("{prefix}.hardlinked"),
                Severity::Warn,
                format!("{what} has another name"),
            )
            .detail(format!(
                "{shown} is hard-linked {} times. A copy under another name keeps whatever this \
                     file held, and fixes replace this name only. Find the other names (find / \
                     -samefile {shown}) and remove them.",
                links
            ))
            .path(&shown),
        );
    }
    // No mode bits on Windows: `summary.not_applicable` says so instead.
    let mode = platform::mode(&meta)?;
    // The first rule whose bits are set names the problem; the fix clears every bit the
    // kind does not allow.
    let (rules, allowed): (&[Rule], u32) = match kind {
        Kind::Dir => (DIR_RULES, 0o7700),
        Kind::Secret => (SECRET_RULES, 0o7600),
        Kind::Private => (PRIVATE_RULES, 0o7700),
        Kind::Code => (PRIVATE_RULES, 0o7600),
    };
    let rule = rules.iter().find(|r| mode & r.bits != 0)?;
    let (id, severity, target) = (rule.id, rule.severity, mode & allowed);
    let title = format!("{what} {}", rule.title);
    let why = match kind {
        Kind::Dir => "Other users could read or plant files among your assistant's state.",
        Kind::Secret => {
            "It holds (or may hold) keys and settings that decide where your data goes."
        }
        Kind::Private => "Logs can hold prompts, paths and provider replies.",
        Kind::Code => {
            "The sandbox runs this compiled code as it is; it refuses files others can change \
             (and compiles the module again every time)."
        }
    };
    Some(
        Finding::new(&format!("{prefix}.{id}"), severity, title)
            .detail(format!("{shown} has mode {mode:04o}. {why}"))
            .path(&shown)
            .with_fix(
                format!("chmod {target:04o} {shown}"),
                vec![Step::SetMode {
                    path: path.to_path_buf(),
                    mode: target,
                }],
            ),
    )
}

pub fn state_dir(ctx: &Context<'_>) -> Vec<Finding> {
    let paths = state_paths(ctx.snapshot);
    check("fs.state_dir", "The state dir", &paths.dir, Kind::Dir)
        .into_iter()
        .collect()
}

/// `config.toml`, its backups, and the user's profile files.
pub fn config_files(ctx: &Context<'_>) -> Vec<Finding> {
    let paths = &ctx.snapshot.loaded.paths;
    let mut files = vec![paths.config_file.clone()];
    files.extend(
        (1..=crate::findings::fix::BACKUPS)
            .map(|n| crate::findings::fix::backup_path(&paths.config_file, n)),
    );
    let mut out = Vec::new();
    // A linked profiles dir is reported, never walked: its files are somewhere else.
    let profiles_linked = is_link(&paths.profiles_dir);
    if profiles_linked {
        out.extend(check(
            "fs.config",
            "The profiles dir",
            &paths.profiles_dir,
            Kind::Dir,
        ));
    } else if let Ok(entries) = std::fs::read_dir(&paths.profiles_dir) {
        let mut profiles: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        profiles.sort();
        files.extend(profiles.into_iter().filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.ends_with(".toml") || name.contains(".toml.bak.")
        }));
    }
    out.extend(
        files
            .iter()
            .filter_map(|file| check("fs.config", "A config file", file, Kind::Secret)),
    );
    out
}

/// Files that `file:` key references point at.
pub fn credentials(ctx: &Context<'_>) -> Vec<Finding> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for provider in ctx.snapshot.config().providers.values() {
        if let Some(SecretRef::File(path)) = &provider.api_key
            && !seen.contains(path)
        {
            seen.push(path.clone());
            out.extend(check("fs.credentials", "A key file", path, Kind::Secret));
        }
    }
    out
}

pub fn sessions(ctx: &Context<'_>) -> Vec<Finding> {
    let paths = state_paths(ctx.snapshot);
    check(
        "fs.sessions",
        "The sessions store",
        &paths.sessions,
        Kind::Dir,
    )
    .into_iter()
    .collect()
}

/// The log dir and every file in it.
pub fn logs(ctx: &Context<'_>) -> Vec<Finding> {
    let paths = state_paths(ctx.snapshot);
    let mut out: Vec<Finding> = check("fs.logs", "The log dir", &paths.logs, Kind::Dir)
        .into_iter()
        .collect();
    if is_link(&paths.logs) {
        return out;
    }
    if let Ok(entries) = std::fs::read_dir(&paths.logs) {
        let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for file in files {
            out.extend(check("fs.logs", "A log file", &file, Kind::Private));
        }
    }
    out
}

fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// The fix journal: undo acts on the paths it names, so only its owner may write it.
pub fn journal(ctx: &Context<'_>) -> Vec<Finding> {
    let paths = state_paths(ctx.snapshot);
    let mut out: Vec<Finding> = check(
        "fs.journal",
        "The fix journal dir",
        &paths.journal,
        Kind::Dir,
    )
    .into_iter()
    .collect();
    if !is_link(&paths.journal) {
        out.extend(check(
            "fs.journal",
            "The fix journal",
            &paths.journal.join("journal.jsonl"),
            Kind::Secret,
        ));
    }
    out
}

pub fn tools(ctx: &Context<'_>) -> Vec<Finding> {
    let paths = state_paths(ctx.snapshot);
    check("fs.tools", "The tools dir", &paths.tools, Kind::Dir)
        .into_iter()
        .collect()
}

/// The cache dir and wasmtime's compiled code in it (`sandbox.disk_cache`): code that is
/// loaded and run, so nobody else may plant or change it.
pub fn cache(ctx: &Context<'_>) -> Vec<Finding> {
    let dir = ctx.snapshot.loaded.paths.state_dir.join("cache");
    let code = crate::sandbox::wasmtime_cache_dir(&ctx.snapshot.loaded.paths.state_dir);
    let mut out: Vec<Finding> = check("fs.cache", "The cache dir", &dir, Kind::Dir)
        .into_iter()
        .collect();
    if is_link(&dir) {
        return out;
    }
    out.extend(check(
        "fs.cache",
        "The compiled-code cache",
        &code,
        Kind::Dir,
    ));
    if is_link(&code) {
        return out;
    }
    if let Ok(entries) = std::fs::read_dir(&code) {
        let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for file in files {
            out.extend(check("fs.cache", "A compiled module", &file, Kind::Code));
        }
    }
    out
}

/// The audit's checks that have nothing to look at on this platform (Windows: modes, link
/// counts, the journal's owner), in one finding, so the report says what it did not check.
/// A `summary.` id: it is a note about the report, and does not make it fail.
pub fn not_applicable(_ctx: &Context<'_>) -> Vec<Finding> {
    not_applicable_finding(platform::NOT_APPLICABLE)
        .into_iter()
        .collect()
}

fn not_applicable_finding(list: &[NotApplicable]) -> Option<Finding> {
    if list.is_empty() {
        return None;
    }
    let lines: Vec<String> = list
        .iter()
        .map(|n| format!("{}: {}", n.ids, n.why))
        .collect();
    Some(
        Finding::new(
            "summary.not_applicable",
            Severity::Info,
            format!("{} audit checks do not apply on Windows", list.len()),
        )
        .detail(format!("Not checked here. {}.", lines.join("; "))),
    )
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::config::{LoadOptions, load};

    fn set_mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn checks_that_do_not_apply_are_named_in_one_finding_that_does_not_fail_the_report() {
        // Everything applies on Unix: no note.
        assert!(not_applicable_finding(platform::NOT_APPLICABLE).is_none());
        let finding = not_applicable_finding(platform::WINDOWS_NOT_APPLICABLE).unwrap();
        assert_eq!(finding.check_id, "summary.not_applicable");
        assert_eq!(finding.severity, Severity::Info);
        let detail = &finding.detail;
        for entry in platform::WINDOWS_NOT_APPLICABLE {
            assert!(detail.contains(entry.ids), "{detail}");
        }
        assert!(
            detail.contains("perms_") && detail.contains("ACL"),
            "{detail}"
        );
    }

    #[test]
    fn the_compiled_code_cache_is_audited_and_fixed() {
        let tmp = tempfile::tempdir().unwrap();
        let code = tmp.path().join("cache").join("wasmtime");
        std::fs::create_dir_all(&code).unwrap();
        let file = code.join("abc-def.cwasm");
        std::fs::write(&file, b"code").unwrap();
        set_mode(&tmp.path().join("cache"), 0o700);
        set_mode(&code, 0o777);
        set_mode(&file, 0o666);
        let snapshot = crate::engine::Engine::start(
            load(&LoadOptions {
                state_dir: tmp.path().to_path_buf(),
                ..Default::default()
            }),
            Vec::new(),
        )
        .handle()
        .snapshot();
        let ctx = Context {
            snapshot: &snapshot,
            deep: false,
            terminal: None,
            memory: Default::default(),
        };
        let found = cache(&ctx);
        let got: Vec<(&str, Severity)> = found
            .iter()
            .map(|f| (f.check_id.as_str(), f.severity))
            .collect();
        assert_eq!(
            got,
            [
                ("fs.cache.perms_world_writable", Severity::Critical),
                ("fs.cache.perms_writable", Severity::Warn),
            ]
        );
        for finding in &found {
            finding
                .plan
                .as_ref()
                .unwrap()
                .apply(&tmp.path().join("fixes"))
                .unwrap();
        }
        assert_eq!(
            std::fs::metadata(&code).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(cache(&ctx).is_empty());
    }
}
