/*
 * An ordinary C program with a known leak, for tracing under LD_PRELOAD (ffi/tests/
 * preload_trace.rs): leak_some_memory keeps 1000 blocks of 48 bytes and one of 100000 bytes
 * that nothing frees; churn allocates and frees. No arenagc header: it only calls malloc.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Global, so the compiler keeps every store (and so every malloc). */
void *leaked[1001];
char *volatile churn_sink;

__attribute__((noinline)) void leak_some_memory(void) {
    int i;
    for (i = 0; i < 1000; i++) {
        leaked[i] = malloc(48);
        memset(leaked[i], i, 48);
    }
    leaked[1000] = malloc(100000);
    memset(leaked[1000], 1, 100000);
}

__attribute__((noinline)) void churn(void) {
    int i;
    for (i = 0; i < 100000; i++) {
        char *p = malloc(16 + i % 200);
        p[0] = (char)i;
        churn_sink = p;
        free(churn_sink);
    }
}

int main(void) {
    churn();
    leak_some_memory();
    churn();
    printf("leaky: done\n");
    return 0;
}
