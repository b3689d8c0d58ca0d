/*
 * Multi-threaded stress for the malloc replacement, run under LD_PRELOAD by
 * ffi/tests/preload.rs. Threads allocate blocks of mixed sizes (small and large), check and
 * free half themselves, and hand the other half through a shared ring to be freed by other
 * threads. Worker threads are created and exit in waves (thread start and exit), and the main
 * thread forks while workers run: each child allocates and frees on its own and must exit 0.
 * Every block carries a pattern checked before it is freed.
 */
#define _GNU_SOURCE
#include "check.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { THREADS = 8, WAVES = 4, ITERS = 60000, RING = 4096, LIVE = 256, FORKS = 6 };

struct msg { unsigned char *p; size_t n; };

static struct msg ring[RING];
static size_t head, tail;
static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t size_for(uint64_t r) {
    /* mostly small, some medium, a few large */
    if (r % 50 == 0) return 600 + (size_t)(r % 20000);
    return 2 + (size_t)(r % 511); /* >= 2: the two pattern bytes differ */
}

static uint64_t next(uint64_t *s) {
    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
    return *s;
}

static void fill(unsigned char *p, size_t n) {
    p[0] = (unsigned char)n;
    p[n - 1] = (unsigned char)(n * 31);
}

static void check_free(unsigned char *p, size_t n) {
    CHECK(p[0] == (unsigned char)n && p[n - 1] == (unsigned char)(n * 31));
    free(p);
}

static int push(unsigned char *p, size_t n) {
    int ok = 0;
    pthread_mutex_lock(&ring_lock);
    if (head - tail < RING) {
        ring[head % RING].p = p;
        ring[head % RING].n = n;
        head++;
        ok = 1;
    }
    pthread_mutex_unlock(&ring_lock);
    return ok;
}

static int pop(struct msg *m) {
    int ok = 0;
    pthread_mutex_lock(&ring_lock);
    if (tail != head) {
        *m = ring[tail % RING];
        tail++;
        ok = 1;
    }
    pthread_mutex_unlock(&ring_lock);
    return ok;
}

static void *worker(void *arg) {
    uint64_t s = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
    struct msg live[LIVE];
    int i;
    memset(live, 0, sizeof live);
    for (i = 0; i < ITERS; i++) {
        uint64_t r = next(&s);
        size_t slot = (size_t)(r >> 32) % LIVE;
        size_t n = size_for(r);
        unsigned char *p = malloc(n);
        struct msg m;
        CHECK(p != NULL);
        fill(p, n);
        if (live[slot].p) {
            if (r & 1 && push(live[slot].p, live[slot].n)) {
                /* handed to another thread */
            } else {
                check_free(live[slot].p, live[slot].n);
            }
        }
        live[slot].p = p;
        live[slot].n = n;
        if (pop(&m))
            check_free(m.p, m.n); /* usually another thread's block */
    }
    for (i = 0; i < LIVE; i++)
        if (live[i].p && !push(live[i].p, live[i].n))
            check_free(live[i].p, live[i].n);
    return NULL;
}

static void fork_child_work(void) {
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        /* the child: only this thread exists; the allocator's locks must be usable */
        void *p[1000];
        int i;
        for (i = 0; i < 1000; i++) {
            p[i] = malloc((size_t)(i % 700) + 1);
            if (!p[i]) _exit(3);
            memset(p[i], 1, (size_t)(i % 700) + 1);
        }
        for (i = 0; i < 1000; i++)
            free(p[i]);
        _exit(0);
    } else {
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
}

int main(void) {
    int w, i;
    struct msg m;
    for (w = 0; w < WAVES; w++) {
        pthread_t t[THREADS];
        for (i = 0; i < THREADS; i++)
            CHECK(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(w * THREADS + i + 1)) == 0);
        for (i = 0; i < FORKS / WAVES + 1; i++)
            fork_child_work();
        for (i = 0; i < THREADS; i++)
            CHECK(pthread_join(t[i], NULL) == 0);
    }
    while (pop(&m))
        check_free(m.p, m.n);
    printf("stress_threads: ok\n");
    return 0;
}
