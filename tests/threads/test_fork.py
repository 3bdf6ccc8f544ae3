"""Fork: unlocked images work in the child; a lock held at fork time stays held there."""

import os
import sys
import threading

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


def _in_child(fn) -> int:
    """Run ``fn`` in a forked child; returns its exit status (0 when fn returned True)."""
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            code = 0 if fn() else 3
        except BaseException:
            code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


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
