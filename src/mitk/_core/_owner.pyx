"""The calling thread's lock-owner id: one numbering for every extension module of mitk.

mitkbuf is linked statically into each extension module, so each module holds its own copy of
mitkbuf's thread-id counter and thread-local id.  If accessors (``accessor``) and the cimport API
(``buffer``) each asked their own copy, a thread would have two ids and two threads could share
one: the lock would report a deadlock where it should wait, or take one thread's unlock for
another's.  Both cimport :func:`thread_owner` from here instead, so there is one copy in use.
"""

from libc.stdint cimport uint64_t

from mitk._core._mitkbuf cimport mitkbuf_thread_owner


cdef uint64_t thread_owner() noexcept nogil:
    """Id of the calling thread, > 0, never reused in this process.  No GIL needed, no lock."""
    return mitkbuf_thread_owner()
