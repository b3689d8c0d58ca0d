/*
 * Leak hunting from C (issue 12): agc_gc_type_counts, agc_gc_type_growth, agc_gc_path_to,
 * agc_gc_dot_backrefs / agc_gc_dot_refs, agc_gc_set_repr and agc_gc_leak_report, with their
 * bad inputs. Built against libarenagc.so and libarenagc.a and run one case per process by
 * ffi/tests/leaks.rs. Prints "leaks: ok" on success; any failed CHECK exits 1.
 */
#include "arenagc.h"
#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- test types ---------------------------------------------------------------------------- */

/* A GC object holding up to two references. */
typedef struct node {
    agc_object ob;
    agc_object *ref[2];
    long value;
} node;

static int node_traverse(agc_object *self, agc_visitproc visit, void *arg) {
    node *n = (node *)self;
    int i, r;
    for (i = 0; i < 2; i++)
        if (n->ref[i] != NULL && (r = visit(n->ref[i], arg)) != 0)
            return r;
    return 0;
}

static int node_clear(agc_object *self) {
    node *n = (node *)self;
    int i;
    for (i = 0; i < 2; i++) {
        agc_object *o = n->ref[i];
        n->ref[i] = NULL;
        agc_xdecref(o);
    }
    return 0;
}

static void node_dealloc(agc_object *self) {
    if (agc_finalize_from_dealloc(self) == 1)
        return;
    CHECK(agc_untrack(self) == AGC_OK);
    node_clear(self);
    CHECK(agc_object_del(self) == AGC_OK);
}

static void legacy_del(agc_object *self) { (void)self; }

static intptr_t asked;
static void asking_finalize(agc_object *self) {
    size_t ext = 99;
    /* questions about the graph are refused during a collection */
    asked = agc_gc_path_to(self, &ext, NULL, NULL);
    CHECK(agc_gc_dot_refs(self, 1, 10) == NULL);
    CHECK_ERR("agc_gc_dot_refs: a collection is running");
}

static const agc_type node_type = {
    "node", sizeof(node), AGC_TPFLAGS_HAVE_GC, 0,
    node_traverse, node_clear, NULL, NULL, node_dealloc, 0};
static const agc_type box_type = {
    "box", sizeof(node), AGC_TPFLAGS_HAVE_GC, 0,
    node_traverse, node_clear, NULL, NULL, node_dealloc, 0};
static const agc_type legacy_type = {
    "legacy", sizeof(node), AGC_TPFLAGS_HAVE_GC, 0,
    node_traverse, node_clear, NULL, legacy_del, node_dealloc, 0};
static const agc_type asking_type = {
    "asking", sizeof(node), AGC_TPFLAGS_HAVE_GC, 0,
    node_traverse, node_clear, asking_finalize, NULL, node_dealloc, 0};

/* A plain (non-GC) leaf. */
typedef struct leaf {
    agc_object ob;
    double x;
} leaf;

static void leaf_dealloc(agc_object *self) { CHECK(agc_object_del(self) == AGC_OK); }

static const agc_type leaf_type = {
    "leaf", sizeof(leaf), 0, 0, NULL, NULL, NULL, NULL, leaf_dealloc, 0};

static agc_object *new_node(const agc_type *t, long value) {
    agc_object *o = agc_new(t);
    CHECK(o != NULL);
    ((node *)o)->value = value;
    CHECK(agc_track(o) == AGC_OK);
    return o;
}

/* a->ref[slot] = b (a new reference). */
static void link_to(agc_object *a, int slot, agc_object *b) {
    agc_incref(b);
    agc_xdecref(((node *)a)->ref[slot]);
    ((node *)a)->ref[slot] = b;
}

static size_t node_repr(agc_object *obj, char *buf, size_t cap) {
    char tmp[64];
    int n = snprintf(tmp, sizeof tmp, "value=%ld", ((node *)obj)->value);
    size_t len = n < 0 ? 0 : (size_t)n;
    if (len > cap)
        len = cap;
    memcpy(buf, tmp, len);
    return len;
}

/* ---- counts by type ------------------------------------------------------------------------ */

struct seen {
    size_t node, box, leaf, leaf_untracked, node_bytes, calls, stop_after;
};

static int count_visitor(const char *name, size_t count, size_t untracked, size_t bytes,
                         void *data) {
    struct seen *s = data;
    s->calls++;
    if (strcmp(name, "node") == 0) {
        s->node = count;
        s->node_bytes = bytes;
        CHECK(untracked == 0);
    } else if (strcmp(name, "box") == 0) {
        s->box = count;
    } else if (strcmp(name, "leaf") == 0) {
        s->leaf = count;
        s->leaf_untracked = untracked;
    }
    return s->stop_after != 0 && s->calls == s->stop_after;
}

static void test_type_counts(void) {
    struct seen s;
    agc_object *nodes[7], *boxes[2], *hidden;
    int i;
    for (i = 0; i < 7; i++)
        nodes[i] = new_node(&node_type, i);
    for (i = 0; i < 2; i++) {
        agc_object *l = agc_new(&leaf_type);
        CHECK(l != NULL);
        boxes[i] = new_node(&box_type, i);
        link_to(boxes[i], 0, l); /* the untracked leaf is found through its box */
        agc_decref(l);
    }
    hidden = agc_new(&leaf_type); /* held by this C variable only: not seen */
    memset(&s, 0, sizeof s);
    CHECK(agc_gc_type_counts(count_visitor, &s) == 3);
    CHECK(s.node == 7 && s.box == 2 && s.leaf == 2 && s.leaf_untracked == 2);
    CHECK(s.node_bytes == 7 * (16 + sizeof(node))); /* GC head + the object */
    memset(&s, 0, sizeof s);
    s.stop_after = 1;
    CHECK(agc_gc_type_counts(count_visitor, &s) == 1);
    CHECK(s.node == 7); /* most numerous first */
    CHECK(agc_gc_type_counts(NULL, NULL) == AGC_ERR_NULL);
    CHECK_ERR("agc_gc_type_counts: visit is NULL");
    for (i = 0; i < 7; i++)
        agc_decref(nodes[i]);
    for (i = 0; i < 2; i++)
        agc_decref(boxes[i]);
    agc_decref(hidden);
    memset(&s, 0, sizeof s);
    CHECK(agc_gc_type_counts(count_visitor, &s) == 0);
}

struct growth {
    char name[16];
    size_t count, delta, calls;
};

static int growth_visitor(const char *name, size_t count, size_t delta, void *data) {
    struct growth *g = data;
    if (g->calls++ == 0) {
        strncpy(g->name, name, sizeof g->name - 1);
        g->count = count;
        g->delta = delta;
    }
    return 0;
}

static void test_type_growth(void) {
    struct growth g;
    agc_object *a[10];
    int i;
    for (i = 0; i < 4; i++)
        a[i] = new_node(&node_type, i);
    memset(&g, 0, sizeof g);
    CHECK(agc_gc_type_growth(growth_visitor, &g) == 1);
    CHECK(strcmp(g.name, "node") == 0 && g.count == 4 && g.delta == 4);
    memset(&g, 0, sizeof g);
    CHECK(agc_gc_type_growth(growth_visitor, &g) == 0); /* nothing new */
    agc_decref(a[3]);
    a[3] = new_node(&node_type, 3); /* back to the peak: not growth */
    CHECK(agc_gc_type_growth(growth_visitor, &g) == 0);
    for (i = 4; i < 10; i++)
        a[i] = new_node(&node_type, i);
    CHECK(agc_gc_type_growth(growth_visitor, &g) == 1);
    CHECK(g.count == 10 && g.delta == 6);
    CHECK(agc_gc_type_growth(NULL, NULL) == AGC_ERR_NULL);
    for (i = 0; i < 10; i++)
        agc_decref(a[i]);
}

/* ---- why is this alive ----------------------------------------------------------------------- */

struct chain {
    agc_object *objs[64];
    size_t n;
};

static int chain_visit(agc_object *o, void *data) {
    struct chain *c = data;
    CHECK(o != NULL && o->refcnt >= 1);
    if (c->n < 64)
        c->objs[c->n] = o;
    c->n++;
    return 0;
}

static void test_path_to(void) {
    agc_object *root = new_node(&node_type, 0), *prev = root, *target = NULL, *a, *b;
    struct chain c;
    size_t ext = 99;
    int i;
    for (i = 1; i <= 20; i++) {
        agc_object *n = new_node(&node_type, i);
        link_to(prev, 0, n);
        if (i < 20)
            agc_decref(n);
        prev = n;
    }
    target = prev; /* this test holds root and target */
    memset(&c, 0, sizeof c);
    CHECK(agc_gc_path_to(target, &ext, chain_visit, &c) == 21);
    CHECK(c.n == 21 && c.objs[0] == root && c.objs[20] == target && ext == 1);
    for (i = 0; i < 20; i++)
        CHECK(((node *)c.objs[i])->ref[0] == c.objs[i + 1]);
    /* a shortcut from root to node 15: 1 + 6 objects */
    link_to(root, 1, c.objs[15]);
    CHECK(agc_gc_path_to(target, NULL, NULL, NULL) == 7);
    /* a second reference makes the target a root of its own */
    agc_incref(target);
    CHECK(agc_gc_path_to(target, &ext, NULL, NULL) == 1 && ext == 1);
    agc_decref(target);
    agc_decref(target);
    agc_decref(root);

    /* held only by a cycle (and the asking reference): cyclic garbage */
    a = new_node(&node_type, 1);
    b = new_node(&node_type, 2);
    link_to(a, 0, b);
    link_to(b, 0, a);
    agc_decref(b);
    ext = 99;
    CHECK(agc_gc_path_to(a, &ext, chain_visit, &c) == 0 && ext == 0);
    agc_decref(a);
    CHECK(agc_gc_collect(2) == 2);

    /* frozen: a root held by nothing but the permanent generation */
    a = new_node(&node_type, 1);
    b = new_node(&node_type, 2);
    link_to(a, 0, b);
    link_to(b, 0, a);
    agc_decref(b);
    agc_gc_freeze();
    b = new_node(&node_type, 3);
    link_to(a, 1, b);
    agc_decref(a);
    memset(&c, 0, sizeof c);
    CHECK(agc_gc_path_to(b, &ext, chain_visit, &c) == 2 && ext == 0);
    CHECK(((node *)c.objs[0])->value == 1 && c.objs[1] == b);
    agc_gc_unfreeze();
    agc_decref(b);
    CHECK(agc_gc_collect(2) == 3);

    CHECK(agc_gc_path_to(NULL, &ext, NULL, NULL) == AGC_ERR_NULL);
    CHECK_ERR("agc_gc_path_to: object is NULL");
}

static void test_path_to_during_a_collection(void) {
    agc_object *a = new_node(&asking_type, 1);
    link_to(a, 0, a);
    agc_decref(a);
    asked = 0;
    CHECK(agc_gc_collect(2) == 1);
    CHECK(asked == AGC_ERR_STATE);
}

/* ---- pictures -------------------------------------------------------------------------------- */

static void test_dot(void) {
    agc_object *root = new_node(&node_type, 100), *mid = new_node(&node_type, 200);
    agc_object *t = new_node(&box_type, 300);
    char *d;
    CHECK(agc_gc_set_repr(&node_type, node_repr) == AGC_OK);
    link_to(root, 0, mid);
    link_to(mid, 0, t);
    agc_decref(mid);
    d = agc_gc_dot_backrefs(t, 5, 50);
    CHECK(d != NULL);
    CHECK(strncmp(d, "digraph backrefs {\n", 19) == 0);
    CHECK(strstr(d, "o0 [label=\"box\", fillcolor=\"#ff9f9f\"") != NULL);
    CHECK(strstr(d, "[label=\"node\\nvalue=200\", fillcolor=\"white\"") != NULL);
    CHECK(strstr(d, "[label=\"node\\nvalue=100\\nroot: 1 reference from outside\", "
                    "fillcolor=\"#9fdf9f\"") != NULL);
    CHECK(strstr(d, "o1 -> o0;") != NULL && strstr(d, "o2 -> o1;") != NULL);
    agc_free(d);
    d = agc_gc_dot_refs(root, 1, 50);
    CHECK(d != NULL && strstr(d, "digraph refs {") != NULL && strstr(d, "o0 -> o1;") != NULL);
    CHECK(strstr(d, "style=\"filled,dashed\"") != NULL); /* mid's referent not drawn */
    agc_free(d);
    CHECK(agc_gc_set_repr(&node_type, NULL) == AGC_OK);
    d = agc_gc_dot_refs(root, 0, 50);
    CHECK(d != NULL && strstr(d, "[label=\"node\", fillcolor=\"#ff9f9f\", style") != NULL);
    agc_free(d);
    CHECK(agc_gc_dot_backrefs(NULL, 1, 1) == NULL);
    CHECK_ERR("agc_gc_dot_backrefs: object is NULL");
    CHECK(agc_gc_dot_refs(NULL, 1, 1) == NULL);
    CHECK(agc_gc_set_repr(NULL, node_repr) == AGC_ERR_NULL);
    CHECK_ERR("agc_gc_set_repr: type is NULL");
    agc_decref(root);
    agc_decref(t);
}

/* ---- the leak report ------------------------------------------------------------------------- */

static void test_leak_report(void) {
    agc_object *l = new_node(&legacy_type, 1), *n = new_node(&node_type, 2);
    agc_object *x = new_node(&box_type, 3), *y = new_node(&box_type, 4);
    char *r;
    link_to(l, 0, n);
    link_to(n, 0, l);
    link_to(x, 0, y);
    link_to(y, 0, x);
    agc_decref(l);
    agc_decref(n);
    agc_decref(x);
    agc_decref(y);
    CHECK(agc_gc_set_debug(AGC_DEBUG_SAVEALL) == AGC_OK);
    CHECK(agc_gc_collect(2) == 4);
    CHECK(agc_gc_set_debug(0) == AGC_OK);
    r = agc_gc_leak_report();
    CHECK(r != NULL);
    CHECK(strstr(r, "garbage: 4 objects\n  2 box\n  1 legacy\n  1 node\n") == r);
    CHECK(strstr(r, "uncollectable group 1: 2 objects (1 legacy, 1 node), pinned by the legacy "
                    "finalizer of <legacy at 0x") != NULL);
    CHECK(strstr(r, "collectable, kept by DEBUG_SAVEALL: 2 objects") != NULL);
    agc_free(r);
    /* untangle: clear every garbage object, then let them go */
    {
        size_t i;
        for (i = 0; i < agc_gc_garbage_len(); i++) {
            agc_object *o = agc_gc_garbage_get(i);
            node_clear(o);
            agc_decref(o);
        }
    }
    agc_gc_garbage_clear();
    CHECK(agc_gc_collect(2) == 0);
    r = agc_gc_leak_report();
    CHECK(r != NULL && strcmp(r, "garbage: 0 objects\n") == 0);
    agc_free(r);
}

/* The report printed at collection time under AGC_DEBUG_LEAK (the Rust side reads stderr). */
static void test_leak_report_printed(void) {
    agc_object *l = new_node(&legacy_type, 1), *n = new_node(&node_type, 2);
    link_to(l, 0, n);
    link_to(n, 0, l);
    agc_decref(l);
    agc_decref(n);
    CHECK(agc_gc_set_debug(AGC_DEBUG_LEAK) == AGC_OK);
    CHECK(agc_gc_collect(2) == 2);
}

static const struct test_case cases[] = {
    {"type_counts", test_type_counts},
    {"type_growth", test_type_growth},
    {"path_to", test_path_to},
    {"path_to_during_a_collection", test_path_to_during_a_collection},
    {"dot", test_dot},
    {"leak_report", test_leak_report},
    {"leak_report_printed", test_leak_report_printed},
};

int main(int argc, char **argv) {
    CHECK(argc == 2);
    CHECK(run_cases(cases, sizeof cases / sizeof cases[0], argv[1]) == 1);
    printf("leaks: ok\n");
    return 0;
}
