//! Leak hunting from C: `leaks.c`, compiled against `include/arenagc.h` and linked to
//! `libarenagc.so` and to `libarenagc.a`, run once per case (a fresh process, so a fresh
//! default runtime), with the allocator in normal and in debug mode. One Rust test per C case.

mod common;

use common::run_c_case;

/// Run `case` of leaks.c in every build and mode; return the stderr of each run.
fn leaks(case: &str) -> Vec<String> {
    run_c_case("leaks", case, &["-std=c99", "-pedantic"])
}

c_tests! { leaks;
    type_counts_by_visitor_seen_and_unseen_and_null => "type_counts",
    type_growth_above_the_peak_and_null => "type_growth",
    path_to_chains_shortcuts_cycles_frozen_roots_and_null => "path_to",
    path_to_and_pictures_are_refused_during_a_collection => "path_to_during_a_collection",
    dot_pictures_with_repr_hooks_and_null => "dot",
    leak_report_groups_garbage_and_names_the_pinning_del => "leak_report",
}

#[test]
fn debug_leak_prints_the_report_at_collection_time() {
    for err in leaks("leak_report_printed") {
        assert!(
            err.contains("gc: garbage: 2 objects\ngc:   1 legacy\ngc:   1 node\n"),
            "{err}"
        );
        assert!(
            err.contains("gc: uncollectable group 1: 2 objects (1 legacy, 1 node), pinned by the legacy finalizer of <legacy at 0x"),
            "{err}"
        );
    }
}
