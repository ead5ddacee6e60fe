//! The CLI as a release ships it: parity goldens, `--version --verbose`, and the completions
//! and man pages that `generate` writes for the archives.
//!
//! CLI parity goldens: the `--help` text of every (sub)command and the `methods.list` result
//! are committed snapshots (snapshots/cli_help__*.snap, snapshots/methods_list.snap). A
//! renamed flag, a changed default or a new, renamed or removed method fails this test until
//! the snapshot is reviewed and updated (`cargo insta review`, or INSTA_UPDATE=always), so
//! nothing that scripts depend on changes unnoticed in a release.
//!
//! The help text is taken from the real binary (what a user sees), at a fixed width of 100
//! columns; the list of commands comes from the parser itself, so a new subcommand gets a
//! snapshot without anyone remembering to add it here.

mod common;

use std::path::Path;
use std::process::Command;

use clap::CommandFactory;
use openclaw_rs::cli::Cli;

/// The binary with a private state dir, none of the caller's OPENCLAW_RS_* settings and a
/// fixed help width (clap wraps help to $COLUMNS, at most 100).
fn cmd(home: &Path) -> Command {
    let mut c = common::bin(home);
    c.env("COLUMNS", "100");
    c.env("NO_COLOR", "1");
    c
}

/// Every command path under the root, parents before children, the root as `[]`.
fn command_paths(command: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
    out.push(prefix.to_vec());
    for sub in command.get_subcommands() {
        let mut path = prefix.to_vec();
        path.push(sub.get_name().to_string());
        command_paths(sub, &path, out);
    }
}

fn snapshot(name: &str, text: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(name, text));
}

#[test]
fn help_of_every_command_matches_its_golden() {
    let home = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    command_paths(&Cli::command(), &[], &mut paths);
    // The root, the top-level commands and the nested ones (memory add, sandbox run, ...).
    assert!(paths.len() > 30, "only {} commands found", paths.len());
    let mut names = Vec::new();
    for path in &paths {
        let out = cmd(home.path()).args(path).arg("--help").output().unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(
            out.status.success(),
            "`openclaw-rs {} --help` failed: {}",
            path.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        let name = if path.is_empty() {
            "cli_help__openclaw-rs".to_string()
        } else {
            format!("cli_help__openclaw-rs-{}", path.join("-"))
        };
        assert!(!names.contains(&name), "two commands snapshot as {name}");
        snapshot(&name, &stdout);
        names.push(name);
    }
    // A removed or renamed command leaves its golden behind: that is a change too.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots");
    let orphans: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|entry| {
            let file = entry.unwrap().file_name().into_string().ok()?;
            let name = file.strip_suffix(".snap")?.to_string();
            (name.starts_with("cli_help__") && !names.contains(&name)).then_some(file)
        })
        .collect();
    assert!(
        orphans.is_empty(),
        "goldens of commands that no longer exist (delete them if that is intended): {orphans:?}"
    );
}

#[test]
fn methods_list_matches_its_golden() {
    let home = tempfile::tempdir().unwrap();
    let out = cmd(home.path())
        .args(["call", "methods.list"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "methods.list failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(value["methods"].as_array().is_some_and(|m| m.len() > 20));
    snapshot(
        "methods_list",
        &serde_json::to_string_pretty(&value).unwrap(),
    );
}

fn stdout_of(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `git` in the source tree, when there is one (a source tarball has none).
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn version_is_one_line_and_verbose_says_track_commit_target_and_date() {
    let home = tempfile::tempdir().unwrap();
    let short = stdout_of(cmd(home.path()).arg("--version"));
    assert_eq!(
        short,
        format!("openclaw-rs {}\n", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(stdout_of(cmd(home.path()).arg("-V")), short);

    let verbose = stdout_of(cmd(home.path()).args(["--version", "--verbose"]));
    let field = |key: &str| {
        verbose
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}: ")))
            .unwrap_or_else(|| panic!("no `{key}:` line in {verbose:?}"))
            .to_string()
    };
    assert!(verbose.starts_with(&short), "{verbose}");
    let status: serde_json::Value =
        serde_json::from_str(&stdout_of(cmd(home.path()).args(["status", "--json"]))).unwrap();
    assert_eq!(field("track"), status["buildTrack"].as_str().unwrap());
    let target = field("target");
    assert!(
        target.starts_with(std::env::consts::ARCH) && target.contains(std::env::consts::OS),
        "{target}"
    );
    assert!(field("rustc").starts_with("rustc "), "{verbose}");
    let commit = field("commit");
    match git(&["rev-parse", "HEAD"]) {
        Some(head) => {
            assert!(
                commit == head || commit == format!("{head}-dirty"),
                "binary says commit {commit}, the tree is at {head}"
            );
            // The build date is SOURCE_DATE_EPOCH, else the commit's time: never the clock.
            let epoch = std::env::var("SOURCE_DATE_EPOCH")
                .ok()
                .or_else(|| git(&["log", "-1", "--format=%ct"]))
                .unwrap();
            let expected = Command::new("date")
                .args(["-u", "-d", &format!("@{epoch}"), "+%Y-%m-%dT%H:%M:%SZ"])
                .output()
                .unwrap();
            let expected = String::from_utf8(expected.stdout).unwrap();
            assert_eq!(field("build date"), expected.trim());
        }
        None => assert_eq!(commit, "unknown"),
    }
}

/// Visible commands as `generate man` names their pages.
fn visible_pages(command: &clap::Command, name: &str, out: &mut Vec<String>) {
    out.push(format!("{name}.1"));
    for sub in command.get_subcommands() {
        if !sub.is_hide_set() && sub.get_name() != "help" {
            visible_pages(sub, &format!("{name}-{}", sub.get_name()), out);
        }
    }
}

#[test]
fn generate_writes_completions_for_five_shells_and_a_man_page_per_command() {
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let completions = out.path().join("completions");
    let listed = stdout_of(
        cmd(home.path())
            .args(["generate", "completions", "--out"])
            .arg(&completions),
    );
    let mut names: Vec<String> = std::fs::read_dir(&completions)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "_openclaw-rs",
            "_openclaw-rs.ps1",
            "openclaw-rs.bash",
            "openclaw-rs.elv",
            "openclaw-rs.fish"
        ]
    );
    assert_eq!(listed.lines().count(), 5, "{listed}");
    let top: Vec<String> = Cli::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().to_string())
        .collect();
    for name in &names {
        let text = std::fs::read_to_string(completions.join(name)).unwrap();
        for sub in &top {
            assert!(
                text.contains(sub.as_str()),
                "{name} does not complete `{sub}`"
            );
        }
        assert!(text.contains("--severity-min"), "{name} lacks nested flags");
    }
    let bash = Command::new("bash")
        .arg("-n")
        .arg(completions.join("openclaw-rs.bash"))
        .output()
        .unwrap();
    assert!(
        bash.status.success(),
        "{}",
        String::from_utf8_lossy(&bash.stderr)
    );

    let man = out.path().join("man");
    stdout_of(
        cmd(home.path())
            .args(["generate", "man", "--out"])
            .arg(&man),
    );
    let mut expected = Vec::new();
    visible_pages(&Cli::command(), "openclaw-rs", &mut expected);
    let mut pages: Vec<String> = std::fs::read_dir(&man)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    expected.sort();
    pages.sort();
    assert_eq!(pages, expected);
    assert!(pages.contains(&"openclaw-rs-memory-add.1".to_string()));
    let verbose = stdout_of(cmd(home.path()).args(["--version", "--verbose"]));
    let date = verbose
        .lines()
        .find_map(|l| l.strip_prefix("build date: "))
        .unwrap();
    let page = std::fs::read_to_string(man.join("openclaw-rs-sandbox-run.1")).unwrap();
    let th = page.lines().find(|l| l.starts_with(".TH")).unwrap();
    assert!(
        th.contains(date.get(..10).unwrap_or(date)),
        "{th} lacks the build date {date}"
    );
    assert!(page.contains("fuel"), "the page lacks sandbox run's flags");
    // The hidden release command documents nobody.
    assert!(!pages.iter().any(|p| p.contains("generate")));
}
