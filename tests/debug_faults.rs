//! Debug-mode fault detection. Each fault runs in a child process (this same binary, with
//! `ARENAGC_FAULT` naming the fault and `ARENAGC_DEBUG=1` switching debug mode on before the
//! first allocation); the parent asserts the child aborted with a message naming the fault.
//! `harness = false`: a plain `main` that prints `N passed, N failed`.

use arenagc::ArenaAlloc;
use core::alloc::{GlobalAlloc, Layout};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

#[global_allocator]
static GLOBAL: ArenaAlloc = ArenaAlloc;

/// (fault name, debug mode on, text the message must contain)
const CASES: &[(&str, bool, &str)] = &[
    ("overflow", true, "fatal error: overflow"),
    ("overflow_large", true, "fatal error: overflow"),
    ("underflow", true, "fatal error: underflow"),
    // Sizes that once crossed to the large path and were named "not from this allocator".
    (
        "underflow_500",
        true,
        "the header, if intact, says 500 bytes, allocation #",
    ),
    ("underflow_1500", true, "fatal error: underflow"),
    // A block from the system allocator whose whole header was overwritten: named from the
    // registry of live system blocks (debug_large.rs), not "not from this allocator".
    (
        "underflow_large_header",
        true,
        "payload of a 5000-byte block were overwritten",
    ),
    (
        "underflow_over_aligned_header",
        true,
        "payload of a 100-byte block were overwritten",
    ),
    (
        "overflow_large_never_freed",
        true,
        "5000-byte block were overwritten (allocation #",
    ),
    ("double_free", true, "fatal error: double free"),
    ("double_free_large", true, "fatal error: double free"),
    (
        "foreign_pointer",
        true,
        "fatal error: pointer not from this allocator",
    ),
    ("write_after_free", true, "48-byte block (allocation #"),
    (
        "write_after_free_names_the_byte",
        true,
        "byte 5 of the payload was written to after the free (found 0x01, not 0xdd)",
    ),
    (
        "write_after_free_seen_at_exit",
        true,
        "fatal error: write after free",
    ),
    (
        "write_after_free_medium_evicted",
        true,
        "1000-byte block (allocation #",
    ),
    ("size_mismatch", true, "fatal error: size mismatch"),
    ("c_interior_pointer", false, "fatal error: invalid free"),
    ("debug_interior_pointer", true, "fatal error: invalid free"),
    (
        "debug_stack_pointer",
        true,
        "fatal error: pointer not from this allocator",
    ),
    ("default_double_free", false, "fatal error: double free"),
    (
        "debug_header_overwritten",
        true,
        "header was overwritten: it claims 1000 bytes",
    ),
    (
        "debug_arena_start_pointer",
        true,
        "fatal error: invalid free",
    ),
    // Pool blocks that are never freed: found by the exit check's walk of the pools
    // (debug_walk.rs). Parts separated by " && " must all be in the message.
    (
        "overflow_never_freed",
        true,
        "fatal error: overflow of pointer && bytes after the end of a 40-byte block were \
         overwritten (allocation # && found at exit: the block was never freed",
    ),
    (
        "overflow_medium_never_freed",
        true,
        "fatal error: overflow of pointer && bytes after the end of a 1000-byte block were \
         overwritten (allocation # && found at exit: the block was never freed",
    ),
    (
        "overflow_never_freed_other_thread",
        true,
        "fatal error: overflow of pointer && a 300-byte block were overwritten (allocation # \
         && found at exit",
    ),
    (
        "overflow_never_freed_threads_running",
        true,
        "fatal error: overflow of pointer && a 64-byte block were overwritten (allocation # \
         && found at exit",
    ),
    (
        "underflow_never_freed",
        true,
        "fatal error: underflow of pointer && the guard bytes before the payload of a 40-byte \
         block were overwritten (guard: [fd, fd, 00]; allocation # && found at exit",
    ),
    (
        "header_overwritten_never_freed",
        true,
        "fatal error: underflow of pointer && header was overwritten: it claims 1000 bytes \
         && found at exit",
    ),
    // With tracing on (the child starts it first, 8 frames): each fault also says where the
    // block was allocated and, once freed, where (src/trace/freed.rs).
    (
        "traced_double_free",
        true,
        "fatal error: double free && the 64-byte block (allocation # && \
         Memory block allocated at (most recent call first): && in debug_faults::traced_make && \
         Memory block freed at (most recent call first): && in debug_faults::traced_drop",
    ),
    (
        "traced_write_after_free",
        true,
        "fatal error: write after free && 48-byte block (allocation # && \
         Memory block allocated at (most recent call first): && in debug_faults::traced_make && \
         Memory block freed at (most recent call first): && in debug_faults::traced_drop",
    ),
    (
        "traced_overflow",
        true,
        "fatal error: overflow && a 24-byte block && \
         Memory block allocated at (most recent call first): && in debug_faults::traced_make && \
         Memory block freed at (most recent call first): && in debug_faults::traced_drop",
    ),
    (
        "traced_overflow_never_freed",
        true,
        "fatal error: overflow && found at exit && \
         Memory block allocated at (most recent call first): && in debug_faults::traced_make",
    ),
    (
        "traced_realloc_overflow",
        true,
        "fatal error: overflow && a 40-byte block && \
         Memory block allocated at (most recent call first): && in debug_faults::traced_make && \
         Memory block freed at (most recent call first): && in debug_faults::traced_grow",
    ),
];

/// A block allocated in a frame of its own, for the traced cases' "allocated at".
#[inline(never)]
fn traced_make(n: usize) -> *mut u8 {
    // SAFETY: a non-zero size.
    let p = unsafe { ArenaAlloc.alloc(layout(n)) };
    std::hint::black_box(p)
}

/// Its free, in a frame of its own, for "freed at".
#[inline(never)]
fn traced_drop(p: *mut u8, n: usize) {
    // SAFETY: the caller's block of n bytes (or the misuse under test).
    unsafe { ArenaAlloc.dealloc(std::hint::black_box(p), layout(n)) }
}

/// A realloc that moves the block (debug mode's always does), in a frame of its own.
#[inline(never)]
fn traced_grow(p: *mut u8, n: usize, to: usize) -> *mut u8 {
    // SAFETY: the caller's block of n bytes (or the misuse under test).
    std::hint::black_box(unsafe { ArenaAlloc.realloc(p, layout(n), to) })
}

/// Programs that misuse nothing and exit with many live blocks (of every size, never freed),
/// freed ones in the quarantine, and other threads still allocating: the exit check must stay
/// silent. `clean_walk_under_churn` runs the walk itself (`alloc::debug_exit_check`) for 3 s
/// while two threads allocate and free without pause: with the confirmation taken out, it
/// reports a block caught in the middle of an operation (tried by hand). (name, runs)
const CLEAN: &[(&str, usize)] = &[
    ("clean_many_live", 1),
    ("clean_threads_running", 8),
    ("clean_walk_under_churn", 1),
];

/// Register debug mode's exit check (its first free does), for a child that exits normally.
fn arm_exit_check() {
    // SAFETY: a fresh block freed once; the first free registers debug mode's exit check.
    unsafe {
        let q = ArenaAlloc.alloc(layout(64));
        ArenaAlloc.dealloc(q, layout(64));
    }
}

/// A tiny xorshift generator (no allocation, no dependency).
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// Blocks given from one churning thread to another, which frees them (remote frees).
static HANDOFF: std::sync::Mutex<Vec<(usize, usize)>> = std::sync::Mutex::new(Vec::new());

/// Allocate, fill, reallocate and free blocks of every size forever, some freed by another
/// thread, now and then trimming; `pause`: sleep a little after each operation (so quiet
/// moments exist).
fn churn(seed: u64, pause: bool) -> ! {
    let mut x = seed | 1;
    let mut live = [(0usize, 0usize); 256];
    loop {
        let i = (next(&mut x) % live.len() as u64) as usize;
        // SAFETY: every block is used within its size and freed once, by one thread.
        unsafe {
            let (p, n) = live[i];
            if p != 0 {
                if next(&mut x) % 4 == 0 {
                    HANDOFF.lock().unwrap().push((p, n));
                } else if next(&mut x) % 3 == 0 {
                    let m = 1 + (next(&mut x) % 2100) as usize;
                    let q = ArenaAlloc.realloc(p as *mut u8, layout(n), m);
                    q.write_bytes(0x5A, m);
                    live[i] = (q as usize, m);
                    continue;
                } else {
                    ArenaAlloc.dealloc(p as *mut u8, layout(n));
                }
            }
            let n = match next(&mut x) % 8 {
                0 => 1 + (next(&mut x) % 5000) as usize,
                _ => 1 + (next(&mut x) % 2048) as usize,
            };
            let p = ArenaAlloc.alloc(layout(n));
            p.write_bytes(0xA5, n);
            live[i] = (p as usize, n);
            let theirs = HANDOFF.lock().unwrap().pop();
            if let Some((q, m)) = theirs {
                ArenaAlloc.dealloc(q as *mut u8, layout(m));
            }
        }
        if next(&mut x) % 4096 == 0 {
            arenagc::alloc::trim(); // flushes the quarantine, retires empty pools, unmaps arenas
        }
        if pause {
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
    }
}

/// Live blocks of every pooled size (and some large ones), written through, never freed; some
/// from the C functions, some from threads that have exited (their pools abandoned).
fn leave_live_blocks() {
    HANDOFF.lock().unwrap().reserve(100_000);
    // SAFETY: blocks are written within their sizes and never freed (a leak, on purpose).
    unsafe {
        for n in 1..=4200 {
            ArenaAlloc.alloc(layout(n)).write_bytes(0x11, n);
            let c = arenagc::alloc::c::malloc(n);
            c.write_bytes(0x22, n);
            let z = arenagc::alloc::c::calloc(1, n);
            let r = arenagc::alloc::c::realloc(z, n + 7);
            r.write_bytes(0x33, n + 7);
            let f = ArenaAlloc.alloc(layout(n));
            ArenaAlloc.dealloc(f, layout(n)); // waits in the quarantine
        }
        for _ in 0..4 {
            std::thread::spawn(|| {
                for n in (1..=4200).step_by(7) {
                    ArenaAlloc.alloc(layout(n)).write_bytes(0x44, n);
                }
            })
            .join()
            .unwrap();
        }
        // Many small blocks, several pools' worth, with holes freed in between.
        let v: Vec<usize> = (0..20_000)
            .map(|_| ArenaAlloc.alloc(layout(40)) as usize)
            .collect();
        for (i, &p) in v.iter().enumerate() {
            if i % 3 == 0 {
                ArenaAlloc.dealloc(p as *mut u8, layout(40));
            }
        }
        core::mem::forget(v);
    }
}

fn layout(n: usize) -> Layout {
    Layout::from_size_align(n, 8).unwrap()
}

/// Commit the fault named `name`. Returns only if the allocator failed to catch it.
fn commit(name: &str) {
    // SAFETY: these are deliberate misuses; the allocator must abort before any harm.
    unsafe {
        match name {
            "overflow" | "overflow_large" => {
                // 5000: past the medium classes (4096) with debug mode's header and guard, so
                // a block of the system allocator's.
                let n = if name == "overflow" { 24 } else { 5000 };
                let p = ArenaAlloc.alloc(layout(n));
                *p.add(n) = 0; // one byte past the end
                ArenaAlloc.dealloc(p, layout(n));
            }
            "underflow" => {
                let p = ArenaAlloc.alloc(layout(40));
                *p.sub(1) = 0;
                ArenaAlloc.dealloc(p, layout(40));
            }
            "underflow_500" | "underflow_1500" => {
                let n = if name == "underflow_500" { 500 } else { 1500 };
                let p = ArenaAlloc.alloc(layout(n));
                *p.sub(1) = 0;
                ArenaAlloc.dealloc(p, layout(n));
            }
            "underflow_large_header" | "underflow_over_aligned_header" => {
                let l = if name == "underflow_large_header" {
                    layout(5000)
                } else {
                    Layout::from_size_align(100, 4096).unwrap()
                };
                let p = ArenaAlloc.alloc(l);
                p.sub(16).write_bytes(0x41, 16);
                ArenaAlloc.dealloc(p, l);
            }
            "overflow_large_never_freed" => {
                let p = ArenaAlloc.alloc(layout(5000));
                *p.add(5000) = 0; // one byte past the end, and the block is never freed
                let q = ArenaAlloc.alloc(layout(64));
                ArenaAlloc.dealloc(q, layout(64)); // a free: debug mode's exit check is armed
                std::process::exit(0);
            }
            "traced_double_free" => {
                let p = traced_make(64);
                traced_drop(p, 64);
                ArenaAlloc.dealloc(p, layout(64));
            }
            "traced_write_after_free" => {
                let p = traced_make(48);
                traced_drop(p, 48);
                *p.add(5) = 1;
                arenagc::alloc::trim(); // flushes the quarantine, which checks it
            }
            "traced_overflow" => {
                let p = traced_make(24);
                *p.add(24) = 0;
                traced_drop(p, 24);
            }
            "traced_overflow_never_freed" => {
                let p = traced_make(40);
                *p.add(40) = 0;
                traced_drop(traced_make(16), 16); // a free: the exit check is armed
                std::process::exit(0);
            }
            "traced_realloc_overflow" => {
                let p = traced_make(40);
                *p.add(40) = 0;
                traced_grow(p, 40, 400);
            }
            "double_free" | "double_free_large" => {
                let n = if name == "double_free" { 64 } else { 5000 };
                let p = ArenaAlloc.alloc(layout(n));
                ArenaAlloc.dealloc(p, layout(n));
                ArenaAlloc.dealloc(p, layout(n));
            }
            "foreign_pointer" => {
                let mut local = [0u64; 8];
                ArenaAlloc.dealloc(local.as_mut_ptr().add(2).cast(), layout(32));
            }
            "write_after_free" | "write_after_free_names_the_byte" => {
                let p = ArenaAlloc.alloc(layout(48));
                ArenaAlloc.dealloc(p, layout(48));
                *p.add(5) = 1;
                arenagc::alloc::trim(); // flushes the quarantine, which checks it
            }
            "write_after_free_seen_at_exit" => {
                let p = ArenaAlloc.alloc(layout(48));
                ArenaAlloc.dealloc(p, layout(48));
                *p.add(5) = 1;
                // A normal exit: the quarantine is checked by the atexit handler.
                std::process::exit(0);
            }
            "write_after_free_medium_evicted" => {
                let p = ArenaAlloc.alloc(layout(1000));
                ArenaAlloc.dealloc(p, layout(1000));
                *p.add(999) = 1;
                for _ in 0..600 {
                    // Evicts p from the 512-entry quarantine: checked then.
                    let q = ArenaAlloc.alloc(layout(1000));
                    ArenaAlloc.dealloc(q, layout(1000));
                }
            }
            "size_mismatch" => {
                let p = ArenaAlloc.alloc(layout(100));
                ArenaAlloc.dealloc(p, layout(90));
            }
            "c_interior_pointer" | "debug_interior_pointer" => {
                let p = arenagc::alloc::c::malloc(64);
                arenagc::alloc::c::free(p.add(16));
            }
            "debug_stack_pointer" => {
                let mut local = [0u64; 8];
                arenagc::alloc::c::free(local.as_mut_ptr().add(4).cast());
            }
            "default_double_free" => {
                let p = arenagc::alloc::c::malloc(64);
                arenagc::alloc::c::free(p);
                arenagc::alloc::c::free(p);
            }
            "debug_header_overwritten" => {
                // An overflow out of block A that jumps A's tail guard and lands on the size
                // field of the next block B, leaving B's guard bytes intact. Freeing B must not
                // trust that size (it would fill 1 KiB of live neighbours with 0xDD).
                let mut v: Vec<usize> = (0..64)
                    .map(|_| arenagc::alloc::c::malloc(8) as usize)
                    .collect();
                v.sort_unstable();
                // Debug blocks of 8 bytes take 32: header 16, payload 8, tail guard 8.
                let k = (1..v.len()).find(|&k| v[k] - v[k - 1] == 32).unwrap();
                let (a, b) = (v[k - 1] as *mut u8, v[k] as *mut u8);
                a.add(16).cast::<u64>().write_unaligned(1000);
                arenagc::alloc::c::free(b.cast());
            }
            "overflow_never_freed" | "overflow_medium_never_freed" => {
                let n = if name == "overflow_never_freed" {
                    40
                } else {
                    1000
                };
                leave_live_blocks();
                let p = ArenaAlloc.alloc(layout(n));
                eprintln!("user pointer {p:p}");
                *p.add(n) = 0; // one byte past the end, and the block is never freed
                arm_exit_check();
                std::process::exit(0);
            }
            "overflow_never_freed_other_thread" => {
                // A block of a pool whose heap is gone (the thread exited: pool abandoned).
                let p = std::thread::spawn(|| {
                    let p = arenagc::alloc::c::malloc(300);
                    p.add(303).write(7);
                    p as usize
                })
                .join()
                .unwrap();
                eprintln!("user pointer {:p}", p as *const u8);
                arm_exit_check();
                std::process::exit(0);
            }
            "overflow_never_freed_threads_running" => {
                for seed in [1, 2] {
                    std::thread::spawn(move || churn(seed, true));
                }
                let p = ArenaAlloc.alloc(layout(64));
                eprintln!("user pointer {p:p}");
                p.add(64).write_bytes(0, 8);
                arm_exit_check();
                std::thread::sleep(std::time::Duration::from_millis(20));
                std::process::exit(0);
            }
            "underflow_never_freed" => {
                let p = ArenaAlloc.alloc(layout(40));
                eprintln!("user pointer {p:p}");
                *p.sub(1) = 0;
                arm_exit_check();
                std::process::exit(0);
            }
            "header_overwritten_never_freed" => {
                // As debug_header_overwritten, with neither block ever freed.
                let mut v: Vec<usize> = (0..64)
                    .map(|_| arenagc::alloc::c::malloc(8) as usize)
                    .collect();
                v.sort_unstable();
                let k = (1..v.len()).find(|&k| v[k] - v[k - 1] == 32).unwrap();
                let (a, b) = (v[k - 1] as *mut u8, v[k] as *mut u8);
                eprintln!("user pointer {b:p}");
                a.add(16).cast::<u64>().write_unaligned(1000);
                arm_exit_check();
                std::process::exit(0);
            }
            "clean_many_live" => {
                leave_live_blocks();
                arm_exit_check();
                std::process::exit(0);
            }
            "clean_threads_running" => {
                leave_live_blocks();
                for seed in [3, 4, 5] {
                    std::thread::spawn(move || churn(seed, false));
                }
                std::thread::sleep(std::time::Duration::from_millis(30));
                std::process::exit(0); // the check runs while the threads allocate
            }
            "clean_walk_under_churn" => {
                // Few live blocks, so the walks are quick and many, and often meet a block in
                // the middle of an allocation or a free (the suspects dismissed).
                HANDOFF.lock().unwrap().reserve(100_000);
                for seed in [6, 7] {
                    std::thread::spawn(move || churn(seed, false));
                }
                let start = std::time::Instant::now();
                let mut walks = 0;
                while start.elapsed() < std::time::Duration::from_secs(3) {
                    let (found, _) = arenagc::alloc::debug_exit_check();
                    assert!(!found, "the exit check reported a fault of a clean program");
                    walks += 1;
                }
                let (_, dismissed) = arenagc::alloc::debug_exit_check();
                println!("{walks} walks, {dismissed} suspects dismissed");
                std::process::exit(0);
            }
            "debug_arena_start_pointer" => {
                // The first byte of an arena: the 16 bytes before it, and the "pool header" a
                // careless check would read for them, belong to the region below. Take the
                // lowest of our arenas and make the region below it unreadable (when nothing
                // is mapped there), so such a read would fault instead of aborting cleanly.
                let size = arenagc::config::ARENA_SIZE;
                let p = arenagc::alloc::c::malloc(32) as usize;
                let mut start = p & !(size - 1);
                while arenagc::alloc::owns((start - size) as *const u8) {
                    start -= size;
                }
                libc::mmap(
                    (start - size) as *mut libc::c_void,
                    size,
                    libc::PROT_NONE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                    -1,
                    0,
                );
                arenagc::alloc::c::free(start as *mut _);
            }
            other => panic!("unknown fault {other}"),
        }
    }
}

/// In debug mode: every new block is filled with 0xCD (zeroed ones are zero), small and large,
/// through the Rust and the C entry points.
fn check_fills() {
    assert!(arenagc::alloc::debug_enabled());
    for n in [1usize, 16, 24, 100, 512, 513, 3000, 4096, 5000, 70_000] {
        // SAFETY: n > 0; every block is read within its size and freed once.
        unsafe {
            let p = ArenaAlloc.alloc(layout(n));
            assert!(
                core::slice::from_raw_parts(p, n).iter().all(|&b| b == 0xCD),
                "alloc {n}"
            );
            ArenaAlloc.dealloc(p, layout(n));
            let z = ArenaAlloc.alloc_zeroed(layout(n));
            assert!(
                core::slice::from_raw_parts(z, n).iter().all(|&b| b == 0),
                "zeroed {n}"
            );
            ArenaAlloc.dealloc(z, layout(n));
            let c = arenagc::alloc::c::malloc(n);
            assert!(
                core::slice::from_raw_parts(c, n).iter().all(|&b| b == 0xCD),
                "malloc {n}"
            );
            arenagc::alloc::c::free(c);
        }
    }
    arenagc::alloc::trim(); // empties the quarantine, checking each freed block's 0xDD fill
}

fn main() {
    if let Ok(name) = std::env::var("ARENAGC_FAULT") {
        // (Built with the feature `debug`, debug mode is on without the variable.)
        assert_eq!(
            arenagc::alloc::debug_enabled(),
            cfg!(feature = "debug") || std::env::var("ARENAGC_DEBUG").is_ok()
        );
        if name == "fills" {
            check_fills();
            println!("fills ok");
            return;
        }
        if name.starts_with("traced_") {
            arenagc::trace::start(8).unwrap();
        }
        commit(&name);
        eprintln!("fault {name} was not caught");
        std::process::exit(3);
    }
    let exe = std::env::current_exe().unwrap();
    let (mut passed, mut failed) = (0, 0);
    for &(name, debug, want) in CASES {
        let mut cmd = Command::new(&exe);
        cmd.env("ARENAGC_FAULT", name).env_remove("ARENAGC_DEBUG");
        if debug {
            cmd.env("ARENAGC_DEBUG", "1");
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let aborted = out.status.signal() == Some(libc::SIGABRT);
        // The message names the user's pointer, when the child printed it.
        let names_pointer = stderr
            .lines()
            .find_map(|l| l.strip_prefix("user pointer "))
            .is_none_or(|p| stderr.contains(&format!("of pointer {p}:")));
        if aborted
            && want.split(" && ").all(|w| stderr.contains(w))
            && stderr.contains("of pointer 0x")
            && names_pointer
        {
            println!("test {name} ... ok");
            passed += 1;
        } else {
            println!(
                "test {name} ... FAILED (status {:?}, stderr: {stderr})",
                out.status
            );
            failed += 1;
        }
    }
    for &(name, runs) in CLEAN {
        let bad = (0..runs).find_map(|_| {
            let out = Command::new(&exe)
                .env("ARENAGC_FAULT", name)
                .env("ARENAGC_DEBUG", "1")
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            (!out.status.success() || stderr.contains("fatal error")).then_some((out, stderr))
        });
        match bad {
            None => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Some((out, stderr)) => {
                println!(
                    "test {name} ... FAILED (status {:?}, stderr: {stderr})",
                    out.status
                );
                failed += 1;
            }
        }
    }
    // The debug mode itself: it is on (asserted by the child), new blocks of every size are
    // filled with 0xCD, zeroed ones are zero, and freeing clean blocks does not abort.
    let out = Command::new(&exe)
        .env("ARENAGC_FAULT", "fills")
        .env("ARENAGC_DEBUG", "1")
        .output()
        .unwrap();
    if out.status.success() && String::from_utf8_lossy(&out.stdout).contains("fills ok") {
        println!("test fills ... ok");
        passed += 1
    } else {
        println!("test fills ... FAILED ({:?})", out);
        failed += 1
    }
    println!("\n{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
