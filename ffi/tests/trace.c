/*
 * tracemalloc from C (issue 11): agc_trace_start / _start_sampled / _stop / _is_tracing,
 * agc_trace_get_traced_memory / _reset_peak, snapshots with their statistics by line, file
 * and traceback, compare, dump / load, pprof and folded output, and their bad inputs. Two
 * functions allocate known sizes; the statistics name them, their file and their lines (built
 * with -g). Built against libarenagc.so and libarenagc.a and run one case per process by
 * ffi/tests/trace.rs. Prints "trace: ok" on success; any failed CHECK exits 1.
 */
#include "arenagc.h"
#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void *one[100], *two[10];
static unsigned line_one, line_two;

__attribute__((noinline)) void alloc_site_one(void) {
    int i;
    for (i = 0; i < 100; i++) {
        one[i] = agc_malloc(256); line_one = __LINE__;
    }
}

__attribute__((noinline)) void alloc_site_two(void) {
    int i;
    for (i = 0; i < 10; i++) {
        two[i] = agc_malloc(5000); line_two = __LINE__;
    }
}

/* What a statistics walk found for the two sites. */
struct found {
    size_t size[2], count[2];
    intptr_t size_diff[2], count_diff[2];
    unsigned line[2];
    int calls, file_ok;
};

static int visitor(const char *filename, unsigned int lineno, const char *function, size_t size,
                   intptr_t size_diff, size_t count, intptr_t count_diff, void *data) {
    struct found *f = data;
    int which = -1;
    f->calls++;
    CHECK(filename != NULL);
    if (function != NULL && strcmp(function, "alloc_site_one") == 0)
        which = 0;
    if (function != NULL && strcmp(function, "alloc_site_two") == 0)
        which = 1;
    if (which < 0)
        return 0;
    f->file_ok += strstr(filename, "trace.c") != NULL;
    f->size[which] += size;
    f->count[which] += count;
    f->size_diff[which] += size_diff;
    f->count_diff[which] += count_diff;
    f->line[which] = lineno;
    return 0;
}

static int stop_at_first(const char *filename, unsigned int lineno, const char *function,
                         size_t size, intptr_t size_diff, size_t count, intptr_t count_diff,
                         void *data) {
    (void)filename, (void)lineno, (void)function, (void)size, (void)size_diff, (void)count,
        (void)count_diff;
    ++*(int *)data;
    return 1;
}

static struct found stats(const agc_trace_snapshot_t *s, const char *key) {
    struct found f;
    memset(&f, 0, sizeof f);
    CHECK(agc_trace_snapshot_statistics(s, key, visitor, &f) == f.calls);
    return f;
}

static void path(char *buf, size_t n, const char *what) {
    snprintf(buf, n, "/tmp/arenagc-trace-test-%ld.%s", (long)getpid(), what);
}

static void test_statistics(void) {
    size_t current = 0, peak = 0;
    agc_trace_snapshot_t *s1, *s2, *loaded;
    struct found f;
    char file[128];
    FILE *fp;
    unsigned char head[4];
    int i, n = 0;

    CHECK(agc_trace_is_tracing() == 0);
    CHECK(agc_trace_start(4) == AGC_OK);
    CHECK(agc_trace_is_tracing() == 1);
    alloc_site_one();
    alloc_site_two();
    CHECK(agc_trace_get_traced_memory(&current, &peak) == AGC_OK);
    CHECK(current >= 100 * 256 + 10 * 5000 && peak >= current);

    s1 = agc_trace_snapshot();
    CHECK(s1 != NULL);
    f = stats(s1, "lineno");
    CHECK(f.size[0] == 25600 && f.count[0] == 100 && f.line[0] == line_one);
    CHECK(f.size[1] == 50000 && f.count[1] == 10 && f.line[1] == line_two);
    CHECK(f.file_ok == 2 && f.size_diff[0] == 0);
    f = stats(s1, "traceback");
    CHECK(f.size[0] == 25600 && f.size[1] == 50000);
    /* the walk stops when the visitor says so */
    CHECK(agc_trace_snapshot_statistics(s1, "lineno", stop_at_first, &n) == 1 && n == 1);

    /* free half of site one: compare names it */
    for (i = 0; i < 50; i++)
        agc_free(one[i]);
    s2 = agc_trace_snapshot();
    memset(&f, 0, sizeof f);
    CHECK(agc_trace_snapshot_compare(s2, s1, "lineno", visitor, &f) == f.calls);
    CHECK(f.size[0] == 12800 && f.size_diff[0] == -12800 && f.count_diff[0] == -50);
    CHECK(f.size_diff[1] == 0 && f.size[1] == 50000);

    /* dump, load, compare the loaded one with the live one */
    path(file, sizeof file, "snap");
    CHECK(agc_trace_snapshot_dump(s1, file) == AGC_OK);
    loaded = agc_trace_snapshot_load(file);
    CHECK(loaded != NULL);
    memset(&f, 0, sizeof f);
    CHECK(agc_trace_snapshot_compare(s2, loaded, "lineno", visitor, &f) > 0);
    CHECK(f.size_diff[0] == -12800 && f.line[0] == line_one);
    remove(file);

    /* pprof and folded files */
    path(file, sizeof file, "pb");
    CHECK(agc_trace_snapshot_write_pprof(s2, file) == AGC_OK);
    fp = fopen(file, "rb");
    CHECK(fp != NULL && fread(head, 1, 2, fp) == 2);
    CHECK(head[0] == 0x0a); /* field 1 (sample_type), length-delimited */
    fclose(fp);
    remove(file);
    path(file, sizeof file, "folded");
    CHECK(agc_trace_snapshot_write_folded(s2, file) == AGC_OK);
    remove(file);

    CHECK(agc_trace_snapshot_free(s1) == AGC_OK);
    CHECK(agc_trace_snapshot_free(s2) == AGC_OK);
    CHECK(agc_trace_snapshot_free(loaded) == AGC_OK);
    agc_trace_reset_peak();
    CHECK(agc_trace_get_traced_memory(&current, &peak) == AGC_OK && peak == current);
    agc_trace_stop();
    CHECK(agc_trace_is_tracing() == 0);
    CHECK(agc_trace_get_traced_memory(&current, &peak) == AGC_OK && current == 0 && peak == 0);
    for (i = 50; i < 100; i++)
        agc_free(one[i]);
    for (i = 0; i < 10; i++)
        agc_free(two[i]);
}

static void test_bad_input(void) {
    size_t c;
    struct found f;
    agc_trace_snapshot_t *s;
    FILE *fp;
    char file[128];

    CHECK(agc_trace_start(0) == AGC_ERR_VALUE);
    CHECK_ERR("agc_trace_start: the number of frames must be in range");
    CHECK(agc_trace_start(257) == AGC_ERR_VALUE);
    CHECK(agc_trace_start_sampled(0, 4) == AGC_ERR_VALUE);
    CHECK_ERR("agc_trace_start_sampled: the sampling mean");
    CHECK(agc_trace_is_tracing() == 0);
    CHECK(agc_trace_get_traced_memory(NULL, &c) == AGC_ERR_NULL);
    CHECK(agc_trace_get_traced_memory(&c, NULL) == AGC_ERR_NULL);
    CHECK_ERR("agc_trace_get_traced_memory: current or peak is NULL");

    CHECK(agc_trace_snapshot_statistics(NULL, "lineno", visitor, &f) == AGC_ERR_NULL);
    CHECK_ERR("agc_trace_snapshot_statistics: snapshot is NULL");
    s = agc_trace_snapshot(); /* not tracing: empty */
    CHECK(s != NULL);
    memset(&f, 0, sizeof f);
    CHECK(agc_trace_snapshot_statistics(s, "lineno", visitor, &f) == 0);
    CHECK(agc_trace_snapshot_statistics(s, "bogus", visitor, &f) == AGC_ERR_VALUE);
    CHECK_ERR("unknown key \"bogus\"");
    CHECK(agc_trace_snapshot_statistics(s, NULL, visitor, &f) == AGC_ERR_NULL);
    CHECK(agc_trace_snapshot_statistics(s, "lineno", NULL, &f) == AGC_ERR_NULL);
    CHECK(agc_trace_snapshot_compare(s, NULL, "lineno", visitor, &f) == AGC_ERR_NULL);
    CHECK_ERR("old snapshot is NULL");
    CHECK(agc_trace_snapshot_dump(s, NULL) == AGC_ERR_NULL);
    CHECK(agc_trace_snapshot_dump(NULL, "/tmp/x") == AGC_ERR_NULL);
    CHECK(agc_trace_snapshot_dump(s, "/nonexistent-dir/x/y") == AGC_ERR_IO);
    CHECK_ERR("agc_trace_snapshot_dump: /nonexistent-dir/x/y");
    CHECK(agc_trace_snapshot_write_pprof(s, "/nonexistent-dir/x/y") == AGC_ERR_IO);

    /* a file that is not a snapshot, a missing one */
    path(file, sizeof file, "bad");
    fp = fopen(file, "wb");
    CHECK(fp != NULL);
    fputs("AGCTRACE but then nothing useful", fp);
    fclose(fp);
    CHECK(agc_trace_snapshot_load(file) == NULL);
    CHECK_ERR("not an arenagc trace snapshot");
    remove(file);
    CHECK(agc_trace_snapshot_load("/nonexistent-dir/snap") == NULL);
    CHECK_ERR("agc_trace_snapshot_load: /nonexistent-dir/snap");
    CHECK(agc_trace_snapshot_load(NULL) == NULL);
    CHECK_ERR("path is NULL");

    /* freed and foreign handles */
    CHECK(agc_trace_snapshot_free(s) == AGC_OK);
    CHECK(agc_trace_snapshot_free(s) == AGC_ERR_STATE);
    CHECK_ERR("is not a live snapshot");
    CHECK(agc_trace_snapshot_statistics(s, "lineno", visitor, &f) == AGC_ERR_STATE);
    CHECK(agc_trace_snapshot_statistics((agc_trace_snapshot_t *)&f, "lineno", visitor, &f) ==
          AGC_ERR_STATE);
    CHECK(agc_trace_snapshot_free(NULL) == AGC_OK);
}

static void test_sampled(void) {
    static void *blocks[20000];
    agc_trace_snapshot_t *s;
    struct found f;
    int i;
    CHECK(agc_trace_start_sampled(4096, 8) == AGC_OK);
    for (i = 0; i < 20000; i++)
        blocks[i] = agc_malloc(100);
    s = agc_trace_snapshot();
    f = stats(s, "filename");
    (void)f;
    memset(&f, 0, sizeof f);
    CHECK(agc_trace_snapshot_statistics(s, "lineno", visitor, &f) > 0);
    agc_trace_snapshot_free(s);
    {
        size_t current, peak;
        CHECK(agc_trace_get_traced_memory(&current, &peak) == AGC_OK);
        /* 2,000,000 bytes; the estimate's standard deviation is about 4.5% */
        CHECK(current > 1400000 && current < 2600000);
    }
    agc_trace_stop();
    for (i = 0; i < 20000; i++)
        agc_free(blocks[i]);
}

static const struct test_case cases[] = {
    {"statistics", test_statistics},
    {"bad_input", test_bad_input},
    {"sampled", test_sampled},
};

int main(int argc, char **argv) {
    CHECK(argc == 2);
    CHECK(run_cases(cases, sizeof cases / sizeof cases[0], argv[1]) == 1);
    printf("trace: ok\n");
    return 0;
}
