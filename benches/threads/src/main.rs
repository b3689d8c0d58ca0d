//! Multi-threaded allocator benchmarks (they are benchmarks, not tests): five workload shapes from
//! the allocator literature, each at several thread counts, for arenagc, glibc, mimalloc and
//! jemalloc, all called through `&dyn GlobalAlloc` in one process and **interleaved**: for every
//! shape and thread count, each round runs every allocator once (the order rotates by round), and
//! the table reports medians over the rounds and ratios of medians.
//!
//! ```sh
//! cargo run --release --manifest-path benches/threads/Cargo.toml
//! ROUNDS=3 THREADS=1,4 SHAPES=larson,rptest cargo run --release --manifest-path benches/threads/Cargo.toml
//! ```
//!
//! Environment: `ROUNDS` (default 5), `THREADS` (default `1,2,4,8,16`), `SHAPES` (default
//! `larson,rptest,glibc-thread,alloc-test,large`), `ALLOCS` (default
//! `arenagc,glibc,mimalloc,jemalloc`), `DURATION` (seconds per run of a time-based shape, default
//! 0.3), `LARGE_THREADS` (thread counts of the `large` shape, default `1`), `WATCHDOG` (seconds
//! one run may take before the process aborts naming it, default 120).
//!
//! Shapes (the C version, `ffi/bench/threads.c`, runs the same ones under `LD_PRELOAD`):
//! - `larson`: Larson & Krishnan's server benchmark. Each of T lanes owns 1000 slots of blocks of
//!   8..=1000 bytes (about half above 512), first filled by the main thread. A lane's thread does
//!   [`LARSON_OPS`] operations "free a random slot's block, allocate a new random-size one into
//!   it", then starts its successor, which takes the slots over (it frees the blocks its
//!   predecessor allocated), and exits. Fixed time; throughput in operations per second.
//! - `rptest`: rpmalloc's benchmark in spirit. T lanes; each thread keeps a working set of 1000
//!   blocks of 16..=1000 bytes, replaces a random one per operation and hands a quarter of the
//!   blocks it drops to a random other lane (batches of 32 through a mutex-protected inbox; the
//!   receiver frees them). A thread lives a random number of operations (1/4 to 7/4 of
//!   [`RP_LIFE`], so restarts are staggered), then hands its whole working set to other lanes and
//!   starts its successor. Fixed time; operations per second.
//! - `glibc-thread`: glibc's `benchtests/bench-malloc-thread.c`. Each thread replaces a block in
//!   a random one of 1024 slots with a new one whose size (4..=32768 bytes) follows glibc's
//!   inverse-square distribution (99% at most 512 bytes); all local. Fixed time; operations per
//!   second.
//! - `alloc-test`: many threads allocating and freeing locally, as in mimalloc-bench's
//!   alloc-testN. Each thread has 2048 slots; an operation picks a random slot and frees its
//!   block if it holds one, else allocates one there (16..=512 bytes, one in 16 from 513..=4096).
//!   Fixed total work ([`ALLOC_TEST_OPS`] operations split among the T threads); milliseconds.
//! - `large`: mimalloc-bench's malloc-large. One thread keeps 20 slots and replaces a random one
//!   with a new block of 5..=25 MiB, [`LARGE_ITERS`] times; milliseconds. It runs at the thread
//!   counts of `LARGE_THREADS` (default `1`, the original; with T > 1 each thread has its own 20
//!   slots and the iterations are split among them).
//!
//! Every new block gets its first and last byte written (a tag derived from its size), and both
//! are checked before the block is freed: a mismatch aborts with the block's address and size.

use arenagc::ArenaAlloc;
use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

type Alloc = &'static (dyn GlobalAlloc + Sync);

/// arenagc, the system allocator (glibc), mimalloc and jemalloc, as in `benches/common/mod.rs`.
fn allocators() -> Vec<(&'static str, Alloc)> {
    static MI: mimalloc::MiMalloc = mimalloc::MiMalloc;
    static JE: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
    static SYS: std::alloc::System = std::alloc::System;
    static ARENA: ArenaAlloc = ArenaAlloc;
    vec![
        ("arenagc", &ARENA),
        ("glibc", &SYS),
        ("mimalloc", &MI),
        ("jemalloc", &JE),
    ]
}

/// Operations per larson thread before it hands its slots to a successor (larson's default is
/// 100 times the slot count; with 1000 slots, 100k).
const LARSON_OPS: u64 = 100_000;
const LARSON_SLOTS: usize = 1000;
/// Mean lifetime of an rptest thread, in operations.
const RP_LIFE: u64 = 50_000;
const RP_SLOTS: usize = 1000;
const RP_BATCH: usize = 32;
/// Capacity of an rptest inbox; a batch that does not fit is freed by its sender.
const RP_INBOX: usize = 16 * 1024;
const GT_SLOTS: usize = 1024;
const AT_SLOTS: usize = 2048;
const ALLOC_TEST_OPS: u64 = 8_000_000;
const LARGE_SLOTS: usize = 20;
const LARGE_ITERS: u64 = 3000;

/// xorshift64, seeded through splitmix64 so that small seeds give unrelated streams.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    #[inline]
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A live block and its size (its layout is `lay(size)`); null for an empty slot.
#[derive(Clone, Copy)]
struct Blk {
    p: *mut u8,
    size: usize,
}

// SAFETY: a block is plain memory owned by whoever holds the `Blk`; it moves between threads
// whole, and every allocator compared allows freeing from any thread.
unsafe impl Send for Blk {}

const EMPTY: Blk = Blk {
    p: std::ptr::null_mut(),
    size: 0,
};

#[inline]
fn lay(size: usize) -> Layout {
    // SAFETY: size >= 1 and far below isize::MAX; 8 is a power of two.
    unsafe { Layout::from_size_align_unchecked(size, 8) }
}

#[inline]
fn tags(size: usize) -> (u8, u8) {
    (size as u8 ^ 0xA5, (size >> 8) as u8 ^ 0x5A)
}

/// Allocates `size` bytes (at least 2) from `a` and writes its first and last byte.
#[inline]
fn new_blk(a: Alloc, size: usize) -> Blk {
    // SAFETY: a valid layout of nonzero size; the writes are inside the block.
    unsafe {
        let p = a.alloc(lay(size));
        if p.is_null() {
            std::alloc::handle_alloc_error(lay(size));
        }
        let (first, last) = tags(size);
        p.write(first);
        p.add(size - 1).write(last);
        Blk { p, size }
    }
}

/// Checks the tags `new_blk` wrote and frees the block (nothing for an empty slot).
#[inline]
fn free_blk(a: Alloc, b: Blk) {
    if b.p.is_null() {
        return;
    }
    let (first, last) = tags(b.size);
    // SAFETY: b came from new_blk on `a` and is freed once (every slot is emptied or overwritten
    // when its block is freed or handed on).
    unsafe {
        if b.p.read() != first || b.p.add(b.size - 1).read() != last {
            eprintln!(
                "corrupt block {:p} of {} bytes: tags {:#x} {:#x}, expected {first:#x} {last:#x}",
                b.p,
                b.size,
                b.p.read(),
                b.p.add(b.size - 1).read()
            );
            std::process::abort();
        }
        a.dealloc(b.p, lay(b.size));
    }
}

// ---------------------------------------------------------------------------------------------
// larson

struct LarsonLane {
    slots: Vec<Blk>,
    rng: Rng,
    ops: u64,
}

enum LarsonChain {
    Next(JoinHandle<LarsonChain>),
    Done(Box<LarsonLane>),
}

fn larson_spawn(a: Alloc, lane: Box<LarsonLane>, stop: Arc<AtomicBool>) -> JoinHandle<LarsonChain> {
    thread::spawn(move || larson_thread(a, lane, stop))
}

fn larson_thread(a: Alloc, mut lane: Box<LarsonLane>, stop: Arc<AtomicBool>) -> LarsonChain {
    let n = lane.slots.len() as u64;
    let mut done = 0;
    while done < LARSON_OPS && !stop.load(Relaxed) {
        let r = lane.rng.next();
        let k = (r % n) as usize;
        let size = 8 + ((r >> 32) % 993) as usize;
        free_blk(a, lane.slots[k]);
        lane.slots[k] = new_blk(a, size);
        done += 1;
    }
    lane.ops += done;
    if stop.load(Relaxed) {
        LarsonChain::Done(lane)
    } else {
        // As larson does: the dying thread starts its successor, which takes the slots over.
        LarsonChain::Next(larson_spawn(a, lane, stop))
    }
}

/// Operations per second.
fn larson(a: Alloc, t: usize, d: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    // The main thread fills every lane first, as larson's warm-up does.
    let lanes: Vec<Box<LarsonLane>> = (0..t)
        .map(|i| {
            let mut rng = Rng::new(0x1a25 + i as u64);
            let slots = (0..LARSON_SLOTS)
                .map(|_| new_blk(a, 8 + (rng.next() % 993) as usize))
                .collect();
            Box::new(LarsonLane { slots, rng, ops: 0 })
        })
        .collect();
    let start = Instant::now();
    let heads: Vec<_> = lanes
        .into_iter()
        .map(|l| larson_spawn(a, l, stop.clone()))
        .collect();
    thread::sleep(d);
    stop.store(true, Relaxed);
    let mut back = Vec::new();
    for mut h in heads {
        loop {
            match h.join().expect("larson thread panicked") {
                LarsonChain::Next(n) => h = n,
                LarsonChain::Done(l) => {
                    back.push(l);
                    break;
                }
            }
        }
    }
    let elapsed = start.elapsed();
    let ops: u64 = back.iter().map(|l| l.ops).sum();
    for l in back {
        for &b in &l.slots {
            free_blk(a, b);
        }
    }
    ops as f64 / elapsed.as_secs_f64()
}

// ---------------------------------------------------------------------------------------------
// rptest

struct RpShared {
    inbox: Vec<Mutex<Vec<Blk>>>,
    stop: AtomicBool,
    ops: AtomicU64,
}

struct RpLane {
    idx: usize,
    work: Vec<Blk>,
    out: Vec<Vec<Blk>>,
    recv: Vec<Blk>,
    rng: Rng,
}

enum RpChain {
    Next(JoinHandle<RpChain>),
    Done,
}

impl RpLane {
    /// Frees every block waiting in this lane's inbox.
    fn drain(&mut self, a: Alloc, sh: &RpShared) {
        {
            let mut q = sh.inbox[self.idx].lock().unwrap();
            if q.is_empty() {
                return;
            }
            std::mem::swap(&mut *q, &mut self.recv); // both have capacity RP_INBOX
        }
        for b in self.recv.drain(..) {
            free_blk(a, b);
        }
    }

    /// Hands `b` to a random other lane (to itself when it is the only one).
    fn send(&mut self, a: Alloc, sh: &RpShared, b: Blk, r: u64) {
        let t = sh.inbox.len();
        let dest = if t == 1 {
            0
        } else {
            (self.idx + 1 + (r % (t as u64 - 1)) as usize) % t
        };
        self.out[dest].push(b);
        if self.out[dest].len() == RP_BATCH {
            self.flush(a, sh, dest);
        }
    }

    fn flush(&mut self, a: Alloc, sh: &RpShared, dest: usize) {
        let out = &mut self.out[dest];
        if out.is_empty() {
            return;
        }
        {
            let mut q = sh.inbox[dest].lock().unwrap();
            let n = out.len().min(RP_INBOX - q.len());
            q.extend(out.drain(..n)); // within capacity: no allocation
        }
        for b in out.drain(..) {
            free_blk(a, b); // the inbox was full
        }
    }
}

fn rp_spawn(a: Alloc, lane: Box<RpLane>, sh: Arc<RpShared>) -> JoinHandle<RpChain> {
    thread::spawn(move || rp_thread(a, lane, sh))
}

fn rp_thread(a: Alloc, mut lane: Box<RpLane>, sh: Arc<RpShared>) -> RpChain {
    let life = RP_LIFE / 4 + lane.rng.next() % (RP_LIFE * 3 / 2);
    let mut done = 0;
    while done < life && !sh.stop.load(Relaxed) {
        if done % 64 == 0 {
            lane.drain(a, &sh);
        }
        let r = lane.rng.next();
        let k = (r % RP_SLOTS as u64) as usize;
        let size = 16 + ((r >> 32) % 985) as usize;
        let old = std::mem::replace(&mut lane.work[k], new_blk(a, size));
        if !old.p.is_null() {
            if (r >> 20) & 3 == 0 {
                lane.send(a, &sh, old, r >> 22);
            } else {
                free_blk(a, old);
            }
        }
        done += 1;
    }
    // End of life: the working set goes to other lanes, whose threads free it.
    for k in 0..RP_SLOTS {
        let b = std::mem::replace(&mut lane.work[k], EMPTY);
        if !b.p.is_null() {
            let r = lane.rng.next();
            lane.send(a, &sh, b, r);
        }
    }
    for dest in 0..sh.inbox.len() {
        lane.flush(a, &sh, dest);
    }
    sh.ops.fetch_add(done, Relaxed);
    if sh.stop.load(Relaxed) {
        RpChain::Done
    } else {
        RpChain::Next(rp_spawn(a, lane, sh))
    }
}

/// Operations per second.
fn rptest(a: Alloc, t: usize, d: Duration) -> f64 {
    let sh = Arc::new(RpShared {
        inbox: (0..t)
            .map(|_| Mutex::new(Vec::with_capacity(RP_INBOX)))
            .collect(),
        stop: AtomicBool::new(false),
        ops: AtomicU64::new(0),
    });
    let lanes: Vec<Box<RpLane>> = (0..t)
        .map(|i| {
            Box::new(RpLane {
                idx: i,
                work: vec![EMPTY; RP_SLOTS],
                out: (0..t).map(|_| Vec::with_capacity(RP_BATCH)).collect(),
                recv: Vec::with_capacity(RP_INBOX),
                rng: Rng::new(0x4e57 + i as u64),
            })
        })
        .collect();
    let start = Instant::now();
    let heads: Vec<_> = lanes
        .into_iter()
        .map(|l| rp_spawn(a, l, sh.clone()))
        .collect();
    thread::sleep(d);
    sh.stop.store(true, Relaxed);
    for mut h in heads {
        while let RpChain::Next(n) = h.join().expect("rptest thread panicked") {
            h = n;
        }
    }
    let elapsed = start.elapsed();
    for q in &sh.inbox {
        for b in q.lock().unwrap().drain(..) {
            free_blk(a, b);
        }
    }
    sh.ops.load(Relaxed) as f64 / elapsed.as_secs_f64()
}

// ---------------------------------------------------------------------------------------------
// glibc-thread and alloc-test: T threads working locally, started and stopped together

/// Runs `work(i)` on `t` threads released together; returns the sum of their results and the
/// time from the release until all have finished `work` (each thread's cleanup comes after).
fn local_threads<C: FnOnce() + Send + 'static>(
    t: usize,
    stop_after: Option<Duration>,
    work: impl Fn(usize) -> (u64, C) + Send + Sync + 'static,
) -> (u64, Duration) {
    let work = Arc::new(work);
    let go = Arc::new(Barrier::new(t + 1));
    let end = Arc::new(Barrier::new(t + 1));
    let handles: Vec<_> = (0..t)
        .map(|i| {
            let (work, go, end) = (work.clone(), go.clone(), end.clone());
            thread::spawn(move || {
                go.wait();
                let (n, cleanup) = work(i);
                end.wait();
                cleanup();
                n
            })
        })
        .collect();
    go.wait();
    let start = Instant::now();
    if let Some(d) = stop_after {
        thread::sleep(d);
        STOP.store(true, Relaxed);
    }
    end.wait();
    let elapsed = start.elapsed();
    STOP.store(false, Relaxed);
    let n = handles
        .into_iter()
        .map(|h| h.join().expect("thread panicked"))
        .sum();
    (n, elapsed)
}

/// The stop flag of the time-based local shapes (one run at a time).
static STOP: AtomicBool = AtomicBool::new(false);

/// glibc's tables: 8000 block sizes with an inverse-square distribution over 4..=32768 and
/// 8192 slot offsets below 1024.
fn glibc_tables() -> &'static (Vec<u32>, Vec<u16>) {
    static TABLES: std::sync::OnceLock<(Vec<u32>, Vec<u16>)> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        let mut rng = Rng::new(0x61b);
        let (min_pow, max_pow) = (1.0 / 4.0f64, 1.0 / 32768.0f64);
        let sizes = (0..8000)
            .map(|_| {
                let r = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
                ((1.0 / ((max_pow - min_pow) * r + min_pow)) as u32).clamp(4, 32768)
            })
            .collect();
        let offsets = (0..8192)
            .map(|_| (rng.next() % GT_SLOTS as u64) as u16)
            .collect();
        (sizes, offsets)
    })
}

/// Operations per second.
fn glibc_thread(a: Alloc, t: usize, d: Duration) -> f64 {
    let (n, elapsed) = local_threads(t, Some(d), move |i| {
        let (sizes, offsets) = glibc_tables();
        let mut slots = vec![EMPTY; GT_SLOTS];
        let (mut so, mut sb) = (i * 997, i * 131);
        let mut ops = 0u64;
        while !STOP.load(Relaxed) {
            let k = offsets[so % offsets.len()] as usize;
            let size = sizes[sb % sizes.len()] as usize;
            so += 1;
            sb += 1;
            free_blk(a, slots[k]);
            slots[k] = new_blk(a, size);
            ops += 1;
        }
        (ops, move || slots.into_iter().for_each(|b| free_blk(a, b)))
    });
    n as f64 / elapsed.as_secs_f64()
}

/// Milliseconds for ALLOC_TEST_OPS operations split among `t` threads.
fn alloc_test(a: Alloc, t: usize, _d: Duration) -> f64 {
    let per = ALLOC_TEST_OPS / t as u64;
    let (_, elapsed) = local_threads(t, None, move |i| {
        let mut rng = Rng::new(0xa11c + i as u64);
        let mut slots = vec![EMPTY; AT_SLOTS];
        for _ in 0..per {
            let r = rng.next();
            let k = (r % AT_SLOTS as u64) as usize;
            if slots[k].p.is_null() {
                let size = if (r >> 16) & 15 == 0 {
                    513 + ((r >> 24) % 3584) as usize
                } else {
                    16 + ((r >> 24) % 497) as usize
                };
                slots[k] = new_blk(a, size);
            } else {
                free_blk(a, std::mem::replace(&mut slots[k], EMPTY));
            }
        }
        (0, move || slots.into_iter().for_each(|b| free_blk(a, b)))
    });
    elapsed.as_secs_f64() * 1e3
}

/// Milliseconds for LARGE_ITERS replacements of 5..=25 MiB blocks split among `t` threads.
fn large(a: Alloc, t: usize, _d: Duration) -> f64 {
    let per = LARGE_ITERS / t as u64;
    let (_, elapsed) = local_threads(t, None, move |i| {
        let mut rng = Rng::new(0x1a9e + i as u64);
        let mut slots = [EMPTY; LARGE_SLOTS];
        for _ in 0..per {
            let r = rng.next();
            let k = (r % LARGE_SLOTS as u64) as usize;
            let size = (5 << 20) + ((r >> 16) % (20 << 20) + 1) as usize;
            free_blk(a, slots[k]);
            slots[k] = new_blk(a, size); // touches the first and the last page
        }
        (0, move || slots.into_iter().for_each(|b| free_blk(a, b)))
    });
    elapsed.as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------------------------------
// driver

type Shape = fn(Alloc, usize, Duration) -> f64;

/// name, function, unit, whether higher is better
const SHAPES: [(&str, Shape, &str, bool); 5] = [
    ("larson", larson, "Mops/s", true),
    ("rptest", rptest, "Mops/s", true),
    ("glibc-thread", glibc_thread, "Mops/s", true),
    ("alloc-test", alloc_test, "ms", false),
    ("large", large, "ms", false),
];

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Aborts the process, naming the run, when one run takes longer than `WATCHDOG` seconds.
struct Watchdog {
    current: Mutex<(String, Option<Instant>)>,
}

impl Watchdog {
    fn start(limit: Duration) -> &'static Watchdog {
        let w: &'static Watchdog = Box::leak(Box::new(Watchdog {
            current: Mutex::new((String::new(), None)),
        }));
        thread::spawn(move || {
            loop {
                thread::sleep(Duration::from_millis(500));
                let c = w.current.lock().unwrap();
                if let Some(t) = c.1
                    && t.elapsed() > limit
                {
                    eprintln!(
                        "watchdog: `{}` has run for {:?}; aborting",
                        c.0,
                        t.elapsed()
                    );
                    std::process::abort();
                }
            }
        });
        w
    }

    fn arm(&self, what: String) {
        *self.current.lock().unwrap() = (what, Some(Instant::now()));
    }

    fn disarm(&self) {
        self.current.lock().unwrap().1 = None;
    }
}

fn main() {
    // `cargo bench`/`cargo run` arguments are ignored; everything comes from the environment.
    let rounds = env_num("ROUNDS", 5.0).max(1.0) as usize;
    let d = Duration::from_secs_f64(env_num("DURATION", 0.3));
    let threads: Vec<usize> = env_list("THREADS", "1,2,4,8,16")
        .iter()
        .map(|s| s.parse().expect("THREADS: comma-separated numbers"))
        .collect();
    let large_threads: Vec<usize> = env_list("LARGE_THREADS", "1")
        .iter()
        .map(|s| s.parse().expect("LARGE_THREADS: comma-separated numbers"))
        .collect();
    let shape_names = env_list("SHAPES", "larson,rptest,glibc-thread,alloc-test,large");
    let alloc_names = env_list("ALLOCS", "arenagc,glibc,mimalloc,jemalloc");
    let allocs: Vec<(&str, Alloc)> = allocators()
        .into_iter()
        .filter(|(n, _)| alloc_names.iter().any(|x| x == n))
        .collect();
    for s in &shape_names {
        assert!(
            SHAPES.iter().any(|x| x.0 == s),
            "unknown shape {s}; known: larson rptest glibc-thread alloc-test large"
        );
    }
    let dog = Watchdog::start(Duration::from_secs_f64(env_num("WATCHDOG", 120.0)));
    let names: Vec<&str> = allocs.iter().map(|a| a.0).collect();
    let ours = names.iter().position(|&n| n == "arenagc");
    let bases: Vec<usize> = ["glibc", "mimalloc"]
        .iter()
        .filter_map(|b| names.iter().position(|n| n == b))
        .collect();
    println!(
        "{rounds} interleaved rounds (allocator order rotating), medians, ratios of medians; \
         time-based shapes run {:.2} s each; {} CPUs",
        d.as_secs_f64(),
        thread::available_parallelism().map_or(0, |n| n.get())
    );
    for (name, f, unit, higher_better) in SHAPES {
        if !shape_names.iter().any(|s| s == name) {
            continue;
        }
        let better = if higher_better {
            "higher is better; ratio > 1: arenagc faster"
        } else {
            "lower is better; ratio < 1: arenagc faster"
        };
        println!("\n### {name} ({unit}, {better})\n");
        let mut head = format!("| threads | {} |", names.join(" | "));
        if let Some(o) = ours {
            for &b in &bases {
                head += &format!(" {} / {} |", names[o], names[b]);
            }
        }
        println!("{head}");
        println!("|{}", "---|".repeat(head.matches('|').count() - 1));
        let counts = if name == "large" {
            &large_threads
        } else {
            &threads
        };
        for &t in counts {
            let mut samples = vec![Vec::new(); allocs.len()];
            // One untimed round first (page faults, lazy initialization, frequency ramp-up).
            for r in 0..=rounds {
                for j in 0..allocs.len() {
                    let i = (j + r) % allocs.len();
                    dog.arm(format!("SHAPES={name} THREADS={t} ALLOCS={}", allocs[i].0));
                    let v = f(allocs[i].1, t, d);
                    dog.disarm();
                    if r > 0 {
                        samples[i].push(if higher_better { v / 1e6 } else { v });
                    }
                }
            }
            let m: Vec<f64> = samples.iter_mut().map(|s| median(s)).collect();
            let prec = 2;
            let mut row = format!(
                "| {t} | {} |",
                m.iter()
                    .map(|x| format!("{x:.prec$}"))
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
            if let Some(o) = ours {
                for &b in &bases {
                    let q = m[o] / m[b];
                    row += &if q < 0.1 {
                        format!(" {q:.3}x |")
                    } else {
                        format!(" {q:.2}x |")
                    };
                }
            }
            println!("{row}");
            eprintln!("{name} T={t} done");
        }
    }
}
