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

// ---- Layers ---------------------------------------------------------------------------------

/// The crate's top-level modules by layer, lowest first (drawn in docs/architecture.md,
/// "Layers"). Code may name modules of its own layer or below, never above; within a layer
/// the names may not go round in a cycle. Lower layers own their error kinds and types; the
/// engine maps them to wire codes.
const LAYERS: &[&[&str]] = &[
    &[
        "build_info",
        "config",
        "files",
        "logging",
        "net",
        "platform",
        "secrets",
    ],
    &["memory", "providers", "sandbox", "voice"],
    &["findings", "orchestrator"],
    &["engine"],
    &["batch", "cli", "commands", "tui"],
];

/// Upward edges that remain, each with the reason it is still here. An entry whose edge is
/// gone fails the test too, so the list only shrinks. None remain: providers and the turn
/// loop reach the engine through host traits of their own layer (`providers::ProviderHost`,
/// `orchestrator::TurnHost`), which the engine implements.
const ALLOWED_UPWARD: &[(&str, &str, &str)] = &[];

/// `text` with comments, string and character literals blanked (newlines kept), so that
/// prose and literals never count as code.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let blank = |out: &mut Vec<u8>, bytes: &[u8]| {
        out.extend(bytes.iter().map(|&c| if c == b'\n' { b'\n' } else { b' ' }))
    };
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        let prev_ident = i > 0 && ident(b[i - 1]);
        if b[i..].starts_with(b"//") {
            let end = b[i..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |n| i + n);
            blank(&mut out, &b[i..end]);
            i = end;
        } else if b[i..].starts_with(b"/*") {
            let (mut depth, mut j) = (1, i + 2);
            while j < b.len() && depth > 0 {
                if b[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if b[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            blank(&mut out, &b[i..j]);
            i = j;
        } else if !prev_ident && (b[i] == b'r' || b[i..].starts_with(b"br")) && {
            let k = i + if b[i] == b'b' { 2 } else { 1 };
            let hashes = b[k..].iter().take_while(|&&c| c == b'#').count();
            b.get(k + hashes) == Some(&b'"')
        } {
            let k = i + if b[i] == b'b' { 2 } else { 1 };
            let hashes = b[k..].iter().take_while(|&&c| c == b'#').count();
            let mut close = vec![b'"'];
            close.extend(std::iter::repeat_n(b'#', hashes));
            let body = k + hashes + 1;
            let end = b[body..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(b.len(), |n| body + n + close.len());
            blank(&mut out, &b[i..end]);
            i = end;
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(b.len());
            blank(&mut out, &b[i..end]);
            i = end;
        } else if b[i] == b'\'' {
            // A character literal ('x', '\n', '\u{..}') or a lifetime ('a), which stays.
            let end = if b.get(i + 1) == Some(&b'\\') {
                b[i + 2..]
                    .iter()
                    .position(|&c| c == b'\'')
                    .map(|n| i + 2 + n + 1)
            } else {
                let width = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                (b.get(i + 1 + width) == Some(&b'\'')).then_some(i + 2 + width)
            };
            match end {
                Some(end) => {
                    blank(&mut out, &b[i..end]);
                    i = end;
                }
                None => {
                    out.push(b[i]);
                    i += 1;
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    // Only ASCII bytes were blanked, whole literals at a time: still valid UTF-8.
    String::from_utf8(out).unwrap()
}

/// `code` (from [`code_only`]) with every `#[cfg(test)]` item blanked: tests may set up
/// the whole crate, the layering is about what the program itself reaches. Also the names
/// of test-only module files declared here (`#[cfg(test)] mod tests;`).
fn without_tests(code: &str) -> (String, Vec<String>) {
    const ATTRIBUTE: &str = "#[cfg(test)]";
    let mut out = code.to_string();
    let mut test_files = Vec::new();
    let mut from = 0;
    while let Some(found) = out[from..].find(ATTRIBUTE) {
        let start = from + found;
        let bytes = out.as_bytes();
        let mut j = start + ATTRIBUTE.len();
        while j < bytes.len() && bytes[j] != b'{' && bytes[j] != b';' {
            j += 1;
        }
        if bytes.get(j) == Some(&b';') {
            let head = out[start + ATTRIBUTE.len()..j].trim();
            if let Some(name) = head.strip_prefix("mod ").or(head.strip_prefix("pub mod ")) {
                test_files.push(name.trim().to_string());
            }
            j += 1;
        } else {
            let mut depth = 0;
            while j < bytes.len() {
                match bytes[j] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            j += 1;
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        let blanked: String = out[start..j]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        out.replace_range(start..j, &blanked);
        from = j;
    }
    (out, test_files)
}

/// The top-level modules `code` names through `crate::` paths (`crate::a::b`,
/// `crate::{a, b::c}`), each with its line.
fn named_modules(code: &str) -> Vec<(usize, String)> {
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(n) = code[from..].find("crate::") {
        let at = from + n;
        from = at + "crate::".len();
        let before = at.checked_sub(1).map(|k| bytes[k]);
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$') {
            continue;
        }
        let line = code[..at].matches('\n').count() + 1;
        let rest = &code[from..];
        let word = |s: &str| -> String {
            s.trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        };
        if let Some(group) = rest.strip_prefix('{') {
            // Only the group's own top-level names: `{a, b::{c, d}}` names a and b.
            let mut depth = 0;
            let mut item_start = 0;
            for (k, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        found.push((line, word(&group[item_start..k])));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.push((line, word(&group[item_start..k])));
                        item_start = k + 1;
                    }
                    _ => {}
                }
            }
        } else {
            found.push((line, word(rest)));
        }
    }
    found.retain(|(_, name)| !name.is_empty() && name != "self");
    found
}

/// One use of a module by another: `from` names `to` at `place`.
struct Edge {
    from: String,
    to: String,
    place: String,
}

/// Every edge between the top-level modules of the crate at `src`.
fn module_edges(src: &Path) -> Vec<Edge> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut test_files = Vec::new();
    let mut texts = Vec::new();
    for file in &files {
        let (code, tests) = without_tests(&code_only(&std::fs::read_to_string(file).unwrap()));
        // `mod x;` in a/mod.rs or in a.rs lives in a/x.rs or a/x/mod.rs.
        let dir = if file
            .file_name()
            .is_some_and(|n| n == "mod.rs" || n == "lib.rs")
        {
            file.parent().unwrap().to_path_buf()
        } else {
            file.with_extension("")
        };
        for name in tests {
            test_files.push(dir.join(format!("{name}.rs")));
            test_files.push(dir.join(name));
        }
        texts.push((file.clone(), code));
    }
    let mut edges = Vec::new();
    for (file, code) in texts {
        if test_files.iter().any(|t| file.starts_with(t)) {
            continue;
        }
        let Some(from) = top_module(src, &file) else {
            continue;
        };
        for (line, to) in named_modules(&code) {
            if to != from {
                let place = format!("{}:{line}", file.strip_prefix(src).unwrap().display());
                edges.push(Edge {
                    from: from.clone(),
                    to,
                    place,
                });
            }
        }
    }
    edges
}

/// `src/a/b.rs` and `src/a.rs` belong to `a`; the crate roots to no module.
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let first = file.strip_prefix(src).ok()?.components().next()?;
    let name = first.as_os_str().to_str()?.trim_end_matches(".rs");
    (name != "lib" && name != "main").then(|| name.to_string())
}

/// What breaks the layering: modules missing from `layers`, upward edges not in `allowed`,
/// entries of `allowed` whose edge is gone, and cycles within a layer.
fn layering_problems(
    modules: &[String],
    edges: &[Edge],
    layers: &[&[&str]],
    allowed: &[(&str, &str, &str)],
) -> Vec<String> {
    let layer_of = |m: &str| layers.iter().position(|l| l.contains(&m));
    let mut problems = Vec::new();
    for m in modules {
        if layer_of(m).is_none() {
            problems.push(format!("module `{m}` is in no layer: add it to LAYERS"));
        }
    }
    for l in layers.iter().flat_map(|l| l.iter()) {
        if !modules.iter().any(|m| m == l) {
            problems.push(format!("LAYERS names `{l}`, which is not a module"));
        }
    }
    let is_allowed = |e: &Edge| allowed.iter().any(|(f, t, _)| *f == e.from && *t == e.to);
    for e in edges.iter().filter(|e| !is_allowed(e)) {
        if let (Some(from), Some(to)) = (layer_of(&e.from), layer_of(&e.to))
            && to > from
        {
            problems.push(format!(
                "{}: `{}` (layer {from}) names `{}` (layer {to}), a higher layer",
                e.place, e.from, e.to
            ));
        }
    }
    for (f, t, _) in allowed {
        if !edges.iter().any(|e| e.from == *f && e.to == *t) {
            problems.push(format!(
                "`{f}` no longer names `{t}`: drop it from ALLOWED_UPWARD"
            ));
        }
    }
    // Upward edges are reported above; down the layers there is no way back, so a cycle can
    // only go round within a layer: depth-first search for a back edge among sideways ones.
    let sideways = |e: &Edge| layer_of(&e.from).is_some() && layer_of(&e.from) == layer_of(&e.to);
    let next = |m: &str| -> Vec<&Edge> {
        let mut out: Vec<&Edge> = edges
            .iter()
            .filter(|e| e.from == m && sideways(e) && !is_allowed(e))
            .collect();
        out.sort_by(|a, b| a.to.cmp(&b.to));
        out.dedup_by(|a, b| a.to == b.to);
        out
    };
    fn visit<'a>(
        m: &'a str,
        next: &dyn Fn(&str) -> Vec<&'a Edge>,
        path: &mut Vec<&'a Edge>,
        done: &mut Vec<String>,
        cycles: &mut Vec<String>,
    ) {
        if done.iter().any(|d| d == m) {
            return;
        }
        for e in next(m) {
            if let Some(k) = path.iter().position(|p| p.from == e.to) {
                let ring: Vec<String> = path[k..]
                    .iter()
                    .chain([&e])
                    .map(|p| format!("{} -> {} ({})", p.from, p.to, p.place))
                    .collect();
                cycles.push(format!("cycle: {}", ring.join(", ")));
            } else if e.to != m {
                path.push(e);
                visit(&e.to, next, path, done, cycles);
                path.pop();
            }
        }
        done.push(m.to_string());
    }
    let mut done = Vec::new();
    for m in modules {
        visit(m, &next, &mut Vec::new(), &mut done, &mut problems);
    }
    problems
}

/// A newcomer can read and test each layer alone only if nothing below names what is above.
#[test]
fn lower_layers_never_name_higher_ones() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .filter_map(|e| top_module(&src, &e.unwrap().path()))
        .collect();
    modules.sort();
    let edges = module_edges(&src);
    assert!(edges.len() > 50, "found only {} edges", edges.len());
    let problems = layering_problems(&modules, &edges, LAYERS, ALLOWED_UPWARD);
    assert!(
        problems.is_empty(),
        "the layers (tests/house_rules.rs LAYERS, docs/architecture.md) are broken:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_layer_scanner_reads_paths_and_ignores_prose_literals_and_tests() {
    let text = r##"//! crate::engine in prose
use crate::{config::{A, B}, net, self};
let s = "crate::tui"; let r = r#"crate::tui"#; let c = '{';
/* crate::tui /* nested */ crate::tui */
fn f<'a>(x: &'a str) -> crate::memory::Memory { $crate::tui::x; }
#[cfg(test)]
mod tests { use crate::engine::Engine; fn g() { let b = '}'; } }
#[cfg(test)]
mod more;
let after = crate::voice::tts::TTS_IDS;
"##;
    let (code, test_files) = without_tests(&code_only(text));
    let named: Vec<(usize, String)> = named_modules(&code);
    let named: Vec<(usize, &str)> = named.iter().map(|(l, n)| (*l, n.as_str())).collect();
    assert_eq!(
        named,
        vec![(2, "config"), (2, "net"), (5, "memory"), (10, "voice")]
    );
    assert_eq!(test_files, vec!["more".to_string()]);
}

/// The rule as it stands would catch the edges the host traits removed, if they came back.
#[test]
fn the_real_layers_refuse_the_engine_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .filter_map(|e| top_module(&src, &e.unwrap().path()))
        .collect();
    modules.sort();
    for from in ["providers", "orchestrator"] {
        let mut edges = module_edges(&src);
        edges.push(Edge {
            from: from.into(),
            to: "engine".into(),
            place: format!("{from}/mod.rs:1"),
        });
        let problems = layering_problems(&modules, &edges, LAYERS, ALLOWED_UPWARD);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains(&format!("`{from}` (layer")) && problems[0].contains("`engine`"),
            "{problems:?}"
        );
    }
}

#[test]
fn the_layer_rule_fails_on_an_upward_edge_a_cycle_and_a_stale_allowance() {
    let edge = |from: &str, to: &str| Edge {
        from: from.into(),
        to: to.into(),
        place: format!("{from}.rs:1"),
    };
    let modules: Vec<String> = ["config", "sandbox", "engine", "tui", "commands"]
        .map(String::from)
        .to_vec();
    let layers: &[&[&str]] = &[&["config"], &["sandbox"], &["engine"], &["commands", "tui"]];
    let fine = [
        edge("sandbox", "config"),
        edge("engine", "sandbox"),
        edge("commands", "tui"),
    ];
    assert!(layering_problems(&modules, &fine, layers, &[]).is_empty());

    let upward = [edge("sandbox", "engine"), edge("engine", "sandbox")];
    let problems = layering_problems(&modules, &upward, layers, &[]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("`sandbox` (layer 1) names `engine`"));
    let allowed = [("sandbox", "engine", "being moved")];
    assert!(layering_problems(&modules, &upward, layers, &allowed).is_empty());
    let stale = layering_problems(&modules, &fine, layers, &allowed);
    assert_eq!(stale.len(), 1, "{stale:?}");
    assert!(stale[0].contains("drop it"));

    let sideways = [edge("commands", "tui"), edge("tui", "commands")];
    let cycles = layering_problems(&modules, &sideways, layers, &[]);
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert!(cycles[0].starts_with("cycle: "), "{cycles:?}");

    let unplaced = layering_problems(&modules, &[], &[&["config"]], &[]);
    assert_eq!(unplaced.len(), 4, "{unplaced:?}");
}

/// String literals in Rust source: line number, the text as written (escapes kept), the
/// code before it on its line and the byte offset of its start. Comments are skipped; raw and byte strings count, char
/// literals and lifetimes do not.
fn string_literals(text: &str) -> Vec<(usize, String, String, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let byte_at: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
    let mut found = Vec::new();
    let (mut i, mut line, mut line_start) = (0, 1, 0);
    let count_lines = |s: &[char]| s.iter().filter(|c| **c == '\n').count();
    let last_line_start =
        |from: usize, to: usize| (from..to).rev().find(|&j| chars[j] == '\n').map(|j| j + 1);
    while i < chars.len() {
        let rest = &chars[i..];
        let ident_before = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        let before: String = chars[line_start..i].iter().collect();
        match rest {
            ['\n', ..] => {
                line += 1;
                i += 1;
                line_start = i;
            }
            ['/', '/', ..] => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            ['/', '*', ..] => {
                let end = (i + 2..chars.len().saturating_sub(1))
                    .find(|&j| chars[j] == '*' && chars[j + 1] == '/')
                    .map_or(chars.len(), |j| j + 2);
                line += count_lines(&chars[i..end]);
                line_start = last_line_start(i, end).unwrap_or(line_start);
                i = end;
            }
            ['r', '"' | '#', ..] if !ident_before => {
                let hashes = rest[1..].iter().take_while(|c| **c == '#').count();
                if rest.get(1 + hashes) != Some(&'"') {
                    i += 1;
                    continue;
                }
                let start = i + 2 + hashes;
                let end = (start..chars.len())
                    .find(|&j| {
                        chars[j] == '"' && chars[j + 1..].iter().take(hashes).all(|c| *c == '#')
                    })
                    .unwrap_or(chars.len());
                found.push((line, chars[start..end].iter().collect(), before, byte_at[i]));
                line += count_lines(&chars[start..end]);
                line_start = last_line_start(start, end).unwrap_or(line_start);
                i = end + 1 + hashes;
            }
            ['"', ..] => {
                let mut j = i + 1;
                while j < chars.len() && chars[j] != '"' {
                    j += if chars[j] == '\\' { 2 } else { 1 };
                }
                let end = j.min(chars.len());
                found.push((line, chars[i + 1..end].iter().collect(), before, byte_at[i]));
                line += count_lines(&chars[i + 1..end]);
                line_start = last_line_start(i + 1, end).unwrap_or(line_start);
                i = end + 1;
            }
            // A char literal ('"', '\'') is skipped whole; a lifetime is left alone.
            ['\'', '\\', ..] => {
                i = (i + 3..chars.len())
                    .find(|&j| chars[j] == '\'')
                    .map_or(chars.len(), |j| j + 1);
            }
            ['\'', _, '\'', ..] => i += 3,
            _ => i += 1,
        }
    }
    found
}

/// Which bytes of `text` belong to `#[cfg(test)]` items, as [`without_tests`] finds them
/// (comments and literals do not confuse it, since it reads [`code_only`]'s output).
fn test_bytes(text: &str) -> Vec<bool> {
    let code = code_only(text);
    let (program, _) = without_tests(&code);
    let (code, program) = (code.as_bytes(), program.as_bytes());
    let mut in_test = vec![false; code.len()];
    if program.len() != code.len() {
        // Blanking changed the length (non-ASCII code in a test item): check everything.
        return in_test;
    }
    // A test item starts and ends with code (`#[cfg(test)]` .. `}`), which the blanking
    // removed; what lies between (spaces, blanked literals) belongs to the last seen.
    let mut inside = false;
    for k in 0..code.len() {
        if code[k] != program[k] {
            inside = true;
        } else if code[k] != b' ' && code[k] != b'\n' {
            inside = false;
        }
        in_test[k] = inside;
    }
    in_test
}

/// Places in `text` that call an engine method by its name: a literal that is a dotted
/// method name (`"memory.search"`) or any method name given as a `method:`; a `call` or
/// `call_with_timeout` on a literal; a name lookup in the method table. Strings that only
/// look alike (`"memory.search.mmr"`, a JSON key `"status"`) are not calls.
fn string_named_calls(text: &str, methods: &[&str]) -> Vec<(usize, String)> {
    let in_test = test_bytes(text);
    let mut found: Vec<(usize, String)> = string_literals(text)
        .into_iter()
        .filter(|(_, literal, before, at)| {
            !in_test.get(*at).copied().unwrap_or(false)
                && methods.contains(&literal.as_str())
                && (literal.contains('.') || before.trim_end().ends_with("method:"))
        })
        .map(|(line, literal, _, _)| (line, format!("\"{literal}\"")))
        .collect();
    // Built from pieces so this file does not match itself.
    let lookups = [
        format!("{}(\"", ".call"),
        format!("{}(\"", ".call_with_timeout"),
        format!("{}::find(", "methods"),
    ];
    let mut offset = 0;
    for (n, text_line) in text.split('\n').enumerate() {
        let code_part = text_line.split("//").next().unwrap_or("");
        let first = offset + (text_line.len() - text_line.trim_start().len());
        let test = in_test.get(first).copied().unwrap_or(false);
        if !test && lookups.iter().any(|l| code_part.contains(l.as_str())) {
            found.push((n + 1, text_line.trim().to_string()));
        }
        offset += text_line.len() + 1;
    }
    found.sort();
    found.dedup_by_key(|(n, _)| *n);
    found
}

/// Layers reach each other through typed Rust calls (`EngineHandle::request::<M>` and the
/// owning module's functions), so a renamed method fails to compile instead of failing at
/// run time. Only the faces that take method names from the outside (`--batch`, the CLI's
/// `call`) and the method table itself (the engine files that declare methods, and
/// `EngineHandle::call`'s lookup in `src/engine/mod.rs`) name methods by string; the TUI's
/// requests use `M::NAME`.
#[test]
fn no_internal_call_names_a_method_by_string() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let faces = [root.join("batch"), root.join("commands")];
    let lookup = root.join("engine").join("mod.rs");
    let methods: Vec<&str> = openclaw_rs::engine::METHODS
        .iter()
        .map(|m| m.name)
        .collect();
    assert!(methods.len() > 40, "{} methods", methods.len());
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut checked = 0;
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| !faces.iter().any(|face| f.starts_with(face)) && **f != lookup)
        .filter(|f| f.file_name().is_none_or(|n| n != "tests.rs"))
        .flat_map(|file| {
            let text = std::fs::read_to_string(file).unwrap();
            // Where a method is declared, its name is written once, next to its `impl`.
            let declares = text.contains("impl Method for");
            checked += 1;
            string_named_calls(&text, &methods)
                .into_iter()
                .filter(move |(_, what)| !(declares && what.starts_with('"')))
                .map(move |(n, what)| format!("{}:{n}: {what}", file.display()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(checked > 100, "checked {checked} files");
    assert!(
        offenders.is_empty(),
        "methods named by string outside the faces and the method table (use \
         request::<M> or M::NAME):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_method_name_scanner_finds_names_and_lookups_and_ignores_the_rest() {
    let methods = ["memory.search", "status"];
    let text = format!(
        "//! calls \"memory.search\" in prose\n\
         let a = engine.request::<MemorySearch>(params);\n\
         let b = json!({{\"status\": 1, \"key\": \"memory.search.mmr\"}});\n\
         let c = Command::Call {{ method: \"memory.search\", params }};\n\
         let e = '\"'; let f = Command::Call {{ method: r#\"status\"#, params }};\n\
         if {find}(\"x\").is_none() {{}}\n\
         let g = engine{call}(\"status\", Value::Null);\n\
         /* \"memory.search\"\n\"status\" */ let h: &'static str = \"memory\";\n\
         #[cfg(test)]\nmod tests {{\n    const N: &str = \"memory.search\";\n}}\n",
        call = ".call",
        find = "methods::find"
    );
    let found: Vec<usize> = string_named_calls(&text, &methods)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(found, vec![4, 5, 6, 7]);
    let literals: Vec<(usize, String)> =
        string_literals("let s = \"a\\\"b\"; // \"c\"\n/* \"d\" */ let t = 'x'; \"e\"")
            .into_iter()
            .map(|(n, literal, _, _)| (n, literal))
            .collect();
    assert_eq!(
        literals,
        vec![(1, "a\\\"b".to_string()), (2, "e".to_string())]
    );
}
