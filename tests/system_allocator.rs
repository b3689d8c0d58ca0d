//! The system allocator behind the large blocks: `alloc::tune_system_allocator` (what the
//! malloc replacement does at load) keeps freed memory at the top of glibc's heap, and
//! `alloc::trim` gives it back (`malloc_trim`). Its own binary, `harness = false`: it changes
//! glibc's process-wide thresholds, and it must run on the main thread, whose blocks come from
//! glibc's main heap (the one `mallinfo2().keepcost` describes). Prints `N passed, N failed`.

use arenagc::ArenaAlloc;
use core::alloc::{GlobalAlloc, Layout};

/// Bytes free at the top of glibc's main heap.
fn heap_top_free() -> usize {
    // SAFETY: mallinfo2 has no preconditions.
    unsafe { libc::mallinfo2() }.keepcost
}

fn main() {
    tuned_glibc_keeps_freed_large_blocks_until_trim();
    println!("test tuned_glibc_keeps_freed_large_blocks_until_trim ... ok\n\n1 passed, 0 failed");
}

fn tuned_glibc_keeps_freed_large_blocks_until_trim() {
    // SAFETY: none of these variables is set by the test runner.
    unsafe {
        std::env::remove_var("MALLOC_TRIM_THRESHOLD_");
        std::env::remove_var("MALLOC_MMAP_THRESHOLD_");
        std::env::remove_var("GLIBC_TUNABLES");
    }
    assert!(arenagc::alloc::tune_system_allocator());
    // 2 MB of 100 kB blocks: large (from glibc), below its mmap threshold, above its tcache.
    let l = Layout::from_size_align(100_000, 16).unwrap();
    // SAFETY: valid layout; each block is written within its size and freed once below.
    let blocks: Vec<*mut u8> = (0..20)
        .map(|i| unsafe {
            let p = ArenaAlloc.alloc(l);
            assert!(!p.is_null());
            p.write_bytes(i, l.size());
            p
        })
        .collect();
    for &p in blocks.iter().rev() {
        // SAFETY: p is live with layout l.
        unsafe { ArenaAlloc.dealloc(p, l) };
    }
    let kept = heap_top_free();
    assert!(
        kept >= 1 << 20,
        "glibc trimmed its heap top to {kept} bytes"
    );
    arenagc::alloc::trim();
    let after = heap_top_free();
    assert!(
        after < 256 << 10,
        "trim left {after} bytes at glibc's heap top"
    );
}
