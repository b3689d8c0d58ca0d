//! The trashcan for C objects (`trashcan.c`): a chain of 1,000,000 C objects, each holding the
//! next, freed by one `agc_decref` without overflowing the stack, on the main thread and on
//! threads with an 8 MiB and a 256 KiB stack; every object is deallocated once, finalizers run
//! once, generation 0 is uncounted exactly. Run against `libarenagc.so` and `libarenagc.a`,
//! with the allocator in normal and in debug mode.

mod common;

use common::run_c_case;

fn trashcan(case: &str) {
    for err in run_c_case("trashcan", case, &["-std=c99", "-pedantic"]) {
        // The deepest stack a dealloc ran at, for the record (`--nocapture`).
        eprint!("{case}: {err}");
    }
}

c_tests! { trashcan;
    a_million_long_c_chain_is_freed_on_the_main_thread => "main_thread",
    a_million_long_c_chain_is_freed_on_an_8_mib_thread => "thread_8m",
    a_million_long_c_chain_is_freed_on_a_256_kib_thread => "thread_256k",
}
