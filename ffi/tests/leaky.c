/*
 * An ordinary C program with a known leak, for tracing under LD_PRELOAD (ffi/tests/
 * preload_trace.rs): leak_some_memory keeps 1000 blocks of 48 bytes and one of 100000 bytes
 * that nothing frees; churn allocates and frees. No arenagc header: it only calls malloc.
 * `leaky signal DIR`: after leaking, it sends itself SIGUSR2 and waits (up to 20 s) for
 * DIR/trace.<pid>.1.folded, the last file of the report the preload library writes on that
 * signal (ARENAGC_TRACE_SIGNAL=USR2), then goes on.
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

static int wait_for_signal_report(const char *dir) {
    char path[4096];
    struct stat st;
    struct timespec ms = {0, 10 * 1000 * 1000};
    int i;
    snprintf(path, sizeof path, "%s/trace.%d.1.folded", dir, (int)getpid());
    if (kill(getpid(), SIGUSR2) != 0)
        return 0;
    for (i = 0; i < 2000; i++) {
        if (stat(path, &st) == 0)
            return 1;
        nanosleep(&ms, NULL);
    }
    return 0;
}

int main(int argc, char **argv) {
    churn();
    leak_some_memory();
    if (argc == 3 && strcmp(argv[1], "signal") == 0 && !wait_for_signal_report(argv[2])) {
        printf("leaky: no report on the signal\n");
        return 1;
    }
    churn();
    printf("leaky: done\n");
    return 0;
}
