/* Misuse of the C ABI that must abort with a message naming it, in the default build and in
   debug mode (misuse.rs runs each case in its own process and checks the signal and the
   message). argv[1] names the case; reaching the end of a case means it was not caught. */
#include <stdio.h>
#include <string.h>

#include "arenagc.h"

typedef struct node {
    agc_object ob;
    agc_object *other;
    long value;
} node;

static int node_traverse(agc_object *self, agc_visitproc visit, void *arg) {
    AGC_VISIT(((node *)self)->other);
    return 0;
}

static int node_clear(agc_object *self) {
    AGC_CLEAR(((node *)self)->other);
    return 0;
}

static void node_dealloc(agc_object *self) {
    if (agc_finalize_from_dealloc(self) == 1)
        return;
    agc_untrack(self);
    node_clear(self);
    agc_object_del(self);
}

static void plain_dealloc(agc_object *self) { agc_object_del(self); }

static const agc_type node_type = {
    "misuse_node", sizeof(node), AGC_TPFLAGS_HAVE_GC, 0,
    node_traverse, node_clear, NULL, NULL, node_dealloc, 0};
static const agc_type plain_type = {
    "misuse_plain", sizeof(node), 0, 0, NULL, NULL, NULL, NULL, plain_dealloc, 0};

int main(int argc, char **argv) {
    const char *c = argc > 1 ? argv[1] : "";
    if (strcmp(c, "decref_freed_plain") == 0) {
        agc_object *o = agc_new(&plain_type);
        agc_decref(o); /* freed */
        agc_decref(o); /* a use after free */
    } else if (strcmp(c, "decref_freed_gc") == 0) {
        agc_object *o = agc_new(&node_type);
        agc_track(o);
        agc_decref(o);
        agc_decref(o);
    } else if (strcmp(c, "decref_below_zero") == 0) {
        agc_object *o = agc_new(&plain_type);
        o->refcnt = -1; /* a count gone wrong on a live object */
        agc_decref(o);
    } else if (strcmp(c, "agc_double_free") == 0) {
        void *p = agc_malloc(64), *q = agc_malloc(64);
        agc_free(p);
        agc_free(q);
        agc_free(p);
    } else if (strcmp(c, "decref_freed_then_new") == 0) {
        /* The reproduction: before the checks, the decref of a freed object moved the
           free-list link and a later agc_new returned a misaligned pointer. */
        agc_object *o = agc_new(&plain_type);
        agc_decref(o);
        o->refcnt--; /* what an inline decref of a freed object with count > 1 did */
        /* Default build: caught at the next agc_new of the size. Debug mode: caught when the
           block leaves the quarantine (512 frees later). */
        for (int i = 0; i < 600; i++) {
            agc_object *n = agc_new(&plain_type);
            if (((size_t)n & 15) != 0)
                fprintf(stderr, "misaligned object %p\n", (void *)n);
            agc_decref(n);
        }
    } else {
        fprintf(stderr, "unknown case %s\n", c);
        return 2;
    }
    fprintf(stderr, "misuse %s was not caught\n", c);
    return 3;
}
