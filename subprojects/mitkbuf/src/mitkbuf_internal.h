/* Private layouts of mitkbuf objects and the platform pieces they rely on.
 *
 * Platform: C11 atomics (<stdatomic.h>) and POSIX threads with CLOCK_MONOTONIC condition
 * variables.  meson.build defines _POSIX_C_SOURCE=200809L so that clock_gettime,
 * pthread_condattr_setclock and pthread_mutex_timedlock are declared under -std=c11.
 */
#ifndef MITKBUF_INTERNAL_H
#define MITKBUF_INTERNAL_H

#include "mitkbuf.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* ---- buffers ---------------------------------------------------------------------------------- */

struct mitkbuf_buffer {
    void *data;                 /* what users see; never NULL */
    size_t nbytes;              /* bytes the caller asked for */
    void *base;                 /* own memory: what free() takes (data is base rounded up) */
    size_t capacity;            /* own memory: usable bytes from data on (rounded up) */
    atomic_long refcount;
    int owned;                  /* 1: allocated by mitkbuf; 0: adopted */
    mitkbuf_release_fn release; /* adopted memory only; may be NULL */
    void *context;
};

/* A block of own memory: data is 64-byte aligned and holds capacity bytes; base is freed. */
typedef struct {
    void *base;
    void *data;
    size_t capacity;
} mitkbuf__block;

/* Allocate a block of at least nbytes (0 allowed), zero-filled up to nbytes if zeroed.  Large
 * blocks may come from the recycling cache (alloc.c).  Returns MITKBUF_OK, MITKBUF_ENOMEM or
 * MITKBUF_EOVERFLOW. */
int mitkbuf__block_alloc(size_t nbytes, int zeroed, mitkbuf__block *block);
/* Give a block back (to the cache or to free()). */
void mitkbuf__block_free(const mitkbuf__block *block);

/* ---- reader/writer lock ---------------------------------------------------------------------- */

/* One row of the holder table: what one owner holds or waits for. */
typedef struct {
    uint64_t owner;
    long reads;  /* read holds (re-entrant) */
    int write;   /* 1 while the owner holds the write lock */
    int queued;  /* 1 while counted in writers_waiting (waiting, or between write_queued calls) */
} mitkbuf__holder;

/* How many fast-path slots a lock has (rwlock.c): readers whose owner ids differ modulo this
 * number read at the same time without the mutex. */
#define MITKBUF__RWLOCK_SLOTS 4

/* One fast-path word with a line of its own, so that readers in different slots write no shared
 * cache line.  The stride is what matters (the lock comes from calloc, 16-byte aligned): 128
 * bytes, because some CPUs have 128-byte lines (Apple M-series) or fetch 64-byte lines in pairs
 * (Intel's adjacent-line prefetcher). */
#define MITKBUF__SLOT_STRIDE 128
typedef struct {
    _Atomic uint64_t word;
    char pad[MITKBUF__SLOT_STRIDE - sizeof(_Atomic uint64_t)];
} mitkbuf__rwlock_slot;

struct mitkbuf_rwlock {
    /* The fast-path words (rwlock.c): each is 0 while its slot is free, one owner's read holds
     * while that owner reads through it, or RWLOCK_SLOW while the fields below are authoritative.
     * Readers change them by compare-and-swap; only the mutex holder sets RWLOCK_SLOW (by
     * exchange) or clears it (by plain stores: nobody else touches a RWLOCK_SLOW slot), always
     * in every slot before it lets the mutex go. */
    mitkbuf__rwlock_slot slots[MITKBUF__RWLOCK_SLOTS];
    pthread_mutex_t mutex;     /* guards everything below */
    pthread_cond_t readable;   /* readers wait here (CLOCK_MONOTONIC) */
    pthread_cond_t writable;   /* writers wait here (CLOCK_MONOTONIC) */
    long readers;              /* read holds, summed over owners */
    int writer;                /* 1 while some owner holds the write lock */
    long writers_waiting;      /* owners with queued == 1 */
    mitkbuf__holder *holders;  /* rows for owners that hold or queue; idle rows are removed */
    size_t nholders;
    size_t capacity;
    /* Links in the list of live locks that the fork handlers walk (rwlock.c); guarded by that
     * list's own mutex, not by `mutex`. */
    struct mitkbuf_rwlock *prev;
    struct mitkbuf_rwlock *next;
};

#endif
