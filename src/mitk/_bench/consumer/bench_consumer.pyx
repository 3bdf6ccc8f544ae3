# cython: language_level=3, freethreading_compatible=True
"""Tight loops over mitk's cimport lock API and over a bare pthread rwlock, without the GIL."""

from libc.time cimport clock_t
from mitk._core.buffer cimport (PixelBuffer, LOCK_OK, buffer_lock_read, buffer_lock_write,
                                buffer_unlock_read, buffer_unlock_write)

cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_rwlock_t:
        pass
    int pthread_rwlock_init(pthread_rwlock_t *lock, void *attr)
    int pthread_rwlock_rdlock(pthread_rwlock_t *lock)
    int pthread_rwlock_wrlock(pthread_rwlock_t *lock)
    int pthread_rwlock_unlock(pthread_rwlock_t *lock)
    int pthread_rwlock_destroy(pthread_rwlock_t *lock)


def mitk_read_pairs(PixelBuffer buf, long n):
    """n uncontended buffer_lock_read/buffer_unlock_read pairs; returns the failures."""
    cdef long i, bad = 0
    with nogil:
        for i in range(n):
            if buffer_lock_read(buf, -1.0) != LOCK_OK:
                bad += 1
            buffer_unlock_read(buf)
    return bad


def pthread_read_pairs(long n):
    """n uncontended pthread_rwlock_rdlock/unlock pairs (the reference)."""
    cdef pthread_rwlock_t lock
    cdef long i
    pthread_rwlock_init(&lock, NULL)
    with nogil:
        for i in range(n):
            pthread_rwlock_rdlock(&lock)
            pthread_rwlock_unlock(&lock)
    pthread_rwlock_destroy(&lock)
    return 0


# One process-wide rwlock that several Python threads contend on (the reference of the
# contended case); initialised once at import.
cdef pthread_rwlock_t shared_lock
pthread_rwlock_init(&shared_lock, NULL)


def mitk_write_pairs(PixelBuffer buf, long n):
    """n buffer_lock_write/buffer_unlock_write pairs without the GIL; returns the failures.

    Called from several threads on one buffer, the pairs contend.
    """
    cdef long i, bad = 0
    with nogil:
        for i in range(n):
            if buffer_lock_write(buf, -1.0) != LOCK_OK:
                bad += 1
                continue
            buffer_unlock_write(buf)
    return bad


cdef void shared_pairs(long n, bint write) noexcept nogil:
    """n lock/unlock pairs on the shared pthread rwlock: write locks, or read locks."""
    cdef long i
    for i in range(n):
        if write:
            pthread_rwlock_wrlock(&shared_lock)
        else:
            pthread_rwlock_rdlock(&shared_lock)
        pthread_rwlock_unlock(&shared_lock)


def pthread_shared_write_pairs(long n):
    """n wrlock/unlock pairs on the shared pthread rwlock without the GIL (the reference)."""
    with nogil:
        shared_pairs(n, True)
    return 0


def pthread_shared_read_pairs(long n):
    """n rdlock/unlock pairs on the shared pthread rwlock without the GIL (the reference).

    Called from several threads, the readers share the lock (and its cache line).
    """
    with nogil:
        shared_pairs(n, False)
    return 0
