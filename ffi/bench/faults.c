/* Heap misuse, one fault per run: `faults CASE SIZE`. Built without any allocator of its own
   and run under each one by faults.sh (glibc as is, others with LD_PRELOAD). Every case ends
   with exit status 0 if the allocator let the program run on; the allocator catching it kills
   the process (SIGABRT with a message, or SIGSEGV at a guard). The writes are real misuse,
   through volatile pointers so the compiler keeps them. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *volatile sink;

static void *get(size_t n) {
    void *p = malloc(n);
    if (p == NULL)
        exit(2);
    memset(p, 1, n);
    return p;
}

int main(int argc, char **argv) {
    if (argc < 3)
        return 2;
    const char *c = argv[1];
    size_t n = strtoul(argv[2], NULL, 10);
    if (!strcmp(c, "double_free")) {
        void *p = get(n);
        free(p);
        free(p);
    } else if (!strcmp(c, "double_free_aba")) {
        void *p = get(n), *q = get(n);
        free(p);
        free(q);
        free(p);
    } else if (!strcmp(c, "double_free_later")) {
        /* freed, other blocks of the size come and go, then freed again */
        void *p = get(n);
        free(p);
        for (int i = 0; i < 100; i++) {
            void *q = get(n), *r = get(n);
            free(q);
            free(r);
            sink = q;
        }
        free(p);
    } else if (!strcmp(c, "free_interior")) {
        char *p = get(n);
        free(p + 16);
    } else if (!strcmp(c, "free_stack")) {
        char local[64];
        sink = local;
        free(local + 16);
    } else if (!strcmp(c, "free_static")) {
        static char global[64];
        free(global + 16);
    } else if (!strcmp(c, "uaf_link_poison")) {
        /* a write after free into the block's first word (tcache poisoning), then allocations
           that would follow it */
        char target[256];
        void **p = get(n);
        free(p);
        ((void *volatile *)p)[0] = (void *)(((uintptr_t)target + 15) & ~(uintptr_t)15);
        void *a = malloc(n), *b = malloc(n);
        sink = a;
        if (b >= (void *)target && b < (void *)(target + 256))
            return 4; /* handed out the stack: the worst outcome */
        sink = b;
    } else if (!strcmp(c, "uaf_write_middle")) {
        char *p = get(n);
        free(p);
        ((volatile char *)p)[n / 2] = 7;
        for (int i = 0; i < 1000; i++) {
            free(get(n));
        }
    } else if (!strcmp(c, "overflow_then_free")) {
        char *p = get(n);
        ((volatile char *)p)[n] = 7; /* one byte past the end */
        free(p);
        free(get(n));
    } else if (!strcmp(c, "overflow_8_then_free")) {
        char *p = get(n);
        memset(p + n, 0x41, 8); /* eight bytes past the end: the next header, if any */
        free(p);
        free(get(n));
        free(get(n));
    } else if (!strcmp(c, "underflow_then_free")) {
        char *p = get(n);
        ((volatile char *)p)[-1] = 7;
        free(p);
    } else if (!strcmp(c, "realloc_freed")) {
        void *p = get(n);
        free(p);
        sink = realloc(p, n * 2);
    } else {
        return 2;
    }
    return 0;
}
