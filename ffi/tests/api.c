/*
 * Every function of include/arenagc.h, and its bad inputs, through the agc_ API.
 * Built against libarenagc.so and libarenagc.a and run (normal and debug mode) by
 * ffi/tests/c_abi.rs. Prints "api: ok" on success; any failed CHECK exits 1.
 */
#define _GNU_SOURCE
#include "arenagc.h"
#include "check.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

static int debug_mode;

static size_t class_blocks_in_use(int cls) {
    agc_stats_t s;
    CHECK(agc_stats(&s) == AGC_OK);
    return s.classes[cls].blocks_in_use;
}

static void test_version(void) {
    CHECK(strcmp(agc_version(), AGC_VERSION_STRING) == 0);
}

static void test_malloc_zero_distinct(void) {
    enum { N = 1000 };
    static void *ptrs[N];
    int i, j;
    for (i = 0; i < N; i++) {
        ptrs[i] = agc_malloc(0);
        CHECK(ptrs[i] != NULL);
        CHECK_ALIGNED(ptrs[i], 16);
    }
    for (i = 0; i < N; i++)
        for (j = i + 1; j < N; j++)
            CHECK(ptrs[i] != ptrs[j]);
    for (i = 0; i < N; i++) {
        if (!debug_mode)
            CHECK(agc_owns(ptrs[i]));
        agc_free(ptrs[i]);
    }
}

static void test_sizes(void) {
    size_t n;
    for (n = 1; n <= 5000; n += (n < 600 ? 1 : 97)) {
        unsigned char *p = (unsigned char *)agc_malloc(n);
        CHECK(p != NULL);
        CHECK_ALIGNED(p, 16);
        CHECK(agc_usable_size(p) >= n);
        memset(p, 0xAB, agc_usable_size(p));
        if (!debug_mode)
            CHECK(agc_owns(p) == (n <= 4096)); /* small (<= 512) and medium (<= 4096) blocks */
        if (n % 2)
            agc_free(p);
        else
            agc_free_sized(p, n);
    }
    CHECK(agc_usable_size(NULL) == 0);
}

static void test_calloc(void) {
    size_t n;
    for (n = 1; n < 6000; n += 37) { /* small, medium (to 4096) and large blocks */
        unsigned char *p = (unsigned char *)agc_malloc(n);
        size_t i;
        memset(p, 0xFF, n);
        agc_free(p);
        p = (unsigned char *)agc_calloc(n, 1);
        CHECK(p != NULL);
        for (i = 0; i < n; i++)
            CHECK(p[i] == 0);
        agc_free(p);
    }
    /* overflow */
    errno = 0;
    CHECK(agc_calloc(SIZE_MAX / 2 + 1, 2) == NULL);
    CHECK(errno == ENOMEM);
    CHECK_ERR("overflow");
    errno = 0;
    CHECK(agc_calloc(2, SIZE_MAX) == NULL);
    CHECK(errno == ENOMEM);
    /* zero elements: a distinct live pointer, like malloc(0) */
    {
        void *a = agc_calloc(0, 8), *b = agc_calloc(8, 0);
        CHECK(a != NULL && b != NULL && a != b);
        agc_free(a);
        agc_free(b);
    }
}

static void test_huge(void) {
    static const size_t huge[] = {SIZE_MAX, SIZE_MAX - 4096, (size_t)PTRDIFF_MAX,
                                  (size_t)PTRDIFF_MAX - 4096, (size_t)PTRDIFF_MAX + 1};
    size_t i;
    char *keep = (char *)agc_malloc(100);
    strcpy(keep, "still here");
    for (i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        errno = 0;
        CHECK(agc_malloc(huge[i]) == NULL && errno == ENOMEM);
        CHECK_ERR("agc_malloc");
        errno = 0;
        CHECK(agc_calloc(1, huge[i]) == NULL && errno == ENOMEM);
        errno = 0;
        CHECK(agc_calloc(huge[i], 1) == NULL && errno == ENOMEM);
        errno = 0;
        CHECK(agc_aligned_alloc(64, huge[i]) == NULL && errno == ENOMEM);
        errno = 0;
        CHECK(agc_aligned_alloc(4096, huge[i]) == NULL && errno == ENOMEM);
        errno = 0;
        CHECK(agc_realloc(keep, huge[i]) == NULL && errno == ENOMEM);
        CHECK(strcmp(keep, "still here") == 0);
        errno = 0;
        CHECK(agc_realloc(NULL, huge[i]) == NULL && errno == ENOMEM);
    }
    agc_free(keep);
}

static void test_realloc(void) {
    size_t sizes[] = {1, 16, 17, 100, 512, 513, 1000, 4096, 100000, 300, 8, 2};
    size_t i, j, prev = 0;
    unsigned char *p = (unsigned char *)agc_realloc(NULL, 0);
    CHECK(p != NULL); /* realloc(NULL, 0) == malloc(0) */
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i], keep = prev < n ? prev : n;
        p = (unsigned char *)agc_realloc(p, n);
        CHECK(p != NULL);
        CHECK(agc_usable_size(p) >= n);
        for (j = 0; j < keep; j++)
            CHECK(p[j] == (unsigned char)j);
        for (j = 0; j < n; j++)
            p[j] = (unsigned char)j;
        prev = n;
    }
    /* realloc(p, 0) frees and returns NULL */
    if (!debug_mode) {
        size_t before;
        p = (unsigned char *)agc_realloc(p, 40); /* class 2 (48 bytes) */
        before = class_blocks_in_use(2);
        CHECK(agc_realloc(p, 0) == NULL);
        CHECK(class_blocks_in_use(2) == before - 1);
    } else {
        CHECK(agc_realloc(p, 0) == NULL);
    }
}

static void test_aligned(void) {
    size_t cls, shift;
    for (cls = 0; cls < AGC_NUM_CLASSES; cls++) {
        size_t size = 16 * (cls + 1);
        for (shift = 0; shift <= 20; shift++) {
            size_t a = (size_t)1 << shift;
            unsigned char *p = (unsigned char *)agc_aligned_alloc(a, size);
            CHECK(p != NULL);
            CHECK_ALIGNED(p, a);
            CHECK(agc_usable_size(p) >= size);
            memset(p, 0x5A, size);
            agc_free(p);
        }
    }
    {
        static const size_t bad[] = {0, 3, 24, 48, 1000, (size_t)1 << 20 | 1, SIZE_MAX};
        size_t i;
        for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            errno = 0;
            CHECK(agc_aligned_alloc(bad[i], 64) == NULL);
            CHECK(errno == EINVAL);
            CHECK_ERR("power of two");
        }
    }
}

static void test_free_null(void) {
    agc_free(NULL);
    agc_free_sized(NULL, 0);
    agc_free_sized(NULL, 100);
}

static void test_stats(void) {
    agc_stats_t s;
    int i;
    enum { N = 1000 };
    static void *blocks[N];
    void *big;
    CHECK(agc_stats(NULL) == AGC_ERR_NULL);
    CHECK_ERR("agc_stats");
    CHECK(agc_stats(&s) == AGC_OK);
    CHECK(s.debug == debug_mode);
    for (i = 0; i < AGC_NUM_CLASSES; i++) {
        CHECK(s.classes[i].block_size == (size_t)16 * (i + 1));
        CHECK(s.classes[i].pools == 0 || s.classes[i].blocks_free + s.classes[i].blocks_in_use > 0);
    }
    CHECK(s.arenas_current <= s.arenas_peak && s.arenas_peak <= s.arenas_allocated_total);
    CHECK(s.arenas_allocated_total - s.arenas_released_total == s.arenas_current);
    if (debug_mode)
        return;
    {
        size_t before = s.classes[2].blocks_in_use, large_before = s.large_blocks;
        for (i = 0; i < N; i++)
            blocks[i] = agc_malloc(40);
        big = agc_malloc(1 << 20);
        CHECK(agc_stats(&s) == AGC_OK);
        CHECK(s.classes[2].blocks_in_use == before + N);
        {
            /* A pool of 48-byte blocks holds 4096 / 48 of them (16384 / 48 with large-pools),
               every block of every pool counted once, in use or free. */
            size_t held = s.classes[2].blocks_in_use + s.classes[2].blocks_free;
            size_t per_pool = held / s.classes[2].pools;
            CHECK(held % s.classes[2].pools == 0);
            CHECK(per_pool == 4096 / 48 || per_pool == 16384 / 48);
            CHECK(s.classes[2].pools >= N / per_pool);
        }
        CHECK(s.arenas_current >= 1);
        CHECK(s.large_blocks == large_before + 1);
        CHECK(s.large_bytes >= 1 << 20);
        for (i = 0; i < N; i++)
            agc_free(blocks[i]);
        agc_free(big);
        CHECK(agc_stats(&s) == AGC_OK);
        CHECK(s.classes[2].blocks_in_use == before);
        CHECK(s.large_blocks == large_before);
    }
}

static void test_stats_print(void) {
    FILE *f = tmpfile();
    char buf[8192];
    size_t n;
    CHECK(agc_stats_print(NULL) == AGC_ERR_NULL);
    CHECK_ERR("NULL");
    CHECK(f != NULL);
    CHECK(agc_stats_print(f) == AGC_OK);
    rewind(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    CHECK(strstr(buf, "# arenas allocated total") != NULL);
    CHECK(strstr(buf, "# bytes in system allocator") != NULL);
    CHECK(strstr(buf, debug_mode ? "on" : "off") != NULL);
    fclose(f);
    f = fopen("/dev/full", "w");
    if (f != NULL) { /* a write that fails: ENOSPC */
        CHECK(agc_stats_print(f) == AGC_ERR_IO);
        CHECK_ERR("write failed");
        fclose(f);
    }
}

static void test_trim(void) {
    agc_stats_t before, after;
    int i;
    void *p[500];
    for (i = 0; i < 500; i++)
        p[i] = agc_malloc(200);
    for (i = 0; i < 500; i++)
        agc_free(p[i]);
    CHECK(agc_stats(&before) == AGC_OK);
    agc_trim();
    CHECK(agc_stats(&after) == AGC_OK);
    if (!debug_mode) {
        /* 200 bytes is class 12. Its blocks are all free, but the thread keeps its pools. */
        CHECK(before.classes[12].blocks_in_use == 0);
        CHECK(before.classes[12].pools >= 1);
        CHECK(after.classes[12].pools == 0);
        CHECK(after.classes[12].blocks_free == 0);
    }
    /* Free arenas waiting out the purge delay are gone; one spare may stay. */
    CHECK(after.arenas_free <= 1);
    CHECK(after.arenas_current <= before.arenas_current);
    CHECK(after.arenas_released_total - before.arenas_released_total ==
          before.arenas_current - after.arenas_current);
}

static int static_var;

static void test_owns(void) {
    int local = 0;
    void *small = agc_malloc(32), *large = agc_malloc(100000);
    CHECK(!agc_owns(NULL));
    CHECK(!agc_owns(&local));
    CHECK(!agc_owns(&static_var));
    CHECK(!agc_owns((const void *)(uintptr_t)-1));
    CHECK(!agc_owns(large));
    if (!debug_mode) {
        CHECK(agc_owns(small));
        CHECK(agc_owns((char *)small + 7)); /* interior pointers are inside an arena too */
    }
    agc_free(small);
    agc_free(large);
}

/* Blocks allocated on one thread and freed on another; the last error is per thread. */
enum { XN = 20000 };
static void *xblocks[XN];

static void *alloc_thread(void *arg) {
    int i;
    (void)arg;
    for (i = 0; i < XN; i++) {
        xblocks[i] = agc_malloc((size_t)(i % 700) + 1);
        CHECK(xblocks[i] != NULL);
        memset(xblocks[i], i & 0xFF, (size_t)(i % 700) + 1);
    }
    CHECK(agc_last_error() == NULL); /* a new thread has no error */
    CHECK(agc_malloc(SIZE_MAX) == NULL);
    CHECK(agc_last_error() != NULL);
    return NULL;
}

static void test_threads(void) {
    pthread_t t;
    int i;
    const char *mine = agc_last_error();
    CHECK(pthread_create(&t, NULL, alloc_thread, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(agc_last_error() == mine); /* the other thread's error did not land here */
    for (i = 0; i < XN; i++) {
        CHECK(((unsigned char *)xblocks[i])[0] == (unsigned char)(i & 0xFF));
        agc_free(xblocks[i]);
    }
}

static const struct test_case cases[] = {
    {"version", test_version},
    {"malloc_zero_distinct", test_malloc_zero_distinct},
    {"sizes", test_sizes},
    {"calloc", test_calloc},
    {"huge", test_huge},
    {"realloc", test_realloc},
    {"aligned", test_aligned},
    {"free_null", test_free_null},
    {"stats", test_stats},
    {"stats_print", test_stats_print},
    {"trim", test_trim},
    {"owns", test_owns},
    {"threads", test_threads},
};

/* Runs the case named by argv[1], or every case when there is none. */
int main(int argc, char **argv) {
    debug_mode = debug_mode_from_env();
    CHECK(agc_last_error() == NULL);
    CHECK(run_cases(cases, sizeof cases / sizeof cases[0], argc > 1 ? argv[1] : NULL) > 0);
    printf("api: ok\n");
    return 0;
}
