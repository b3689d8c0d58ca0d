/*
 * Compiled as C99 and as C++ against include/arenagc.h and linked against libarenagc.so and
 * libarenagc.a by ffi/tests/c_abi.rs. Proves:
 *   - every function the header declares links, with the declared type (each is stored in a
 *     pointer of exactly that type, under -Werror);
 *   - the layout of the public structs and the constants, which it prints for the Rust side
 *     to compare with ffi/src/types.rs.
 */
#include "arenagc.h"

#include <stdio.h>
#include <string.h>

#define OFFSET(t, f) ((size_t)offsetof(t, f))

/* Alignment without C11's _Alignof: the offset of a member placed after one char. */
struct align_class_stats { char c; agc_class_stats_t t; };
struct align_stats { char c; agc_stats_t t; };
struct align_object { char c; agc_object t; };
struct align_type { char c; agc_type t; };
struct align_gen_stats { char c; agc_gen_stats_t t; };
struct align_gc_stats { char c; agc_gc_stats_t t; };

#define FN(ret, name, args) ret(*const p_##name) args = name;

FN(void *, agc_malloc, (size_t))
FN(void *, agc_calloc, (size_t, size_t))
FN(void *, agc_realloc, (void *, size_t))
FN(void, agc_free, (void *))
FN(void, agc_free_sized, (void *, size_t))
FN(void *, agc_aligned_alloc, (size_t, size_t))
FN(size_t, agc_usable_size, (const void *))
FN(int, agc_stats, (agc_stats_t *))
FN(int, agc_stats_print, (FILE *))
FN(intptr_t, agc_stats_classes, (agc_class_stats_t *, size_t))
FN(void, agc_trim, (void))
FN(int, agc_owns, (const void *))
FN(int, agc_validate, (void))
FN(const char *, agc_last_error, (void))
FN(const char *, agc_version, (void))
FN(agc_object *, agc_new, (const agc_type *))
FN(agc_object *, agc_new_var, (const agc_type *, size_t))
FN(int, agc_object_incref, (agc_object *))
FN(int, agc_object_decref, (agc_object *))
FN(int, agc_track, (agc_object *))
FN(int, agc_untrack, (agc_object *))
FN(int, agc_is_tracked, (agc_object *))
FN(int, agc_is_finalized, (agc_object *))
FN(int, agc_finalize_from_dealloc, (agc_object *))
FN(int, agc_clear_weakrefs, (agc_object *))
FN(int, agc_object_del, (agc_object *))
FN(agc_object *, agc_weakref_new, (agc_object *, agc_weakref_callback, void *))
FN(agc_object *, agc_weakref_get, (agc_object *))
FN(intptr_t, agc_weakref_count, (agc_object *))
FN(intptr_t, agc_gc_collect, (int))
FN(void, agc_gc_enable, (void))
FN(void, agc_gc_disable, (void))
FN(int, agc_gc_is_enabled, (void))
FN(int, agc_gc_get_threshold, (size_t *, size_t *, size_t *))
FN(int, agc_gc_set_threshold, (size_t, size_t, size_t))
FN(int, agc_gc_get_count, (size_t *, size_t *, size_t *))
FN(int, agc_gc_get_stats, (agc_gc_stats_t *))
FN(int, agc_gc_set_debug, (unsigned int))
FN(unsigned int, agc_gc_get_debug, (void))
FN(void, agc_gc_freeze, (void))
FN(void, agc_gc_unfreeze, (void))
FN(size_t, agc_gc_get_freeze_count, (void))
FN(size_t, agc_gc_garbage_len, (void))
FN(agc_object *, agc_gc_garbage_get, (size_t))
FN(void, agc_gc_garbage_clear, (void))
FN(uint64_t, agc_gc_callback_add, (agc_gc_callback, void *))
FN(int, agc_gc_callback_remove, (uint64_t))
FN(intptr_t, agc_gc_get_objects, (int, agc_visitproc, void *))
FN(intptr_t, agc_gc_get_referrers, (agc_object *, agc_visitproc, void *))
FN(intptr_t, agc_gc_get_referents, (agc_object *, agc_visitproc, void *))
FN(intptr_t, agc_gc_type_counts, (agc_type_count_visitor, void *))
FN(intptr_t, agc_gc_type_growth, (agc_type_growth_visitor, void *))
FN(intptr_t, agc_gc_path_to, (agc_object *, size_t *, agc_visitproc, void *))
FN(char *, agc_gc_dot_backrefs, (agc_object *, size_t, size_t))
FN(char *, agc_gc_dot_refs, (agc_object *, size_t, size_t))
FN(int, agc_gc_set_repr, (const agc_type *, agc_repr_hook))
FN(char *, agc_gc_leak_report, (void))
FN(agc_runtime *, agc_runtime_new, (void))
FN(int, agc_runtime_free, (agc_runtime *))
FN(int, agc_runtime_attach, (agc_runtime *))
FN(int, agc_runtime_detach, (agc_runtime *))
FN(int, agc_trace_start, (size_t))
FN(int, agc_trace_start_sampled, (size_t, size_t))
FN(void, agc_trace_stop, (void))
FN(int, agc_trace_is_tracing, (void))
FN(int, agc_trace_get_traced_memory, (size_t *, size_t *))
FN(void, agc_trace_reset_peak, (void))
FN(agc_trace_snapshot_t *, agc_trace_snapshot, (void))
FN(agc_trace_snapshot_t *, agc_trace_snapshot_load, (const char *))
FN(int, agc_trace_snapshot_free, (agc_trace_snapshot_t *))
FN(intptr_t, agc_trace_snapshot_statistics, (const agc_trace_snapshot_t *, const char *, agc_trace_stat_visitor, void *))
FN(intptr_t, agc_trace_snapshot_compare, (const agc_trace_snapshot_t *, const agc_trace_snapshot_t *, const char *, agc_trace_stat_visitor, void *))
FN(int, agc_trace_snapshot_dump, (const agc_trace_snapshot_t *, const char *))
FN(int, agc_trace_snapshot_write_pprof, (const agc_trace_snapshot_t *, const char *))
FN(int, agc_trace_snapshot_write_folded, (const agc_trace_snapshot_t *, const char *))

/* The callback types, spelled out: a function of exactly this type must convert. */
static int visit_none(agc_object *o, void *a) { (void)o; (void)a; return 0; }
static int traverse_none(agc_object *o, agc_visitproc v, void *a) { (void)o; (void)v; (void)a; return 0; }
static int clear_none(agc_object *o) { (void)o; return 0; }
static void dealloc_plain(agc_object *o) { (void)agc_object_del(o); }
static void weak_cb(agc_object *w, void *d) { (void)w; (void)d; }
static void gc_cb(int p, int g, size_t c, size_t u, void *d) { (void)p; (void)g; (void)c; (void)u; (void)d; }
static const agc_visitproc p_visit = visit_none;
/* The helper macros compile in C and C++ (fields of any object pointer type). */
struct fields { agc_object ob; agc_object *a; struct fields *b; };
static int traverse_fields(agc_object *o, agc_visitproc visit, void *arg) {
    struct fields *f = (struct fields *)o;
    if (f->ob.type == NULL) {
        AGC_VISIT(f->a);
        AGC_VISIT(f->b);
    }
    return 0;
}
static int clear_fields(agc_object *o) {
    struct fields *f = (struct fields *)o;
    if (f->ob.type == NULL) {
        AGC_CLEAR(f->a);
        AGC_CLEAR(f->b);
    }
    return 0;
}
static const agc_traverseproc p_traverse_fields = traverse_fields;
static const agc_inquiry p_clear_fields = clear_fields;
static const agc_weakref_callback p_weak_cb = weak_cb;
static const agc_gc_callback p_gc_cb = gc_cb;
static const agc_type plain_type = {"plain", sizeof(agc_object) + 16, AGC_TPFLAGS_HAVE_GC,
                                    AGC_WEAKLIST_SIDE_TABLE,
                                    traverse_none, clear_none, NULL, NULL, dealloc_plain, 0};

#define LAYOUT(t, f) printf("offset %s.%s %zu\n", #t, #f, OFFSET(t, f))

int main(void) {
    /* Call through every pointer so none is optimised away, and check the version. */
    void *p = p_agc_malloc(8);
    void *q = p_agc_calloc(2, 8);
    agc_stats_t st;
    p = p_agc_realloc(p, 16);
    p_agc_free_sized(q, 16);
    q = p_agc_aligned_alloc(64, 8);
    if (!p || !q || p_agc_usable_size(p) < 16 || !p_agc_owns(p) || p_agc_stats(&st) != AGC_OK)
        return 1;
    p_agc_free(p);
    p_agc_free(q);
    {
        /* Every class, small then medium: a 1000-byte block is in the 1024-byte medium class. */
        agc_class_stats_t cs[AGC_NUM_ALL_CLASSES];
        void *m = p_agc_malloc(1000);
        if (p_agc_stats_classes(NULL, 0) != AGC_NUM_ALL_CLASSES ||
            p_agc_stats_classes(NULL, 1) != AGC_ERR_NULL ||
            p_agc_stats_classes(cs, AGC_NUM_ALL_CLASSES) != AGC_NUM_ALL_CLASSES ||
            cs[0].block_size != 16 || cs[AGC_NUM_CLASSES - 1].block_size != 512 ||
            cs[AGC_NUM_CLASSES + 3].block_size != 1024 ||
            cs[AGC_NUM_CLASSES + 3].blocks_in_use < 1 ||
            cs[AGC_NUM_ALL_CLASSES - 1].block_size != 4096)
            return 1;
        p_agc_free(m);
    }
    p_agc_trim();
    if (p_agc_validate() != AGC_OK)
        return 1;
    if (p_agc_stats_print(NULL) != AGC_ERR_NULL || p_agc_last_error() == NULL)
        return 1;
    if (strcmp(p_agc_version(), AGC_VERSION_STRING) != 0)
        return 1;
    {
        /* The object and GC half, once each through its pointer. */
        size_t a, b, c;
        agc_gc_stats_t gs;
        agc_runtime *rt = p_agc_runtime_new();
        agc_object *o, *w, *got;
        uint64_t id;
        if (!rt || p_agc_runtime_attach(rt) != AGC_OK)
            return 1;
        id = p_agc_gc_callback_add(p_gc_cb, NULL);
        o = p_agc_new(&plain_type);
        if (!o || p_agc_track(o) != AGC_OK || p_agc_is_tracked(o) != 1 || p_agc_is_finalized(o) != 0)
            return 1;
        if (p_agc_object_incref(o) != AGC_OK || o->refcnt != 2 || p_agc_object_decref(o) != AGC_OK)
            return 1;
        agc_incref(o);
        agc_decref(o);
        agc_xdecref(NULL);
        agc_decref(agc_newref(o));
        if (agc_xnewref(NULL) != NULL || p_traverse_fields(o, p_visit, NULL) != 0 || p_clear_fields(o) != 0)
            return 1;
        w = p_agc_weakref_new(o, p_weak_cb, NULL);
        if (!w || p_agc_weakref_count(o) != 1)
            return 1;
        got = p_agc_weakref_get(w);
        if (got != o)
            return 1;
        agc_decref(got);
        if (p_agc_gc_get_objects(-1, p_visit, NULL) < 1 || p_agc_gc_get_referrers(o, p_visit, NULL) != 0 ||
            p_agc_gc_get_referents(o, p_visit, NULL) != 0)
            return 1;
        p_agc_gc_disable();
        if (p_agc_gc_is_enabled() != 0)
            return 1;
        p_agc_gc_enable();
        p_agc_gc_set_threshold(700, 10, 10);
        if (p_agc_gc_get_threshold(&a, &b, &c) != AGC_OK || a != 700 || p_agc_gc_get_count(&a, &b, &c) != AGC_OK)
            return 1;
        if (p_agc_gc_set_debug(0) != AGC_OK || p_agc_gc_get_debug() != 0)
            return 1;
        p_agc_gc_freeze();
        if (p_agc_gc_get_freeze_count() < 1)
            return 1;
        p_agc_gc_unfreeze();
        if (p_agc_gc_collect(2) < 0 || p_agc_gc_get_stats(&gs) != AGC_OK || gs.generations[2].collections != 1)
            return 1;
        if (p_agc_gc_garbage_len() != 0 || p_agc_gc_garbage_get(0) != NULL)
            return 1;
        p_agc_gc_garbage_clear();
        if (p_agc_untrack(o) != AGC_OK || p_agc_clear_weakrefs(o) != AGC_OK || p_agc_finalize_from_dealloc(o) != AGC_ERR_STATE)
            return 1;
        if (p_agc_object_del(o) != AGC_ERR_STATE || p_agc_gc_callback_remove(id) != AGC_OK)
            return 1;
        agc_decref(o);
        agc_decref(w);
        if (p_agc_runtime_detach(rt) != AGC_OK || p_agc_runtime_free(rt) != AGC_OK)
            return 1;
    }

    printf("version %s\n", AGC_VERSION_STRING);
    printf("const AGC_VERSION_MAJOR %d\n", AGC_VERSION_MAJOR);
    printf("const AGC_VERSION_MINOR %d\n", AGC_VERSION_MINOR);
    printf("const AGC_VERSION_PATCH %d\n", AGC_VERSION_PATCH);
    printf("const AGC_VERSION_NUMBER %ld\n", (long)AGC_VERSION_NUMBER);
    printf("const AGC_NUM_CLASSES %d\n", AGC_NUM_CLASSES);
    printf("const AGC_NUM_MEDIUM_CLASSES %d\n", AGC_NUM_MEDIUM_CLASSES);
    printf("const AGC_NUM_ALL_CLASSES %d\n", AGC_NUM_ALL_CLASSES);
    printf("const AGC_TPFLAGS_VERSION_SHIFT %d\n", AGC_TPFLAGS_VERSION_SHIFT);
    printf("const AGC_TYPE_VERSION_CURRENT %d\n", AGC_TYPE_VERSION_CURRENT);
    printf("const AGC_OK %d\n", AGC_OK);
    printf("const AGC_ERR_NULL %d\n", AGC_ERR_NULL);
    printf("const AGC_ERR_IO %d\n", AGC_ERR_IO);
    printf("const AGC_ERR_PANIC %d\n", AGC_ERR_PANIC);

    printf("size agc_class_stats_t %zu\n", sizeof(agc_class_stats_t));
    printf("align agc_class_stats_t %zu\n", OFFSET(struct align_class_stats, t));
    LAYOUT(agc_class_stats_t, block_size);
    LAYOUT(agc_class_stats_t, pools);
    LAYOUT(agc_class_stats_t, blocks_in_use);
    LAYOUT(agc_class_stats_t, blocks_free);

    printf("size agc_stats_t %zu\n", sizeof(agc_stats_t));
    printf("align agc_stats_t %zu\n", OFFSET(struct align_stats, t));
    LAYOUT(agc_stats_t, classes);
    LAYOUT(agc_stats_t, arenas_allocated_total);
    LAYOUT(agc_stats_t, arenas_released_total);
    LAYOUT(agc_stats_t, arenas_current);
    LAYOUT(agc_stats_t, arenas_peak);
    LAYOUT(agc_stats_t, arenas_free);
    LAYOUT(agc_stats_t, pools_free);
    LAYOUT(agc_stats_t, large_bytes);
    LAYOUT(agc_stats_t, large_blocks);
    LAYOUT(agc_stats_t, debug);

    printf("const AGC_ERR_VALUE %d\n", AGC_ERR_VALUE);
    printf("const AGC_ERR_STATE %d\n", AGC_ERR_STATE);
    printf("const AGC_TPFLAGS_HAVE_GC %llu\n", (unsigned long long)AGC_TPFLAGS_HAVE_GC);
    printf("const AGC_WEAKLIST_SIDE_TABLE %ld\n", (long)AGC_WEAKLIST_SIDE_TABLE);
    printf("const AGC_GC_GENERATIONS %d\n", AGC_GC_GENERATIONS);
    printf("const AGC_GC_START %d\n", AGC_GC_START);
    printf("const AGC_GC_STOP %d\n", AGC_GC_STOP);
    printf("const AGC_DEBUG_STATS %u\n", AGC_DEBUG_STATS);
    printf("const AGC_DEBUG_COLLECTABLE %u\n", AGC_DEBUG_COLLECTABLE);
    printf("const AGC_DEBUG_UNCOLLECTABLE %u\n", AGC_DEBUG_UNCOLLECTABLE);
    printf("const AGC_DEBUG_SAVEALL %u\n", AGC_DEBUG_SAVEALL);
    printf("const AGC_DEBUG_LEAK %u\n", AGC_DEBUG_LEAK);

    printf("size agc_object %zu\n", sizeof(agc_object));
    printf("align agc_object %zu\n", OFFSET(struct align_object, t));
    LAYOUT(agc_object, refcnt);
    LAYOUT(agc_object, type);

    printf("size agc_type %zu\n", sizeof(agc_type));
    printf("align agc_type %zu\n", OFFSET(struct align_type, t));
    LAYOUT(agc_type, name);
    LAYOUT(agc_type, basic_size);
    LAYOUT(agc_type, flags);
    LAYOUT(agc_type, weaklist_offset);
    LAYOUT(agc_type, traverse);
    LAYOUT(agc_type, clear);
    LAYOUT(agc_type, finalize);
    LAYOUT(agc_type, del);
    LAYOUT(agc_type, dealloc);
    LAYOUT(agc_type, item_size);

    printf("size agc_gen_stats_t %zu\n", sizeof(agc_gen_stats_t));
    printf("align agc_gen_stats_t %zu\n", OFFSET(struct align_gen_stats, t));
    LAYOUT(agc_gen_stats_t, collections);
    LAYOUT(agc_gen_stats_t, collected);
    LAYOUT(agc_gen_stats_t, uncollectable);

    printf("size agc_gc_stats_t %zu\n", sizeof(agc_gc_stats_t));
    printf("align agc_gc_stats_t %zu\n", OFFSET(struct align_gc_stats, t));
    LAYOUT(agc_gc_stats_t, generations);
    return 0;
}
