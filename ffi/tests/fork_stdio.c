/* fork under load, run under LD_PRELOAD (ffi/tests/preload.rs).
 *
 *   fork_stdio stdio    4 threads allocate and free (much of it across threads) while 3 threads
 *                       use stdio (fopen/fprintf/fflush/fclose; getline, which allocates under
 *                       the FILE lock; fflush(NULL), which takes stdio's list lock), and the main
 *                       thread forks 1000 times. Each child allocates, frees, starts a thread that
 *                       does too, checks the allocator (agc_validate) and exits 0. This is the lock
 *                       order of glibc bug 19431: fork takes stdio's list lock after the atfork
 *                       prepare handlers, so a thread in malloc under a FILE lock must never wait
 *                       for the forking thread.
 *   fork_stdio signal   a single-threaded process forks 1000 times while a profiling timer's
 *                       signal, whose handler forks too (fork is async-signal-safe), lands now
 *                       and then in the middle of a fork: the handler's fork re-enters the
 *                       allocator's prepare handler on the same thread.
 *
 * A hang is caught by alarm(): the process dies of SIGALRM and the test sees it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define FORKS 1000
#define WORKERS 4
#define RING 4096

static atomic_int stop;

/* ---- cross-thread hand-off: a mutex-protected ring of blocks ---- */
struct msg {
    unsigned char *p;
    size_t n;
};
static struct msg ring[RING];
static size_t ring_head, ring_len;
static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;

static int push(unsigned char *p, size_t n) {
    int ok = 0;
    pthread_mutex_lock(&ring_lock);
    if (ring_len < RING) {
        ring[(ring_head + ring_len++) % RING] = (struct msg){p, n};
        ok = 1;
    }
    pthread_mutex_unlock(&ring_lock);
    return ok;
}

static int pop(struct msg *m) {
    int ok = 0;
    pthread_mutex_lock(&ring_lock);
    if (ring_len > 0) {
        *m = ring[ring_head];
        ring_head = (ring_head + 1) % RING;
        ring_len--;
        ok = 1;
    }
    pthread_mutex_unlock(&ring_lock);
    return ok;
}

static void check_free(unsigned char *p, size_t n) {
    if (p[0] != (unsigned char)n || p[n - 1] != (unsigned char)(n >> 3)) {
        fprintf(stderr, "block %p of %zu bytes corrupted\n", (void *)p, n);
        abort();
    }
    free(p);
}

static uint64_t next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void *worker(void *arg) {
    uint64_t s = (uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
    enum { LIVE = 256 };
    struct msg live[LIVE] = {{0}};
    while (!atomic_load(&stop)) {
        size_t i = next(&s) % LIVE, n = 8 + next(&s) % 1000;
        struct msg m;
        if (live[i].p) {
            if (next(&s) % 2 == 0 || !push(live[i].p, live[i].n))
                check_free(live[i].p, live[i].n);
        }
        live[i].p = malloc(n);
        CHECK(live[i].p != NULL);
        live[i].n = n;
        live[i].p[0] = (unsigned char)n;
        live[i].p[n - 1] = (unsigned char)(n >> 3);
        if (pop(&m))
            check_free(m.p, m.n); /* usually another thread's block */
    }
    for (size_t i = 0; i < LIVE; i++)
        if (live[i].p)
            check_free(live[i].p, live[i].n);
    return NULL;
}

static char dir[] = "/tmp/agc_fork_stdio_XXXXXX";

static void *stdio_writer(void *arg) {
    char path[64];
    (void)arg;
    snprintf(path, sizeof path, "%s/w", dir);
    while (!atomic_load(&stop)) {
        FILE *f = fopen(path, "w"); /* fopen/fclose take stdio's list lock */
        CHECK(f != NULL);
        for (int i = 0; i < 200; i++) /* lines over getline's first 120 bytes: it reallocs */
            fprintf(f, "line %d of a file written while the main thread forks %0*d\n", i,
                    100 + (i % 7) * 60, i);
        CHECK(fflush(f) == 0);
        CHECK(fclose(f) == 0);
    }
    return NULL;
}

static void *stdio_reader(void *arg) {
    char path[64];
    (void)arg;
    snprintf(path, sizeof path, "%s/w", dir);
    while (!atomic_load(&stop)) {
        FILE *f = fopen(path, "r");
        char *line = NULL;
        size_t cap = 0;
        if (f == NULL)
            continue; /* not written yet */
        while (getline(&line, &cap, f) > 0) { /* realloc under the FILE lock */
            free(line); /* so the next getline allocates again */
            line = NULL;
            cap = 0;
        }
        free(line);
        fclose(f);
    }
    return NULL;
}

static void *stdio_flusher(void *arg) {
    (void)arg;
    while (!atomic_load(&stop))
        fflush(NULL); /* stdio's list lock, then each FILE's lock in turn */
    return NULL;
}

static void *child_thread(void *arg) {
    void *p[100];
    (void)arg;
    for (int i = 0; i < 100; i++) {
        p[i] = malloc((size_t)i * 9 + 1);
        if (!p[i])
            return (void *)1;
    }
    for (int i = 0; i < 100; i++)
        free(p[i]);
    return NULL;
}

/* The child: only this thread exists; the allocator must work, threads included. */
static void child_work(int (*validate)(void)) {
    void *p[500];
    pthread_t t;
    void *r = (void *)1;
    for (int i = 0; i < 500; i++) {
        p[i] = malloc((size_t)(i % 700) + 1);
        if (!p[i])
            _exit(3);
        memset(p[i], 1, (size_t)(i % 700) + 1);
    }
    for (int i = 0; i < 500; i += 2)
        free(p[i]);
    if (pthread_create(&t, NULL, child_thread, NULL) != 0 || pthread_join(t, &r) != 0 || r)
        _exit(4);
    for (int i = 1; i < 500; i += 2)
        free(p[i]);
    if (validate && validate() != 0)
        _exit(5);
    _exit(0);
}

static void wait_child(pid_t pid) {
    int status = 0;
    pid_t r;
    do
        r = waitpid(pid, &status, 0);
    while (r < 0 && errno == EINTR);
    CHECK(r == pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "child ended with status %#x\n", status);
        exit(1);
    }
}

static int run_stdio(void) {
    pthread_t w[WORKERS], io[3];
    int (*validate)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "agc_validate");
    struct msg m;
    CHECK(validate != NULL); /* the preload library exports the agc_ API too */
    CHECK(mkdtemp(dir) != NULL);
    for (int i = 0; i < WORKERS; i++)
        CHECK(pthread_create(&w[i], NULL, worker, (void *)(uintptr_t)(i + 1)) == 0);
    CHECK(pthread_create(&io[0], NULL, stdio_writer, NULL) == 0);
    CHECK(pthread_create(&io[1], NULL, stdio_reader, NULL) == 0);
    CHECK(pthread_create(&io[2], NULL, stdio_flusher, NULL) == 0);
    for (int n = 0; n < FORKS; n++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0)
            child_work(validate);
        wait_child(pid);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < WORKERS; i++)
        CHECK(pthread_join(w[i], NULL) == 0);
    CHECK(pthread_join(io[0], NULL) == 0);
    CHECK(pthread_join(io[1], NULL) == 0);
    CHECK(pthread_join(io[2], NULL) == 0);
    while (pop(&m))
        check_free(m.p, m.n);
    CHECK(validate() == 0);
    {
        char path[64];
        snprintf(path, sizeof path, "%s/w", dir);
        unlink(path);
        rmdir(dir);
    }
    printf("fork_stdio stdio: ok\n");
    return 0;
}

/* ---- fork from a signal handler while the same thread forks ---- */
/* A single-threaded process: glibc then takes none of its own fork locks (a multi-threaded
   glibc holds its atfork lock across fork, and a second fork on the same thread would wait on
   it forever, whatever the allocator does), so the handler's fork runs the allocator's prepare
   handler again, on top of the interrupted one. SIGPROF ticks every 50 us of CPU time, most of
   it spent in fork here. */
static volatile sig_atomic_t handler_forks;

static void on_prof(int sig) {
    int saved = errno;
    pid_t pid = fork(); /* async-signal-safe */
    (void)sig;
    if (pid == 0)
        _exit(0);
    if (pid > 0) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        handler_forks = handler_forks + 1;
    }
    errno = saved;
}

static int run_signal(void) {
    struct sigaction sa;
    struct itimerval every = {{0, 50}, {0, 50}}, off = {{0, 0}, {0, 0}};
    void *warm = malloc(100); /* the allocator is set up (its fork handlers registered) */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_prof;
    sa.sa_flags = SA_RESTART;
    CHECK(sigaction(SIGPROF, &sa, NULL) == 0);
    CHECK(setitimer(ITIMER_PROF, &every, NULL) == 0);
    for (int n = 0; n < FORKS; n++) {
        pid_t pid = fork(); /* no malloc in this loop: only forks, as the handler does */
        CHECK(pid >= 0);
        if (pid == 0)
            _exit(0);
        wait_child(pid);
    }
    CHECK(setitimer(ITIMER_PROF, &off, NULL) == 0);
    free(warm);
    {
        /* the allocator still works, on this thread and on a new one */
        pthread_t t;
        void *r = (void *)1;
        CHECK(pthread_create(&t, NULL, child_thread, NULL) == 0 && pthread_join(t, &r) == 0);
        CHECK(r == NULL);
    }
    printf("fork_stdio signal: ok (%d forks from the handler)\n", (int)handler_forks);
    return 0;
}

int main(int argc, char **argv) {
    alarm(240); /* a hang kills the test (SIGALRM) instead of blocking CI */
    if (argc > 1 && strcmp(argv[1], "stdio") == 0)
        return run_stdio();
    if (argc > 1 && strcmp(argv[1], "signal") == 0)
        return run_signal();
    fprintf(stderr, "usage: fork_stdio stdio|signal\n");
    return 2;
}
