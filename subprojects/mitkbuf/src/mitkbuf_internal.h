/* Private layouts of mitkbuf objects and the platform pieces they need (C11 atomics, pthreads). */
#ifndef MITKBUF_INTERNAL_H
#define MITKBUF_INTERNAL_H

#include "mitkbuf.h"

#include <pthread.h>
#include <stdatomic.h>

struct mitkbuf_buffer {
    void *data;                 /* never NULL */
    size_t nbytes;              /* bytes the caller asked for */
    size_t capacity;            /* bytes allocated (own memory only; rounded up) */
    atomic_long refcount;
    int owned;                  /* 1: allocated by mitkbuf; 0: adopted */
    mitkbuf_release_fn release; /* adopted memory only */
    void *context;
};

/* Own memory: allocate / give back a 64-byte-aligned block of at least nbytes.  Large blocks
 * go through a small cache of recently freed blocks (alloc.c). */
int mitkbuf__block_alloc(size_t nbytes, int zeroed, void **data, size_t *capacity);
void mitkbuf__block_free(void *data, size_t capacity);

#endif
