//! Memory goes back to the OS: allocate many small blocks, free them all, and check that the
//! arenas were released (stats): after the purge delay at the next arena event, and at once by
//! `trim()`; and that the resident set shrank. One test in its own binary,
//! so no other test's allocations blur the figures.

use arenagc::ArenaAlloc;
use arenagc::alloc::{os::resident_bytes, stats, trim};
use arenagc::config::ARENA_SIZE;
use core::alloc::{GlobalAlloc, Layout};

#[test]
fn freed_arenas_are_released_and_rss_falls() {
    let l = Layout::from_size_align(64, 8).unwrap();
    let n = 2_000_000;
    let base_rss = resident_bytes().unwrap();
    let before = stats();
    let mut v: Vec<*mut u8> = Vec::with_capacity(n);
    for i in 0..n {
        // SAFETY: valid layout.
        let p = unsafe { ArenaAlloc.alloc(l) };
        assert!(!p.is_null());
        // SAFETY: fresh 64-byte block: touch it so it is resident.
        unsafe { p.write_bytes(i as u8, 64) };
        v.push(p);
    }
    let full = stats();
    let full_rss = resident_bytes().unwrap();
    let payload = n * 64;
    assert!(
        full.arenas.current >= (payload / ARENA_SIZE) as u64,
        "{full}"
    );
    assert!(
        full_rss - base_rss >= payload * 9 / 10,
        "RSS rose by only {}",
        full_rss - base_rss
    );
    // Free the first half: its arenas become free and wait out the purge delay (100 ms).
    let half = n / 2;
    for p in v.drain(..half) {
        // SAFETY: each p is live with layout l.
        unsafe { ArenaAlloc.dealloc(p, l) };
    }
    // Each is still mapped (waiting) or already unmapped (a slow build can take longer than the
    // delay to free them); either way it is accounted for. The waiting itself is tested with
    // controlled delays in the unit tests (`free_arenas_wait_out_the_purge_delay`).
    let mid = stats();
    let freed_arenas = (half * 64 / ARENA_SIZE) as u64;
    let released_mid = mid.arenas.released_total - before.arenas.released_total;
    assert!(
        mid.arenas_free as u64 + released_mid + 4 >= freed_arenas,
        "freed arenas neither free nor released\n{mid}"
    );
    std::thread::sleep(std::time::Duration::from_millis(250));
    // Free the rest: the first arena it frees finds the others expired and unmaps them.
    for p in v.drain(..) {
        // SAFETY: each p is live with layout l.
        unsafe { ArenaAlloc.dealloc(p, l) };
    }
    drop(v);
    let late = stats();
    let released_late = late.arenas.released_total - before.arenas.released_total;
    assert!(
        released_late + 4 >= freed_arenas,
        "expired arenas unmapped at the next arena event: {released_late} of {freed_arenas}\n{late}"
    );
    // trim() unmaps the rest at once (one spare stays).
    trim();
    let after = stats();
    let after_rss = resident_bytes().unwrap();
    let released = after.arenas.released_total - before.arenas.released_total;
    assert!(
        released + 2 >= full.arenas.current - before.arenas.current,
        "only {released} of {} arenas released\n{after}",
        full.arenas.current
    );
    assert!(after.arenas.current <= before.arenas.current + 1, "{after}");
    let rise = full_rss - base_rss;
    let still = after_rss.saturating_sub(base_rss);
    assert!(
        still * 10 <= rise,
        "RSS fell by too little: rose {rise}, still {still} above the start"
    );
}
