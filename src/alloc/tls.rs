//! The calling thread's heap pointer and heap state: two thread-local words read on every
//! allocation and every free; and a third word the C ABI crate keeps its call nesting in
//! (`alloc::api_nesting`), for the same reason: no call per access.
//!
//! On x86-64 Linux they live in one 16-byte `.tbss` object defined here in assembly and read
//! with the **initial-exec** TLS model (`GOTTPOFF`): one load of the offset from the GOT and
//! one `%fs`-relative load. Rust's `thread_local!` in a shared object uses the general-dynamic
//! model instead, a call to `__tls_get_addr` on every access, which made `malloc`/`free` of
//! `libarenagc.so` and `libarenagc_malloc.so` (the `LD_PRELOAD` build) pay a call per operation
//! that mimalloc (built initial-exec) does not. In an executable the linker relaxes the
//! `GOTTPOFF` load to an immediate, so Rust programs get the local-exec model as before.
//!
//! Initial-exec TLS in a shared object needs room in the static TLS block. A library loaded at
//! start (a dependency, or `LD_PRELOAD`) always has it; one loaded with `dlopen` uses glibc's
//! surplus (`glibc.rtld.optional_static_tls`, 512 bytes by default), of which these are 32.
//!
//! Elsewhere (other targets, and `--cfg loom`, whose models never read these), a const-initialized
//! `thread_local!`.
//!
//! Invariants: the words start zero (null heap, state `NEW`) in every thread, and only the
//! thread itself reads or writes them (`heap.rs` keeps the state machine).

use super::heap::ThreadHeap;

#[cfg(all(target_arch = "x86_64", target_os = "linux", not(loom), not(miri)))]
mod imp {
    use super::ThreadHeap;
    use core::arch::{asm, global_asm};

    // Word 0: the heap pointer; word 1: the state (low byte); word 2: the C ABI's call
    // nesting; word 3: unused. Hidden, so it is never exported from a shared object, and
    // versioned, so two semver-incompatible copies of the crate in one program do not clash.
    global_asm!(
        ".pushsection .tbss,\"awT\",@nobits",
        ".p2align 4",
        ".globl __arenagc_tls_v0",
        ".hidden __arenagc_tls_v0",
        ".type __arenagc_tls_v0, @object",
        ".size __arenagc_tls_v0, 32",
        "__arenagc_tls_v0:",
        ".zero 32",
        ".popsection",
    );

    /// The offset of our TLS object from the thread pointer (the same in every thread).
    #[inline(always)]
    fn offset() -> usize {
        let off: usize;
        // SAFETY: reads the GOT entry the dynamic linker (or the static linker, relaxing it to
        // an immediate) filled with the object's offset from the thread pointer; no memory of
        // ours is touched and the value never changes.
        unsafe {
            asm!(
                "mov {off}, qword ptr [rip + __arenagc_tls_v0@GOTTPOFF]",
                off = out(reg) off,
                options(pure, nomem, nostack, preserves_flags),
            );
        }
        off
    }

    /// Word `W` of this thread's TLS object.
    #[inline(always)]
    fn load<const W: usize>() -> usize {
        let v: usize;
        // SAFETY: %fs:offset is this thread's copy of our TLS object; word W (< 4) is 8 aligned
        // bytes that exist for as long as the thread does.
        unsafe {
            asm!(
                "mov {v}, qword ptr fs:[{off} + {disp}]",
                off = in(reg) offset(),
                disp = const W * 8,
                v = out(reg) v,
                options(pure, readonly, nostack, preserves_flags),
            );
        }
        v
    }

    /// Set word `W` of this thread's TLS object.
    #[inline(always)]
    fn store<const W: usize>(v: usize) {
        // SAFETY: as in `load`; only this thread writes its own words.
        unsafe {
            asm!(
                "mov qword ptr fs:[{off} + {disp}], {v}",
                off = in(reg) offset(),
                disp = const W * 8,
                v = in(reg) v,
                options(nostack, preserves_flags),
            );
        }
    }

    #[inline(always)]
    pub fn heap() -> *mut ThreadHeap {
        load::<0>() as *mut ThreadHeap
    }

    #[inline(always)]
    pub fn set_heap(h: *mut ThreadHeap) {
        store::<0>(h as usize)
    }

    #[inline(always)]
    pub fn state() -> u8 {
        load::<1>() as u8
    }

    #[inline(always)]
    pub fn set_state(s: u8) {
        store::<1>(usize::from(s))
    }

    #[inline(always)]
    pub fn nesting() -> usize {
        load::<2>()
    }

    #[inline(always)]
    pub fn set_nesting(n: usize) {
        store::<2>(n)
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux", not(loom), not(miri))))]
mod imp {
    use super::ThreadHeap;
    use core::cell::Cell;

    thread_local! {
        static HEAP: Cell<*mut ThreadHeap> = const { Cell::new(core::ptr::null_mut()) };
        static STATE: Cell<u8> = const { Cell::new(0) };
        static NESTING: Cell<usize> = const { Cell::new(0) };
    }

    #[inline(always)]
    pub fn heap() -> *mut ThreadHeap {
        HEAP.with(Cell::get)
    }

    #[inline(always)]
    pub fn set_heap(h: *mut ThreadHeap) {
        HEAP.with(|c| c.set(h))
    }

    #[inline(always)]
    pub fn state() -> u8 {
        STATE.with(Cell::get)
    }

    #[inline(always)]
    pub fn set_state(s: u8) {
        STATE.with(|c| c.set(s))
    }

    #[inline(always)]
    pub fn nesting() -> usize {
        NESTING.try_with(Cell::get).unwrap_or(0)
    }

    #[inline(always)]
    pub fn set_nesting(n: usize) {
        let _ = NESTING.try_with(|c| c.set(n));
    }
}

pub use imp::{heap, nesting, set_heap, set_nesting, set_state, state};
