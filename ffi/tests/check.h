/* Tiny assertion helpers shared by the C tests in ffi/tests (driven by ffi/tests/c_abi.rs). */
#ifndef AGC_TEST_CHECK_H
#define AGC_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

#define CHECK_ALIGNED(p, a) CHECK(((size_t)(p) & ((size_t)(a) - 1)) == 0)

#endif
