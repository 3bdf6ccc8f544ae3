"""ReadAccessor / WriteAccessor: NumPy-visible views that hold a PixelBuffer's lock.

An accessor takes the read (shared) or write (exclusive) lock of one PixelBuffer when it is
created, exports the pixels (or one frame of them) through the buffer protocol, and gives the lock
back when it is released: explicitly with :meth:`release`, at the end of a ``with`` block, or when
the accessor and every array made from it have been garbage-collected, whichever comes last.
The lock is never dropped under a live view.

Waiting for a lock releases the GIL and checks for signals at least every 100 ms, so other Python
threads run and Ctrl-C works.  The release may happen in any thread.

Free-threaded CPython defers some deallocations: an object whose last reference goes in a thread
other than the one that made it is queued to that thread (biased reference counting) and freed
when it next runs Python code, or by the next garbage collection.  An accessor (or its last array)
dropped that way still holds the lock meanwhile, and a parked creator may never run its queue.
So on those builds a request that must wait, or that finds its own thread holding the lock,
first has such objects collected (:func:`_collect_dropped`) before it waits on or reports
(tests/threads/test_foreign_release.py).
"""

cimport cython
from cpython.exc cimport PyErr_CheckSignals
from libc.math cimport isnan, isinf
from libc.stdint cimport uint64_t

from mitk._core._mitkbuf cimport *
from mitk._core._check cimport raise_status
from mitk._core._owner cimport thread_owner
from mitk._core._atomic cimport mitk_atomic_add, mitk_atomic_load, mitk_atomic_store, mitk_atomic_exchange
from mitk._core._export cimport fill_buffer
from mitk._core.buffer cimport PixelBuffer

import gc
import time
import weakref

import numpy as np

from mitk.errors import ArgumentError, LockError, LockTimeout

__all__ = ["ReadAccessor", "WriteAccessor"]

# Longest single wait without the GIL: bounds the delay before a signal (Ctrl-C) is handled.
cdef double _WAIT_SLICE = 0.1
# A waiting request collects dropped accessors after its first slice, then at doubling intervals
# up to this one: a collection stops every thread, so a long wait does it only a few times.
cdef double _COLLECT_INTERVAL_MAX = 2.0
# Collections per attempt.  Each one frees one link of a chain of deferred objects (an array,
# then the memoryview under it, whose release ends the accessor's export), because an object
# freed by the collector drops its references from the collecting thread, which may queue them
# to their own creators in turn.
cdef int _COLLECT_ROUNDS = 3
# Where the outcome is final (a self-deadlock error, a timeout, release() refusing), collecting
# goes on for up to this long: gc.collect() returns at once while another thread is collecting.
cdef double _COLLECT_BUDGET = 0.25

cdef extern from *:
    """
    #ifdef Py_GIL_DISABLED
    #define MITK_DEFERRED_DEALLOC 1
    #else
    #define MITK_DEFERRED_DEALLOC 0
    #endif
    """
    # 1 where a dropped object may outlive its last reference (biased reference counting).
    bint MITK_DEFERRED_DEALLOC


cdef int _collect_dropped() except -1:
    """Free accessors and arrays whose last reference is gone but whose deallocation was deferred.

    Only free-threaded builds defer; there a garbage collection merges every thread's queue of
    such objects and frees them (CPython's gc_free_threading.c, merge_all_queued_objects), which
    runs their release.  A no-op with the GIL.
    """
    if MITK_DEFERRED_DEALLOC:
        gc.collect()
    return 0


cdef int _collect_and_retry(mitkbuf_rwlock *lock, uint64_t owner, bint write, bint queued,
                            int busy, double budget) except? -1:
    """Collect dropped objects and try the request again while it returns ``busy``.

    At least _COLLECT_ROUNDS rounds, more until ``budget`` seconds have passed.  Returns the last
    status.  ``queued``: a writer asks with mitkbuf_rwlock_write_queued (it stays queued on EBUSY).
    """
    cdef double until = time.monotonic() + budget
    cdef int rounds = 0, status
    while True:
        if rounds >= _COLLECT_ROUNDS:
            time.sleep(0.005)  # let a collection running in another thread finish
        _collect_dropped()
        rounds += 1
        if not write:
            status = mitkbuf_rwlock_read(lock, owner, 0.0)
        elif queued:
            status = mitkbuf_rwlock_write_queued(lock, owner, 0.0)
        else:
            status = mitkbuf_rwlock_write(lock, owner, 0.0)
        if status != busy or (rounds >= _COLLECT_ROUNDS and time.monotonic() >= until):
            return status


cdef double _parse_timeout(object timeout) except? -2.0:
    """None -> -1 (forever); a number >= 0 -> itself; negative/NaN -> ArgumentError."""
    if timeout is None:
        return -1.0
    # Numbers only (NumPy scalars included); strings and bools are not timeouts.
    if isinstance(timeout, (bool, str, bytes)) or not hasattr(timeout, "__float__"):
        raise TypeError(
            f"timeout must be None or a number of seconds, not {type(timeout).__name__}")
    value = float(timeout)
    if isnan(value) or value < 0:
        raise ArgumentError(f"timeout must be None or >= 0 seconds, got {timeout!r}")
    if isinf(value):
        return -1.0
    return value


# no_gc_clear: the garbage collector must not clear _buf before __dealloc__ unlocks through it.
# An accessor in a reference cycle (or, on free-threaded builds, one whose deferred deallocation a
# collection runs) would otherwise keep its lock forever.  No cycle can pass through _buf: a
# PixelBuffer refers to no accessor.
@cython.no_gc_clear
cdef class _Accessor:
    """Common base of ReadAccessor and WriteAccessor (not instantiated directly)."""

    def __cinit__(self):
        self._held = 0
        self._pending = 0
        self._exports = 0
        self._array_ref = None

    cdef int _acquire(self, PixelBuffer buf, object timeout, object frame, bint write) except -1:
        cdef mitkbuf_rwlock *lock
        cdef double wait = _parse_timeout(timeout)
        cdef double deadline = 0.0, remaining, slice_, start, now, next_collect, collect_interval
        cdef bint expired
        cdef int status, i
        cdef Py_ssize_t index, frame_bytes
        if buf is None:
            raise TypeError("an accessor needs a PixelBuffer, not None")
        if mitk_atomic_load(&self._held) or self._buf is not None:
            raise RuntimeError("accessor is already initialised")
        if write and buf._readonly:
            raise ArgumentError("the image is read-only (it adopted read-only memory); "
                                "a write accessor cannot be created")
        # Region: the whole buffer, or one index of its first axis (a time frame).
        self._ndim = buf._ndim
        for i in range(buf._ndim):
            self._shape[i] = buf._shape[i]
            self._strides[i] = buf._strides[i]
        self._data = buf._data
        self._nbytes = buf._nbytes
        if frame is not None:
            index = frame
            if buf._ndim < 2 or index < 0 or index >= buf._shape[0]:
                raise IndexError(f"frame {index} is outside 0..{buf._shape[0] - 1}")
            frame_bytes = buf._strides[0]
            self._data = buf._data + index * frame_bytes
            self._nbytes = frame_bytes
            self._ndim = buf._ndim - 1
            for i in range(self._ndim):
                self._shape[i] = buf._shape[i + 1]
                self._strides[i] = buf._strides[i + 1]

        lock = <mitkbuf_rwlock *> buf._lock
        self._owner = thread_owner()
        self._write = write
        # Fast path: one try with the GIL held (no wait, so holding it costs nothing).
        status = (mitkbuf_rwlock_write if write else mitkbuf_rwlock_read)(lock, self._owner, 0.0)
        if status == MITKBUF_EDEADLK and MITK_DEFERRED_DEALLOC:
            # The blocking hold may be a dropped accessor of this thread whose deallocation is
            # still queued (module docstring): collect it, then judge again.
            status = _collect_and_retry(lock, self._owner, write, False, MITKBUF_EDEADLK,
                                        _COLLECT_BUDGET)
        if status == MITKBUF_EBUSY and wait != 0.0:
            start = time.monotonic()
            if wait > 0:
                deadline = start + wait
            collect_interval = _WAIT_SLICE
            next_collect = start + collect_interval
            while True:
                if wait > 0:
                    remaining = deadline - time.monotonic()
                    slice_ = remaining if remaining < _WAIT_SLICE else _WAIT_SLICE
                    if slice_ < 0:
                        slice_ = 0.0
                else:
                    slice_ = _WAIT_SLICE
                # Invariant: this owner holds nothing that blocks the request (EDEADLK would have
                # been returned by the try above), so waiting cannot deadlock on ourselves.  A
                # writer stays queued between slices, so readers cannot overtake it meanwhile.
                with nogil:
                    if write:
                        status = mitkbuf_rwlock_write_queued(lock, self._owner, slice_)
                    else:
                        status = mitkbuf_rwlock_read(lock, self._owner, slice_)
                if status != MITKBUF_ETIMEDOUT and status != MITKBUF_EBUSY:
                    break
                try:
                    PyErr_CheckSignals()  # raises KeyboardInterrupt etc.; nothing is held here
                except BaseException:
                    if write:
                        mitkbuf_rwlock_write_cancel(lock, self._owner)
                    raise
                now = time.monotonic()
                expired = wait > 0 and now >= deadline
                if MITK_DEFERRED_DEALLOC and (expired or now >= next_collect):
                    # The holder may be a dropped accessor whose deallocation is queued to a
                    # parked thread (module docstring).  Never give up without looking once.
                    status = _collect_and_retry(lock, self._owner, write, True, MITKBUF_EBUSY,
                                                _COLLECT_BUDGET if expired else 0.0)
                    if status != MITKBUF_EBUSY:
                        break
                    collect_interval = min(2 * collect_interval, _COLLECT_INTERVAL_MAX)
                    next_collect = time.monotonic() + collect_interval
                if expired:
                    if write:
                        mitkbuf_rwlock_write_cancel(lock, self._owner)
                    break
        mode = "write" if write else "read"
        if status == MITKBUF_ETIMEDOUT or status == MITKBUF_EBUSY:
            raise LockTimeout(f"could not acquire the {mode} lock within {timeout} s")
        if status == MITKBUF_EDEADLK:
            held = "a lock" if write else "the write lock"
            raise LockError(
                f"this thread already holds {held} on this image; requesting the {mode} lock "
                "would deadlock (release the other accessor first)")
        if status != MITKBUF_OK:
            raise_status(status, f"acquiring the {mode} lock")
        self._buf = buf
        mitk_atomic_store(&self._held, 1)
        # A held accessor counts as an export: the image cannot be re-initialised under it.
        mitk_atomic_add(&buf._exports, 1)
        return 0

    cdef int _unlock(self) noexcept:
        # Exactly once, whichever thread gets here first (explicit release, __exit__, the last
        # view's __releasebuffer__, or deallocation).
        if mitk_atomic_exchange(&self._held, 0) != 1:
            return 0
        lock = <mitkbuf_rwlock *> self._buf._lock
        if self._write:
            mitkbuf_rwlock_unlock_write(lock, self._owner)
        else:
            mitkbuf_rwlock_unlock_read(lock, self._owner)
        mitk_atomic_add(&self._buf._exports, -1)
        return 0

    def __dealloc__(self):
        # Every export holds a reference to self, so none is alive here.
        if self._buf is not None:
            self._unlock()

    # -- PEP 3118 ---------------------------------------------------------------------------

    def __getbuffer__(self, Py_buffer *view, int flags):
        if not mitk_atomic_load(&self._held) or mitk_atomic_load(&self._pending):
            raise BufferError("the accessor has been released; take a new one")
        fill_buffer(view, self._data, self._nbytes, self._ndim, self._shape, self._strides,
                    self._buf._itemsize, self._buf._format, not self._write, flags)
        mitk_atomic_add(&self._exports, 1)
        if not mitk_atomic_load(&self._held):  # lost a race with a release in another thread
            mitk_atomic_add(&self._exports, -1)
            raise BufferError("the accessor has been released; take a new one")
        view.obj = self

    def __releasebuffer__(self, Py_buffer *view):
        # The last view gone after a deferred release: drop the lock now (any thread).
        if mitk_atomic_add(&self._exports, -1) == 0 and mitk_atomic_load(&self._pending):
            self._unlock()

    # -- Python API ---------------------------------------------------------------------------

    @property
    def array(self):
        """numpy.ndarray: the locked pixels (the same array while it is alive).

        Read-only for a read accessor, writable for a write accessor.  The lock is held at least
        as long as this array or any array derived from it is alive.
        """
        # Two threads may ask at once: without the critical section one could replace (and free)
        # the weak reference while the other reads it (free-threaded builds).
        with cython.critical_section(self):
            ref = self._array_ref
            arr = ref() if ref is not None else None
            if arr is None:
                # Through a memoryview, so that a released accessor raises BufferError here;
                # np.asarray(self) would fall back to __array__, which asks for self.array again.
                arr = np.asarray(memoryview(self))
                # A weak reference, so that dropping every array really ends the export.
                self._array_ref = weakref.ref(arr)
        return arr

    @property
    def released(self):
        """bool: True once the lock has been given back."""
        return not mitk_atomic_load(&self._held)

    @property
    def mode(self):
        """str: ``"read"`` or ``"write"``."""
        return "write" if self._write else "read"

    @property
    def exports(self):
        """int: live buffer exports (arrays) of this accessor (a snapshot)."""
        return mitk_atomic_load(&self._exports)

    @property
    def pixel_buffer(self):
        """PixelBuffer: the buffer whose lock this accessor holds."""
        return self._buf

    def release(self):
        """Give the lock back now.

        Raises
        ------
        BufferError
            Arrays taken from this accessor are still alive; the lock stays held.  Delete them
            (or leave the ``with`` block, which defers the release) first.

        Notes
        -----
        Calling it again, or after the ``with`` block ended, does nothing.
        """
        if not mitk_atomic_load(&self._held):
            return
        n = mitk_atomic_load(&self._exports)
        if n > 0 and MITK_DEFERRED_DEALLOC:
            # Arrays dropped in other threads may still be queued (module docstring).
            until = time.monotonic() + _COLLECT_BUDGET
            rounds = 0
            while n > 0 and (rounds < _COLLECT_ROUNDS or time.monotonic() < until):
                if rounds >= _COLLECT_ROUNDS:
                    time.sleep(0.005)  # a collection running in another thread returns at once
                _collect_dropped()
                rounds += 1
                n = mitk_atomic_load(&self._exports)
        if n > 0:
            raise BufferError(
                f"cannot release the {self.mode} lock: {n} array export(s) of this accessor are "
                "still alive (delete them first)")
        self._unlock()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        # Release now, or when the last array from this accessor is collected; never raises.
        mitk_atomic_store(&self._pending, 1)
        if mitk_atomic_load(&self._exports) == 0:
            self._unlock()
        return False

    def __array__(self, dtype=None, copy=None):
        arr = self.array
        if dtype is not None and np.dtype(dtype) != arr.dtype:
            if copy is False:
                raise ValueError("a dtype conversion needs a copy but copy=False was given")
            return arr.astype(dtype)
        return arr.copy() if copy else arr

    def __len__(self):
        return self._shape[0] if self._ndim else 0

    def __getitem__(self, key):
        return self.array[key]

    def __repr__(self):
        state = "released" if self.released else f"holding the {self.mode} lock"
        return f"<{type(self).__name__} shape={tuple(self._shape[i] for i in range(self._ndim))} {state}>"


cdef class ReadAccessor(_Accessor):
    """Hold the read (shared) lock of a PixelBuffer and export its pixels read-only.

    Parameters
    ----------
    buffer : PixelBuffer
    timeout : float or None
        None waits forever, 0 tries once, a positive value is seconds.
    frame : int or None
        None exports everything; ``k`` exports index ``k`` of the first axis (a time frame),
        while the lock still covers the whole buffer.

    Raises
    ------
    LockTimeout
        Not acquired in time.
    LockError
        This thread holds the write lock of the buffer (waiting would deadlock).
    ArgumentError
        Negative or NaN timeout.

    Notes
    -----
    Waits release the GIL.  Many readers may hold the lock together; a waiting writer blocks new
    readers, except threads that already hold a read lock.

    On free-threaded CPython an accessor (or its last array) dropped by a thread other than the
    one that made it is freed, and its lock released, a little later (when that thread next runs
    Python code, or at the next garbage collection).  A request that has to wait, or that finds
    its own thread holding the lock, runs a collection first (at most every 2 s while waiting),
    so such a lock never makes it time out or fail; a try (``timeout=0``) does not.
    """

    def __init__(self, PixelBuffer buffer, timeout=None, frame=None):
        self._acquire(buffer, timeout, frame, False)


cdef class WriteAccessor(_Accessor):
    """Hold the write (exclusive) lock of a PixelBuffer and export its pixels writable.

    Parameters are those of :class:`ReadAccessor`.

    Raises
    ------
    LockTimeout, LockError, ArgumentError
        As for ReadAccessor; LockError also when this thread holds a read lock of the buffer;
        ArgumentError for a read-only buffer.

    Notes
    -----
    Waits release the GIL.  ``acc[...] = value`` writes through the locked view.
    """

    def __init__(self, PixelBuffer buffer, timeout=None, frame=None):
        self._acquire(buffer, timeout, frame, True)

    def __setitem__(self, key, value):
        self.array[key] = value


def _new_locked(cls, PixelBuffer buffer, bint write):
    """Make an accessor of class ``cls`` that holds ``buffer``'s lock, waiting as long as it takes.

    The fast path of ``Image.read()`` and ``Image.write()`` without a timeout or a frame: one
    Python-level call instead of the class's ``__new__`` and ``__init__`` with the timeout and
    frame checks of ``mitk.image_accessors._acquire``.  About half the time per accessor, and
    fewer Python-level references to the shared image and buffer, which threads contend for on
    free-threaded builds (each one is an atomic operation on a shared reference count).

    Parameters
    ----------
    cls : type
        ReadAccessor, WriteAccessor or a subclass of the one ``write`` selects.
    buffer : PixelBuffer
    write : bool
        Take the write lock (else the read lock).

    Returns
    -------
    ReadAccessor or WriteAccessor
        An instance of ``cls``; its ``__init__`` is not called.

    Raises
    ------
    LockError, ArgumentError, TypeError
        As ReadAccessor and WriteAccessor raise them.

    Notes
    -----
    Waiting releases the GIL, as for the constructors.
    """
    cdef _Accessor acc
    if write:
        acc = <_Accessor> WriteAccessor.__new__(cls)
    else:
        acc = <_Accessor> ReadAccessor.__new__(cls)
    acc._acquire(buffer, None, None, write)
    return acc
