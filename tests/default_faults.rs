//! Default-mode misuse detection (no debug mode): double frees in any sequence, frees racing on
//! two threads, writes after free into a freed block's link or mark, a C object's decref after
//! its free (word 0 decremented), and invalid frees, for small and medium blocks, through Rust's
//! `GlobalAlloc` and the C malloc family. Each fault runs in a child process (this binary, with
//! `ARENAGC_FAULT` naming it); the parent asserts the child aborted (SIGABRT) with the message.
//! And: whatever the child did, no block was ever handed out twice (each child that survives a
//! step checks its live blocks are distinct). `harness = false`: prints `N passed, N failed`.

use arenagc::ArenaAlloc;
use arenagc::alloc::c;
use core::alloc::{GlobalAlloc, Layout};
use std::collections::HashSet;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

#[global_allocator]
static GLOBAL: ArenaAlloc = ArenaAlloc;

/// (fault name, texts of which the message must contain one)
const CASES: &[(&str, &[&str])] = &[
    ("double_free_aba_small", &["fatal error: double free"]),
    ("double_free_aba_medium", &["fatal error: double free"]),
    (
        "double_free_after_reuse_of_others",
        &["fatal error: double free"],
    ),
    ("c_double_free_aba_small", &["fatal error: double free"]),
    ("c_double_free_aba_medium", &["fatal error: double free"]),
    ("c_double_free_immediate", &["fatal error: double free"]),
    (
        "double_free_remote_then_local",
        &["fatal error: double free"],
    ),
    (
        "double_free_local_then_remote",
        &["fatal error: double free"],
    ),
    (
        "double_free_racing_threads",
        &["fatal error: double free", "fatal error: heap corruption"],
    ),
    ("uaf_link_to_stack", &["fatal error: heap corruption"]),
    ("uaf_link_to_other_arena", &["fatal error: heap corruption"]),
    ("uaf_link_medium", &["fatal error: heap corruption"]),
    ("decref_after_free", &["fatal error: heap corruption"]),
    ("c_interior_pointer", &["fatal error: invalid free"]),
    (
        "c_free_of_a_never_handed_out_block",
        // Hardened mode carves whole pools at once (shuffled): the block is a free one there.
        &["fatal error: invalid free", "fatal error: double free"],
    ),
];

fn layout(n: usize) -> Layout {
    Layout::from_size_align(n, 8).unwrap()
}

/// Allocate `count` blocks of `n` bytes and check that they and `live` are all distinct
/// (a block handed out twice would repeat); returns them.
fn alloc_distinct(n: usize, count: usize, live: &[*mut u8]) -> Vec<*mut u8> {
    let mut seen: HashSet<usize> = live.iter().map(|&p| p as usize).collect();
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let p = c::malloc(n);
        assert!(!p.is_null());
        assert!(seen.insert(p as usize), "block {p:p} handed out twice");
        out.push(p);
    }
    out
}

/// Commit the fault named `name`. Returns only if the allocator failed to catch it.
fn commit(name: &str) {
    // SAFETY: these are deliberate misuses; the allocator must abort before any harm.
    unsafe {
        match name {
            "double_free_aba_small" | "double_free_aba_medium" => {
                let n = if name.ends_with("small") { 48 } else { 1000 };
                let (p, q) = (ArenaAlloc.alloc(layout(n)), ArenaAlloc.alloc(layout(n)));
                ArenaAlloc.dealloc(p, layout(n));
                ArenaAlloc.dealloc(q, layout(n));
                ArenaAlloc.dealloc(p, layout(n)); // p is not at the head of the list
            }
            "double_free_after_reuse_of_others" => {
                let v: Vec<*mut u8> = (0..100).map(|_| ArenaAlloc.alloc(layout(64))).collect();
                for &p in &v {
                    ArenaAlloc.dealloc(p, layout(64));
                }
                // Others handed out again (not v[50]? it may be among them: keep going).
                let again = alloc_distinct(64, 30, &[]);
                let still_free = v.iter().copied().find(|p| !again.contains(p)).unwrap();
                ArenaAlloc.dealloc(still_free, layout(64));
            }
            "c_double_free_aba_small" | "c_double_free_aba_medium" => {
                let n = if name.ends_with("small") { 200 } else { 1500 };
                let (p, q) = (c::malloc(n), c::malloc(n));
                c::free(p);
                c::free(q);
                c::free(p);
            }
            "c_double_free_immediate" => {
                let p = c::malloc(32);
                c::free(p);
                c::free(p);
            }
            "double_free_remote_then_local" => {
                let p = c::malloc(96) as usize;
                std::thread::spawn(move || c::free(p as *mut u8))
                    .join()
                    .unwrap();
                c::free(p as *mut u8);
            }
            "double_free_local_then_remote" => {
                let p = c::malloc(96);
                let q = c::malloc(96);
                c::free(p);
                c::free(q);
                let p = p as usize;
                std::thread::spawn(move || c::free(p as *mut u8))
                    .join()
                    .unwrap();
            }
            "double_free_racing_threads" => {
                // Many rounds of two threads freeing the same block at the same moment; then
                // allocate enough of the class to drain every list. The allocator must abort
                // (at the second free, or when the block would be handed out a second time),
                // never hand it out twice.
                let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
                for _ in 0..200 {
                    let p = c::malloc(80) as usize;
                    let b = barrier.clone();
                    let t = std::thread::spawn(move || {
                        b.wait();
                        c::free(p as *mut u8);
                    });
                    barrier.wait();
                    c::free(p as *mut u8);
                    t.join().unwrap();
                    alloc_distinct(80, 200, &[]);
                }
            }
            "uaf_link_to_stack" => {
                let local = [0u64; 8];
                let p = c::malloc(64);
                c::free(p);
                *(p as *mut usize) = local.as_ptr() as usize; // the link now names the stack
                let a = c::malloc(64); // p itself: its link is checked before it is stored
                let b = c::malloc(64); // would be the stack
                println!("{a:p} {b:p}");
            }
            "uaf_link_to_other_arena" => {
                // A real block of another arena: aligned, mapped, ours, but not this pool's.
                let far: Vec<*mut u8> = (0..5000).map(|_| c::malloc(2000)).collect();
                let p = c::malloc(64);
                c::free(p);
                *(p as *mut usize) = far[far.len() - 1] as usize;
                let a = c::malloc(64);
                let b = c::malloc(64);
                println!("{a:p} {b:p}");
            }
            "uaf_link_medium" => {
                let p = c::malloc(1200);
                c::free(p);
                *(p as *mut usize) ^= 0x1_0000_0000; // flip a bit of the link
                let a = c::malloc(1200);
                let b = c::malloc(1200);
                println!("{a:p} {b:p}");
            }
            "decref_after_free" => {
                // What agc_decref of a freed object does to it: word 0 (the refcount) - 1.
                let p = c::malloc(32);
                c::free(p);
                *(p as *mut isize) -= 1;
                let a = c::malloc(32);
                let b = c::malloc(32);
                println!("{a:p} {b:p}");
            }
            "c_interior_pointer" => {
                let p = c::malloc(64);
                c::free(p.add(16));
            }
            "c_free_of_a_never_handed_out_block" => {
                let p = c::malloc(64);
                // The next block of the pool, not carved yet.
                c::free(p.add(64));
            }
            _ if name.starts_with("random_misuse_") => {
                random_misuse(name["random_misuse_".len()..].parse().unwrap())
            }
            _ => panic!("unknown fault {name}"),
        }
    }
}

/// A random program of mallocs and frees of random sizes (small and medium, on this thread and
/// on a second one) that, at a random step, frees a block a second time: a block freed and not
/// handed out since. Until then every block handed out must differ from every live one; the
/// double free must abort. (Within what the default mode promises: double frees in any
/// sequence, from either thread.)
fn random_misuse(seed: u64) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut rnd = move |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    let sizes = [16, 24, 48, 100, 256, 512, 700, 1500, 2048, 3000, 4096];
    let mut live: Vec<usize> = Vec::new();
    let mut freed: Vec<usize> = Vec::new(); // freed, not handed out since
    let fault_at = 500 + rnd(3000);
    for step in 0.. {
        if step == fault_at && !freed.is_empty() {
            let p = freed[rnd(freed.len())];
            if rnd(2) == 0 {
                // SAFETY: a deliberate double free.
                unsafe { c::free(p as *mut u8) };
            } else {
                // SAFETY: the same, from another thread.
                std::thread::spawn(move || unsafe { c::free(p as *mut u8) })
                    .join()
                    .ok();
            }
            return;
        }
        if live.is_empty() || rnd(3) != 0 {
            let p = c::malloc(sizes[rnd(sizes.len())]) as usize;
            assert!(!live.contains(&p), "block {p:#x} handed out twice");
            freed.retain(|&q| q != p);
            live.push(p);
        } else {
            let p = live.swap_remove(rnd(live.len()));
            if rnd(4) == 0 {
                // SAFETY: a live block, given up on another thread.
                std::thread::spawn(move || unsafe { c::free(p as *mut u8) })
                    .join()
                    .unwrap();
            } else {
                // SAFETY: a live block.
                unsafe { c::free(p as *mut u8) };
            }
            freed.push(p);
        }
    }
}

fn main() {
    if cfg!(feature = "debug") {
        // Debug mode reports these faults its own way (tests/debug_faults.rs).
        println!("skipped: the default mode's checks, and this build has the feature `debug`");
        return;
    }
    if let Ok(name) = std::env::var("ARENAGC_FAULT") {
        assert!(
            !arenagc::alloc::debug_enabled(),
            "these are the default mode's checks"
        );
        commit(&name);
        eprintln!("fault {name} was not caught");
        std::process::exit(3);
    }
    let exe = std::env::current_exe().unwrap();
    let (mut passed, mut failed) = (0, 0);
    let random: Vec<String> = (0..24).map(|s| format!("random_misuse_{s}")).collect();
    let cases = CASES.iter().copied().chain(
        random
            .iter()
            .map(|n| (n.as_str(), &["fatal error: double free"][..])),
    );
    for (name, want) in cases {
        let out = Command::new(&exe)
            .env("ARENAGC_FAULT", name)
            .env_remove("ARENAGC_DEBUG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let aborted = out.status.signal() == Some(libc::SIGABRT);
        if aborted && want.iter().any(|w| stderr.contains(w)) && stderr.contains("of pointer 0x") {
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
    // A correct program is not disturbed: frees in every order, across threads, reuse.
    {
        let mut v = alloc_distinct(48, 5000, &[]);
        for (i, &p) in v.iter().enumerate() {
            // SAFETY: p is live, 48 bytes.
            unsafe { core::ptr::write_bytes(p, i as u8, 48) };
        }
        let half: Vec<usize> = v.drain(..2500).map(|p| p as usize).collect();
        std::thread::spawn(move || {
            for p in half {
                // SAFETY: live blocks, given up here.
                unsafe { c::free(p as *mut u8) };
            }
        })
        .join()
        .unwrap();
        let w = alloc_distinct(48, 5000, &v);
        for p in v.into_iter().chain(w) {
            // SAFETY: live blocks.
            unsafe { c::free(p) };
        }
        arenagc::alloc::validate().expect("allocator invariants");
        println!("test correct_programs_run_clean ... ok");
        passed += 1;
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
