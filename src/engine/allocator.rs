//! glibc's malloc, tuned for an engine that stays up for days.
//!
//! glibc gives a thread that finds the other arenas busy an arena of its own (up to eight per
//! core), and an arena keeps the pages it once used: freed chunks inside it are not handed
//! back. Indexing (tantivy's writer threads) and the blocking pool bring short-lived threads,
//! so over a long run each new arena added 5–15 MiB that stayed resident (the soak
//! benchmark, docs/benchmarks.md). And glibc raises its mmap threshold to the size of each
//! large block freed (up to 32 MiB), so after the first index the writer's multi-MiB buffers
//! came from an arena too and stayed there until something trimmed it. The engine caps the
//! arenas and fixes the threshold when it starts, and hands freed memory back after a memory
//! index. Other allocators (musl builds use mimalloc) need none of this: these are no-ops
//! there.

/// Arenas glibc may create in this process, the main one included.
pub const MAX_ARENAS: usize = 2;
/// Blocks this large or larger get their own mapping, returned to the system when freed.
pub const MMAP_THRESHOLD: usize = 256 * 1024;

/// Cap glibc's arenas and fix its mmap threshold for the rest of the process (once; later
/// calls do nothing).
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only sets tunables; both values are in their documented range
            // (any positive arena count; a threshold up to 32 MiB).
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, MAX_ARENAS as libc::c_int);
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
            }
        });
    }
}

/// Hand the free pages of every arena back to the system.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory that is free; it takes the arenas' locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How many arenas glibc has now (from `malloc_info`), where it can say.
pub fn arena_count() -> Option<usize> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let mut buf: *mut libc::c_char = std::ptr::null_mut();
        let mut len: libc::size_t = 0;
        // SAFETY: open_memstream writes the buffer's address and length through the two
        // pointers, valid for the call; the buffer is read after fclose and freed once.
        unsafe {
            let stream = libc::open_memstream(&mut buf, &mut len);
            if stream.is_null() {
                return None;
            }
            let ok = libc::malloc_info(0, stream) == 0;
            libc::fclose(stream);
            if buf.is_null() {
                return None;
            }
            let xml = std::slice::from_raw_parts(buf.cast::<u8>(), len);
            let count = String::from_utf8_lossy(xml).matches("<heap nr=").count();
            libc::free(buf.cast());
            ok.then_some(count)
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}
