//! The C library under valgrind's memcheck: `valgrind.c`, linked to `libarenagc.so` and to
//! `libarenagc.a`. Under valgrind every block comes from the system allocator (valgrind's own,
//! checked), so a correct program is clean, a read after `agc_free` is reported at the C line,
//! and a leaked `agc_malloc` block is definitely lost with its size. Skipped, loudly, where
//! valgrind is not installed (every machine of this project has it).

mod common;

use common::{Link, cc_test, output};
use std::process::Command;

fn memcheck(case: &str) -> Vec<String> {
    if Command::new("valgrind").arg("--version").output().is_err() {
        eprintln!("note: SKIPPED: valgrind is not installed");
        return Vec::new();
    }
    [Link::Shared, Link::Static]
        .into_iter()
        .map(|link| {
            let exe = cc_test(
                &format!("valgrind_{link:?}"),
                "valgrind.c",
                link,
                &["-std=c99"],
            );
            let o = output(
                Command::new("valgrind")
                    .args(["--leak-check=full", "--errors-for-leak-kinds=definite"])
                    .arg(&exe)
                    .arg(case)
                    .env_remove("ARENAGC_DEBUG")
                    .env_remove("ARENAGC_VALGRIND"),
            );
            String::from_utf8_lossy(&o.stderr).into_owned()
        })
        .collect()
}

#[test]
fn a_correct_c_program_is_clean_under_memcheck() {
    for r in memcheck("clean") {
        assert!(r.contains("ERROR SUMMARY: 0 errors"), "{r}");
        assert!(
            r.contains("definitely lost: 0 bytes") || r.contains("no leaks are possible"),
            "{r}"
        );
    }
}

#[test]
fn a_read_after_agc_free_is_reported_at_the_c_line() {
    for r in memcheck("use_after_free") {
        assert!(r.contains("Invalid read of size 1"), "{r}");
        assert!(
            r.contains("5 bytes inside a block of size 40 free'd"),
            "{r}"
        );
        assert!(r.contains("valgrind.c:"), "{r}");
    }
}

#[test]
fn a_leaked_agc_malloc_block_is_definitely_lost() {
    for r in memcheck("leak") {
        assert!(
            r.contains("100 bytes in 1 blocks are definitely lost"),
            "{r}"
        );
        assert!(r.contains("valgrind.c:"), "{r}");
    }
}
