/* Buffer objects: creation, adoption, and the atomic reference count. */
#include "mitkbuf_internal.h"

#include <stdlib.h>

/* What an adopted zero-byte buffer reports as its data pointer: valid, aligned, never NULL. */
static _Alignas(MITKBUF_ALIGNMENT) unsigned char empty_area[MITKBUF_ALIGNMENT];

int mitkbuf_buffer_new(size_t nbytes, int zeroed, mitkbuf_buffer **out)
{
    mitkbuf_buffer *buf;
    int status;
    if (out == NULL)
        return MITKBUF_EINVAL;
    buf = malloc(sizeof *buf);
    if (buf == NULL)
        return MITKBUF_ENOMEM;
    status = mitkbuf__block_alloc(nbytes, zeroed, &buf->data, &buf->capacity);
    if (status != MITKBUF_OK) {
        free(buf);
        return status;
    }
    buf->nbytes = nbytes;
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
    buf->data = data != NULL ? data : (void *)empty_area;
    buf->nbytes = nbytes;
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

int mitkbuf_buffer_retain(mitkbuf_buffer *buf)
{
    if (buf == NULL)
        return MITKBUF_EINVAL;
    /* Relaxed: a new reference can only be made from an existing one. */
    atomic_fetch_add_explicit(&buf->refcount, 1, memory_order_relaxed);
    return MITKBUF_OK;
}

int mitkbuf_buffer_release(mitkbuf_buffer *buf)
{
    if (buf == NULL)
        return MITKBUF_EINVAL;
    /* acq_rel: every write made through other references happens before the free. */
    if (atomic_fetch_sub_explicit(&buf->refcount, 1, memory_order_acq_rel) != 1)
        return MITKBUF_OK;
    if (buf->owned)
        mitkbuf__block_free(buf->data, buf->capacity);
    else if (buf->release != NULL)
        buf->release(buf->context, buf->data == (void *)empty_area ? NULL : buf->data);
    free(buf);
    return MITKBUF_OK;
}

long mitkbuf_buffer_refcount(const mitkbuf_buffer *buf)
{
    return buf != NULL ? atomic_load(&((mitkbuf_buffer *)buf)->refcount) : 0;
}
