//! The sandbox, per backend, side by side: per-call overhead of a small tool with a warm
//! module cache (prepare + instantiate + run + JSON in and out), cold compile time, the
//! compute-heavy fixture (SHA-256 over 1 MiB), and how late a runaway is stopped after its
//! deadline; with wasmtime (`--features edge`), the wasmi/wasmtime ratios. Also the resident
//! memory the sandbox adds to an idle process (wasmi engine started, one tool run).
//!
//! Also the compile cost of the largest modules the static limits admit (time and peak RSS
//! per backend; `compile-limits` as an argument runs only that part).
//!
//! Run: `cargo bench --bench sandbox` (core) and `cargo bench --bench sandbox --features edge`.
//! Under `cargo test` it runs a small smoke pass (the limit modules at 1/16 of their size).

use std::path::Path;
use std::time::{Duration, Instant};

use openclaw_rs::sandbox::static_limits::{BODY_BYTES, CODE_BYTES, FUNCTIONS};
use openclaw_rs::sandbox::{self, BackendKind, Grants, HostEnv, Limits, Sandbox, SandboxError};
use serde_json::json;

fn fixture(name: &str) -> Vec<u8> {
    let text = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/wasm")
            .join(name),
    )
    .expect("fixture");
    sandbox::assemble(&text).expect("assemble")
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn limits(fuel: u64, timeout_ms: u64) -> Limits {
    Limits {
        fuel,
        memory_bytes: 32 * 1024 * 1024,
        table_elements: Limits::DEFAULT_TABLE_ELEMENTS,
        instances: 1,
        timeout_ms,
        max_output_bytes: 256 * 1024,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Figures {
    backend: BackendKind,
    cold_compile_echo: Duration,
    cold_compile_sha: Duration,
    warm_p50: Duration,
    warm_mean: Duration,
    compute: Duration,
    fuel_sha: u64,
    stop_late_p50: Duration,
    stop_late_max: Duration,
}

fn measure(backend: BackendKind, full: bool) -> Figures {
    let echo = fixture("echo.wat");
    let sha = fixture("sha256.wat");
    let looping = fixture("loop.wat");
    let env = HostEnv::default();
    let grants = Grants::default();
    let compiles = if full { 20 } else { 2 };

    // Cold: a fresh sandbox (empty cache, engine already started) per compile.
    let time_compile = |bytes: &[u8]| {
        let mut total = Duration::ZERO;
        for _ in 0..compiles {
            let sandbox = Sandbox::new();
            sandbox.backend(backend).expect("backend");
            let started = Instant::now();
            let prepared = sandbox.prepare(backend, bytes, None).expect("compile");
            total += started.elapsed();
            assert!(!prepared.cache_hit);
        }
        total / compiles
    };
    let cold_compile_echo = time_compile(&echo);
    let cold_compile_sha = time_compile(&sha);

    let sandbox = Sandbox::new();
    let input = json!({ "query": "hello", "limit": 3, "tags": ["a", "b"] });
    let small = limits(1_000_000, 5_000);
    let calls = if full { 20_000 } else { 50 };
    for _ in 0..calls / 10 + 1 {
        let prepared = sandbox.prepare(backend, &echo, None).expect("prepare");
        sandbox
            .run(&prepared, &input, &small, &grants, &env)
            .expect("warm-up");
    }
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        let prepared = sandbox.prepare(backend, &echo, None).expect("prepare");
        let out = sandbox
            .run(&prepared, &input, &small, &grants, &env)
            .expect("run");
        samples.push(started.elapsed());
        assert!(prepared.cache_hit && out.output == input);
    }
    let warm_mean = samples.iter().sum::<Duration>() / calls as u32;
    samples.sort();
    let warm_p50 = percentile(&samples, 0.5);

    let runs = if full { 5 } else { 1 };
    let prepared = sandbox.prepare(backend, &sha, None).expect("prepare sha");
    let mut compute = Duration::MAX;
    let mut fuel_sha = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let out = sandbox
            .run(
                &prepared,
                &json!({}),
                &limits(500_000_000, 120_000),
                &grants,
                &env,
            )
            .expect("sha256");
        compute = compute.min(started.elapsed());
        fuel_sha = out.fuel_used;
    }

    let deadline_ms = 100;
    let prepared = sandbox
        .prepare(backend, &looping, None)
        .expect("prepare loop");
    let mut late = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let err = sandbox
            .run(
                &prepared,
                &json!({}),
                &limits(0, deadline_ms),
                &grants,
                &env,
            )
            .expect_err("the loop never ends");
        assert!(matches!(err, SandboxError::Timeout { .. }), "{err}");
        late.push(
            started
                .elapsed()
                .saturating_sub(Duration::from_millis(deadline_ms)),
        );
    }
    late.sort();
    Figures {
        backend,
        cold_compile_echo,
        cold_compile_sha,
        warm_p50,
        warm_mean,
        compute,
        fuel_sha,
        stop_late_p50: percentile(&late, 0.5),
        stop_late_max: *late.last().expect("samples"),
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The largest modules the static limits admit, in the two shapes that cost compilers
/// most: the most functions, each small (what made wasmtime take 10 s and 650 MB before
/// the limits), and the most code, in bodies of the largest size. `scale` divides them for
/// the smoke pass.
fn limit_modules(scale: usize) -> Vec<(&'static str, Vec<u8>)> {
    let head = r#"(memory (export "memory") 1) (data (i32.const 0) "1")
      (func (export "alloc") (param i32) (result i32) (i32.const 1024))
      (func (export "run") (param i32 i32) (result i64) (i64.const 1))"#;
    let small = "(func (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))";
    let functions = FUNCTIONS.max as usize / scale - 2;
    let many = format!("(module {head} {})", small.repeat(functions));
    // Each body: i32 arithmetic over four locals, 9 bytes per line, up to the body limit.
    let line = "(local.set 1 (i32.add (local.get 0) (i32.mul (local.get 2) (local.get 3))))";
    let per_body = (BODY_BYTES.max as usize - 64) / 11;
    let body = format!(
        "(func (param i32) (local i32 i32 i32) {})",
        line.repeat(per_body)
    );
    let bodies = CODE_BYTES.max as usize / BODY_BYTES.max as usize / scale.min(4) - 1;
    let big = format!("(module {head} {})", body.repeat(bodies));
    [("most functions", many), ("most code", big)]
        .into_iter()
        .map(|(name, wat)| (name, sandbox::assemble(wat.as_bytes()).expect("assemble")))
        .collect()
}

/// Cold compile (validation included) of each limit module on each backend: wall time
/// and the peak RSS it added (`VmHWM` after, reset before with `/proc/self/clear_refs`, over
/// `VmRSS` before). Each measure runs in a fresh process (this program, with
/// `OPENCLAW_BENCH_ONE=module/backend`), so memory an earlier compile freed but the
/// allocator kept cannot hide part of the next one's peak.
fn compile_limits(full: bool) {
    let scale = if full { 1 } else { 16 };
    let one = std::env::var("OPENCLAW_BENCH_ONE").ok();
    if one.is_none() {
        println!("\ncompile of the largest modules the static limits admit (1/{scale} in smoke):");
    }
    for (name, wasm) in limit_modules(scale) {
        for backend in sandbox::available_backends() {
            let which = format!("{name}/{}", backend.as_str());
            match &one {
                Some(one) if *one != which => continue,
                Some(_) => {}
                None => {
                    let out = std::process::Command::new(std::env::current_exe().expect("exe"))
                        .args(std::env::args().skip(1))
                        .arg("compile-limits")
                        .env("OPENCLAW_BENCH_ONE", &which)
                        .output()
                        .expect("child");
                    assert!(out.status.success(), "{which}: {out:?}");
                    print!("{}", String::from_utf8_lossy(&out.stdout));
                    continue;
                }
            }
            let sandbox = Sandbox::new();
            sandbox.backend(backend).expect("backend");
            let _ = std::fs::write("/proc/self/clear_refs", "5");
            let before = status_kib("VmRSS:");
            let started = Instant::now();
            let prepared = sandbox.prepare(backend, &wasm, None).expect("compile");
            let took = started.elapsed();
            let peak = status_kib("VmHWM:").saturating_sub(before);
            let out = sandbox
                .run(
                    &prepared,
                    &json!({}),
                    &limits(1_000_000, 10_000),
                    &Grants::default(),
                    &HostEnv::default(),
                )
                .expect("the limit module runs");
            assert_eq!(out.output, json!(1));
            println!(
                "  {name:<14} {:>9} bytes  {:<8} compile {:>9.1} ms  peak RSS +{:>7} KiB",
                wasm.len(),
                backend.as_str(),
                ms(took),
                peak
            );
        }
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    if std::env::args().any(|a| a == "compile-limits") {
        compile_limits(full);
        return;
    }
    // Assembled first, so the text parser's memory is not counted as the sandbox's.
    let echo = fixture("echo.wat");
    let before = rss_kib();
    {
        // Idle cost: the wasmi engine started and one small tool run, then nothing running.
        let sandbox = Sandbox::new();
        let prepared = sandbox
            .prepare(BackendKind::Wasmi, &echo, None)
            .expect("prepare");
        sandbox
            .run(
                &prepared,
                &json!({ "a": 1 }),
                &limits(1_000_000, 1_000),
                &Grants::default(),
                &HostEnv::default(),
            )
            .expect("run");
        let idle = rss_kib();
        println!(
            "idle RSS added by the sandbox (wasmi engine + one cached tool): {} KiB ({} -> {} KiB)",
            idle.saturating_sub(before),
            before,
            idle
        );
    }
    let figures: Vec<Figures> = sandbox::available_backends()
        .into_iter()
        .map(|b| measure(b, full))
        .collect();
    println!(
        "\n{:<9} {:>14} {:>14} {:>12} {:>12} {:>14} {:>12} {:>14} {:>14}",
        "backend",
        "compile echo",
        "compile sha",
        "warm p50",
        "warm mean",
        "sha256 1 MiB",
        "fuel sha",
        "stop late p50",
        "stop late max"
    );
    for f in &figures {
        println!(
            "{:<9} {:>11.0} µs {:>11.0} µs {:>9.1} µs {:>9.1} µs {:>11.1} ms {:>12} {:>11.2} ms {:>11.2} ms",
            f.backend.as_str(),
            us(f.cold_compile_echo),
            us(f.cold_compile_sha),
            us(f.warm_p50),
            us(f.warm_mean),
            ms(f.compute),
            f.fuel_sha,
            ms(f.stop_late_p50),
            ms(f.stop_late_max),
        );
    }
    if let [wasmi, wasmtime] = figures.as_slice() {
        println!(
            "\nratios wasmi/wasmtime: warm call {:.2}x, sha256 {:.1}x, cold compile (sha) {:.2}x; \
             fuel wasmtime/wasmi {:.3}",
            us(wasmi.warm_p50) / us(wasmtime.warm_p50),
            ms(wasmi.compute) / ms(wasmtime.compute),
            us(wasmi.cold_compile_sha) / us(wasmtime.cold_compile_sha),
            wasmtime.fuel_sha as f64 / wasmi.fuel_sha as f64,
        );
    }
    if sandbox::available_backends().contains(&BackendKind::Wasmtime) {
        disk_cache(full);
    }
    compile_limits(full);
}

/// wasmtime with `sandbox.disk_cache`: a fresh engine per prepare (as a new process has),
/// compiling into an empty cache dir (cold) against loading what the first one wrote (warm).
fn disk_cache(full: bool) {
    let rounds = if full { 20 } else { 2 };
    let mut lines = Vec::new();
    for name in ["echo.wat", "sha256.wat"] {
        let bytes = fixture(name);
        let (mut cold, mut warm) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..rounds {
            let tmp = tempfile::tempdir().expect("tempdir");
            let dir = tmp.path().join("cache").join("wasmtime");
            for pass in 0..2 {
                let sandbox = Sandbox::with_disk_cache(Some(dir.clone()));
                sandbox.backend(BackendKind::Wasmtime).expect("backend");
                let started = Instant::now();
                sandbox
                    .prepare(BackendKind::Wasmtime, &bytes, None)
                    .expect("prepare");
                let took = started.elapsed();
                let disk = sandbox.stats().disk.expect("disk stats");
                if pass == 0 {
                    assert_eq!(disk.writes, 1);
                    cold += took;
                } else {
                    assert_eq!(disk.hits, 1, "loaded from disk");
                    warm += took;
                }
            }
        }
        let (cold, warm) = (cold / rounds, warm / rounds);
        lines.push(format!(
            "  {name:<11} cold (compile + write) {:>8.0} µs, warm (load) {:>7.0} µs: {:.1}x",
            us(cold),
            us(warm),
            us(cold) / us(warm)
        ));
    }
    println!("\nwasmtime disk cache, fresh engine per prepare ({rounds} rounds):");
    for line in lines {
        println!("{line}");
    }
}
