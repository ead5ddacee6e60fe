//! The WebAssembly tool sandbox.
//!
//! A tool is a module with a small ABI (see `docs/tools.md`): it exports `memory`, an
//! allocator `alloc(len) -> ptr` and `run(ptr, len) -> (out_ptr << 32 | out_len)`; JSON goes
//! in and comes out through linear memory. Host functions live in the import module
//! `openclaw`; those beyond `log`, `now_ms` and `random` need a capability that the tool
//! requested and the policy allows (see [`Grants`]).
//!
//! Two backends implement [`SandboxBackend`]: wasmi (an interpreter, every build) and
//! wasmtime (Cranelift JIT, `--features edge`). The same module gives the same outcome on
//! both; `tests/sandbox_conformance.rs` holds them to it. Every run is bounded by fuel,
//! memory, table size, instance count, stack depth, a wall-clock deadline and an output cap.

#[cfg(feature = "edge")]
pub mod disk_cache;
pub mod error;
mod fs;
mod grants;
mod grow_shim;
mod host;
mod http;
mod kv;
pub mod manifest;
pub mod safety;
pub mod static_limits;
mod validation;
mod wasmi_backend;
#[cfg(feature = "edge")]
mod wasmtime_backend;

use std::any::Any;
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use lru::LruCache;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::config::SandboxBackend as BackendKind;
pub use error::SandboxError;
pub use grants::{Capability, Grants};
pub use host::{HostServices, ToolLog};
pub use http::{HostRule, HttpPolicy, embedded_v4, is_metadata, non_public};
use validation::bounded;
pub use validation::{assemble, imported_capabilities, validate};

/// Host functions a module may import from `openclaw`, with the capability each needs.
pub const HOST_FUNCTIONS: &[(&str, Option<Capability>)] = &[
    ("log", None),
    ("now_ms", None),
    ("random", None),
    ("result_read", None),
    ("memory_search", Some(Capability::Memory)),
    ("kv_get", Some(Capability::Kv)),
    ("kv_set", Some(Capability::Kv)),
    ("fs_read", Some(Capability::Fs)),
    ("http_fetch", Some(Capability::Http)),
];

/// Modules this large are refused before any parsing.
pub const MAX_MODULE_BYTES: usize = 16 * 1024 * 1024;
/// How long after its deadline a run may end with `Timeout`, on either backend, whatever
/// the tool was doing (computing, or in any host call): documented in `docs/tools.md` and
/// asserted per case by the conformance suite. Generous for a debug build on a busy
/// machine; in a release build a runaway stops within a few ms.
pub const DEADLINE_SLACK: Duration = Duration::from_millis(500);
/// Longest text any field of an error carries (a reason, a trap code): an error quoting a
/// tool's 256 KiB argument is cut, like a log line.
pub const MAX_ERROR_TEXT_BYTES: usize = 2048;
/// Compiled modules kept, both backends' together; the least recently used goes first.
const CACHE_ENTRIES: NonZeroUsize = NonZeroUsize::new(64).unwrap();

/// The bounds of one run. `fuel` is in calibrated units (about one WebAssembly operator
/// each, the same on both backends; see `docs/tools.md`); 0 means unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    pub fuel: u64,
    pub memory_bytes: u64,
    pub table_elements: u64,
    pub instances: u32,
    pub timeout_ms: u64,
    pub max_output_bytes: u64,
}

impl Limits {
    pub const DEFAULT_TABLE_ELEMENTS: u64 = 10_000;

    pub fn from_config(config: &crate::config::SandboxConfig) -> Self {
        Limits {
            fuel: config.fuel,
            memory_bytes: u64::from(config.memory_mb) * 1024 * 1024,
            table_elements: Self::DEFAULT_TABLE_ELEMENTS,
            instances: 1,
            timeout_ms: config.timeout_ms.max(1),
            max_output_bytes: u64::from(config.max_output_kb) * 1024,
        }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// Where a run's host functions reach: the workspace for `fs_read`, the key-value file for
/// `kv_*`, the engine for `memory_search`.
#[derive(Clone, Default)]
pub struct HostEnv {
    pub workspace: PathBuf,
    /// The tool's own key-value file; `kv_*` fail when there is none.
    pub kv_file: Option<PathBuf>,
    pub services: Option<Arc<dyn HostServices>>,
}

/// A compiled module, type-erased so one cache serves every backend.
#[derive(Clone)]
pub struct CompiledModule {
    inner: Arc<dyn Any + Send + Sync>,
}

impl CompiledModule {
    pub fn new<T: Any + Send + Sync>(module: T) -> Self {
        Self {
            inner: Arc::new(module),
        }
    }

    pub fn downcast<T: Any>(&self) -> Option<&T> {
        self.inner.downcast_ref::<T>()
    }
}

/// A module's output bytes as the JSON value a run returns: at most `max_output_bytes`, and
/// one JSON document; anything else is [`SandboxError::BadOutput`].
pub fn decode_output(
    output: &[u8],
    max_output_bytes: u64,
) -> Result<serde_json::Value, SandboxError> {
    if output.len() as u64 > max_output_bytes {
        return Err(SandboxError::BadOutput {
            reason: format!(
                "the output is {} bytes; the cap is {max_output_bytes} (sandbox.max_output_kb)",
                output.len(),
            ),
        });
    }
    serde_json::from_slice(output).map_err(|e| SandboxError::BadOutput {
        reason: format!("the output is not JSON: {e}"),
    })
}

/// What a backend returns from a finished run, before the output is checked.
pub struct RawRun {
    pub output: Vec<u8>,
    /// Calibrated units (see [`Limits`]).
    pub fuel_used: u64,
    pub logs: Vec<ToolLog>,
}

/// One WebAssembly engine behind the sandbox.
pub trait SandboxBackend: Send + Sync {
    fn kind(&self) -> BackendKind;
    /// Compile a module that has passed [`validate`].
    fn compile(&self, wasm: &[u8]) -> Result<CompiledModule, SandboxError>;
    /// Instantiate, copy `input` in, call `run`, copy the output out; within `limits`.
    fn run(
        &self,
        module: &CompiledModule,
        input: &[u8],
        limits: &Limits,
        state: host::HostState,
    ) -> Result<RawRun, SandboxError>;
}

/// A module ready to run on one backend.
#[derive(Clone)]
pub struct Prepared {
    pub backend: BackendKind,
    /// sha256 of the module's bytes as given (the `.wat` text for a `.wat` file).
    pub source_sha256: String,
    /// sha256 of the binary that runs; the cache key.
    pub wasm_sha256: String,
    pub cache_hit: bool,
    module: CompiledModule,
}

/// What a successful run returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunOutcome {
    pub output: serde_json::Value,
    pub backend: BackendKind,
    pub fuel_used: u64,
    pub duration_us: u64,
    pub cache_hit: bool,
    pub module_sha256: String,
    pub logs: Vec<ToolLog>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CacheStats {
    pub entries: u64,
    pub hits: u64,
    pub misses: u64,
    pub compiles: u64,
    pub runs: u64,
    pub failures: u64,
    /// wasmtime's compiled code on disk (`sandbox.disk_cache`, edge builds); absent when off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskCacheStats>,
}

/// The on-disk code cache: what is there and what it saved since the engine started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiskCacheStats {
    pub dir: String,
    /// `.cwasm` files in `dir`, from every process and engine configuration.
    pub files: u64,
    pub bytes: u64,
    /// Compiles saved: modules loaded from disk.
    pub hits: u64,
    /// Modules compiled because no usable file was there.
    pub misses: u64,
    /// Files not loaded because of their owner, mode, type or links (then compiled).
    pub refused: u64,
    /// Truncated, damaged or foreign files (then compiled and replaced).
    pub invalid: u64,
    pub writes: u64,
}

type CacheKey = (&'static str, String);
type Cache = Arc<Mutex<LruCache<CacheKey, CompiledModule>>>;

/// A validation and compile in progress, shared by every prepare of the same module: its
/// result once done. A compile that outlives its caller's deadline finishes anyway and
/// fills the cache, so the next call reuses it.
type InFlight = Arc<(Mutex<Option<Result<CompiledModule, SandboxError>>>, Condvar)>;

/// Locks a map that stays whole even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// One module's validation and compile, on the caller's thread or a helper.
struct CompileJob {
    backend: Arc<dyn SandboxBackend>,
    wasm: Vec<u8>,
    key: CacheKey,
    cache: Cache,
    compiling: Arc<Mutex<HashMap<CacheKey, InFlight>>>,
    compiles: Arc<AtomicU64>,
    slot: InFlight,
}

impl CompileJob {
    fn run(self) {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            validate(&self.wasm)?;
            self.compiles.fetch_add(1, Ordering::Relaxed);
            self.backend.compile(&self.wasm)
        }))
        .unwrap_or_else(|_| Err(SandboxError::host("the sandbox's compiler panicked")))
        .map_err(bounded);
        if let Ok(module) = &result {
            lock(&self.cache).put(self.key.clone(), module.clone());
        }
        // Cached first, then no longer in flight: a prepare always finds one or the other.
        lock(&self.compiling).remove(&self.key);
        let (result_slot, done) = &*self.slot;
        *lock(result_slot) = Some(result);
        done.notify_all();
    }
}

/// Where wasmtime's compiled code is kept between runs (`sandbox.disk_cache`).
pub fn wasmtime_cache_dir(state_dir: &std::path::Path) -> std::path::PathBuf {
    state_dir.join("cache").join("wasmtime")
}

/// The sandbox service: backends, the compiled-module cache and counters.
pub struct Sandbox {
    wasmi: OnceLock<Arc<wasmi_backend::WasmiBackend>>,
    #[cfg(feature = "edge")]
    wasmtime: OnceLock<Result<Arc<wasmtime_backend::WasmtimeBackend>, String>>,
    cache: Cache,
    compiling: Arc<Mutex<HashMap<CacheKey, InFlight>>>,
    /// Modules validated and handed to a backend's compile (a load from disk included).
    compiles: Arc<AtomicU64>,
    #[cfg(feature = "edge")]
    disk: Option<Arc<disk_cache::DiskCache>>,
    hits: AtomicU64,
    misses: AtomicU64,
    runs: AtomicU64,
    failures: AtomicU64,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

/// The backends this build has.
pub fn available_backends() -> Vec<BackendKind> {
    let mut out = vec![BackendKind::Wasmi];
    if cfg!(feature = "edge") {
        out.push(BackendKind::Wasmtime);
    }
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    hex::encode(digest)
}

impl Sandbox {
    pub fn new() -> Self {
        Self::with_disk_cache(None)
    }

    /// With wasmtime's compiled code also kept in `dir` across processes (normally
    /// `<state>/cache/wasmtime`). wasmi interprets and has nothing to keep, so on a core
    /// build this is [`new`](Self::new).
    pub fn with_disk_cache(dir: Option<PathBuf>) -> Self {
        #[cfg(not(feature = "edge"))]
        let _ = dir;
        Self {
            wasmi: OnceLock::new(),
            #[cfg(feature = "edge")]
            wasmtime: OnceLock::new(),
            cache: Arc::new(Mutex::new(LruCache::new(CACHE_ENTRIES))),
            compiling: Arc::new(Mutex::new(HashMap::new())),
            compiles: Arc::new(AtomicU64::new(0)),
            #[cfg(feature = "edge")]
            disk: dir.map(|dir| Arc::new(disk_cache::DiskCache::new(dir))),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            runs: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// A backend of this build; engines are created on first use.
    pub fn backend(&self, kind: BackendKind) -> Result<&dyn SandboxBackend, SandboxError> {
        match kind {
            BackendKind::Wasmi => Ok(self
                .wasmi
                .get_or_init(|| Arc::new(wasmi_backend::WasmiBackend::new()))
                .as_ref()),
            #[cfg(feature = "edge")]
            BackendKind::Wasmtime => self
                .wasmtime
                .get_or_init(|| {
                    wasmtime_backend::WasmtimeBackend::new(self.disk.clone()).map(Arc::new)
                })
                .as_ref()
                .map(|b| b.as_ref() as &dyn SandboxBackend)
                .map_err(|e| SandboxError::host(format!("wasmtime could not start: {e}"))),
            #[cfg(not(feature = "edge"))]
            BackendKind::Wasmtime => Err(SandboxError::host(
                "wasmtime is not in this build (core); use wasmi or the edge build",
            )),
        }
    }

    /// A backend of this build, shared with a compile on a helper thread.
    fn shared_backend(&self, kind: BackendKind) -> Result<Arc<dyn SandboxBackend>, SandboxError> {
        self.backend(kind)?;
        match kind {
            BackendKind::Wasmi => match self.wasmi.get() {
                Some(b) => Ok(b.clone() as Arc<dyn SandboxBackend>),
                None => Err(SandboxError::host("wasmi did not start")),
            },
            #[cfg(feature = "edge")]
            BackendKind::Wasmtime => match self.wasmtime.get() {
                Some(Ok(b)) => Ok(b.clone() as Arc<dyn SandboxBackend>),
                _ => Err(SandboxError::host("wasmtime did not start")),
            },
            #[cfg(not(feature = "edge"))]
            BackendKind::Wasmtime => Err(SandboxError::host("wasmtime is not in this build")),
        }
    }

    /// Check the pin, assemble text, validate and compile, or take the module from the
    /// cache. `bytes` may be a binary module or WebAssembly text. Waits for the compile
    /// however long it takes (the static limits bound it); [`call`](Self::call) does not.
    pub fn prepare(
        &self,
        kind: BackendKind,
        bytes: &[u8],
        pin: Option<&str>,
    ) -> Result<Prepared, SandboxError> {
        self.prepare_within(kind, bytes, pin, None).map_err(bounded)
    }

    /// Prepare and run with one deadline, `limits.timeout_ms` from now: validating and
    /// compiling count against it. A compile still going at the deadline ends the call with
    /// `Timeout` and goes on in the background; its module is cached for the next call.
    #[allow(clippy::too_many_arguments)]
    pub fn call(
        &self,
        kind: BackendKind,
        bytes: &[u8],
        pin: Option<&str>,
        input: &serde_json::Value,
        limits: &Limits,
        grants: &Grants,
        env: &HostEnv,
    ) -> Result<RunOutcome, SandboxError> {
        let started = Instant::now();
        let deadline = (started + limits.timeout(), limits.timeout_ms);
        let prepared = self
            .prepare_within(kind, bytes, pin, Some(deadline))
            .map_err(bounded)?;
        self.run_from(&prepared, input, limits, grants, env, started)
    }

    fn prepare_within(
        &self,
        kind: BackendKind,
        bytes: &[u8],
        pin: Option<&str>,
        deadline: Option<(Instant, u64)>,
    ) -> Result<Prepared, SandboxError> {
        let source_sha256 = sha256_hex(bytes);
        if let Some(pin) = pin
            && !pin.trim().eq_ignore_ascii_case(&source_sha256)
        {
            return Err(SandboxError::HashMismatch {
                expected: pin.trim().to_ascii_lowercase(),
                actual: source_sha256,
            });
        }
        let wasm = assemble(bytes)?;
        let wasm_sha256 = if wasm == bytes {
            source_sha256.clone()
        } else {
            sha256_hex(&wasm)
        };
        let key = (kind.as_str(), wasm_sha256.clone());
        if let Some(module) = self.lock_cache().get(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Prepared {
                backend: kind,
                source_sha256,
                wasm_sha256,
                cache_hit: true,
                module: module.clone(),
            });
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let backend = self.shared_backend(kind)?;
        let (slot, job) = {
            let mut compiling = lock(&self.compiling);
            if let Some(slot) = compiling.get(&key) {
                (slot.clone(), None)
            } else if let Some(module) = lock(&self.cache).get(&key) {
                // Compiled and cached since the look-up above.
                return Ok(Prepared {
                    backend: kind,
                    source_sha256,
                    wasm_sha256,
                    cache_hit: true,
                    module: module.clone(),
                });
            } else {
                let slot: InFlight = Arc::new((Mutex::new(None), Condvar::new()));
                compiling.insert(key.clone(), slot.clone());
                let job = CompileJob {
                    backend,
                    wasm,
                    key: key.clone(),
                    cache: self.cache.clone(),
                    compiling: self.compiling.clone(),
                    compiles: self.compiles.clone(),
                    slot: slot.clone(),
                };
                (slot, Some(job))
            }
        };
        if let Some(job) = job {
            if deadline.is_none() {
                job.run();
            } else if let Err(e) = std::thread::Builder::new()
                .name("sandbox-compile".into())
                .spawn(move || job.run())
            {
                lock(&self.compiling).remove(&key);
                return Err(SandboxError::host(format!(
                    "could not start a compile thread: {e}"
                )));
            }
        }
        let (result, done) = &*slot;
        let mut result = lock(result);
        loop {
            if let Some(result) = result.as_ref() {
                return result.clone().map(|module| Prepared {
                    backend: kind,
                    source_sha256,
                    wasm_sha256,
                    cache_hit: false,
                    module,
                });
            }
            result = match deadline {
                None => done.wait(result).unwrap_or_else(|e| e.into_inner()),
                Some((at, timeout_ms)) => {
                    let now = Instant::now();
                    if now >= at {
                        return Err(SandboxError::Timeout { timeout_ms });
                    }
                    done.wait_timeout(result, at - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }

    /// Run a prepared module on `input`. Blocking: call it off the async threads.
    pub fn run(
        &self,
        prepared: &Prepared,
        input: &serde_json::Value,
        limits: &Limits,
        grants: &Grants,
        env: &HostEnv,
    ) -> Result<RunOutcome, SandboxError> {
        self.run_from(prepared, input, limits, grants, env, Instant::now())
    }

    /// Run with the deadline `limits.timeout_ms` after `started`.
    fn run_from(
        &self,
        prepared: &Prepared,
        input: &serde_json::Value,
        limits: &Limits,
        grants: &Grants,
        env: &HostEnv,
        started: Instant,
    ) -> Result<RunOutcome, SandboxError> {
        self.runs.fetch_add(1, Ordering::Relaxed);
        let result = self.run_inner(prepared, input, limits, grants, env, started);
        if result.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        result.map_err(bounded)
    }

    fn run_inner(
        &self,
        prepared: &Prepared,
        input: &serde_json::Value,
        limits: &Limits,
        grants: &Grants,
        env: &HostEnv,
        started: Instant,
    ) -> Result<RunOutcome, SandboxError> {
        if Instant::now() >= started + limits.timeout() {
            return Err(SandboxError::Timeout {
                timeout_ms: limits.timeout_ms,
            });
        }
        let input = serde_json::to_vec(input)
            .map_err(|e| SandboxError::host(format!("input is not serializable: {e}")))?;
        let deadline = started + limits.timeout();
        let state = host::HostState::new(grants.clone(), env.clone(), limits, deadline);
        let backend = self.backend(prepared.backend)?;
        let raw = backend.run(&prepared.module, &input, limits, state)?;
        let output = decode_output(&raw.output, limits.max_output_bytes)?;
        Ok(RunOutcome {
            output,
            backend: prepared.backend,
            fuel_used: raw.fuel_used,
            duration_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            cache_hit: prepared.cache_hit,
            module_sha256: prepared.source_sha256.clone(),
            logs: raw.logs,
        })
    }

    pub fn stats(&self) -> CacheStats {
        #[cfg(feature = "edge")]
        let disk = self.disk.as_ref().map(|disk| disk.stats());
        #[cfg(not(feature = "edge"))]
        let disk: Option<DiskCacheStats> = None;
        let misses = self.misses.load(Ordering::Relaxed);
        CacheStats {
            entries: self.lock_cache().len() as u64,
            hits: self.hits.load(Ordering::Relaxed),
            misses,
            // A module loaded from disk was not compiled.
            compiles: self
                .compiles
                .load(Ordering::Relaxed)
                .saturating_sub(disk.as_ref().map_or(0, |d| d.hits)),
            runs: self.runs.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            disk,
        }
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, LruCache<CacheKey, CompiledModule>> {
        lock(&self.cache)
    }
}

#[cfg(test)]
mod tests;
