"""Fork: unlocked images work in the child; a lock held at fork time stays held there."""

import os
import signal
import threading
import time

import numpy as np
import pytest

import mitk
from mitk_testing import join_all, start_thread

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    pytest.mark.thread_unsafe,
    # Forking with a helper thread alive is exactly the situation under test.
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]


def _in_child(fn, limit: float = 20.0) -> int:
    """Run ``fn`` in a forked child; returns its exit status (0 when fn returned True).

    A child still running after ``limit`` seconds is a hang: it is killed and -9 is returned,
    so a regression fails the test instead of hanging CI.
    """
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            code = 0 if fn() else 3
        except BaseException:
            code = 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + limit
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return -9
        time.sleep(0.005)


def test_unlocked_image_is_usable_in_the_child():
    img = mitk.Image(np.arange(24, dtype=np.float32).reshape(2, 3, 4))

    def child():
        with img.write(timeout=5) as acc:
            acc[0, 0, 0] = 100
        with img.read(timeout=5) as acc:
            ok = acc[0, 0, 0] == 100 and acc[1, 2, 3] == 23
        return ok and img.copy().array.sum() == img.array.sum()

    assert _in_child(child) == 0
    assert img.array[0, 0, 0] == 0  # the parent's pixels are untouched


def test_lock_held_at_fork_gives_lock_timeout_in_the_child():
    img = mitk.Image(np.zeros((4, 4)))
    held = threading.Event()
    release = threading.Event()

    def holder():
        with img.write():
            held.set()
            release.wait(30)

    t = start_thread(holder)
    assert held.wait(10)

    def child():
        try:
            img.read(timeout=0.2)
        except mitk.LockTimeout:
            return True
        return False

    try:
        status = _in_child(child)
    finally:
        release.set()
        join_all([t])
    assert status == 0
    with img.read(timeout=5):
        pass  # the parent's lock works normally after the holder let go


def _churn_writes(img, stop: threading.Event) -> None:
    """Take and drop the write lock in short waits until told to stop (they keep the lock's
    internal mutex and its condition variables busy).

    A millisecond's pause between attempts leaves readers a turn: writers that queue again at
    once, back to back, would starve them (writer preference), on an idle machine every time.
    """
    while not stop.is_set():
        try:
            with img.write(timeout=0.02) as acc:
                acc[0, 0] += 1
        except mitk.LockTimeout:
            pass
        time.sleep(0.001)


def test_fork_while_threads_churn_write_locks():
    # Issue 22: a child forked while other threads wait for (or are inside) the lock must be able
    # to release what it inherited and use the lock; before the fix it could block forever in the
    # release (the copied internal mutex or condition variable belonged to a parent thread) and
    # its readers deferred to writers that do not exist in it.
    img = mitk.Image(np.zeros((8, 8), np.int64))
    stop = threading.Event()
    workers = [start_thread(_churn_writes, img, stop) for _ in range(2)]
    statuses = []

    def child(acc):
        def run():
            acc.release()  # a read hold of the parent, made while writers queued behind it
            with img.read(timeout=2):
                pass
            with img.write(timeout=2) as w:
                w[1, 1] = 5
            return img.pixel_buffer.lock_state() == (0, False, 0)
        return run

    try:
        for _ in range(15):
            acc = img.read(timeout=10)
            time.sleep(0.005)  # let the writers queue behind this read
            statuses.append(_in_child(child(acc)))
            acc.release()
    finally:
        stop.set()
        join_all(workers)
    assert statuses == [0] * len(statuses)
    with img.write(timeout=5):
        pass  # and the parent's lock is still fine


def test_fork_in_the_middle_of_lock_traffic_never_hangs_the_child():
    # Forks at arbitrary moments of heavy lock traffic: whatever the parent's threads held or
    # waited for, the child's bounded requests return (a lock or LockTimeout) and its queries and
    # releases return at once.
    img = mitk.Image(np.zeros((8, 8), np.int64))
    stop = threading.Event()
    workers = [start_thread(_churn_writes, img, stop) for _ in range(3)]

    def child():
        img.pixel_buffer.lock_state()
        for request in (img.read, img.write):
            try:
                request(timeout=0.05).release()
            except mitk.LockTimeout:
                pass
        return True

    try:
        statuses = [_in_child(child) for _ in range(40)]
    finally:
        stop.set()
        join_all(workers)
    assert statuses == [0] * len(statuses)
