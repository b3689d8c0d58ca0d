//! fork while other threads allocate and free across threads: every child must be able to
//! allocate and free (no lock inherited held, no pool stuck mid-notification), in plain and in
//! debug mode. `harness = false` (no test-harness threads around the forks); prints
//! `N passed, N failed`.

use arenagc::ArenaAlloc;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: ArenaAlloc = ArenaAlloc;

const FORKS: usize = 40;

/// Child body: only allocator calls and async-signal-safe libc, then _exit.
fn child_work() -> ! {
    let mut v: Vec<Vec<u8>> = Vec::new();
    for i in 0..20_000usize {
        v.push(vec![i as u8; 8 + i % 600]);
        if i % 3 == 0 {
            v.swap_remove(i % v.len());
        }
    }
    let ok = v.iter().all(|b| b.iter().all(|&x| x == b[0]));
    drop(v);
    arenagc::alloc::trim();
    // SAFETY: _exit is async-signal-safe and ends the child at once.
    unsafe { libc::_exit(if ok { 0 } else { 2 }) }
}

/// Returns an error description, or None when every child finished well.
fn run_forks() -> Option<String> {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::sync_channel::<Vec<String>>(64);
    let consumer = std::thread::spawn(move || {
        for batch in rx {
            drop(batch); // remote frees
        }
    });
    let workers: Vec<_> = (0..3)
        .map(|t| {
            let (stop, tx) = (stop.clone(), tx.clone());
            std::thread::spawn(move || {
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let batch: Vec<String> =
                        (0..64).map(|k| "x".repeat((i + k + t) % 300)).collect();
                    if tx.send(batch).is_err() {
                        break;
                    }
                    i += 1;
                }
            })
        })
        .collect();
    drop(tx);
    let mut failure = None;
    for n in 0..FORKS {
        std::thread::sleep(Duration::from_millis(5));
        // SAFETY: the child only runs child_work (allocator calls, then _exit).
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            child_work();
        }
        assert!(pid > 0, "fork failed");
        let start = Instant::now();
        let mut status = 0;
        loop {
            // SAFETY: pid is our child; status is a valid out-pointer.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                break;
            }
            if start.elapsed() > Duration::from_secs(20) {
                // SAFETY: pid is our child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                failure = Some(format!("child {n} hung (killed after 20 s)"));
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if failure.is_some() {
            break;
        }
        if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            failure = Some(format!("child {n} ended with status {status:#x}"));
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    consumer.join().unwrap();
    failure
}

fn main() {
    if std::env::var_os("ARENAGC_FORK_CHILD_RUN").is_some() {
        if let Some(e) = run_forks() {
            eprintln!("{e}");
            std::process::exit(1);
        }
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let (mut passed, mut failed) = (0, 0);
    for (name, debug) in [
        ("fork_with_threads_plain", false),
        ("fork_with_threads_debug", true),
    ] {
        let mut cmd = Command::new(&exe);
        cmd.env("ARENAGC_FORK_CHILD_RUN", "1")
            .env_remove("ARENAGC_DEBUG");
        if debug {
            cmd.env("ARENAGC_DEBUG", "1");
        }
        let out = cmd.output().unwrap();
        if out.status.success() {
            println!("test {name} ... ok");
            passed += 1;
        } else {
            println!(
                "test {name} ... FAILED: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            failed += 1;
        }
    }
    println!("\n{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
