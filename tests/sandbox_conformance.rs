//! The sandbox conformance suite: every case in `tests/fixtures/wasm/cases.toml` runs on every
//! backend this build has (wasmi; wasmi and wasmtime with `--features edge`), and each must
//! give the expected outcome — so both must give the same one. Every case also stays within
//! its deadline plus `sandbox::DEADLINE_SLACK`, and within its peak memory bound (see
//! [`every_case_stays_within_its_peak_memory_bound`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openclaw_rs::sandbox::error::TRAP_CODES;
use openclaw_rs::sandbox::{
    self, BackendKind, Grants, HostEnv, HostServices, Limits, RunOutcome, Sandbox, SandboxError,
};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Cases {
    case: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    module: Option<String>,
    bytes_hex: Option<String>,
    #[serde(default)]
    input: Option<toml::Value>,
    #[serde(default)]
    allow: Vec<String>,
    fuel: Option<u64>,
    timeout_ms: Option<u64>,
    memory_mb: Option<u64>,
    max_output_bytes: Option<u64>,
    pin: Option<String>,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    output: Option<toml::Value>,
    fields: Option<toml::Table>,
    error: Option<String>,
    capability: Option<String>,
    contains: Option<String>,
    limit: Option<u64>,
    log: Option<String>,
    /// The whole result as the wire carries it (output and logs, or the error) is at most
    /// this many bytes.
    max_result_bytes: Option<usize>,
}

/// Peak resident memory a case may add beyond its linear memory limit: the engine (a
/// wasmtime engine starts per case in the peak test), the compile, the host's copies of
/// input and output. `docs/tools.md` documents it.
const PEAK_ALLOWANCE_KIB: u64 = 64 * 1024;

/// Stands in for the engine's memory store. The query "slow" takes 3 ms, as a real search
/// may, and gives up at the deadline as the engine's does.
struct FakeMemory;

impl HostServices for FakeMemory {
    fn memory_search(&self, params: &[u8], deadline: Instant) -> Result<Vec<u8>, String> {
        let params: Value = serde_json::from_slice(params).map_err(|e| e.to_string())?;
        if params["query"] == "slow" {
            let left = deadline.saturating_duration_since(Instant::now());
            std::thread::sleep(left.min(Duration::from_millis(3)));
        }
        Ok(
            serde_json::to_vec(&serde_json::json!({ "hits": [], "query": params["query"] }))
                .unwrap(),
        )
    }
}

const DEFAULT_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_MEMORY_MB: u64 = 16;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wasm")
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// A server on 127.0.0.1 for the http cases; returns its port.
fn start_server() -> u16 {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap().port()).unwrap();
            // /hang answers only after every case's deadline (the server ends with the test).
            let app = axum::Router::new()
                .route("/ping", axum::routing::get(|| async { "pong" }))
                .route(
                    "/hang",
                    axum::routing::get(|| async {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        "late"
                    }),
                );
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

fn workspace(root: &Path) -> PathBuf {
    let ws = root.join("workspace");
    std::fs::create_dir_all(ws.join("notes")).unwrap();
    std::fs::write(ws.join("notes/note.json"), r#"{"note":"hello"}"#).unwrap();
    std::fs::write(ws.join("notes/big.txt"), vec![b'x'; 512 * 1024]).unwrap();
    std::fs::write(root.join("outside.json"), r#"{"secret":"outside"}"#).unwrap();
    std::os::unix::fs::symlink(root.join("outside.json"), ws.join("escape")).unwrap();
    ws
}

fn run_case(
    sandbox: &Sandbox,
    backend: BackendKind,
    case: &Case,
    env: &HostEnv,
    port: u16,
) -> (Result<RunOutcome, SandboxError>, Duration) {
    let bytes = match (&case.module, &case.bytes_hex) {
        (Some(file), None) => std::fs::read(fixtures().join(file)).unwrap(),
        (None, Some(h)) => hex(h),
        _ => panic!("{}: give module or bytes_hex", case.name),
    };
    let input = case
        .input
        .clone()
        .unwrap_or(toml::Value::Table(Default::default()));
    let input = serde_json::to_string(&input)
        .unwrap()
        .replace("{port}", &port.to_string());
    let input: Value = serde_json::from_str(&input).unwrap();
    let allow: Vec<String> = case
        .allow
        .iter()
        .map(|a| a.replace("{port}", &port.to_string()))
        .collect();
    let grants = Grants::parse(&allow).unwrap();
    let mut limits = Limits {
        fuel: 50_000_000,
        memory_bytes: DEFAULT_MEMORY_MB * 1024 * 1024,
        table_elements: Limits::DEFAULT_TABLE_ELEMENTS,
        instances: 1,
        timeout_ms: DEFAULT_TIMEOUT_MS,
        max_output_bytes: 256 * 1024,
    };
    if let Some(fuel) = case.fuel {
        limits.fuel = fuel;
    }
    if let Some(ms) = case.timeout_ms {
        limits.timeout_ms = ms;
    }
    if let Some(mb) = case.memory_mb {
        limits.memory_bytes = mb * 1024 * 1024;
    }
    if let Some(max) = case.max_output_bytes {
        limits.max_output_bytes = max;
    }
    let started = Instant::now();
    let result = sandbox.call(
        backend,
        &bytes,
        case.pin.as_deref(),
        &input,
        &limits,
        &grants,
        env,
    );
    (result, started.elapsed())
}

fn check(case: &Case, backend: BackendKind, result: &Result<RunOutcome, SandboxError>) {
    let who = format!("{} on {}", case.name, backend.as_str());
    let expect = &case.expect;
    if let Some(max) = expect.max_result_bytes {
        let size = match result {
            Ok(outcome) => serde_json::to_vec(outcome).unwrap().len(),
            Err(error) => serde_json::to_vec(error).unwrap().len() + error.to_string().len(),
        };
        assert!(size <= max, "{who}: the result is {size} bytes, over {max}");
    }
    match (result, &expect.error) {
        (Ok(outcome), None) => {
            if let Some(output) = &expect.output {
                let want: Value = serde_json::to_value(output).unwrap();
                assert_eq!(outcome.output, want, "{who}");
            }
            if let Some(fields) = &expect.fields {
                for (key, value) in fields {
                    let want: Value = serde_json::to_value(value).unwrap();
                    assert_eq!(outcome.output[key], want, "{who}: field {key}");
                }
            }
            if let Some(line) = &expect.log {
                assert!(
                    outcome.logs.iter().any(|l| &l.message == line),
                    "{who}: logs {:?}",
                    outcome.logs
                );
            }
        }
        (Err(error), Some(kind)) => {
            assert_eq!(error.kind(), kind, "{who}: {error}");
            // A sentence for people and stable details, never an engine's internals.
            let text = error.to_string();
            for internal in ["Stored", "StoreId", "RawHandle", "wasm backtrace"] {
                assert!(!text.contains(internal), "{who}: internals in {text:?}");
            }
            assert!(
                text.len() <= sandbox::MAX_ERROR_TEXT_BYTES + 64,
                "{who}: {} bytes",
                text.len()
            );
            if let SandboxError::Trap { code } = error {
                assert!(
                    TRAP_CODES.iter().any(|(c, _)| c == code),
                    "{who}: unknown trap code {code}"
                );
            }
            if let Some(capability) = &expect.capability {
                assert_eq!(
                    error,
                    &SandboxError::CapabilityDenied {
                        capability: capability.clone()
                    },
                    "{who}"
                );
            }
            if let Some(want) = expect.limit {
                match error {
                    SandboxError::MemoryLimit { limit, .. } => assert_eq!(*limit, want, "{who}"),
                    other => panic!("{who}: expected a limit of {want}, got {other:?}"),
                }
            }
            if let Some(text) = &expect.contains {
                assert!(error.to_string().contains(text.as_str()), "{who}: {error}");
            }
        }
        (Ok(outcome), Some(kind)) => panic!("{who}: expected {kind}, got {:?}", outcome.output),
        (Err(error), None) => panic!("{who}: expected success, got {error:?}"),
    }
}

#[test]
fn every_case_gives_its_expected_outcome_on_every_backend() {
    let cases: Cases =
        toml::from_str(&std::fs::read_to_string(fixtures().join("cases.toml")).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let port = start_server();
    let workspace = workspace(tmp.path());
    let sandbox = Sandbox::new();
    let backends = sandbox::available_backends();
    assert_eq!(backends.len(), if cfg!(feature = "edge") { 2 } else { 1 });
    for case in &cases.case {
        for &backend in &backends {
            let env = HostEnv {
                workspace: workspace.clone(),
                kv_file: Some(tmp.path().join("kv").join(format!(
                    "{}-{}.json",
                    backend.as_str(),
                    case.name.len()
                ))),
                services: Some(Arc::new(FakeMemory)),
            };
            eprintln!("case: {} on {}", case.name, backend.as_str());
            let (result, elapsed) = run_case(&sandbox, backend, case, &env, port);
            check(case, backend, &result);
            if let Err(SandboxError::Timeout { timeout_ms }) = &result {
                // Within the documented slack, whatever the tool was doing; the benchmark
                // measures the real stop latency in a release build.
                let timeout = Duration::from_millis(*timeout_ms);
                assert!(
                    elapsed >= timeout,
                    "{} on {}: stopped at {elapsed:?}, before its deadline",
                    case.name,
                    backend.as_str()
                );
                let late = elapsed - timeout;
                assert!(
                    late <= sandbox::DEADLINE_SLACK,
                    "{} on {}: stopped {late:?} after the deadline",
                    case.name,
                    backend.as_str()
                );
            }
            // Every case, compile included; the benchmark measures the real stop latency
            // in a release build.
            let deadline = Duration::from_millis(case.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS));
            assert!(
                elapsed <= deadline + sandbox::DEADLINE_SLACK,
                "{} on {}: took {elapsed:?}, past its deadline of {deadline:?} plus {:?}",
                case.name,
                backend.as_str(),
                sandbox::DEADLINE_SLACK
            );
        }
    }
}

/// A `/proc/self/status` field in KiB.
fn status_kib(field: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

const PEAK_CHILD: &str = "OPENCLAW_CONFORMANCE_PEAK_CHILD";

/// Peak memory per case. The resident high-water mark (`VmHWM`) is process-wide, so the cases
/// run in a child process of their own (this test binary, running only
/// [`peak_memory_child`]) where nothing else runs; before each case the child resets the
/// mark (`5` to `/proc/self/clear_refs`) and starts a fresh `Sandbox`, so the figure is that
/// case's engine start, validation, compile and run. The store's own accounting would be
/// exact for linear memory but blind to the compile, which is the larger risk.
#[test]
fn every_case_stays_within_its_peak_memory_bound() {
    if std::fs::write("/proc/self/clear_refs", "5").is_err() {
        eprintln!("no /proc/self/clear_refs here: peak memory is not measured");
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "peak_memory_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PEAK_CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the child failed:\n{stdout}\n{stderr}"
    );
    let cases: Cases =
        toml::from_str(&std::fs::read_to_string(fixtures().join("cases.toml")).unwrap()).unwrap();
    let measured = stdout
        .lines()
        .filter(|l| l.contains(" KiB (bound "))
        .count();
    assert_eq!(
        measured,
        cases.case.len() * sandbox::available_backends().len(),
        "every case on every backend was measured:\n{stdout}"
    );
}

/// The child side of [`every_case_stays_within_its_peak_memory_bound`]; does nothing unless
/// started by it.
#[test]
fn peak_memory_child() {
    if std::env::var_os(PEAK_CHILD).is_none() {
        return;
    }
    let cases: Cases =
        toml::from_str(&std::fs::read_to_string(fixtures().join("cases.toml")).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let port = start_server();
    let workspace = workspace(tmp.path());
    for case in &cases.case {
        for backend in sandbox::available_backends() {
            let env = HostEnv {
                workspace: workspace.clone(),
                kv_file: Some(tmp.path().join("kv.json")),
                services: Some(Arc::new(FakeMemory)),
            };
            let sandbox = Sandbox::new();
            std::fs::write("/proc/self/clear_refs", "5").unwrap();
            let before = status_kib("VmRSS:").unwrap();
            let (result, _) = run_case(&sandbox, backend, case, &env, port);
            let peak = status_kib("VmHWM:").unwrap().saturating_sub(before);
            drop(sandbox);
            check(case, backend, &result);
            let bound = case.memory_mb.unwrap_or(DEFAULT_MEMORY_MB) * 1024 + PEAK_ALLOWANCE_KIB;
            println!(
                "peak {} KiB (bound {bound} KiB): {} on {}",
                peak,
                case.name,
                backend.as_str()
            );
            assert!(
                peak <= bound,
                "{} on {}: peak {peak} KiB over its bound of {bound} KiB",
                case.name,
                backend.as_str()
            );
        }
    }
}

#[test]
fn a_warm_cache_serves_the_second_prepare() {
    let sandbox = Sandbox::new();
    let bytes = std::fs::read(fixtures().join("echo.wat")).unwrap();
    for backend in sandbox::available_backends() {
        let first = sandbox.prepare(backend, &bytes, None).unwrap();
        let second = sandbox.prepare(backend, &bytes, None).unwrap();
        assert!(!first.cache_hit && second.cache_hit, "{}", backend.as_str());
        assert_eq!(first.wasm_sha256, second.wasm_sha256);
    }
    let stats = sandbox.stats();
    assert_eq!(stats.entries as usize, sandbox::available_backends().len());
    assert_eq!(stats.hits, stats.misses);
}

/// Fuel used by `module` on `input` on every backend of the build.
fn fuel_on_every_backend(module: &str, input: &Value) -> Vec<u64> {
    let sandbox = Sandbox::new();
    let bytes = std::fs::read(fixtures().join(module)).unwrap();
    let limits = Limits {
        fuel: 500_000_000,
        memory_bytes: 16 * 1024 * 1024,
        table_elements: 100,
        instances: 1,
        timeout_ms: 60_000,
        max_output_bytes: 1024,
    };
    sandbox::available_backends()
        .into_iter()
        .map(|backend| {
            let prepared = sandbox.prepare(backend, &bytes, None).unwrap();
            sandbox
                .run(
                    &prepared,
                    input,
                    &limits,
                    &Grants::default(),
                    &HostEnv::default(),
                )
                .unwrap()
                .fuel_used
        })
        .collect()
}

fn assert_comparable(what: &str, used: &[u64]) {
    for other in &used[1..] {
        let ratio = *other as f64 / used[0] as f64;
        assert!(
            (0.8..1.25).contains(&ratio),
            "{what}: fuel differs by backend: {used:?}"
        );
    }
}

#[test]
fn fuel_means_comparable_work_on_every_backend() {
    let used = fuel_on_every_backend("sha256.wat", &Value::Null);
    // About one unit per operator: SHA-256 of 1 MiB is tens of millions of operators.
    assert!(used[0] > 10_000_000 && used[0] < 200_000_000, "{used:?}");
    assert_comparable("sha256", &used);
}

#[test]
fn bulk_memory_is_charged_per_byte_on_every_backend() {
    // A handful of operators around megabytes of bulk work: the bytes are the cost.
    let mib = 1024 * 1024;
    for (module, input, bytes) in [
        ("bulk_fill.wat", 4, 4 * 8 * mib),
        ("bulk_copy.wat", 4, 4 * 2 * 4 * mib),
        ("bulk_grow.wat", 0, 127 * 64 * 1024),
    ] {
        let used = fuel_on_every_backend(module, &serde_json::json!(input));
        assert!(
            used[0] >= bytes && used[0] < bytes + bytes / 10,
            "{module}: {used:?} for {bytes} bytes"
        );
        assert_comparable(module, &used);
    }
}

#[test]
fn host_calls_are_charged_per_byte_on_every_backend() {
    // host_fs_loop.wat reads a 512 KiB file over and over; with 20 M units it gets through
    // about 38 reads on any backend, then runs out.
    let tmp = tempfile::tempdir().unwrap();
    let workspace = workspace(tmp.path());
    let sandbox = Sandbox::new();
    let bytes = std::fs::read(fixtures().join("host_fs_loop.wat")).unwrap();
    let limits = Limits {
        fuel: 20_000_000,
        memory_bytes: 16 * 1024 * 1024,
        table_elements: 100,
        instances: 1,
        timeout_ms: 60_000,
        max_output_bytes: 1024,
    };
    let env = HostEnv {
        workspace,
        kv_file: None,
        services: None,
    };
    for backend in sandbox::available_backends() {
        let prepared = sandbox.prepare(backend, &bytes, None).unwrap();
        let started = Instant::now();
        let err = sandbox
            .run(
                &prepared,
                &Value::Null,
                &limits,
                &Grants::parse(&["fs".into()]).unwrap(),
                &env,
            )
            .unwrap_err();
        assert_eq!(
            err,
            SandboxError::OutOfFuel { fuel: 20_000_000 },
            "{}",
            backend.as_str()
        );
        // 38 reads of 512 KiB take milliseconds; uncharged, the loop would run for minutes.
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}

#[test]
fn docs_tools_md_shows_the_tested_example_verbatim() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/tools.md"))
        .unwrap();
    let example = std::fs::read_to_string(fixtures().join("doc_example.wat")).unwrap();
    assert!(
        doc.contains(example.trim_end()),
        "docs/tools.md must embed tests/fixtures/wasm/doc_example.wat as it is"
    );
}

#[test]
fn concurrent_runaways_each_stop_at_their_own_deadline() {
    let sandbox = Arc::new(Sandbox::new());
    let looping = std::fs::read(fixtures().join("loop.wat")).unwrap();
    let echo = std::fs::read(fixtures().join("echo.wat")).unwrap();
    for backend in sandbox::available_backends() {
        let mut threads = Vec::new();
        for (i, timeout_ms) in [150u64, 300, 450].into_iter().enumerate() {
            let (sandbox, looping) = (sandbox.clone(), looping.clone());
            threads.push(std::thread::spawn(move || {
                let limits = Limits {
                    fuel: 0,
                    memory_bytes: 1 << 20,
                    table_elements: 10,
                    instances: 1,
                    timeout_ms,
                    max_output_bytes: 1024,
                };
                let prepared = sandbox.prepare(backend, &looping, None).unwrap();
                let started = Instant::now();
                let err = sandbox
                    .run(
                        &prepared,
                        &Value::Null,
                        &limits,
                        &Grants::default(),
                        &HostEnv::default(),
                    )
                    .unwrap_err();
                (i, err, started.elapsed())
            }));
        }
        // A well-behaved call in the middle of them is not disturbed.
        let prepared = sandbox.prepare(backend, &echo, None).unwrap();
        let limits = Limits {
            fuel: 1_000_000,
            memory_bytes: 1 << 20,
            table_elements: 10,
            instances: 1,
            timeout_ms: 5_000,
            max_output_bytes: 1024,
        };
        let ok = sandbox
            .run(
                &prepared,
                &serde_json::json!({"a": 1}),
                &limits,
                &Grants::default(),
                &HostEnv::default(),
            )
            .unwrap();
        assert_eq!(ok.output["a"], 1);
        for t in threads {
            let (i, err, elapsed) = t.join().unwrap();
            let timeout = Duration::from_millis([150, 300, 450][i]);
            assert!(matches!(err, SandboxError::Timeout { .. }), "{err}");
            assert!(
                elapsed >= timeout,
                "{} stopped early: {elapsed:?}",
                backend.as_str()
            );
            assert!(
                elapsed < timeout + Duration::from_millis(500),
                "{} stopped late: {elapsed:?}",
                backend.as_str()
            );
        }
    }
}
