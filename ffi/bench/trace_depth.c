/* Exact tracing's cost per malloc/free pair at a given stack depth, under LD_PRELOAD:
 *   gcc -O1 -fno-builtin -o /tmp/trace_depth ffi/bench/trace_depth.c
 *   LD_PRELOAD=target/release/libarenagc_malloc.so ARENAGC_TRACE=1 /tmp/trace_depth 100000 20
 * (pairs, depth); without ARENAGC_TRACE for the untraced figure. */
#include <stdlib.h>
#include <stdio.h>
#include <time.h>
static void *keep[1024];
__attribute__((noinline)) static void work(int depth, long n) {
    if (depth > 0) { work(depth - 1, n); __asm__ volatile("" ::: "memory"); return; }
    for (long i = 0; i < n; i++) { void *p = malloc(64); keep[i & 1023] = p; free(p); }
}
int main(int argc, char **argv) {
    long n = atol(argv[1]); int depth = atoi(argv[2]);
    struct timespec a, b; clock_gettime(CLOCK_MONOTONIC, &a);
    work(depth, n);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.1f ns/pair\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
    return 0;
}
