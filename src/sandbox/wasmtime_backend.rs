//! The wasmtime backend: Cranelift JIT, edge builds only.
//!
//! The deadline uses epoch interruption: while any run is in flight a ticker thread bumps
//! the engine's epoch every [`TICK`]; at each tick a running store's callback compares the
//! clock with its own deadline and either lets it go on for another tick or interrupts it.
//! The ticker sleeps when nothing runs, so an idle engine costs no wakeups.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use wasmtime::{
    Caller, Config, Engine, Extern, Linker, Memory, Module, ResourceLimiter, Store, Trap,
    UpdateDeadline,
};

use super::disk_cache::{self, DiskCache};
use super::host::{self, HostResult, HostState, Limiter};
use super::{BackendKind, CompiledModule, Limits, RawRun, SandboxBackend, SandboxError};

/// wasmtime fuel per calibrated unit: one per WebAssembly operator, the reference.
pub const FUEL_PER_UNIT: u64 = 1;
/// How often a running store looks at the clock; bounds how late a runaway is stopped.
pub const TICK: Duration = Duration::from_millis(2);
/// Native stack for WebAssembly frames before `StackOverflow`.
pub const MAX_WASM_STACK: usize = 512 * 1024;

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if Limiter::memory_growing(self, desired as u64, maximum.map(|m| m as u64)) {
            // wasmtime charges no fuel for growth; wasmi charges 1 per byte. The backend
            // charges the bytes at the next host call, epoch tick or the end of the call
            // (instantiation's initial memory is charged on neither; see `run`).
            self.grown_uncharged = self
                .grown_uncharged
                .saturating_add(desired.saturating_sub(current) as u64);
            Ok(true)
        } else {
            Err(wasmtime::Error::msg("memory limit"))
        }
    }

    /// Called when a grow fails without asking `memory_growing` (past what the memory type
    /// can address): trap like every other refused grow instead of returning -1.
    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory_refused();
        Err(wasmtime::Error::msg("memory limit"))
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if Limiter::table_growing(self, desired) {
            Ok(true)
        } else {
            Err(wasmtime::Error::msg("table limit"))
        }
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        4
    }

    fn memories(&self) -> usize {
        1
    }
}

/// Bumps the epoch while at least one run is active.
struct Ticker {
    active: Mutex<usize>,
    wake: Condvar,
}

struct Active<'a>(&'a Ticker);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        let mut n = self.0.active.lock().unwrap_or_else(|e| e.into_inner());
        *n = n.saturating_sub(1);
    }
}

impl Ticker {
    fn start(engine: Engine) -> Arc<Self> {
        let ticker = Arc::new(Ticker {
            active: Mutex::new(0),
            wake: Condvar::new(),
        });
        let weak = Arc::downgrade(&ticker);
        let spawned = std::thread::Builder::new()
            .name("sandbox-epoch".into())
            .spawn(move || {
                while let Some(ticker) = weak.upgrade() {
                    {
                        let guard = ticker.active.lock().unwrap_or_else(|e| e.into_inner());
                        // Sleep until a run starts; wake now and then to notice a drop.
                        let _ =
                            ticker
                                .wake
                                .wait_timeout_while(guard, Duration::from_secs(1), |n| *n == 0);
                    }
                    drop(ticker);
                    std::thread::sleep(TICK);
                    engine.increment_epoch();
                }
            });
        if let Err(e) = spawned {
            tracing::error!(
                "the sandbox epoch thread did not start: {e}; deadlines fall back to fuel"
            );
        }
        ticker
    }

    fn activate(&self) -> Active<'_> {
        *self.active.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.wake.notify_all();
        Active(self)
    }
}

pub struct WasmtimeBackend {
    engine: Engine,
    linker: Linker<HostState>,
    ticker: Arc<Ticker>,
    /// The on-disk code cache and this engine's fingerprint in it.
    disk: Option<(Arc<DiskCache>, String)>,
}

/// The engine configuration every run relies on (fuel, deadlines, stack bound).
pub fn config() -> Config {
    let mut config = Config::new();
    config
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK);
    config
}

impl WasmtimeBackend {
    pub fn new(disk: Option<Arc<DiskCache>>) -> Result<Self, String> {
        Self::with_config(&config(), disk)
    }

    pub fn with_config(config: &Config, disk: Option<Arc<DiskCache>>) -> Result<Self, String> {
        let engine = Engine::new(config).map_err(|e| e.to_string())?;
        let mut linker = Linker::new(&engine);
        define_host_functions(&mut linker).map_err(|e| e.to_string())?;
        let ticker = Ticker::start(engine.clone());
        let disk = disk.map(|disk| {
            let fingerprint = disk_cache::fingerprint(&engine);
            (disk, fingerprint)
        });
        Ok(Self {
            engine,
            linker,
            ticker,
            disk,
        })
    }
}

fn trap(trap: host::HostTrap) -> wasmtime::Error {
    wasmtime::Error::msg(trap.to_string())
}

/// A host call without memory: the deadline at entry and exit, its fuel paid from the store
/// (the same steps as on wasmi).
fn plain<R>(
    caller: &mut Caller<'_, HostState>,
    f: impl FnOnce(&mut HostState) -> R,
) -> wasmtime::Result<R> {
    host::enter(caller.data_mut()).map_err(trap)?;
    let result = f(caller.data_mut());
    finish(caller, Ok(result))
}

/// Pay what the call charged, then look at the deadline once more.
fn finish<R>(caller: &mut Caller<'_, HostState>, result: HostResult<R>) -> wasmtime::Result<R> {
    let result = result.map_err(trap)?;
    let fuel = caller.get_fuel().unwrap_or(0);
    let left = caller.data_mut().settle_fuel(fuel).map_err(trap)?;
    caller.set_fuel(left)?;
    host::leave(caller.data_mut()).map_err(trap)?;
    Ok(result)
}

fn with_memory<R>(
    caller: &mut Caller<'_, HostState>,
    f: impl FnOnce(&mut [u8], &mut HostState) -> HostResult<R>,
) -> wasmtime::Result<R> {
    host::enter(caller.data_mut()).map_err(trap)?;
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        caller.data_mut().failure = Some(SandboxError::invalid(
            "a host function was called but the module exports no `memory`",
        ));
        return Err(wasmtime::Error::msg("no memory export"));
    };
    let (data, state) = memory.data_and_store_mut(&mut *caller);
    let result = f(data, state);
    finish(caller, result)
}

fn define_host_functions(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "openclaw",
        "log",
        |mut c: Caller<'_, HostState>, level: i32, ptr: i32, len: i32| {
            with_memory(&mut c, |m, s| host::log(s, m, level, ptr, len))
        },
    )?;
    linker.func_wrap("openclaw", "now_ms", |mut c: Caller<'_, HostState>| {
        plain(&mut c, |_| host::now_ms())
    })?;
    linker.func_wrap("openclaw", "random", |mut c: Caller<'_, HostState>| {
        plain(&mut c, host::random)
    })?;
    linker.func_wrap(
        "openclaw",
        "result_read",
        |mut c: Caller<'_, HostState>, ptr: i32, len: i32| {
            with_memory(&mut c, |m, s| host::result_read(s, m, ptr, len))
        },
    )?;
    linker.func_wrap(
        "openclaw",
        "memory_search",
        |mut c: Caller<'_, HostState>, ptr: i32, len: i32| {
            with_memory(&mut c, |m, s| host::memory_search(s, m, ptr, len))
        },
    )?;
    linker.func_wrap(
        "openclaw",
        "kv_get",
        |mut c: Caller<'_, HostState>, ptr: i32, len: i32| {
            with_memory(&mut c, |m, s| host::kv_get(s, m, ptr, len))
        },
    )?;
    linker.func_wrap(
        "openclaw",
        "kv_set",
        |mut c: Caller<'_, HostState>, kp: i32, kl: i32, vp: i32, vl: i32| {
            with_memory(&mut c, |m, s| host::kv_set(s, m, kp, kl, vp, vl))
        },
    )?;
    linker.func_wrap(
        "openclaw",
        "fs_read",
        |mut c: Caller<'_, HostState>, ptr: i32, len: i32| {
            with_memory(&mut c, |m, s| host::fs_read(s, m, ptr, len))
        },
    )?;
    linker.func_wrap(
        "openclaw",
        "http_fetch",
        |mut c: Caller<'_, HostState>, ptr: i32, len: i32| {
            with_memory(&mut c, |m, s| host::http_fetch(s, m, ptr, len))
        },
    )?;
    Ok(())
}

fn trap_name(trap: Trap) -> &'static str {
    match trap {
        Trap::UnreachableCodeReached => "unreachable",
        Trap::MemoryOutOfBounds => "memory_out_of_bounds",
        Trap::TableOutOfBounds => "table_out_of_bounds",
        Trap::IndirectCallToNull => "indirect_call_to_null",
        Trap::IntegerDivisionByZero => "integer_division_by_zero",
        Trap::IntegerOverflow => "integer_overflow",
        Trap::BadConversionToInteger => "bad_conversion_to_integer",
        Trap::BadSignature => "bad_signature",
        Trap::StackOverflow => "stack_overflow",
        Trap::OutOfFuel => "out_of_fuel",
        Trap::Interrupt => "interrupt",
        _ => "other",
    }
}

fn fail(store: &mut Store<HostState>, limits: &Limits, error: wasmtime::Error) -> SandboxError {
    let engine_error = match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => SandboxError::OutOfFuel { fuel: limits.fuel },
        Some(Trap::StackOverflow) => SandboxError::StackOverflow,
        Some(trap) => SandboxError::trap(trap_name(*trap)),
        // No trap code: say so in the sandbox's words; wasmtime's text goes to the debug log.
        None => {
            tracing::debug!("wasmtime stopped the tool: {error:#}");
            SandboxError::trap("other")
        }
    };
    store.data_mut().classify(engine_error)
}

impl SandboxBackend for WasmtimeBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Wasmtime
    }

    fn compile(&self, wasm: &[u8]) -> Result<CompiledModule, SandboxError> {
        let compile = || {
            Module::new(&self.engine, wasm).map_err(|e| {
                SandboxError::invalid(format!("wasmtime could not compile the module: {e:#}"))
            })
        };
        let Some((disk, fingerprint)) = &self.disk else {
            return compile().map(CompiledModule::new);
        };
        let sha256 = super::sha256_hex(wasm);
        if let Some(module) = disk.load(&self.engine, fingerprint, &sha256) {
            return Ok(CompiledModule::new(module));
        }
        let module = compile()?;
        disk.store(fingerprint, &sha256, &module);
        Ok(CompiledModule::new(module))
    }

    fn run(
        &self,
        module: &CompiledModule,
        input: &[u8],
        limits: &Limits,
        state: HostState,
    ) -> Result<RawRun, SandboxError> {
        let module = module
            .downcast::<Module>()
            .ok_or_else(|| SandboxError::host("a module compiled for another backend"))?;
        let deadline = state.deadline;
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        // The whole budget goes into the store at once; wasmtime keeps fuel as a signed
        // count, so "unlimited" is its largest.
        let mut meter = host::FuelMeter::new(limits.fuel, FUEL_PER_UNIT);
        let given = meter.take(if limits.fuel == 0 {
            i64::MAX as u64
        } else {
            limits.fuel.saturating_mul(FUEL_PER_UNIT)
        });
        store.data_mut().fuel = meter;
        store
            .set_fuel(given)
            .map_err(|e| SandboxError::host(format!("{e:#}")))?;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut ctx| {
            if Instant::now() >= deadline {
                ctx.data_mut().timed_out = true;
                return Ok(UpdateDeadline::Interrupt);
            }
            // Growth since the last tick is paid here, at most one tick late.
            if ctx.data().limiter.grown_uncharged > 0 {
                let fuel = ctx.get_fuel()?;
                let left = ctx.data_mut().settle_fuel(fuel).map_err(trap)?;
                ctx.set_fuel(left)?;
            }
            Ok(UpdateDeadline::Continue(1))
        });
        let _active = self.ticker.activate();

        let instance = self
            .linker
            .instantiate(&mut store, module)
            .map_err(|e| fail(&mut store, limits, e))?;
        // The initial memory is not growth: wasmi does not charge it either.
        store.data_mut().limiter.grown_uncharged = 0;
        let memory: Memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| SandboxError::invalid("the module exports no `memory`"))?;
        let alloc = instance
            .get_typed_func::<i32, i32>(&mut store, "alloc")
            .map_err(|_| SandboxError::invalid("the module exports no `alloc(i32) -> i32`"))?;
        let entry = instance
            .get_typed_func::<(i32, i32), i64>(&mut store, "run")
            .map_err(|_| SandboxError::invalid("the module exports no `run(i32, i32) -> i64`"))?;
        let len = i32::try_from(input.len())
            .map_err(|_| SandboxError::host("the input is larger than 2 GiB"))?;
        let ptr = alloc
            .call(&mut store, len)
            .map_err(|e| fail(&mut store, limits, e))?;
        memory
            .write(&mut store, ptr as u32 as usize, input)
            .map_err(|_| SandboxError::BadOutput {
                reason: format!("`alloc({len})` returned {ptr}, outside the module's memory"),
            })?;
        let packed = entry
            .call(&mut store, (ptr, len))
            .map_err(|e| fail(&mut store, limits, e))? as u64;
        // Growth since the last tick or host call.
        let fuel = store.get_fuel().unwrap_or(0);
        let left = store
            .data_mut()
            .settle_fuel(fuel)
            .map_err(|_| SandboxError::OutOfFuel { fuel: limits.fuel })?;
        store
            .set_fuel(left)
            .map_err(|e| SandboxError::host(format!("{e:#}")))?;
        let (out_ptr, out_len) = ((packed >> 32) as usize, (packed & 0xffff_ffff) as usize);
        if out_len as u64 > limits.max_output_bytes {
            return Err(SandboxError::BadOutput {
                reason: format!(
                    "the output is {out_len} bytes; the cap is {} (sandbox.max_output_kb)",
                    limits.max_output_bytes
                ),
            });
        }
        let data = memory.data(&store);
        let output = out_ptr
            .checked_add(out_len)
            .and_then(|end| data.get(out_ptr..end))
            .ok_or_else(|| SandboxError::BadOutput {
                reason: format!("`run` returned {out_len} bytes at {out_ptr}, outside memory"),
            })?
            .to_vec();
        let left = store.get_fuel().unwrap_or(0);
        let fuel_used = store.data().fuel.used(left) / FUEL_PER_UNIT;
        Ok(RawRun {
            output,
            fuel_used,
            logs: store.data_mut().take_logs(),
        })
    }
}
