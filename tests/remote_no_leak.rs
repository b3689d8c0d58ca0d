//! Exact block accounting across threads, in a binary of its own (its global allocator is the
//! system's, and its two tests use different size classes), so no other test's allocations
//! enter the figures:
//! - no leak when every free is remote;
//! - a thread that exits with live blocks abandons its pools (the blocks stay counted), and
//!   another thread that frees them adopts and empties those pools.

use arenagc::ArenaAlloc;
use arenagc::alloc::stats;
use core::alloc::{GlobalAlloc, Layout};

fn alloc_n(l: Layout, n: usize) -> Vec<usize> {
    // SAFETY: valid layout.
    (0..n)
        .map(|_| unsafe { ArenaAlloc.alloc(l) } as usize)
        .collect()
}

fn free_all(l: Layout, v: &[usize]) {
    for &p in v {
        // SAFETY: each block is live with layout l and freed once.
        unsafe { ArenaAlloc.dealloc(p as *mut u8, l) };
    }
}

#[test]
fn all_remote_frees_leak_nothing() {
    let l = Layout::from_size_align(32, 8).unwrap();
    let class = arenagc::alloc::class_of(32);
    let before = stats().classes[class].blocks_in_use;
    std::thread::spawn(move || {
        let v = alloc_n(l, 10_000);
        std::thread::spawn(move || free_all(l, &v)).join().unwrap();
        // The owner takes its remote frees on its next slow paths.
        let again = alloc_n(l, 10_000);
        free_all(l, &again);
    })
    .join()
    .unwrap();
    let after = stats();
    assert_eq!(
        after.classes[class].blocks_in_use, before,
        "blocks leaked\n{after}"
    );
}

#[test]
fn abandoned_pools_are_adopted_and_emptied() {
    let l = Layout::from_size_align(64, 8).unwrap();
    let class = arenagc::alloc::class_of(64);
    let before = stats().classes[class].blocks_in_use;
    let v = std::thread::spawn(move || alloc_n(l, 5_000))
        .join()
        .unwrap();
    // The allocating thread has exited: its pools are abandoned, the blocks still in use.
    assert_eq!(stats().classes[class].blocks_in_use, before + 5_000);
    std::thread::spawn(move || {
        free_all(l, &v);
        arenagc::alloc::validate().unwrap();
    })
    .join()
    .unwrap();
    let after = stats();
    assert_eq!(
        after.classes[class].blocks_in_use, before,
        "blocks leaked\n{after}"
    );
}
