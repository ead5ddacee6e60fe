//! The host side of the ABI, written once for both backends: the per-run state a store
//! carries, the resource limiter, and the `openclaw.*` functions over a plain `&mut [u8]`
//! view of the guest's memory.
//!
//! Calling convention (see `docs/tools.md`): a host function that produces data stages it
//! and returns its length (≥ 0); the guest copies it out with `result_read(ptr, len)`.
//! Negative returns are ordinary failures the tool may handle: -1 not found, -2 failed
//! (I/O, network), -3 too large. Missing capabilities and policy violations are not
//! returned: they stop the tool with a typed error.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rand::SeedableRng;
use rand::rngs::StdRng;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Capability, Grants, HostEnv, Limits, SandboxError};

/// Ordinary failure codes returned to the guest.
pub const NOT_FOUND: i32 = -1;
pub const FAILED: i32 = -2;
pub const TOO_LARGE: i32 = -3;

/// Log lines a run may keep, the tool's and the host's notes together, and their length;
/// more is dropped (and a last line says how many).
pub const MAX_LOGS: usize = 64;
pub const MAX_LOG_BYTES: usize = 2048;
/// Largest argument a tool may pass to a host function (a path, a key, a log line, a
/// request); more stops the tool with `HostArgument`.
pub const MAX_HOST_ARGUMENT_BYTES: usize = 256 * 1024;
/// Fuel every host call costs, in calibrated units, before the work it does.
pub const HOST_CALL_UNITS: u64 = 100;
/// Fuel per byte a host call reads, writes, copies or receives: the same as `memory.copy`'s
/// per-byte cost, so moving data through the host is not cheaper than moving it in wasm.
pub const HOST_UNITS_PER_BYTE: u64 = 1;
/// Largest file `fs_read` returns.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The engine services a tool can reach through host functions; the engine implements it,
/// tests can fake it.
pub trait HostServices: Send + Sync {
    /// `memory.search` with JSON params; returns the JSON result. Must give up by `deadline`.
    fn memory_search(&self, params: &[u8], deadline: Instant) -> Result<Vec<u8>, String>;
}

/// A line a tool logged with `openclaw.log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ToolLog {
    pub level: String,
    pub message: String,
}

/// Which limit stopped a grow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitHit {
    pub resource: &'static str,
    pub limit: u64,
}

/// Memory, table and instance limits, shared by both backends' limiter traits. Every failed
/// grow traps (rather than failing quietly with -1), so a runaway ends with `MemoryLimit`:
/// past the configured limit, past the module's declared maximum, or past 4 GiB.
#[derive(Debug)]
pub struct Limiter {
    pub memory_bytes: u64,
    pub table_elements: u64,
    pub instances: usize,
    /// The module's declared memory maximum in bytes, once an engine has told us.
    pub declared_memory_max: Option<u64>,
    pub hit: Option<LimitHit>,
    /// Bytes `memory.grow` added since instantiation and not yet charged: wasmi charges a
    /// grow per byte itself; wasmtime's backend charges these (see `wasmtime_backend`).
    pub grown_uncharged: u64,
}

impl Limiter {
    /// `desired` bytes of memory; `maximum` is the module's declared maximum, if any.
    pub fn memory_growing(&mut self, desired: u64, maximum: Option<u64>) -> bool {
        if maximum.is_some() {
            self.declared_memory_max = maximum;
        }
        let bound = self
            .memory_bytes
            .min(self.declared_memory_max.unwrap_or(u64::MAX));
        if desired > bound {
            self.memory_refused();
            return false;
        }
        true
    }

    /// A grow failed for a reason the limiter was not asked about (the declared maximum or
    /// 4 GiB on wasmi, the memory type's range on wasmtime): record the limit that binds,
    /// unless one is recorded already.
    pub fn memory_refused(&mut self) {
        if self.hit.is_some() {
            return;
        }
        self.hit = Some(match self.declared_memory_max {
            Some(declared) if declared < self.memory_bytes => LimitHit {
                resource: "memory bytes (the module's declared maximum)",
                limit: declared,
            },
            _ => LimitHit {
                resource: "memory bytes",
                limit: self.memory_bytes,
            },
        });
    }

    pub fn table_growing(&mut self, desired: usize) -> bool {
        if desired as u64 > self.table_elements {
            self.hit = Some(LimitHit {
                resource: "table elements",
                limit: self.table_elements,
            });
            return false;
        }
        true
    }
}

/// A run's fuel budget, shared by the backend (which puts fuel into its store) and the host
/// functions (which charge for their work), in the backend's own fuel (calibrated units
/// times its `FUEL_PER_UNIT`; 1 on both today).
#[derive(Debug, Default)]
pub struct FuelMeter {
    /// The budget in calibrated units, for `OutOfFuel`.
    pub budget_units: u64,
    pub unlimited: bool,
    /// Fuel not yet put into the store (wasmi hands it out in slices; wasmtime all at once).
    pub reserve: u64,
    /// Fuel put into the store or paid out of the reserve so far; minus what is left in the
    /// store, what was used.
    pub given: u64,
    /// Host work charged and not yet paid.
    pub pending: u64,
}

impl FuelMeter {
    pub fn new(budget_units: u64, fuel_per_unit: u64) -> Self {
        Self {
            budget_units,
            unlimited: budget_units == 0,
            reserve: budget_units.saturating_mul(fuel_per_unit),
            given: 0,
            pending: 0,
        }
    }

    /// Up to `want` fuel out of the reserve (all of it when unlimited).
    pub fn take(&mut self, want: u64) -> u64 {
        let give = if self.unlimited {
            want
        } else {
            want.min(self.reserve)
        };
        if !self.unlimited {
            self.reserve -= give;
        }
        self.given = self.given.saturating_add(give);
        give
    }

    /// Pay the pending host work out of `store_fuel`, then out of the reserve. Returns what
    /// the store has left, or `None` when the budget cannot pay.
    pub fn settle(&mut self, store_fuel: u64) -> Option<u64> {
        let cost = std::mem::take(&mut self.pending);
        if cost <= store_fuel {
            return Some(store_fuel - cost);
        }
        let rest = cost - store_fuel;
        (self.take(rest) >= rest).then_some(0)
    }

    /// Fuel used: everything given minus what the store still holds.
    pub fn used(&self, store_fuel: u64) -> u64 {
        self.given.saturating_sub(store_fuel)
    }
}

/// Everything a run's store carries.
pub struct HostState {
    pub grants: Grants,
    pub env: HostEnv,
    pub deadline: Instant,
    pub timeout_ms: u64,
    pub limiter: Limiter,
    staged: Vec<u8>,
    pub logs: Vec<ToolLog>,
    dropped_logs: usize,
    /// Why a host function stopped the tool; it outranks the trap that follows.
    pub failure: Option<SandboxError>,
    /// Set by a backend's deadline check before it interrupts the guest.
    pub timed_out: bool,
    pub fuel: FuelMeter,
    rng: Option<StdRng>,
}

impl HostState {
    pub fn new(grants: Grants, env: HostEnv, limits: &Limits, deadline: Instant) -> Self {
        Self {
            grants,
            env,
            deadline,
            timeout_ms: limits.timeout_ms,
            limiter: Limiter {
                memory_bytes: limits.memory_bytes,
                table_elements: limits.table_elements,
                instances: limits.instances as usize,
                declared_memory_max: None,
                hit: None,
                grown_uncharged: 0,
            },
            staged: Vec::new(),
            logs: Vec::new(),
            dropped_logs: 0,
            failure: None,
            timed_out: false,
            fuel: FuelMeter::default(),
            rng: None,
        }
    }

    /// The logs, with a last line when some were dropped.
    pub fn take_logs(&mut self) -> Vec<ToolLog> {
        let mut logs = std::mem::take(&mut self.logs);
        if self.dropped_logs > 0 {
            logs.push(ToolLog {
                level: "warn".into(),
                message: format!("{} more log line(s) dropped", self.dropped_logs),
            });
        }
        logs
    }

    /// The error a failed call ends with, most specific cause first: a host function's
    /// verdict, a limit, the deadline; else what the engine reported.
    pub fn classify(&mut self, engine_error: SandboxError) -> SandboxError {
        if let Some(failure) = self.failure.take() {
            return failure;
        }
        if let Some(hit) = self.limiter.hit.take() {
            return SandboxError::MemoryLimit {
                resource: hit.resource.into(),
                limit: hit.limit,
            };
        }
        if self.timed_out {
            return SandboxError::Timeout {
                timeout_ms: self.timeout_ms,
            };
        }
        engine_error
    }

    /// Stop with `Timeout` once the deadline has passed: host calls may not carry a tool
    /// past it, whatever they cost in fuel.
    pub fn check_deadline(&mut self) -> HostResult<()> {
        if Instant::now() >= self.deadline {
            self.timed_out = true;
            return Err(self.stop(SandboxError::Timeout {
                timeout_ms: self.timeout_ms,
            }));
        }
        Ok(())
    }

    /// Pay the pending host work (and growth not yet charged) out of `store_fuel` (see
    /// [`FuelMeter::settle`]); stops with `OutOfFuel` when the budget cannot.
    pub fn settle_fuel(&mut self, store_fuel: u64) -> HostResult<u64> {
        let grown = std::mem::take(&mut self.limiter.grown_uncharged);
        self.fuel.pending = self.fuel.pending.saturating_add(grown);
        match self.fuel.settle(store_fuel) {
            Some(left) => Ok(left),
            None => {
                let fuel = self.fuel.budget_units;
                Err(self.stop(SandboxError::OutOfFuel { fuel }))
            }
        }
    }

    /// Charge host work of `bytes` bytes.
    fn charge(&mut self, bytes: usize) {
        self.fuel.pending = self
            .fuel
            .pending
            .saturating_add((bytes as u64).saturating_mul(HOST_UNITS_PER_BYTE));
    }

    /// Record why the tool must stop and hand back the error for the trap.
    fn stop(&mut self, error: SandboxError) -> HostTrap {
        self.failure = Some(error);
        HostTrap
    }

    fn require(&mut self, capability: Capability) -> Result<(), HostTrap> {
        if self.grants.has(capability) {
            Ok(())
        } else {
            Err(self.stop(SandboxError::CapabilityDenied {
                capability: capability.as_str().into(),
            }))
        }
    }

    fn stage(&mut self, bytes: Vec<u8>) -> i32 {
        match i32::try_from(bytes.len()) {
            Ok(len) => {
                self.staged = bytes;
                len
            }
            Err(_) => TOO_LARGE,
        }
    }
}

/// A host function stopped the tool; the reason is in [`HostState::failure`].
#[derive(Debug)]
pub struct HostTrap;

impl std::fmt::Display for HostTrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stopped by the host")
    }
}

impl std::error::Error for HostTrap {}

pub type HostResult<T> = Result<T, HostTrap>;

/// Every host call starts here, on both backends: past the deadline the tool stops with
/// `Timeout`; otherwise the call's base cost is charged. The backend then runs the function,
/// pays what it charged ([`HostState::settle_fuel`]) and calls [`leave`].
pub fn enter(state: &mut HostState) -> HostResult<()> {
    state.check_deadline()?;
    state.fuel.pending = state.fuel.pending.saturating_add(HOST_CALL_UNITS);
    Ok(())
}

/// Every host call ends here: one that ran past the deadline (a slow fetch, search or
/// disk) does not return to the tool.
pub fn leave(state: &mut HostState) -> HostResult<()> {
    state.check_deadline()
}

fn range(
    state: &mut HostState,
    memory_len: usize,
    ptr: i32,
    len: i32,
    max: usize,
) -> HostResult<std::ops::Range<usize>> {
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    if len > max {
        return Err(state.stop(SandboxError::HostArgument {
            reason: format!("an argument of {len} bytes; the limit is {max}"),
        }));
    }
    match start.checked_add(len) {
        Some(end) if end <= memory_len => Ok(start..end),
        _ => Err(state.stop(SandboxError::Trap {
            code: "memory_out_of_bounds".into(),
        })),
    }
}

/// An argument in guest memory; reading it is charged per byte.
fn read<'m>(state: &mut HostState, memory: &'m [u8], ptr: i32, len: i32) -> HostResult<&'m [u8]> {
    let r = range(state, memory.len(), ptr, len, MAX_HOST_ARGUMENT_BYTES)?;
    state.charge(r.len());
    Ok(&memory[r])
}

fn utf8<'a>(state: &mut HostState, bytes: &'a [u8], what: &str) -> HostResult<&'a str> {
    std::str::from_utf8(bytes).map_err(|_| {
        state.stop(SandboxError::HostArgument {
            reason: format!("{what} is not UTF-8"),
        })
    })
}

/// A log line as kept: at most [`MAX_LOG_BYTES`] of the text (cut at a character boundary,
/// then marked with `…`), control characters but tab removed.
fn log_line(bytes: &[u8]) -> String {
    let mut end = bytes.len().min(MAX_LOG_BYTES);
    // Back off to a character boundary so a cut never leaves a replacement character.
    while end < bytes.len() && end > 0 && (bytes[end] & 0xc0) == 0x80 {
        end -= 1;
    }
    let mut message = String::from_utf8_lossy(&bytes[..end])
        .chars()
        .filter(|c| !c.is_control() || *c == '\t')
        .collect::<String>();
    if end < bytes.len() {
        message.push('…');
    }
    message
}

pub fn log(state: &mut HostState, memory: &[u8], level: i32, ptr: i32, len: i32) -> HostResult<()> {
    let bytes = read(state, memory, ptr, len)?;
    if state.logs.len() >= MAX_LOGS {
        state.dropped_logs += 1;
        return Ok(());
    }
    let message = log_line(bytes);
    let level = match level {
        0 => "error",
        1 => "warn",
        2 => "info",
        _ => "debug",
    };
    // The tool may log what it read: the log writer redacts it while `logging.redact` is
    // on (crate::logging), the one switch for every log line.
    tracing::debug!(
        target: "openclaw_rs::sandbox::tool",
        level,
        "{message}"
    );
    state.logs.push(ToolLog {
        level: level.into(),
        message,
    });
    Ok(())
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub fn random(state: &mut HostState) -> i64 {
    let rng = state.rng.get_or_insert_with(|| {
        // Seeded from the OS once per run; a tool never sees another run's stream.
        let mut seed = [0u8; 32];
        if getrandom::fill(&mut seed).is_err() {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            seed[..16].copy_from_slice(&nanos.to_le_bytes());
        }
        StdRng::from_seed(seed)
    });
    rand::Rng::next_u64(rng) as i64
}

/// Copy the staged result into guest memory; returns the bytes copied.
pub fn result_read(
    state: &mut HostState,
    memory: &mut [u8],
    ptr: i32,
    len: i32,
) -> HostResult<i32> {
    let r = range(state, memory.len(), ptr, len, usize::MAX)?;
    let n = r.len().min(state.staged.len());
    state.charge(n);
    memory[r.start..r.start + n].copy_from_slice(&state.staged[..n]);
    state.staged.drain(..n);
    Ok(n as i32)
}

pub fn memory_search(state: &mut HostState, memory: &[u8], ptr: i32, len: i32) -> HostResult<i32> {
    state.require(Capability::Memory)?;
    let request = read(state, memory, ptr, len)?.to_vec();
    let Some(services) = state.env.services.clone() else {
        return Ok(FAILED);
    };
    match services.memory_search(&request, state.deadline) {
        Ok(result) => {
            state.charge(result.len());
            Ok(state.stage(result))
        }
        Err(message) => {
            push_host_log(state, format!("memory_search failed: {message}"));
            Ok(FAILED)
        }
    }
}

pub fn kv_get(state: &mut HostState, memory: &[u8], kptr: i32, klen: i32) -> HostResult<i32> {
    state.require(Capability::Kv)?;
    let key = read(state, memory, kptr, klen)?;
    let key = utf8(state, key, "the key")?.to_string();
    let Some(file) = state.env.kv_file.clone() else {
        return Ok(FAILED);
    };
    match super::kv::get(&file, &key) {
        Ok((value, read)) => {
            // The whole store is read and parsed for one key.
            state.charge(read);
            match value {
                Some(value) => Ok(state.stage(value.into_bytes())),
                None => Ok(NOT_FOUND),
            }
        }
        Err(e) => {
            push_host_log(state, format!("kv_get failed: {e}"));
            Ok(FAILED)
        }
    }
}

pub fn kv_set(
    state: &mut HostState,
    memory: &[u8],
    kptr: i32,
    klen: i32,
    vptr: i32,
    vlen: i32,
) -> HostResult<i32> {
    state.require(Capability::Kv)?;
    let key = read(state, memory, kptr, klen)?;
    let key = utf8(state, key, "the key")?.to_string();
    let value = read(state, memory, vptr, vlen)?;
    let value = utf8(state, value, "the value")?.to_string();
    let Some(file) = state.env.kv_file.clone() else {
        return Ok(FAILED);
    };
    match super::kv::set(&file, &key, &value) {
        Ok(moved) => {
            state.charge(moved);
            Ok(0)
        }
        Err(super::kv::KvError::TooLarge(what)) => {
            push_host_log(state, format!("kv_set refused: {what}"));
            Ok(TOO_LARGE)
        }
        Err(e) => {
            push_host_log(state, format!("kv_set failed: {e}"));
            Ok(FAILED)
        }
    }
}

pub fn fs_read(state: &mut HostState, memory: &[u8], ptr: i32, len: i32) -> HostResult<i32> {
    state.require(Capability::Fs)?;
    let path = read(state, memory, ptr, len)?;
    let path = utf8(state, path, "the path")?.to_string();
    match super::fs::read_in_workspace(&state.env.workspace, &path, MAX_FILE_BYTES) {
        Ok(bytes) => {
            state.charge(bytes.len());
            Ok(state.stage(bytes))
        }
        Err(super::fs::FsError::Denied(reason)) => Err(state.stop(SandboxError::PolicyDenied {
            capability: "fs".into(),
            reason,
        })),
        Err(super::fs::FsError::NotFound) => Ok(NOT_FOUND),
        Err(super::fs::FsError::TooLarge) => Ok(TOO_LARGE),
        Err(super::fs::FsError::Io(e)) => {
            push_host_log(state, format!("fs_read {path}: {e}"));
            Ok(FAILED)
        }
    }
}

pub fn http_fetch(state: &mut HostState, memory: &[u8], ptr: i32, len: i32) -> HostResult<i32> {
    state.require(Capability::Http)?;
    let request = read(state, memory, ptr, len)?.to_vec();
    let request: super::http::FetchRequest = match serde_json::from_slice(&request) {
        Ok(r) => r,
        Err(e) => {
            return Err(state.stop(SandboxError::HostArgument {
                reason: format!(
                    "the http_fetch request is not {{\"url\", \"method\"?, \"headers\"?, \
                     \"body\"?}}: {e}"
                ),
            }));
        }
    };
    let policy = super::http::HttpPolicy::from_grants(&state.grants.http);
    match super::http::fetch(&policy, &request, state.deadline) {
        Ok(response) => match serde_json::to_vec(&response) {
            Ok(bytes) => {
                state.charge(bytes.len());
                Ok(state.stage(bytes))
            }
            Err(_) => Ok(FAILED),
        },
        Err(super::http::FetchError::Denied(reason)) => {
            Err(state.stop(SandboxError::PolicyDenied {
                capability: "http".into(),
                reason,
            }))
        }
        Err(super::http::FetchError::TooLarge(limit)) => {
            push_host_log(
                state,
                format!("http_fetch: the response exceeds {limit} bytes"),
            );
            Ok(TOO_LARGE)
        }
        Err(super::http::FetchError::Failed(message)) => {
            push_host_log(state, format!("http_fetch: {message}"));
            Ok(FAILED)
        }
    }
}

/// The host's own note in the tool's log, so a -2 has a reason the user can read. Notes
/// share the tool's line count and length caps: a note quoting a tool's 256 KiB path is cut
/// like a tool's own line would be.
fn push_host_log(state: &mut HostState, message: String) {
    if state.logs.len() < MAX_LOGS {
        state.logs.push(ToolLog {
            level: "host".into(),
            message: log_line(message.as_bytes()),
        });
    } else {
        state.dropped_logs += 1;
    }
}
