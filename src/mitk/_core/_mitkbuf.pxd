# PRIVATE: a 1:1 mirror of subprojects/mitkbuf/include/mitkbuf.h.  Every function is GIL-free by
# construction (plain C, no Python), hence the nogil block.  Not installed: public .pxd files
# never cimport this, so downstream builds need no C header.
from libc.stdint cimport uint64_t

cdef extern from "mitkbuf.h" nogil:
    enum:
        MITKBUF_OK
        MITKBUF_ENOMEM
        MITKBUF_EOVERFLOW
        MITKBUF_EINVAL
        MITKBUF_EBUSY
        MITKBUF_ETIMEDOUT
        MITKBUF_EDEADLK
        MITKBUF_EPERM
        MITKBUF_ESYS
        MITKBUF_ALIGNMENT

    const char *mitkbuf_strerror(int status)

    int mitkbuf_size_mul(size_t a, size_t b, size_t *out)
    int mitkbuf_size_product(const size_t *sizes, int n, size_t itemsize, size_t *out)

    ctypedef struct mitkbuf_buffer:
        pass
    ctypedef void (*mitkbuf_release_fn)(void *context, void *data) noexcept nogil

    int mitkbuf_buffer_new(size_t nbytes, int zeroed, mitkbuf_buffer **out)
    int mitkbuf_buffer_adopt(void *data, size_t nbytes, mitkbuf_release_fn release,
                             void *context, mitkbuf_buffer **out)
    void *mitkbuf_buffer_data(const mitkbuf_buffer *buf)
    size_t mitkbuf_buffer_nbytes(const mitkbuf_buffer *buf)
    int mitkbuf_buffer_retain(mitkbuf_buffer *buf)
    int mitkbuf_buffer_release(mitkbuf_buffer *buf)
    long mitkbuf_buffer_refcount(const mitkbuf_buffer *buf)
    size_t mitkbuf_cache_limit(size_t new_limit, int set)
    size_t mitkbuf_cache_bytes()

    ctypedef struct mitkbuf_rwlock:
        pass
    # Call only from _owner.pyx: every extension module links its own copy of mitkbuf, each with
    # its own numbering, and the lock needs one id per thread across all of them.
    uint64_t mitkbuf_thread_owner()
    int mitkbuf_rwlock_new(mitkbuf_rwlock **out)
    void mitkbuf_rwlock_free(mitkbuf_rwlock *lock)
    int mitkbuf_rwlock_read(mitkbuf_rwlock *lock, uint64_t owner, double timeout)
    int mitkbuf_rwlock_write(mitkbuf_rwlock *lock, uint64_t owner, double timeout)
    int mitkbuf_rwlock_write_queued(mitkbuf_rwlock *lock, uint64_t owner, double timeout)
    int mitkbuf_rwlock_write_cancel(mitkbuf_rwlock *lock, uint64_t owner)
    int mitkbuf_rwlock_unlock_read(mitkbuf_rwlock *lock, uint64_t owner)
    int mitkbuf_rwlock_unlock_write(mitkbuf_rwlock *lock, uint64_t owner)
    int mitkbuf_rwlock_state(mitkbuf_rwlock *lock, long *readers, int *writer,
                             long *writers_waiting)
