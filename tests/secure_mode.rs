//! Hardened mode (`ARENAGC_SECURE=1`): each property in a child process (this binary again),
//! run with and without the mode where the difference is the point. `harness = false`.
//! - freed blocks are cleared (a read after free sees zeros past the allocator's two words);
//! - new pools hand their blocks out in a random order (not ascending, as the default mode's
//!   carving does);
//! - the pool after an arena's header page and the page after each arena are inaccessible (a
//!   write there faults);
//! - pools emptied and reused (for their class, from the heap's cache, with the shuffled list
//!   they kept; for another class, carved again) hand out every block once, in no ascending
//!   order, and the allocator's validator passes;
//! - the default mode's checks still hold (a double free aborts).

use arenagc::ArenaAlloc;
use arenagc::alloc::c;
use arenagc::config::{ARENA_SIZE, POOL_SIZE};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

#[global_allocator]
static GLOBAL: ArenaAlloc = ArenaAlloc;

fn case(name: &str) {
    // SAFETY: each case is a deliberate probe of the allocator's memory; the faults are the
    // point (the parent checks the signal).
    unsafe {
        match name {
            "freed_memory_cleared" => {
                let p = c::malloc(200);
                p.write_bytes(0xAB, 200);
                c::free(p);
                let stale = (16..200)
                    .filter(|&i| core::ptr::read_volatile(p.add(i)) != 0)
                    .count();
                println!("stale bytes after free: {stale}");
            }
            "allocation_order" => {
                let v: Vec<usize> = (0..200).map(|_| c::malloc(48) as usize).collect();
                let descending = v.windows(2).filter(|w| w[1] < w[0]).count();
                println!("descending steps: {descending}");
            }
            "write_to_the_pool_after_the_header_page" => {
                let b = c::malloc(32) as usize;
                let arena = b & !(ARENA_SIZE - 1);
                core::ptr::write_volatile((arena + POOL_SIZE) as *mut u8, 1);
                println!("no fault");
            }
            "write_past_the_arena_end" => {
                let b = c::malloc(32) as usize;
                let arena = b & !(ARENA_SIZE - 1);
                core::ptr::write_volatile((arena + ARENA_SIZE) as *mut u8, 1);
                println!("no fault");
            }
            "double_free" => {
                let (p, q) = (c::malloc(64), c::malloc(64));
                c::free(p);
                c::free(q);
                c::free(p);
                println!("no fault");
            }
            "reused_pools" => {
                // Fill many pools of one class, free everything (the emptied pools retire to the
                // heap's cache, hardened mode keeping their shuffled lists), then take them back
                // for the same class and for another: every block distinct and whole.
                let fill = |size: usize| -> Vec<*mut u8> {
                    let v: Vec<*mut u8> = (0..3000).map(|_| c::malloc(size)).collect();
                    for (i, &p) in v.iter().enumerate() {
                        assert!(!p.is_null() && p as usize % 16 == 0);
                        p.write_bytes(i as u8, size);
                    }
                    for (i, &p) in v.iter().enumerate() {
                        assert!(
                            (0..size).all(|j| *p.add(j) == i as u8),
                            "block {i} overwritten"
                        );
                    }
                    let mut sorted: Vec<usize> = v.iter().map(|&p| p as usize).collect();
                    sorted.sort_unstable();
                    sorted.dedup();
                    assert_eq!(sorted.len(), v.len(), "a block handed out twice");
                    arenagc::alloc::validate().unwrap();
                    v
                };
                let first = fill(48);
                first.iter().for_each(|&p| c::free(p));
                let again = fill(48);
                let reused = again.iter().filter(|p| first.contains(p)).count();
                let descending = again.windows(2).filter(|w| w[1] < w[0]).count();
                again.iter().for_each(|&p| c::free(p));
                let other = fill(256);
                other.iter().for_each(|&p| c::free(p));
                arenagc::alloc::validate().unwrap();
                println!("reused blocks: {reused}");
                println!("descending steps: {descending}");
            }
            _ => panic!("unknown case {name}"),
        }
    }
}

fn run(name: &str, secure: bool) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env("SECURE_CASE", name)
        .env_remove("ARENAGC_DEBUG")
        .env_remove("ARENAGC_SECURE");
    if secure {
        cmd.env("ARENAGC_SECURE", "1");
    }
    let o = cmd.output().unwrap();
    (
        o.status.signal(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn number(out: &str, label: &str) -> usize {
    out.lines()
        .find_map(|l| l.strip_prefix(label))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no '{label}' in {out}"))
}

fn main() {
    if cfg!(feature = "debug") {
        // Debug mode's backend serves every block then; hardened mode is not in use.
        println!("skipped: hardened mode, and this build has the feature `debug`");
        return;
    }
    if let Ok(name) = std::env::var("SECURE_CASE") {
        return case(&name);
    }
    let mut results: Vec<(&str, Result<(), String>)> = Vec::new();
    let mut check = |name: &'static str, ok: bool, detail: String| {
        results.push((name, if ok { Ok(()) } else { Err(detail) }));
    };

    // Built with the feature `secure`, hardened mode is on without the variable: the "default"
    // runs are hardened too.
    let built_in = cfg!(feature = "secure");
    let (_, on, _) = run("freed_memory_cleared", true);
    let (_, off, _) = run("freed_memory_cleared", false);
    let stale_off = number(&off, "stale bytes after free:");
    check(
        "freed_memory_is_cleared",
        number(&on, "stale bytes after free:") == 0
            && if built_in {
                stale_off == 0
            } else {
                stale_off > 0
            },
        format!("hardened: {on}; default: {off}"),
    );

    let (_, on, _) = run("allocation_order", true);
    let (_, off, _) = run("allocation_order", false);
    let (d_on, d_off) = (
        number(&on, "descending steps:"),
        number(&off, "descending steps:"),
    );
    check(
        "new_pools_hand_out_blocks_in_a_random_order",
        d_on >= 40 && if built_in { d_off >= 40 } else { d_off <= 5 },
        format!("descending steps of 199: hardened {d_on}, default {d_off}"),
    );

    for name in [
        "write_to_the_pool_after_the_header_page",
        "write_past_the_arena_end",
    ] {
        let (sig, out, err) = run(name, true);
        check(
            if name.contains("header") {
                "the_pool_after_the_header_page_is_a_guard"
            } else {
                "the_page_after_each_arena_is_a_guard"
            },
            sig == Some(libc::SIGSEGV),
            format!("signal {sig:?}: {out} {err}"),
        );
    }

    let (sig, out, err) = run("reused_pools", true);
    check(
        "pools_reused_for_their_class_keep_a_random_order",
        sig.is_none()
            && number(&out, "reused blocks:") > 2000
            && number(&out, "descending steps:") > 500,
        format!("signal {sig:?}: {out} {err}"),
    );

    let (sig, _, err) = run("double_free", true);
    check(
        "a_double_free_still_aborts",
        sig == Some(libc::SIGABRT) && err.contains("fatal error: double free"),
        format!("signal {sig:?}: {err}"),
    );

    let failed = results.iter().filter(|r| r.1.is_err()).count();
    for (name, r) in &results {
        match r {
            Ok(()) => println!("test {name} ... ok"),
            Err(e) => println!("test {name} ... FAILED: {e}"),
        }
    }
    println!("{} passed, {failed} failed", results.len() - failed);
    if failed > 0 {
        std::process::exit(1);
    }
}
