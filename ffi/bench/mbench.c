/*
 * Allocator microbenchmarks, run under LD_PRELOAD of each allocator by ffi/bench/run.sh.
 * One workload per run (argv[1]); the driver times the whole process.
 *   pairs     hot malloc/free pairs of small sizes
 *   batch     allocate a batch of mixed sizes, then free it all, repeatedly
 *   random    random replacement in a large working set of mixed sizes
 *   prodcons  a producer thread allocates, a consumer thread frees (cross-thread frees)
 * Compiled with -fno-builtin so the compiler cannot remove the malloc/free pairs.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static inline uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static volatile unsigned char sink;

static void pairs(void) {
    static const size_t sizes[] = {16, 24, 32, 48, 64, 100, 128, 200, 256, 400, 512, 40};
    long i;
    for (i = 0; i < 30000000; i++) {
        unsigned char *p = malloc(sizes[i % 12]);
        p[0] = (unsigned char)i;
        sink = p[0];
        free(p);
    }
}

static size_t mixed_size(uint64_t r) {
    if (r % 64 == 0)
        return 513 + (size_t)(r % 4096); /* a few larger blocks */
    return 8 + (size_t)(r % 505);
}

static void batch(void) {
    enum { N = 100000, ROUNDS = 60 };
    static unsigned char *p[N];
    int r, i;
    for (r = 0; r < ROUNDS; r++) {
        for (i = 0; i < N; i++) {
            p[i] = malloc(mixed_size(next()));
            p[i][0] = (unsigned char)i;
        }
        for (i = 0; i < N; i++)
            free(p[i]);
    }
}

static void random_replace(void) {
    enum { N = 200000 };
    static unsigned char *p[N];
    long i;
    for (i = 0; i < N; i++)
        p[i] = malloc(mixed_size(next()));
    for (i = 0; i < 12000000; i++) {
        uint64_t r = next();
        size_t k = (size_t)(r >> 40) % N;
        free(p[k]);
        p[k] = malloc(mixed_size(r));
        p[k][0] = (unsigned char)r;
    }
    for (i = 0; i < N; i++)
        free(p[i]);
}

/* single-producer single-consumer ring */
enum { RING = 1 << 12, ITEMS = 2000000 };
static void *ring[RING];
static _Atomic size_t head, tail;

static void *consumer(void *arg) {
    size_t n = 0, t = 0;
    (void)arg;
    while (n < ITEMS) {
        size_t h = __atomic_load_n(&head, __ATOMIC_ACQUIRE);
        while (t != h) {
            free(ring[t % RING]);
            t++;
            n++;
        }
        __atomic_store_n(&tail, t, __ATOMIC_RELEASE);
    }
    return NULL;
}

static void prodcons(void) {
    pthread_t c;
    size_t h = 0, i;
    pthread_create(&c, NULL, consumer, NULL);
    for (i = 0; i < ITEMS; i++) {
        unsigned char *p = malloc(16 + (i * 7) % 300);
        p[0] = 1;
        while (h - __atomic_load_n(&tail, __ATOMIC_ACQUIRE) >= RING) {
        }
        ring[h % RING] = p;
        h++;
        if ((h & 63) == 0)
            __atomic_store_n(&head, h, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&head, h, __ATOMIC_RELEASE);
    pthread_join(c, NULL);
}

int main(int argc, char **argv) {
    const char *w = argc > 1 ? argv[1] : "";
    if (!strcmp(w, "pairs")) pairs();
    else if (!strcmp(w, "batch")) batch();
    else if (!strcmp(w, "random")) random_replace();
    else if (!strcmp(w, "prodcons")) prodcons();
    else {
        fprintf(stderr, "usage: mbench pairs|batch|random|prodcons\n");
        return 2;
    }
    return 0;
}
