"""Helpers shared by the test modules (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

import contextlib
import threading
from typing import Callable

import numpy as np

#: Every pixel type mitk holds (SPEC.md section 5).
PIXEL_TYPES = (
    "bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
    "float16", "float32", "float64", "complex64", "complex128",
)

#: Upper bound for any join in the concurrency tests: nothing may hang CI.
JOIN_TIMEOUT = 30.0


def sample_array(dtype, shape, seed: int = 0, extremes: bool = False) -> np.ndarray:
    """Deterministic, non-trivial values of any supported dtype (distinct per element).

    ``extremes``: integers drawn from the type's whole range and floats starting with NaN,
    +inf and -inf, for tests of exact bits.
    """
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    n = int(np.prod(shape))
    if dt.kind == "b":
        flat = rng.integers(0, 2, n).astype(bool)
    elif dt.kind in "iu" and extremes:
        info = np.iinfo(dt)
        flat = rng.integers(info.min, info.max, n, endpoint=True, dtype=dt)
    elif dt.kind in "iu":
        info = np.iinfo(dt)
        flat = rng.integers(max(info.min, -1000), min(info.max, 1000), n, endpoint=True).astype(dt)
        if n >= 2:
            flat[:2] = [info.min, info.max]  # the extremes must survive too
    elif dt.kind == "f":
        flat = (rng.standard_normal(n) * 100).astype(dt)
        if extremes:
            flat[:3] = [np.nan, np.inf, -np.inf][:n]
    else:
        flat = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(dt)
    return flat.reshape(shape)


def start_thread(target: Callable, *args) -> threading.Thread:
    """Start a daemon thread (a stuck one cannot keep the test process alive)."""
    t = threading.Thread(target=target, args=args, daemon=True)
    t.start()
    return t


def join_all(threads, timeout: float = JOIN_TIMEOUT) -> None:
    """Join every thread with a timeout and assert that each one ended."""
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), f"thread {t.name} did not finish within {timeout} s"


def change_image_in_child(conn) -> None:
    """Child side of the multiprocessing pickle test: change pixels, geometry, properties."""
    img = conn.recv()
    img.as_numpy(writeable=True)[0, 0, 0, 0] = 99
    img.spacing = (7, 7, 7)
    img.properties["from"] = "child"
    conn.send(img)
    conn.close()


def numpy_allocator(dtype, shape: tuple) -> np.ndarray:
    """The ``allocate`` callback format tests pass to readers: a plain uninitialised array."""
    return np.empty(shape, dtype=dtype)


class Recorder:
    """An ``allocate`` callback for format readers that remembers the arrays it handed out.

    ``calls`` lists them; a reader must call it once for a valid file, and not at all for a file
    it refuses before reading data.
    """

    def __init__(self) -> None:
        self.calls: list = []

    def __call__(self, dtype, shape: tuple) -> np.ndarray:
        arr = numpy_allocator(dtype, shape)
        self.calls.append(arr)
        return arr


def temporaries(directory) -> list:
    """The names of save temporaries (``.mitk-tmp-*``) left in ``directory``."""
    import os

    from mitk.io._replace import TEMP_PREFIX

    return [n for n in os.listdir(directory) if n.startswith(TEMP_PREFIX)]


@contextlib.contextmanager
def flipping_spacing(img):
    """Inside the block, a thread sets ``img.spacing`` to (1, 1, 1) and (2, 2, 2) in turn."""
    stop = threading.Event()

    def setter() -> None:
        while not stop.is_set():
            img.spacing = (1.0, 1.0, 1.0)
            img.spacing = (2.0, 2.0, 2.0)

    t = start_thread(setter)
    try:
        yield
    finally:
        stop.set()
        join_all([t])


def record_thread_starts(monkeypatch) -> list:
    """The names of the threads started from now on (``Thread.start`` wrapped for the test)."""
    started: list = []
    real_start = threading.Thread.start

    def counting_start(self) -> None:
        started.append(self.name)
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    return started
