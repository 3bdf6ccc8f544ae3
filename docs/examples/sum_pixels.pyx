# cython: language_level=3
"""Sum the pixels of a float32 image under its read lock, without the GIL."""

from mitk._core.buffer cimport (
    PixelBuffer, LOCK_OK, buffer_data, buffer_format, buffer_itemsize, buffer_lock_read,
    buffer_nbytes, buffer_unlock_read,
)


def sum_float32(PixelBuffer buf, double timeout=-1.0):
    """Return the sum of every pixel; ``buf`` is ``img.pixel_buffer``."""
    cdef const float *p
    cdef Py_ssize_t i, n
    cdef double total = 0.0
    cdef int status
    if buffer_format(buf)[0] != b"f" or buffer_itemsize(buf) != 4:
        raise TypeError("sum_float32 needs a float32 image")
    with nogil:
        # Other Python threads run while this waits; negative timeout: wait forever.
        status = buffer_lock_read(buf, timeout)
        if status == LOCK_OK:
            p = <const float *> buffer_data(buf)
            n = buffer_nbytes(buf) // 4
            for i in range(n):
                total += p[i]
            buffer_unlock_read(buf)
    if status != LOCK_OK:
        raise RuntimeError(f"read lock not obtained (status {status})")
    return total
