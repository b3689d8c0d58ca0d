/*
 * Memory of medium blocks (not a test), run by ffi/bench/medium_rss.sh under each allocator:
 * N blocks of random sizes in [LO, HI] bytes (default 20000 of 2049..4096), each written whole,
 * then every other one freed. Prints the peak and current resident set (VmHWM, VmRSS, KiB) and
 * the payload still live, so the ratio says what the allocator adds on top of what the program
 * asked for (size classes, run or page tails, headers, free space it keeps).
 *
 * Usage: medium_rss [N [LO HI]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long status_kib(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key))) v = strtol(line + strlen(key) + 1, NULL, 10);
    fclose(f);
    return v;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 20000;
    size_t lo = argc > 3 ? (size_t)atol(argv[2]) : 2049, hi = argc > 3 ? (size_t)atol(argv[3]) : 4096;
    unsigned long x = 88172645463325252ul;
    size_t live = 0;
    void **v = malloc((size_t)n * sizeof *v);
    size_t *sz = malloc((size_t)n * sizeof *sz);
    if (!v || !sz || n < 2 || lo == 0 || hi < lo) {
        fprintf(stderr, "usage: medium_rss [N [LO HI]]\n");
        return 2;
    }
    for (long i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sz[i] = lo + x % (hi - lo + 1);
        v[i] = malloc(sz[i]);
        if (!v[i]) return 1;
        memset(v[i], 1, sz[i]);
        live += sz[i];
    }
    long full_rss = status_kib("VmRSS");
    for (long i = 0; i < n; i += 2) {
        free(v[i]);
        live -= sz[i];
    }
    printf("all live: rss %ld KiB; half freed: rss %ld KiB, peak %ld KiB; live payload %zu KiB\n",
           full_rss, status_kib("VmRSS"), status_kib("VmHWM"), live / 1024);
    return 0;
}
