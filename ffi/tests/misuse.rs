//! Misuse of the C ABI aborts with a message naming it (`misuse.c`, one process per case),
//! linked to `libarenagc.so` and `libarenagc.a`, in the default build and in debug mode:
//! `agc_decref` of a freed object (plain and GC types), a refcount driven below zero (named by
//! its type), a double `agc_free`, and the decrement of a freed object's count followed by new
//! objects (which once handed out a misaligned pointer).

mod common;

use common::{Link, cc_test, output};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

fn aborts_with(case: &str, want: &[&str]) {
    for link in [Link::Shared, Link::Static] {
        let exe = cc_test(&format!("misuse_{link:?}"), "misuse.c", link, &["-std=c99"]);
        for debug in [false, true] {
            let mut cmd = Command::new(&exe);
            cmd.arg(case).env_remove("ARENAGC_DEBUG");
            if debug {
                cmd.env("ARENAGC_DEBUG", "1");
            }
            let o = output(&mut cmd);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(
                o.status.signal(),
                Some(libc::SIGABRT),
                "{case} ({link:?}, debug {debug}): {err}"
            );
            assert!(
                want.iter().any(|w| err.contains(w)),
                "{case} ({link:?}, debug {debug}): wanted one of {want:?} in:\n{err}"
            );
        }
    }
}

#[test]
fn decref_of_a_freed_plain_object_aborts() {
    aborts_with(
        "decref_freed_plain",
        &[
            "use after free of pointer 0x",
            "agc_decref of an object that was already freed",
        ],
    );
}

#[test]
fn decref_of_a_freed_gc_object_aborts() {
    aborts_with(
        "decref_freed_gc",
        &["agc_decref of an object that was already freed"],
    );
}

#[test]
fn decref_below_zero_aborts_naming_the_type() {
    aborts_with(
        "decref_below_zero",
        &[
            "refcount below zero of pointer 0x",
            "type 'misuse_plain' with refcount -1",
        ],
    );
}

#[test]
fn a_double_agc_free_aborts() {
    aborts_with("agc_double_free", &["fatal error: double free"]);
}

#[test]
fn a_freed_object_whose_count_was_decremented_is_never_handed_out() {
    aborts_with(
        "decref_freed_then_new",
        &[
            "fatal error: heap corruption",
            "fatal error: write after free",
        ],
    );
}
