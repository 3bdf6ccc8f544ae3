/* The atomic reference count of a buffer; the last release gives the memory back.
 *
 * Retain is relaxed: a new reference can only be made from an existing one, which already keeps
 * the object alive, so it needs no ordering.  Release is acq_rel: its release half publishes this
 * thread's writes to the pixels, and the acquire half of the final decrement makes every such
 * write, from any thread, happen before the memory is freed or handed to the adopter's callback
 * (tests/test_refcount.c checks this under ThreadSanitizer).  Only the thread whose decrement
 * takes the count from 1 to 0 sees 1 returned by fetch_sub, so the free or callback runs exactly
 * once.
 */
#include "mitkbuf_internal.h"

#include <stdlib.h>

int mitkbuf_buffer_retain(mitkbuf_buffer *buf)
{
    if (buf == NULL)
        return MITKBUF_EINVAL;
    atomic_fetch_add_explicit(&buf->refcount, 1, memory_order_relaxed);
    return MITKBUF_OK;
}

int mitkbuf_buffer_release(mitkbuf_buffer *buf)
{
    if (buf == NULL)
        return MITKBUF_EINVAL;
    if (atomic_fetch_sub_explicit(&buf->refcount, 1, memory_order_acq_rel) != 1)
        return MITKBUF_OK;
    if (buf->owned) {
        mitkbuf__block block = {buf->base, buf->data, buf->capacity};
        mitkbuf__block_free(&block);
    } else if (buf->release != NULL) {
        /* base is the adopter's own pointer, NULL included (data may be the empty stand-in). */
        buf->release(buf->context, buf->base);
    }
    free(buf);
    return MITKBUF_OK;
}

long mitkbuf_buffer_refcount(const mitkbuf_buffer *buf)
{
    if (buf == NULL)
        return 0;
    /* A snapshot for tests and diagnostics: nothing is ordered by it. */
    return atomic_load_explicit(&buf->refcount, memory_order_relaxed);
}
