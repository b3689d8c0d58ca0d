//! Unit tests of the allocator's internal state machines. Each test that inspects a heap runs
//! in a fresh thread, so it starts with an empty heap of its own.

use super::arena::Arenas;
use super::plain::{small_alloc, small_free};
use super::pool::{Pool, pool_is_valid, pool_of};
use super::remote::{FULL, NORMAL};
use super::size_class::{blocks_per_pool, class_of};
use super::*;
use crate::config::{ARENA_SIZE, NUM_CLASSES, POOL_SIZE, RUN_POOLS, USABLE_POOLS};

fn in_fresh_thread<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::spawn(f).join().expect("test thread panicked")
}

fn alloc_n(size: usize, n: usize) -> Vec<usize> {
    (0..n)
        .map(|_| {
            let (b, _) = small_alloc::<false>(class_of(size));
            assert!(!b.is_null());
            b as usize
        })
        .collect()
}

fn free_all(v: &[usize]) {
    for &b in v {
        // SAFETY: every address came from small_alloc and is freed once.
        unsafe { small_free(b as *mut u8) };
    }
}

fn pool_ref(b: usize) -> &'static Pool {
    // SAFETY: b is a live block, so its pool header is live for the test's duration.
    unsafe { &*pool_of(b as *const u8) }
}

#[test]
fn blocks_are_distinct_aligned_and_inside_their_pool() {
    in_fresh_thread(|| {
        for size in [1, 16, 17, 48, 100, 256, 511, 512] {
            let v = alloc_n(size, 3 * blocks_per_pool(class_of(size)));
            let mut sorted = v.clone();
            sorted.sort_unstable();
            for w in sorted.windows(2) {
                assert!(
                    w[1] - w[0] >= block_size(class_of(size)),
                    "overlap for size {size}"
                );
            }
            for &b in &v {
                assert_eq!(b % 16, 0);
                assert!(owns(b as *const u8));
                assert!(pool_ref(b).is_block_start(b as *const u8));
            }
            validate().unwrap();
            free_all(&v);
            validate().unwrap();
        }
    });
}

#[test]
fn pool_goes_used_full_used_empty() {
    in_fresh_thread(|| {
        let size = 256;
        let per = blocks_per_pool(class_of(size));
        let v = alloc_n(size, per);
        let pool = pool_ref(v[0]);
        assert!(
            v.iter()
                .all(|&b| core::ptr::eq(pool_of(b as *const u8), pool))
        );
        assert!(pool.is_exhausted());
        assert_eq!(pool.used() as usize, per);
        // The next allocation moves the exhausted pool to the full list.
        let extra = alloc_n(size, 1);
        assert!(pool.in_full);
        assert_eq!(pool.remote.state(), FULL);
        // One local free is not enough to revive it (REVIVE_FREE_BLOCKS = 2); a second is.
        // The FULL flag stays (no atomic RMW on a purely local revival).
        free_all(&v[..1]);
        assert!(pool.in_full);
        free_all(&v[1..2]);
        assert!(!pool.in_full);
        assert_eq!(pool.remote.state(), FULL);
        // A remote free is diverted to the owner's delayed stack, whose processing clears FULL.
        let one = v[2];
        std::thread::spawn(move || free_all(&[one])).join().unwrap();
        let _again = alloc_n(size, 4); // the slow path takes the delayed free and clears FULL
        assert_eq!(pool.remote.state(), NORMAL);
        // SAFETY: this thread owns the pool.
        unsafe { pool_is_valid(pool).unwrap() };
        free_all(&v[3..]);
        free_all(&extra);
        free_all(&_again);
        validate().unwrap();
    });
}

#[test]
fn empty_pools_go_through_a_bounded_cache_in_batches() {
    use crate::config::{HEAP_CACHE_BATCH, HEAP_POOL_CACHE};
    in_fresh_thread(|| {
        let size = 512;
        let first = alloc_n(size, 1);
        // A pool starts FULL, so filling it needs no atomic read-modify-write.
        assert_eq!(pool_ref(first[0]).remote.state(), FULL);
        // The heap took its pools from the arenas a batch at a time (or adopted an abandoned
        // pool): at most one batch, less the pool in use, is cached.
        assert!(thread::cached_pools() < HEAP_CACHE_BATCH);
        let per = blocks_per_pool(class_of(size));
        let v = alloc_n(size, per * 200);
        validate().unwrap();
        free_all(&v);
        // Emptied pools were retired into the cache, and half a cache at a time went back.
        let cached = thread::cached_pools();
        assert!(
            (HEAP_POOL_CACHE / 2..=HEAP_POOL_CACHE).contains(&cached),
            "{cached} pools cached"
        );
        validate().unwrap();
        // Another class reuses them.
        let w = alloc_n(16, blocks_per_pool(0) * 8);
        assert_eq!(thread::cached_pools(), cached - 8);
        free_all(&w);
        free_all(&first);
        trim();
        assert_eq!(thread::cached_pools(), 0);
        validate().unwrap();
    });
}

#[test]
fn remote_free_into_full_pool_is_found_by_owner() {
    in_fresh_thread(|| {
        let size = 512;
        let per = blocks_per_pool(class_of(size));
        let v = alloc_n(size, per);
        let _next = alloc_n(size, 1); // pool 1 now full, on the full list
        let pool = pool_ref(v[0]);
        assert!(pool.in_full);
        let victims = v[..3].to_vec();
        std::thread::spawn(move || free_all(&victims))
            .join()
            .unwrap();
        // Still counted as used until the owner takes them.
        assert_eq!(pool.used() as usize, per);
        // The first free notified us (its block is on our delayed stack, the word is NORMAL
        // again) and the other two are on the pool's remote list: a valid state for a full pool.
        assert_eq!(pool.remote.state(), NORMAL);
        validate().unwrap();
        // The owner's slow path takes the delayed block and relinks the pool.
        let more = alloc_n(size, blocks_per_pool(class_of(size)) + 3);
        assert!(more.contains(&v[0]) || more.contains(&v[1]) || more.contains(&v[2]));
        validate().unwrap();
    });
}

/// The owner takes a notifier's block from its delayed stack before the notifier has ended the
/// notification (the word still `NOTIFYING`), and the pool, with one free block, stays full.
/// Marking it full must wait for the notification to end: the word then reads `FULL` and the
/// next remote free notifies the owner again. (Taking `NOTIFYING` as "a block is on its way"
/// left the word `NORMAL` after `end_notify`, and later frees went to a list nobody watched.)
#[test]
fn owner_waits_out_a_notification_it_has_already_received() {
    use super::heap::ThreadHeap;
    use super::remote::{Block, PushOutcome};
    in_fresh_thread(|| {
        let size = 512;
        let per = blocks_per_pool(class_of(size));
        let v = alloc_n(size, per);
        let next = alloc_n(size, 1); // the first pool is full now, off the lists
        let pool = pool_ref(v[0]);
        assert!(pool.in_full);
        assert_eq!(pool.remote.state(), FULL);
        let owner = thread::current() as usize;
        let (b1, b2) = (v[0], v[1]);
        let (tx, rx) = std::sync::mpsc::channel();
        let notifier = std::thread::spawn(move || {
            let pool = pool_ref(b1);
            // free_remote's notification, held open between its two steps.
            // SAFETY: b1 is a live block of the pool, given up here (marked free first, as
            // every free does on entry).
            let outcome = unsafe {
                super::harden::mark_remote(b1 as *mut u8, super::harden::key());
                pool.remote.push(b1 as *mut Block)
            };
            assert_eq!(outcome, PushOutcome::Notify);
            // SAFETY: the owner's heap is live (its thread waits for us); b1 is ours to hand on.
            unsafe { (*(owner as *mut ThreadHeap)).delayed.push(b1 as *mut Block) };
            tx.send(()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
            pool.remote.end_notify();
        });
        rx.recv().unwrap();
        trim(); // takes b1 while the word is still NOTIFYING; the pool stays full
        notifier.join().unwrap();
        assert!(pool.in_full);
        assert_eq!(
            pool.remote.state(),
            FULL,
            "the next remote free must notify"
        );
        validate().unwrap();
        std::thread::spawn(move || free_all(&[b2])).join().unwrap();
        validate().unwrap();
        free_all(&v[2..]);
        free_all(&next);
        trim();
        validate().unwrap();
    });
}

#[test]
fn address_map_knows_our_blocks_and_nothing_else() {
    let v = in_fresh_thread(|| alloc_n(48, 1000));
    assert!(v.iter().all(|&b| owns(b as *const u8)));
    let local = 5u64;
    static STATIC: u64 = 7;
    assert!(!owns(&local as *const u64 as *const u8), "stack");
    assert!(!owns(&STATIC as *const u64 as *const u8), "static");
    // SAFETY: plain libc allocation and free.
    unsafe {
        let m = libc::malloc(64) as *const u8;
        assert!(!owns(m), "libc heap");
        libc::free(m as *mut libc::c_void);
    }
    let mm = os::reserve_table(1 << 20);
    assert!(!owns(mm), "mmap'd memory");
    assert!(!owns(core::ptr::null()));
    assert!(!owns(usize::MAX as *const u8));
    let large = large::alloc(4096, 16, false);
    assert!(!owns(large), "system-allocator block");
    // SAFETY: large came from large::alloc.
    unsafe { large::free(large) };
    in_fresh_thread(move || free_all(&v));
}

#[test]
fn arena_buckets_prefer_fullest_and_release_when_free() {
    let mut a = Arenas::<1>::new(false);
    a.set_purge_delay(0); // unmap at once (the delayed purge has its own test)
    let mut pools = Vec::new();
    for _ in 0..USABLE_POOLS + 10 {
        pools.push(a.alloc_pool().unwrap());
        a.arenas_are_valid().unwrap();
    }
    assert_eq!(a.counters.current, 2);
    assert!(pools[..USABLE_POOLS].iter().all(|p| p.fresh));
    let first_arena = pools[0].pool as usize & !(ARENA_SIZE - 1);
    let second_arena = pools[USABLE_POOLS].pool as usize & !(ARENA_SIZE - 1);
    assert_ne!(first_arena, second_arena);
    // Free 20 pools of the first arena and 1 of the second: new pools come from the fuller one.
    for p in &pools[..20] {
        // SAFETY: fresh pools were never initialized; retiring means "not in use", already true.
        unsafe { a.free_pool(p.pool) };
    }
    // SAFETY: as above.
    unsafe { a.free_pool(pools[USABLE_POOLS].pool) };
    a.arenas_are_valid().unwrap();
    let np = a.alloc_pool().unwrap();
    assert_eq!(
        np.pool as usize & !(ARENA_SIZE - 1),
        first_arena,
        "first arena has fewer free pools"
    );
    assert!(!np.fresh, "reused pool is not known zero");
    // Free everything: one arena is kept as a spare, the other released.
    // SAFETY: as above.
    unsafe {
        a.free_pool(np.pool);
        for p in &pools[20..USABLE_POOLS] {
            a.free_pool(p.pool);
        }
        for p in &pools[USABLE_POOLS + 1..] {
            a.free_pool(p.pool);
        }
    }
    a.arenas_are_valid().unwrap();
    assert_eq!(a.counters.allocated_total, 2);
    assert_eq!(a.counters.released_total, 1);
    assert_eq!(a.counters.current, 1);
    assert_eq!(a.counters.peak, 2);
    // The spare stays committed and is reused without a new mapping.
    let np = a.alloc_pool().unwrap();
    let spare = np.pool as usize & !(ARENA_SIZE - 1);
    assert!(
        spare == first_arena || spare == second_arena,
        "new pool from the kept spare"
    );
    assert_eq!(
        a.counters.allocated_total, 2,
        "spare reused, no new mapping"
    );
    // SAFETY: as above.
    unsafe { a.free_pool(np.pool) };
    let _ = POOL_SIZE;
}

#[test]
fn free_arenas_wait_out_the_purge_delay() {
    // No test depends on being fast: a delay that cannot expire, then one that a sleep exceeds.
    let mut a = Arenas::<1>::new(false);
    a.set_purge_delay(1_000_000);
    let take_arena = |a: &mut Arenas<1>| -> Vec<*mut Pool> {
        // Every pool of one arena (hardened mode keeps one as a guard).
        (0..Arenas::<1>::full())
            .map(|_| a.alloc_pool().unwrap().pool)
            .collect()
    };
    let (x, y, z) = (take_arena(&mut a), take_arena(&mut a), take_arena(&mut a));
    assert_eq!(a.counters.current, 3);
    // SAFETY: the pools were never initialized, so they are not in use.
    let give_back = |a: &mut Arenas<1>, v: &[*mut Pool]| unsafe {
        for &p in v {
            a.free_pool(p);
        }
    };
    // Two arenas become free: both stay mapped (one spare, one waiting out the delay).
    give_back(&mut a, &x);
    give_back(&mut a, &y);
    a.arenas_are_valid().unwrap();
    assert_eq!(a.free_arenas(), 2);
    assert_eq!(a.counters.released_total, 0);
    // Taken again within the delay: the same arena, no new mapping.
    let again = take_arena(&mut a);
    assert_eq!(a.counters.allocated_total, 3, "a free arena was reused");
    assert_eq!(a.free_arenas(), 1);
    give_back(&mut a, &again);
    // After the delay, the next arena event unmaps every expired arena but the newest spare.
    a.set_purge_delay(5);
    std::thread::sleep(std::time::Duration::from_millis(30));
    give_back(&mut a, &z);
    a.arenas_are_valid().unwrap();
    assert_eq!(a.counters.released_total, 2, "expired arenas unmapped");
    assert_eq!(a.free_arenas(), 1, "the newest is kept as the spare");
    assert_eq!(a.counters.current, 1);
    // purge(force) (trim) does not touch the spare.
    a.purge(true);
    assert_eq!(a.counters.current, 1);
    // A forced purge unmaps arenas still inside the delay.
    a.set_purge_delay(1_000_000);
    let (p, q) = (take_arena(&mut a), take_arena(&mut a));
    give_back(&mut a, &p);
    give_back(&mut a, &q);
    assert_eq!(a.free_arenas(), 2);
    a.purge(false);
    assert_eq!(a.free_arenas(), 2, "not yet expired");
    a.purge(true);
    assert_eq!(a.free_arenas(), 1);
    a.arenas_are_valid().unwrap();
}

#[test]
fn block_start_check_rejects_interior_pointers() {
    in_fresh_thread(|| {
        for size in [16, 48, 112, 512] {
            let v = alloc_n(size, 5);
            let p = pool_ref(v[0]);
            for &b in &v {
                assert!(
                    p.is_block_start(b as *const u8) || !core::ptr::eq(pool_of(b as *const u8), p)
                );
                for off in [1, 8, 16, size - 16] {
                    if off > 0 && off < size {
                        assert!(
                            !pool_ref(b).is_block_start((b + off) as *const u8),
                            "size {size} off {off}"
                        );
                    }
                }
            }
            assert!(
                !p.is_block_start(p as *const Pool as *const u8),
                "pool header"
            );
            free_all(&v);
        }
    });
}

#[test]
#[cfg_attr(
    feature = "debug",
    ignore = "the plain backend's layout and reuse order: debug mode adds guards and a quarantine"
)]
fn stats_arithmetic_is_consistent() {
    in_fresh_thread(|| {
        let before = stats();
        let v = alloc_n(100, 1000); // class 6 (112 bytes)
        // A medium block, so a run arena exists: its pools past the last whole run were once
        // counted as three 16-byte pools (`ArenaDesc::touched_pools`).
        let layout = core::alloc::Layout::from_size_align(3000, 8).unwrap();
        // SAFETY: plain GlobalAlloc use with a valid layout, freed below with it.
        let medium = unsafe { ArenaAlloc.alloc(layout) };
        assert!(owns(medium));
        let s = stats();
        let c = class_of(100);
        // Other tests allocate and free concurrently, so only a lower bound is exact here
        // (tests/remote_no_leak.rs checks exact counts in a process of its own).
        assert!(
            s.classes[c].blocks_in_use >= 1000,
            "our 1000 blocks are in use"
        );
        let _ = before;
        for (class, cs) in s.all_classes().enumerate() {
            assert_eq!(
                cs.blocks_in_use + cs.blocks_free,
                cs.pools * blocks_per_pool(class)
            );
        }
        assert_eq!(
            s.bytes_in_use(),
            s.all_classes()
                .map(|c| c.blocks_in_use * c.block_size)
                .sum::<usize>()
        );
        assert!(s.arenas.current <= s.arenas.peak && s.arenas.peak <= s.arenas.allocated_total);
        assert_eq!(
            s.arenas.allocated_total - s.arenas.released_total,
            s.arenas.current
        );
        // Every pool is counted once: in use for a class, or free (in its arena or retired in
        // a heap's cache). The snapshot is taken under the global lock, and pools change
        // between the two states only under it or while retired.
        // (A run is RUN_POOLS pools; run arenas hold a few pools past their last run.)
        let pools_taken: usize = s
            .all_classes()
            .enumerate()
            .map(|(i, c)| c.pools * if i < NUM_CLASSES { 1 } else { RUN_POOLS })
            .sum();
        assert_eq!(pools_taken + s.pools_free, s.pool_capacity);
        assert!(s.pool_capacity <= s.arenas.current as usize * USABLE_POOLS);
        let text = s.to_string();
        assert!(text.contains("# arenas allocated current"));
        assert!(text.contains("blocks in use"));
        free_all(&v);
        // SAFETY: allocated above with this layout.
        unsafe { ArenaAlloc.dealloc(medium, layout) };
    });
}

#[test]
#[cfg_attr(
    feature = "debug",
    ignore = "the plain backend's layout and reuse order: debug mode adds guards and a quarantine"
)]
fn zeroed_allocation_is_zero_even_for_reused_blocks() {
    in_fresh_thread(|| {
        let layout = core::alloc::Layout::from_size_align(200, 8).unwrap();
        // SAFETY: plain GlobalAlloc use with a valid layout.
        unsafe {
            let a = ArenaAlloc.alloc(layout);
            a.write_bytes(0xAB, 200);
            ArenaAlloc.dealloc(a, layout);
            let b = ArenaAlloc.alloc_zeroed(layout);
            assert_eq!(a, b, "LIFO reuse");
            assert!(core::slice::from_raw_parts(b, 200).iter().all(|&x| x == 0));
            ArenaAlloc.dealloc(b, layout);
        }
    });
}

#[test]
#[cfg_attr(
    feature = "debug",
    ignore = "the plain backend's layout and reuse order: debug mode adds guards and a quarantine"
)]
#[cfg_attr(
    feature = "secure",
    ignore = "hardened mode's realloc always moves, so the old block is cleared"
)]
fn realloc_in_place_within_class_and_across_the_boundary() {
    in_fresh_thread(|| {
        let l = |s| core::alloc::Layout::from_size_align(s, 8).unwrap();
        // SAFETY: plain GlobalAlloc use with valid layouts; each pointer is used per its layout.
        unsafe {
            let p = ArenaAlloc.alloc(l(20));
            p.write_bytes(1, 20);
            let q = ArenaAlloc.realloc(p, l(20), 30);
            assert_eq!(p, q, "20 -> 30 stays in class 32");
            // Across the small/medium line (both ours), then the medium/large one.
            let m = ArenaAlloc.realloc(q, l(30), 1000);
            assert!(owns(m), "1000 bytes are a medium block");
            assert!(core::slice::from_raw_parts(m, 20).iter().all(|&x| x == 1));
            let m2 = ArenaAlloc.realloc(m, l(1000), 1020);
            assert_eq!(m, m2, "1000 -> 1020 stays in the medium class 1024");
            let r = ArenaAlloc.realloc(m2, l(1020), 5000);
            assert!(!owns(r));
            assert!(core::slice::from_raw_parts(r, 20).iter().all(|&x| x == 1));
            let s = ArenaAlloc.realloc(r, l(5000), 40);
            assert!(owns(s));
            assert!(core::slice::from_raw_parts(s, 20).iter().all(|&x| x == 1));
            ArenaAlloc.dealloc(s, l(40));
        }
    });
}

#[test]
fn pooled_is_small_or_medium() {
    use super::size_class::{is_medium, is_small};
    for size in 0..=crate::config::MEDIUM_MAX + 64 {
        for shift in 0..13 {
            let align = 1usize << shift;
            assert_eq!(
                super::plain::is_pooled(size, align),
                is_small(size, align) || is_medium(size, align),
                "size {size} align {align}"
            );
        }
    }
}
