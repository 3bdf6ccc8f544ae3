"""The reader/writer lock seen from Python threads: sharing, exclusion, preference, timeouts."""

import threading
import time

import numpy as np
import pytest

from mitk._core import PixelBuffer, ReadAccessor, WriteAccessor
from mitk_testing import join_all, start_thread

import mitk


def _buffer():
    # Made in the test body, not in a fixture: under pytest-run-parallel every thread running a
    # test then has its own buffer, and lock-state assertions stay exact.
    return PixelBuffer.new("int64", (4, 256))


def test_readers_share():
    buf = _buffer()
    n = 4
    inside = threading.Barrier(n + 1, timeout=10)
    leave = threading.Event()

    def reader():
        with ReadAccessor(buf, timeout=10):
            inside.wait()  # all readers hold the lock at the same time
            leave.wait(10)

    threads = [start_thread(reader) for _ in range(n)]
    inside.wait()
    assert buf.lock_state()[0] == n
    leave.set()
    join_all(threads)
    assert buf.lock_state() == (0, False, 0)


def test_writer_excludes_readers_and_writers():
    buf = _buffer()
    stop = time.monotonic() + 1.0
    errors = []

    def writer(value):
        while time.monotonic() < stop:
            with WriteAccessor(buf, timeout=10) as acc:
                a = acc.array
                a[:, :128] = value
                a[:, 128:] = value  # a reader must never see the two halves differ
                del a

    def reader():
        while time.monotonic() < stop:
            with ReadAccessor(buf, timeout=10) as acc:
                a = acc.array
                if not (a == a[0, 0]).all():
                    errors.append(a.copy())
                del a

    threads = [start_thread(writer, v) for v in (1, 2)] + [start_thread(reader) for _ in range(3)]
    join_all(threads)
    assert not errors, "a reader saw a half-written buffer"


def test_waiting_writer_blocks_new_readers_but_not_reentrant_ones():
    buf = _buffer()
    first = ReadAccessor(buf)  # main thread holds a read lock
    writer_in = threading.Event()

    def writer():
        with WriteAccessor(buf, timeout=10):
            writer_in.set()

    t = start_thread(writer)
    deadline = time.monotonic() + 5
    while buf.lock_state()[2] == 0 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert buf.lock_state()[2] == 1, "writer is not waiting"

    blocked = []

    def new_reader():
        try:
            ReadAccessor(buf, timeout=0.2).release()
        except mitk.LockTimeout:
            blocked.append(True)

    r = start_thread(new_reader)
    join_all([r])
    assert blocked == [True], "a new reader overtook the waiting writer"
    # The thread that already reads may read again (no deadlock against the waiting writer).
    again = ReadAccessor(buf, timeout=0)
    again.release()
    assert not writer_in.is_set()
    first.release()
    join_all([t])
    assert writer_in.is_set()


def test_timeout_within_tolerance():
    buf = _buffer()
    holder = WriteAccessor(buf)
    result = {}

    def waiter():
        t0 = time.monotonic()
        try:
            ReadAccessor(buf, timeout=0.3)
        except mitk.LockTimeout as exc:
            result["elapsed"] = time.monotonic() - t0
            result["message"] = str(exc)

    join_all([start_thread(waiter)])
    holder.release()
    assert 0.28 <= result["elapsed"] < 2.0
    assert "read" in result["message"] and "0.3" in result["message"]


def test_try_once():
    buf = _buffer()
    holder = WriteAccessor(buf)
    out = []

    def trier():
        t0 = time.monotonic()
        try:
            ReadAccessor(buf, timeout=0)
        except mitk.LockTimeout:
            out.append(time.monotonic() - t0)

    join_all([start_thread(trier)])
    holder.release()
    assert out and out[0] < 0.5


def test_self_deadlock_is_raised_at_once():
    buf = _buffer()
    held = ReadAccessor(buf)
    t0 = time.monotonic()
    with pytest.raises(mitk.LockError):
        WriteAccessor(buf, timeout=20)
    assert time.monotonic() - t0 < 1.0
    held.release()


def test_release_from_another_thread():
    buf = _buffer()
    acc = WriteAccessor(buf)
    join_all([start_thread(acc.release)])
    assert buf.lock_state() == (0, False, 0)
    ReadAccessor(buf, timeout=0).release()


def test_lock_collected_in_another_thread():
    buf = _buffer()
    holder = [np.asarray(WriteAccessor(buf))]

    def drop():
        holder.clear()

    join_all([start_thread(drop)])
    assert buf.lock_state() == (0, False, 0)
    WriteAccessor(buf, timeout=0).release()


def test_writer_is_not_starved():
    buf = _buffer()
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            with ReadAccessor(buf, timeout=10):
                time.sleep(0.001)

    readers = [start_thread(reader) for _ in range(4)]
    time.sleep(0.05)
    t0 = time.monotonic()
    WriteAccessor(buf, timeout=10).release()
    waited = time.monotonic() - t0
    stop.set()
    join_all(readers)
    assert waited < 5.0
