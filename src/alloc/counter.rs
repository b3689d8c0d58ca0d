//! `LargeCounts`: a thread's share of the blocks in the system allocator, kept in its heap.
//! A floor file: counting is plain data that the heap holds and `thread.rs` sums.
//!
//! Invariant: the owner writes with plain stores (no read-modify-write, no shared cache line);
//! any thread may read (statistics), hence atomics; the sum over every heap and the shared
//! counts of `thread.rs` is the total, wrapping.

use core::sync::atomic::{AtomicUsize, Ordering};

/// A thread's share of the blocks in the system allocator: what it allocated minus what it
/// freed (wrapping: a thread that frees blocks another allocated goes below zero; the sum over
/// all threads is the total). Written only by the owner, with plain stores; read by statistics
/// from any thread (`thread::large_totals`), hence atomics.
#[derive(Default)]
pub struct LargeCounts {
    pub bytes: AtomicUsize,
    pub blocks: AtomicUsize,
}

impl LargeCounts {
    pub const fn new() -> Self {
        LargeCounts {
            bytes: AtomicUsize::new(0),
            blocks: AtomicUsize::new(0),
        }
    }

    /// Owner only: add (wrapping) to both counts, with no read-modify-write instruction.
    #[inline(always)]
    pub fn add(&self, bytes: usize, blocks: usize) {
        let b = self.bytes.load(Ordering::Relaxed);
        self.bytes.store(b.wrapping_add(bytes), Ordering::Relaxed);
        let n = self.blocks.load(Ordering::Relaxed);
        self.blocks.store(n.wrapping_add(blocks), Ordering::Relaxed);
    }
}
