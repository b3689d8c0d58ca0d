//! Requests that are not small (over 512 bytes, or aligned to more than 16) go to the system
//! allocator. On glibc we call its own entry points (`__libc_malloc` and friends), so that the
//! `LD_PRELOAD` build, which exports `malloc` itself, still reaches glibc here.
//!
//! Statistics count the usable size of every live large block, read from glibc's chunk header
//! (see `usable_size`), so counts agree whether a block is freed with or without its size. The
//! counts are kept per thread (`thread::count_large`: plain stores into the thread's heap, no
//! shared cache line) and summed when statistics are read: one global counter, updated with a
//! locked instruction by every thread on every block over 512 bytes, was half of the time of a
//! larson-shaped program's allocations and frees (the threads fought over its line).

use super::thread;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod sys {
    use libc::{c_void, size_t};
    unsafe extern "C" {
        pub fn __libc_malloc(size: size_t) -> *mut c_void;
        pub fn __libc_calloc(n: size_t, size: size_t) -> *mut c_void;
        pub fn __libc_realloc(p: *mut c_void, size: size_t) -> *mut c_void;
        pub fn __libc_memalign(align: size_t, size: size_t) -> *mut c_void;
        pub fn __libc_free(p: *mut c_void);
    }
    pub use __libc_calloc as calloc;
    pub use __libc_free as free;
    pub use __libc_malloc as malloc;
    pub use __libc_memalign as memalign;
    pub use __libc_realloc as realloc;
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod sys {
    use libc::{c_void, size_t};
    pub use libc::{calloc, free, malloc, realloc};
    pub unsafe fn memalign(align: size_t, size: size_t) -> *mut c_void {
        let mut p = core::ptr::null_mut();
        // SAFETY: p is a valid out-pointer.
        if unsafe { libc::posix_memalign(&mut p, align, size) } == 0 {
            p
        } else {
            core::ptr::null_mut()
        }
    }
}

/// Usable bytes of a live block from the system allocator.
///
/// # Safety
/// `p` is a live block returned by this module.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub unsafe fn usable_size(p: *mut u8) -> usize {
    if super::valgrind::active() {
        // memcheck's allocator replaces glibc's and has no chunk header to read: ask the
        // system's `malloc_usable_size`, which valgrind redirects to its own. Not the symbol
        // `malloc_usable_size` itself: in the preload library that is our own export, which
        // leads back here (an endless recursion under callgrind and cachegrind, where glibc's
        // allocator stays).
        // SAFETY: p is a live block of the system allocator.
        return unsafe { system_usable_size(p) };
    }
    // glibc keeps `size | flags` in the word before the user pointer; bit 1 (IS_MMAPPED) means
    // the chunk has a 16-byte header, otherwise 8 bytes of it are the next chunk's prev_size
    // field, usable by this one (glibc's `musable`).
    // SAFETY: p is a live glibc chunk, so the word before it is its size field.
    let word = unsafe { *(p as *const usize).sub(1) };
    let size = word & !7;
    // Saturating: a pointer glibc never handed out (glibc's free then aborts on it) must not
    // wrap the statistics first.
    if word & 2 != 0 {
        size.saturating_sub(16)
    } else {
        size.saturating_sub(8)
    }
}

/// The system allocator's `malloc_usable_size`, found past our own object (`RTLD_NEXT`) so the
/// preload library's export of the same name is skipped; looked up once.
///
/// # Safety
/// `p` is a live block of the system allocator.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe fn system_usable_size(p: *mut u8) -> usize {
    use core::sync::atomic::{AtomicUsize, Ordering};
    type UsableSize = unsafe extern "C" fn(*mut libc::c_void) -> usize;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let mut f = NEXT.load(Ordering::Acquire);
    if f == 0 {
        // SAFETY: dlsym with a NUL-terminated name; RTLD_NEXT is valid from a shared object and
        // from the executable. It may allocate, which reaches our allocator through the
        // ordinary paths (no lock is held here).
        f = unsafe { libc::dlsym(libc::RTLD_NEXT, c"malloc_usable_size".as_ptr()) } as usize;
        if f == 0 {
            // SAFETY: as above, the default search order (the Rust library linked statically
            // into a program that does not export the symbol itself).
            f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"malloc_usable_size".as_ptr()) } as usize;
        }
        assert!(
            f != 0,
            "arenagc: the system allocator has no malloc_usable_size"
        );
        NEXT.store(f, Ordering::Release);
    }
    // SAFETY: f is the address of the C function `malloc_usable_size` (dlsym found it), whose
    // signature is UsableSize; p is a live block of the system allocator.
    unsafe { core::mem::transmute::<usize, UsableSize>(f)(p.cast()) }
}

/// # Safety
/// `p` is a live block returned by this module.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub unsafe fn usable_size(p: *mut u8) -> usize {
    // SAFETY: p is a live block of the system allocator.
    unsafe { libc::malloc_usable_size(p.cast()) }
}

fn count_alloc(p: *mut u8) -> *mut u8 {
    if !p.is_null() {
        // SAFETY: p was just returned by the system allocator.
        thread::count_large(unsafe { usable_size(p) }, 1);
    }
    p
}

/// Allocate `size` bytes aligned to `align` (a power of two); zeroed if asked. Null on failure.
pub fn alloc(size: usize, align: usize, zero: bool) -> *mut u8 {
    let size = size.max(1);
    // SAFETY: the system allocator accepts any size and (memalign) any power-of-two alignment.
    let p: *mut u8 = unsafe {
        if align <= crate::config::ALIGNMENT {
            if zero {
                sys::calloc(1, size).cast()
            } else {
                sys::malloc(size).cast()
            }
        } else {
            let p: *mut u8 = sys::memalign(align, size).cast();
            if zero && !p.is_null() {
                p.write_bytes(0, size);
            }
            p
        }
    };
    count_alloc(p)
}

/// # Safety
/// `p` is a live block returned by this module.
pub unsafe fn free(p: *mut u8) {
    // A block sampled by the tracer's sampled mode loses its trace before it goes back.
    #[cfg(feature = "trace")]
    if super::sampler::active() {
        super::sampler::forget(p);
    }
    // SAFETY: per the contract.
    unsafe {
        thread::count_large(usable_size(p).wrapping_neg(), 1usize.wrapping_neg());
        sys::free(p.cast());
    }
}

/// Resize a block aligned to at most 16 bytes. Null on failure (the old block stays valid).
///
/// # Safety
/// `p` is a live block returned by this module with alignment at most 16.
pub unsafe fn realloc(p: *mut u8, new_size: usize) -> *mut u8 {
    // SAFETY: per the contract.
    unsafe {
        let old = usable_size(p);
        let q: *mut u8 = sys::realloc(p.cast(), new_size.max(1)).cast();
        if !q.is_null() {
            thread::count_large(usable_size(q).wrapping_sub(old), 0);
        }
        q
    }
}

/// (bytes, blocks) currently held in the system allocator.
///
/// The counters wrap on purpose (a thread that frees blocks another allocated counts below
/// zero) and their sum is read as signed, clamped at 0: a block the system allocator handed out
/// before we took over (only possible when the malloc replacement is `dlopen`ed rather than
/// preloaded) and then freed through us subtracts what was never added, and must not show as
/// an absurd figure. While other threads allocate, the sum is a snapshot of moving counts.
pub fn totals() -> (usize, usize) {
    let (bytes, blocks) = thread::large_totals();
    let clamp = |v: usize| (v as isize).max(0) as usize;
    (clamp(bytes), clamp(blocks))
}

/// Give the system allocator's free memory back to the OS (glibc's `malloc_trim(0)`), for
/// `alloc::trim`.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory glibc holds free; it has no preconditions.
    unsafe {
        libc::malloc_trim(0)
    };
}

/// Tune glibc for a process whose every large block comes through here (the malloc
/// replacement): keep up to `SYSTEM_TRIM_THRESHOLD` free at the top of its heap instead of
/// 128 KiB, and map blocks from `SYSTEM_MMAP_THRESHOLD` up instead of 128 KiB. Returns false
/// (and changes nothing) when the environment already sets either (`MALLOC_TRIM_THRESHOLD_`,
/// `MALLOC_MMAP_THRESHOLD_`, or a `glibc.malloc` tunable): the user's choice wins.
///
/// Why: with glibc's defaults a program that frees a batch of blocks above 512 bytes and
/// allocates them again had its heap top trimmed and faulted in again each round (the C batch
/// bench: 31 000 page faults against mimalloc's 8 600; with these values 8 100 and 25% less time).
/// glibc's own dynamic thresholds go as high (a 64 MiB trim threshold after a 32 MiB block), but
/// only after the program has freed a mapped block; setting either turns that adjustment off,
/// so both are set, to the ceilings it would reach. A 4 MiB mmap threshold (until 2026-12)
/// made every block of 5..25 MiB in a loop an `mmap`/`munmap` pair with fresh page faults: the
/// large-block loop ran 3.5x slower than glibc; at 32 MiB it runs as glibc does (the batch bench
/// the same). `alloc::trim` (`agc_trim`, or `malloc_trim`) gives the free memory back.
///
/// Not for `libarenagc.so` or a Rust program using `ArenaAlloc`: there glibc may also serve the
/// program's own `malloc`, whose policy is not ours to change.
pub fn tune_system_allocator() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use crate::config::{SYSTEM_MMAP_THRESHOLD, SYSTEM_TRIM_THRESHOLD};
        use crate::options::{GLIBC_MMAP_THRESHOLD, GLIBC_TRIM_THRESHOLD, GLIBC_TUNABLES};
        if GLIBC_TRIM_THRESHOLD.is_set() || GLIBC_MMAP_THRESHOLD.is_set() {
            return false;
        }
        if let Some(tunables) = GLIBC_TUNABLES.value() {
            if tunables.windows(12).any(|w| w == b"glibc.malloc") {
                return false;
            }
        }
        // SAFETY: mallopt has no preconditions; both values are in glibc's accepted ranges.
        unsafe {
            libc::mallopt(libc::M_TRIM_THRESHOLD, SYSTEM_TRIM_THRESHOLD as libc::c_int);
            libc::mallopt(libc::M_MMAP_THRESHOLD, SYSTEM_MMAP_THRESHOLD as libc::c_int);
        }
        true
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}
