//! The object and GC half of the C ABI from C: `objects.c`, compiled against
//! `include/arenagc.h` and linked to `libarenagc.so` and to `libarenagc.a`, run once per case
//! (a fresh process, so a fresh default runtime), with the allocator in normal and in debug
//! mode. One Rust test per C case, so a failure names the case.

mod common;

use common::run_c_case;

/// Run `case` of objects.c in every build and mode; return the stderr of each run.
fn objects(case: &str) -> Vec<String> {
    run_c_case("objects", case, &["-std=c99", "-pedantic"])
}

c_tests! { objects;
    agc_new_gives_a_zeroed_untracked_object_counted_if_gc => "new",
    agc_new_rejects_null_and_malformed_types => "new_bad",
    agc_new_var_sizes_by_item_count_zeroes_and_rejects_overflow => "new_var",
    incref_decref_inline_and_out_of_line_and_null_and_zero_counts => "refcount",
    track_untrack_is_tracked_and_non_gc_and_null => "track",
    object_del_and_finalize_from_dealloc_refuse_live_objects_and_null => "dealloc_helpers_bad",
    cycles_are_collected_through_traverse_and_clear => "cycle",
    gc_collect_of_generation_3_and_minus_1_is_an_error => "collect_bad_generation",
    gc_enable_disable_and_automatic_collection => "enable",
    gc_get_and_set_threshold_and_null => "threshold",
    gc_get_count_and_null => "count",
    gc_get_stats_per_generation_and_null => "stats",
    gc_legacy_del_cycle_goes_to_garbage_uncollectable => "legacy_del",
    gc_freeze_unfreeze_get_freeze_count => "freeze",
    gc_callbacks_with_user_data_add_remove_and_bad_ids => "callbacks",
    gc_get_objects_by_visitor_per_generation_and_bad_input => "get_objects",
    gc_get_referrers_and_referents_by_visitor_and_null => "referrers_referents",
    finalizers_run_once_and_may_resurrect => "finalizer",
    weakrefs_get_count_and_callbacks_with_data => "weakref",
    weakref_callbacks_run_when_a_cycle_is_collected => "weakref_cycle",
    weakrefs_to_non_gc_objects_and_bad_input => "weakref_plain_and_bad",
    runtimes_attach_nest_detach_free_and_bad_input => "runtime",
    runtimes_are_shared_by_threads_one_at_a_time => "runtime_threads",
    each_thread_has_its_own_default_runtime => "default_runtime_per_thread",
    runtimes_cannot_be_switched_from_code_the_library_runs => "runtime_switch_from_callbacks",
    a_freed_runtime_handle_is_refused => "runtime_freed_handle",
    a_runtime_with_a_thread_waiting_to_attach_is_not_freed => "runtime_free_with_a_waiter",
    a_gc_callback_removed_during_a_pass_is_not_called => "callback_removed_during_a_pass",
    no_weakref_to_an_object_being_deallocated => "weakref_to_a_dying_object",
    a_traverse_may_visit_null_fields => "traverse_visiting_null",
    newref_xnewref_visit_and_clear_helpers_of_the_header => "helpers",
}

#[test]
fn gc_debug_flags_print_and_saveall_keeps_garbage() {
    for err in objects("debug") {
        assert!(
            err.contains("gc: collecting generation 2"),
            "AGC_DEBUG_STATS printed nothing:\n{err}"
        );
        assert!(
            err.contains("gc: collectable <node"),
            "AGC_DEBUG_COLLECTABLE printed nothing:\n{err}"
        );
    }
}
