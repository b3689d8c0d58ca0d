//! The workloads of `benches/icount/run.sh`: each runs `N` operations of one kind with
//! `ArenaAlloc` as the global allocator, so that valgrind's callgrind can count the instructions
//! (a count does not depend on the machine's load, unlike a time). Usage: `probe WORKLOAD N`.
//! The script runs each workload with N and with 0 and divides the difference by N.

use arenagc::ArenaAlloc;
use arenagc::gc::{self};
use arenagc::{Gc, GcCell, Trace};
use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;

#[global_allocator]
static GLOBAL: ArenaAlloc = ArenaAlloc;

#[derive(Trace)]
struct Node {
    next: GcCell<Option<Gc<Node>>>,
}

fn hot_pair(size: usize, n: usize) {
    let l = Layout::from_size_align(size, 8).unwrap();
    for _ in 0..n {
        // SAFETY: a valid non-zero layout; the block is freed with it.
        unsafe {
            let p = GLOBAL.alloc(black_box(l));
            black_box(p);
            GLOBAL.dealloc(p, l);
        }
    }
}

fn batch(n: usize) {
    let l = Layout::from_size_align(64, 8).unwrap();
    let mut v = Vec::with_capacity(1000);
    for _ in 0..n {
        for _ in 0..1000 {
            // SAFETY: as above.
            v.push(unsafe { GLOBAL.alloc(l) });
        }
        for p in v.drain(..) {
            // SAFETY: as above.
            unsafe { GLOBAL.dealloc(p, l) };
        }
    }
}

fn c_pair(size: usize, n: usize) {
    for _ in 0..n {
        let p = arenagc::alloc::c::malloc(black_box(size));
        // SAFETY: p came from malloc.
        unsafe { arenagc::alloc::c::free(black_box(p)) };
    }
}

fn random_replace(n: usize) {
    const LIVE: usize = 10_000;
    let mut slots: Vec<(usize, *mut u8)> = Vec::with_capacity(LIVE);
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as usize
    };
    let mk = |size: usize| {
        // SAFETY: a valid non-zero layout.
        unsafe { GLOBAL.alloc(Layout::from_size_align(size, 8).unwrap()) }
    };
    for _ in 0..LIVE {
        let s = 16 + next() % 497;
        slots.push((s, mk(s)));
    }
    for _ in 0..n {
        let i = next() % LIVE;
        let (s, p) = slots[i];
        // SAFETY: p is live with that size.
        unsafe { GLOBAL.dealloc(p, Layout::from_size_align(s, 8).unwrap()) };
        let s = 16 + next() % 497;
        slots[i] = (s, mk(s));
    }
    for (s, p) in slots {
        // SAFETY: as above.
        unsafe { GLOBAL.dealloc(p, Layout::from_size_align(s, 8).unwrap()) };
    }
}

/// C's malloc/free with larson's sizes (8..1000 bytes, so half the blocks are medium) in 1000
/// slots, one replacement per operation.
fn c_mixed(n: usize) {
    const LIVE: usize = 1000;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as usize
    };
    let mut slots: Vec<*mut u8> = (0..LIVE)
        .map(|_| arenagc::alloc::c::malloc(8 + next() % 993))
        .collect();
    for _ in 0..n {
        let i = next() % LIVE;
        // SAFETY: slots[i] came from malloc and is freed once.
        unsafe { arenagc::alloc::c::free(slots[i]) };
        slots[i] = arenagc::alloc::c::malloc(8 + next() % 993);
    }
    for p in slots {
        // SAFETY: as above.
        unsafe { arenagc::alloc::c::free(p) };
    }
}

fn gc_new_drop(n: usize) {
    for _ in 0..n {
        let a = Gc::new(Node {
            next: GcCell::new(None),
        });
        let b = a.clone();
        drop(black_box(a));
        drop(black_box(b));
    }
}

fn gc_cycles(n: usize) {
    gc::disable();
    for _ in 0..n {
        let a = Gc::new(Node {
            next: GcCell::new(None),
        });
        let b = Gc::new(Node {
            next: GcCell::new(Some(a.clone())),
        });
        *a.next.borrow_mut() = Some(b);
    }
    gc::collect(2).unwrap();
}

/// `n` two-object garbage cycles, automatic collection off; collected when `collect`.
/// `gc_collect_garbage` minus `gc_make_garbage` is the collection alone (per object: / 2n).
fn gc_garbage(n: usize, collect: bool) {
    gc::disable();
    for _ in 0..n {
        let a = Gc::new(Node {
            next: GcCell::new(None),
        });
        let b = Gc::new(Node {
            next: GcCell::new(Some(a.clone())),
        });
        *a.next.borrow_mut() = Some(b);
    }
    if collect {
        gc::collect(2).unwrap();
    }
}

/// Full collections over `n` live pairs (2n live tracked objects): one to settle them in the
/// oldest generation, then `FULL_REPEAT` more when `more`. `gc_full_collect` minus
/// `gc_full_setup` is `FULL_REPEAT` full collections (per live object: / (FULL_REPEAT * 2n)).
fn gc_full(n: usize, more: bool) {
    gc::disable();
    let live: Vec<_> = (0..n)
        .map(|_| {
            let a = Gc::new(Node {
                next: GcCell::new(None),
            });
            let b = Gc::new(Node {
                next: GcCell::new(Some(a.clone())),
            });
            *a.next.borrow_mut() = Some(b);
            a
        })
        .collect();
    gc::collect(2).unwrap();
    if more {
        for _ in 0..FULL_REPEAT {
            gc::collect(2).unwrap();
        }
    }
    black_box(&live);
    std::mem::forget(live);
}

/// Full collections `gc_full_collect` runs after the first.
const FULL_REPEAT: usize = 3;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args[2].parse().unwrap();
    match args[1].as_str() {
        "hot_pair_16" => hot_pair(16, n),
        "hot_pair_64" => hot_pair(64, n),
        "hot_pair_256" => hot_pair(256, n),
        "hot_pair_1024" => hot_pair(1024, n),
        "c_pair_48" => c_pair(48, n),
        "batch_1000x64" => batch(n),
        "random_replace" => random_replace(n),
        "c_mixed" => c_mixed(n),
        "gc_new_clone_drop" => gc_new_drop(n),
        "gc_collect_cycles" => gc_cycles(n),
        "gc_make_garbage" => gc_garbage(n, false),
        "gc_collect_garbage" => gc_garbage(n, true),
        "gc_full_setup" => gc_full(n, false),
        "gc_full_collect" => gc_full(n, true),
        w => panic!("unknown workload {w}"),
    }
}
