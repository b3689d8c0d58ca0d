/*
 * Bad frees that must abort with a message naming the fault. ffi/tests/c_abi.rs runs each case
 * in a child process (argv[1] names it) and checks stderr and SIGABRT. Built twice: with
 * -DUSE_AGC against libarenagc (agc_malloc / agc_free), and plain, run under LD_PRELOAD of
 * libarenagc_malloc.so (malloc / free). Compiled with -fno-builtin so every call stays.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef USE_AGC
#include "arenagc.h"
#define ALLOC agc_malloc
#define FREE agc_free
#else
#define ALLOC malloc
#define FREE free
#endif

static char static_buf[256];

int main(int argc, char **argv) {
    const char *c = argc > 1 ? argv[1] : "";
    if (strcmp(c, "interior") == 0) {
        char *p = (char *)ALLOC(64);
        FREE(p + 16);
    } else if (strcmp(c, "stack") == 0) {
        char buf[256];
        memset(buf, 0, sizeof buf);
        FREE(buf + 64);
    } else if (strcmp(c, "static") == 0) {
        FREE(static_buf + 64);
    } else if (strcmp(c, "double") == 0) {
        char *p = (char *)ALLOC(48);
        FREE(p);
        FREE(p);
    } else if (strcmp(c, "double_large") == 0) {
        char *p = (char *)ALLOC(100000);
        FREE(p);
        FREE(p);
    } else if (strcmp(c, "double_later") == 0) {
        /* freed again after other blocks of its pool were freed: debug mode's quarantine */
        char *p = (char *)ALLOC(48), *q = (char *)ALLOC(48), *r = (char *)ALLOC(48);
        FREE(p);
        FREE(q);
        FREE(r);
        FREE(p);
    } else {
        fprintf(stderr, "unknown case %s\n", c);
        return 2;
    }
    printf("not caught: %s\n", c);
    return 0;
}
