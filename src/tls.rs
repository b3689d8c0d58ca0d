//! The crate's thread-local words: one initial-exec TLS object of `WORDS` machine words, with a
//! named slot for each value a hot path reads.
//!
//! | slot          | layer      | holds                                                          |
//! |---------------|------------|----------------------------------------------------------------|
//! | `HEAP`        | allocator  | the thread's heap (`alloc::thread`), null before and after     |
//! | `HEAP_STATE`  | allocator  | the heap's lifecycle state (`alloc::thread`: NEW/LIVE/EXITED)  |
//! | `RUNTIME`     | collector  | the thread's current runtime (`gc::runtime`), null at first    |
//! | `CALL_DEPTH`  | collector  | library frames running user code here (`gc::runtime::UserCode`)|
//! | `TRASH_DEPTH` | objects    | nesting of deallocations (the trashcan, `object::trash`)       |
//! | `TRASH_LIST`  | objects    | deallocations the trashcan put off, linked (`object::trash`)   |
//! | `OS_HOLD`     | allocator  | nesting of `alloc::hold_os_releases` (no arena unmapped here)  |
//!
//! Each value is an opaque `usize`: this module sits below every layer and knows none of their
//! types (the layer that owns a slot converts). Every slot starts 0 in every thread, and only
//! the thread itself reads or writes its words.
//!
//! On x86-64 Linux the words are one `.tbss` object defined here in assembly and read with the
//! **initial-exec** TLS model (`GOTTPOFF`): one load of the offset from the GOT and one
//! `%fs`-relative load. Rust's `thread_local!` in a shared object uses the general-dynamic
//! model instead, a call to `__tls_get_addr` on every access, which made `malloc`/`free` of
//! `libarenagc.so` and `libarenagc_malloc.so` (the `LD_PRELOAD` build) pay a call per operation
//! that mimalloc (built initial-exec) does not, and every collector call of `libarenagc.so` pay
//! one for the current runtime. In an executable the linker relaxes the `GOTTPOFF` load to an
//! immediate, so Rust programs get the local-exec model.
//!
//! Initial-exec TLS in a shared object needs room in the static TLS block. A library loaded at
//! start (a dependency, or `LD_PRELOAD`) always has it; one loaded with `dlopen` uses glibc's
//! surplus (`glibc.rtld.optional_static_tls`, 512 bytes by default), of which these are 64.
//!
//! Elsewhere (other targets, and `--cfg loom`, whose models never read these), a const-initialized
//! `thread_local!` array.

/// The allocator's heap pointer.
pub(crate) const HEAP: usize = 0;
/// The allocator's heap lifecycle state.
pub(crate) const HEAP_STATE: usize = 1;
/// The collector's current runtime.
pub(crate) const RUNTIME: usize = 2;
/// Library frames running user code (finalizers, callbacks, deallocations, traversals).
pub(crate) const CALL_DEPTH: usize = 3;
/// Nesting of deallocations (the trashcan).
pub(crate) const TRASH_DEPTH: usize = 4;
/// The trashcan's list of deferred deallocations.
pub(crate) const TRASH_LIST: usize = 5;
/// Nesting of the allocator's hold on giving memory back to the OS (a collection's pause).
pub(crate) const OS_HOLD: usize = 6;
/// Words in the object (one spare).
const WORDS: usize = 8;

#[cfg(all(target_arch = "x86_64", target_os = "linux", not(loom), not(miri)))]
mod imp {
    use core::arch::{asm, global_asm};

    // Hidden, so it is never exported from a shared object, and versioned, so two
    // semver-incompatible copies of the crate in one program do not clash. 8 words (64 bytes).
    global_asm!(
        ".pushsection .tbss,\"awT\",@nobits",
        ".p2align 4",
        ".globl __arenagc_tls_v0",
        ".hidden __arenagc_tls_v0",
        ".type __arenagc_tls_v0, @object",
        ".size __arenagc_tls_v0, 64",
        "__arenagc_tls_v0:",
        ".zero 64",
        ".popsection",
    );
    const _: () = assert!(super::WORDS * 8 == 64);

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
    pub fn get<const W: usize>() -> usize {
        const { assert!(W < super::WORDS) };
        let v: usize;
        // SAFETY: %fs:offset is this thread's copy of our TLS object; word W (< WORDS) is 8
        // aligned bytes that exist for as long as the thread does.
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

    /// A number naming the calling thread among the live threads (its thread pointer).
    #[inline(always)]
    pub fn thread_id() -> usize {
        let tp: usize;
        // SAFETY: %fs:0 holds the thread control block's pointer to itself (the x86-64 TLS ABI);
        // reading it touches no memory of ours.
        unsafe {
            asm!(
                "mov {tp}, qword ptr fs:[0]",
                tp = out(reg) tp,
                options(pure, readonly, nostack, preserves_flags),
            );
        }
        tp
    }

    /// Set word `W` of this thread's TLS object.
    #[inline(always)]
    pub fn set<const W: usize>(v: usize) {
        const { assert!(W < super::WORDS) };
        // SAFETY: as in `get`; only this thread writes its own words.
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
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux", not(loom), not(miri))))]
mod imp {
    use core::cell::Cell;

    thread_local! {
        static WORDS: [Cell<usize>; super::WORDS] = const { [const { Cell::new(0) }; super::WORDS] };
    }

    /// Word `W` of this thread's words (0 once the thread's locals are gone).
    #[inline(always)]
    pub fn get<const W: usize>() -> usize {
        WORDS.try_with(|w| w[W].get()).unwrap_or(0)
    }

    /// Set word `W` (ignored once the thread's locals are gone).
    #[inline(always)]
    pub fn set<const W: usize>(v: usize) {
        let _ = WORDS.try_with(|w| w[W].set(v));
    }

    /// A number naming the calling thread among the live threads (the address of its words).
    #[inline(always)]
    pub fn thread_id() -> usize {
        WORDS.try_with(|w| w.as_ptr() as usize).unwrap_or(1)
    }
}

pub(crate) use imp::{get, set, thread_id};
