//! The tools users already run keep working: this program, with `ArenaAlloc` as its global
//! allocator, runs itself under valgrind's memcheck (`VALGRIND_CASE` names what the child does)
//! and checks memcheck's report: a correct program is clean (no error, nothing lost), a read
//! after free of a 40-byte `Box` is reported at this file's line, a leaked block is reported as
//! definitely lost with its size; with the pools kept under valgrind (`ARENAGC_VALGRIND=pools`)
//! a correct program is clean too (no false error from our own metadata reads). Skipped, loudly,
//! where valgrind is not installed (every machine of this project has it). `harness = false`.

use arenagc::ArenaAlloc;
use std::collections::HashMap;
use std::hint::black_box;
use std::process::Command;

#[global_allocator]
static GLOBAL: ArenaAlloc = ArenaAlloc;

/// A correct program: blocks of every size range, growth, maps, strings, frees on another
/// thread.
fn clean() {
    let mut m: HashMap<String, Vec<u64>> = HashMap::new();
    for i in 0..2000 {
        m.entry(format!("key{}", i % 300))
            .or_default()
            .push(i as u64);
    }
    let big: Vec<Vec<u8>> = (0..40).map(|i| vec![i as u8; 100 + i * 300]).collect();
    let sent: Vec<Box<[u8; 40]>> = (0..500).map(|i| Box::new([i as u8; 40])).collect();
    std::thread::spawn(move || drop(black_box(sent)))
        .join()
        .unwrap();
    let total: usize =
        m.values().map(Vec::len).sum::<usize>() + big.iter().map(Vec::len).sum::<usize>();
    assert!(total > 2000);
}

/// (case, extra environment, texts memcheck's report must contain, texts it must not)
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
    &'static [&'static str],
);

fn main() {
    match std::env::var("VALGRIND_CASE").as_deref() {
        Ok("clean") => return clean(),
        Ok("use_after_free") => {
            assert!(
                arenagc::alloc::system_backend(),
                "under valgrind: the system backend"
            );
            let b = Box::new([7u8; 40]);
            let p = &*b as *const [u8; 40] as *const u8;
            drop(b);
            // SAFETY: none: a deliberate read after free, for memcheck to report.
            let v = unsafe { core::ptr::read_volatile(p.add(3)) };
            println!("read {v}");
            return;
        }
        Ok("leak") => {
            let v: Vec<u8> = vec![1; 100];
            std::mem::forget(black_box(v));
            return;
        }
        Ok(other) => panic!("unknown case {other}"),
        Err(_) => {}
    }
    if Command::new("valgrind").arg("--version").output().is_err() {
        println!("note: SKIPPED: valgrind is not installed");
        println!("0 passed, 0 failed");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let (mut passed, mut failed) = (0, 0);
    let cases: &[Case] = &[
        (
            "clean",
            &[],
            &["ERROR SUMMARY: 0 errors", "definitely lost: 0 bytes"],
            &["Invalid"],
        ),
        (
            "clean",
            &[("ARENAGC_VALGRIND", "pools")],
            &["ERROR SUMMARY: 0 errors"],
            &["Invalid"],
        ),
        (
            "use_after_free",
            &[],
            &[
                "Invalid read of size 1",
                "valgrind.rs:",
                "3 bytes inside a block of size 40 free'd",
            ],
            &[],
        ),
        (
            "leak",
            &[],
            &["100 bytes in 1 blocks are definitely lost", "valgrind.rs:"],
            &[],
        ),
    ];
    for &(case, env, want, unwanted) in cases {
        let mut cmd = Command::new("valgrind");
        cmd.args(["--leak-check=full", "--errors-for-leak-kinds=definite"])
            .arg(&exe)
            .env("VALGRIND_CASE", case)
            .env_remove("ARENAGC_DEBUG")
            .env_remove("ARENAGC_VALGRIND");
        for &(k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let report = String::from_utf8_lossy(&out.stderr);
        let name = format!("{case}{}", if env.is_empty() { "" } else { "_with_pools" });
        let missing: Vec<&&str> = want.iter().filter(|w| !report.contains(**w)).collect();
        let present: Vec<&&str> = unwanted.iter().filter(|w| report.contains(**w)).collect();
        if missing.is_empty() && present.is_empty() {
            println!("test {name} ... ok");
            passed += 1;
        } else {
            println!("test {name} ... FAILED: missing {missing:?}, present {present:?}\n{report}");
            failed += 1;
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
