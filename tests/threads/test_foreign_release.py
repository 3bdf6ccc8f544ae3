"""Accessors and their arrays dropped by a thread other than the one that made them.

On a free-threaded CPython an object whose last reference goes in a thread other than its
creator's is not deallocated there: biased reference counting queues it to the creating thread,
which deallocates it the next time it runs Python code, or the next garbage collection does.  An
accessor queued that way still holds its lock.  If its creator is parked (in ``join()``, a lock, a
C call), nothing runs the queue, so a writer waiting for the lock would time out, and the
creator's own next request would see "its" stale hold as a self-deadlock.  mitk's lock waits and
self-deadlock checks therefore collect such accessors before giving up.  On GIL builds these
tests pass trivially (deallocation is immediate); they are the regression tests for 3.13t.
"""

import threading
import time

import numpy as np
import pytest

import mitk
from mitk._core import ReadAccessor, WriteAccessor
from mitk_testing import join_all, start_thread

#: Long enough for the creating thread to be parked in join()/wait() before the drop.
SETTLE = 0.2


def _made_by_main_dropped_by_worker(make):
    """``make(img)`` runs in this thread; a worker drops the result, then asks for the write lock
    while this thread is parked in join().  Returns the worker's outcome."""
    img = mitk.Image(np.zeros((4, 4)))
    box = [make(img)]
    outcome = []

    def worker():
        time.sleep(SETTLE)
        box.pop()  # the last reference; it was made by the main thread
        try:
            with img.write(timeout=5) as acc:
                acc[0, 0] = 1
            outcome.append("written")
        except mitk.LockTimeout:
            outcome.append("LockTimeout")

    t = start_thread(worker)
    join_all([t])
    return outcome, img


@pytest.mark.parametrize("make", [
    pytest.param(lambda img: img.write(), id="write accessor"),
    pytest.param(lambda img: img.read(), id="read accessor"),
    pytest.param(lambda img: ReadAccessor(img.pixel_buffer), id="core read accessor"),
    pytest.param(lambda img: WriteAccessor(img.pixel_buffer, frame=0), id="core frame accessor"),
    pytest.param(lambda img: img.as_numpy(writeable=True, use_accessor=True), id="accessor array"),
])
def test_dropped_by_another_thread_releases_for_the_next_writer(make):
    outcome, img = _made_by_main_dropped_by_worker(make)
    assert outcome == ["written"]
    assert img.array[0, 0] == 1
    assert img.pixel_buffer.lock_state() == (0, False, 0)


def test_last_array_dropped_elsewhere_lets_the_lock_holder_write_again():
    # The worker holds a read lock whose release waits for the last array (a `with` block that
    # ended while the array lived).  The array was made by a third thread, now parked, and the
    # main thread drops it.  The worker's write request must not see its own (released) read as
    # a self-deadlock.
    img = mitk.Image(np.zeros((4, 4)))
    box = []
    accessor_ready = threading.Event()
    array_made = threading.Event()
    array_dropped = threading.Event()
    finish = threading.Event()
    outcome = []

    def array_maker():
        accessor_ready.wait(10)
        box.append(box.pop().array)  # the array is made here, the accessor dropped here
        array_made.set()
        finish.wait(30)  # parked: it never runs its deallocation queue meanwhile

    def lock_holder():
        with img.read(timeout=5) as acc:
            box.append(acc)
            del acc
            accessor_ready.set()
            array_made.wait(10)
        array_dropped.wait(10)  # the with block has ended; the read waits for the array
        try:
            with img.write(timeout=5) as w:
                w[0, 0] = 2
            outcome.append("written")
        except (mitk.LockError, mitk.LockTimeout) as exc:
            outcome.append(repr(exc))

    threads = [start_thread(array_maker), start_thread(lock_holder)]
    try:
        assert array_made.wait(10)
        time.sleep(SETTLE)  # the maker is parked
        box.pop()  # the last array, made by the maker thread, goes here
        array_dropped.set()
        deadline = time.monotonic() + 15
        while not outcome and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        finish.set()
        join_all(threads)
    assert outcome == ["written"]
    assert img.array[0, 0] == 2


def test_release_counts_arrays_dropped_by_other_threads_as_gone():
    # release() refuses while arrays are alive; one made by a parked thread and dropped by
    # another one is not alive.
    img = mitk.Image(np.zeros((4, 4)))
    acc = img.write(timeout=5)
    box = []
    made = threading.Event()
    finish = threading.Event()

    def maker():
        box.append(acc.array)
        made.set()
        finish.wait(30)

    t = start_thread(maker)
    try:
        assert made.wait(10)
        time.sleep(SETTLE)
        dropper = start_thread(box.pop)
        join_all([dropper])
        acc.release()
    finally:
        finish.set()
        join_all([t])
    assert acc.released
    with img.write(timeout=0):
        pass


def test_a_released_accessor_gives_buffer_error_not_a_crash():
    # np.asarray() of a released accessor once recursed through __array__ until the C stack
    # overflowed (a segfault on 3.13t).
    img = mitk.Image(np.zeros((4, 4)))
    acc = img.write(timeout=5)
    acc.release()
    with pytest.raises(BufferError, match="released"):
        acc.array
    with pytest.raises(BufferError, match="released"):
        np.asarray(acc)
