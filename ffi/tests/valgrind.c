/* Run under valgrind's memcheck by valgrind.rs: a correct program (clean report), a read after
   agc_free of a 40-byte block (reported at this file's line), a leaked agc_malloc block
   (definitely lost, with its size), and a freed object reused by agc_decref. argv[1] names the
   case. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arenagc.h"

static int clean(void) {
    void *v[1000];
    for (int i = 0; i < 1000; i++) {
        v[i] = agc_malloc((size_t)(16 + (i * 37) % 3000));
        if (v[i] == NULL)
            return 1;
        memset(v[i], i & 0xff, 16);
    }
    for (int i = 0; i < 1000; i += 2)
        agc_free(v[i]);
    for (int i = 1; i < 1000; i += 2)
        v[i] = agc_realloc(v[i], 5000);
    for (int i = 1; i < 1000; i += 2)
        agc_free(v[i]);
    return 0;
}

int main(int argc, char **argv) {
    const char *c = argc > 1 ? argv[1] : "";
    if (strcmp(c, "clean") == 0)
        return clean();
    if (strcmp(c, "use_after_free") == 0) {
        volatile unsigned char *p = agc_malloc(40);
        p[0] = 1;
        agc_free((void *)p);
        printf("%d\n", p[5]); /* the read memcheck reports */
        return 0;
    }
    if (strcmp(c, "leak") == 0) {
        void *p = agc_malloc(100);
        memset(p, 1, 100);
        p = NULL;
        return 0;
    }
    fprintf(stderr, "unknown case %s\n", c);
    return 2;
}
