# cython: language_level=3, freethreading_compatible=True
"""A downstream extension using mitk's public Cython API (mitk/_core/buffer.pxd)."""

from mitk._core.buffer cimport (
    PixelBuffer, MITK_CAPI_VERSION, LOCK_OK, LOCK_BUSY, LOCK_TIMEOUT, LOCK_DEADLOCK, LOCK_ERROR,
    buffer_data, buffer_ndim, buffer_shape, buffer_strides, buffer_itemsize, buffer_nbytes,
    buffer_format, buffer_readonly, buffer_lock_read, buffer_lock_write, buffer_trylock_read,
    buffer_trylock_write, buffer_unlock_read, buffer_unlock_write,
)

CAPI_VERSION = MITK_CAPI_VERSION
STATUS = {"OK": LOCK_OK, "BUSY": LOCK_BUSY, "TIMEOUT": LOCK_TIMEOUT,
          "DEADLOCK": LOCK_DEADLOCK, "ERROR": LOCK_ERROR}


def sum_float64(PixelBuffer buf, double timeout=-1.0):
    """Sum float64 pixels under the read lock, entirely without the GIL."""
    cdef double total = 0.0
    cdef const double *p
    cdef Py_ssize_t i, n
    cdef int status
    with nogil:
        status = buffer_lock_read(buf, timeout)
        if status == LOCK_OK:
            p = <const double *> buffer_data(buf)
            n = buffer_nbytes(buf) // buffer_itemsize(buf)
            for i in range(n):
                total += p[i]
            buffer_unlock_read(buf)
    if status != LOCK_OK:
        raise RuntimeError(f"lock status {status}")
    return total


def fill_int32(PixelBuffer buf, int value):
    """Write every pixel under the write lock without the GIL; returns the lock status."""
    cdef int *p
    cdef Py_ssize_t i, n
    cdef int status
    with nogil:
        status = buffer_lock_write(buf, -1.0)
        if status == LOCK_OK:
            p = <int *> buffer_data(buf)
            n = buffer_nbytes(buf) // 4
            for i in range(n):
                p[i] = value
            status = buffer_unlock_write(buf)
    return status


def layout(PixelBuffer buf):
    """(ndim, shape, strides, itemsize, nbytes, format, readonly) as the C API reports them."""
    cdef int nd = buffer_ndim(buf)
    cdef const Py_ssize_t *shape = buffer_shape(buf)
    cdef const Py_ssize_t *strides = buffer_strides(buf)
    fmt = buffer_format(buf)
    return (nd,
            tuple(shape[i] for i in range(nd)) if shape != NULL else None,
            tuple(strides[i] for i in range(nd)) if strides != NULL else None,
            buffer_itemsize(buf), buffer_nbytes(buf),
            fmt.decode("ascii") if fmt != NULL else None,
            buffer_readonly(buf),
            buffer_data(buf) != NULL)


def try_read(PixelBuffer buf):
    return buffer_trylock_read(buf)


def try_write(PixelBuffer buf):
    return buffer_trylock_write(buf)


def lock_read(PixelBuffer buf, double timeout):
    cdef int status
    with nogil:
        status = buffer_lock_read(buf, timeout)
    return status


def lock_write(PixelBuffer buf, double timeout):
    cdef int status
    with nogil:
        status = buffer_lock_write(buf, timeout)
    return status


def unlock_read(PixelBuffer buf):
    return buffer_unlock_read(buf)


def unlock_write(PixelBuffer buf):
    return buffer_unlock_write(buf)
