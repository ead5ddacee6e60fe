//! `security audit` and `security audit --deep` on a populated state dir: 10,000 memory chunk
//! files (what `--deep` scans for leaked secrets) and 50 tool directories.
//!
//! Run: `cargo bench --bench audit`. Baseline in the same run: `status --json`, the cost of
//! starting the binary and loading the configuration.

use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_openclaw-rs");

fn time(args: &[&str]) -> Duration {
    let started = Instant::now();
    let out = Command::new(BIN).args(args).output().expect("run");
    let elapsed = started.elapsed();
    // 0 clean, 1 findings: both are a completed run.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{args:?}: {out:?}"
    );
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (chunks, rounds) = if full { (10_000, 7) } else { (200, 1) };
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("state");
    let state_arg = state.to_str().expect("utf-8 path");
    assert!(
        Command::new(BIN)
            .args(["--home", state_arg, "status"])
            .output()
            .expect("run")
            .status
            .success()
    );

    let memory = state.join("memory").join("chunks");
    std::fs::create_dir_all(&memory).expect("mkdir");
    for i in 0..chunks {
        // ~400 tokens of ordinary prose per chunk, one in a thousand with a leaked key.
        let mut text = format!("# note {i}\n");
        for line in 0..30 {
            text.push_str(&format!("line {line} of chunk {i}: remember to water the plants and review the quarterly plan.\n"));
        }
        if i % 1000 == 7 {
            text.push_str("aws AKIAABCDEFGHIJKLMNOP\n");
        }
        std::fs::write(memory.join(format!("{i:05}.md")), text).expect("write");
    }
    for t in 0..50 {
        let dir = state.join("tools").join(format!("tool-{t}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("tool.toml"), format!("name = \"tool-{t}\"\n")).expect("write");
    }

    let base = ["--home", state_arg];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        base.iter().copied().chain(extra.iter().copied()).collect()
    };
    let status = median(
        (0..rounds)
            .map(|_| time(&with(&["status", "--json"])))
            .collect(),
    );
    let audit = median(
        (0..rounds)
            .map(|_| time(&with(&["security", "audit", "--json"])))
            .collect(),
    );
    let deep = median(
        (0..rounds)
            .map(|_| time(&with(&["security", "audit", "--deep", "--json"])))
            .collect(),
    );
    let doctor = median(
        (0..rounds)
            .map(|_| time(&with(&["doctor", "--json"])))
            .collect(),
    );

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("audit ({chunks} memory chunks, 50 tools, median of {rounds}, whole process)");
    println!("| measure | time | ratio |");
    println!("|---|---|---|");
    println!(
        "| baseline: `status --json` | {:.1} ms | 1.00 |",
        ms(status)
    );
    println!(
        "| `security audit --json` | {:.1} ms | {:.2} |",
        ms(audit),
        ms(audit) / ms(status)
    );
    println!(
        "| `doctor --json` | {:.1} ms | {:.2} |",
        ms(doctor),
        ms(doctor) / ms(status)
    );
    println!(
        "| `security audit --deep --json` | {:.1} ms | {:.2} |",
        ms(deep),
        ms(deep) / ms(status)
    );
    if full {
        assert!(
            audit < Duration::from_millis(50),
            "audit took {audit:?} (target < 50 ms)"
        );
        assert!(
            deep < Duration::from_secs(2),
            "deep audit took {deep:?} (target < 2 s)"
        );
    }
}
