//! Shared by the allocator benches: the four allocators compared, a tiny deterministic RNG, and
//! the workloads both `side_by_side` and `alloc` run (live sets, batches, producer/consumer,
//! realloc growth).

use arenagc::ArenaAlloc;
use core::alloc::{GlobalAlloc, Layout};

pub type Alloc = &'static (dyn GlobalAlloc + Sync);

/// arenagc, the system allocator (glibc), mimalloc and jemalloc, all called through
/// `&dyn GlobalAlloc`.
pub fn allocators() -> [(&'static str, Alloc); 4] {
    static MI: mimalloc::MiMalloc = mimalloc::MiMalloc;
    static JE: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
    static SYS: std::alloc::System = std::alloc::System;
    static ARENA: ArenaAlloc = ArenaAlloc;
    [
        ("arenagc", &ARENA),
        ("glibc", &SYS),
        ("mimalloc", &MI),
        ("jemalloc", &JE),
    ]
}

pub fn lay(n: usize) -> Layout {
    Layout::from_size_align(n, 8).unwrap()
}

/// xorshift64: the same sequence for every allocator.
pub struct Rng(u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A working set of live blocks of 16..512 bytes for the random-replacement workload.
pub struct LiveSet {
    a: Alloc,
    rng: Rng,
    live: Vec<(*mut u8, Layout)>,
}

impl LiveSet {
    fn random_layout(rng: &mut Rng) -> Layout {
        lay(16 + (rng.next() % 497) as usize)
    }

    /// `n` live blocks of random sizes, from a fixed seed.
    pub fn new(a: Alloc, n: usize) -> Self {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let live = (0..n)
            .map(|_| {
                let l = Self::random_layout(&mut rng);
                // SAFETY: valid layout.
                (unsafe { a.alloc(l) }, l)
            })
            .collect();
        LiveSet { a, rng, live }
    }

    /// `ops` times: free a random live block and allocate one of a new random size in its place.
    pub fn replace(&mut self, ops: usize) {
        let n = self.live.len() as u64;
        for _ in 0..ops {
            let i = (self.rng.next() % n) as usize;
            let l = Self::random_layout(&mut self.rng);
            // SAFETY: live[i] is live with its layout; it is replaced by a new live block.
            unsafe {
                self.a.dealloc(self.live[i].0, self.live[i].1);
                self.live[i] = (self.a.alloc(l), l);
            }
        }
    }
}

impl Drop for LiveSet {
    fn drop(&mut self) {
        for &(p, l) in &self.live {
            // SAFETY: each block is live with its layout.
            unsafe { self.a.dealloc(p, l) };
        }
    }
}

fn wait_for(mut ready: impl FnMut() -> bool) {
    let mut spins = 0u32;
    while !ready() {
        spins += 1;
        if spins < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now(); // a shared 2-core machine: let the other side run
        }
    }
}

/// One producer allocates `n` 48-byte blocks, one consumer frees them, through a bounded ring
/// of atomics (the queue itself never allocates). Returns the elapsed time.
pub fn producer_consumer(a: Alloc, n: usize) -> std::time::Duration {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    const RING: usize = 1024;
    let ring: Arc<Vec<AtomicUsize>> = Arc::new((0..RING).map(|_| AtomicUsize::new(0)).collect());
    let r2 = ring.clone();
    let l = lay(48);
    let t = std::time::Instant::now();
    let consumer = std::thread::spawn(move || {
        for i in 0..n {
            let slot = &r2[i % RING];
            let mut p = 0;
            wait_for(|| {
                p = slot.swap(0, Ordering::Acquire);
                p != 0
            });
            // SAFETY: p was allocated by the producer with layout l.
            unsafe { a.dealloc(p as *mut u8, l) };
        }
    });
    for i in 0..n {
        // SAFETY: valid layout.
        let p = unsafe { a.alloc(l) } as usize;
        let slot = &ring[i % RING];
        wait_for(|| slot.load(Ordering::Acquire) == 0);
        slot.store(p, Ordering::Release);
    }
    consumer.join().unwrap();
    t.elapsed()
}

/// Allocate `count` blocks of layout `l` into `v` (empty), then free them all in order.
pub fn alloc_free_batch(a: Alloc, l: Layout, v: &mut Vec<*mut u8>, count: usize) {
    // SAFETY: valid layout; each block freed once.
    unsafe {
        for _ in 0..count {
            v.push(a.alloc(l));
        }
        for p in v.drain(..) {
            a.dealloc(std::hint::black_box(p), l);
        }
    }
}

/// Grow one block from 16 to 512 bytes by `realloc` in 16-byte steps, then free it.
pub fn grow_by_realloc(a: Alloc) {
    // SAFETY: each realloc passes the block's current layout.
    unsafe {
        let mut p = a.alloc(lay(16));
        let mut size = 16;
        while size < 512 {
            p = a.realloc(p, lay(size), size + 16);
            size += 16;
            *p = size as u8;
        }
        a.dealloc(std::hint::black_box(p), lay(size));
    }
}
