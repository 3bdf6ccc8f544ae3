/* Allocation, zeroing, adoption callbacks, reference counting across threads, the block cache. */
#include "check.h"
#include "mitkbuf.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static atomic_int callbacks = 0;
static void *callback_data = NULL;
static void *callback_context = NULL;

static void on_release(void *context, void *data)
{
    atomic_fetch_add(&callbacks, 1);
    callback_context = context;
    callback_data = data;
}

static int all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

#define THREADS 8
#define ROUNDS 20000

static void *retain_release(void *arg)
{
    mitkbuf_buffer *buf = arg;
    for (int i = 0; i < ROUNDS; i++) {
        mitkbuf_buffer_retain(buf);
        mitkbuf_buffer_release(buf);
    }
    mitkbuf_buffer_release(buf); /* each thread drops the reference it was given */
    return NULL;
}

int main(void)
{
    size_t sizes[] = {0, 1, 63, 64, 65, 4096, 1u << 20, (1u << 20) + 3, 5u << 20};
    mitkbuf_buffer *buf = NULL;

    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        CHECK(mitkbuf_buffer_new(sizes[i], 1, &buf) == MITKBUF_OK, "zeroed allocation");
        CHECK(mitkbuf_buffer_data(buf) != NULL, "never NULL, also for 0 bytes");
        CHECK(((uintptr_t)mitkbuf_buffer_data(buf) % MITKBUF_ALIGNMENT) == 0, "64-byte aligned");
        CHECK(mitkbuf_buffer_nbytes(buf) == sizes[i], "nbytes");
        CHECK(all_zero(mitkbuf_buffer_data(buf), sizes[i]), "zero-filled");
        memset(mitkbuf_buffer_data(buf), 0xAB, sizes[i]); /* dirty it for the cache test */
        CHECK(mitkbuf_buffer_refcount(buf) == 1, "one reference");
        CHECK(mitkbuf_buffer_release(buf) == MITKBUF_OK, "release frees");
        CHECK(mitkbuf_buffer_new(sizes[i], 0, &buf) == MITKBUF_OK, "uninitialised allocation");
        CHECK(((uintptr_t)mitkbuf_buffer_data(buf) % MITKBUF_ALIGNMENT) == 0, "aligned");
        mitkbuf_buffer_release(buf);
        /* A recycled block must be zeroed again when zeroing is asked for. */
        CHECK(mitkbuf_buffer_new(sizes[i], 1, &buf) == MITKBUF_OK, "zeroed again");
        CHECK(all_zero(mitkbuf_buffer_data(buf), sizes[i]), "recycled block zero-filled");
        mitkbuf_buffer_release(buf);
    }
    CHECK(mitkbuf_buffer_new(SIZE_MAX, 0, &buf) != MITKBUF_OK, "SIZE_MAX cannot be allocated");
    CHECK(mitkbuf_buffer_new(SIZE_MAX - 10, 0, &buf) == MITKBUF_EOVERFLOW, "rounding overflow");
    CHECK(mitkbuf_buffer_new((size_t)1 << 62, 0, &buf) == MITKBUF_ENOMEM, "huge: ENOMEM");
    CHECK(mitkbuf_buffer_new(16, 0, NULL) == MITKBUF_EINVAL, "NULL out");

    /* Adoption: the callback runs once, with the context and pointer given, on the last release. */
    static char foreign[100];
    CHECK(mitkbuf_buffer_adopt(foreign, sizeof foreign, on_release, (void *)0x1234, &buf) ==
              MITKBUF_OK, "adopt");
    CHECK(mitkbuf_buffer_data(buf) == foreign, "adopted pointer is used as is");
    mitkbuf_buffer_retain(buf);
    mitkbuf_buffer_release(buf);
    CHECK(atomic_load(&callbacks) == 0, "not called while referenced");
    mitkbuf_buffer_release(buf);
    CHECK(atomic_load(&callbacks) == 1, "called once by the last release");
    CHECK(callback_data == foreign && callback_context == (void *)0x1234, "callback arguments");

    CHECK(mitkbuf_buffer_adopt(NULL, 0, on_release, NULL, &buf) == MITKBUF_OK, "adopt 0 bytes");
    CHECK(mitkbuf_buffer_data(buf) != NULL, "adopted empty buffer reports non-NULL data");
    mitkbuf_buffer_release(buf);
    CHECK(atomic_load(&callbacks) == 2, "empty adoption released once");
    CHECK(mitkbuf_buffer_adopt(NULL, 10, NULL, NULL, &buf) == MITKBUF_EINVAL, "NULL data, 10 bytes");
    CHECK(mitkbuf_buffer_adopt(foreign, 10, NULL, NULL, &buf) == MITKBUF_OK, "no callback");
    mitkbuf_buffer_release(buf);
    CHECK(mitkbuf_buffer_retain(NULL) == MITKBUF_EINVAL && mitkbuf_buffer_release(NULL) ==
              MITKBUF_EINVAL, "NULL buffer");
    CHECK(mitkbuf_buffer_data(NULL) == NULL && mitkbuf_buffer_nbytes(NULL) == 0, "NULL getters");

    /* Many threads retain and release concurrently; the last one calls the callback once. */
    atomic_store(&callbacks, 0);
    CHECK(mitkbuf_buffer_adopt(foreign, 10, on_release, NULL, &buf) == MITKBUF_OK, "adopt");
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++)
        mitkbuf_buffer_retain(buf);
    for (int i = 0; i < THREADS; i++)
        pthread_create(&threads[i], NULL, retain_release, buf);
    mitkbuf_buffer_release(buf); /* the main thread's own reference */
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    CHECK(atomic_load(&callbacks) == 1, "callback exactly once after concurrent releases");

    /* The block cache: a freed large block is reused, its limit can shrink it to nothing. */
    size_t big = (size_t)8 << 20;
    void *first;
    CHECK(mitkbuf_buffer_new(big, 0, &buf) == MITKBUF_OK, "big");
    first = mitkbuf_buffer_data(buf);
    mitkbuf_buffer_release(buf);
    CHECK(mitkbuf_cache_bytes() >= big, "freed big block is cached");
    CHECK(mitkbuf_buffer_new(big, 0, &buf) == MITKBUF_OK, "big again");
    CHECK(mitkbuf_buffer_data(buf) == first, "cached block reused");
    mitkbuf_buffer_release(buf);
    size_t old = mitkbuf_cache_limit(0, 1);
    CHECK(old == ((size_t)256 << 20), "default limit 256 MiB");
    CHECK(mitkbuf_cache_bytes() == 0, "limit 0 empties the cache");
    CHECK(mitkbuf_buffer_new(big, 0, &buf) == MITKBUF_OK, "big without cache");
    mitkbuf_buffer_release(buf);
    CHECK(mitkbuf_cache_bytes() == 0, "nothing cached with limit 0");
    mitkbuf_cache_limit(old, 1);
    return finish();
}
