//! The one file that talks to the operating system about memory.
//!
//! Contract (every other module relies on exactly this and nothing more):
//!
//! | function          | pre                                   | post                                        |
//! |-------------------|---------------------------------------|---------------------------------------------|
//! | `map_arena`       | -                                     | `ARENA_SIZE` bytes, aligned to `ARENA_SIZE`, |
//! |                   |                                       | readable/writable, all zero; or null        |
//! | `unmap_arena`     | `p` came from `map_arena`, not freed  | the range is gone (touching it faults)      |
//! | `reserve_table`   | -                                     | `bytes` of zeroed memory, committed lazily  |
//! |                   |                                       | by the kernel on first touch; or null       |
//!
//! None of these allocate through the global allocator.

use crate::config::ARENA_SIZE;
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

/// A fresh anonymous private read/write mapping of `len` bytes, or null. `hint` (or null) is
/// where we would like it; the kernel takes it only if that range is free.
fn mmap_anon(hint: usize, len: usize) -> *mut libc::c_void {
    // SAFETY: without MAP_FIXED the kernel never replaces an existing mapping: the hint is only
    // a hint, so this touches no existing memory.
    let raw = unsafe {
        libc::mmap(
            hint as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        raw
    }
}

/// Where the next arena would like to go: just below the last one mapped (the kernel hands out
/// addresses top-down, so that range is usually free). 0 before the first arena.
static NEXT_ARENA_HINT: AtomicUsize = AtomicUsize::new(0);

/// Map one arena-aligned arena. Null when the OS refuses.
pub fn map_arena(guard: bool) -> *mut u8 {
    if guard {
        return map_arena_aligned(GUARD);
    }
    // First ask for exactly one arena at the hinted aligned address: one system call instead
    // of three when the kernel grants it (python3 running ffi/bench/alloc_heavy.py: 747
    // munmaps with the three-call path alone, 457 with the hint).
    let arena = match map_hinted(NEXT_ARENA_HINT.load(Ordering::Relaxed)) {
        Some(p) => p,
        None => map_arena_aligned(0),
    };
    if !arena.is_null() {
        NEXT_ARENA_HINT.store(
            (arena as usize).saturating_sub(ARENA_SIZE),
            Ordering::Relaxed,
        );
    }
    arena
}

/// One arena at `hint` (0: none yet), if the kernel grants exactly that aligned range.
fn map_hinted(hint: usize) -> Option<*mut u8> {
    if hint == 0 {
        return None;
    }
    let raw = mmap_anon(hint, ARENA_SIZE);
    if raw.is_null() {
        return None;
    }
    if raw as usize & (ARENA_SIZE - 1) == 0 {
        return Some(raw.cast());
    }
    // Granted elsewhere, unaligned (the range was taken): give it back and align the slow way.
    // SAFETY: the mapping was just made and nothing refers into it.
    unsafe { libc::munmap(raw, ARENA_SIZE) };
    None
}

/// Bytes of the inaccessible page kept after each arena in hardened mode (`map_arena(true)`):
/// a linear overflow off an arena's end faults there instead of reaching whatever follows.
pub const GUARD: usize = 4096;

/// Map twice the size and trim, so the result is aligned to ARENA_SIZE; with `guard` (0 or
/// `GUARD`) bytes after the arena kept mapped and made inaccessible.
fn map_arena_aligned(guard: usize) -> *mut u8 {
    let len = 2 * ARENA_SIZE;
    let raw = mmap_anon(0, len);
    if raw.is_null() {
        return ptr::null_mut();
    }
    let start = raw as usize;
    let aligned = (start + ARENA_SIZE - 1) & !(ARENA_SIZE - 1);
    let head = aligned - start;
    // At least a page follows the arena: the mapping is page-aligned, so head is at most
    // ARENA_SIZE - 4096 and the tail at least 4096 >= guard.
    let tail = len - head - ARENA_SIZE;
    // SAFETY: the trimmed and protected ranges lie inside the mapping made above, unused.
    unsafe {
        if head != 0 {
            libc::munmap(raw, head);
        }
        let after = (aligned + ARENA_SIZE) as *mut libc::c_void;
        if guard != 0 && (tail < guard || libc::mprotect(after, guard, libc::PROT_NONE) != 0) {
            libc::munmap(aligned as *mut libc::c_void, len - head);
            return ptr::null_mut();
        }
        if tail > guard {
            libc::munmap(after.byte_add(guard), tail - guard);
        }
    }
    aligned as *mut u8
}

/// Make `len` bytes at `p` (page-aligned, inside one of our arenas) inaccessible: hardened
/// mode's guard between an arena's header page and its pools. False if the kernel refused.
///
/// # Safety
/// The range is inside an arena we mapped and holds nothing.
pub unsafe fn protect_none(p: *mut u8, len: usize) -> bool {
    // SAFETY: per the contract.
    unsafe { libc::mprotect(p.cast(), len, libc::PROT_NONE) == 0 }
}

/// Give an arena back to the OS (`guard`: it was mapped with its guard page).
///
/// # Safety
/// `p` came from `map_arena(guard)` and nothing refers into it any more.
pub unsafe fn unmap_arena(p: *mut u8, guard: bool) {
    RELEASES.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    let len = ARENA_SIZE + if guard { GUARD } else { 0 };
    // SAFETY: the caller guarantees the range is one of our arenas (and its guard) and unused.
    let rc = unsafe { libc::munmap(p.cast(), len) };
    invariant!(rc == 0, "munmap of an arena failed");
}

/// Arenas given back to the OS (`munmap`) since the process started: the only system call by
/// which the pools give memory back (there is no `madvise`).
static RELEASES: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// See `alloc::hold_os_releases`: one more level of hold on this thread.
pub(crate) fn hold_releases() {
    let d = crate::tls::get::<{ crate::tls::OS_HOLD }>();
    crate::tls::set::<{ crate::tls::OS_HOLD }>(d + 1);
}

/// End one level of hold.
pub(crate) fn end_hold() {
    let d = crate::tls::get::<{ crate::tls::OS_HOLD }>();
    debug_assert!(d > 0, "release_os_hold without a hold");
    crate::tls::set::<{ crate::tls::OS_HOLD }>(d.saturating_sub(1));
}

/// Whether this thread holds back releases to the OS (arena purges wait).
pub(crate) fn releases_held() -> bool {
    crate::tls::get::<{ crate::tls::OS_HOLD }>() != 0
}

/// How many times the pools have given an arena back to the OS (`munmap`) so far, in all
/// threads. Tests use it to check that no collection pause makes such a call
/// (`alloc::hold_os_releases`).
pub fn release_calls() -> usize {
    RELEASES.load(core::sync::atomic::Ordering::Relaxed)
}

/// Milliseconds on a monotonic clock (the coarse one: a vDSO read, no system call).
pub fn now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer; CLOCK_MONOTONIC_COARSE always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// Reserve `bytes` of zeroed memory for an internal table (arena descriptors, map leaves,
/// thread heaps). The kernel commits pages on first touch. Never freed.
pub fn reserve_table(bytes: usize) -> *mut u8 {
    mmap_anon(0, bytes).cast()
}

/// Give back a table that `reserve_table(bytes)` returned and that nothing refers to any more
/// (debug mode's registry, which grows by moving).
///
/// # Safety
/// `p` and `bytes` are a `reserve_table` result and its size, no longer used.
pub unsafe fn release_table(p: *mut u8, bytes: usize) {
    // SAFETY: per the contract, the whole mapping is ours and unused.
    let rc = unsafe { libc::munmap(p.cast(), bytes) };
    invariant!(rc == 0, "munmap of a table failed");
}

pub use super::fatal::write_stderr;

/// Resident set size of this process in bytes (from /proc/self/statm), for tests and benches.
pub fn resident_bytes() -> Option<usize> {
    let mut buf = [0u8; 128];
    // SAFETY: the path is a NUL-terminated literal; buf is a valid writable buffer.
    let n = unsafe {
        let fd = libc::open(c"/proc/self/statm".as_ptr(), libc::O_RDONLY);
        if fd < 0 {
            return None;
        }
        let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
        libc::close(fd);
        n
    };
    if n <= 0 {
        return None;
    }
    let text = core::str::from_utf8(&buf[..n as usize]).ok()?;
    let pages: usize = text.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    Some(pages * page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guarded_arena_is_aligned_and_followed_by_an_inaccessible_page() {
        let p = map_arena(true);
        assert!(!p.is_null());
        assert_eq!(p as usize % ARENA_SIZE, 0);
        // SAFETY: the arena is ours; the guard page after it is mapped inaccessible, which
        // mincore reports as mapped (the probe below never touches it).
        unsafe {
            p.write_bytes(1, ARENA_SIZE);
            let mut vec = 0u8;
            let guard = p.add(ARENA_SIZE);
            assert_eq!(
                libc::mincore(guard.cast(), GUARD, &mut vec),
                0,
                "the guard page is mapped"
            );
            // /proc/self/maps names its protection: ---p.
            let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
            let line = maps
                .lines()
                .find(|l| l.starts_with(&format!("{:x}-", guard as usize)))
                .expect("a mapping starts at the guard page");
            assert!(line.contains(" ---p "), "{line}");
            unmap_arena(p, true);
        }
    }

    #[test]
    fn arena_is_aligned_zeroed_and_unmappable() {
        let p = map_arena(false);
        assert!(!p.is_null());
        assert_eq!(p as usize % ARENA_SIZE, 0);
        // SAFETY: p is a fresh arena of ARENA_SIZE bytes.
        unsafe {
            assert!(
                core::slice::from_raw_parts(p, ARENA_SIZE)
                    .iter()
                    .all(|&b| b == 0)
            );
            p.write_bytes(7, 4096);
            unmap_arena(p, false);
        }
    }

    #[test]
    fn hinted_arenas_are_aligned_distinct_and_zeroed_even_when_the_hint_is_taken() {
        let mut arenas: Vec<*mut u8> = (0..8).map(|_| map_arena(false)).collect();
        // Occupy the next hinted range with a foreign mapping: the next arena must go elsewhere.
        let hint = NEXT_ARENA_HINT.load(Ordering::Relaxed);
        let squatter = mmap_anon(hint, 4096);
        arenas.extend((0..4).map(|_| map_arena(false)));
        let mut sorted = arenas.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), arenas.len(), "two arenas at one address");
        for w in sorted.windows(2) {
            assert!(
                w[1] as usize - w[0] as usize >= ARENA_SIZE,
                "overlapping arenas"
            );
        }
        for &p in &arenas {
            assert!(!p.is_null());
            assert_eq!(p as usize % ARENA_SIZE, 0);
            let range = p as usize..p as usize + ARENA_SIZE;
            assert!(
                !range.contains(&(squatter as usize)),
                "arena over a foreign mapping"
            );
            // SAFETY: p is a fresh arena of ARENA_SIZE bytes, unmapped once below.
            unsafe {
                assert!(
                    core::slice::from_raw_parts(p, ARENA_SIZE)
                        .iter()
                        .all(|&b| b == 0)
                );
                p.write_bytes(1, ARENA_SIZE);
            }
        }
        for p in arenas {
            // SAFETY: each p came from map_arena and is unmapped once.
            unsafe { unmap_arena(p, false) };
        }
        // SAFETY: the squatter mapping is ours and unused.
        unsafe { libc::munmap(squatter, 4096) };
    }
}
