/*
 * The malloc family of libarenagc_malloc.so with glibc's semantics, bad inputs included.
 * Run by ffi/tests/c_abi.rs under LD_PRELOAD of the library (normal and debug mode); it
 * reaches agc_owns with dlsym, to prove that malloc really is arenagc's.
 * Compiled with -fno-builtin so the compiler keeps every call.
 */
#define _GNU_SOURCE
#include "check.h"

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* C23, not in this glibc: taken from the preloaded library with dlsym. */
static void (*free_sized)(void *p, size_t size);
static void (*free_aligned_sized)(void *p, size_t align, size_t size);

static int (*owns)(const void *);
static int debug_mode;
static size_t page;

static void resolve(void) {
    *(void **)&owns = dlsym(RTLD_DEFAULT, "agc_owns");
    *(void **)&free_sized = dlsym(RTLD_DEFAULT, "free_sized");
    *(void **)&free_aligned_sized = dlsym(RTLD_DEFAULT, "free_aligned_sized");
    CHECK(owns != NULL && free_sized != NULL && free_aligned_sized != NULL);
}

static void test_is_ours(void) {
    void *p = malloc(24);
    char *s;
    if (!debug_mode)
        CHECK(owns(p));
    s = strdup("glibc calls our malloc"); /* glibc-internal allocation, our free */
    CHECK(s != NULL);
    if (!debug_mode)
        CHECK(owns(s));
    free(s);
    free(p);
}

static void test_malloc_zero(void) {
    enum { N = 512 };
    static void *p[N];
    int i, j;
    for (i = 0; i < N; i++) {
        p[i] = malloc(0);
        CHECK(p[i] != NULL);
    }
    for (i = 0; i < N; i++)
        for (j = i + 1; j < N; j++)
            CHECK(p[i] != p[j]);
    for (i = 0; i < N; i++)
        free(p[i]);
}

static void test_huge(void) {
    static const size_t huge[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 4096, (size_t)PTRDIFF_MAX,
                                  (size_t)PTRDIFF_MAX - 1, (size_t)PTRDIFF_MAX - 65536,
                                  (size_t)PTRDIFF_MAX + 1};
    size_t i;
    char *keep = malloc(64);
    strcpy(keep, "kept");
    for (i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        size_t n = huge[i];
        void *sentinel = (void *)&keep, *mp = sentinel;
        errno = 0; CHECK(malloc(n) == NULL && errno == ENOMEM);
        errno = 0; CHECK(calloc(n, 1) == NULL && errno == ENOMEM);
        errno = 0; CHECK(calloc(1, n) == NULL && errno == ENOMEM);
        errno = 0; CHECK(realloc(NULL, n) == NULL && errno == ENOMEM);
        errno = 0; CHECK(realloc(keep, n) == NULL && errno == ENOMEM);
        CHECK(strcmp(keep, "kept") == 0);
        errno = 0; CHECK(reallocarray(keep, 1, n) == NULL && errno == ENOMEM);
        errno = 0; CHECK(reallocarray(NULL, n, 1) == NULL && errno == ENOMEM);
        CHECK(strcmp(keep, "kept") == 0);
        CHECK(posix_memalign(&mp, 64, n) == ENOMEM && mp == sentinel);
        errno = 0; CHECK(aligned_alloc(64, n) == NULL && errno == ENOMEM);
        errno = 0; CHECK(memalign(64, n) == NULL && errno == ENOMEM);
        errno = 0; CHECK(valloc(n) == NULL && errno == ENOMEM);
        errno = 0; CHECK(pvalloc(n) == NULL && errno == ENOMEM);
    }
    free(keep);
}

static void test_overflow(void) {
    char *keep = malloc(100);
    strcpy(keep, "old block");
    errno = 0; CHECK(calloc(SIZE_MAX / 2 + 1, 2) == NULL && errno == ENOMEM);
    errno = 0; CHECK(calloc((size_t)1 << 33, (size_t)1 << 33) == NULL && errno == ENOMEM);
    errno = 0; CHECK(reallocarray(keep, SIZE_MAX / 2 + 1, 2) == NULL && errno == ENOMEM);
    errno = 0; CHECK(reallocarray(keep, (size_t)1 << 40, (size_t)1 << 40) == NULL && errno == ENOMEM);
    CHECK(strcmp(keep, "old block") == 0);
    keep = reallocarray(keep, 100, 10); /* a good one moves and keeps the contents */
    CHECK(keep != NULL && strcmp(keep, "old block") == 0);
    free(keep);
}

static void test_posix_memalign(void) {
    static const size_t bad[] = {0, 1, 2, 4, 3, 24, 48, 1000, SIZE_MAX, ((size_t)1 << 20) + 8};
    size_t i, shift, cls;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *sentinel = (void *)&bad, *mp = sentinel;
        CHECK(posix_memalign(&mp, bad[i], 64) == EINVAL);
        CHECK(mp == sentinel);
    }
    for (cls = 0; cls < 32; cls++)
        for (shift = 3; shift <= 20; shift++) {
            size_t a = (size_t)1 << shift, size = 16 * (cls + 1);
            void *mp = NULL;
            CHECK(posix_memalign(&mp, a, size) == 0);
            CHECK(mp != NULL);
            CHECK_ALIGNED(mp, a);
            CHECK(malloc_usable_size(mp) >= size);
            memset(mp, 1, size);
            free(mp);
        }
}

static void test_aligned_alloc(void) {
    static const size_t bad[] = {0, 3, 24, 48, 100, SIZE_MAX};
    size_t i, shift, cls;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        CHECK(aligned_alloc(bad[i], 64) == NULL);
        CHECK(errno == EINVAL);
    }
    for (cls = 0; cls < 32; cls++)
        for (shift = 0; shift <= 20; shift++) {
            size_t a = (size_t)1 << shift, size = 16 * (cls + 1);
            char *p = aligned_alloc(a, size), *q = memalign(a, size);
            CHECK(p != NULL && q != NULL);
            CHECK_ALIGNED(p, a);
            CHECK_ALIGNED(q, a);
            CHECK(malloc_usable_size(p) >= size && malloc_usable_size(q) >= size);
            memset(p, 2, size);
            memset(q, 3, size);
            free_aligned_sized(p, a, size);
            free(q);
        }
}

static void test_memalign_rules(void) {
    char *p;
    p = memalign(0, 10); /* <= 16: as malloc */
    CHECK(p != NULL);
    CHECK_ALIGNED(p, 16);
    free(p);
    p = memalign(24, 10); /* not a power of two: rounded up */
    CHECK(p != NULL);
    CHECK_ALIGNED(p, 32);
    free(p);
    p = memalign(3000, 10);
    CHECK(p != NULL);
    CHECK_ALIGNED(p, 4096);
    free(p);
    errno = 0;
    CHECK(memalign(SIZE_MAX / 2 + 2, 10) == NULL && errno == EINVAL);
}

static void test_valloc(void) {
    size_t sizes[] = {0, 1, 100, 4095, 4096, 4097, 100000};
    size_t i;
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *v = valloc(sizes[i]), *pv = pvalloc(sizes[i]);
        size_t rounded = (sizes[i] + page - 1) / page * page;
        CHECK(v != NULL && pv != NULL);
        CHECK_ALIGNED(v, page);
        CHECK_ALIGNED(pv, page);
        CHECK(malloc_usable_size(v) >= sizes[i]);
        CHECK(malloc_usable_size(pv) >= (rounded ? rounded : page));
        memset(pv, 7, rounded ? rounded : page);
        free(v);
        free(pv);
    }
}

static void test_realloc_zero(void) {
    char *p = malloc(40);
    CHECK(p != NULL);
    CHECK(realloc(p, 0) == NULL); /* freed; freeing it again would abort (abort.c) */
    p = malloc(5000);
    CHECK(realloc(p, 0) == NULL);
    p = realloc(NULL, 0);
    CHECK(p != NULL);
    free(p);
    p = malloc(10);
    CHECK(reallocarray(p, 0, 8) == NULL); /* reallocarray(p, 0, n) == realloc(p, 0) */
}

static void test_free_null(void) {
    free(NULL);
    free_sized(NULL, 0);
    free_aligned_sized(NULL, 64, 0);
    CHECK(malloc_usable_size(NULL) == 0);
}

static void test_sizes_and_realloc(void) {
    size_t n, j;
    unsigned char *p = NULL;
    size_t prev = 0;
    for (n = 1; n < 20000; n = n * 3 / 2 + 1) {
        unsigned char *q = malloc(n);
        CHECK(q != NULL);
        CHECK_ALIGNED(q, 16);
        CHECK(malloc_usable_size(q) >= n);
        memset(q, 9, n);
        free_sized(q, n);
        p = realloc(p, n);
        CHECK(p != NULL);
        for (j = 0; j < prev; j++)
            CHECK(p[j] == (unsigned char)(j * 7));
        for (j = 0; j < n; j++)
            p[j] = (unsigned char)(j * 7);
        prev = n;
    }
    free(p);
    p = calloc(100, 5);
    for (j = 0; j < 500; j++)
        CHECK(p[j] == 0);
    free(p);
}

static const struct test_case cases[] = {
    {"is_ours", test_is_ours},
    {"malloc_zero", test_malloc_zero},
    {"huge", test_huge},
    {"overflow", test_overflow},
    {"posix_memalign", test_posix_memalign},
    {"aligned_alloc", test_aligned_alloc},
    {"memalign_rules", test_memalign_rules},
    {"valloc", test_valloc},
    {"realloc_zero", test_realloc_zero},
    {"free_null", test_free_null},
    {"sizes_and_realloc", test_sizes_and_realloc},
};

/* Runs the case named by argv[1], or every case when there is none. */
int main(int argc, char **argv) {
    debug_mode = debug_mode_from_env();
    page = (size_t)sysconf(_SC_PAGESIZE);
    resolve();
    CHECK(run_cases(cases, sizeof cases / sizeof cases[0], argc > 1 ? argv[1] : NULL) > 0);
    printf("family: ok\n");
    return 0;
}
