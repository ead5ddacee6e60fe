//! Rules of the house that a reviewer should not have to check by eye.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Lines of Rust code (comments aside) that import a terminal crate.
fn terminal_imports(text: &str) -> Vec<(usize, String)> {
    const NEEDLES: [&str; 6] = [
        "ratatui::",
        "crossterm::",
        "use ratatui",
        "use crossterm",
        "crate ratatui",
        "crate crossterm",
    ];
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split("//").next().unwrap_or("");
            NEEDLES.iter().any(|n| code.contains(n))
        })
        .map(|(n, line)| (n + 1, line.trim().to_string()))
        .collect()
}

/// The engine and every face but the TUI stay terminal-agnostic, so `--batch` and the CLI
/// never pull in terminal state and the engine can be tested without one.
#[test]
fn only_the_tui_imports_ratatui_or_crossterm() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let tui = root.join("tui");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(files.len() > 10, "walked {} files", files.len());
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| !f.starts_with(&tui))
        .flat_map(|file| {
            let text = std::fs::read_to_string(file).unwrap();
            terminal_imports(&text)
                .into_iter()
                .map(move |(n, line)| format!("{}:{n}: {line}", file.display()))
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "terminal crates outside src/tui/:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_scanner_finds_imports_and_ignores_prose() {
    let text = "//! never imports ratatui or crossterm\nuse std::io;\nuse ratatui::widgets::Paragraph;\nlet x = crossterm::terminal::size(); // ratatui::\nextern crate ratatui;\n";
    let found: Vec<usize> = terminal_imports(text).into_iter().map(|(n, _)| n).collect();
    assert_eq!(found, vec![3, 4, 5]);
}

/// Lines of Rust code (comments aside) that change the process environment.
fn env_mutations(text: &str) -> Vec<(usize, String)> {
    // Built from pieces so this file does not match itself.
    let needles = [format!("{}_var(", "set"), format!("{}_var(", "remove")];
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split("//").next().unwrap_or("");
            needles.iter().any(|n| code.contains(n.as_str()))
        })
        .map(|(n, line)| (n + 1, line.trim().to_string()))
        .collect()
}

/// Tests run on many threads of one process: a test that changes the environment races
/// every other test that reads it (and `getenv` in C code). Configuration is passed
/// explicitly instead; subprocesses get theirs through `Command::env`.
#[test]
fn nothing_changes_the_process_environment() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("tests"), &mut files);
    assert!(files.len() > 10, "walked {} files", files.len());
    let offenders: Vec<String> = files
        .iter()
        .flat_map(|file| {
            let text = std::fs::read_to_string(file).unwrap();
            env_mutations(&text)
                .into_iter()
                .map(move |(n, line)| format!("{}:{n}: {line}", file.display()))
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "the process environment is changed at:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_environment_scanner_finds_calls_and_ignores_prose() {
    let text = format!(
        "// std::env::{s}_var(\"A\", \"b\")\nunsafe {{ std::env::{s}_var(\"A\", \"b\") }};\nCommand::new(\"x\").env(\"A\", \"b\");\nenv::{r}_var(\"A\");\n",
        s = "set",
        r = "remove"
    );
    let found: Vec<usize> = env_mutations(&text).into_iter().map(|(n, _)| n).collect();
    assert_eq!(found, vec![2, 4]);
}
