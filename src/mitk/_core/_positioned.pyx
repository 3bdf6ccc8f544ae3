"""Positioned reads of many byte runs of one file in one call, with the GIL released.

A region of raw pixel data is a list of byte runs: a y-plane of a 256^3 volume is 256 rows far
apart in the file.  Through ``os.preadv`` every run costs a Python call besides its system call;
:func:`read_runs` reads the whole list in one call (``mitk.io._raw_runs``), and other threads run
meanwhile.  :func:`read_rows` does the same for the same rows of many planes (a block, a y-plane)
from the plane starts alone, with no array per row.  The file offset is neither used nor moved,
so threads may share the descriptor.  :func:`read_file_run` reads one run of a file it opens,
checks and closes itself, and :class:`FileRun` one such run into a new array (a slice: the
system calls are most of its cost).  The C of these calls is ``_positioned.h``.

The one place in ``_core`` that takes a file path: which file, and the identity it must have,
are still decided above (``mitk.io._regions``); here they are only the arguments of the system
calls, made together so that the Python around each of them does not cost as much as they do.
"""

cimport cython
from cpython.buffer cimport (PyBUF_C_CONTIGUOUS, PyBUF_WRITABLE, PyBuffer_Release,
                             PyObject_GetBuffer)
from cpython.exc cimport PyErr_CheckSignals
from cpython.pyport cimport PY_SSIZE_T_MAX
from libc.errno cimport ELOOP, ENOENT, ENOTDIR
from libc.stdint cimport INT64_MAX, int64_t, uint64_t
from libc.stdlib cimport free, malloc

import os

from numpy import empty as _empty

cdef extern from "_positioned.h":
    bint MITK_HAVE_PREAD
    long long mitk_pread(int fd, void *buf, size_t n, long long offset) nogil
    int mitk_pread_full(int fd, unsigned char *buf, long long n, long long offset,
                        long long *done) nogil
    void mitk_close(int fd) nogil
    ctypedef struct mitk_rows_at:
        long long plane, row, done
    int mitk_read_file_rows(const char *path, long long size, long long mtime_ns,
                            unsigned long long ino, unsigned long long dev, int *fd,
                            const int64_t *planes, long long base, long long n, long long k,
                            long long step, long long length, unsigned char *out,
                            unsigned char *span, mitk_rows_at *at) nogil

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
    cdef Py_ssize_t n = offsets.shape[0], k = 0
    cdef int64_t size = out.shape[0]
    cdef long long done = 0
    cdef int rc = 0
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
        with nogil:
            rc = 0
            while k < n:
                rc = mitk_pread_full(fd, base + dests[k], lengths[k], offsets[k], &done)
                if rc != 0:
                    break
                k += 1
                done = 0
        if rc != 2:
            break
        PyErr_CheckSignals()  # raises what a handler raised; else go on where the read stopped
    if rc < 0:
        raise OSError(-rc, os.strerror(-rc))
    if rc == 1:
        return (k, done)
    return None


#: What :func:`read_file_run` and :func:`read_file_rows` return when everything was read, when
#: there is no such file, and when the file is not the one described.
cdef enum:
    _WHOLE = -1
    _GONE = -2
    _CHANGED = -3
WHOLE, GONE, CHANGED = _WHOLE, _GONE, _CHANGED


cdef struct _Rows:
    # What mitk_read_file_rows reads, checked by _rows_of: plane starts (base + planes[p]),
    # rows per plane, row step and length, and the scratch span (NULL: a read per row).
    const int64_t *planes
    int64_t base
    Py_ssize_t n
    Py_ssize_t k
    int64_t step
    int64_t length
    unsigned char *span


cdef int _rows_of(_Rows *rows, const int64_t[::1] planes, int64_t base, Py_ssize_t k,
                  int64_t step, int64_t length, bint joined, Py_ssize_t size,
                  str caller) except -1:
    # Checks the rows fit the file's offsets and a result of `size` bytes, before anything is
    # read, and allocates the span (the caller frees it).
    cdef Py_ssize_t n = planes.shape[0], p
    cdef int64_t reach
    if k < 1 or length < 0 or step < length or (k > 1 and step > 0
                                                and k - 1 > (INT64_MAX - length) // step):
        raise ValueError(f"{caller}: {k} rows of {length} bytes, {step} apart")
    reach = (k - 1) * step + length  # a plane's bytes, from its first row's start
    if base < 0 or base > INT64_MAX - reach:
        raise ValueError(f"{caller}: planes from file offset {base}")
    if n > 0 and (<int64_t> size) // n // k < length:
        raise ValueError(f"{caller}: {n} planes of {k} rows of {length} bytes do not fit a "
                         f"result of {size} bytes")
    for p in range(n):
        if planes[p] < 0 or planes[p] > INT64_MAX - reach - base:
            raise ValueError(f"{caller}: plane {p} starts at file offset {base + planes[p]}")
    rows.planes = &planes[0] if n > 0 else NULL
    rows.base, rows.n, rows.k, rows.step, rows.length = base, n, k, step, length
    rows.span = NULL
    if joined and k > 1 and n > 0 and length > 0:
        if reach > <int64_t> PY_SSIZE_T_MAX:
            raise MemoryError(f"{caller}: a plane of {reach} bytes")
        rows.span = <unsigned char *> malloc(<size_t> reach)
        if rows.span == NULL:
            raise MemoryError()
    return 0


cdef int _read(const char *path, int64_t size, int64_t mtime_ns, uint64_t ino, uint64_t dev,
               int *fd, const _Rows *rows, unsigned char *out, mitk_rows_at *at) except? -1:
    # The one retry loop of every row read: without the GIL (`path` is a bytes object and
    # `out` a buffer the caller holds; the descriptor is the caller's), and with it to run
    # Python signal handlers after an EINTR, then on from where it stopped.  Returns
    # mitk_read_file_rows's code (0, 1, 3 or -errno).
    cdef int rc
    at.plane = at.row = at.done = 0
    while True:
        with nogil:
            rc = mitk_read_file_rows(path, size, mtime_ns, ino, dev, fd, rows.planes,
                                     rows.base, rows.n, rows.k, rows.step, rows.length, out,
                                     rows.span, at)
        if rc != 2:
            return rc
        PyErr_CheckSignals()  # raises what a handler raised; else go on where it stopped


cdef object _status(int rc, const char *path, const mitk_rows_at *at, Py_ssize_t k):
    # What the Python functions return for `rc`, or the OSError it is.
    if rc == 0:
        return _WHOLE
    if rc == 1:
        return (at.plane * k + at.row, at.done)
    if rc == 3:
        return _CHANGED
    if path != NULL and (rc == -ENOENT or rc == -ENOTDIR or rc == -ELOOP):
        return _GONE
    if path != NULL:
        raise OSError(-rc, os.strerror(-rc), os.fsdecode(<bytes> path))
    raise OSError(-rc, os.strerror(-rc))


@cython.boundscheck(False)
@cython.wraparound(False)
def read_rows(int fd, const int64_t[::1] planes not None, Py_ssize_t k, int64_t step,
              int64_t length, bint joined, unsigned char[::1] out not None):
    """Read ``k`` rows of ``length`` bytes, ``step`` apart, from every plane start into ``out``.

    Row ``r`` of plane ``p`` is ``length`` bytes from file offset ``planes[p] + r * step``; it
    lands at ``out[(p * k + r) * length:]`` (rows back to back, planes in order).

    Parameters
    ----------
    fd : int
        An open file descriptor, readable with ``pread`` (its offset is not used or moved).
    planes : int64 array, C-contiguous
        File offset of each plane's first row.
    k : int
        Rows per plane (``>= 1``).
    step, length : int
        Bytes from one row's start to the next (``step >= length``), and bytes per row.
    joined : bool
        Read each plane whole (its rows and the gaps between them, ``(k - 1) * step + length``
        bytes) into a scratch buffer of that size, then copy its rows out: for rows a small gap
        apart.  Else one read per row, straight into ``out``.
    out : writable uint8 buffer, C-contiguous
        At least ``len(planes) * k * length`` bytes (checked before anything is read).

    Returns
    -------
    None or tuple of int
        None when every row was read whole; ``(row, done)`` when the file ended ``done``
        bytes into row ``row`` (counted over all planes; later rows are not read).

    Raises
    ------
    ValueError
        A negative offset, ``k < 1``, ``length < 0``, ``step < length``, a plane whose last
        byte would be past the largest file offset, or a result too small.
    MemoryError
        No memory for the scratch buffer.
    OSError
        A read failed.  ``ENOSYS`` where there is no ``pread``.

    Notes
    -----
    Releases the GIL for the reads.  A read interrupted by a signal takes the GIL back to run the
    Python signal handlers, then goes on.  Writes only into ``out``; no lock is taken.
    """
    cdef _Rows rows
    cdef mitk_rows_at at
    cdef int rc
    _rows_of(&rows, planes, 0, k, step, length, joined, out.shape[0], "read_rows")
    if rows.n == 0 or length == 0:
        return None
    try:
        rc = _read(NULL, 0, 0, 0, 0, &fd, &rows, &out[0], &at)
    finally:
        free(rows.span)
    got = _status(rc, NULL, &at, k)
    return None if got == _WHOLE else got


@cython.boundscheck(False)
@cython.wraparound(False)
def read_file_rows(bytes path not None, int64_t size, int64_t mtime_ns, uint64_t ino,
                   uint64_t dev, const int64_t[::1] planes not None, int64_t base, Py_ssize_t k,
                   int64_t step, int64_t length, bint joined, unsigned char[::1] out not None):
    """:func:`read_rows` on a file this call opens, checks is the file described, and closes.

    The planes start at ``base + planes[p]``; the rest is :func:`read_rows`.  A block or a
    y-plane read again costs its reads, and little besides: the open, the check and the
    close are in the same call, with the GIL released.

    Parameters
    ----------
    path, size, mtime_ns, ino, dev
        As :func:`read_file_run` takes them.
    planes : int64 array, C-contiguous
        Each plane's first row, from ``base``.
    base : int
        File offset the planes are counted from (a data piece's start).
    k, step, length, joined, out
        As :func:`read_rows` takes them.

    Returns
    -------
    int or tuple of int
        :data:`WHOLE`, :data:`GONE` or :data:`CHANGED` (as :func:`read_file_run`); or
        ``(row, done)`` when the file ended ``done`` bytes into row ``row`` (as
        :func:`read_rows`).

    Raises
    ------
    ValueError, MemoryError
        As :func:`read_rows` (checked before the file is opened), or ``path`` holds a NUL.
    OverflowError
        An identity field does not fit its C type (as :func:`read_file_run`).
    OSError
        Opening, checking or reading failed otherwise.

    Notes
    -----
    Releases the GIL for the system calls; runs Python signal handlers after an interrupted
    one, then goes on.  The file is opened without waiting and closed before returning, also
    on errors.  No file offset is used and no lock is taken: threads may call it at once.
    """
    cdef _Rows rows
    cdef mitk_rows_at at
    cdef int rc, fd = -1
    cdef const char *name = path
    if b"\0" in path:
        raise ValueError("read_file_rows: embedded null byte in the path")
    _rows_of(&rows, planes, base, k, step, length, joined, out.shape[0], "read_file_rows")
    try:
        rc = _read(name, size, mtime_ns, ino, dev, &fd, &rows,
                   &out[0] if out.shape[0] > 0 else NULL, &at)
    finally:
        free(rows.span)
        if fd >= 0:
            mitk_close(fd)
    return _status(rc, name, &at, k)


def read_file_run(bytes path not None, int64_t size, int64_t mtime_ns, uint64_t ino,
                  uint64_t dev, int64_t offset, object out not None):
    """Open ``path``, check it is the file described, fill ``out`` from byte ``offset``, close.

    The open, the check, the reads and the close are one call with the GIL released: a slice
    read again costs little besides these system calls, and the Python around each of them
    cost about as much as the calls.

    Parameters
    ----------
    path : bytes
        The file (``os.fsencode`` of its name).
    size, mtime_ns, ino, dev : int
        Its identity when it was described (``os.stat``'s ``st_size``, ``st_mtime_ns``,
        ``st_ino``, ``st_dev``).
    offset : int
        Byte offset in the file of ``out[0]``.
    out : writable C-contiguous buffer of any item type (a NumPy array, say)
        Its bytes are filled whole, unless the file ends first.

    Returns
    -------
    int
        :data:`WHOLE` when ``out`` was filled; :data:`GONE` when there is no such file (a
        directory on its path is now a file, or a loop of symbolic links is in its place);
        :data:`CHANGED` when the file there has another size, mtime, inode or device (or is a
        socket, which cannot be opened); else the bytes read before the file ended (``>= 0``).

    Raises
    ------
    ValueError
        ``path`` holds a NUL byte, ``offset`` is negative, or ``out`` is a read-only or
        non-contiguous array.
    BufferError, TypeError
        ``out`` is read-only bytes, or not a buffer.
    OverflowError
        An identity field does not fit its C type (``mtime_ns`` outside int64: a date past
        2262; a negative inode or device): callers read such a file another way.
    OSError
        Opening, checking or reading failed otherwise.  ``ENOSYS`` where there is no ``pread``.
    KeyboardInterrupt (or what a signal handler raises)
        An open or read was interrupted by a signal whose handler raised; the file is closed.

    Notes
    -----
    Releases the GIL for the system calls, and takes it back to run Python signal handlers
    when one is interrupted (as ``os.preadv`` does), then goes on.  Opens without waiting
    (``O_NONBLOCK``: a FIFO put in the file's place is refused by the check, not waited on);
    the descriptor is closed before returning, also on errors.  No file offset is used and no
    lock is taken: threads may call it at once.
    """
    if b"\0" in path:
        raise ValueError("read_file_run: embedded null byte in the path")
    return _read_run(path, size, mtime_ns, ino, dev, offset, out, "read_file_run")


cdef object _read_run(bytes path, int64_t size, int64_t mtime_ns, uint64_t ino, uint64_t dev,
                      int64_t offset, object out, str caller):
    # read_file_run, its path already checked for NUL bytes.
    cdef const char *name = path
    cdef int64_t start = 0
    cdef _Rows rows
    cdef mitk_rows_at at
    cdef int rc, fd = -1
    cdef Py_buffer view
    # Any item type: the result is filled in place, with no uint8 view of it to make first.
    PyObject_GetBuffer(out, &view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS)
    try:
        if offset < 0 or offset > INT64_MAX - view.len:
            raise ValueError(f"{caller}: {view.len} bytes from file offset {offset}")
        # One plane of one row: the run.
        rows.planes, rows.base, rows.n, rows.k = &start, offset, 1, 1
        rows.step = rows.length = view.len
        rows.span = NULL
        try:
            rc = _read(name, size, mtime_ns, ino, dev, &fd, &rows,
                       <unsigned char *> view.buf, &at)
        finally:
            if fd >= 0:
                mitk_close(fd)
    finally:
        PyBuffer_Release(&view)
    got = _status(rc, name, &at, 1)
    return got[1] if rc == 1 else got


@cython.final
@cython.auto_pickle(False)  # made again from the description, never sent
cdef class FileRun:
    """One byte run of one file, read into a new array by one call that opens the file,
    checks it is the one described, reads and closes it (:func:`read_file_run`, its array made
    here): a slice whose plan a ``LazyImage`` keeps, with no Python from the array to the
    system calls.

    Parameters
    ----------
    path, size, mtime_ns, ino, dev, offset
        As :func:`read_file_run` takes them.
    shape : tuple of int
        The shape of the arrays :meth:`read` returns.
    dtype : numpy.dtype
        Their item type, in the file's byte order; the run is their ``nbytes`` long.

    Raises
    ------
    ValueError
        ``path`` holds a NUL byte, or ``offset`` is negative.
    OverflowError
        An identity field does not fit its C type (as :func:`read_file_run`).

    Notes
    -----
    Immutable once made: threads may call :meth:`read` at once (each call makes its own array
    and opens its own descriptor; no lock is taken).
    """

    cdef readonly bytes path
    cdef int64_t size, mtime_ns, offset
    cdef uint64_t ino, dev
    cdef readonly tuple shape
    cdef readonly object dtype

    def __cinit__(self, bytes path not None, int64_t size, int64_t mtime_ns, uint64_t ino,
                  uint64_t dev, int64_t offset, tuple shape not None, object dtype not None):
        if b"\0" in path:
            raise ValueError("FileRun: embedded null byte in the path")
        if offset < 0:
            raise ValueError(f"FileRun: file offset {offset}")
        self.path, self.size, self.mtime_ns, self.ino, self.dev = path, size, mtime_ns, ino, dev
        self.offset, self.shape, self.dtype = offset, shape, dtype

    def read(self):
        """The run, as a new C-contiguous writable array of :attr:`shape` and :attr:`dtype`;
        None when the file is gone, is not the one described, or ends before the run does.

        Returns
        -------
        numpy.ndarray or None
            None leaves the report to the caller's general read, which says which of the three
            it is (and reads the file again).

        Raises
        ------
        ValueError
            The run reaches past the largest file offset.
        OSError
            Opening, checking or reading failed otherwise (as :func:`read_file_run`).
        KeyboardInterrupt (or what a signal handler raises)
            As :func:`read_file_run`.

        Notes
        -----
        Copies from the file; releases the GIL for the system calls; locks nothing.
        """
        out = _empty(self.shape, self.dtype)
        if _read_run(self.path, self.size, self.mtime_ns, self.ino, self.dev, self.offset, out,
                     "FileRun.read") == _WHOLE:
            return out
        return None
