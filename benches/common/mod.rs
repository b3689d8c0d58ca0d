//! Shared by the allocator benches: the four allocators compared, and a tiny deterministic RNG.

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
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
