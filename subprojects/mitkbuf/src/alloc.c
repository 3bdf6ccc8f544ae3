/* Own and adopted pixel memory.
 *
 * Own blocks are 64-byte aligned (MITKBUF_ALIGNMENT: a cache line, and enough for any SIMD load
 * a pixel loop may use).  A zero-byte request still gets a real 64-byte block, so the data
 * pointer is never NULL: the buffer protocol must not export NULL, even for empty images
 * (ARROW-16048).
 *
 * Zeroed blocks come from calloc and are aligned by hand inside a slightly larger allocation:
 * for large sizes calloc maps fresh pages, which the kernel already zeroes, so a zeroed image
 * costs no memset (NumPy's np.zeros does the same).  Uninitialised blocks use aligned_alloc.
 *
 * Blocks of at least CACHE_MIN bytes are kept in a small cache when freed and handed out again
 * for a request of about the same size: the kernel zero-fills and faults in fresh pages one by
 * one, which makes writing into a new large buffer several times slower than into recycled
 * memory.  The cache holds at most CACHE_SLOTS blocks and cache_limit bytes (default 256 MiB;
 * 0 disables it).  When a freed block does not fit, the least recently cached blocks are
 * evicted to make room: the block just freed is the likeliest to be asked for again (a
 * pipeline loading images of one size), and stale blocks of other sizes must not lock the
 * cache up for good.
 */
#include "mitkbuf_internal.h"

#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS 8
#define CACHE_MIN ((size_t)1 << 20)
/* Large requests are rounded to this, so images of equal size share cached blocks. */
#define LARGE_UNIT ((size_t)64 << 10)

static pthread_mutex_t cache_mutex = PTHREAD_MUTEX_INITIALIZER;
static mitkbuf__block cache[CACHE_SLOTS]; /* data == NULL marks an empty slot */
static size_t cache_bytes = 0;            /* invariant: cache_bytes <= cache_limit */
static size_t cache_limit = (size_t)256 << 20;
static unsigned long long cache_stamp[CACHE_SLOTS]; /* when each slot was filled (LRU order) */
static unsigned long long next_stamp = 0;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

/* What an adopted zero-byte buffer reports as its data pointer: valid, aligned, never NULL. */
static _Alignas(MITKBUF_ALIGNMENT) unsigned char empty_area[MITKBUF_ALIGNMENT];

/* A thread that forks while another thread holds cache_mutex would leave the child with a mutex
 * nobody can unlock, and the child's first large allocation would hang: hold it across fork(). */
static void cache_prepare(void) { pthread_mutex_lock(&cache_mutex); }
static void cache_after_fork(void) { pthread_mutex_unlock(&cache_mutex); }
static void register_fork_handlers(void)
{
    /* If registration fails, only the (unlikely) fork-during-cache-access case is unprotected. */
    (void)pthread_atfork(cache_prepare, cache_after_fork, cache_after_fork);
}

static void cache_lock(void)
{
    pthread_once(&fork_once, register_fork_handlers);
    pthread_mutex_lock(&cache_mutex);
}

static void cache_unlock(void) { pthread_mutex_unlock(&cache_mutex); }

static int take_cached(size_t capacity, mitkbuf__block *block)
{
    int best = -1;
    if (capacity < CACHE_MIN)
        return 0;
    cache_lock();
    for (int i = 0; i < CACHE_SLOTS; i++) {
        size_t c = cache[i].capacity;
        /* Reuse only a block that wastes at most 1/8 of itself. */
        if (cache[i].data != NULL && c >= capacity && c - capacity <= c / 8 &&
            (best < 0 || c < cache[best].capacity))
            best = i;
    }
    if (best >= 0) {
        *block = cache[best];
        cache_bytes -= cache[best].capacity;
        cache[best].base = cache[best].data = NULL;
        cache[best].capacity = 0;
    }
    cache_unlock();
    return best >= 0;
}

static int put_cached(const mitkbuf__block *block)
{
    void *evicted[CACHE_SLOTS];
    int n = 0, slot = -1;
    if (block->capacity < CACHE_MIN)
        return 0;
    cache_lock();
    if (block->capacity > cache_limit) {
        cache_unlock();
        return 0;
    }
    for (;;) {
        int oldest = -1;
        slot = -1;
        for (int i = 0; i < CACHE_SLOTS; i++) {
            if (cache[i].data == NULL) {
                if (slot < 0)
                    slot = i;
            } else if (oldest < 0 || cache_stamp[i] < cache_stamp[oldest]) {
                oldest = i;
            }
        }
        if (slot >= 0 && block->capacity <= cache_limit - cache_bytes)
            break;
        /* No room: evict the least recently cached block (one exists, since the block alone
         * fits within the limit and an empty cache has free slots). */
        evicted[n++] = cache[oldest].base;
        cache_bytes -= cache[oldest].capacity;
        cache[oldest].base = cache[oldest].data = NULL;
        cache[oldest].capacity = 0;
    }
    cache[slot] = *block;
    cache_stamp[slot] = next_stamp++;
    cache_bytes += block->capacity;
    cache_unlock();
    /* free() outside the mutex: returning large blocks to the kernel takes a while. */
    for (int i = 0; i < n; i++)
        free(evicted[i]);
    return 1;
}

static int round_capacity(size_t nbytes, size_t *capacity)
{
    size_t unit = nbytes >= CACHE_MIN ? LARGE_UNIT : (size_t)MITKBUF_ALIGNMENT;
    if (nbytes == 0) {
        *capacity = MITKBUF_ALIGNMENT;
        return MITKBUF_OK;
    }
    if (nbytes > SIZE_MAX - (unit - 1))
        return MITKBUF_EOVERFLOW;
    *capacity = (nbytes + unit - 1) / unit * unit;
    /* No object may exceed PTRDIFF_MAX bytes (pointer differences must be defined); malloc would
     * refuse such a request anyway, so say so without asking it. */
    if (*capacity > (size_t)PTRDIFF_MAX)
        return MITKBUF_ENOMEM;
    return MITKBUF_OK;
}

static int fresh_block(size_t capacity, int zeroed, mitkbuf__block *block)
{
    if (zeroed) {
        /* capacity <= PTRDIFF_MAX, so adding the alignment slack cannot wrap. */
        unsigned char *base = calloc(1, capacity + MITKBUF_ALIGNMENT);
        uintptr_t addr;
        if (base == NULL)
            return MITKBUF_ENOMEM;
        addr = ((uintptr_t)base + (MITKBUF_ALIGNMENT - 1)) & ~(uintptr_t)(MITKBUF_ALIGNMENT - 1);
        block->base = base;
        block->data = base + (addr - (uintptr_t)base);
    } else {
        /* capacity is a multiple of the alignment, as C11 aligned_alloc requires. */
        block->base = block->data = aligned_alloc(MITKBUF_ALIGNMENT, capacity);
        if (block->base == NULL)
            return MITKBUF_ENOMEM;
    }
    block->capacity = capacity;
    return MITKBUF_OK;
}

int mitkbuf__block_alloc(size_t nbytes, int zeroed, mitkbuf__block *block)
{
    size_t capacity;
    int status = round_capacity(nbytes, &capacity);
    if (status != MITKBUF_OK)
        return status;
    if (take_cached(capacity, block)) {
        /* Recycled memory holds the previous buffer's bytes. */
        if (zeroed)
            memset(block->data, 0, nbytes);
        return MITKBUF_OK;
    }
    return fresh_block(capacity, zeroed, block);
}

void mitkbuf__block_free(const mitkbuf__block *block)
{
    if (block->base != NULL && !put_cached(block))
        free(block->base);
}

size_t mitkbuf_cache_limit(size_t new_limit, int set)
{
    size_t old;
    void *evicted[CACHE_SLOTS];
    int n = 0;
    cache_lock();
    old = cache_limit;
    if (set) {
        cache_limit = new_limit;
        for (int i = 0; i < CACHE_SLOTS && cache_bytes > cache_limit; i++) {
            if (cache[i].data != NULL) {
                evicted[n++] = cache[i].base;
                cache_bytes -= cache[i].capacity;
                cache[i].base = cache[i].data = NULL;
                cache[i].capacity = 0;
            }
        }
    }
    cache_unlock();
    /* free() outside the mutex: returning large blocks to the kernel takes a while. */
    for (int i = 0; i < n; i++)
        free(evicted[i]);
    return old;
}

size_t mitkbuf_cache_bytes(void)
{
    size_t n;
    cache_lock();
    n = cache_bytes;
    cache_unlock();
    return n;
}

/* ---- buffer objects ---------------------------------------------------------------------------- */

int mitkbuf_buffer_new(size_t nbytes, int zeroed, mitkbuf_buffer **out)
{
    mitkbuf_buffer *buf;
    mitkbuf__block block;
    int status;
    if (out == NULL)
        return MITKBUF_EINVAL;
    buf = malloc(sizeof *buf);
    if (buf == NULL)
        return MITKBUF_ENOMEM;
    status = mitkbuf__block_alloc(nbytes, zeroed, &block);
    if (status != MITKBUF_OK) {
        free(buf);
        return status;
    }
    buf->data = block.data;
    buf->nbytes = nbytes;
    buf->base = block.base;
    buf->capacity = block.capacity;
    buf->owned = 1;
    buf->release = NULL;
    buf->context = NULL;
    atomic_init(&buf->refcount, 1);
    *out = buf;
    return MITKBUF_OK;
}

int mitkbuf_buffer_adopt(void *data, size_t nbytes, mitkbuf_release_fn release, void *context,
                         mitkbuf_buffer **out)
{
    mitkbuf_buffer *buf;
    if (out == NULL || (data == NULL && nbytes != 0))
        return MITKBUF_EINVAL;
    buf = malloc(sizeof *buf);
    if (buf == NULL)
        return MITKBUF_ENOMEM;
    /* The release callback later gets the caller's own pointer back (see refcount.c), so the
     * substitute for NULL is only ever seen through mitkbuf_buffer_data. */
    buf->data = data != NULL ? data : (void *)empty_area;
    buf->nbytes = nbytes;
    buf->base = data;
    buf->capacity = 0;
    buf->owned = 0;
    buf->release = release;
    buf->context = context;
    atomic_init(&buf->refcount, 1);
    *out = buf;
    return MITKBUF_OK;
}

void *mitkbuf_buffer_data(const mitkbuf_buffer *buf) { return buf != NULL ? buf->data : NULL; }

size_t mitkbuf_buffer_nbytes(const mitkbuf_buffer *buf) { return buf != NULL ? buf->nbytes : 0; }
