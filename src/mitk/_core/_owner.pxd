# PRIVATE: the calling thread's lock-owner id, one numbering for the whole process.
from libc.stdint cimport uint64_t

cdef uint64_t thread_owner() noexcept nogil
