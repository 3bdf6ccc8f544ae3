# mitk._core.buffer: the PUBLIC Cython API of mitk.  Frozen: consumers compiled against one version
# keep working with later ones while MITK_CAPI_VERSION stays the same.
#
#     from mitk._core.buffer cimport PixelBuffer, buffer_data, buffer_lock_read, ...
#
# Build with mitk.get_include() on Cython's include path; no C header and no include directory
# are needed for the C compiler.  Get a buffer from Python with ``img.pixel_buffer``.
#
# Every function below:
#   * takes a typed PixelBuffer, so passing another object fails in the caller's typed conversion
#     with TypeError (before the call); passing None returns NULL / 0 / LOCK_ERROR, never crashes;
#   * is ``noexcept nogil``: callable with or without the GIL, never raises;
#   * reads fields that are immutable for the life of the PixelBuffer (data, shape, ...), so no
#     lock is needed to *look* at the layout.  Reading or writing *pixels* concurrently with other
#     threads is safe only while holding the matching lock.
#
# Locking: one reader/writer lock per buffer, shared with mitk's Python accessors
# (img.read()/img.write()), with the same rules: many readers or one writer; a waiting writer
# blocks new readers, but a thread that already holds a read lock may take another; a request the
# calling thread could never get (write while it holds any lock on this buffer, read while it holds
# the write lock) returns LOCK_DEADLOCK at once.  The calling thread is the owner: unlock from the
# thread that locked.  A lock held when the process forks stays held in the child.

cdef enum:
    # Bumped whenever the layout below or a signature changes.
    MITK_CAPI_VERSION = 1
    # Highest number of axes (NumPy order, components last) a PixelBuffer has.
    MITK_MAX_NDIM = 8

# Status codes of the lock functions.
cdef enum:
    LOCK_OK = 0        # acquired / released
    LOCK_BUSY = 1      # try-lock: held in a conflicting mode
    LOCK_TIMEOUT = 2   # timed lock: not acquired before the timeout
    LOCK_DEADLOCK = 3  # the calling thread itself holds a conflicting lock on this buffer
    LOCK_ERROR = 4     # None buffer, unlock of a lock not held, NaN timeout, out of memory


cdef class PixelBuffer:
    # Private fields: read them through the functions below, never directly (their layout is
    # covered by MITK_CAPI_VERSION, but only the functions are API).
    cdef void *_mem
    cdef void *_lock
    cdef char *_data
    cdef Py_ssize_t _nbytes
    cdef Py_ssize_t _itemsize
    cdef int _ndim
    cdef bint _readonly
    cdef Py_ssize_t _shape[8]
    cdef Py_ssize_t _strides[8]
    cdef char _format[4]
    cdef Py_ssize_t _exports
    cdef object _dtype
    cdef object __weakref__
    cdef void *_reserved[4]


# Pointer to the first pixel: never NULL for a valid buffer (also when it holds zero bytes).
cdef void *buffer_data(PixelBuffer b) noexcept nogil
# Number of axes, the component axis included (NumPy order (t, z, y, x, c)).
cdef int buffer_ndim(PixelBuffer b) noexcept nogil
# buffer_ndim(b) sizes, NumPy order; valid as long as the caller holds a reference to b.
cdef const Py_ssize_t *buffer_shape(PixelBuffer b) noexcept nogil
# buffer_ndim(b) strides in bytes (the buffer is C-contiguous).
cdef const Py_ssize_t *buffer_strides(PixelBuffer b) noexcept nogil
# Bytes per component and total bytes.
cdef Py_ssize_t buffer_itemsize(PixelBuffer b) noexcept nogil
cdef Py_ssize_t buffer_nbytes(PixelBuffer b) noexcept nogil
# PEP 3118 format of one component ("f", "h", "Zd", ...), NUL-terminated, native byte order.
cdef const char *buffer_format(PixelBuffer b) noexcept nogil
# 1 if the pixels must not be written (adopted read-only memory); 1 for None.
cdef bint buffer_readonly(PixelBuffer b) noexcept nogil

# Blocking lock for the calling thread.  timeout in seconds; negative waits forever; 0 tries once
# (LOCK_BUSY).  Call without the GIL when the wait may be long (other Python threads keep running).
# A read of an otherwise unlocked buffer (nested reads by the same thread included) and its unlock
# are one atomic compare-and-swap each: cheap enough to take per tile or per slice.
cdef int buffer_lock_read(PixelBuffer b, double timeout) noexcept nogil
cdef int buffer_lock_write(PixelBuffer b, double timeout) noexcept nogil
# A write lock on a read-only buffer returns LOCK_ERROR.
# Non-blocking: LOCK_OK or LOCK_BUSY (or LOCK_DEADLOCK / LOCK_ERROR).
cdef int buffer_trylock_read(PixelBuffer b) noexcept nogil
cdef int buffer_trylock_write(PixelBuffer b) noexcept nogil
# Release one read hold / the write hold taken by the calling thread.  LOCK_ERROR if it holds none.
cdef int buffer_unlock_read(PixelBuffer b) noexcept nogil
cdef int buffer_unlock_write(PixelBuffer b) noexcept nogil
