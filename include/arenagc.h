/*
 * arenagc.h - the C interface of arenagc (libarenagc.so / libarenagc.a).
 *
 * arenagc is CPython's memory system rebuilt in Rust. This header declares
 *   - the allocator: a pymalloc-style allocator (blocks of up to 512 bytes from 4 KiB pools in
 *     256 KiB arenas; larger or over-aligned requests go to the system allocator);
 *   - objects: reference-counted objects of types described by agc_type (CPython's type
 *     slots: traverse, clear, finalize, del, dealloc), weak references with callbacks;
 *   - the cycle collector: CPython's generational collector and its gc module (collect,
 *     thresholds, counts, stats, debug flags, garbage, freeze, callbacks, get_objects,
 *     get_referrers, get_referents), per runtime (agc_runtime).
 *
 * Conventions
 *   - Every name starts with agc_ (functions, types) or AGC_ (macros).
 *   - Functions that allocate memory keep C semantics: NULL on failure with errno set (ENOMEM,
 *     or EINVAL for a bad alignment). Functions returning an object return NULL on failure.
 *     Other functions return AGC_OK (0), a count, or a negative AGC_ERR_*.
 *   - A NULL object, type, runtime, visitor or output pointer is an error, never a crash.
 *   - Every failure also records a message for the calling thread: agc_last_error().
 *   - Freeing a pointer that is not a live block (an interior, stack, static or already freed
 *     pointer) aborts the process with a message naming the fault. Double frees are caught
 *     in debug mode (environment ARENAGC_DEBUG=1 at start) while the block is in the
 *     quarantine (the last 512 frees), and in the default mode when the block is the one
 *     most recently freed in its pool.
 *   - The allocation functions are thread-safe; a block may be freed on any thread. An
 *     object may be used only by the thread attached to its runtime (see "Objects" below).
 *
 * Linking: -larenagc (shared), or libarenagc.a plus -lpthread -ldl -lm -lrt -lgcc_s (static).
 * The malloc replacement libarenagc_malloc.so (for LD_PRELOAD) exports these same functions
 * and the whole malloc family; ARENAGC_STATS=1 makes it print agc_stats_print's table to
 * stderr at exit.
 *
 * C99 and C++ compatible. The layout of every struct and the signature of every function are
 * checked against the library by ffi/tests/c_abi.rs.
 */
#ifndef ARENAGC_H
#define ARENAGC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the library this header describes (agc_version() returns the library's string).
   AGC_VERSION_NUMBER orders versions: MAJOR * 1000000 + MINOR * 1000 + PATCH. ABI policy
   (ffi/README.md): the SONAME is libarenagc.so.MAJOR; a release with the same MAJOR only adds
   (functions, constants), so a program built against MAJOR.MINOR runs with any library
   MAJOR.x where x >= MINOR. */
#define AGC_VERSION_MAJOR 0
#define AGC_VERSION_MINOR 1
#define AGC_VERSION_PATCH 0
#define AGC_VERSION_NUMBER (AGC_VERSION_MAJOR * 1000000 + AGC_VERSION_MINOR * 1000 + AGC_VERSION_PATCH)
#define AGC_VERSION_STRING "0.1.0"

/* Number of size classes: blocks of 16, 32, ..., 512 bytes. */
#define AGC_NUM_CLASSES 32

/* Number of medium size classes: blocks of 640, 768, ..., 4096 bytes (128-byte steps), served
   from 16 KiB runs; and of all classes (agc_stats_classes). */
#define AGC_NUM_MEDIUM_CLASSES 28
#define AGC_NUM_ALL_CLASSES 60

/* Return codes of the functions that do not return a pointer. */
#define AGC_OK 0          /* success */
#define AGC_ERR_NULL (-1) /* a required pointer argument was NULL */
#define AGC_ERR_IO (-2)   /* writing to a FILE* failed */
#define AGC_ERR_PANIC (-3) /* an internal error was caught; see agc_last_error() */
#define AGC_ERR_VALUE (-4) /* an argument is out of range: a bad generation, a type that cannot
                              do what was asked, an index past the end, unknown flag bits */
#define AGC_ERR_STATE (-5) /* not allowed now: a refcount already 0, a runtime still attached,
                              detaching a runtime that is not the innermost attached one */

/* Statistics of one size class. */
typedef struct agc_class_stats {
    size_t block_size;    /* bytes per block: 16 * (class + 1) */
    size_t pools;         /* pools in use for this class */
    size_t blocks_in_use; /* blocks handed out and not yet freed (a block freed by another
                             thread counts until its pool's owner takes it back) */
    size_t blocks_free;   /* free blocks in this class's pools */
} agc_class_stats_t;

/* A snapshot of the allocator, filled by agc_stats(). */
typedef struct agc_stats {
    agc_class_stats_t classes[AGC_NUM_CLASSES];
    uint64_t arenas_allocated_total; /* arenas mapped since the start */
    uint64_t arenas_released_total;  /* arenas given back to the OS since the start */
    uint64_t arenas_current;         /* arenas mapped now */
    uint64_t arenas_peak;            /* highest arenas_current seen */
    uint64_t arenas_free;            /* of arenas_current, fully free ones still mapped: the
                                        spare, and those waiting out the purge delay (100 ms,
                                        ARENAGC_PURGE_DELAY; agc_trim() unmaps them at once) */
    size_t pools_free;               /* pools in mapped arenas holding no class (free in
                                        their arena, or empty in a thread's pool cache) */
    size_t large_bytes;              /* bytes (usable size) held in the system allocator */
    size_t large_blocks;             /* blocks held in the system allocator */
    int debug;                       /* 1 if debug mode (guards, quarantine) is on */
} agc_stats_t;

/* Allocate size bytes aligned to 16. agc_malloc(0) returns a distinct live pointer.
   NULL with errno = ENOMEM on failure. */
void *agc_malloc(size_t size);

/* Allocate n * size zeroed bytes. NULL with errno = ENOMEM if n * size overflows or memory
   is short. */
void *agc_calloc(size_t n, size_t size);

/* Resize p, as glibc's realloc: p == NULL allocates; size == 0 frees p and returns NULL; on
   failure NULL with errno = ENOMEM, and p is still valid. */
void *agc_realloc(void *p, size_t size);

/* Free p (NULL does nothing). Any block from this library may be passed, from any thread;
   small or large is decided by the address map. */
void agc_free(void *p);

/* Free p, allocated with size bytes. A size larger than the block aborts. */
void agc_free_sized(void *p, size_t size);

/* Allocate size bytes aligned to align, which must be a power of two (any size, including one
   not a multiple of align). Bad alignment: NULL, errno = EINVAL. Out of memory: NULL,
   errno = ENOMEM. */
void *agc_aligned_alloc(size_t align, size_t size);

/* Usable bytes of the live block p (at least what was asked for); 0 for NULL. */
size_t agc_usable_size(const void *p);

/* Fill *out with a snapshot of the statistics. AGC_OK, or AGC_ERR_NULL if out is NULL. */
int agc_stats(agc_stats_t *out);

/* Fill out[0..n) with the statistics of every size class, the small ones then the medium ones
   (for a medium class, pools counts 16 KiB runs); agc_stats_t has the small ones only. Returns
   the number of classes (AGC_NUM_ALL_CLASSES), which may exceed n (out may then be NULL with
   n = 0, to ask); AGC_ERR_NULL if out is NULL and n > 0. */
intptr_t agc_stats_classes(agc_class_stats_t *out, size_t n);

/* Print the statistics table (as sys._debugmallocstats() does) to f. AGC_OK, AGC_ERR_NULL if
   f is NULL, AGC_ERR_IO if writing fails. */
int agc_stats_print(FILE *f);

/* Give back the empty pools the calling thread keeps cached (and the debug quarantine), unmap
   the free arenas waiting out the purge delay (one spare stays), and ask glibc to return its
   free memory (malloc_trim(0); with libarenagc.so that is the program's own heap too). */
void agc_trim(void);

/* 1 if p points into one of the allocator's arenas (a small block), else 0. Any pointer may
   be passed, including NULL, freed and foreign pointers. */
int agc_owns(const void *p);

/* Check the calling thread's heap and every arena against the allocator's invariants (for
   tests). AGC_OK, or AGC_ERR_STATE with the broken invariant in agc_last_error(). */
int agc_validate(void);

/* The message of the most recent failed agc_ call on the calling thread, or NULL if none has
   failed. The string stays valid until the next agc_ call on this thread. Never allocates. */
const char *agc_last_error(void);

/* The library's version, e.g. "0.1.0" (static storage). */
const char *agc_version(void);

/* =========================================================================================
 * Objects
 *
 * Memory of an object (the object pointer points at its agc_object header):
 *
 *   GC type (AGC_TPFLAGS_HAVE_GC): [ GC head (16 bytes, the collector's) ][ agc_object ][ payload ]
 *   other types:                                                          [ agc_object ][ payload ]
 *
 * A C object type is a struct whose first member is an agc_object, and a static agc_type
 * describing it. Objects are created with agc_new (refcount 1, payload zeroed, not tracked);
 * a GC type's constructor fills the payload and then calls agc_track. References are
 * counted with agc_incref / agc_decref; the last agc_decref calls the type's dealloc, which
 * for a GC type does what CPython's tp_dealloc does:
 *
 *     static void list_dealloc(agc_object *self) {
 *         if (agc_finalize_from_dealloc(self) == 1) return;  // only if the type has finalize
 *         agc_untrack(self);
 *         ...agc_decref every reference the object holds, free what it owns...
 *         agc_object_del(self);                              // clears weakrefs, frees memory
 *     }
 *
 * The collector finds unreachable cycles through traverse, runs finalize (once per object,
 * PEP 442; the object may resurrect itself), and calls clear on the rest, which must drop the
 * references the object holds (setting the fields to NULL first), so that refcounting frees
 * the cycle. A cycle holding an object with a legacy del is never freed: it goes to garbage.
 *
 * Threads: reference counts are plain integers. An object may be used only while its runtime
 * (the one current when it was created) is the calling thread's current runtime: a thread's
 * own default runtime (so not while that thread is attached to another), or an agc_runtime it
 * attached to (agc_runtime_attach waits while another thread is attached, like a GIL). An
 * object with weak references used under the wrong runtime aborts with a message.
 * ========================================================================================= */

typedef struct agc_type agc_type;

/* The header every object starts with (16 bytes). */
typedef struct agc_object {
    intptr_t refcnt;      /* strong references; the object is deallocated at 0 */
    const agc_type *type; /* the type; it outlives every object of it */
} agc_object;

/* Called by a traverse function for each referent, and by agc_gc_get_objects & co for each
   object; a nonzero return stops the walk (and is returned by traverse). */
typedef int (*agc_visitproc)(agc_object *obj, void *arg);
/* Calls visit(referent, arg) for each object obj holds a strong reference to; returns the
   first nonzero result of visit, else 0. Must not change anything. */
typedef int (*agc_traverseproc)(agc_object *obj, agc_visitproc visit, void *arg);
/* Drops the references obj holds (breaking cycles); returns 0. */
typedef int (*agc_inquiry)(agc_object *obj);
/* A function of one object: finalize, del, dealloc. */
typedef void (*agc_destructor)(agc_object *obj);

/* flags: objects have a GC head and may be tracked by the collector. */
#define AGC_TPFLAGS_HAVE_GC (UINT64_C(1) << 14)
/* flags, bits 56..63: the version of struct agc_type a type is written for. This is how the
   struct grows under the ABI policy (as CPython gates newer slots behind tp_flags bits): a
   later version adds fields after item_size and says so here; the library reads only the
   fields of the version a type declares, and refuses (AGC_ERR_VALUE) a type of a version it
   does not know rather than ignore fields it cannot see. 0 (the fields below) is the only
   version so far, so existing types need no change. Any other flag bit is refused too. */
#define AGC_TPFLAGS_VERSION_SHIFT 56
#define AGC_TPFLAGS_VERSION(v) ((uint64_t)(v) << AGC_TPFLAGS_VERSION_SHIFT)
#define AGC_TYPE_VERSION_CURRENT 0
/* weaklist_offset: weak references supported without a slot (GC types only). */
#define AGC_WEAKLIST_SIDE_TABLE (-1)

/* A type: the Rust TypeObject of arenagc, unchanged. Must outlive every object of it. */
struct agc_type {
    const char *name;         /* NUL-terminated, for debug output (may be NULL) */
    size_t basic_size;        /* bytes of the agc_object header plus payload (>= 16) */
    uint64_t flags;           /* AGC_TPFLAGS_* */
    intptr_t weaklist_offset; /* 0: no weak references; > 0: offset from the object pointer
                                 of an agc_object * slot (NULL-initialized, the library owns
                                 it) heading the list of weak references; or
                                 AGC_WEAKLIST_SIDE_TABLE (GC types) */
    agc_traverseproc traverse; /* visit every referent (GC types; NULL: none); visiting a
                                  NULL field is allowed and skipped, like Py_VISIT */
    agc_inquiry clear;         /* drop references to break a cycle (NULL: cannot) */
    agc_destructor finalize;   /* PEP 442 finalizer, at most once per object; may resurrect;
                                  GC types only (agc_new refuses it on another type) */
    agc_destructor del;        /* legacy finalizer: a cycle holding it is uncollectable */
    agc_destructor dealloc;    /* required: called at refcount 0; releases everything */
    size_t item_size;          /* variable-size types: bytes per item (agc_new_var); 0 for a
                                  fixed-size type. Last: an initializer that omits it still
                                  compiles (it is zeroed), though -Wextra warns */
};

/* A new object of type: refcount 1, not tracked, payload (after the header) zeroed. An object
   of a GC type counts towards generation 0, which may run an automatic collection first.
   NULL with a message if type is NULL or malformed (dealloc NULL, basic_size < 16, bad
   weaklist_offset) or memory is short. */
agc_object *agc_new(const agc_type *type);

/* A new object of a variable-size type with nitems items: basic_size + nitems * item_size
   bytes, otherwise as agc_new (CPython's PyObject_NewVar). NULL with a message for a bad type,
   a size that overflows, or when memory is short. */
agc_object *agc_new_var(const agc_type *type, size_t nitems);

/* Out-of-line agc_incref: AGC_OK, or AGC_ERR_NULL for NULL. */
int agc_object_incref(agc_object *obj);

/* Out-of-line agc_decref (calls dealloc at 0): AGC_OK, AGC_ERR_NULL for NULL, AGC_ERR_STATE
   (nothing done) if the refcount is already 0 (its dealloc runs). Aborts with a message for an
   object that was already freed ("use after free") and for a refcount below zero (naming the
   type): both are memory errors in the making, and the inline agc_decref ignores results. */
int agc_object_decref(agc_object *obj);

/* Take a reference. NULL is an error (reported by agc_object_incref), not a crash. */
static inline void agc_incref(agc_object *obj) {
    if (obj != NULL)
        obj->refcnt++;
    else
        (void)agc_object_incref(obj);
}

/* Give up a reference; the last one deallocates (in the library). NULL is an error. */
static inline void agc_decref(agc_object *obj) {
    if (obj != NULL && obj->refcnt > 1)
        obj->refcnt--;
    else
        (void)agc_object_decref(obj);
}

/* agc_decref, and NULL does nothing. */
static inline void agc_xdecref(agc_object *obj) {
    if (obj != NULL)
        agc_decref(obj);
}

/* Take a reference and return obj (CPython's Py_NewRef): `self->item = agc_newref(item);`.
   NULL is an error, as for agc_incref. */
static inline agc_object *agc_newref(agc_object *obj) {
    agc_incref(obj);
    return obj;
}

/* agc_newref, and NULL gives NULL without an error (Py_XNewRef). */
static inline agc_object *agc_xnewref(agc_object *obj) {
    if (obj != NULL)
        obj->refcnt++;
    return obj;
}

/* In a traverse function whose parameters are named visit and arg (as CPython's Py_VISIT):
   visit the object field op unless it is NULL, and return visit's result if it is nonzero.
   op may be any pointer to an object struct (it is cast to agc_object *). */
#define AGC_VISIT(op)                                                    \
    do {                                                                 \
        if ((op) != NULL) {                                              \
            int agc_visit_result_ = visit((agc_object *)(op), arg);      \
            if (agc_visit_result_ != 0)                                  \
                return agc_visit_result_;                                \
        }                                                                \
    } while (0)

/* In a clear function or a dealloc (as CPython's Py_CLEAR): if the field op is not NULL, set
   it to NULL first and then drop the reference it held, so that code run by that decref (a
   dealloc, a finalizer, a weak reference callback) never sees the object through op. op is
   an lvalue of any object pointer type, evaluated twice. */
#define AGC_CLEAR(op)                                                    \
    do {                                                                 \
        agc_object *agc_clear_tmp_ = (agc_object *)(op);                 \
        if (agc_clear_tmp_ != NULL) {                                    \
            (op) = NULL;                                                 \
            agc_decref(agc_clear_tmp_);                                  \
        }                                                                \
    } while (0)

/* Let the collector see obj (generation 0); no-op if tracked. Call once the payload is
   initialized. AGC_OK, AGC_ERR_NULL, AGC_ERR_VALUE if its type has no AGC_TPFLAGS_HAVE_GC. */
int agc_track(agc_object *obj);

/* Hide obj from the collector; no-op if not tracked. AGC_OK or AGC_ERR_NULL. */
int agc_untrack(agc_object *obj);

/* 1 if the collector tracks obj, 0 if not, AGC_ERR_NULL for NULL. */
int agc_is_tracked(agc_object *obj);

/* 1 if obj's finalizer has run (it never runs again), 0 if not, AGC_ERR_NULL for NULL. */
int agc_is_finalized(agc_object *obj);

/* In dealloc, first: run the type's finalize unless it ran before, lending obj a reference.
   1 if it resurrected obj (dealloc must return at once), 0 to go on, AGC_ERR_STATE if the
   refcount is not 0, AGC_ERR_NULL for NULL. */
int agc_finalize_from_dealloc(agc_object *obj);

/* In dealloc: clear every weak reference to obj and run their callbacks. AGC_OK or
   AGC_ERR_NULL. (agc_object_del clears any left.) */
int agc_clear_weakrefs(agc_object *obj);

/* In dealloc, last, after dropping obj's references: untrack obj, clear weak references
   still pointing to it, free its memory. AGC_OK, AGC_ERR_NULL, AGC_ERR_STATE (nothing freed)
   if the refcount is not 0. */
int agc_object_del(agc_object *obj);

/* ---- weak references --------------------------------------------------------------------- */

/* Called once, with the weak reference (already dead) and the data given to agc_weakref_new,
   when the referent dies - unless the weak reference died first or is garbage in the same
   collection, or was made by a finalizer of the collection's garbage (such weak references
   are cleared before the garbage is, without callbacks). */
typedef void (*agc_weakref_callback)(agc_object *wr, void *data);

/* A new weak reference to obj (an object of its own, refcount 1). callback may be NULL. NULL
   with a message if obj is NULL, its type has no weak reference support, or its refcount is
   0 (it is being deallocated). */
agc_object *agc_weakref_new(agc_object *obj, agc_weakref_callback callback, void *data);

/* A new reference to wr's referent, or NULL once it is dead (no error recorded). NULL with a
   message if wr is NULL or not a weak reference. */
agc_object *agc_weakref_get(agc_object *wr);

/* Number of weak references to obj (0 if its type has no support), or AGC_ERR_NULL. */
intptr_t agc_weakref_count(agc_object *obj);

/* =========================================================================================
 * The cycle collector (CPython's gc module). Every agc_gc_ function acts on the calling
 * thread's current runtime.
 * ========================================================================================= */

/* Generations 0, 1, 2 (the permanent one of agc_gc_freeze not counted). */
#define AGC_GC_GENERATIONS 3

/* Debug flags (agc_gc_set_debug). */
#define AGC_DEBUG_STATS 1u         /* print statistics during collection (stderr) */
#define AGC_DEBUG_COLLECTABLE 2u   /* print the collectable objects found */
#define AGC_DEBUG_UNCOLLECTABLE 4u /* print the uncollectable objects found */
#define AGC_DEBUG_SAVEALL 32u      /* keep unreachable objects in garbage, do not free them */
#define AGC_DEBUG_LEAK (AGC_DEBUG_COLLECTABLE | AGC_DEBUG_UNCOLLECTABLE | AGC_DEBUG_SAVEALL)

/* Phases a gc callback is called with. */
#define AGC_GC_START 0
#define AGC_GC_STOP 1

/* Statistics of one generation since its runtime started. */
typedef struct agc_gen_stats {
    size_t collections;   /* collections of this generation */
    size_t collected;     /* objects they freed */
    size_t uncollectable; /* objects they found uncollectable */
} agc_gen_stats_t;

/* Statistics of every generation, filled by agc_gc_get_stats(). */
typedef struct agc_gc_stats {
    agc_gen_stats_t generations[AGC_GC_GENERATIONS];
} agc_gc_stats_t;

/* Collect generation (0, 1 or 2) and the younger ones. Returns the number of unreachable
   objects found (collected + uncollectable), 0 if a collection is running, AGC_ERR_VALUE with
   a message for any other generation (3, -1, ...). */
intptr_t agc_gc_collect(int generation);

/* Turn automatic collection on / off (agc_gc_collect works either way). */
void agc_gc_enable(void);
void agc_gc_disable(void);

/* 1 if automatic collection is on, else 0. */
int agc_gc_is_enabled(void);

/* Thresholds of generations 0, 1, 2 (default 700, 10, 10). AGC_OK, AGC_ERR_NULL if an
   output pointer is NULL. */
int agc_gc_get_threshold(size_t *t0, size_t *t1, size_t *t2);

/* Set them; t0 == 0 turns automatic collection off. AGC_OK. */
int agc_gc_set_threshold(size_t t0, size_t t1, size_t t2);

/* Counts: allocations of GC-type objects (tracked or not, as CPython counts them) minus their
   frees since generation 0 was collected; collections of
   generation 0 (1) since generation 1 (2) was. AGC_OK, AGC_ERR_NULL for a NULL pointer. */
int agc_gc_get_count(size_t *c0, size_t *c1, size_t *c2);

/* Fill *out with the statistics per generation. AGC_OK, or AGC_ERR_NULL. */
int agc_gc_get_stats(agc_gc_stats_t *out);

/* Set the AGC_DEBUG_* flags. AGC_OK, or AGC_ERR_VALUE (nothing changed) for unknown bits. */
int agc_gc_set_debug(unsigned int flags);

/* The AGC_DEBUG_* flags. */
unsigned int agc_gc_get_debug(void);

/* Move every tracked object to the permanent generation, which collections ignore. */
void agc_gc_freeze(void);

/* Move the permanent generation back into generation 2. */
void agc_gc_unfreeze(void);

/* Number of objects in the permanent generation. */
size_t agc_gc_get_freeze_count(void);

/* garbage: the objects of uncollectable cycles (legacy del), or with AGC_DEBUG_SAVEALL every
   unreachable object. Its length; a new reference to item index (NULL with a message when
   index >= length); emptying it (its references are released, which may free objects). */
size_t agc_gc_garbage_len(void);
agc_object *agc_gc_garbage_get(size_t index);
void agc_gc_garbage_clear(void);

/* Called with AGC_GC_START before and AGC_GC_STOP after each collection (collected and
   uncollectable are 0 at AGC_GC_START) of the runtime it was registered in. */
typedef void (*agc_gc_callback)(int phase, int generation, size_t collected,
                                size_t uncollectable, void *data);

/* Register callback (with data) in the current runtime. Returns an id > 0, or 0 with a
   message if callback is NULL. */
uint64_t agc_gc_callback_add(agc_gc_callback callback, void *data);

/* Unregister callback id of the current runtime. AGC_OK, or AGC_ERR_VALUE if there is none. */
int agc_gc_callback_remove(uint64_t id);

/* Call visit(obj, data) for each object tracked in generation (0, 1, 2; -1 for all three)
   until visit returns nonzero. obj is borrowed for the call (agc_incref it to keep it).
   Returns the number of calls, AGC_ERR_NULL if visit is NULL, AGC_ERR_VALUE for another
   generation. */
intptr_t agc_gc_get_objects(int generation, agc_visitproc visit, void *data);

/* The same for each tracked object that refers to obj directly; AGC_ERR_NULL if obj is NULL. */
intptr_t agc_gc_get_referrers(agc_object *obj, agc_visitproc visit, void *data);

/* The same for each object obj refers to directly (per its traverse; once per reference). */
intptr_t agc_gc_get_referents(agc_object *obj, agc_visitproc visit, void *data);

/* ---- leak hunting: counts by type, why is this alive, pictures, the leak report ---------- */

/* One type name's live objects: how many (tracked, plus the untracked ones found through
   them), of which untracked, and their bytes. A nonzero return stops the walk. */
typedef int (*agc_type_count_visitor)(const char *name, size_t count, size_t untracked,
                                      size_t bytes, void *data);

/* Call visit for each type name with live objects in the current runtime, most numerous
   first (objgraph's show_most_common_types). Seen: every tracked object (frozen ones too) and
   the untracked objects they refer to, directly or through other untracked ones; not seen:
   untracked objects that only C pointers or Rust variables hold. Returns the number of calls,
   AGC_ERR_NULL if visit is NULL. */
intptr_t agc_gc_type_counts(agc_type_count_visitor visit, void *data);

/* A type name whose count rose above its earlier peak, and by how much. */
typedef int (*agc_type_growth_visitor)(const char *name, size_t count, size_t delta, void *data);

/* Call visit for each type name whose count passed the peak seen by the earlier calls (the
   first call: every type), largest rise first (objgraph's show_growth). Returns the number
   of calls, AGC_ERR_NULL if visit is NULL. */
intptr_t agc_gc_type_growth(agc_type_growth_visitor visit, void *data);

/* Why is obj alive? A shortest chain of references from a root (an object referenced from
   outside the tracked graph, or frozen) to obj: visit(o, data) for each object of the chain,
   root first, obj last (borrowed; visit may be NULL), and *external (if not NULL) = the root's
   references from outside. The caller's own reference to obj is not counted. Returns the
   chain's length; 0 if nothing outside holds obj (cyclic garbage, *external = 0);
   AGC_ERR_NULL for a NULL obj; AGC_ERR_STATE during a collection. */
intptr_t agc_gc_path_to(agc_object *obj, size_t *external, agc_visitproc visit, void *data);

/* Graphviz DOT pictures of the objects that refer to obj (backrefs) or that obj refers to
   (refs), up to depth steps and max_nodes nodes, labelled by type name and repr hook, roots
   green, obj red. A string from agc_malloc (agc_free it); NULL with a message for a NULL obj,
   during a collection, or when memory is short. */
char *agc_gc_dot_backrefs(agc_object *obj, size_t depth, size_t max_nodes);
char *agc_gc_dot_refs(agc_object *obj, size_t depth, size_t max_nodes);

/* Describe obj in at most cap bytes of UTF-8 written to buf (no NUL needed); return the
   bytes written. */
typedef size_t (*agc_repr_hook)(agc_object *obj, char *buf, size_t cap);

/* Describe every object of type with hook in the pictures and reports (NULL removes it).
   AGC_OK, AGC_ERR_NULL for a NULL type. */
int agc_gc_set_repr(const agc_type *type, agc_repr_hook hook);

/* The leak report on garbage: its objects by type, each uncollectable group with the legacy
   finalizers (del) that pin it, the collectable objects AGC_DEBUG_SAVEALL kept. Printed to
   stderr by every collection under AGC_DEBUG_LEAK. A string from agc_malloc (agc_free it);
   NULL with a message when memory is short. */
char *agc_gc_leak_report(void);

/* ---- runtimes ---------------------------------------------------------------------------- */

/* A runtime: its own generations, thresholds, stats, garbage and callbacks. Threads attach
   to it one at a time to share its objects. A thread with no runtime attached uses its own
   default runtime, created on first use. */
typedef struct agc_runtime agc_runtime;

/* A new runtime. Out of memory aborts, as Rust's allocation does; NULL with a message only if
   the library fails internally. */
agc_runtime *agc_runtime_new(void);

/* Free rt. AGC_OK, AGC_ERR_NULL, AGC_ERR_STATE (nothing done) while a thread is attached or
   waiting in agc_runtime_attach for it. If objects of it are still alive, its collector state
   stays allocated for them. Every runtime function refuses a freed (or foreign) handle with
   AGC_ERR_STATE, until a new runtime happens to get the same address. */
int agc_runtime_free(agc_runtime *rt);

/* Make rt the calling thread's current runtime, waiting while another thread is attached to
   it. Attachments to different runtimes nest. AGC_OK, AGC_ERR_NULL, AGC_ERR_STATE if this
   thread is attached to rt already, if rt is not live, or if called from code the library
   runs (a finalizer, callback, dealloc, traverse or visitor: attach and detach around library
   calls only). A thread that exits attached is detached. */
int agc_runtime_attach(agc_runtime *rt);

/* End the calling thread's innermost attachment, which must be to rt; the thread goes back
   to the runtime it used before. AGC_OK, AGC_ERR_NULL, AGC_ERR_STATE otherwise (also if rt is
   not live, or from code the library runs). */
int agc_runtime_detach(agc_runtime *rt);

/* ---- tracing: where did my memory go (tracemalloc) ----------------------------------------

   While tracing is on, every block allocated through this library (agc_malloc and the other
   allocation functions; every malloc under the preload library libarenagc_malloc.so) records
   its size and its call stack, up to nframes frames, the library's own frames skipped. File
   and line of a C frame need the program built with -g (otherwise the function's name shows).
   Sampled mode records one block per mean_bytes allocated on average (jemalloc's scheme);
   its sizes and counts are unbiased estimates. Blocks allocated before tracing started are
   ignored. A snapshot is a handle (agc_trace_snapshot_t); NULL, freed and foreign handles are
   refused with AGC_ERR_NULL or AGC_ERR_STATE. */

/* A snapshot of the traces (opaque). */
typedef struct agc_trace_snapshot_t agc_trace_snapshot_t;

/* One statistic: the group's most recent frame (file, line: 0 for key "filename"; function,
   or NULL when unknown), its bytes and blocks, and for a comparison their change since the
   old snapshot (0 for plain statistics). Strings are valid during the call. A nonzero return
   stops the walk. */
typedef int (*agc_trace_stat_visitor)(const char *filename, unsigned int lineno,
                                      const char *function, size_t size, intptr_t size_diff,
                                      size_t count, intptr_t count_diff, void *data);

/* Start tracing, keeping up to nframes (1 to 256) frames per block. AGC_OK (also when
   tracing already), AGC_ERR_VALUE for a bad nframes. */
int agc_trace_start(size_t nframes);

/* Start tracing in sampled mode, one sample per mean_bytes allocated on average (524288 is
   jemalloc's default). AGC_OK, AGC_ERR_VALUE for mean_bytes 0 or a bad nframes. */
int agc_trace_start_sampled(size_t mean_bytes, size_t nframes);

/* Stop tracing and forget every trace. */
void agc_trace_stop(void);

/* 1 while tracing, 0 otherwise. */
int agc_trace_is_tracing(void);

/* Bytes in traced blocks now and at the peak (estimates in sampled mode). AGC_OK, or
   AGC_ERR_NULL if current or peak is NULL. */
int agc_trace_get_traced_memory(size_t *current, size_t *peak);

/* Make the peak the current size. */
void agc_trace_reset_peak(void);

/* A snapshot of the traces held now (empty when not tracing); free it with
   agc_trace_snapshot_free. */
agc_trace_snapshot_t *agc_trace_snapshot(void);

/* A snapshot read from a file agc_trace_snapshot_dump wrote (in any process). NULL with a
   message if path is NULL or the file cannot be read or is not a snapshot. */
agc_trace_snapshot_t *agc_trace_snapshot_load(const char *path);

/* Free a snapshot. AGC_OK (NULL: nothing done), AGC_ERR_STATE for a handle not live. */
int agc_trace_snapshot_free(agc_trace_snapshot_t *snap);

/* Call visit for each group of snap by key ("lineno", "filename" or "traceback"; a traceback
   is shown by its most recent frame), biggest first. Returns the number of calls;
   AGC_ERR_NULL for a NULL snap, key or visit, AGC_ERR_VALUE for an unknown key,
   AGC_ERR_STATE for a snapshot not live. */
intptr_t agc_trace_snapshot_statistics(const agc_trace_snapshot_t *snap, const char *key, agc_trace_stat_visitor visit, void *data);

/* Call visit for each group's difference between snap and the older snapshot old, biggest
   absolute size difference first (tracemalloc's compare_to). Results as
   agc_trace_snapshot_statistics. */
intptr_t agc_trace_snapshot_compare(const agc_trace_snapshot_t *snap, const agc_trace_snapshot_t *old, const char *key, agc_trace_stat_visitor visit, void *data);

/* Write snap to the file path (symbolised: agc_trace_snapshot_load reads it in any process).
   AGC_OK, AGC_ERR_NULL, AGC_ERR_STATE, AGC_ERR_IO if the file cannot be written. */
int agc_trace_snapshot_dump(const agc_trace_snapshot_t *snap, const char *path);

/* Write snap as a pprof heap profile (profile.proto, uncompressed: pprof -top path) with the
   sample types alloc_objects, alloc_space, inuse_objects, inuse_space (a snapshot holds live
   blocks: alloc = inuse). Results as agc_trace_snapshot_dump. */
int agc_trace_snapshot_write_pprof(const agc_trace_snapshot_t *snap, const char *path);

/* Write snap as folded stacks ("root;caller;callee bytes" lines, for flame graphs). Results
   as agc_trace_snapshot_dump. */
int agc_trace_snapshot_write_folded(const agc_trace_snapshot_t *snap, const char *path);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ARENAGC_H */
