"""Waiting for a lock releases the GIL: other Python threads keep running."""

import threading
import time

from mitk._core import PixelBuffer, ReadAccessor, WriteAccessor
from mitk_testing import join_all, start_thread

import mitk


def test_counter_advances_while_a_thread_waits():
    buf = PixelBuffer.new("float32", (128, 128))
    holder = WriteAccessor(buf)  # the main thread holds the write lock
    waiting = threading.Event()
    got = threading.Event()

    def waiter():
        waiting.set()
        with WriteAccessor(buf, timeout=20):
            got.set()

    count = [0]
    stop = threading.Event()

    def counter():
        while not stop.is_set():
            count[0] += 1

    w = start_thread(waiter)
    waiting.wait(5)
    time.sleep(0.05)  # the waiter is now blocked inside the lock wait
    c = start_thread(counter)
    start = count[0]
    deadline = time.monotonic() + 5
    while count[0] < start + 100_000 and time.monotonic() < deadline:
        time.sleep(0.01)
    advanced = count[0] - start
    assert not got.is_set()
    holder.release()
    join_all([w])
    stop.set()
    join_all([c])
    assert got.is_set()
    assert advanced >= 100_000, f"the counter advanced only {advanced} while a thread waited"


def test_signals_are_checked_while_waiting():
    # A wait is split into slices of at most 100 ms with a signal check in between; a timeout
    # therefore ends on time even when the slices do not divide it.
    buf = PixelBuffer.new("uint8", (4,))
    holder = WriteAccessor(buf)
    out = {}

    def waiter():
        t0 = time.monotonic()
        try:
            ReadAccessor(buf, timeout=0.25)
        except mitk.LockTimeout:
            out["t"] = time.monotonic() - t0

    join_all([start_thread(waiter)])
    holder.release()
    assert 0.24 <= out["t"] < 1.5
