//! Replays the fuzzers' saved corpora (`fuzz/corpus/<target>/`) and the inputs that once
//! crashed a target (`fuzz/regressions/<target>/`) through the targets' own bodies, under
//! stable `cargo test`. The fuzzing itself (nightly, cargo-fuzz) is in docs/reliability.md.

#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::path::Path;

fn inputs(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let (_, run) = harness::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a known target");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let corpus = inputs(&root.join("corpus").join(target));
    assert!(!corpus.is_empty(), "fuzz/corpus/{target} has no inputs");
    for file in corpus
        .iter()
        .chain(&inputs(&root.join("regressions").join(target)))
    {
        let data = std::fs::read(file).expect("a readable corpus file");
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target} fails on {}", file.display());
    }
}

#[test]
fn every_target_has_a_replay_test() {
    let names: Vec<&str> = harness::TARGETS.iter().map(|(n, _)| *n).collect();
    let fuzz_toml = include_str!("../fuzz/Cargo.toml");
    for name in &names {
        assert!(
            fuzz_toml.contains(&format!("name = \"{name}\"")),
            "{name} is not a fuzz target"
        );
    }
    let this = include_str!("fuzz_corpora.rs");
    for name in names {
        assert!(
            this.contains(&format!("replay(\"{name}\")")),
            "{name} is never replayed"
        );
    }
}

#[test]
fn batch_line() {
    replay("batch_line");
}

#[test]
fn config_load() {
    replay("config_load");
}

#[test]
fn sse_stream() {
    replay("sse_stream");
}

#[test]
fn ndjson_stream() {
    replay("ndjson_stream");
}

#[test]
fn tool_manifest() {
    replay("tool_manifest");
}

#[test]
fn tool_output() {
    replay("tool_output");
}

#[test]
fn tool_call_repair() {
    replay("tool_call_repair");
}

#[test]
fn markdown_chunk() {
    replay("markdown_chunk");
}

#[test]
fn stream_redact() {
    replay("stream_redact");
}
