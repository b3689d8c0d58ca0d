/*
 * Multi-threaded allocator benchmarks for LD_PRELOAD comparisons (not a test), run by
 * ffi/bench/threads.sh. The same five shapes as the Rust front end (benches/threads/src/main.rs,
 * which documents them in full):
 *
 *   larson        Larson & Krishnan: T lanes of 1000 slots (8..1000 bytes); a thread does 100k
 *                 "free a random slot, allocate a new random size into it", then starts its
 *                 successor, which takes the slots over; fixed time
 *   rptest        T lanes, working sets of 1000 blocks of 16..1000 bytes; a quarter of the
 *                 dropped blocks go to a random other lane (batches of 32, mutex-protected
 *                 inboxes) whose thread frees them; threads live 1/4..7/4 of 50k operations
 *                 (staggered), hand their working set on and start a successor; fixed time
 *   glibc-thread  glibc's benchtests/bench-malloc-thread.c: 1024 slots per thread, sizes
 *                 4..32768 with an inverse-square distribution, all local; fixed time
 *   alloc-test    T threads, 2048 slots each; an operation frees the block in a random slot or
 *                 allocates one there (16..512 bytes, 1 in 16 of 513..4096); 8M operations split
 *                 among the threads
 *   large         malloc-large: 20 slots, each replacement a new block of 5..25 MiB, 3000
 *                 replacements (split among the threads when T > 1)
 *
 * Usage: threads SHAPE T [SECONDS]   (SECONDS: run time of the fixed-time shapes, default 0.3)
 * Prints one number: operations per second for larson, rptest and glibc-thread; seconds for
 * alloc-test and large. Only the timed section counts (not process start-up, not the final
 * frees).
 *
 * Every block gets its first and last byte written with tags derived from its size, and both are
 * checked before it is freed; a mismatch, a NULL from malloc or a failed pthread call aborts
 * with a message (exit status 134 via abort()).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

_Static_assert(sizeof(pthread_t) <= sizeof(void *), "a pthread_t is passed as a thread's result");

static const char *shape = "";

static void die(const char *what) {
    fprintf(stderr, "threads %s: %s\n", shape, what);
    abort();
}

static inline uint64_t xs(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* splitmix64, so that small seeds give unrelated xorshift streams */
static uint64_t seed(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (z ^ (z >> 31)) | 1;
}

typedef struct {
    unsigned char *p;
    size_t size;
} blk;

static inline unsigned char tag_first(size_t size) { return (unsigned char)(size ^ 0xA5); }
static inline unsigned char tag_last(size_t size) { return (unsigned char)((size >> 8) ^ 0x5A); }

static inline blk new_blk(size_t size) {
    blk b = {malloc(size), size};
    if (!b.p) die("malloc returned NULL");
    b.p[0] = tag_first(size);
    b.p[size - 1] = tag_last(size);
    return b;
}

static inline void free_blk(blk b) {
    if (!b.p) return;
    if (b.p[0] != tag_first(b.size) || b.p[b.size - 1] != tag_last(b.size)) {
        fprintf(stderr, "threads %s: corrupt block %p of %zu bytes: tags %#x %#x, expected %#x %#x\n",
                shape, (void *)b.p, b.size, b.p[0], b.p[b.size - 1], tag_first(b.size),
                tag_last(b.size));
        abort();
    }
    free(b.p);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n, size);
    if (!p) die("calloc returned NULL");
    return p;
}

static atomic_bool stop;

/* Starts a thread; it is joined by whoever follows the chain. */
static pthread_t start(void *(*fn)(void *), void *arg) {
    pthread_t t;
    if (pthread_create(&t, NULL, fn, arg) != 0) die("pthread_create failed");
    return t;
}

/* Joins a chain of threads, each of which returns its successor (NULL: the last one). */
static void join_chain(pthread_t t) {
    for (;;) {
        void *next;
        if (pthread_join(t, &next) != 0) die("pthread_join failed");
        if (!next) return;
        t = (pthread_t)(uintptr_t)next;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* larson */

enum { LARSON_SLOTS = 1000, LARSON_OPS = 100000 };

typedef struct {
    blk *slots;
    uint64_t rng, ops;
} llane;

static void *larson_thread(void *arg) {
    llane *l = arg;
    uint64_t done = 0;
    while (done < LARSON_OPS && !atomic_load_explicit(&stop, memory_order_relaxed)) {
        uint64_t r = xs(&l->rng);
        size_t k = r % LARSON_SLOTS;
        free_blk(l->slots[k]);
        l->slots[k] = new_blk(8 + (r >> 32) % 993);
        done++;
    }
    l->ops += done;
    if (atomic_load(&stop)) return NULL;
    /* as larson does: the dying thread starts its successor, which takes the slots over */
    return (void *)(uintptr_t)start(larson_thread, l);
}

static double larson(int t, double secs) {
    llane *lanes = xcalloc((size_t)t, sizeof *lanes);
    pthread_t *heads = xcalloc((size_t)t, sizeof *heads);
    uint64_t ops = 0;
    for (int i = 0; i < t; i++) { /* the main thread fills every lane, as larson's warm-up */
        lanes[i].rng = seed(0x1a25 + (uint64_t)i);
        lanes[i].slots = xcalloc(LARSON_SLOTS, sizeof(blk));
        for (int k = 0; k < LARSON_SLOTS; k++)
            lanes[i].slots[k] = new_blk(8 + xs(&lanes[i].rng) % 993);
    }
    double t0 = now();
    for (int i = 0; i < t; i++) heads[i] = start(larson_thread, &lanes[i]);
    sleep_s(secs);
    atomic_store(&stop, 1);
    for (int i = 0; i < t; i++) join_chain(heads[i]);
    double el = now() - t0;
    for (int i = 0; i < t; i++) {
        ops += lanes[i].ops;
        for (int k = 0; k < LARSON_SLOTS; k++) free_blk(lanes[i].slots[k]);
        free(lanes[i].slots);
    }
    free(lanes);
    free(heads);
    if (ops == 0) die("no operation done");
    return (double)ops / el;
}

/* ---------------------------------------------------------------------------------------- */
/* rptest */

enum { RP_SLOTS = 1000, RP_LIFE = 50000, RP_BATCH = 32, RP_INBOX = 16 * 1024 };

typedef struct {
    pthread_mutex_t m;
    blk *q;
    size_t n;
} inbox;

typedef struct {
    int idx, t;
    inbox *boxes; /* all lanes' */
    blk *work, *recv;
    blk *out;      /* t batches of RP_BATCH */
    size_t *nout;  /* fill of each batch */
    uint64_t rng;
    _Atomic uint64_t *ops;
} rlane;

static void rp_drain(rlane *l) {
    inbox *b = &l->boxes[l->idx];
    size_t n;
    pthread_mutex_lock(&b->m);
    n = b->n;
    if (n) { /* swap the full queue for our empty one */
        blk *q = b->q;
        b->q = l->recv;
        b->n = 0;
        l->recv = q;
    }
    pthread_mutex_unlock(&b->m);
    for (size_t i = 0; i < n; i++) free_blk(l->recv[i]);
}

static void rp_flush(rlane *l, int dest) {
    blk *out = &l->out[(size_t)dest * RP_BATCH];
    size_t n = l->nout[dest], put;
    if (!n) return;
    inbox *b = &l->boxes[dest];
    pthread_mutex_lock(&b->m);
    put = RP_INBOX - b->n < n ? RP_INBOX - b->n : n;
    memcpy(&b->q[b->n], out, put * sizeof(blk));
    b->n += put;
    pthread_mutex_unlock(&b->m);
    for (size_t i = put; i < n; i++) free_blk(out[i]); /* the inbox was full */
    l->nout[dest] = 0;
}

static void rp_send(rlane *l, blk b, uint64_t r) {
    int dest = l->t == 1 ? 0 : (int)((l->idx + 1 + r % (uint64_t)(l->t - 1)) % (uint64_t)l->t);
    l->out[(size_t)dest * RP_BATCH + l->nout[dest]++] = b;
    if (l->nout[dest] == RP_BATCH) rp_flush(l, dest);
}

static void *rp_thread(void *arg) {
    rlane *l = arg;
    uint64_t life = RP_LIFE / 4 + xs(&l->rng) % (RP_LIFE * 3 / 2), done = 0;
    while (done < life && !atomic_load_explicit(&stop, memory_order_relaxed)) {
        if (done % 64 == 0) rp_drain(l);
        uint64_t r = xs(&l->rng);
        size_t k = r % RP_SLOTS;
        blk old = l->work[k];
        l->work[k] = new_blk(16 + (r >> 32) % 985);
        if (old.p) {
            if (((r >> 20) & 3) == 0)
                rp_send(l, old, r >> 22);
            else
                free_blk(old);
        }
        done++;
    }
    /* end of life: the working set goes to other lanes, whose threads free it */
    for (size_t k = 0; k < RP_SLOTS; k++) {
        if (l->work[k].p) rp_send(l, l->work[k], xs(&l->rng));
        l->work[k].p = NULL;
    }
    for (int d = 0; d < l->t; d++) rp_flush(l, d);
    atomic_fetch_add(l->ops, done);
    if (atomic_load(&stop)) return NULL;
    return (void *)(uintptr_t)start(rp_thread, l);
}

static double rptest(int t, double secs) {
    inbox *boxes = xcalloc((size_t)t, sizeof *boxes);
    rlane *lanes = xcalloc((size_t)t, sizeof *lanes);
    pthread_t *heads = xcalloc((size_t)t, sizeof *heads);
    _Atomic uint64_t ops = 0;
    for (int i = 0; i < t; i++) {
        pthread_mutex_init(&boxes[i].m, NULL);
        boxes[i].q = xcalloc(RP_INBOX, sizeof(blk));
        lanes[i] = (rlane){.idx = i,
                           .t = t,
                           .boxes = boxes,
                           .work = xcalloc(RP_SLOTS, sizeof(blk)),
                           .recv = xcalloc(RP_INBOX, sizeof(blk)),
                           .out = xcalloc((size_t)t * RP_BATCH, sizeof(blk)),
                           .nout = xcalloc((size_t)t, sizeof(size_t)),
                           .rng = seed(0x4e57 + (uint64_t)i),
                           .ops = &ops};
    }
    double t0 = now();
    for (int i = 0; i < t; i++) heads[i] = start(rp_thread, &lanes[i]);
    sleep_s(secs);
    atomic_store(&stop, 1);
    for (int i = 0; i < t; i++) join_chain(heads[i]);
    double el = now() - t0;
    for (int i = 0; i < t; i++) {
        for (size_t k = 0; k < boxes[i].n; k++) free_blk(boxes[i].q[k]);
        free(boxes[i].q);
        pthread_mutex_destroy(&boxes[i].m);
        free(lanes[i].work);
        free(lanes[i].recv);
        free(lanes[i].out);
        free(lanes[i].nout);
    }
    free(boxes);
    free(lanes);
    free(heads);
    if (ops == 0) die("no operation done");
    return (double)ops / el;
}

/* ---------------------------------------------------------------------------------------- */
/* glibc-thread, alloc-test, large: T local threads released together */

static pthread_barrier_t go, end;

typedef struct {
    int idx, t;
    uint64_t ops;
    void *(*work)(void *);
} worker;

/* Runs each worker's work between the two barriers; returns the time from the release until
 * every worker has finished its work (a worker frees its slots after the second barrier). */
static double local_threads(int t, double stop_after, void *(*work)(void *), uint64_t *ops) {
    worker *w = xcalloc((size_t)t, sizeof *w);
    pthread_t *th = xcalloc((size_t)t, sizeof *th);
    if (pthread_barrier_init(&go, NULL, (unsigned)t + 1) || pthread_barrier_init(&end, NULL, (unsigned)t + 1))
        die("pthread_barrier_init failed");
    for (int i = 0; i < t; i++) {
        w[i] = (worker){.idx = i, .t = t};
        th[i] = start(work, &w[i]);
    }
    pthread_barrier_wait(&go);
    double t0 = now();
    if (stop_after > 0) {
        sleep_s(stop_after);
        atomic_store(&stop, 1);
    }
    pthread_barrier_wait(&end);
    double el = now() - t0;
    *ops = 0;
    for (int i = 0; i < t; i++) {
        if (pthread_join(th[i], NULL) != 0) die("pthread_join failed");
        *ops += w[i].ops;
    }
    pthread_barrier_destroy(&go);
    pthread_barrier_destroy(&end);
    free(w);
    free(th);
    return el;
}

enum { GT_SLOTS = 1024, GT_SIZES = 8000, GT_OFFSETS = 8192 };
static unsigned gt_sizes[GT_SIZES];
static unsigned short gt_offsets[GT_OFFSETS];

static void *gt_thread(void *arg) {
    worker *w = arg;
    blk *slots = xcalloc(GT_SLOTS, sizeof(blk));
    size_t so = (size_t)w->idx * 997, sb = (size_t)w->idx * 131;
    uint64_t ops = 0;
    pthread_barrier_wait(&go);
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        size_t k = gt_offsets[so++ % GT_OFFSETS];
        size_t size = gt_sizes[sb++ % GT_SIZES];
        free_blk(slots[k]);
        slots[k] = new_blk(size);
        ops++;
    }
    w->ops = ops;
    pthread_barrier_wait(&end);
    for (size_t k = 0; k < GT_SLOTS; k++) free_blk(slots[k]);
    free(slots);
    return NULL;
}

static double glibc_thread(int t, double secs) {
    uint64_t rng = seed(0x61b), ops;
    const double min_pow = 1.0 / 4, max_pow = 1.0 / 32768;
    for (int i = 0; i < GT_SIZES; i++) { /* glibc's inverse-square distribution over 4..32768 */
        double r = (double)(xs(&rng) >> 11) / (double)(1ull << 53);
        unsigned s = (unsigned)(1.0 / ((max_pow - min_pow) * r + min_pow));
        gt_sizes[i] = s < 4 ? 4 : s > 32768 ? 32768 : s;
    }
    for (int i = 0; i < GT_OFFSETS; i++) gt_offsets[i] = (unsigned short)(xs(&rng) % GT_SLOTS);
    double el = local_threads(t, secs, gt_thread, &ops);
    if (ops == 0) die("no operation done");
    return (double)ops / el;
}

enum { AT_SLOTS = 2048, AT_OPS = 8000000 };

static void *at_thread(void *arg) {
    worker *w = arg;
    blk *slots = xcalloc(AT_SLOTS, sizeof(blk));
    uint64_t rng = seed(0xa11c + (uint64_t)w->idx), per = AT_OPS / (uint64_t)w->t;
    pthread_barrier_wait(&go);
    for (uint64_t i = 0; i < per; i++) {
        uint64_t r = xs(&rng);
        size_t k = r % AT_SLOTS;
        if (!slots[k].p) {
            size_t size = (r >> 16) % 16 == 0 ? 513 + (r >> 24) % 3584 : 16 + (r >> 24) % 497;
            slots[k] = new_blk(size);
        } else {
            free_blk(slots[k]);
            slots[k].p = NULL;
        }
    }
    w->ops = per;
    pthread_barrier_wait(&end);
    for (size_t k = 0; k < AT_SLOTS; k++) free_blk(slots[k]);
    free(slots);
    return NULL;
}

enum { LARGE_SLOTS = 20, LARGE_ITERS = 3000 };

static void *large_thread(void *arg) {
    worker *w = arg;
    blk slots[LARGE_SLOTS] = {{0}};
    uint64_t rng = seed(0x1a9e + (uint64_t)w->idx), per = LARGE_ITERS / (uint64_t)w->t;
    pthread_barrier_wait(&go);
    for (uint64_t i = 0; i < per; i++) {
        uint64_t r = xs(&rng);
        size_t k = r % LARGE_SLOTS;
        free_blk(slots[k]);
        slots[k] = new_blk((5u << 20) + (r >> 16) % (20u << 20) + 1); /* first and last page */
    }
    w->ops = per;
    pthread_barrier_wait(&end);
    for (size_t k = 0; k < LARGE_SLOTS; k++) free_blk(slots[k]);
    return NULL;
}

int main(int argc, char **argv) {
    double secs = argc > 3 ? atof(argv[3]) : 0.3, v;
    int t = argc > 2 ? atoi(argv[2]) : 0;
    uint64_t ops;
    shape = argc > 1 ? argv[1] : "";
    if (t < 1 || t > 1024 || secs <= 0) shape = "";
    if (!strcmp(shape, "larson"))
        v = larson(t, secs);
    else if (!strcmp(shape, "rptest"))
        v = rptest(t, secs);
    else if (!strcmp(shape, "glibc-thread"))
        v = glibc_thread(t, secs);
    else if (!strcmp(shape, "alloc-test"))
        v = local_threads(t, 0, at_thread, &ops);
    else if (!strcmp(shape, "large"))
        v = local_threads(t, 0, large_thread, &ops);
    else {
        fprintf(stderr, "usage: threads larson|rptest|glibc-thread|alloc-test|large THREADS [SECONDS]\n");
        return 2;
    }
    printf("%.6g\n", v);
    return 0;
}
