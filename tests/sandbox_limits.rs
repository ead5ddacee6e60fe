//! The sandbox's static limits (`docs/tools.md`, "Static limits"): a module at every limit
//! runs, and gives the same output, on every backend of the build; one past it is refused
//! with the same `invalidModule` reason and `limit` on every backend. Modules are generated
//! here, at the exact limit, rather than kept as fixtures.

use std::time::{Duration, Instant};

use openclaw_rs::sandbox::static_limits::{self, StaticLimit};
use openclaw_rs::sandbox::{self, Grants, HostEnv, Limits, Sandbox, SandboxError};
use serde_json::{Value, json};

const HEAD: &str = r#"(memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))"#;

/// `(i64.const n)` as the output pointer/length pair of a one-byte JSON digit at 0.
const DIGIT_OUT: &str = "(i64.const 1)";

fn limits(fuel: u64) -> Limits {
    Limits {
        fuel,
        memory_bytes: 16 << 20,
        table_elements: Limits::DEFAULT_TABLE_ELEMENTS,
        instances: 1,
        timeout_ms: 60_000,
        max_output_bytes: 1024,
    }
}

/// Every backend's outcome for `wat` (a digit written at address 0 is the usual output).
fn outcomes(wat: &str, fuel: u64) -> Vec<Result<Value, SandboxError>> {
    let sandbox = Sandbox::new();
    sandbox::available_backends()
        .into_iter()
        .map(|backend| {
            sandbox
                .prepare(backend, wat.as_bytes(), None)
                .and_then(|p| {
                    sandbox.run(
                        &p,
                        &Value::Null,
                        &limits(fuel),
                        &Grants::default(),
                        &HostEnv::default(),
                    )
                })
                .map(|o| o.output)
        })
        .collect()
}

fn assert_runs(what: &str, wat: &str, want: Value) {
    for fuel in [0, 50_000_000] {
        for outcome in outcomes(wat, fuel) {
            match outcome {
                Ok(output) => assert_eq!(output, want, "{what} (fuel {fuel})"),
                Err(e) => panic!("{what} at its limit must run (fuel {fuel}): {e:?}"),
            }
        }
    }
}

fn assert_refused(what: &str, wat: &str, limit: StaticLimit) {
    for outcome in outcomes(wat, 0) {
        match outcome {
            Err(SandboxError::InvalidModule {
                reason,
                limit: Some(name),
            }) => {
                assert_eq!(name, limit.name, "{what}: {reason}");
                assert!(
                    reason.contains(&static_limits::grouped(limit.max)),
                    "{what}: the reason names the limit: {reason}"
                );
            }
            other => panic!(
                "{what} past its limit must be refused as {}: {other:?}",
                limit.name
            ),
        }
    }
}

/// A module whose `run` has `body` and writes the digit 1 as its output.
fn module(extra: &str, body: &str) -> String {
    format!(
        r#"(module {HEAD}
  (data (i32.const 0) "1")
  {extra}
  (func (export "run") (param i32 i32) (result i64) {body} {DIGIT_OUT}))"#
    )
}

#[test]
fn functions() {
    let max = static_limits::FUNCTIONS.max as usize;
    // One import, alloc and run, and the rest empty functions.
    let make = |total: usize| {
        format!(
            r#"(module (import "openclaw" "now_ms" (func (result i64))) {HEAD}
  (data (i32.const 0) "1") {}
  (func (export "run") (param i32 i32) (result i64) {DIGIT_OUT}))"#,
            "(func)".repeat(total - 3)
        )
    };
    assert_runs("functions", &make(max), json!(1));
    assert_refused("functions", &make(max + 1), static_limits::FUNCTIONS);
}

#[test]
fn locals() {
    let max = static_limits::LOCALS.max as usize;
    // `run` has 2 parameters; the last local is set and read, so it is really there.
    let make = |total: usize| {
        module(
            "",
            &format!(
                "(local {}) (local.set {last} (i32.const 7)) (drop (local.get {last}))",
                "i32 ".repeat(total - 2),
                last = total - 1
            ),
        )
    };
    assert_runs("locals", &make(max), json!(1));
    assert_refused("locals", &make(max + 1), static_limits::LOCALS);
}

#[test]
fn body_bytes() {
    let max = static_limits::BODY_BYTES.max as usize;
    // A body is its locals count (1 byte), its code and `end`: n nops, `i64.const 1` (2 bytes)
    // and `end` make n + 4 bytes.
    let make = |bytes: usize| module("", &"nop ".repeat(bytes - 4));
    assert_runs("body bytes", &make(max), json!(1));
    assert_refused("body bytes", &make(max + 1), static_limits::BODY_BYTES);
}

#[test]
fn code_bytes() {
    let body = static_limits::BODY_BYTES.max as usize;
    let max = static_limits::CODE_BYTES.max as usize;
    // Functions of the largest body (n + 3 bytes of nops, `end` and locals count) filling
    // the code section; with `alloc` and `run` and the section's counts on top.
    let make = |functions: usize| {
        module(
            &format!("(func {})", "nop ".repeat(body - 8)).repeat(functions),
            "",
        )
    };
    let fits = max / body - 1;
    assert_runs("code bytes", &make(fits), json!(1));
    assert_refused("code bytes", &make(fits + 2), static_limits::CODE_BYTES);
}

#[test]
fn nesting() {
    let max = static_limits::NESTING.max as usize;
    let make = |depth: usize| {
        module(
            "",
            &format!("{}{}", "(block ".repeat(depth), ")".repeat(depth)),
        )
    };
    assert_runs("nesting", &make(max), json!(1));
    assert_refused("nesting", &make(max + 1), static_limits::NESTING);
}

#[test]
fn operand_stack() {
    let max = static_limits::OPERAND_STACK.max as usize;
    // n values pushed, then n - 1 adds fold them into one.
    let make = |n: usize| {
        module(
            "",
            &format!(
                "{} {} drop",
                "i32.const 1 ".repeat(n),
                "i32.add ".repeat(n - 1)
            ),
        )
    };
    assert_runs("operand stack", &make(max), json!(1));
    assert_refused(
        "operand stack",
        &make(max + 1),
        static_limits::OPERAND_STACK,
    );
}

#[test]
fn locals_and_operand_stack_together_fit_wasmi() {
    // The worst case for wasmi's register space: the most locals and the deepest stack
    // in one function, each at its limit.
    let locals = static_limits::LOCALS.max as usize;
    let stack = static_limits::OPERAND_STACK.max as usize;
    let wat = module(
        "",
        &format!(
            "(local {}) {} {} drop",
            "i64 ".repeat(locals - 2),
            "i32.const 1 ".repeat(stack),
            "i32.add ".repeat(stack - 1)
        ),
    );
    assert_runs("locals and operand stack", &wat, json!(1));
}

#[test]
fn globals() {
    let max = static_limits::GLOBALS.max as usize;
    let make = |n: usize| module(&"(global i32 (i32.const 0))".repeat(n), "");
    assert_runs("globals", &make(max), json!(1));
    assert_refused("globals", &make(max + 1), static_limits::GLOBALS);
}

#[test]
fn data_segments() {
    let max = static_limits::DATA_SEGMENTS.max as usize;
    // The output's own segment counts; the rest write past it.
    let make = |n: usize| module(&r#"(data (i32.const 100) "x")"#.repeat(n - 1), "");
    assert_runs("data segments", &make(max), json!(1));
    assert_refused(
        "data segments",
        &make(max + 1),
        static_limits::DATA_SEGMENTS,
    );
}

#[test]
fn element_segments() {
    let max = static_limits::ELEMENT_SEGMENTS.max as usize;
    let make = |n: usize| {
        module(
            &format!(
                "(table {n} funcref) (func $f) {}",
                (0..n)
                    .map(|i| format!("(elem (i32.const {i}) $f)"))
                    .collect::<String>()
            ),
            "",
        )
    };
    assert_runs("element segments", &make(max), json!(1));
    assert_refused(
        "element segments",
        &make(max + 1),
        static_limits::ELEMENT_SEGMENTS,
    );
}

#[test]
fn a_large_body_runs_on_wasmi_with_any_fuel_budget() {
    // 100,000 operators in one body: wasmi used to charge its lazy translation to the
    // run's fuel in one piece larger than a fuel slice, and never refilled it.
    let wat = module("", &"(drop (i32.const 1))\n".repeat(50_000));
    assert_runs("a large body", &wat, json!(1));
}

#[test]
fn a_compile_past_the_deadline_times_out_and_the_module_is_still_cached() {
    // The largest code the limits admit takes far longer than 1 ms to validate and compile.
    let body = static_limits::BODY_BYTES.max as usize;
    let functions = static_limits::CODE_BYTES.max as usize / body - 1;
    let wat = module(
        &format!("(func {})", "(drop (i32.const 1)) ".repeat((body - 8) / 4)).repeat(functions),
        "",
    );
    let wasm = sandbox::assemble(wat.as_bytes()).unwrap();
    let sandbox = Sandbox::new();
    for backend in sandbox::available_backends() {
        let mut tight = limits(0);
        tight.timeout_ms = 1;
        let started = Instant::now();
        let err = sandbox
            .call(
                backend,
                &wasm,
                None,
                &Value::Null,
                &tight,
                &Grants::default(),
                &HostEnv::default(),
            )
            .unwrap_err();
        assert!(
            matches!(err, SandboxError::Timeout { timeout_ms: 1 }),
            "{}: {err:?}",
            backend.as_str()
        );
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{}: the call waited for the compile ({:?})",
            backend.as_str(),
            started.elapsed()
        );
        // The compile goes on; the next call reuses it instead of compiling again.
        let out = sandbox
            .call(
                backend,
                &wasm,
                None,
                &Value::Null,
                &limits(0),
                &Grants::default(),
                &HostEnv::default(),
            )
            .unwrap();
        assert_eq!(out.output, json!(1));
    }
    let stats = sandbox.stats();
    assert_eq!(
        stats.compiles,
        sandbox::available_backends().len() as u64,
        "one compile per backend: {stats:?}"
    );
}
