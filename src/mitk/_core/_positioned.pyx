"""Positioned reads of many byte runs of one file in one call, with the GIL released.

A region of raw pixel data is a list of byte runs: a y-plane of a 256^3 volume is 256 rows far
apart in the file.  Through ``os.preadv`` every run costs a Python call besides its system call;
:func:`read_runs` reads the whole list in one call (``mitk.io._raw_runs``), and other threads run
meanwhile.  The file offset is neither used nor moved, so threads may share the descriptor.
"""

cimport cython
from cpython.exc cimport PyErr_CheckSignals
from libc.errno cimport errno, EINTR
from libc.stdint cimport int64_t

import os

cdef extern from *:
    """
    #if defined(_WIN32)
    #include <errno.h>
    #define MITK_HAVE_PREAD 0
    static long long mitk_pread(int fd, void *buf, size_t n, long long offset)
    {
        (void)fd; (void)buf; (void)n; (void)offset;
        errno = ENOSYS;
        return -1;
    }
    #else
    #include <unistd.h>
    #define MITK_HAVE_PREAD 1
    static long long mitk_pread(int fd, void *buf, size_t n, long long offset)
    {
        return (long long)pread(fd, buf, n, (off_t)offset);
    }
    #endif
    """
    bint MITK_HAVE_PREAD
    long long mitk_pread(int fd, void *buf, size_t n, long long offset) nogil

#: False where the platform has no positioned reads (Windows): callers read another way.
HAVE_PREAD = bool(MITK_HAVE_PREAD)


@cython.boundscheck(False)
@cython.wraparound(False)
def read_runs(int fd, const int64_t[::1] offsets not None, const int64_t[::1] lengths not None,
              const int64_t[::1] dests not None, unsigned char[::1] out not None):
    """Read every run ``k`` of a file into ``out[dests[k]:dests[k] + lengths[k]]``, in order.

    Run ``k`` is ``lengths[k]`` bytes from file offset ``offsets[k]``.

    Parameters
    ----------
    fd : int
        An open file descriptor, readable with ``pread`` (its offset is not used or moved).
    offsets, lengths, dests : int64 arrays, C-contiguous, of one length
    out : writable uint8 buffer, C-contiguous
        Every run must lie inside it (checked before anything is read).

    Returns
    -------
    None or tuple of int
        None when every run was read whole; ``(k, done)`` when the file ended ``done`` bytes
        into run ``k`` (runs after ``k`` are not read).

    Raises
    ------
    ValueError
        Arrays of different lengths, a negative offset or length, or a run outside ``out``.
    OSError
        A read failed.  ``ENOSYS`` where there is no ``pread``.
    KeyboardInterrupt (or what a signal handler raises)
        A read was interrupted by a signal whose handler raised; runs before it are read.

    Notes
    -----
    Releases the GIL for the reads.  A read interrupted by a signal takes the GIL back to run the
    Python signal handlers (as ``os.preadv`` does), then goes on.  Writes only into ``out``; no
    lock is taken.
    """
    cdef Py_ssize_t n = offsets.shape[0], k = 0, short_run = -1
    cdef int64_t size = out.shape[0], done = 0, got
    cdef int err = 0
    cdef bint interrupted
    cdef unsigned char *base = &out[0] if size > 0 else NULL
    if lengths.shape[0] != n or dests.shape[0] != n:
        raise ValueError(f"read_runs: {n} offsets, {lengths.shape[0]} lengths and "
                         f"{dests.shape[0]} destinations")
    for k in range(n):
        if offsets[k] < 0 or lengths[k] < 0 or dests[k] < 0 or dests[k] > size - lengths[k]:
            raise ValueError(f"read_runs: run {k} ({lengths[k]} bytes from file offset "
                             f"{offsets[k]} to {dests[k]}) is outside a result of {size} bytes")
    k = 0
    while True:
        interrupted = False
        with nogil:
            while k < n:
                while done < lengths[k]:
                    got = mitk_pread(fd, base + dests[k] + done, <size_t> (lengths[k] - done),
                                     offsets[k] + done)
                    if got > 0:
                        done += got
                    elif got == 0:
                        short_run = k
                        break
                    elif errno == EINTR:
                        interrupted = True
                        break
                    else:
                        err = errno
                        break
                if short_run >= 0 or err != 0 or interrupted:
                    break
                k += 1
                done = 0
        if not interrupted:
            break
        PyErr_CheckSignals()  # raises what a handler raised; else go on where the read stopped
    if err != 0:
        raise OSError(err, os.strerror(err))
    if short_run >= 0:
        return (short_run, done)
    return None
