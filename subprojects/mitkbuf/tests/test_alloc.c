/* Allocation: alignment, zeroing, zero-size buffers, adoption of foreign memory, the block cache
 * and the error statuses.  (Reference counting across threads: test_refcount.c.) */
#include "check.h"
#include "mitkbuf.h"

#include <stdint.h>
#include <string.h>

static int calls = 0;
static void *seen_context = NULL;
static void *seen_data = NULL;

static void on_release(void *context, void *data)
{
    calls++;
    seen_context = context;
    seen_data = data;
}

static int all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

static int aligned(const void *p) { return ((uintptr_t)p % MITKBUF_ALIGNMENT) == 0; }

static void test_sizes(void)
{
    const size_t sizes[] = {0, 1, 63, 64, 65, 4095, 4096, ((size_t)1 << 20) - 1, (size_t)1 << 20,
                            ((size_t)1 << 20) + 3, (size_t)5 << 20};
    char what[96];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        mitkbuf_buffer *buf = NULL;
        int ok;
        for (int zeroed = 1; zeroed >= 0; zeroed--) {
            snprintf(what, sizeof what, "new(%zu, zeroed=%d): OK, one reference", n, zeroed);
            ok = mitkbuf_buffer_new(n, zeroed, &buf) == MITKBUF_OK && buf != NULL &&
                 mitkbuf_buffer_refcount(buf) == 1;
            CHECK(ok, what);
            if (!ok)
                continue;
            snprintf(what, sizeof what, "new(%zu, zeroed=%d): non-NULL, 64-byte aligned", n, zeroed);
            CHECK(mitkbuf_buffer_data(buf) != NULL && aligned(mitkbuf_buffer_data(buf)), what);
            snprintf(what, sizeof what, "new(%zu, zeroed=%d): nbytes", n, zeroed);
            CHECK(mitkbuf_buffer_nbytes(buf) == n, what);
            if (zeroed) {
                snprintf(what, sizeof what, "new(%zu, zeroed=1): every byte is 0", n);
                CHECK(all_zero(mitkbuf_buffer_data(buf), n), what);
            }
            /* Every byte is writable (ASan checks the bounds); the dirt tests recycling below. */
            memset(mitkbuf_buffer_data(buf), 0xAB, n);
            snprintf(what, sizeof what, "new(%zu, zeroed=%d): release", n, zeroed);
            CHECK(mitkbuf_buffer_release(buf) == MITKBUF_OK, what);
        }
        /* A block recycled from the cache must be zeroed again when zeroing is asked for. */
        snprintf(what, sizeof what, "new(%zu, zeroed=1) after dirty ones: every byte is 0", n);
        CHECK(mitkbuf_buffer_new(n, 1, &buf) == MITKBUF_OK && all_zero(mitkbuf_buffer_data(buf), n),
              what);
        mitkbuf_buffer_release(buf);
    }
}

static void test_zero_size(void)
{
    mitkbuf_buffer *a = NULL, *b = NULL;
    CHECK(mitkbuf_buffer_new(0, 0, &a) == MITKBUF_OK && mitkbuf_buffer_new(0, 1, &b) == MITKBUF_OK,
          "two zero-byte buffers");
    CHECK(mitkbuf_buffer_data(a) != NULL && mitkbuf_buffer_data(b) != NULL &&
              mitkbuf_buffer_data(a) != mitkbuf_buffer_data(b),
          "zero-byte buffers have distinct non-NULL pointers");
    CHECK(aligned(mitkbuf_buffer_data(a)) && aligned(mitkbuf_buffer_data(b)),
          "zero-byte buffers are 64-byte aligned");
    CHECK(mitkbuf_buffer_nbytes(a) == 0 && mitkbuf_buffer_nbytes(b) == 0, "zero-byte buffers: nbytes 0");
    mitkbuf_buffer_release(a);
    mitkbuf_buffer_release(b);
}

static void test_errors(void)
{
    mitkbuf_buffer *buf = (mitkbuf_buffer *)&buf; /* must stay untouched on failure */
    mitkbuf_buffer *const sentinel = buf;
    CHECK(mitkbuf_buffer_new(SIZE_MAX, 0, &buf) == MITKBUF_EOVERFLOW && buf == sentinel,
          "new(SIZE_MAX): EOVERFLOW (cannot be rounded up), *out untouched");
    CHECK(mitkbuf_buffer_new(SIZE_MAX - 10, 1, &buf) == MITKBUF_EOVERFLOW,
          "new(SIZE_MAX - 10): EOVERFLOW");
    CHECK(mitkbuf_buffer_new((size_t)PTRDIFF_MAX + 1, 0, &buf) == MITKBUF_ENOMEM && buf == sentinel,
          "new(PTRDIFF_MAX + 1): ENOMEM");
#if SIZE_MAX == UINT64_MAX
    CHECK(mitkbuf_buffer_new((size_t)1 << 62, 0, &buf) == MITKBUF_ENOMEM && buf == sentinel,
          "new(2^62) uninitialised: ENOMEM from the allocator");
    CHECK(mitkbuf_buffer_new((size_t)1 << 62, 1, &buf) == MITKBUF_ENOMEM && buf == sentinel,
          "new(2^62) zeroed: ENOMEM from the allocator");
#endif
    CHECK(mitkbuf_buffer_new(16, 0, NULL) == MITKBUF_EINVAL, "new with NULL out: EINVAL");
    CHECK(mitkbuf_buffer_adopt(NULL, 10, NULL, NULL, &buf) == MITKBUF_EINVAL && buf == sentinel,
          "adopt(NULL, 10 bytes): EINVAL");
    CHECK(mitkbuf_buffer_adopt(&buf, 1, NULL, NULL, NULL) == MITKBUF_EINVAL, "adopt with NULL out: EINVAL");
    CHECK(mitkbuf_buffer_retain(NULL) == MITKBUF_EINVAL, "retain(NULL): EINVAL");
    CHECK(mitkbuf_buffer_release(NULL) == MITKBUF_EINVAL, "release(NULL): EINVAL");
    CHECK(mitkbuf_buffer_data(NULL) == NULL && mitkbuf_buffer_nbytes(NULL) == 0 &&
              mitkbuf_buffer_refcount(NULL) == 0,
          "getters on NULL: NULL / 0 / 0");
}

static void test_adopt(void)
{
    static unsigned char foreign[100];
    mitkbuf_buffer *buf = NULL;

    calls = 0;
    CHECK(mitkbuf_buffer_adopt(foreign + 1, 99, on_release, (void *)&calls, &buf) == MITKBUF_OK,
          "adopt foreign memory");
    CHECK(mitkbuf_buffer_data(buf) == foreign + 1 && mitkbuf_buffer_nbytes(buf) == 99,
          "adopted pointer and size are used as given (no copy, no alignment imposed)");
    CHECK(mitkbuf_buffer_retain(buf) == MITKBUF_OK && mitkbuf_buffer_refcount(buf) == 2, "retain: 2");
    mitkbuf_buffer_release(buf);
    CHECK(calls == 0 && mitkbuf_buffer_refcount(buf) == 1, "callback not called while referenced");
    mitkbuf_buffer_release(buf);
    CHECK(calls == 1, "callback called once by the last release");
    CHECK(seen_data == foreign + 1 && seen_context == (void *)&calls,
          "callback gets the adopter's context and pointer");

    calls = 0;
    seen_data = foreign;
    CHECK(mitkbuf_buffer_adopt(NULL, 0, on_release, NULL, &buf) == MITKBUF_OK, "adopt NULL, 0 bytes");
    CHECK(mitkbuf_buffer_data(buf) != NULL && aligned(mitkbuf_buffer_data(buf)) &&
              mitkbuf_buffer_nbytes(buf) == 0,
          "an empty adopted buffer reports a non-NULL aligned pointer");
    mitkbuf_buffer_release(buf);
    CHECK(calls == 1 && seen_data == NULL, "its callback runs once and gets back NULL, as adopted");

    CHECK(mitkbuf_buffer_adopt(foreign, 0, on_release, NULL, &buf) == MITKBUF_OK &&
              mitkbuf_buffer_data(buf) == foreign,
          "adopt a non-NULL pointer with 0 bytes: kept as is");
    mitkbuf_buffer_release(buf);
    CHECK(calls == 2 && seen_data == foreign, "its callback runs once");

    CHECK(mitkbuf_buffer_adopt(foreign, sizeof foreign, NULL, NULL, &buf) == MITKBUF_OK,
          "adopt without a callback");
    CHECK(mitkbuf_buffer_release(buf) == MITKBUF_OK && calls == 2,
          "release without a callback forgets the memory");
}

static void test_cache(void)
{
    const size_t big = (size_t)8 << 20;
    size_t old;
    mitkbuf_buffer *buf = NULL;
    void *first;

    CHECK(mitkbuf_cache_limit(0, 0) == ((size_t)256 << 20), "default cache limit: 256 MiB");
    CHECK(mitkbuf_buffer_new(big, 0, &buf) == MITKBUF_OK, "8 MiB buffer");
    first = mitkbuf_buffer_data(buf);
    mitkbuf_buffer_release(buf);
    CHECK(mitkbuf_cache_bytes() >= big, "a freed large block is cached");
    CHECK(mitkbuf_buffer_new(big - 100, 1, &buf) == MITKBUF_OK && mitkbuf_buffer_data(buf) == first,
          "and reused for a request of about the same size");
    CHECK(all_zero(mitkbuf_buffer_data(buf), big - 100), "a reused block is zeroed when asked");
    mitkbuf_buffer_release(buf);

    CHECK(mitkbuf_buffer_new(4096, 0, &buf) == MITKBUF_OK, "a small buffer");
    mitkbuf_buffer_release(buf);
    CHECK(mitkbuf_cache_bytes() <= ((size_t)256 << 20), "the cache stays within its limit");

    old = mitkbuf_cache_limit(0, 1);
    CHECK(old == ((size_t)256 << 20), "setting the limit returns the old one");
    CHECK(mitkbuf_cache_bytes() == 0, "limit 0 empties the cache");
    CHECK(mitkbuf_buffer_new(big, 0, &buf) == MITKBUF_OK, "allocate with the cache off");
    mitkbuf_buffer_release(buf);
    CHECK(mitkbuf_cache_bytes() == 0, "nothing is cached with limit 0");
    CHECK(mitkbuf_cache_limit(old, 1) == 0 && mitkbuf_cache_limit(0, 0) == old, "limit restored");

    /* A full cache evicts its least recently cached blocks for a newly freed one: stale blocks
     * of other sizes never keep the current size out. */
    {
        mitkbuf_buffer *olds[4], *fresh = NULL;
        void *fresh_data;
        mitkbuf_cache_limit((size_t)40 << 20, 1);
        for (int i = 0; i < 4; i++)  /* 4 x 8 MiB: 32 of the 40 MiB */
            CHECK(mitkbuf_buffer_new(big + (size_t)i * (64 << 10), 0, &olds[i]) == MITKBUF_OK,
                  "8 MiB buffers of four sizes");
        for (int i = 0; i < 4; i++)
            mitkbuf_buffer_release(olds[i]);
        CHECK(mitkbuf_cache_bytes() >= 4 * big, "the four blocks are cached");
        CHECK(mitkbuf_buffer_new((size_t)12 << 20, 0, &fresh) == MITKBUF_OK, "a 12 MiB buffer");
        fresh_data = mitkbuf_buffer_data(fresh);
        mitkbuf_buffer_release(fresh);
        CHECK(mitkbuf_cache_bytes() <= ((size_t)40 << 20), "the cache stays within its limit");
        CHECK(mitkbuf_buffer_new((size_t)12 << 20, 0, &fresh) == MITKBUF_OK &&
                  mitkbuf_buffer_data(fresh) == fresh_data,
              "the newest block was cached (older ones evicted) and is reused");
        mitkbuf_buffer_release(fresh);
        /* The most recent of the old blocks survived the eviction. */
        CHECK(mitkbuf_buffer_new(big + 3 * (64 << 10), 0, &fresh) == MITKBUF_OK,
              "the newest old size again");
        mitkbuf_buffer_release(fresh);
        mitkbuf_cache_limit(old, 1);
    }

    /* A limit smaller than a block: the block is freed, not cached. */
    mitkbuf_cache_limit((size_t)2 << 20, 1);
    CHECK(mitkbuf_buffer_new(big, 0, &buf) == MITKBUF_OK, "allocate 8 MiB under a 2 MiB limit");
    mitkbuf_buffer_release(buf);
    CHECK(mitkbuf_cache_bytes() == 0, "a block larger than the limit is not cached");
    mitkbuf_cache_limit(old, 1);
}

int main(void)
{
    test_sizes();
    test_zero_size();
    test_errors();
    test_adopt();
    test_cache();
    return finish();
}
