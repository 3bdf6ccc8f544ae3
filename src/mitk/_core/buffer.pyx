"""PixelBuffer: the pixel memory of an image, with its reader/writer lock.

A PixelBuffer owns (or adopts, without copying) one C-contiguous block of pixels described by a
NumPy dtype and a NumPy-order shape (components last), and exports it through the buffer protocol
(PEP 3118).  It is immutable after construction: data pointer, dtype, shape and strides never
change, which is what makes the lock-free reads of the Cython API (buffer.pxd) safe.  An image is
re-initialised by replacing its PixelBuffer, never by mutating one.
"""

cimport cython
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_RECORDS_RO, PyBUF_C_CONTIGUOUS
from libc.stdint cimport uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, strncpy
from libc.math cimport isnan

from mitk._core._mitkbuf cimport *
from mitk._core._check cimport check, raise_status
from mitk._core._owner cimport thread_owner
from mitk._core._atomic cimport mitk_atomic_add, mitk_atomic_load
from mitk._core._export cimport fill_buffer
from mitk._core.component_types cimport check_dtype, format_of

import pickle

import numpy as np
from mitk.errors import ArgumentError

__all__ = ["PixelBuffer", "CAPI_VERSION", "buffer_cache"]

CAPI_VERSION = MITK_CAPI_VERSION  # the Python-visible copy of buffer.pxd's enum


cdef void _release_adopted(void *context, void *data) noexcept nogil:
    # Called exactly once by mitkbuf when the last reference to adopted memory goes; may run in
    # any thread, with or without the GIL, so take it before touching the exporter.
    cdef Py_buffer *view = <Py_buffer *> context
    with gil:
        PyBuffer_Release(view)
    free(view)


cdef int _parse_shape(object shape, Py_ssize_t itemsize, Py_ssize_t *out_shape,
                      Py_ssize_t *out_strides, Py_ssize_t *nbytes) except -1:
    """Validate a NumPy-order shape and compute C strides and the byte count (overflow-checked)."""
    cdef size_t sizes[8]
    cdef size_t total
    cdef int ndim, i
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"shape must be a sequence of ints, not {type(shape).__name__}") from None
    ndim = len(dims)
    if ndim < 1 or ndim > 8:
        raise ArgumentError(f"shape {dims} has {ndim} axes; a pixel buffer has 1 to 8")
    for i in range(ndim):
        d = dims[i]
        if isinstance(d, bool) or not hasattr(d, "__index__"):
            raise TypeError(f"shape[{i}] must be an int, not {type(d).__name__}")
        d = d.__index__()
        if d < 0:
            raise ArgumentError(f"shape[{i}] is {d}; sizes must be >= 0")
        if d > <object> PY_SSIZE_T_MAX:
            raise ArgumentError(f"shape[{i}] = {d} overflows the address space")
        sizes[i] = <size_t> d
        out_shape[i] = <Py_ssize_t> d
    status = mitkbuf_size_product(sizes, ndim, <size_t> itemsize, &total)
    if status != MITKBUF_OK:
        raise ArgumentError(
            f"shape {dims} x {itemsize} bytes per component overflows the address space")
    nbytes[0] = <Py_ssize_t> total
    stride = itemsize
    for i in range(ndim - 1, -1, -1):
        out_strides[i] = stride
        stride *= out_shape[i] if out_shape[i] > 0 else 1
    return ndim


cdef extern from *:
    """
    #define PY_SSIZE_T_MAX_VALUE PY_SSIZE_T_MAX
    """
    Py_ssize_t PY_SSIZE_T_MAX "PY_SSIZE_T_MAX_VALUE"


cdef int _set_layout(PixelBuffer self, object dtype, object shape) except -1:
    # A module-level function, not a method: methods would change the frozen vtable of the
    # public type.
    self._dtype = check_dtype(dtype)
    self._itemsize = self._dtype.itemsize
    fmt = format_of(self._dtype)
    strncpy(self._format, <char *> fmt, 3)
    self._format[3] = 0
    self._ndim = _parse_shape(shape, self._itemsize, self._shape, self._strides, &self._nbytes)
    return 0



cdef class PixelBuffer:
    """A block of pixel memory with a dtype, a NumPy-order shape and a reader/writer lock.

    Create one with :meth:`new` (mitk allocates, 64-byte aligned) or :meth:`adopt` (wraps
    another object's memory without copying).  Instances are immutable after construction and
    safe to share between threads.

    Notes
    -----
    Exports a C-contiguous buffer (PEP 3118) whose format is the native PEP 3118 code of the dtype
    and whose shape is :attr:`shape`; ``memoryview(buf)`` and ``numpy.asarray(buf)`` are zero-copy
    views that keep the buffer alive.  A direct export takes no lock.  The lock is taken through
    :class:`~mitk._core.accessor.ReadAccessor` / ``WriteAccessor`` or the Cython API.
    """

    def __cinit__(self):
        cdef mitkbuf_rwlock *lock = NULL
        check(mitkbuf_rwlock_new(&lock))
        self._lock = lock
        self._mem = NULL
        self._exports = 0

    def __init__(self):
        raise TypeError("use PixelBuffer.new(dtype, shape) or PixelBuffer.adopt(obj)")

    def __dealloc__(self):
        # No export can be alive: every export holds a reference to self.  The lock is free too:
        # accessors and Cython consumers hold a reference while they hold it.
        if self._mem != NULL:
            mitkbuf_buffer_release(<mitkbuf_buffer *> self._mem)
            self._mem = NULL
        if self._lock != NULL:
            mitkbuf_rwlock_free(<mitkbuf_rwlock *> self._lock)
            self._lock = NULL

    @staticmethod
    def new(dtype, shape, bint zeroed=True):
        """Allocate a new 64-byte-aligned buffer.

        Parameters
        ----------
        dtype : dtype-like
            A supported pixel component type (TypeError otherwise).
        shape : sequence of int
            NumPy-order sizes, components last; 1 to 8 axes, each >= 0.
        zeroed : bool
            Zero-fill (default); ``False`` leaves the contents undefined (for readers that fill
            every byte).

        Raises
        ------
        TypeError, ArgumentError, MemoryError
            Unsupported dtype; bad or overflowing shape; allocation failure.

        Notes
        -----
        The allocation and zero-fill run without the GIL.
        """
        cdef PixelBuffer self = PixelBuffer.__new__(PixelBuffer)
        cdef mitkbuf_buffer *mem = NULL
        cdef int status
        cdef size_t nbytes
        _set_layout(self, dtype, shape)
        nbytes = <size_t> self._nbytes
        with nogil:  # large calloc/memset: other threads keep running
            status = mitkbuf_buffer_new(nbytes, zeroed, &mem)
        if status != MITKBUF_OK:
            if status == MITKBUF_ENOMEM:
                raise MemoryError(f"could not allocate {self._nbytes} bytes for pixels")
            raise_status(status, "allocating pixels")
        self._mem = mem
        self._data = <char *> mitkbuf_buffer_data(mem)
        self._readonly = False
        return self

    @staticmethod
    def adopt(obj, dtype=None, shape=None):
        """Wrap the memory of ``obj`` without copying.

        Parameters
        ----------
        obj : buffer-protocol object
            C-contiguous memory (e.g. a C-contiguous NumPy array).  It is kept alive, and its
            export held, until the last reference to this buffer and its views is gone.
        dtype, shape : optional
            Layout to present; default: the exporter's own format and shape.  The byte count must
            match the exporter's exactly.

        Raises
        ------
        ArgumentError
            The memory is not C-contiguous or the sizes do not match.
        TypeError
            ``obj`` does not support the buffer protocol, or its format is not a pixel type.

        Notes
        -----
        A read-only exporter gives a read-only buffer.  Writes made through ``obj`` directly
        are seen by the buffer and bypass its lock.
        """
        cdef PixelBuffer self = PixelBuffer.__new__(PixelBuffer)
        cdef Py_buffer *view = <Py_buffer *> malloc(sizeof(Py_buffer))
        cdef mitkbuf_buffer *mem = NULL
        cdef int status
        if view == NULL:
            raise MemoryError()
        try:
            PyObject_GetBuffer(obj, view, PyBUF_RECORDS_RO | PyBUF_C_CONTIGUOUS)
        except TypeError:
            free(view)
            raise TypeError(f"{type(obj).__name__} does not support the buffer protocol") from None
        except (BufferError, ValueError) as exc:
            # Exporters refuse a contiguous request with BufferError or (NumPy) ValueError.
            free(view)
            raise ArgumentError(f"cannot adopt memory that is not C-contiguous ({exc})") from None
        try:
            if dtype is None:
                dtype = np.asarray(obj).dtype  # NumPy's PEP 3118 parser knows every format
            if shape is None:
                shape = tuple(view.shape[i] for i in range(view.ndim)) if view.ndim > 0 else (1,)
            _set_layout(self, dtype, shape)
            if self._nbytes != view.len:
                raise ArgumentError(
                    f"cannot adopt {view.len} bytes as shape {tuple(shape)} of {self._dtype} "
                    f"({self._nbytes} bytes)")
        except BaseException:
            PyBuffer_Release(view)
            free(view)
            raise
        status = mitkbuf_buffer_adopt(view.buf, <size_t> view.len, _release_adopted, view, &mem)
        if status != MITKBUF_OK:
            PyBuffer_Release(view)
            free(view)
            raise_status(status, "adopting memory")
        self._mem = mem
        self._data = <char *> mitkbuf_buffer_data(mem)
        self._readonly = view.readonly
        return self

    # -- PEP 3118 ---------------------------------------------------------------------------

    def __getbuffer__(self, Py_buffer *view, int flags):
        fill_buffer(view, self._data, self._nbytes, self._ndim, self._shape, self._strides,
                    self._itemsize, self._format, self._readonly, flags)
        view.obj = self
        mitk_atomic_add(&self._exports, 1)

    def __releasebuffer__(self, Py_buffer *view):
        mitk_atomic_add(&self._exports, -1)

    # -- introspection ------------------------------------------------------------------------

    @property
    def dtype(self):
        """numpy.dtype: native-order dtype of one component."""
        return self._dtype

    @property
    def shape(self):
        """tuple of int: NumPy-order sizes, components last."""
        return tuple(self._shape[i] for i in range(self._ndim))

    @property
    def strides(self):
        """tuple of int: byte strides (C order)."""
        return tuple(self._strides[i] for i in range(self._ndim))

    @property
    def ndim(self):
        """int: number of axes, the component axis included."""
        return self._ndim

    @property
    def itemsize(self):
        """int: bytes per component."""
        return self._itemsize

    @property
    def nbytes(self):
        """int: size of the pixel data in bytes."""
        return self._nbytes

    @property
    def format(self):
        """str: PEP 3118 format of one component."""
        return self._format.decode("ascii")

    @property
    def readonly(self):
        """bool: True for adopted read-only memory."""
        return bool(self._readonly)

    @property
    def exports(self):
        """int: live buffer exports and accessors (a snapshot)."""
        return mitk_atomic_load(&self._exports)

    @property
    def address(self):
        """int: address of the first byte (for diagnostics and alignment checks)."""
        return <size_t> self._data

    def lock_state(self):
        """Snapshot of the lock: ``(readers, writer_holds, writers_waiting)``."""
        cdef long readers = 0, waiting = 0
        cdef int writer = 0
        check(mitkbuf_rwlock_state(<mitkbuf_rwlock *> self._lock, &readers, &writer, &waiting))
        return readers, bool(writer), waiting

    def __repr__(self):
        return (f"<mitk._core.PixelBuffer shape={self.shape} dtype={self._dtype} "
                f"readonly={bool(self._readonly)} exports={self.exports}>")

    def __reduce_ex__(self, protocol):
        # Protocol 5 hands the pixels over as one PickleBuffer (out of band with a
        # buffer_callback); older protocols embed a bytes copy.
        if protocol >= 5:
            data = pickle.PickleBuffer(self)
        else:
            data = bytes(memoryview(self).cast("B"))
        return _rebuild, (data, self._dtype.str, self.shape, bool(self._readonly))


def _rebuild(data, dtype, shape, readonly):
    # Out-of-band buffers are used as given (as NumPy does): zero-copy, and a read-only one stays
    # read-only.  Bytes embedded by protocols 2-4 are copied when the original was writable.
    if isinstance(data, pickle.PickleBuffer):
        data = data.raw()
    if isinstance(data, bytes) and not readonly:
        copy = PixelBuffer.new(dtype, shape, False)
        memoryview(copy).cast("B")[:] = data
        return copy
    return PixelBuffer.adopt(data, dtype, shape)


def buffer_cache(limit=None):
    """Get (and optionally set) the recycling of large pixel blocks.

    Freed pixel buffers of 1 MiB or more are kept (at most 8 blocks, ``limit`` bytes in all;
    default 256 MiB) and reused for images of nearly the same size, because writing into fresh
    pages costs the kernel's zero-fill and a page fault each (3-5x slower than recycled memory).

    Parameters
    ----------
    limit : int, optional
        New limit in bytes; 0 disables the cache and frees what it holds.

    Returns
    -------
    tuple of int
        ``(limit_in_force_before_the_call, bytes_held_now)``.
    """
    cdef size_t old
    if limit is None:
        old = mitkbuf_cache_limit(0, 0)
    else:
        if isinstance(limit, bool) or not hasattr(limit, "__index__"):
            raise TypeError(f"limit must be an int number of bytes, not {type(limit).__name__}")
        if limit < 0:
            raise ArgumentError(f"limit must be >= 0 bytes, got {limit}")
        old = mitkbuf_cache_limit(<size_t> limit, 1)
    return int(old), int(mitkbuf_cache_bytes())


# -- the public Cython API (declared in buffer.pxd) ---------------------------------------------

cdef inline int _lock_status(int status) noexcept nogil:
    if status == MITKBUF_OK:
        return LOCK_OK
    if status == MITKBUF_EBUSY:
        return LOCK_BUSY
    if status == MITKBUF_ETIMEDOUT:
        return LOCK_TIMEOUT
    if status == MITKBUF_EDEADLK:
        return LOCK_DEADLOCK
    return LOCK_ERROR


cdef void *buffer_data(PixelBuffer b) noexcept nogil:
    if b is None:
        return NULL
    return b._data


cdef int buffer_ndim(PixelBuffer b) noexcept nogil:
    if b is None:
        return 0
    return b._ndim


cdef const Py_ssize_t *buffer_shape(PixelBuffer b) noexcept nogil:
    if b is None:
        return NULL
    return b._shape


cdef const Py_ssize_t *buffer_strides(PixelBuffer b) noexcept nogil:
    if b is None:
        return NULL
    return b._strides


cdef Py_ssize_t buffer_itemsize(PixelBuffer b) noexcept nogil:
    if b is None:
        return 0
    return b._itemsize


cdef Py_ssize_t buffer_nbytes(PixelBuffer b) noexcept nogil:
    if b is None:
        return 0
    return b._nbytes


cdef const char *buffer_format(PixelBuffer b) noexcept nogil:
    if b is None:
        return NULL
    return b._format


cdef bint buffer_readonly(PixelBuffer b) noexcept nogil:
    if b is None:
        return True
    return b._readonly


cdef int buffer_lock_read(PixelBuffer b, double timeout) noexcept nogil:
    if b is None or isnan(timeout):
        return LOCK_ERROR
    return _lock_status(mitkbuf_rwlock_read(<mitkbuf_rwlock *> b._lock, thread_owner(),
                                            timeout if timeout >= 0 else -1.0))


cdef int buffer_lock_write(PixelBuffer b, double timeout) noexcept nogil:
    if b is None or isnan(timeout):
        return LOCK_ERROR
    if b._readonly:
        return LOCK_ERROR
    return _lock_status(mitkbuf_rwlock_write(<mitkbuf_rwlock *> b._lock, thread_owner(),
                                             timeout if timeout >= 0 else -1.0))


cdef int buffer_trylock_read(PixelBuffer b) noexcept nogil:
    return buffer_lock_read(b, 0.0)


cdef int buffer_trylock_write(PixelBuffer b) noexcept nogil:
    return buffer_lock_write(b, 0.0)


cdef int buffer_unlock_read(PixelBuffer b) noexcept nogil:
    if b is None:
        return LOCK_ERROR
    return _lock_status(mitkbuf_rwlock_unlock_read(<mitkbuf_rwlock *> b._lock,
                                                   thread_owner()))


cdef int buffer_unlock_write(PixelBuffer b) noexcept nogil:
    if b is None:
        return LOCK_ERROR
    return _lock_status(mitkbuf_rwlock_unlock_write(<mitkbuf_rwlock *> b._lock,
                                                    thread_owner()))
