use super::*;

/// A valid module whose code differs by `n`, so each has its own sha256 and cache entry.
fn numbered(n: usize) -> String {
    format!(
        r#"(module (memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "run") (param i32 i32) (result i64) (drop (i32.const {n})) (i64.const 1)))"#
    )
}

#[test]
fn the_module_cache_keeps_its_size_and_drops_the_least_recently_used() {
    let sandbox = Sandbox::new();
    let prepare = |n: usize| {
        sandbox
            .prepare(BackendKind::Wasmi, numbered(n).as_bytes(), None)
            .unwrap()
            .cache_hit
    };
    let entries = CACHE_ENTRIES.get();
    for n in 0..entries {
        assert!(!prepare(n), "module {n} was new");
    }
    // Module 0 used again: now module 1 is the least recently used.
    assert!(prepare(0));
    assert!(!prepare(entries));
    assert_eq!(sandbox.stats().entries, entries as u64);
    assert!(prepare(0), "the recently used module stayed");
    assert!(!prepare(1), "the least recently used module went");
}
