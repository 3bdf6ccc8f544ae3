# PRIVATE (SPEC.md section 10): the lock-holding accessors behind img.read() / img.write().
from libc.stdint cimport uint64_t
from mitk._core.buffer cimport PixelBuffer


cdef class _Accessor:
    cdef PixelBuffer _buf
    cdef uint64_t _owner
    cdef bint _write
    # Atomic state: _held 1 while the lock is held; _pending 1 once release was requested while
    # arrays were alive; _exports counts live buffer exports of this accessor.
    cdef Py_ssize_t _held
    cdef Py_ssize_t _pending
    cdef Py_ssize_t _exports
    cdef char *_data
    cdef Py_ssize_t _nbytes
    cdef int _ndim
    cdef Py_ssize_t _shape[8]
    cdef Py_ssize_t _strides[8]
    cdef object _array_ref
    cdef object __weakref__

    cdef int _acquire(self, PixelBuffer buf, object timeout, object frame, bint write) except -1
    cdef int _unlock(self) noexcept
