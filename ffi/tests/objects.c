/*
 * The object and GC half of include/arenagc.h, every function and its bad inputs: objects,
 * reference counts, tracking, the dealloc helpers, weak references, the agc_gc_ functions and
 * runtimes. Built against libarenagc.so and libarenagc.a and run one case per process by
 * ffi/tests/objects.rs. Prints "objects: ok" on success; any failed CHECK exits 1.
 */
#define _GNU_SOURCE
#include "arenagc.h"
#include "check.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- test types ---------------------------------------------------------------------------- */

/* A GC object holding at most one reference, and a weak-list slot. */
typedef struct node {
    agc_object ob;
    agc_object *other;
    agc_object *weaklist;
    long value;
} node;

static int node_frees;     /* node-like objects deallocated */
static int finalize_calls; /* fin_finalize calls */
static int del_calls;      /* legacy_del calls */
static agc_object *resurrected; /* where fin_finalize keeps its object, when asked to */
static int resurrect;      /* fin_finalize keeps a reference to its object */

static int node_traverse(agc_object *self, agc_visitproc visit, void *arg) {
    node *n = (node *)self;
    if (n->other != NULL)
        return visit(n->other, arg);
    return 0;
}

static int node_clear(agc_object *self) {
    node *n = (node *)self;
    agc_object *o = n->other;
    n->other = NULL;
    agc_xdecref(o);
    return 0;
}

static void node_dealloc(agc_object *self) {
    int r = agc_finalize_from_dealloc(self);
    CHECK(r == 0 || r == 1);
    if (r == 1)
        return; /* resurrected */
    CHECK(agc_untrack(self) == AGC_OK);
    node_clear(self);
    node_frees++;
    CHECK(agc_object_del(self) == AGC_OK);
}

static void fin_finalize(agc_object *self) {
    finalize_calls++;
    CHECK(self->refcnt >= 1);
    if (resurrect) {
        agc_incref(self);
        resurrected = self;
    }
}

static void legacy_del(agc_object *self) {
    (void)self;
    del_calls++;
}

static const agc_type node_type = {
    "node", sizeof(node), AGC_TPFLAGS_HAVE_GC, AGC_WEAKLIST_SIDE_TABLE,
    node_traverse, node_clear, NULL, NULL, node_dealloc, 0};
static const agc_type slot_node_type = {
    "slot_node", sizeof(node), AGC_TPFLAGS_HAVE_GC, offsetof(node, weaklist),
    node_traverse, node_clear, NULL, NULL, node_dealloc, 0};
static const agc_type fin_type = {
    "fin", sizeof(node), AGC_TPFLAGS_HAVE_GC, AGC_WEAKLIST_SIDE_TABLE,
    node_traverse, node_clear, fin_finalize, NULL, node_dealloc, 0};
static const agc_type legacy_type = {
    "legacy", sizeof(node), AGC_TPFLAGS_HAVE_GC, 0,
    node_traverse, node_clear, NULL, legacy_del, node_dealloc, 0};

/* A non-GC object with a weak-list slot and a plain payload. */
typedef struct plain {
    agc_object ob;
    agc_object *weaklist;
    double x;
} plain;

static int plain_frees;

static void plain_dealloc(agc_object *self) {
    plain_frees++;
    CHECK(agc_object_del(self) == AGC_OK);
}

static const agc_type plain_type = {
    "plain", sizeof(plain), 0, 0, NULL, NULL, NULL, NULL, plain_dealloc, 0};
static const agc_type plain_weak_type = {
    "plain_weak", sizeof(plain), 0, offsetof(plain, weaklist), NULL, NULL, NULL, NULL,
    plain_dealloc, 0};

static agc_object *new_node(const agc_type *t, long value) {
    agc_object *o = agc_new(t);
    CHECK(o != NULL);
    ((node *)o)->value = value;
    CHECK(agc_track(o) == AGC_OK);
    return o;
}

/* a->other = b (a new reference). */
static void link_to(agc_object *a, agc_object *b) {
    agc_incref(b);
    agc_xdecref(((node *)a)->other);
    ((node *)a)->other = b;
}

static size_t count0(void) {
    size_t c0, c1, c2;
    CHECK(agc_gc_get_count(&c0, &c1, &c2) == AGC_OK);
    return c0;
}

static int count_visit(agc_object *o, void *arg) {
    CHECK(o != NULL && o->refcnt >= 1);
    ++*(intptr_t *)arg;
    return 0;
}

static intptr_t tracked_in(int generation) {
    intptr_t n = 0;
    intptr_t calls = agc_gc_get_objects(generation, count_visit, &n);
    CHECK(calls == n);
    return n;
}

/* ---- objects ----------------------------------------------------------------------------- */

static void test_new(void) {
    size_t c = count0();
    agc_object *o = agc_new(&node_type);
    agc_object *p = agc_new(&plain_type);
    size_t i;
    CHECK(o != NULL && p != NULL);
    CHECK_ALIGNED(o, 16);
    CHECK_ALIGNED(p, 16);
    CHECK(o->refcnt == 1 && o->type == &node_type);
    CHECK(p->refcnt == 1 && p->type == &plain_type);
    for (i = sizeof(agc_object); i < sizeof(node); i++)
        CHECK(((unsigned char *)o)[i] == 0); /* payload zeroed */
    CHECK(((plain *)p)->weaklist == NULL && ((plain *)p)->x == 0.0);
    CHECK(agc_is_tracked(o) == 0 && agc_is_tracked(p) == 0);
    CHECK(agc_is_finalized(o) == 0 && agc_is_finalized(p) == 0);
    CHECK(count0() == c + 1); /* only the GC object counts */
    agc_decref(o);
    agc_decref(p);
    CHECK(node_frees == 1 && plain_frees == 1);
    CHECK(count0() == c);
}

/* A variable-size type: a header, a length, then `len` longs. */
typedef struct vec {
    agc_object ob;
    size_t len;
    long items[];
} vec;

static int vec_frees;
static void vec_dealloc(agc_object *o) {
    vec_frees++;
    agc_object_del(o);
}
static const agc_type vec_type = {"vec", sizeof(vec), 0, 0, NULL, NULL, NULL, NULL,
                                  vec_dealloc, sizeof(long)};

static void test_new_var(void) {
    static const size_t lens[] = {0, 1, 7, 60, 1000, 100000};
    size_t k, i;
    for (k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        vec *v = (vec *)agc_new_var(&vec_type, lens[k]);
        CHECK(v != NULL);
        CHECK_ALIGNED(v, 16);
        CHECK(v->ob.refcnt == 1 && v->ob.type == &vec_type);
        CHECK(v->len == 0);
        for (i = 0; i < lens[k]; i++)
            CHECK(v->items[i] == 0); /* payload zeroed, items included */
        v->len = lens[k];
        for (i = 0; i < lens[k]; i++)
            v->items[i] = (long)i;
        for (i = 0; i < lens[k]; i++)
            CHECK(v->items[i] == (long)i);
        agc_decref(&v->ob);
    }
    CHECK(vec_frees == (int)(sizeof lens / sizeof lens[0]));
    /* a fixed-size type (item_size 0) with items is accepted: the count is ignored */
    {
        agc_object *p = agc_new_var(&plain_type, 5);
        CHECK(p != NULL);
        agc_decref(p);
    }
    CHECK(agc_new_var(NULL, 1) == NULL);
    CHECK_ERR("agc_new_var: type is NULL");
    CHECK(agc_new_var(&vec_type, SIZE_MAX / 4) == NULL);
    CHECK_ERR("overflow the object size");
    CHECK(agc_new_var(&vec_type, (size_t)1 << 50) == NULL); /* fits size_t; no such memory */
    CHECK_ERR("agc_new_var: cannot allocate an object of");
}

static void test_new_bad(void) {
    agc_type t;
    CHECK(agc_new(NULL) == NULL);
    CHECK_ERR("agc_new: type is NULL");

    t = node_type;
    t.dealloc = NULL;
    CHECK(agc_new(&t) == NULL);
    CHECK_ERR("dealloc is NULL");

    t = node_type;
    t.basic_size = 8;
    CHECK(agc_new(&t) == NULL);
    CHECK_ERR("basic_size is smaller");

    /* The struct's version in flags: a later one than this library knows is refused, and so
       are flag bits nobody defined; version 0 (the current one) is what every type here is. */
    CHECK(AGC_TYPE_VERSION_CURRENT == 0);
    t = node_type;
    t.flags |= AGC_TPFLAGS_VERSION(1);
    CHECK(agc_new(&t) == NULL);
    CHECK_ERR("written for agc_type version 1");
    t = node_type;
    t.flags |= UINT64_C(1) << 3;
    CHECK(agc_new(&t) == NULL);
    CHECK_ERR("unknown flag bits");
    t = node_type;
    t.flags |= AGC_TPFLAGS_VERSION(AGC_TYPE_VERSION_CURRENT);
    {
        int frees = node_frees;
        agc_object *ok = agc_new(&t);
        CHECK(ok != NULL);
        agc_decref(ok);
        CHECK(node_frees == frees + 1);
        node_frees = frees; /* the counts below are about the refused types */
    }

    t = node_type;
    t.basic_size = SIZE_MAX;
    CHECK(agc_new(&t) == NULL);
    CHECK_ERR("basic_size is too large");

    t = plain_type;
    t.basic_size = (size_t)1 << 50; /* a valid type, but no memory for it */
    CHECK(agc_new(&t) == NULL);
    CHECK_ERR("agc_new: cannot allocate an object of");

    t = plain_type;
    t.weaklist_offset = AGC_WEAKLIST_SIDE_TABLE;
    CHECK(agc_new(&t) == NULL);
    CHECK_ERR("AGC_WEAKLIST_SIDE_TABLE needs AGC_TPFLAGS_HAVE_GC");

    /* "At most once" is recorded in the GC head: a non-GC type cannot keep that promise. */
    t = plain_type;
    t.finalize = fin_finalize;
    CHECK(agc_new(&t) == NULL);
    CHECK_ERR("finalize needs AGC_TPFLAGS_HAVE_GC");

    t = node_type;
    t.weaklist_offset = -2;
    CHECK(agc_new(&t) == NULL);
    CHECK_ERR("weaklist_offset is negative");

    t = node_type;
    t.weaklist_offset = 8; /* inside the header */
    CHECK(agc_new(&t) == NULL);
    CHECK_ERR("weaklist_offset");
    t.weaklist_offset = (intptr_t)sizeof(node); /* past the end */
    CHECK(agc_new(&t) == NULL);
    CHECK_ERR("weaklist_offset");
    t.weaklist_offset = 17; /* unaligned */
    CHECK(agc_new(&t) == NULL);
    CHECK_ERR("weaklist_offset");
    CHECK(node_frees == 0);
}

static void test_refcount(void) {
    agc_object *o = new_node(&node_type, 1);
    agc_object fake;
    agc_incref(o);
    CHECK(o->refcnt == 2);
    CHECK(agc_object_incref(o) == AGC_OK && o->refcnt == 3);
    agc_decref(o);
    CHECK(agc_object_decref(o) == AGC_OK && o->refcnt == 1);
    CHECK(node_frees == 0);

    /* NULL is an error, not a crash, inline or not. */
    CHECK(agc_object_incref(NULL) == AGC_ERR_NULL);
    CHECK_ERR("agc_incref: object is NULL");
    CHECK(agc_object_decref(NULL) == AGC_ERR_NULL);
    CHECK_ERR("agc_decref: object is NULL");
    agc_incref(NULL);
    CHECK_ERR("agc_incref: object is NULL");
    agc_decref(NULL);
    CHECK_ERR("agc_decref: object is NULL");
    agc_xdecref(NULL);

    /* A count already zero is refused, nothing is called. */
    fake.refcnt = 0;
    fake.type = &plain_type;
    CHECK(agc_object_decref(&fake) == AGC_ERR_STATE);
    CHECK_ERR("refcount 0");
    agc_decref(&fake);
    CHECK_ERR("refcount 0");
    CHECK(plain_frees == 0);
    /* An object without a type is refused. */
    fake.refcnt = 1;
    fake.type = NULL;
    CHECK(agc_object_decref(&fake) == AGC_ERR_NULL);
    CHECK_ERR("has no type");

    agc_decref(o); /* the last reference: dealloc */
    CHECK(node_frees == 1);
}

static void test_track(void) {
    agc_object *o = agc_new(&node_type);
    agc_object *p = agc_new(&plain_type);
    intptr_t before = tracked_in(0);
    CHECK(agc_is_tracked(o) == 0);
    CHECK(agc_track(o) == AGC_OK);
    CHECK(agc_is_tracked(o) == 1);
    CHECK(agc_track(o) == AGC_OK); /* no-op */
    CHECK(tracked_in(0) == before + 1);
    CHECK(agc_untrack(o) == AGC_OK);
    CHECK(agc_is_tracked(o) == 0);
    CHECK(agc_untrack(o) == AGC_OK); /* no-op */
    CHECK(tracked_in(0) == before);

    CHECK(agc_track(p) == AGC_ERR_VALUE);
    CHECK_ERR("type 'plain' has no AGC_TPFLAGS_HAVE_GC");
    CHECK(agc_is_tracked(p) == 0);
    CHECK(agc_untrack(p) == AGC_OK);

    CHECK(agc_track(NULL) == AGC_ERR_NULL);
    CHECK_ERR("agc_track: object is NULL");
    CHECK(agc_untrack(NULL) == AGC_ERR_NULL);
    CHECK_ERR("agc_untrack: object is NULL");
    CHECK(agc_is_tracked(NULL) == AGC_ERR_NULL);
    CHECK_ERR("agc_is_tracked: object is NULL");
    CHECK(agc_is_finalized(NULL) == AGC_ERR_NULL);
    CHECK_ERR("agc_is_finalized: object is NULL");

    /* Tracked again, it is freed tracked: agc_object_del untracks. */
    CHECK(agc_track(o) == AGC_OK);
    agc_decref(o);
    agc_decref(p);
    CHECK(node_frees == 1 && plain_frees == 1);
    CHECK(tracked_in(0) == before);
}

static void test_dealloc_helpers_bad(void) {
    agc_object *o = new_node(&node_type, 1);
    CHECK(agc_object_del(o) == AGC_ERR_STATE);
    CHECK_ERR("still has refcount 1");
    CHECK(agc_finalize_from_dealloc(o) == AGC_ERR_STATE);
    CHECK_ERR("refcount is 1, not 0");
    CHECK(agc_object_del(NULL) == AGC_ERR_NULL);
    CHECK_ERR("agc_object_del: object is NULL");
    CHECK(agc_finalize_from_dealloc(NULL) == AGC_ERR_NULL);
    CHECK_ERR("agc_finalize_from_dealloc: object is NULL");
    CHECK(agc_clear_weakrefs(NULL) == AGC_ERR_NULL);
    CHECK_ERR("agc_clear_weakrefs: object is NULL");
    CHECK(agc_clear_weakrefs(o) == AGC_OK); /* none: nothing happens */
    CHECK(node_frees == 0 && agc_is_tracked(o) == 1);
    agc_decref(o);
    CHECK(node_frees == 1);
}

/* ---- the collector ----------------------------------------------------------------------- */

static void test_cycle(void) {
    agc_object *a = new_node(&node_type, 1), *b = new_node(&node_type, 2);
    agc_object *self_ref = new_node(&slot_node_type, 3);
    agc_gc_stats_t st;
    link_to(a, b);
    link_to(b, a);
    link_to(self_ref, self_ref);
    agc_decref(a);
    agc_decref(b);
    agc_decref(self_ref);
    CHECK(node_frees == 0); /* kept alive by the cycles */
    CHECK(tracked_in(-1) == 3);
    CHECK(agc_gc_collect(0) == 3);
    CHECK(node_frees == 3);
    CHECK(tracked_in(-1) == 0);
    CHECK(agc_gc_get_stats(&st) == AGC_OK);
    CHECK(st.generations[0].collections == 1);
    CHECK(st.generations[0].collected == 3);
    CHECK(st.generations[0].uncollectable == 0);
    CHECK(count0() == 0);
    CHECK(agc_gc_collect(2) == 0);
}

static void test_collect_bad_generation(void) {
    agc_gc_stats_t st;
    CHECK(agc_gc_collect(3) == AGC_ERR_VALUE);
    CHECK_ERR("agc_gc_collect: invalid generation 3");
    CHECK(agc_gc_collect(-1) == AGC_ERR_VALUE);
    CHECK_ERR("agc_gc_collect: invalid generation -1");
    CHECK(agc_gc_collect(INT_MIN) == AGC_ERR_VALUE);
    CHECK_ERR("invalid generation");
    CHECK(agc_gc_collect(INT_MAX) == AGC_ERR_VALUE);
    CHECK_ERR("invalid generation");
    CHECK(agc_gc_get_stats(&st) == AGC_OK);
    CHECK(st.generations[0].collections == 0 && st.generations[2].collections == 0);
    CHECK(agc_gc_collect(0) == 0 && agc_gc_collect(1) == 0 && agc_gc_collect(2) == 0);
    CHECK(agc_gc_get_stats(&st) == AGC_OK);
    CHECK(st.generations[0].collections == 1 && st.generations[1].collections == 1 &&
          st.generations[2].collections == 1);
}

/* Make n two-node cycles and drop them. */
static void make_cycles(int n) {
    int i;
    for (i = 0; i < n; i++) {
        agc_object *a = new_node(&node_type, i), *b = new_node(&node_type, i);
        link_to(a, b);
        link_to(b, a);
        agc_decref(a);
        agc_decref(b);
    }
}

static void test_enable_and_automatic_collection(void) {
    agc_gc_stats_t st;
    CHECK(agc_gc_is_enabled() == 1);
    CHECK(agc_gc_set_threshold(10, 10, 10) == AGC_OK);
    agc_gc_disable();
    CHECK(agc_gc_is_enabled() == 0);
    make_cycles(50);
    CHECK(agc_gc_get_stats(&st) == AGC_OK);
    CHECK(st.generations[0].collections == 0); /* off: nothing automatic */
    CHECK(node_frees == 0);
    CHECK(count0() == 100);
    agc_gc_enable();
    CHECK(agc_gc_is_enabled() == 1);
    make_cycles(50);
    CHECK(agc_gc_get_stats(&st) == AGC_OK);
    CHECK(st.generations[0].collections >= 1); /* over threshold 0: collected by itself */
    CHECK(node_frees > 0);
    CHECK(agc_gc_collect(2) >= 0);
    CHECK(node_frees == 200);
    /* threshold 0 turns automatic collection off */
    CHECK(agc_gc_set_threshold(0, 10, 10) == AGC_OK);
    CHECK(agc_gc_get_stats(&st) == AGC_OK);
    {
        size_t before = st.generations[0].collections;
        make_cycles(50);
        CHECK(agc_gc_get_stats(&st) == AGC_OK);
        CHECK(st.generations[0].collections == before);
    }
    CHECK(agc_gc_collect(2) == 100);
}

static void test_threshold(void) {
    size_t a = 1, b = 1, c = 1;
    CHECK(agc_gc_get_threshold(&a, &b, &c) == AGC_OK);
    CHECK(a == 700 && b == 10 && c == 10);
    CHECK(agc_gc_set_threshold(5, 6, 7) == AGC_OK);
    CHECK(agc_gc_get_threshold(&a, &b, &c) == AGC_OK);
    CHECK(a == 5 && b == 6 && c == 7);
    CHECK(agc_gc_get_threshold(NULL, &b, &c) == AGC_ERR_NULL);
    CHECK_ERR("agc_gc_get_threshold: an output pointer is NULL");
    CHECK(agc_gc_get_threshold(&a, NULL, &c) == AGC_ERR_NULL);
    CHECK(agc_gc_get_threshold(&a, &b, NULL) == AGC_ERR_NULL);
}

static void test_count(void) {
    size_t c0, c1, c2;
    agc_object *o[5];
    int i;
    CHECK(agc_gc_get_count(&c0, &c1, &c2) == AGC_OK);
    CHECK(c0 == 0 && c1 == 0 && c2 == 0);
    for (i = 0; i < 5; i++)
        o[i] = new_node(&node_type, i);
    CHECK(agc_gc_get_count(&c0, &c1, &c2) == AGC_OK);
    CHECK(c0 == 5);
    agc_decref(o[0]);
    CHECK(count0() == 4);
    CHECK(agc_gc_collect(0) == 0);
    CHECK(agc_gc_get_count(&c0, &c1, &c2) == AGC_OK);
    CHECK(c0 == 0 && c1 == 1 && c2 == 0);
    CHECK(agc_gc_collect(1) == 0);
    CHECK(agc_gc_get_count(&c0, &c1, &c2) == AGC_OK);
    CHECK(c1 == 0 && c2 == 1);
    for (i = 1; i < 5; i++)
        agc_decref(o[i]);
    CHECK(agc_gc_get_count(NULL, &c1, &c2) == AGC_ERR_NULL);
    CHECK_ERR("agc_gc_get_count: an output pointer is NULL");
    CHECK(agc_gc_get_count(&c0, &c1, NULL) == AGC_ERR_NULL);
}

static void test_stats(void) {
    agc_gc_stats_t st;
    int g;
    CHECK(agc_gc_get_stats(&st) == AGC_OK);
    for (g = 0; g < AGC_GC_GENERATIONS; g++)
        CHECK(st.generations[g].collections == 0 && st.generations[g].collected == 0 &&
              st.generations[g].uncollectable == 0);
    make_cycles(3);
    CHECK(agc_gc_collect(1) == 6);
    make_cycles(2);
    CHECK(agc_gc_collect(2) == 4);
    CHECK(agc_gc_get_stats(&st) == AGC_OK);
    CHECK(st.generations[0].collections == 0);
    CHECK(st.generations[1].collections == 1 && st.generations[1].collected == 6);
    CHECK(st.generations[2].collections == 1 && st.generations[2].collected == 4);
    CHECK(agc_gc_get_stats(NULL) == AGC_ERR_NULL);
    CHECK_ERR("agc_gc_get_stats: out is NULL");
}

static void test_debug_and_saveall(void) {
    agc_object *g;
    CHECK(agc_gc_get_debug() == 0);
    CHECK(agc_gc_set_debug(AGC_DEBUG_STATS | AGC_DEBUG_COLLECTABLE) == AGC_OK);
    CHECK(agc_gc_get_debug() == (AGC_DEBUG_STATS | AGC_DEBUG_COLLECTABLE));
    CHECK(agc_gc_set_debug(64) == AGC_ERR_VALUE);
    CHECK_ERR("agc_gc_set_debug: unknown flag bits 0x40");
    CHECK(agc_gc_set_debug(0x80000000u | AGC_DEBUG_LEAK) == AGC_ERR_VALUE);
    CHECK(agc_gc_get_debug() == (AGC_DEBUG_STATS | AGC_DEBUG_COLLECTABLE)); /* unchanged */
    make_cycles(1);
    CHECK(agc_gc_collect(2) == 2); /* prints "gc: ..." lines to stderr (checked by the driver) */
    CHECK(node_frees == 2);

    /* SAVEALL: unreachable objects go to garbage instead of being freed. */
    CHECK(agc_gc_set_debug(AGC_DEBUG_SAVEALL) == AGC_OK);
    make_cycles(2);
    CHECK(agc_gc_garbage_len() == 0);
    CHECK(agc_gc_collect(2) == 4);
    CHECK(node_frees == 2);
    CHECK(agc_gc_garbage_len() == 4);
    g = agc_gc_garbage_get(3);
    CHECK(g != NULL && g->type == &node_type && g->refcnt >= 2);
    agc_decref(g);
    CHECK(agc_gc_garbage_get(4) == NULL);
    CHECK_ERR("agc_gc_garbage_get: index 4 out of range (garbage has 4 objects)");
    CHECK(agc_gc_garbage_get(SIZE_MAX) == NULL);
    CHECK_ERR("out of range");
    CHECK(agc_gc_set_debug(0) == AGC_OK);
    agc_gc_garbage_clear();
    CHECK(agc_gc_garbage_len() == 0);
    CHECK(node_frees == 2); /* still a cycle each */
    CHECK(agc_gc_collect(2) == 4);
    CHECK(node_frees == 6);
}

static void test_legacy_del_is_uncollectable(void) {
    agc_object *a = new_node(&legacy_type, 1), *b = new_node(&node_type, 2), *g;
    agc_gc_stats_t st;
    link_to(a, b);
    link_to(b, a);
    agc_decref(a);
    agc_decref(b);
    CHECK(agc_gc_collect(2) == 2);
    CHECK(node_frees == 0 && del_calls == 0);
    CHECK(agc_gc_get_stats(&st) == AGC_OK);
    CHECK(st.generations[2].uncollectable == 2 && st.generations[2].collected == 0);
    CHECK(agc_gc_garbage_len() == 1); /* the object with del (SAVEALL would keep both) */
    g = agc_gc_garbage_get(0);
    CHECK(g == a);
    /* Break the cycle by hand, then let garbage go: refcounting frees both. */
    node_clear(g);
    agc_decref(g);
    agc_gc_garbage_clear();
    CHECK(node_frees == 2);
}

static void test_freeze(void) {
    agc_object *keep = new_node(&node_type, 9);
    make_cycles(2);
    CHECK(agc_gc_get_freeze_count() == 0);
    agc_gc_freeze();
    CHECK(agc_gc_get_freeze_count() == 5);
    CHECK(tracked_in(-1) == 0);
    CHECK(count0() == 0);
    CHECK(agc_gc_collect(2) == 0); /* frozen: ignored */
    CHECK(node_frees == 0);
    agc_gc_unfreeze();
    CHECK(agc_gc_get_freeze_count() == 0);
    CHECK(tracked_in(2) == 5);
    CHECK(agc_gc_collect(2) == 4);
    CHECK(node_frees == 4);
    agc_decref(keep);
}

struct cb_log {
    int calls;
    int phases[8];
    int generations[8];
    size_t collected[8];
    size_t uncollectable[8];
};

static void gc_callback(int phase, int generation, size_t collected, size_t uncollectable,
                        void *data) {
    struct cb_log *log = (struct cb_log *)data;
    CHECK(log->calls < 8);
    log->phases[log->calls] = phase;
    log->generations[log->calls] = generation;
    log->collected[log->calls] = collected;
    log->uncollectable[log->calls] = uncollectable;
    log->calls++;
}

static intptr_t nested_result = -100;
static void nested_collect(int phase, int generation, size_t c, size_t u, void *data) {
    (void)generation;
    (void)c;
    (void)u;
    (void)data;
    if (phase == AGC_GC_START)
        nested_result = agc_gc_collect(2); /* during a collection: returns 0 at once */
}

static void test_callbacks(void) {
    struct cb_log log;
    uint64_t id, id2;
    memset(&log, 0, sizeof log);
    id = agc_gc_callback_add(gc_callback, &log);
    CHECK(id > 0);
    make_cycles(1);
    CHECK(agc_gc_collect(1) == 2);
    CHECK(log.calls == 2);
    CHECK(log.phases[0] == AGC_GC_START && log.generations[0] == 1 && log.collected[0] == 0);
    CHECK(log.phases[1] == AGC_GC_STOP && log.generations[1] == 1 && log.collected[1] == 2 &&
          log.uncollectable[1] == 0);
    id2 = agc_gc_callback_add(gc_callback, &log);
    CHECK(id2 > 0 && id2 != id);
    CHECK(agc_gc_collect(0) == 0);
    CHECK(log.calls == 6);
    CHECK(agc_gc_callback_remove(id) == AGC_OK);
    CHECK(agc_gc_callback_remove(id) == AGC_ERR_VALUE);
    CHECK_ERR("agc_gc_callback_remove: no callback");
    CHECK(agc_gc_collect(0) == 0);
    CHECK(log.calls == 8);
    CHECK(agc_gc_callback_remove(id2) == AGC_OK);
    CHECK(agc_gc_collect(0) == 0);
    CHECK(log.calls == 8);
    CHECK(agc_gc_callback_add(NULL, &log) == 0);
    CHECK_ERR("agc_gc_callback_add: callback is NULL");
    CHECK(agc_gc_callback_remove(0) == AGC_ERR_VALUE);
    CHECK(agc_gc_callback_remove(UINT64_MAX) == AGC_ERR_VALUE);

    id = agc_gc_callback_add(nested_collect, NULL);
    make_cycles(1);
    CHECK(agc_gc_collect(2) == 2);
    CHECK(nested_result == 0);
    CHECK(agc_gc_callback_remove(id) == AGC_OK);
}

static int stop_visit(agc_object *o, void *arg) {
    (void)o;
    ++*(intptr_t *)arg;
    return 1;
}

struct find { agc_object *want; int found; };

static int find_visit(agc_object *o, void *arg) {
    struct find *f = (struct find *)arg;
    if (o == f->want)
        f->found++;
    return 0;
}

/* Gives up the caller's reference to the object it sees with value 1. */
static int drop_visit(agc_object *o, void *arg) {
    (void)arg;
    if (((node *)o)->value == 1) {
        agc_decref(o);
        CHECK(o->refcnt == 1); /* the walk still holds it */
        CHECK(node_frees == 0);
    }
    return 0;
}

static void test_get_objects(void) {
    agc_object *a = new_node(&node_type, 1), *b = new_node(&node_type, 2);
    intptr_t n = 0;
    struct find f;
    CHECK(tracked_in(0) == 2 && tracked_in(1) == 0 && tracked_in(-1) == 2);
    CHECK(agc_gc_collect(0) == 0); /* survivors move to generation 1 */
    CHECK(tracked_in(0) == 0 && tracked_in(1) == 2 && tracked_in(-1) == 2);
    f.want = b;
    f.found = 0;
    CHECK(agc_gc_get_objects(1, find_visit, &f) == 2 && f.found == 1);
    CHECK(agc_gc_get_objects(-1, stop_visit, &n) == 1 && n == 1); /* stops at nonzero */
    CHECK(agc_gc_get_objects(3, count_visit, &n) == AGC_ERR_VALUE);
    CHECK_ERR("agc_gc_get_objects: invalid generation 3");
    CHECK(agc_gc_get_objects(-2, count_visit, &n) == AGC_ERR_VALUE);
    CHECK_ERR("invalid generation -2");
    CHECK(agc_gc_get_objects(0, NULL, &n) == AGC_ERR_NULL);
    CHECK_ERR("agc_gc_get_objects: visit is NULL");
    CHECK(a->refcnt == 1 && b->refcnt == 1); /* the walk's references are gone */
    /* A visitor may drop objects: each lives until the walk is done with it. */
    CHECK(agc_gc_get_objects(-1, drop_visit, NULL) == 2);
    CHECK(node_frees == 1);
    agc_decref(b);
    CHECK(node_frees == 2);
}

static void test_referrers_referents(void) {
    agc_object *a = new_node(&node_type, 1), *b = new_node(&node_type, 2);
    agc_object *c = new_node(&node_type, 3);
    struct find f;
    intptr_t n = 0;
    link_to(a, b);
    link_to(c, b);
    f.want = b;
    f.found = 0;
    CHECK(agc_gc_get_referents(a, find_visit, &f) == 1 && f.found == 1);
    CHECK(agc_gc_get_referents(b, count_visit, &n) == 0 && n == 0);
    f.want = a;
    f.found = 0;
    CHECK(agc_gc_get_referrers(b, find_visit, &f) == 2 && f.found == 1);
    f.want = c;
    f.found = 0;
    CHECK(agc_gc_get_referrers(b, find_visit, &f) == 2 && f.found == 1);
    CHECK(agc_gc_get_referrers(a, count_visit, &n) == 0);

    CHECK(agc_gc_get_referrers(NULL, count_visit, &n) == AGC_ERR_NULL);
    CHECK_ERR("agc_gc_get_referrers: object is NULL");
    CHECK(agc_gc_get_referents(NULL, count_visit, &n) == AGC_ERR_NULL);
    CHECK_ERR("agc_gc_get_referents: object is NULL");
    CHECK(agc_gc_get_referrers(a, NULL, &n) == AGC_ERR_NULL);
    CHECK_ERR("agc_gc_get_referrers: visit is NULL");
    CHECK(agc_gc_get_referents(a, NULL, &n) == AGC_ERR_NULL);
    CHECK_ERR("agc_gc_get_referents: visit is NULL");
    CHECK(a->refcnt == 1 && b->refcnt == 3 && c->refcnt == 1);
    agc_decref(a);
    agc_decref(c);
    agc_decref(b);
    CHECK(node_frees == 3);
}

static void test_finalizer(void) {
    agc_object *a, *b;
    /* Refcount path: finalize runs once, from dealloc. */
    a = new_node(&fin_type, 1);
    agc_decref(a);
    CHECK(finalize_calls == 1 && node_frees == 1);

    /* Collector path: a cycle of two finalizable objects, each finalized once. */
    a = new_node(&fin_type, 1);
    b = new_node(&fin_type, 2);
    link_to(a, b);
    link_to(b, a);
    agc_decref(a);
    agc_decref(b);
    CHECK(agc_gc_collect(2) == 2);
    CHECK(finalize_calls == 3 && node_frees == 3);

    /* Resurrection in the collector: the finalizer keeps its object; it survives, finalized,
       and its finalizer never runs again. */
    a = new_node(&fin_type, 7);
    link_to(a, a);
    agc_decref(a);
    resurrect = 1;
    CHECK(agc_gc_collect(2) >= 0);
    resurrect = 0;
    CHECK(finalize_calls == 4 && node_frees == 3);
    CHECK(resurrected == a && agc_is_finalized(a) == 1 && ((node *)a)->value == 7);
    CHECK(agc_is_tracked(a) == 1);
    node_clear(a); /* break the self-cycle */
    resurrected = NULL;
    agc_decref(a);
    CHECK(finalize_calls == 4 && node_frees == 4);

    /* Resurrection from dealloc: agc_finalize_from_dealloc reports it, nothing is freed. */
    a = new_node(&fin_type, 8);
    resurrect = 1;
    agc_decref(a);
    resurrect = 0;
    CHECK(finalize_calls == 5 && node_frees == 4);
    CHECK(resurrected == a && a->refcnt == 1 && agc_is_finalized(a) == 1);
    resurrected = NULL;
    agc_decref(a); /* finalized already: freed now */
    CHECK(finalize_calls == 5 && node_frees == 5);
}

/* ---- weak references --------------------------------------------------------------------- */

static int weak_calls;
static void *weak_data;
static agc_object *weak_wr;

static void weak_callback(agc_object *wr, void *data) {
    weak_calls++;
    weak_data = data;
    weak_wr = wr;
    CHECK(agc_weakref_get(wr) == NULL); /* already dead */
}

static void test_weakref(void) {
    static const agc_type *types[] = {&node_type, &slot_node_type};
    int i, tag = 0;
    for (i = 0; i < 2; i++) {
        agc_object *o = new_node(types[i], 5);
        agc_object *w1 = agc_weakref_new(o, weak_callback, &tag);
        agc_object *w2 = agc_weakref_new(o, NULL, NULL);
        agc_object *got;
        CHECK(w1 != NULL && w2 != NULL && w1 != o);
        CHECK(w1->refcnt == 1 && agc_is_tracked(w1) == 1);
        CHECK(agc_weakref_count(o) == 2);
        got = agc_weakref_get(w1);
        CHECK(got == o && o->refcnt == 2);
        agc_decref(got);
        agc_decref(w2); /* a weak reference dying first: no callback */
        CHECK(agc_weakref_count(o) == 1);
        weak_calls = 0;
        agc_decref(o); /* the referent dies: w1 is cleared, its callback runs */
        CHECK(weak_calls == 1 && weak_data == &tag && weak_wr == w1);
        CHECK(agc_weakref_get(w1) == NULL);
        agc_decref(w1);
    }
    CHECK(node_frees == 2);
}

static void test_weakref_to_collected_cycle(void) {
    agc_object *a = new_node(&node_type, 1), *b = new_node(&node_type, 2);
    agc_object *wa = agc_weakref_new(a, weak_callback, (void *)&weak_calls);
    agc_object *wb = agc_weakref_new(b, NULL, NULL);
    link_to(a, b);
    link_to(b, a);
    agc_decref(a);
    agc_decref(b);
    weak_calls = 0;
    CHECK(agc_gc_collect(2) == 2);
    CHECK(node_frees == 2);
    CHECK(weak_calls == 1 && weak_wr == wa && weak_data == (void *)&weak_calls);
    CHECK(agc_weakref_get(wa) == NULL && agc_weakref_get(wb) == NULL);
    agc_decref(wa);
    agc_decref(wb);
}

static void test_weakref_plain_and_bad(void) {
    agc_object *p = agc_new(&plain_weak_type);
    agc_object *q = agc_new(&plain_type);
    agc_object *w = agc_weakref_new(p, weak_callback, NULL);
    CHECK(w != NULL && agc_weakref_count(p) == 1);
    CHECK(agc_weakref_count(q) == 0);
    weak_calls = 0;
    agc_decref(p); /* plain_dealloc's agc_object_del clears the weak references */
    CHECK(weak_calls == 1 && plain_frees == 1);
    CHECK(agc_weakref_get(w) == NULL);

    CHECK(agc_weakref_new(q, NULL, NULL) == NULL);
    CHECK_ERR("agc_weakref_new: type 'plain' does not support weak references");
    CHECK(agc_weakref_new(NULL, weak_callback, NULL) == NULL);
    CHECK_ERR("agc_weakref_new: object is NULL");
    CHECK(agc_weakref_get(NULL) == NULL);
    CHECK_ERR("agc_weakref_get: object is NULL");
    CHECK(agc_weakref_get(q) == NULL);
    CHECK_ERR("is not a weak reference");
    CHECK(agc_weakref_count(NULL) == AGC_ERR_NULL);
    CHECK_ERR("agc_weakref_count: object is NULL");
    agc_decref(w);
    agc_decref(q);
    CHECK(weak_calls == 1 && plain_frees == 2);
}

/* ---- runtimes ---------------------------------------------------------------------------- */

static int only_once_called;
static void count_callback(int phase, int generation, size_t c, size_t u, void *data) {
    (void)generation;
    (void)c;
    (void)u;
    if (phase == AGC_GC_STOP)
        ++*(int *)data;
}

static void test_runtime(void) {
    agc_runtime *r1 = agc_runtime_new(), *r2 = agc_runtime_new();
    agc_object *d = new_node(&node_type, 0), *o;
    uint64_t id;
    CHECK(r1 != NULL && r2 != NULL);
    CHECK(count0() == 1);
    CHECK(agc_runtime_attach(r1) == AGC_OK);
    /* A fresh runtime: its own counts, thresholds, objects, callbacks. */
    CHECK(count0() == 0 && tracked_in(-1) == 0);
    CHECK(agc_gc_set_threshold(3, 4, 5) == AGC_OK);
    id = agc_gc_callback_add(count_callback, &only_once_called);
    o = new_node(&node_type, 1);
    link_to(o, o);
    CHECK(count0() == 1 && tracked_in(-1) == 1);
    CHECK(agc_runtime_attach(r1) == AGC_ERR_STATE);
    CHECK_ERR("this thread is attached to");
    CHECK(agc_runtime_free(r1) == AGC_ERR_STATE);
    CHECK_ERR("detach first");
    /* nested */
    CHECK(agc_runtime_attach(r2) == AGC_OK);
    CHECK(count0() == 0);
    CHECK(agc_gc_callback_remove(id) == AGC_ERR_VALUE); /* registered in r1 */
    CHECK(agc_gc_collect(2) == 0);
    CHECK(only_once_called == 0);
    CHECK(agc_runtime_detach(r1) == AGC_ERR_STATE); /* not the innermost */
    CHECK_ERR("is not this thread's innermost attached runtime");
    CHECK(agc_runtime_detach(r2) == AGC_OK);
    CHECK(agc_runtime_detach(r2) == AGC_ERR_STATE);
    CHECK(count0() == 1); /* r1 again */
    agc_decref(o);
    CHECK(agc_gc_collect(2) == 1);
    CHECK(only_once_called == 1);
    CHECK(agc_gc_callback_remove(id) == AGC_OK);
    CHECK(agc_runtime_detach(r1) == AGC_OK);
    /* The default runtime again, untouched. */
    {
        size_t a, b, c;
        CHECK(agc_gc_get_threshold(&a, &b, &c) == AGC_OK);
        CHECK(a == 700 && b == 10 && c == 10);
    }
    CHECK(count0() == 1 && tracked_in(-1) == 1);
    agc_decref(d);
    CHECK(agc_runtime_free(r1) == AGC_OK);
    CHECK(agc_runtime_free(r2) == AGC_OK);

    CHECK(agc_runtime_attach(NULL) == AGC_ERR_NULL);
    CHECK_ERR("agc_runtime_attach: runtime is NULL");
    CHECK(agc_runtime_detach(NULL) == AGC_ERR_NULL);
    CHECK_ERR("agc_runtime_detach: runtime is NULL");
    CHECK(agc_runtime_free(NULL) == AGC_ERR_NULL);
    CHECK_ERR("agc_runtime_free: runtime is NULL");
}

/* Two threads share one runtime, one at a time: attach waits while the other is attached. */
static agc_runtime *shared_rt;
static agc_object *shared_list; /* a node chain built by both threads */
static volatile int second_attached;

static void *second_thread(void *arg) {
    agc_object *n;
    (void)arg;
    CHECK(agc_runtime_attach(shared_rt) == AGC_OK); /* waits for the main thread */
    second_attached = 1;
    n = new_node(&node_type, 2);
    link_to(n, shared_list);
    agc_decref(shared_list);
    shared_list = n;
    CHECK(count0() == 2);
    CHECK(agc_runtime_detach(shared_rt) == AGC_OK);
    return NULL;
}

static void *exit_attached(void *arg) {
    CHECK(agc_runtime_attach((agc_runtime *)arg) == AGC_OK);
    (void)new_node(&node_type, 3); /* leaked into that runtime on purpose: stays tracked */
    return NULL;                   /* exits attached: detached at thread exit */
}

static void test_runtime_threads(void) {
    pthread_t t;
    struct timespec ms50 = {0, 50 * 1000 * 1000};
    agc_runtime *other;
    shared_rt = agc_runtime_new();
    CHECK(agc_runtime_attach(shared_rt) == AGC_OK);
    shared_list = new_node(&node_type, 1);
    CHECK(pthread_create(&t, NULL, second_thread, NULL) == 0);
    nanosleep(&ms50, NULL);
    CHECK(second_attached == 0); /* still waiting */
    CHECK(agc_runtime_detach(shared_rt) == AGC_OK);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(second_attached == 1);
    CHECK(agc_runtime_attach(shared_rt) == AGC_OK);
    CHECK(count0() == 2 && tracked_in(-1) == 2);
    CHECK(((node *)shared_list)->value == 2);
    agc_decref(shared_list);
    CHECK(node_frees == 2 && count0() == 0);
    CHECK(agc_runtime_detach(shared_rt) == AGC_OK);
    CHECK(agc_runtime_free(shared_rt) == AGC_OK);

    other = agc_runtime_new();
    CHECK(pthread_create(&t, NULL, exit_attached, other) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(agc_runtime_attach(other) == AGC_OK); /* would wait forever if still attached */
    CHECK(tracked_in(-1) == 1);
    CHECK(agc_runtime_detach(other) == AGC_OK);
    CHECK(agc_runtime_free(other) == AGC_OK);
}

/* Threads without a runtime use their own default one. */
static void *default_thread(void *arg) {
    agc_object *o;
    (void)arg;
    CHECK(count0() == 0 && tracked_in(-1) == 0);
    o = new_node(&node_type, 1);
    CHECK(count0() == 1);
    agc_decref(o);
    CHECK(agc_gc_collect(2) == 0);
    return NULL;
}

static void test_default_runtime_per_thread(void) {
    pthread_t t;
    agc_object *o = new_node(&node_type, 1);
    CHECK(count0() == 1);
    CHECK(pthread_create(&t, NULL, default_thread, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(count0() == 1 && tracked_in(-1) == 1);
    agc_decref(o);
}

/* ---- misuse from inside the library's callbacks, and stale handles -------------------- */

static agc_runtime *cb_rt, *cb_other;
static int cb_refusals; /* attach/detach calls refused from a callback */

static void try_switch_runtime(void) {
    CHECK(agc_runtime_attach(NULL) == AGC_ERR_NULL); /* NULL is NULL, even here */
    CHECK(agc_runtime_detach(cb_rt) == AGC_ERR_STATE);
    CHECK_ERR("called from code the library runs");
    CHECK(agc_runtime_attach(cb_other) == AGC_ERR_STATE);
    CHECK_ERR("called from code the library runs");
    cb_refusals++;
}

static void switching_gc_callback(int phase, int generation, size_t collected,
                                  size_t uncollectable, void *data) {
    (void)phase, (void)generation, (void)collected, (void)uncollectable, (void)data;
    try_switch_runtime();
}

static int switching_visit(agc_object *o, void *arg) {
    (void)o, (void)arg;
    try_switch_runtime();
    return 0;
}

static void switching_weakref_callback(agc_object *wr, void *data) {
    (void)wr, (void)data;
    try_switch_runtime();
}

/* A gc callback, a visitor and a weakref callback each try to leave the runtime whose call
   runs them (which would let a waiting thread into it mid-collection) or to switch to another:
   refused, and the runtime is still attached and usable afterwards. */
static void test_runtime_switch_from_callbacks(void) {
    agc_object *a, *b, *wr;
    uint64_t id;
    intptr_t n = 0;
    cb_rt = agc_runtime_new();
    cb_other = agc_runtime_new();
    CHECK(agc_runtime_attach(cb_rt) == AGC_OK);
    id = agc_gc_callback_add(switching_gc_callback, NULL);
    CHECK(id != 0);
    a = new_node(&node_type, 1);
    b = new_node(&node_type, 2);
    link_to(a, b);
    link_to(b, a);
    wr = agc_weakref_new(a, switching_weakref_callback, NULL);
    CHECK(wr != NULL);
    agc_decref(a);
    agc_decref(b);
    CHECK(agc_gc_collect(2) == 2);
    CHECK(cb_refusals == 3); /* start and stop callbacks, the weakref callback */
    CHECK(agc_gc_callback_remove(id) == AGC_OK);
    agc_decref(wr);
    a = new_node(&node_type, 3);
    CHECK(agc_gc_get_objects(-1, switching_visit, &n) == 1);
    CHECK(cb_refusals == 4);
    agc_decref(a);
    /* Still attached to cb_rt, at the top level both work. */
    CHECK(agc_runtime_attach(cb_other) == AGC_OK);
    CHECK(agc_runtime_detach(cb_other) == AGC_OK);
    CHECK(agc_runtime_detach(cb_rt) == AGC_OK);
    CHECK(agc_runtime_free(cb_rt) == AGC_OK);
    CHECK(agc_runtime_free(cb_other) == AGC_OK);
}

/* A freed runtime handle is refused by every runtime function. */
static void test_runtime_freed_handle(void) {
    agc_runtime *rt = agc_runtime_new();
    CHECK(rt != NULL);
    CHECK(agc_runtime_free(rt) == AGC_OK);
    CHECK(agc_runtime_attach(rt) == AGC_ERR_STATE);
    CHECK_ERR("is not a live runtime");
    CHECK(agc_runtime_detach(rt) == AGC_ERR_STATE);
    CHECK_ERR("is not a live runtime");
    CHECK(agc_runtime_free(rt) == AGC_ERR_STATE);
    CHECK_ERR("is not a live runtime");
    CHECK(agc_runtime_attach((agc_runtime *)&rt) == AGC_ERR_STATE); /* never a runtime */
    CHECK_ERR("is not a live runtime");
}

static agc_runtime *waited_rt;
static volatile int waiter_in, waiter_may_go;

static void *waiter(void *arg) {
    (void)arg;
    waiter_in = 1;
    CHECK(agc_runtime_attach(waited_rt) == AGC_OK);
    while (!waiter_may_go)
        usleep(1000);
    CHECK(agc_runtime_detach(waited_rt) == AGC_OK);
    return NULL;
}

/* A runtime another thread waits for (in agc_runtime_attach) cannot be freed, even after the
   holder detached: the waiter is either attached now or about to be. */
static void test_runtime_free_with_a_waiter(void) {
    pthread_t t;
    /* The library shows no count of waiters: give the waiter ample time to be blocked in
       attach (it only needs to pass a registry lookup). Were it slower, the free below would
       succeed and the test fail; it cannot hang. */
    struct timespec ms300 = {0, 300 * 1000 * 1000};
    waited_rt = agc_runtime_new();
    CHECK(agc_runtime_attach(waited_rt) == AGC_OK);
    CHECK(pthread_create(&t, NULL, waiter, NULL) == 0);
    while (!waiter_in)
        usleep(1000);
    nanosleep(&ms300, NULL); /* the waiter is blocked in attach */
    CHECK(agc_runtime_detach(waited_rt) == AGC_OK);
    CHECK(agc_runtime_free(waited_rt) == AGC_ERR_STATE);
    CHECK_ERR("is attached or being attached to");
    waiter_may_go = 1;
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(agc_runtime_free(waited_rt) == AGC_OK);
}

static uint64_t second_id;
static int second_calls;
static int *second_data;

static void remover(int phase, int generation, size_t collected, size_t uncollectable,
                    void *data) {
    (void)generation, (void)collected, (void)uncollectable, (void)data;
    if (phase == AGC_GC_START && second_id != 0) {
        CHECK(agc_gc_callback_remove(second_id) == AGC_OK);
        second_id = 0;
        free(second_data); /* what a C program does once its callback is removed */
        second_data = NULL;
    }
}

static void second(int phase, int generation, size_t collected, size_t uncollectable,
                   void *data) {
    (void)phase, (void)generation, (void)collected, (void)uncollectable;
    CHECK(data == second_data); /* never called with data already freed */
    second_calls++;
}

/* A callback removed by another during a pass is not called later in that pass. */
static void test_callback_removed_during_a_pass(void) {
    uint64_t first;
    second_data = malloc(sizeof *second_data);
    CHECK(second_data != NULL);
    first = agc_gc_callback_add(remover, NULL);
    second_id = agc_gc_callback_add(second, second_data);
    CHECK(first != 0 && second_id != 0);
    CHECK(agc_gc_collect(0) == 0);
    CHECK(second_calls == 0);
    CHECK(agc_gc_callback_remove(first) == AGC_OK);
}

static agc_object *late_wr;

static void make_late_weakref(agc_object *wr, void *data) {
    (void)wr;
    late_wr = agc_weakref_new((agc_object *)data, NULL, NULL);
}

/* A weakref callback of a dying object (count 0) cannot make a new weakref to it: that one
   would never be cleared and would outlive the object. */
static void test_weakref_to_a_dying_object(void) {
    agc_object *o = new_node(&node_type, 1);
    agc_object *wr = agc_weakref_new(o, make_late_weakref, o);
    CHECK(wr != NULL);
    agc_decref(o);
    CHECK(late_wr == NULL);
    CHECK_ERR("is being deallocated");
    CHECK(agc_weakref_get(wr) == NULL);
    agc_decref(wr);
}

/* A node whose traverse also visits an empty (NULL) field, as Py_VISIT allows. */
static int null_visiting_traverse(agc_object *self, agc_visitproc visit, void *arg) {
    int r = visit(NULL, arg);
    return r != 0 ? r : node_traverse(self, visit, arg);
}

static const agc_type null_visiting_type = {
    "null_visiting", sizeof(node), AGC_TPFLAGS_HAVE_GC, 0,
    null_visiting_traverse, node_clear, NULL, NULL, node_dealloc, 0};

static int count_referent(agc_object *o, void *arg) {
    CHECK(o != NULL);
    ++*(int *)arg;
    return 0;
}

static void test_traverse_visiting_null(void) {
    agc_object *a = new_node(&null_visiting_type, 1);
    agc_object *b = new_node(&null_visiting_type, 2);
    int referents = 0;
    link_to(a, b);
    link_to(b, a);
    CHECK(agc_gc_get_referents(a, count_referent, &referents) == 1 && referents == 1);
    agc_decref(a);
    agc_decref(b);
    CHECK(agc_gc_collect(2) == 2);
    CHECK(node_frees == 2);
}

/* ---- the header's helpers: agc_newref, agc_xnewref, AGC_VISIT, AGC_CLEAR ----------------- */

typedef struct holder {
    agc_object ob;
    agc_object *item;
    struct holder *peer; /* a typed field: the macros take any object pointer */
} holder;

static int holder_traverse(agc_object *self, agc_visitproc visit, void *arg) {
    holder *h = (holder *)self;
    AGC_VISIT(h->item);
    AGC_VISIT(h->peer);
    return 0;
}

static int holder_clear(agc_object *self) {
    holder *h = (holder *)self;
    AGC_CLEAR(h->item);
    AGC_CLEAR(h->peer);
    return 0;
}

static int holder_frees;
static void holder_dealloc(agc_object *self) {
    CHECK(agc_untrack(self) == AGC_OK);
    holder_clear(self);
    holder_frees++;
    CHECK(agc_object_del(self) == AGC_OK);
}

static const agc_type holder_type = {"holder", sizeof(holder), AGC_TPFLAGS_HAVE_GC, 0,
                                     holder_traverse, holder_clear, NULL, NULL,
                                     holder_dealloc, 0};

/* A plain object that, when deallocated, looks at the holder's field that held it. */
static holder *watched;
static int watched_field_was_null = -1;
static void watching_dealloc(agc_object *self) {
    watched_field_was_null = watched->item == NULL;
    CHECK(agc_object_del(self) == AGC_OK);
}
static const agc_type watching_type = {"watching", sizeof(agc_object), 0, 0, NULL, NULL, NULL,
                                       NULL, watching_dealloc, 0};

static int visits;
static int visit_stop_at_first(agc_object *o, void *arg) {
    (void)o;
    (void)arg;
    visits++;
    return 7;
}
static int visit_all(agc_object *o, void *arg) {
    (void)o;
    (void)arg;
    visits++;
    return 0;
}

static void test_helpers(void) {
    agc_object *h = agc_new(&holder_type), *h2 = agc_new(&holder_type);
    agc_object *x = agc_new(&watching_type);
    holder *hh = (holder *)h;
    CHECK(h != NULL && h2 != NULL && x != NULL);
    CHECK(agc_track(h) == AGC_OK && agc_track(h2) == AGC_OK);

    /* agc_newref: a new reference to the same object; agc_xnewref: the same, NULL allowed. */
    hh->item = agc_newref(x);
    CHECK(hh->item == x && x->refcnt == 2);
    CHECK(agc_xnewref(x) == x && x->refcnt == 3);
    agc_decref(x);
    CHECK(agc_xnewref(NULL) == NULL);
    CHECK(agc_newref(NULL) == NULL); /* an error, as agc_incref(NULL) */
    CHECK_ERR("object is NULL");

    /* AGC_VISIT: NULL fields skipped; a nonzero result returned at once. */
    visits = 0;
    CHECK(holder_traverse(h, visit_all, NULL) == 0 && visits == 1); /* peer is NULL */
    hh->peer = (holder *)agc_newref(h2);
    visits = 0;
    CHECK(holder_traverse(h, visit_all, NULL) == 0 && visits == 2);
    visits = 0;
    CHECK(holder_traverse(h, visit_stop_at_first, NULL) == 7 && visits == 1);
    CHECK(agc_gc_get_referents(h, visit_all, NULL) == 2);

    /* AGC_CLEAR: the field is NULL before the reference is dropped; NULL fields are left. */
    agc_decref(x); /* hh->item holds the last reference */
    watched = hh;
    AGC_CLEAR(hh->item);
    CHECK(hh->item == NULL && watched_field_was_null == 1);
    AGC_CLEAR(hh->item);
    CHECK(hh->item == NULL);

    /* A cycle through a typed field, found through AGC_VISIT and broken through AGC_CLEAR. */
    ((holder *)h2)->peer = (holder *)agc_newref(h);
    agc_decref(h);
    agc_decref(h2);
    CHECK(holder_frees == 0);
    CHECK(agc_gc_collect(2) == 2);
    CHECK(holder_frees == 2);
}

static const struct test_case cases[] = {
    {"new", test_new},
    {"new_bad", test_new_bad},
    {"new_var", test_new_var},
    {"refcount", test_refcount},
    {"track", test_track},
    {"dealloc_helpers_bad", test_dealloc_helpers_bad},
    {"cycle", test_cycle},
    {"collect_bad_generation", test_collect_bad_generation},
    {"enable", test_enable_and_automatic_collection},
    {"threshold", test_threshold},
    {"count", test_count},
    {"stats", test_stats},
    {"debug", test_debug_and_saveall},
    {"legacy_del", test_legacy_del_is_uncollectable},
    {"freeze", test_freeze},
    {"callbacks", test_callbacks},
    {"get_objects", test_get_objects},
    {"referrers_referents", test_referrers_referents},
    {"finalizer", test_finalizer},
    {"weakref", test_weakref},
    {"weakref_cycle", test_weakref_to_collected_cycle},
    {"weakref_plain_and_bad", test_weakref_plain_and_bad},
    {"runtime", test_runtime},
    {"runtime_threads", test_runtime_threads},
    {"default_runtime_per_thread", test_default_runtime_per_thread},
    {"runtime_switch_from_callbacks", test_runtime_switch_from_callbacks},
    {"runtime_freed_handle", test_runtime_freed_handle},
    {"runtime_free_with_a_waiter", test_runtime_free_with_a_waiter},
    {"callback_removed_during_a_pass", test_callback_removed_during_a_pass},
    {"weakref_to_a_dying_object", test_weakref_to_a_dying_object},
    {"traverse_visiting_null", test_traverse_visiting_null},
    {"helpers", test_helpers},
};

/* Runs the case named by argv[1] (each in a fresh process: a fresh default runtime). */
int main(int argc, char **argv) {
    CHECK(argc == 2);
    CHECK(run_cases(cases, sizeof cases / sizeof cases[0], argv[1]) == 1);
    printf("objects: ok\n");
    return 0;
}
