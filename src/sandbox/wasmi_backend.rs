//! The wasmi backend: an interpreter, in every build.
//!
//! wasmi has no asynchronous interrupt, so the deadline is kept with fuel slices: the call
//! gets [`SLICE_UNITS`] of fuel at a time; when a slice runs out, execution pauses
//! (resumable call), the deadline and the remaining budget are checked, and it resumes with
//! the next slice. A runaway is stopped at most one slice after its deadline.

use std::time::Instant;

use wasmi::{
    Caller, CompilationMode, Config, Engine, Extern, Func, Linker, Memory, Module, ResourceLimiter,
    ResumableCall, Store, TrapCode, Val,
};

use wasmi::errors::{ErrorKind, InstantiationError};
use wasmi_core::LimiterError;

use super::grow_shim;
use super::host::{self, HostResult, HostState, Limiter};
use super::{BackendKind, CompiledModule, Limits, RawRun, SandboxBackend, SandboxError};

/// wasmi fuel per calibrated unit. wasmi charges about one fuel per WebAssembly operator,
/// as wasmtime does; the conformance suite's SHA-256 fixture uses the same budget on both
/// within a few percent (see `docs/tools.md`).
pub const FUEL_PER_UNIT: u64 = 1;
/// Bytes per fuel for bulk memory (`memory.fill`, `memory.copy`, `memory.init`) and growth:
/// 1, as wasmtime charges them, instead of wasmi's default 64, so megabytes of bulk work
/// cost the same on both backends.
const BYTES_PER_FUEL: u32 = 1;
/// Units per slice between deadline checks: about 1 to 3 ms of interpretation.
pub const SLICE_UNITS: u64 = 1_000_000;
/// Call depth before `StackOverflow`.
pub const MAX_RECURSION_DEPTH: usize = 1_000;

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool, LimiterError> {
        if Limiter::memory_growing(self, desired as u64, maximum.map(|m| m as u64)) {
            Ok(true)
        } else {
            Err(LimiterError::ResourceLimiterDeniedAllocation)
        }
    }

    /// The allocation itself failed after the limiter allowed it: trap, never -1. Running
    /// out of fuel for the grow's bytes also lands here; that one is left to the fuel slices
    /// (it pauses the call for a refill).
    fn memory_grow_failed(
        &mut self,
        error: &wasmi::errors::MemoryError,
    ) -> Result<(), LimiterError> {
        if matches!(error, wasmi::errors::MemoryError::OutOfFuel { .. }) {
            return Ok(());
        }
        self.memory_refused();
        Err(LimiterError::ResourceLimiterDeniedAllocation)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, LimiterError> {
        if Limiter::table_growing(self, desired) {
            Ok(true)
        } else {
            Err(LimiterError::ResourceLimiterDeniedAllocation)
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

/// A compiled module and, when its `memory.grow`s were shimmed, the marker export that says
/// a grow was refused (see `grow_shim`).
struct WasmiModule {
    module: Module,
    grow_marker: Option<String>,
}

pub struct WasmiBackend {
    engine: Engine,
    linker: Linker<HostState>,
}

impl WasmiBackend {
    pub fn new() -> Self {
        let mut config = Config::default();
        // Eager: every body is translated when the module is compiled (bounded by the static
        // limits and by the call's deadline), never during a run, where translation used to
        // cost fuel in one piece larger than a fuel slice.
        config
            .compilation_mode(CompilationMode::Eager)
            .consume_fuel(true)
            .fuel_cost(wasmi::CustomFuelCosts {
                bytes_copied_per_fuel: BYTES_PER_FUEL,
                // wasmi's defaults: only charged for lazy compilation, which is off.
                fuel_per_bytes_translated: 7,
                fuel_per_bytes_validated: 2,
            })
            .set_max_recursion_depth(MAX_RECURSION_DEPTH)
            .wasm_reference_types(false)
            .wasm_tail_call(false)
            .wasm_extended_const(false)
            .wasm_multi_memory(false);
        let engine = Engine::new(&config);
        let mut linker = Linker::new(&engine);
        define_host_functions(&mut linker);
        Self { engine, linker }
    }
}

fn trap(trap: host::HostTrap) -> wasmi::Error {
    wasmi::Error::new(trap.to_string())
}

/// A host call without memory: the deadline at entry and exit, its fuel paid from the store.
fn plain<R>(
    caller: &mut Caller<'_, HostState>,
    f: impl FnOnce(&mut HostState) -> R,
) -> Result<R, wasmi::Error> {
    host::enter(caller.data_mut()).map_err(trap)?;
    let result = f(caller.data_mut());
    finish(caller, Ok(result))
}

/// Pay what the call charged, then look at the deadline once more.
fn finish<R>(caller: &mut Caller<'_, HostState>, result: HostResult<R>) -> Result<R, wasmi::Error> {
    let result = result.map_err(trap)?;
    let fuel = caller.get_fuel().unwrap_or(0);
    let left = caller.data_mut().settle_fuel(fuel).map_err(trap)?;
    caller.set_fuel(left)?;
    host::leave(caller.data_mut()).map_err(trap)?;
    Ok(result)
}

/// The guest's memory and the store's state, for a host function.
fn with_memory<R>(
    caller: &mut Caller<'_, HostState>,
    f: impl FnOnce(&mut [u8], &mut HostState) -> HostResult<R>,
) -> Result<R, wasmi::Error> {
    host::enter(caller.data_mut()).map_err(trap)?;
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        caller.data_mut().failure = Some(SandboxError::invalid(
            "a host function was called but the module exports no `memory`",
        ));
        return Err(wasmi::Error::new("no memory export"));
    };
    let (data, state) = memory.data_and_store_mut(&mut *caller);
    let result = f(data, state);
    finish(caller, result)
}

fn define_host_functions(linker: &mut Linker<HostState>) {
    let results = [
        linker
            .func_wrap(
                "openclaw",
                "log",
                |mut c: Caller<'_, HostState>, level: i32, ptr: i32, len: i32| {
                    with_memory(&mut c, |m, s| host::log(s, m, level, ptr, len))
                },
            )
            .map(|_| ()),
        linker
            .func_wrap("openclaw", "now_ms", |mut c: Caller<'_, HostState>| {
                plain(&mut c, |_| host::now_ms())
            })
            .map(|_| ()),
        linker
            .func_wrap("openclaw", "random", |mut c: Caller<'_, HostState>| {
                plain(&mut c, host::random)
            })
            .map(|_| ()),
        linker
            .func_wrap(
                "openclaw",
                "result_read",
                |mut c: Caller<'_, HostState>, ptr: i32, len: i32| {
                    with_memory(&mut c, |m, s| host::result_read(s, m, ptr, len))
                },
            )
            .map(|_| ()),
        linker
            .func_wrap(
                "openclaw",
                "memory_search",
                |mut c: Caller<'_, HostState>, ptr: i32, len: i32| {
                    with_memory(&mut c, |m, s| host::memory_search(s, m, ptr, len))
                },
            )
            .map(|_| ()),
        linker
            .func_wrap(
                "openclaw",
                "kv_get",
                |mut c: Caller<'_, HostState>, ptr: i32, len: i32| {
                    with_memory(&mut c, |m, s| host::kv_get(s, m, ptr, len))
                },
            )
            .map(|_| ()),
        linker
            .func_wrap(
                "openclaw",
                "kv_set",
                |mut c: Caller<'_, HostState>, kp: i32, kl: i32, vp: i32, vl: i32| {
                    with_memory(&mut c, |m, s| host::kv_set(s, m, kp, kl, vp, vl))
                },
            )
            .map(|_| ()),
        linker
            .func_wrap(
                "openclaw",
                "fs_read",
                |mut c: Caller<'_, HostState>, ptr: i32, len: i32| {
                    with_memory(&mut c, |m, s| host::fs_read(s, m, ptr, len))
                },
            )
            .map(|_| ()),
        linker
            .func_wrap(
                "openclaw",
                "http_fetch",
                |mut c: Caller<'_, HostState>, ptr: i32, len: i32| {
                    with_memory(&mut c, |m, s| host::http_fetch(s, m, ptr, len))
                },
            )
            .map(|_| ()),
    ];
    for result in results {
        // Names are unique and constant; a failure here is a bug in this list.
        if let Err(e) = result {
            tracing::error!("wasmi host function not defined: {e}");
        }
    }
}

fn trap_name(code: TrapCode) -> &'static str {
    match code {
        TrapCode::UnreachableCodeReached => "unreachable",
        TrapCode::MemoryOutOfBounds => "memory_out_of_bounds",
        TrapCode::TableOutOfBounds => "table_out_of_bounds",
        TrapCode::IndirectCallToNull => "indirect_call_to_null",
        TrapCode::IntegerDivisionByZero => "integer_division_by_zero",
        TrapCode::IntegerOverflow => "integer_overflow",
        TrapCode::BadConversionToInteger => "bad_conversion_to_integer",
        TrapCode::BadSignature => "bad_signature",
        TrapCode::StackOverflow => "stack_overflow",
        TrapCode::OutOfFuel => "out_of_fuel",
        TrapCode::GrowthOperationLimited => "growth_limited",
        TrapCode::OutOfSystemMemory => "out_of_system_memory",
    }
}

struct Run<'a> {
    store: Store<HostState>,
    limits: &'a Limits,
}

impl Run<'_> {
    fn fail(&mut self, error: wasmi::Error) -> SandboxError {
        let engine_error = match error.as_trap_code() {
            Some(TrapCode::OutOfFuel) => SandboxError::OutOfFuel {
                fuel: self.limits.fuel,
            },
            Some(TrapCode::StackOverflow) => SandboxError::StackOverflow,
            Some(code) => SandboxError::trap(trap_name(code)),
            // wasmi's own texts for these carry store handles and other internals: the
            // sandbox says what happened in its own words, and the text goes to the debug log.
            None => {
                tracing::debug!("wasmi stopped the tool: {error}");
                match error.kind() {
                    ErrorKind::Instantiation(InstantiationError::ElementSegmentDoesNotFit {
                        ..
                    })
                    | ErrorKind::Table(_) => SandboxError::trap("table_out_of_bounds"),
                    ErrorKind::Memory(_) => SandboxError::trap("memory_out_of_bounds"),
                    ErrorKind::Linker(_) | ErrorKind::Instantiation(_) => SandboxError::invalid(
                        "the module could not be instantiated (it needs more instances, \
                         tables or memories than a tool may have, or an import the host \
                         lacks)",
                    ),
                    _ => SandboxError::trap("other"),
                }
            }
        };
        self.store.data_mut().classify(engine_error)
    }

    fn timed_out(&mut self) -> SandboxError {
        self.store.data_mut().timed_out = true;
        self.store.data_mut().classify(SandboxError::Timeout {
            timeout_ms: self.limits.timeout_ms,
        })
    }

    /// Call `func` to completion in fuel slices, checking the deadline between them.
    fn call(&mut self, func: Func, args: &[Val], out: &mut [Val]) -> Result<(), SandboxError> {
        let slice = SLICE_UNITS * FUEL_PER_UNIT;
        let deadline = self.store.data().deadline;
        let mut call = func.call_resumable(&mut self.store, args, out);
        loop {
            match call {
                Ok(ResumableCall::Finished) => return Ok(()),
                Ok(ResumableCall::HostTrap(trap)) => {
                    let error = trap.into_host_error();
                    return Err(self.fail(error));
                }
                Ok(ResumableCall::OutOfFuel(paused)) => {
                    if Instant::now() >= deadline {
                        return Err(self.timed_out());
                    }
                    let left = self.store.get_fuel().unwrap_or(0);
                    let needed = paused.required_fuel().saturating_sub(left);
                    let give = self.store.data_mut().fuel.take(slice.max(needed));
                    if give < needed || give == 0 {
                        return Err(SandboxError::OutOfFuel {
                            fuel: self.limits.fuel,
                        });
                    }
                    if self.store.set_fuel(left.saturating_add(give)).is_err() {
                        return Err(SandboxError::host("wasmi refused to refuel"));
                    }
                    call = paused.resume(&mut self.store, out);
                }
                Err(error) => return Err(self.fail(error)),
            }
        }
    }
}

impl SandboxBackend for WasmiBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Wasmi
    }

    fn compile(&self, wasm: &[u8]) -> Result<CompiledModule, SandboxError> {
        let shimmed = grow_shim::shim_memory_grow(wasm).map_err(SandboxError::invalid)?;
        let (wasm, grow_marker) = match &shimmed {
            Some(s) => (s.wasm.as_slice(), Some(s.marker.clone())),
            None => (wasm, None),
        };
        Module::new(&self.engine, wasm)
            .map(|module| {
                CompiledModule::new(WasmiModule {
                    module,
                    grow_marker,
                })
            })
            .map_err(|e| SandboxError::invalid(format!("wasmi could not compile the module: {e}")))
    }

    fn run(
        &self,
        module: &CompiledModule,
        input: &[u8],
        limits: &Limits,
        state: HostState,
    ) -> Result<RawRun, SandboxError> {
        let WasmiModule {
            module,
            grow_marker,
        } = module
            .downcast::<WasmiModule>()
            .ok_or_else(|| SandboxError::host("a module compiled for another backend"))?;
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.data_mut().fuel = host::FuelMeter::new(limits.fuel, FUEL_PER_UNIT);
        let mut run = Run { store, limits };
        let first = run.store.data_mut().fuel.take(SLICE_UNITS * FUEL_PER_UNIT);
        run.store
            .set_fuel(first)
            .map_err(|e| SandboxError::host(e.to_string()))?;
        let instance = match self.linker.instantiate_and_start(&mut run.store, module) {
            Ok(instance) => instance,
            Err(error) => return Err(run.fail(error)),
        };
        let memory: Memory = instance
            .get_memory(&run.store, "memory")
            .ok_or_else(|| SandboxError::invalid("the module exports no `memory`"))?;
        let alloc = instance
            .get_typed_func::<i32, i32>(&run.store, "alloc")
            .map_err(|_| SandboxError::invalid("the module exports no `alloc(i32) -> i32`"))?;
        let entry = instance
            .get_typed_func::<(i32, i32), i64>(&run.store, "run")
            .map_err(|_| SandboxError::invalid("the module exports no `run(i32, i32) -> i64`"))?;
        let len = i32::try_from(input.len())
            .map_err(|_| SandboxError::host("the input is larger than 2 GiB"))?;

        let declared_max = memory.ty(&run.store).maximum().map(|pages| pages * 65_536);
        run.store.data_mut().limiter.declared_memory_max = declared_max;
        // A trap from the grow shim is a refused grow, whatever the engine called it.
        let refused_grow = |run: &mut Run<'_>, error: SandboxError| {
            let refused = grow_marker
                .as_deref()
                .and_then(|name| instance.get_global(&run.store, name))
                .is_some_and(|g| !matches!(g.get(&run.store), Val::I64(0)));
            if refused {
                let limiter = &mut run.store.data_mut().limiter;
                limiter.declared_memory_max = declared_max;
                limiter.memory_refused();
                return run.store.data_mut().classify(error);
            }
            error
        };
        let mut out = [Val::I32(0)];
        run.call(*alloc.func(), &[Val::I32(len)], &mut out)
            .map_err(|e| refused_grow(&mut run, e))?;
        let ptr = match out[0] {
            Val::I32(p) => p,
            _ => return Err(SandboxError::invalid("`alloc` returned no i32")),
        };
        memory
            .write(&mut run.store, ptr as u32 as usize, input)
            .map_err(|_| SandboxError::BadOutput {
                reason: format!("`alloc({len})` returned {ptr}, outside the module's memory"),
            })?;
        let mut out = [Val::I64(0)];
        run.call(*entry.func(), &[Val::I32(ptr), Val::I32(len)], &mut out)
            .map_err(|e| refused_grow(&mut run, e))?;
        let packed = match out[0] {
            Val::I64(v) => v as u64,
            _ => return Err(SandboxError::invalid("`run` returned no i64")),
        };
        let (out_ptr, out_len) = ((packed >> 32) as usize, (packed & 0xffff_ffff) as usize);
        if out_len as u64 > limits.max_output_bytes {
            return Err(SandboxError::BadOutput {
                reason: format!(
                    "the output is {out_len} bytes; the cap is {} (sandbox.max_output_kb)",
                    limits.max_output_bytes
                ),
            });
        }
        let data = memory.data(&run.store);
        let output = out_ptr
            .checked_add(out_len)
            .and_then(|end| data.get(out_ptr..end))
            .ok_or_else(|| SandboxError::BadOutput {
                reason: format!("`run` returned {out_len} bytes at {out_ptr}, outside memory"),
            })?
            .to_vec();
        let left = run.store.get_fuel().unwrap_or(0);
        let fuel_used = run.store.data().fuel.used(left) / FUEL_PER_UNIT;
        Ok(RawRun {
            output,
            fuel_used,
            logs: run.store.data_mut().take_logs(),
        })
    }
}
