/* Own and adopted pixel memory.
 *
 * Own blocks are 64-byte aligned.  Blocks of at least MITKBUF_CACHE_MIN bytes are kept in a small
 * cache when freed and handed out again for a request of about the same size: the kernel zeroes
 * and faults in fresh pages one by one, which makes writing into a new large buffer 3-5x slower
 * than into recycled memory (benchmarks: core.construct_copy).  The cache holds at most
 * MITKBUF_CACHE_SLOTS blocks and mitkbuf_cache_limit() bytes (default 256 MiB, 0 disables it).
 */
#define _POSIX_C_SOURCE 200809L
#include "mitkbuf_internal.h"

#include <stdlib.h>
#include <string.h>

#define MITKBUF_CACHE_SLOTS 8
#define MITKBUF_CACHE_MIN ((size_t)1 << 20)

typedef struct {
    void *data;
    size_t capacity;
} cached_block;

static pthread_mutex_t cache_mutex = PTHREAD_MUTEX_INITIALIZER;
static cached_block cache[MITKBUF_CACHE_SLOTS];
static size_t cache_bytes = 0;
static size_t cache_limit = (size_t)256 << 20;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

/* The cache mutex must not be held by another thread when a child is forked, or the child's
 * first large allocation would hang: take it around fork(). */
static void cache_prepare(void) { pthread_mutex_lock(&cache_mutex); }
static void cache_release_after_fork(void) { pthread_mutex_unlock(&cache_mutex); }
static void register_fork_handlers(void)
{
    pthread_atfork(cache_prepare, cache_release_after_fork, cache_release_after_fork);
}

static void *take_cached(size_t capacity, size_t *taken)
{
    int best = -1;
    void *data = NULL;
    if (capacity < MITKBUF_CACHE_MIN)
        return NULL;
    pthread_once(&fork_once, register_fork_handlers);
    pthread_mutex_lock(&cache_mutex);
    for (int i = 0; i < MITKBUF_CACHE_SLOTS; i++) {
        size_t c = cache[i].capacity;
        /* Reuse only a block that does not waste more than 1/8 of itself. */
        if (cache[i].data != NULL && c >= capacity && c - capacity <= c / 8 &&
            (best < 0 || c < cache[best].capacity))
            best = i;
    }
    if (best >= 0) {
        data = cache[best].data;
        *taken = cache[best].capacity;
        cache_bytes -= cache[best].capacity;
        cache[best].data = NULL;
        cache[best].capacity = 0;
    }
    pthread_mutex_unlock(&cache_mutex);
    return data;
}

static int put_cached(void *data, size_t capacity)
{
    int stored = 0;
    if (capacity < MITKBUF_CACHE_MIN)
        return 0;
    pthread_once(&fork_once, register_fork_handlers);
    pthread_mutex_lock(&cache_mutex);
    if (cache_bytes + capacity <= cache_limit) {
        for (int i = 0; i < MITKBUF_CACHE_SLOTS; i++) {
            if (cache[i].data == NULL) {
                cache[i].data = data;
                cache[i].capacity = capacity;
                cache_bytes += capacity;
                stored = 1;
                break;
            }
        }
    }
    pthread_mutex_unlock(&cache_mutex);
    return stored;
}

/* Large requests are rounded to 64 KiB so that images of equal size share cached blocks. */
static int round_capacity(size_t nbytes, size_t *capacity)
{
    size_t unit = nbytes >= MITKBUF_CACHE_MIN ? ((size_t)64 << 10) : MITKBUF_ALIGNMENT;
    if (nbytes == 0) {
        *capacity = MITKBUF_ALIGNMENT;
        return MITKBUF_OK;
    }
    if (nbytes > SIZE_MAX - (unit - 1))
        return MITKBUF_EOVERFLOW;
    *capacity = (nbytes + unit - 1) / unit * unit;
    return MITKBUF_OK;
}

int mitkbuf__block_alloc(size_t nbytes, int zeroed, void **data, size_t *capacity)
{
    size_t cap;
    void *p;
    int status = round_capacity(nbytes, &cap);
    if (status != MITKBUF_OK)
        return status;
    p = take_cached(cap, &cap);
    if (p != NULL) {
        if (zeroed)
            memset(p, 0, nbytes);
    } else {
        p = aligned_alloc(MITKBUF_ALIGNMENT, cap);
        if (p == NULL)
            return MITKBUF_ENOMEM;
        if (zeroed)
            memset(p, 0, cap);
    }
    *data = p;
    *capacity = cap;
    return MITKBUF_OK;
}

void mitkbuf__block_free(void *data, size_t capacity)
{
    if (data != NULL && !put_cached(data, capacity))
        free(data);
}

size_t mitkbuf_cache_limit(size_t new_limit, int set)
{
    size_t old;
    void *evicted[MITKBUF_CACHE_SLOTS];
    int n = 0;
    pthread_once(&fork_once, register_fork_handlers);
    pthread_mutex_lock(&cache_mutex);
    old = cache_limit;
    if (set) {
        cache_limit = new_limit;
        /* Drop blocks until the cache fits the new limit. */
        for (int i = 0; i < MITKBUF_CACHE_SLOTS && cache_bytes > cache_limit; i++) {
            if (cache[i].data != NULL) {
                evicted[n++] = cache[i].data;
                cache_bytes -= cache[i].capacity;
                cache[i].data = NULL;
                cache[i].capacity = 0;
            }
        }
    }
    pthread_mutex_unlock(&cache_mutex);
    for (int i = 0; i < n; i++)
        free(evicted[i]);
    return old;
}

size_t mitkbuf_cache_bytes(void)
{
    size_t n;
    pthread_mutex_lock(&cache_mutex);
    n = cache_bytes;
    pthread_mutex_unlock(&cache_mutex);
    return n;
}
