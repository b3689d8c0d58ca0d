/* Run under LD_PRELOAD of libarenagc_malloc.so: prints how glibc served a 1 MiB and a 16 MiB
   block (above glibc's default mmap threshold of 128 KiB, below the 32 MiB the preload library
   sets: a loop of 5..25 MiB blocks must not be an mmap/munmap pair each), and
   how much free memory glibc kept at the top of its heap after a batch of blocks was freed
   (its default trim threshold is 128 KiB; the preload library sets 64 MiB). */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    enum { N = 20, SIZE = 100000 };
    static void *blocks[N];
    struct mallinfo2 mi;
    size_t mapped, mapped16;
    int i;
    void *p = malloc(1 << 20);
    if (p == NULL)
        return 1;
    memset(p, 1, 1 << 20);
    mapped = mallinfo2().hblks;
    free(p);
    p = malloc(16 << 20);
    if (p == NULL)
        return 1;
    memset(p, 3, 4096);
    mapped16 = mallinfo2().hblks;
    free(p);
    /* 2 MB of 100 kB blocks (below glibc's default mmap threshold and above its tcache
       sizes, so each freed one joins the heap top), freed in reverse. */
    for (i = 0; i < N; i++) {
        blocks[i] = malloc(SIZE);
        if (blocks[i] == NULL)
            return 1;
        memset(blocks[i], 2, SIZE);
    }
    for (i = N - 1; i >= 0; i--)
        free(blocks[i]);
    mi = mallinfo2();
    printf("mapped=%zu mapped16=%zu keepcost=%zu\n", mapped, mapped16, mi.keepcost);
    return 0;
}
