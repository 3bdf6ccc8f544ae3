# cython: language_level=3
"""Tight loops over mitk's cimport lock API and over a bare pthread rwlock, without the GIL."""

from libc.time cimport clock_t
from mitk._core.buffer cimport PixelBuffer, LOCK_OK, buffer_lock_read, buffer_unlock_read

cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_rwlock_t:
        pass
    int pthread_rwlock_init(pthread_rwlock_t *lock, void *attr)
    int pthread_rwlock_rdlock(pthread_rwlock_t *lock)
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
