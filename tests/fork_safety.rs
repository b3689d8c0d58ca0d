//! fork while other threads allocate and free across threads: every child must be able to
//! allocate and free (no lock inherited held, no pool stuck mid-notification), in plain and in
//! debug mode; and 1000 forks in a row while 4 threads work, each child also starting a thread
//! and validating the allocator. `harness = false` (no test-harness threads around the forks);
//! prints `N passed, N failed`.

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

/// Child body of the 1000-fork run: allocate, free, start a thread that does too, validate.
fn child_with_thread() -> ! {
    let v: Vec<Vec<u8>> = (0..2000usize).map(|i| vec![i as u8; 1 + i % 700]).collect();
    let ok = v
        .iter()
        .enumerate()
        .all(|(i, b)| b.iter().all(|&x| x == i as u8));
    drop(v);
    let t = std::thread::spawn(|| {
        (0..1000usize)
            .map(|i| vec![7u8; i % 300].len())
            .sum::<usize>()
    });
    let threaded = matches!(t.join(), Ok(n) if n > 0);
    let valid = arenagc::alloc::validate().is_ok();
    let code = if !ok {
        2
    } else if !threaded {
        3
    } else if !valid {
        4
    } else {
        0
    };
    // SAFETY: _exit ends the child at once.
    unsafe { libc::_exit(code) }
}

/// 1000 forks in a row while 4 threads allocate and free (half of it across threads); every
/// child runs `child_with_thread`. Returns an error description, or None.
fn run_many_forks() -> Option<String> {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::sync_channel::<Vec<String>>(64);
    let rx = Arc::new(std::sync::Mutex::new(rx));
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let (stop, tx, rx) = (stop.clone(), tx.clone(), rx.clone());
            std::thread::spawn(move || {
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let batch: Vec<String> =
                        (0..32).map(|k| "y".repeat((i * 7 + k + t) % 700)).collect();
                    let _ = tx.try_send(batch);
                    let got = rx.lock().unwrap().try_recv();
                    drop(got); // another thread's strings, usually
                    i += 1;
                }
            })
        })
        .collect();
    let mut failure = None;
    for n in 0..1000 {
        // SAFETY: the child only runs child_with_thread (allocator calls, a thread, then _exit).
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            child_with_thread();
        }
        assert!(pid > 0, "fork failed");
        let mut status = 0;
        // SAFETY: pid is our child; status is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r != pid || !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            failure = Some(format!("fork {n}: child ended with status {status:#x}"));
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    failure
}

fn main() {
    if let Some(what) = std::env::var_os("ARENAGC_FORK_CHILD_RUN") {
        // SAFETY: alarm has no preconditions: a hang ends the run (SIGALRM) instead of CI.
        unsafe { libc::alarm(300) };
        let result = if what == "many" {
            run_many_forks()
        } else {
            run_forks()
        };
        if let Some(e) = result {
            eprintln!("{e}");
            std::process::exit(1);
        }
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let (mut passed, mut failed) = (0, 0);
    for (name, run, debug) in [
        ("fork_with_threads_plain", "1", false),
        ("fork_with_threads_debug", "1", true),
        (
            "fork_1000_times_children_start_threads_and_validate_plain",
            "many",
            false,
        ),
        (
            "fork_1000_times_children_start_threads_and_validate_debug",
            "many",
            true,
        ),
    ] {
        let mut cmd = Command::new(&exe);
        cmd.env("ARENAGC_FORK_CHILD_RUN", run)
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
