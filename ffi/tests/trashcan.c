/*
 * The trashcan for C objects: a chain of 1,000,000 objects, each holding the only reference
 * to the next, freed by one agc_decref. Each dealloc drops its reference to the next object
 * (agc_xdecref -> agc_object_decref -> the next dealloc ...), so without the trashcan the
 * stack grows by one library round trip per object and overflows; with it deallocations nest
 * at most TRASH_LIMIT (50) deep and the rest are put off to the outermost one.
 *
 * Three kinds of chain: a GC type (tracked: the trashcan untracks what it puts off), a GC type
 * with a finalizer (it runs once per object, tracked again while it runs), and a plain type
 * (no GC head: linked through its refcount word). Each case builds and frees all three on one
 * stack: the main thread's, or a thread's of 8 MiB or 256 KiB. Every object must be
 * deallocated once, finalizers must run once each, generation 0 must be uncounted exactly,
 * nothing may stay tracked. Prints the deepest stack a case used (stderr) and "trashcan: ok".
 * Run by ffi/tests/trashcan.rs.
 */
#define _GNU_SOURCE
#include "arenagc.h"
#include "check.h"

#include <pthread.h>
#include <stdint.h>

#define N 1000000L

typedef struct link {
    agc_object ob;
    agc_object *next;
} link;

static long deallocs;    /* links deallocated */
static long finalized;   /* finalizer calls */
static uintptr_t lowest; /* the lowest stack address a dealloc ran at */

static void note_stack(void) {
    char here;
    if ((uintptr_t)&here < lowest)
        lowest = (uintptr_t)&here;
}

static int link_traverse(agc_object *self, agc_visitproc visit, void *arg) {
    link *l = (link *)self;
    return l->next != NULL ? visit(l->next, arg) : 0;
}

static int link_clear(agc_object *self) {
    link *l = (link *)self;
    agc_object *n = l->next;
    l->next = NULL;
    agc_xdecref(n);
    return 0;
}

/* CPython's dealloc pattern: finalizer (if any), untrack, drop the references held (here the
   recursion: the last reference to the next link), free. */
static void link_dealloc(agc_object *self) {
    int r = agc_finalize_from_dealloc(self);
    CHECK(r == 0);
    note_stack();
    CHECK(agc_untrack(self) == AGC_OK);
    deallocs++;
    link_clear(self);
    CHECK(agc_object_del(self) == AGC_OK);
}

static void link_finalize(agc_object *self) {
    CHECK(self->refcnt == 1);
    CHECK(agc_is_tracked(self) == 1); /* tracked while user code can see it */
    finalized++;
}

static const agc_type gc_link = {"gc_link", sizeof(link), AGC_TPFLAGS_HAVE_GC, 0,
                                 link_traverse, link_clear, NULL, NULL, link_dealloc, 0};
static const agc_type fin_link = {"fin_link", sizeof(link), AGC_TPFLAGS_HAVE_GC, 0,
                                  link_traverse, link_clear, link_finalize, NULL,
                                  link_dealloc, 0};
static const agc_type plain_link = {"plain_link", sizeof(link), 0, 0, NULL, NULL, NULL, NULL,
                                    link_dealloc, 0};

static size_t count0(void) {
    size_t c0, c1, c2;
    CHECK(agc_gc_get_count(&c0, &c1, &c2) == AGC_OK);
    return c0;
}

static int count_visit(agc_object *o, void *arg) {
    (void)o;
    ++*(long *)arg;
    return 0;
}

static long tracked(void) {
    long n = 0;
    CHECK(agc_gc_get_objects(-1, count_visit, &n) >= 0);
    return n;
}

/* Build a chain of N links of type t (the head holds the first reference), free it with one
   agc_decref, and check that everything went. */
static void chain(const agc_type *t) {
    agc_object *head = NULL;
    int gc = (t->flags & AGC_TPFLAGS_HAVE_GC) != 0;
    size_t before;
    long i;
    agc_gc_disable(); /* counts must move by exactly N */
    CHECK(agc_gc_collect(2) == 0);
    before = count0();
    deallocs = finalized = 0;
    for (i = 0; i < N; i++) {
        agc_object *o = agc_new(t);
        CHECK(o != NULL);
        ((link *)o)->next = head; /* takes over our reference to the previous head */
        if (gc)
            CHECK(agc_track(o) == AGC_OK);
        head = o;
    }
    CHECK(count0() == before + (gc ? (size_t)N : 0));
    CHECK(tracked() == (gc ? N : 0));
    agc_decref(head);
    CHECK(deallocs == N);
    CHECK(finalized == (t->finalize != NULL ? N : 0));
    CHECK(count0() == before);
    CHECK(tracked() == 0);
    agc_gc_enable();
}

static void all_chains(void) {
    char top;
    lowest = (uintptr_t)&top;
    chain(&gc_link);
    chain(&fin_link);
    chain(&plain_link);
    fprintf(stderr, "trashcan: deepest stack used by a dealloc: %lu bytes\n",
            (unsigned long)((uintptr_t)&top - lowest));
}

static void *thread_body(void *arg) {
    (void)arg;
    all_chains();
    return NULL;
}

static void on_thread(size_t stack) {
    pthread_attr_t attr;
    pthread_t t;
    CHECK(pthread_attr_init(&attr) == 0);
    CHECK(pthread_attr_setstacksize(&attr, stack) == 0);
    CHECK(pthread_create(&t, &attr, thread_body, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(pthread_attr_destroy(&attr) == 0);
}

static void test_main_thread(void) { all_chains(); }
static void test_thread_8m(void) { on_thread((size_t)8 << 20); }
static void test_thread_256k(void) { on_thread((size_t)256 << 10); }

static const struct test_case cases[] = {
    {"main_thread", test_main_thread},
    {"thread_8m", test_thread_8m},
    {"thread_256k", test_thread_256k},
};

int main(int argc, char **argv) {
    CHECK(argc == 2);
    CHECK(run_cases(cases, sizeof cases / sizeof cases[0], argv[1]) == 1);
    printf("trashcan: ok\n");
    return 0;
}
