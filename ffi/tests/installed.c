/*
 * A program as a user writes it against an installed arenagc: built by ffi/tests/install.rs
 * with `pkg-config --cflags --libs arenagc` and with CMake's find_package(arenagc), and run
 * without LD_LIBRARY_PATH. Checks the header's version against the library's, allocates, and
 * has the collector free a cycle made with the header's helpers. Prints
 * "installed: ok <version>" on success.
 */
#include <arenagc.h>

#include <stdio.h>
#include <string.h>

#if !defined(AGC_VERSION_NUMBER) || AGC_VERSION_NUMBER < 1000
#error "arenagc 0.1.0 or later"
#endif

typedef struct pair {
    agc_object ob;
    agc_object *other;
} pair;

static int frees;

static int pair_traverse(agc_object *self, agc_visitproc visit, void *arg) {
    AGC_VISIT(((pair *)self)->other);
    return 0;
}

static int pair_clear(agc_object *self) {
    AGC_CLEAR(((pair *)self)->other);
    return 0;
}

static void pair_dealloc(agc_object *self) {
    agc_untrack(self);
    pair_clear(self);
    frees++;
    agc_object_del(self);
}

static const agc_type pair_type = {"pair", sizeof(pair), AGC_TPFLAGS_HAVE_GC, 0,
                                   pair_traverse, pair_clear, NULL, NULL, pair_dealloc, 0};

static int fail(const char *what) {
    const char *e = agc_last_error();
    printf("installed: FAILED: %s (%s)\n", what, e ? e : "no message");
    return 1;
}

int main(void) {
    char want[32];
    agc_object *a, *b;
    void *p;
    agc_stats_t st;

    snprintf(want, sizeof want, "%d.%d.%d", AGC_VERSION_MAJOR, AGC_VERSION_MINOR,
             AGC_VERSION_PATCH);
    if (strcmp(want, AGC_VERSION_STRING) != 0 || strcmp(agc_version(), AGC_VERSION_STRING) != 0)
        return fail("the version macros, the version string and agc_version() differ");

    p = agc_malloc(100);
    if (p == NULL || !agc_owns(p))
        return fail("agc_malloc");
    agc_free(p);

    a = agc_new(&pair_type);
    b = agc_new(&pair_type);
    if (a == NULL || b == NULL)
        return fail("agc_new");
    ((pair *)a)->other = agc_newref(b);
    ((pair *)b)->other = agc_newref(a);
    agc_track(a);
    agc_track(b);
    agc_decref(a);
    agc_decref(b);
    if (agc_gc_collect(2) != 2 || frees != 2)
        return fail("collecting a cycle of two");
    if (agc_stats(&st) != AGC_OK || st.arenas_current == 0)
        return fail("agc_stats");
    printf("installed: ok %s\n", agc_version());
    return 0;
}
