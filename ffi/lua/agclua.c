/* A Lua 5.4 interpreter whose every allocation goes through libarenagc: a lua_Alloc over
   agc_realloc and agc_free_sized (which checks Lua's own size bookkeeping: a size larger than
   the block aborts). Runs the scripts named on the command line in one state, then closes it
   and checks the allocator: agc_validate, and every small and medium block given back.
   Exit status 0 only if every script ran without error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arenagc.h"
#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"

static size_t allocs, frees;

static void *agc_lalloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    (void)ud;
    if (nsize == 0) {
        if (ptr != NULL) {
            agc_free_sized(ptr, osize); /* Lua passes the block's size: checked */
            frees++;
        }
        return NULL;
    }
    if (ptr == NULL)
        allocs++;
    return agc_realloc(ptr, nsize);
}

static size_t in_use(void) {
    agc_class_stats_t cs[AGC_NUM_ALL_CLASSES];
    size_t n = 0;
    if (agc_stats_classes(cs, AGC_NUM_ALL_CLASSES) != AGC_NUM_ALL_CLASSES)
        return (size_t)-1;
    for (int i = 0; i < AGC_NUM_ALL_CLASSES; i++)
        n += cs[i].blocks_in_use;
    return n;
}

int main(int argc, char **argv) {
    size_t before = in_use();
    lua_State *L = lua_newstate(agc_lalloc, NULL);
    if (L == NULL) {
        fprintf(stderr, "agclua: cannot create a state\n");
        return 2;
    }
    luaL_openlibs(L);
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        if (luaL_dofile(L, argv[i]) != LUA_OK) {
            fprintf(stderr, "agclua: %s: %s\n", argv[i], lua_tostring(L, -1));
            lua_pop(L, 1);
            failed = 1;
        } else {
            printf("agclua: %s ok\n", argv[i]);
        }
    }
    lua_close(L);
    agc_trim(); /* debug mode: empties the quarantine, whose blocks still count as in use */
    size_t after = in_use();
    if (agc_validate() != AGC_OK) {
        fprintf(stderr, "agclua: agc_validate: %s\n", agc_last_error());
        failed = 1;
    }
    if (allocs != frees) {
        fprintf(stderr, "agclua: %zu allocations, %zu frees\n", allocs, frees);
        failed = 1;
    }
    printf("agclua: %zu allocations through agc_*, all freed; pool blocks in use %zu before, "
           "%zu after\n",
           allocs, before, after);
    if (after > before) {
        fprintf(stderr, "agclua: pool blocks still in use after lua_close\n");
        failed = 1;
    }
    return failed;
}
