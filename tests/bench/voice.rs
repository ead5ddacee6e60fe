//! Voice: time to first audio for a 200-character reply with espeak-ng, and the memory voice
//! adds when it is configured but not used (the target is zero: nothing is loaded).
//!
//! Time to first audio is `tts.convert` in-process with the cache off, so every run spawns
//! espeak-ng, validates the WAV and writes it; a 200-character reply is one segment, so the
//! first audio is the whole file. Beside it, espeak-ng alone on the same text, to show what
//! the engine adds. The RSS figures are peak RSS (wait4) of the release-or-debug binary
//! answering `status` over `--batch` with voice off, and with voice on and every provider
//! configured; then the same binary when a voice method does run (`tts.status` probes, and
//! `tts.convert` speaks).
//!
//! Time to first audio of a long reply: the TUI's "speak the last reply" path
//! (`speech_pieces`, then `speak_pieces` converting through `tts.convert` while a piece
//! plays), from the request until the player is handed its first file, for a 2,000-character
//! reply against a single-sentence one; and the same long reply converted in one
//! `tts.convert`, as it was spoken before (every segment synthesized and joined first).
//!
//! Run: `cargo bench --bench voice`. Under `cargo test` it runs a small smoke pass.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Instant;

use openclaw_rs::config::{LoadOptions, load};
use openclaw_rs::engine::{Engine, EngineHandle};
use openclaw_rs::tui::voice::{PlayOutcome, speak_pieces};
use openclaw_rs::voice::text::speech_pieces;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_openclaw-rs");

/// A 200-character reply, varied per run so no cache could answer.
fn reply(i: usize) -> String {
    let base = format!(
        "Run {i}: the build finished and every test passed. I updated the changelog, tagged \
         the release and pushed it to the registry; the next step is to watch the deploy for \
         a while and tell you at once if anything looks wrong"
    );
    let mut text: String = base.chars().take(193).collect();
    text.push_str(" today.");
    text
}

/// One sentence of about 100 characters, varied by run and position.
fn sentence(run: usize, k: usize) -> String {
    format!(
        "Step {k} of run {run} went through: the migration copied every table and the \
         checks all came back green."
    )
}

/// About 2,000 characters: twenty sentences.
fn long_reply(run: usize) -> String {
    (0..20)
        .map(|k| sentence(run, k))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Milliseconds from asking to speak `text` until the player gets its first file, through
/// the TUI's pipeline (the player returns at once: playback is not what is measured).
fn first_audio_ms(runtime: &tokio::runtime::Runtime, handle: &EngineHandle, text: &str) -> f64 {
    let started = Instant::now();
    let first = Mutex::new(None::<f64>);
    let pieces = speech_pieces(text, 400);
    let convert = |piece: String| handle.call("tts.convert", json!({ "text": piece }));
    let play = |_path: String| {
        first
            .lock()
            .expect("lock")
            .get_or_insert_with(|| started.elapsed().as_secs_f64() * 1000.0);
        async {
            PlayOutcome::Played {
                player: "bench".into(),
            }
        }
    };
    runtime.block_on(speak_pieces(pieces, convert, play, &|_| {}));
    first.into_inner().expect("lock").expect("something played")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .expect("proc status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Peak RSS (KiB) of the binary answering `requests` over `--batch` in `home`.
// The child is reaped with wait4 (for its rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn batch_peak_kib(home: &std::path::Path, requests: &str) -> u64 {
    let mut child = Command::new(BIN)
        .arg("--home")
        .arg(home)
        .args(["--profile", "core", "--batch"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(requests.as_bytes())
        .expect("write");
    let pid = child.id() as libc::pid_t;
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut out)
        .expect("read");
    let mut status = 0;
    // SAFETY: plain wait4 on our own child; rusage is written by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "batch failed: {out}"
    );
    assert!(!out.contains("\"ok\":false"), "{out}");
    usage.ru_maxrss as u64
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

const VOICE_ON: &str = r#"
[voice]
enabled = true
auto = true
provider = "kittentts"
fallback = ["espeak-ng", "flite", "openai", "elevenlabs"]
[voice.kittentts]
preset = "piper"
voice = "/models/en_US-lessac-medium.onnx"
[voice.openai]
base_url = "http://127.0.0.1:9/v1"
api_key = "env:OPENAI_API_KEY"
[voice.elevenlabs]
api_key = "env:ELEVENLABS_API_KEY"
[voice.stt]
enabled = true
fallback = ["whisper", "openai"]
"#;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let runs = if full { 30 } else { 3 };
    let rss_runs = if full { 7 } else { 1 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    // ---- time to first audio ---------------------------------------------------------------
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        home.path().join("config.toml"),
        "[voice]\nprovider = \"espeak-ng\"\nfallback = []\ncache_max_files = 0\n",
    )
    .expect("config");
    let engine = Engine::start(
        load(&LoadOptions {
            state_dir: home.path().to_path_buf(),
            ..Default::default()
        }),
        Vec::new(),
    );
    let handle = engine.handle();
    let mut engine_ms = Vec::new();
    let mut audio_ms = 0;
    for i in 0..runs + 1 {
        let text = reply(i);
        assert_eq!(text.chars().count(), 200);
        let started = Instant::now();
        let result = runtime
            .block_on(handle.call("tts.convert", json!({ "text": text })))
            .expect("tts.convert");
        let took = started.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(result["attempts"][0]["status"], "ok", "{result}");
        audio_ms = result["durationMs"].as_u64().expect("durationMs");
        if i > 0 {
            // The first run warms the page cache for espeak-ng's data.
            engine_ms.push(took);
        }
    }
    let mut alone_ms = Vec::new();
    let scratch = home.path().join("alone.wav");
    for i in 1..=runs {
        let started = Instant::now();
        let mut child = Command::new("espeak-ng")
            .arg("-w")
            .arg(&scratch)
            .arg("--stdin")
            .stdin(Stdio::piped())
            .spawn()
            .expect("espeak-ng");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(reply(i).as_bytes())
            .expect("write");
        assert!(child.wait().expect("wait").success());
        alone_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    engine_ms.sort_by(f64::total_cmp);
    alone_ms.sort_by(f64::total_cmp);

    // ---- time to first audio: a long reply against one sentence ----------------------------
    let mut one_ms = Vec::new();
    let mut long_ms = Vec::new();
    let mut joined_ms = Vec::new();
    let long_chars = long_reply(0).chars().count();
    assert!((1_900..=2_100).contains(&long_chars), "{long_chars}");
    for i in 0..runs + 1 {
        // Interleaved, so a burst of load on the shared machine hits all three alike.
        let one = first_audio_ms(&runtime, &handle, &sentence(10_000 + i, 0));
        let long = first_audio_ms(&runtime, &handle, &long_reply(20_000 + i));
        let started = Instant::now();
        runtime
            .block_on(handle.call("tts.convert", json!({ "text": long_reply(30_000 + i) })))
            .expect("tts.convert");
        let joined = started.elapsed().as_secs_f64() * 1000.0;
        if i > 0 {
            one_ms.push(one);
            long_ms.push(long);
            joined_ms.push(joined);
        }
    }
    one_ms.sort_by(f64::total_cmp);
    long_ms.sort_by(f64::total_cmp);
    joined_ms.sort_by(f64::total_cmp);

    // ---- RSS: voice configured but unused --------------------------------------------------
    let before = vm_rss_kib();
    let on_home = tempfile::tempdir().expect("tempdir");
    std::fs::write(on_home.path().join("config.toml"), VOICE_ON).expect("config");
    let configured = Engine::start(
        load(&LoadOptions {
            state_dir: on_home.path().to_path_buf(),
            ..Default::default()
        }),
        Vec::new(),
    );
    let h = configured.handle();
    runtime
        .block_on(h.call("status", json!({})))
        .expect("status");
    let after = vm_rss_kib();
    assert!(!h.voice_loaded(), "an unused voice must not be built");

    let off_home = tempfile::tempdir().expect("tempdir");
    let status = "{\"id\":1,\"method\":\"status\"}\n";
    let off: Vec<u64> = (0..rss_runs)
        .map(|_| batch_peak_kib(off_home.path(), status))
        .collect();
    let on: Vec<u64> = (0..rss_runs)
        .map(|_| batch_peak_kib(on_home.path(), status))
        .collect();
    let probed: Vec<u64> = (0..rss_runs)
        .map(|_| {
            batch_peak_kib(
                on_home.path(),
                "{\"id\":1,\"method\":\"tts.status\"}\n{\"id\":2,\"method\":\"stt.status\"}\n",
            )
        })
        .collect();
    let spoken: Vec<u64> = (0..rss_runs)
        .map(|i| {
            batch_peak_kib(
                off_home.path(),
                &format!(
                    "{}\n",
                    json!({"id": 1, "method": "tts.convert", "params": {"text": reply(1000 + i)}})
                ),
            )
        })
        .collect();
    let (off, on, probed, spoken) = (median(off), median(on), median(probed), median(spoken));

    println!(
        "voice bench ({}): {} runs of tts.convert, 200-character reply, espeak-ng, cache off",
        if full { "full" } else { "smoke" },
        runs
    );
    println!(
        "  time to first audio (tts.convert): p50 {:.1} ms, p95 {:.1} ms, min {:.1} ms \
         ({} ms of audio)",
        percentile(&engine_ms, 50.0),
        percentile(&engine_ms, 95.0),
        engine_ms[0],
        audio_ms
    );
    println!(
        "  espeak-ng alone on the same text:  p50 {:.1} ms, p95 {:.1} ms",
        percentile(&alone_ms, 50.0),
        percentile(&alone_ms, 95.0)
    );
    let (one, long) = (percentile(&one_ms, 50.0), percentile(&long_ms, 50.0));
    println!(
        "  first audio, one sentence ({} chars): p50 {one:.1} ms, p95 {:.1} ms",
        sentence(10_000, 0).chars().count(),
        percentile(&one_ms, 95.0)
    );
    println!(
        "  first audio, {long_chars}-character reply in pieces: p50 {long:.1} ms, p95 {:.1} ms \
         (ratio {:.2}; target <= 1.5)",
        percentile(&long_ms, 95.0),
        long / one
    );
    println!(
        "  the same reply as one tts.convert (joined before playback): p50 {:.1} ms, p95 {:.1} ms",
        percentile(&joined_ms, 50.0),
        percentile(&joined_ms, 95.0)
    );
    println!(
        "  in-process RSS: +{} KiB for an engine with voice configured, after `status` \
         (voice built: {})",
        after.saturating_sub(before),
        h.voice_loaded()
    );
    println!(
        "  peak RSS over --batch (median of {rss_runs}): status, voice off {off} KiB; \
         status, voice on and configured {on} KiB ({:+} KiB); tts.status + stt.status {probed} \
         KiB ({:+} KiB); one tts.convert {spoken} KiB ({:+} KiB)",
        on as i64 - off as i64,
        probed as i64 - off as i64,
        spoken as i64 - off as i64
    );
}
