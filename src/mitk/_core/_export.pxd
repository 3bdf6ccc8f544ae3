# PRIVATE: filling a Py_buffer for PEP 3118 exports of PixelBuffer and the accessors.
from cpython.buffer cimport (
    PyBUF_ND, PyBUF_STRIDES, PyBUF_FORMAT, PyBUF_WRITABLE,
    PyBUF_C_CONTIGUOUS, PyBUF_F_CONTIGUOUS, PyBUF_ANY_CONTIGUOUS,
)


cdef inline bint _f_contiguous_too(int ndim, const Py_ssize_t *shape) noexcept nogil:
    # C-contiguous data is also Fortran-contiguous iff at most one axis is longer than 1.
    cdef int i, longer = 0
    for i in range(ndim):
        if shape[i] > 1:
            longer += 1
    return longer <= 1


cdef inline int fill_buffer(Py_buffer *view, char *data, Py_ssize_t nbytes,
                            int ndim, Py_ssize_t *shape, Py_ssize_t *strides,
                            Py_ssize_t itemsize, char *fmt, bint readonly, int flags) except -1:
    """Fill ``view`` for a C-contiguous block, honouring the request flags (PEP 3118).

    Raises BufferError for a writable request on read-only memory and for a Fortran-contiguous
    request the layout cannot satisfy.  Does not touch export counters.
    """
    if (flags & PyBUF_WRITABLE) == PyBUF_WRITABLE and readonly:
        raise BufferError("the pixels are read-only; a writable buffer was requested")
    if (flags & PyBUF_F_CONTIGUOUS) == PyBUF_F_CONTIGUOUS and \
            (flags & PyBUF_ANY_CONTIGUOUS) != PyBUF_ANY_CONTIGUOUS and \
            not _f_contiguous_too(ndim, shape):
        raise BufferError("the pixels are C-contiguous, not Fortran-contiguous")
    # Never export NULL, not even for zero bytes (ARROW-16048): data is never NULL here.
    view.buf = data
    view.len = nbytes
    view.readonly = readonly
    view.suboffsets = NULL
    view.internal = NULL
    if (flags & PyBUF_ND) == PyBUF_ND:
        view.ndim = ndim
        view.shape = shape
        view.itemsize = itemsize
        if (flags & PyBUF_FORMAT) == PyBUF_FORMAT:
            view.format = fmt
        else:
            view.format = NULL
        # Contiguous data: strides may be omitted unless asked for.
        view.strides = strides if (flags & PyBUF_STRIDES) == PyBUF_STRIDES else NULL
    else:
        # A simple request sees the block as unsigned bytes (as PyBuffer_FillInfo does).
        view.ndim = 1
        view.shape = NULL
        view.strides = NULL
        view.itemsize = 1
        if (flags & PyBUF_FORMAT) == PyBUF_FORMAT:
            view.format = "B"
        else:
            view.format = NULL
    return 0
