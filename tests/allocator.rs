//! The engine tunes glibc's malloc for a long run: arenas are capped, so threads that come and
//! go (tantivy's writer threads, the blocking pool) cannot each leave an arena of retained
//! memory behind, and the mmap threshold stays fixed, so a large buffer is handed back to the
//! system when it is freed. Its own test binary: with other tests' threads around, arenas
//! would exist before the cap.

#![cfg(all(target_os = "linux", target_env = "gnu"))]

use std::hint::black_box;
use std::sync::{Arc, Barrier};

use openclaw_rs::config::{LoadOptions, load};
use openclaw_rs::engine::Engine;
use openclaw_rs::engine::allocator::{MAX_ARENAS, MMAP_THRESHOLD, arena_count};

fn start_engine(state: &std::path::Path) -> Engine {
    Engine::start(
        load(&LoadOptions {
            state_dir: state.to_path_buf(),
            ..Default::default()
        }),
        Vec::new(),
    )
}

/// Blocks glibc has mapped on their own right now.
fn mapped_blocks() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    unsafe { libc::mallinfo2() }.hblks
}

#[test]
fn a_long_running_engine_gets_few_arenas_and_large_blocks_mapped_apart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let _engine = start_engine(tmp.path());

    // A large block freed: glibc on its own would now raise the threshold to 8 MiB and serve
    // the next 1 MiB block from an arena, where it would stay resident once freed.
    drop(black_box(vec![1u8; 8 << 20]));
    let before = mapped_blocks();
    let block = black_box(vec![1u8; 4 * MMAP_THRESHOLD]);
    assert_eq!(
        mapped_blocks(),
        before + 1,
        "a {} KiB block is mapped on its own",
        block.len() >> 10
    );
    drop(block);

    // Sixteen threads alive at once, each allocating: without a cap glibc gives each new
    // thread a new arena (up to eight per core).
    const THREADS: usize = 16;
    let start = Arc::new(Barrier::new(THREADS));
    let done = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (start, done) = (start.clone(), done.clone());
            std::thread::spawn(move || {
                start.wait();
                let kept: Vec<Vec<u8>> = (0..200).map(|i| vec![t as u8; 512 + i * 64]).collect();
                // Everyone still holds memory while the others allocate.
                done.wait();
                kept.len()
            })
        })
        .collect();
    let held: usize = threads.into_iter().map(|t| t.join().expect("thread")).sum();
    assert_eq!(held, THREADS * 200);
    let arenas = arena_count().expect("malloc_info");
    assert!(
        arenas <= MAX_ARENAS,
        "{arenas} arenas after {THREADS} threads (cap {MAX_ARENAS})"
    );
}
