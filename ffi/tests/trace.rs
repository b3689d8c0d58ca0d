//! tracemalloc from C: `trace.c`, compiled with `-g` against `include/arenagc.h` and linked to
//! `libarenagc.so` and to `libarenagc.a`, run once per case (a fresh process), with the
//! allocator in normal and in debug mode: statistics name the two allocating C functions,
//! their file and lines; compare, dump / load, pprof and folded files; sampled mode; every bad
//! input refused with its error code. One Rust test per C case.

mod common;

use common::run_c_case;

fn trace(case: &str) -> Vec<String> {
    run_c_case("trace", case, &["-std=c99"])
}

c_tests! { trace;
    statistics_name_the_c_functions_compare_dump_load_and_pprof => "statistics",
    bad_snapshots_keys_paths_and_arguments_are_refused => "bad_input",
    sampled_mode_estimates_the_traced_memory => "sampled",
}
