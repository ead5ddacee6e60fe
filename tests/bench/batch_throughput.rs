//! `--batch` throughput: 10,000 `status` requests through the real binary.
//!
//! Run: `cargo bench --bench batch_throughput`. Baselines measured in the same run: the
//! binary's startup alone (empty input) and `cat` moving the same bytes through a pipe.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_openclaw-rs");

fn run(program: &str, args: &[&str], input: &[u8]) -> (Duration, Vec<u8>) {
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("wait");
    let elapsed = started.elapsed();
    writer.join().expect("writer").expect("write input");
    assert!(out.status.success(), "{program} failed: {:?}", out.status);
    (elapsed, out.stdout)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (requests, rounds) = if full { (10_000, 7) } else { (1_000, 1) };
    let home = tempfile::tempdir().expect("tempdir");
    let home_arg = home.path().to_str().expect("utf-8 path");
    let input: String = (0..requests)
        .map(|i| format!("{{\"id\":{i},\"method\":\"status\"}}\n"))
        .collect();
    let args = ["--home", home_arg, "--batch"];

    // Warm-up: first run creates the state dir and config.
    let (_, out) = run(BIN, &args, input.as_bytes());
    let text = String::from_utf8(out).expect("utf-8 output");
    let frames: Vec<&str> = text.lines().collect();
    assert_eq!(frames.len(), requests, "one frame per request");
    assert!(
        frames.iter().all(|f| f.contains("\"ok\":true")),
        "all succeed"
    );

    let batch = median(
        (0..rounds)
            .map(|_| run(BIN, &args, input.as_bytes()).0)
            .collect(),
    );
    let empty = median((0..rounds).map(|_| run(BIN, &args, b"").0).collect());
    let cat = median(
        (0..rounds)
            .map(|_| run("cat", &[], input.as_bytes()).0)
            .collect(),
    );
    let per_request = batch.saturating_sub(empty) / requests as u32;

    println!("batch_throughput ({requests} status requests, median of {rounds})");
    println!("| measure | time | ratio |");
    println!("|---|---|---|");
    println!(
        "| `--batch`, {requests} × status | {:.1} ms | 1.00 |",
        ms(batch)
    );
    println!(
        "| `--batch`, empty input (startup + exit) | {:.1} ms | {:.2} |",
        ms(empty),
        ms(empty) / ms(batch)
    );
    println!(
        "| `cat` of the same input (pipe floor) | {:.1} ms | {:.2} |",
        ms(cat),
        ms(cat) / ms(batch)
    );
    println!(
        "| per request, startup excluded | {:.2} µs | |",
        per_request.as_secs_f64() * 1e6
    );
    if full {
        assert!(
            batch < Duration::from_secs(1),
            "10,000 requests took {batch:?}"
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
