//! Tests of the medium blocks (513..4096 bytes, served from runs: `size_class.rs`, `pool.rs`).

use core::alloc::{GlobalAlloc, Layout};

use super::pool::{pool_of, pool_of_any, run_of};
use super::size_class::{CLASS_RUN_TAIL, block_size, blocks_per_pool, medium_class_of};
use super::*;
use crate::config::{MEDIUM_MAX, RUN_POOLS, RUN_SIZE, SMALL_MAX};

fn in_fresh_thread<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::spawn(f).join().expect("test thread panicked")
}

fn lay(size: usize) -> Layout {
    Layout::from_size_align(size, 16).unwrap()
}

/// Every medium size: a block of ours, 16-aligned, as large as its class, writable to its end,
/// freed by layout (Rust) and by address (C).
#[test]
#[cfg_attr(
    feature = "debug",
    ignore = "the plain backend's layout and reuse order: debug mode adds guards and a quarantine"
)]
fn every_medium_size_is_served_from_our_runs() {
    in_fresh_thread(|| {
        for size in SMALL_MAX + 1..=MEDIUM_MAX {
            // SAFETY: valid layouts; each block is written within its size and freed once.
            unsafe {
                let p = ArenaAlloc.alloc(lay(size));
                assert!(!p.is_null());
                assert!(owns(p), "{size} bytes come from our arenas");
                assert_eq!(p as usize % 16, 0);
                assert_eq!(c::usable_size(p), block_size(medium_class_of(size)));
                p.write_bytes(0x5A, size);
                if size % 2 == 0 {
                    ArenaAlloc.dealloc(p, lay(size));
                } else {
                    c::free(p);
                }
            }
        }
        validate().unwrap();
    });
}

/// A run spans several pools: blocks in its later pools find the run's header, by layout and by
/// address, and its other pools' headers say so.
#[test]
#[cfg_attr(
    feature = "debug",
    ignore = "the plain backend's layout and reuse order: debug mode adds guards and a quarantine"
)]
fn blocks_past_a_runs_first_pool_find_its_header() {
    in_fresh_thread(|| {
        let size = 1024;
        let n = blocks_per_pool(medium_class_of(size));
        assert_eq!(n, RUN_SIZE / 1024);
        // SAFETY: valid layouts; blocks freed once each.
        unsafe {
            let v: Vec<*mut u8> = (0..n).map(|_| ArenaAlloc.alloc(lay(size))).collect();
            for &p in &v {
                assert!(owns(p));
                let head = pool_of_any(p);
                assert_eq!(head, run_of(p));
                if RUN_POOLS > 1 && pool_of(p) != head {
                    assert_eq!((*pool_of(p)).class(), CLASS_RUN_TAIL);
                }
                assert!((*head).is_block_start(p));
                p.write_bytes(7, size);
            }
            let run = run_of(v[0]);
            assert!(
                v.iter().all(|&p| run_of(p) == run),
                "one run serves all {n}"
            );
            // Half freed by address (C), half by layout.
            for (i, &p) in v.iter().enumerate() {
                if i % 2 == 0 {
                    c::free(p);
                } else {
                    ArenaAlloc.dealloc(p, lay(size));
                }
            }
        }
        validate().unwrap();
    });
}

/// Runs fill, empty and go back to their arenas, which `trim` unmaps: medium pools in use drop
/// back to where they were, and the validators hold throughout.
#[test]
#[cfg_attr(
    feature = "debug",
    ignore = "the plain backend's layout and reuse order: debug mode adds guards and a quarantine"
)]
fn runs_fill_empty_and_go_back() {
    in_fresh_thread(|| {
        let sizes = [600usize, 1000, 1500, 2048, 3000, 4096];
        let mut v = Vec::new();
        for i in 0..1000 * sizes.len() {
            let size = sizes[i % sizes.len()];
            // SAFETY: a valid layout.
            let p = unsafe { ArenaAlloc.alloc(lay(size)) };
            assert!(!p.is_null());
            // SAFETY: p has `size` writable bytes.
            unsafe { p.write_bytes(i as u8, size) };
            v.push((p, size, i as u8));
        }
        validate().unwrap();
        let s = stats();
        for size in sizes {
            let c = medium_class_of(size) - crate::config::NUM_CLASSES;
            assert!(
                s.medium[c].blocks_in_use >= 1000,
                "class of {size}: {:?}",
                s.medium[c]
            );
            assert!(s.medium[c].pools >= 1000 / blocks_per_pool(medium_class_of(size)));
        }
        for (p, size, b) in v {
            // SAFETY: each block is live, `size` bytes, freed once.
            unsafe {
                assert!(core::slice::from_raw_parts(p, size).iter().all(|&x| x == b));
                ArenaAlloc.dealloc(p, lay(size));
            }
        }
        validate().unwrap();
        trim();
        validate().unwrap();
    });
}

/// Medium blocks freed by other threads, and runs of a thread that exited: the remote-free
/// protocol and adoption work for runs as for pools, and no block is lost.
#[test]
#[cfg_attr(
    feature = "debug",
    ignore = "the plain backend's layout and reuse order: debug mode adds guards and a quarantine"
)]
fn medium_blocks_cross_threads_and_outlive_their_thread() {
    let blocks: Vec<usize> = in_fresh_thread(|| {
        (0..3000)
            .map(|i| {
                let size = 513 + (i * 37) % (MEDIUM_MAX - SMALL_MAX);
                // SAFETY: a valid layout; the block is written within its size.
                unsafe {
                    let p = c::malloc(size);
                    assert!(owns(p));
                    p.write_bytes(0xC3, size);
                    p as usize
                }
            })
            .collect()
    });
    // Their thread has exited: its runs are abandoned; these frees adopt them.
    let (a, b) = blocks.split_at(blocks.len() / 2);
    let (a, b) = (a.to_vec(), b.to_vec());
    let t = std::thread::spawn(move || {
        for p in a {
            // SAFETY: each block is live and freed once.
            unsafe { c::free(p as *mut u8) };
        }
        validate().unwrap();
    });
    in_fresh_thread(move || {
        for p in b {
            // SAFETY: as above.
            unsafe { c::free(p as *mut u8) };
        }
        validate().unwrap();
    });
    t.join().unwrap();
}

/// The C `free`'s check (the kind map, then `plain::unit_of` with masks) agrees with the
/// header-reading one (`pool_of_any` and `is_block_start`) at every 16-byte step of a whole
/// arena of small pools and of one of runs, wherever the headers are this thread's to read
/// (its own pools; other tests' threads change theirs meanwhile): only the starts of blocks
/// handed out pass, and they find their own header. Nothing in the header page ever passes.
#[test]
#[cfg_attr(
    feature = "debug",
    ignore = "the plain backend's layout and reuse order: debug mode adds guards and a quarantine"
)]
fn kind_map_check_agrees_with_headers_across_whole_arenas() {
    use super::addr_map::{KIND_NONE, KIND_POOLS, KIND_RUNS, kind};
    use crate::config::{ARENA_SIZE, POOL_SIZE};
    in_fresh_thread(|| {
        // SAFETY: valid layouts; blocks freed once each; every address read below is inside an
        // arena the kind map names, whose header page is mapped; the headers compared are this
        // thread's own pools', which nobody else changes.
        unsafe {
            let small: Vec<*mut u8> = (0..2000).map(|_| ArenaAlloc.alloc(lay(48))).collect();
            let medium: Vec<*mut u8> = (0..40)
                .map(|_| ArenaAlloc.alloc(lay(1024)))
                .chain((0..12).map(|_| ArenaAlloc.alloc(lay(3000))))
                .collect();
            let me = heap::ThreadHeap::tag(thread::current());
            for (blocks, want) in [(&small, KIND_POOLS), (&medium, KIND_RUNS)] {
                let arena = blocks[0] as usize & !(ARENA_SIZE - 1);
                assert_eq!(kind(blocks[0] as usize), want);
                let (mut starts, mut checked) = (0, 0);
                for a in (arena..arena + ARENA_SIZE).step_by(16) {
                    let p = a as *const u8;
                    let (pool, off) = plain::unit_of(p, want);
                    let fast = (*pool).starts_block_at(off);
                    if a < arena + POOL_SIZE {
                        assert!(!fast, "header page address {a:#x} passes");
                    } else if (*pool).owner.load(core::sync::atomic::Ordering::Relaxed) == me {
                        assert_eq!(fast, (*pool_of_any(p)).is_block_start(p), "address {a:#x}");
                        assert!(!fast || pool == pool_of_any(p));
                        checked += 1;
                        starts += usize::from(fast);
                    }
                }
                let mut ours = blocks
                    .iter()
                    .filter(|&&b| b as usize & !(ARENA_SIZE - 1) == arena);
                let n = ours.clone().count();
                assert!(ours.all(|&b| {
                    let (pool, off) = plain::unit_of(b, want);
                    (*pool).starts_block_at(off)
                }));
                assert!(
                    starts >= n && checked > 2 * starts,
                    "{starts} starts, {n} blocks"
                );
            }
            assert_eq!(kind(&small as *const _ as usize), KIND_NONE, "the stack");
            assert_eq!(kind(usize::MAX), KIND_NONE);
            // The tree, which answers outside the window, says the same.
            for &p in small.iter().chain(&medium) {
                assert_eq!(super::addr_map::kind_outside(p as usize), kind(p as usize));
            }
            assert_eq!(
                super::addr_map::kind_outside(&small as *const _ as usize),
                KIND_NONE
            );
            for p in small.into_iter().chain(medium) {
                c::free(p);
            }
            validate().unwrap();
        }
    });
}
