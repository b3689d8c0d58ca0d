//! Running under valgrind: detected once, with valgrind's client request `RUNNING_ON_VALGRIND`
//! (the magic instruction sequence of `valgrind.h`, which is a no-op on real hardware).
//!
//! Under valgrind, memcheck can only check blocks it sees handed out and freed: a block carved
//! from one of our pools is, to it, a few bytes inside a big `mmap`, so a use after free or a
//! leak there goes unreported, and our own reads of allocator metadata look like errors. So, as
//! CPython does (`--with-valgrind`: pymalloc steps aside when valgrind runs the program),
//! `dispatch.rs` then serves every request from the system allocator, which valgrind replaces
//! with its own checked one (`ARENAGC_VALGRIND=pools` keeps the pools). And `large.rs` asks
//! `malloc_usable_size` for a block's size instead of reading glibc's chunk header, which
//! valgrind's allocator does not have.
//!
//! Invariants: `detect` asks once per process and the answer never changes (a process does not
//! start or stop running under valgrind); `active` is the cached answer, false until `detect`
//! ran, which `dispatch::select` does before the first block is handed out.
//!
//! May touch: nothing (the floor).

use core::sync::atomic::{AtomicBool, Ordering};

static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Ask valgrind whether it runs this process; cache and return the answer.
pub fn detect() -> bool {
    let on = running_on_valgrind() != 0;
    ACTIVE.store(on, Ordering::Relaxed);
    on
}

/// Whether this process runs under valgrind (as `detect` found; false before it ran).
#[inline]
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// `RUNNING_ON_VALGRIND`: the number of valgrinds this process runs under (0 on hardware).
#[cfg(target_arch = "x86_64")]
fn running_on_valgrind() -> u64 {
    // VG_USERREQ__RUNNING_ON_VALGRIND and its five unused arguments.
    let args: [u64; 6] = [0x1001, 0, 0, 0, 0, 0];
    let mut result: u64 = 0; // the answer when no valgrind handles the request
    // SAFETY: valgrind.h's client-request preamble for amd64: four rotations of rdi that add up
    // to 128 bits (rdi ends as it began; declared clobbered anyway) and `xchg rbx, rbx`, a
    // no-op. On hardware nothing else happens and rdx keeps the default; under valgrind the
    // core reads the request from [rax] and writes its answer to rdx; the argument block lives
    // across the call.
    unsafe {
        core::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            inout("rdx") result,
            in("rax") args.as_ptr(),
            inout("rdi") 0u64 => _,
        );
    }
    result
}

#[cfg(not(target_arch = "x86_64"))]
fn running_on_valgrind() -> u64 {
    0
}
