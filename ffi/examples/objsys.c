/*
 * objsys.c - a tiny object system in C on top of arenagc (include/arenagc.h).
 *
 * Four types, written the way CPython extension types are:
 *   int       a leaf: not GC-tracked (it holds no references)
 *   list      a growable array of references: GC type, traverse + clear, weak references
 *             through the runtime's side table
 *   pair      two references: GC type, traverse + clear, a weak-reference slot in the object
 *   resource  a "file" that must be closed: GC type with a PEP 442 finalizer (runs once, even
 *             when the resource is part of a cycle, and may resurrect it)
 *
 * main() builds cycles of them, lets the cycle collector find them, watches objects die
 * through weak-reference callbacks and gc callbacks, and prints the statistics.
 *
 * Build against an installed arenagc (`bash ffi/install.sh --prefix DIR`; ffi/README.md):
 *   cc -std=c99 ffi/examples/objsys.c $(pkg-config --cflags --libs arenagc) -o objsys && ./objsys
 * (with PKG_CONFIG_PATH=DIR/lib/pkgconfig for a prefix pkg-config does not search).
 * ffi/tests/examples.rs builds and runs it (shared and static) and checks its output.
 */
#include "arenagc.h"

/* The numeric version macros, for code that needs a feature of a given release: the helpers
   used below (agc_newref, agc_xnewref, AGC_VISIT, AGC_CLEAR) are in 0.1.0 and later. */
#if AGC_VERSION_NUMBER < 1000
#error "objsys needs arenagc 0.1.0 or later"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Stop with a message when the library reports an error (none is expected here). */
static void die(const char *what) {
    const char *e = agc_last_error();
    fprintf(stderr, "objsys: %s failed: %s\n", what, e ? e : "(no message)");
    exit(1);
}

#define TRY(call)                          \
    do {                                   \
        if ((call) < 0)                    \
            die(#call);                    \
    } while (0)

static int live_objects; /* objects of the four types not yet deallocated */

/* ---- int ----------------------------------------------------------------------------------- */

typedef struct int_obj {
    agc_object ob;
    long value;
} int_obj;

static void int_dealloc(agc_object *self) {
    live_objects--;
    TRY(agc_object_del(self));
}

static const agc_type int_type = {"int", sizeof(int_obj), 0, 0, NULL, NULL, NULL, NULL,
                                  int_dealloc, 0};

static agc_object *int_new(long v) {
    agc_object *o = agc_new(&int_type);
    if (o == NULL)
        die("agc_new(int)");
    ((int_obj *)o)->value = v;
    live_objects++;
    return o;
}

/* ---- list ---------------------------------------------------------------------------------- */

typedef struct list_obj {
    agc_object ob;
    size_t len, cap;
    agc_object **items; /* from agc_malloc */
} list_obj;

static int list_traverse(agc_object *self, agc_visitproc visit, void *arg) {
    list_obj *l = (list_obj *)self;
    size_t i;
    for (i = 0; i < l->len; i++)
        AGC_VISIT(l->items[i]); /* returns visit's result when it is nonzero */
    return 0;
}

/* Drop every item (the collector calls this to break cycles). */
static int list_clear(agc_object *self) {
    list_obj *l = (list_obj *)self;
    agc_object **items = l->items;
    size_t n = l->len, i;
    l->items = NULL; /* detach first: a decref below may reach this list again */
    l->len = l->cap = 0;
    for (i = 0; i < n; i++)
        agc_decref(items[i]);
    agc_free(items);
    return 0;
}

static void list_dealloc(agc_object *self) {
    TRY(agc_untrack(self));
    list_clear(self);
    live_objects--;
    TRY(agc_object_del(self));
}

static const agc_type list_type = {"list", sizeof(list_obj), AGC_TPFLAGS_HAVE_GC,
                                   AGC_WEAKLIST_SIDE_TABLE, list_traverse, list_clear,
                                   NULL, NULL, list_dealloc, 0};

static agc_object *list_new(void) {
    agc_object *o = agc_new(&list_type); /* payload zeroed: empty */
    if (o == NULL)
        die("agc_new(list)");
    live_objects++;
    TRY(agc_track(o));
    return o;
}

/* Append a new reference to item. */
static void list_append(agc_object *self, agc_object *item) {
    list_obj *l = (list_obj *)self;
    if (l->len == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 4;
        agc_object **p = (agc_object **)agc_realloc(l->items, cap * sizeof *p);
        if (p == NULL)
            die("agc_realloc");
        l->items = p;
        l->cap = cap;
    }
    l->items[l->len++] = agc_newref(item);
}

/* ---- pair ---------------------------------------------------------------------------------- */

typedef struct pair_obj {
    agc_object ob;
    agc_object *weaklist; /* owned by the library */
    agc_object *first, *second;
    long id;
} pair_obj;

static int pair_traverse(agc_object *self, agc_visitproc visit, void *arg) {
    pair_obj *p = (pair_obj *)self;
    AGC_VISIT(p->first); /* NULL fields are skipped */
    AGC_VISIT(p->second);
    return 0;
}

static int pair_clear(agc_object *self) {
    pair_obj *p = (pair_obj *)self;
    AGC_CLEAR(p->first); /* the field is NULL before the reference is dropped */
    AGC_CLEAR(p->second);
    return 0;
}

static void pair_dealloc(agc_object *self) {
    TRY(agc_untrack(self));
    TRY(agc_clear_weakrefs(self)); /* callbacks run while the pair is still whole */
    pair_clear(self);
    live_objects--;
    TRY(agc_object_del(self));
}

static const agc_type pair_type = {"pair", sizeof(pair_obj), AGC_TPFLAGS_HAVE_GC,
                                   offsetof(pair_obj, weaklist), pair_traverse, pair_clear,
                                   NULL, NULL, pair_dealloc, 0};

/* A new pair holding new references to first and second (either may be NULL). */
static agc_object *pair_new(long id, agc_object *first, agc_object *second) {
    agc_object *o = agc_new(&pair_type);
    pair_obj *p = (pair_obj *)o;
    if (o == NULL)
        die("agc_new(pair)");
    live_objects++;
    p->id = id;
    p->first = agc_xnewref(first);
    p->second = agc_xnewref(second);
    TRY(agc_track(o));
    return o;
}

static void pair_set_second(agc_object *self, agc_object *v) {
    pair_obj *p = (pair_obj *)self;
    agc_object *old = p->second;
    p->second = agc_newref(v);
    agc_xdecref(old);
}

/* ---- resource: a finalizer ----------------------------------------------------------------- */

typedef struct resource_obj {
    agc_object ob;
    const char *name;
    int open;
    agc_object *owner; /* a reference to anything (may make a cycle) */
} resource_obj;

static agc_object *graveyard; /* a list the finalizer may put resources into */
static int keep_in_graveyard;

static void resource_finalize(agc_object *self) {
    resource_obj *r = (resource_obj *)self;
    printf("  finalizer: closing resource '%s'\n", r->name);
    r->open = 0;
    if (keep_in_graveyard && graveyard != NULL) {
        printf("  finalizer: resource '%s' resurrected into the graveyard\n", r->name);
        list_append(graveyard, self);
    }
}

static int resource_traverse(agc_object *self, agc_visitproc visit, void *arg) {
    AGC_VISIT(((resource_obj *)self)->owner);
    return 0;
}

static int resource_clear(agc_object *self) {
    AGC_CLEAR(((resource_obj *)self)->owner);
    return 0;
}

static void resource_dealloc(agc_object *self) {
    if (agc_finalize_from_dealloc(self) == 1)
        return; /* the finalizer resurrected it */
    TRY(agc_untrack(self));
    resource_clear(self);
    live_objects--;
    TRY(agc_object_del(self));
}

static const agc_type resource_type = {"resource", sizeof(resource_obj), AGC_TPFLAGS_HAVE_GC,
                                       AGC_WEAKLIST_SIDE_TABLE, resource_traverse,
                                       resource_clear, resource_finalize, NULL,
                                       resource_dealloc, 0};

static agc_object *resource_new(const char *name, agc_object *owner) {
    agc_object *o = agc_new(&resource_type);
    resource_obj *r = (resource_obj *)o;
    if (o == NULL)
        die("agc_new(resource)");
    live_objects++;
    r->name = name;
    r->open = 1;
    r->owner = agc_xnewref(owner);
    TRY(agc_track(o));
    return o;
}

/* ---- watching the collector ---------------------------------------------------------------- */

static int report_collections; /* print each explicit collection from the gc callback */

static void on_gc(int phase, int generation, size_t collected, size_t uncollectable,
                  void *data) {
    long *collections = (long *)data;
    if (phase == AGC_GC_STOP) {
        ++*collections;
        if (report_collections)
            printf("  gc callback: generation %d done, %zu collected, %zu uncollectable\n",
                   generation, collected, uncollectable);
    }
}

static void on_weak_death(agc_object *wr, void *data) {
    printf("  weakref callback: %s is gone (referent now %s)\n", (const char *)data,
           agc_weakref_get(wr) == NULL ? "NULL" : "alive?!");
}

struct type_count {
    const agc_type *type;
    long n;
};

static int count_type(agc_object *o, void *arg) {
    struct type_count *c = (struct type_count *)arg;
    if (o->type == c->type)
        c->n++;
    return 0;
}

/* Objects of type t the collector tracks now. */
static long tracked_of(const agc_type *t) {
    struct type_count c;
    c.type = t;
    c.n = 0;
    TRY(agc_gc_get_objects(-1, count_type, &c));
    return c.n;
}

/* An explicit collection, reported by the gc callback. */
static long collect(int generation) {
    intptr_t n;
    report_collections = 1;
    n = agc_gc_collect(generation);
    report_collections = 0;
    if (n < 0)
        die("agc_gc_collect");
    return (long)n;
}

int main(void) {
    long collections = 0;
    agc_gc_stats_t st;
    agc_stats_t mem;
    uint64_t cb;
    int g;

    printf("objsys on arenagc %s\n", agc_version());
    cb = agc_gc_callback_add(on_gc, &collections);
    if (cb == 0)
        die("agc_gc_callback_add");

    /* 1. A list that contains itself, and a pair pointing at it and at itself. */
    printf("[1] self-referencing list and pair\n");
    {
        agc_object *l = list_new(), *p, *n = int_new(42);
        list_append(l, n);
        list_append(l, l);
        p = pair_new(1, l, NULL);
        pair_set_second(p, p);
        agc_decref(n);
        printf("  list: %zu items, refcount %ld, tracked %d; int tracked %d\n",
               ((list_obj *)l)->len, (long)l->refcnt, agc_is_tracked(l), agc_is_tracked(n));
        agc_decref(l);
        agc_decref(p);
        printf("  after dropping our references: %d objects alive (unreachable cycles)\n",
               live_objects);
        printf("  collect(0) found %ld unreachable\n", collect(0));
        printf("  after collect: %d objects alive\n", live_objects);
    }

    /* 2. A ring of 1000 pairs, each holding an int: one big cycle. */
    printf("[2] a ring of 1000 pairs\n");
    {
        agc_object *first = NULL, *prev = NULL, *w7 = NULL, *w500 = NULL;
        long i;
        for (i = 0; i < 1000; i++) {
            agc_object *v = int_new(i * i);
            agc_object *p = pair_new(i, v, NULL);
            agc_decref(v);
            if (i == 7)
                w7 = agc_weakref_new(p, on_weak_death, (void *)"pair #7");
            if (i == 500)
                w500 = agc_weakref_new(p, NULL, NULL);
            if (prev != NULL) {
                pair_set_second(prev, p);
                agc_decref(prev);
            } else {
                first = p;
                agc_incref(first);
            }
            prev = p;
        }
        pair_set_second(prev, first); /* close the ring */
        agc_decref(prev);
        agc_decref(first);
        if (w7 == NULL || w500 == NULL)
            die("agc_weakref_new");
        {
            agc_object *p500 = agc_weakref_get(w500);
            if (p500 == NULL)
                die("agc_weakref_get");
            printf("  pairs tracked: %ld; pair #%ld reached through a weak reference (it has %ld)\n",
                   tracked_of(&pair_type), ((pair_obj *)p500)->id, (long)agc_weakref_count(p500));
            agc_decref(p500);
        }
        printf("  objects alive before collect: %d\n", live_objects);
        printf("  collect(2) found %ld unreachable\n", collect(2));
        printf("  objects alive after collect: %d; weak reference to pair #500: %s\n",
               live_objects, agc_weakref_get(w500) == NULL ? "dead" : "alive");
        agc_decref(w7);
        agc_decref(w500);
    }

    /* 3. Finalizers: a resource in a cycle is closed once; one resurrects itself. */
    printf("[3] finalizers\n");
    {
        agc_object *l = list_new();
        agc_object *r = resource_new("db", l);
        agc_object *r2;
        list_append(l, r); /* cycle: list -> resource -> list */
        agc_decref(r);
        agc_decref(l);
        printf("  collect(2) found %ld unreachable\n", collect(2));
        printf("  objects alive: %d\n", live_objects);

        graveyard = list_new();
        keep_in_graveyard = 1;
        r2 = resource_new("log", NULL);
        agc_decref(r2); /* refcount reaches 0: the finalizer runs from dealloc */
        keep_in_graveyard = 0;
        r2 = ((list_obj *)graveyard)->items[0];
        printf("  resource '%s' alive in the graveyard: open %d, finalized %d\n",
               ((resource_obj *)r2)->name, ((resource_obj *)r2)->open, agc_is_finalized(r2));
        agc_decref(graveyard); /* the last reference: freed, the finalizer does not run again */
        graveyard = NULL;
        printf("  objects alive: %d\n", live_objects);
    }

    /* 4. garbage: with AGC_DEBUG_SAVEALL the collector keeps what it finds. */
    printf("[4] garbage\n");
    {
        agc_object *a = list_new(), *b = list_new(), *g0;
        list_append(a, b);
        list_append(b, a);
        agc_decref(a);
        agc_decref(b);
        TRY(agc_gc_set_debug(AGC_DEBUG_SAVEALL));
        printf("  collect(2) found %ld unreachable\n", collect(2));
        printf("  garbage holds %zu objects\n", agc_gc_garbage_len());
        g0 = agc_gc_garbage_get(0);
        printf("  garbage[0] is a %s of %zu items\n", g0->type->name, ((list_obj *)g0)->len);
        agc_decref(g0);
        TRY(agc_gc_set_debug(0));
        agc_gc_garbage_clear();
        printf("  collect(2) after clearing garbage found %ld unreachable\n", collect(2));
    }

    /* 5. Automatic collection: lots of small cycles, no explicit collect. */
    printf("[5] automatic collection\n");
    {
        long i;
        for (i = 0; i < 10000; i++) {
            agc_object *p = pair_new(i, NULL, NULL);
            pair_set_second(p, p);
            agc_decref(p);
        }
        printf("  10000 self-cycles made; objects alive: %s; collections so far: %s\n",
               live_objects < 10000 ? "fewer than 10000" : "all",
               collections > 5 ? "many" : "few");
        printf("  collect(2) found %s\n", collect(2) < 10000 ? "the rest" : "everything");
        printf("  after collect(2): %d objects alive\n", live_objects);
    }

    TRY(agc_gc_callback_remove(cb));

    printf("[6] statistics\n");
    TRY(agc_gc_get_stats(&st));
    for (g = 0; g < AGC_GC_GENERATIONS; g++)
        printf("  generation %d: %s collections, %s collected, %zu uncollectable\n", g,
               st.generations[g].collections > 0 ? "some" : "no",
               st.generations[g].collected > 0 ? "some" : "none",
               st.generations[g].uncollectable);
    printf("  gc callback saw %s collections\n", collections == (long)(st.generations[0].collections +
                                                                   st.generations[1].collections +
                                                                   st.generations[2].collections)
                                                       ? "all"
                                                       : "not all");
    TRY(agc_stats(&mem));
    printf("  allocator: %s arenas mapped, %s\n", mem.arenas_current > 0 ? "some" : "no",
           mem.arenas_allocated_total >= mem.arenas_current ? "consistent" : "inconsistent");
    printf("objsys: done, %d objects alive\n", live_objects);
    return live_objects == 0 ? 0 : 1;
}
