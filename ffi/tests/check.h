/* Tiny assertion helpers shared by the C tests in ffi/tests (driven by ffi/tests/c_abi.rs). */
#ifndef AGC_TEST_CHECK_H
#define AGC_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

#define CHECK_ALIGNED(p, a) CHECK(((size_t)(p) & ((size_t)(a) - 1)) == 0)

/* The calling thread's last error (agc_last_error, from arenagc.h) contains `what`. */
#define CHECK_ERR(what)                                                         \
    do {                                                                        \
        const char *e_ = agc_last_error();                                      \
        if (e_ == NULL || strstr(e_, (what)) == NULL) {                         \
            fprintf(stderr, "%s:%d: last error \"%s\" lacks \"%s\"\n", __FILE__, \
                    __LINE__, e_ ? e_ : "(null)", (what));                      \
            exit(1);                                                            \
        }                                                                       \
    } while (0)

/* One named case of a test program; main runs the one named on the command line. */
struct test_case {
    const char *name;
    void (*run)(void);
};

/* Run the case of `cases` named `only`, or every case when `only` is NULL; how many ran. */
static inline int run_cases(const struct test_case *cases, size_t n, const char *only) {
    size_t i;
    int ran = 0;
    for (i = 0; i < n; i++) {
        if (only != NULL && strcmp(only, cases[i].name) != 0)
            continue;
        cases[i].run();
        ran++;
    }
    return ran;
}

/* ARENAGC_DEBUG is set to something other than "0": the allocator runs in debug mode. */
static inline int debug_mode_from_env(void) {
    const char *d = getenv("ARENAGC_DEBUG");
    return d != NULL && d[0] != 0 && d[0] != '0';
}

#endif
