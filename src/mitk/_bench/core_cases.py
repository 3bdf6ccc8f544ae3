"""Benchmark cases of the in-memory core: construction, views, locks, threads, pickle, import."""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading
import time

import numpy as np

from .results import Result
from .timing import best_time, per_call

MiB = 1 << 20


def _gbps(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e9


def construct_copy(quick: bool) -> Result:
    """``Image(arr)`` of a 64 MiB float32 volume against memcpy into preallocated memory."""
    import mitk

    nbytes = (8 if quick else 64) * MiB
    arr = np.ones(nbytes // 4, np.float32).reshape(-1, 256, 256)
    dst = np.empty_like(arr)
    repeat = 3 if quick else 7
    t_ref = best_time(lambda: np.copyto(dst, arr), repeat=repeat)
    t_ours = best_time(lambda: mitk.Image(arr), repeat=repeat)
    return Result("core.construct_copy", "core",
                  f"Image(arr), {nbytes // MiB} MiB float32 (copy)",
                  _gbps(nbytes, t_ours), "GB/s", "memcpy (np.copyto, preallocated)",
                  _gbps(nbytes, t_ref), "GB/s", ">= 0.9x")


def construct_adopt(quick: bool) -> Result:
    """``Image(arr, copy=False)``: constant time whatever the size."""
    import mitk

    small = np.ones((4, 4, 4), np.float32)
    large = np.ones(((8 if quick else 64) * MiB) // 4, np.float32).reshape(-1, 256, 256)
    t_small = per_call(lambda: mitk.Image(small, copy=False))
    t_large = per_call(lambda: mitk.Image(large, copy=False))
    return Result("core.construct_adopt", "core",
                  f"Image(arr, copy=False), {large.nbytes // MiB} MiB",
                  t_large * 1e6, "us", "the same on a 256-byte array", t_small * 1e6, "us",
                  "<= 5 us")


def direct_views(quick: bool) -> list[Result]:
    """``as_numpy()``, ``img.array``, ``np.asarray(img)`` against ``ndarray.view()``."""
    import mitk

    img = mitk.Image(np.zeros((64, 64, 64), np.float32))
    base = np.zeros((64, 64, 64), np.float32)
    t_ref = per_call(base.view)
    out = []
    for name, fn in (("as_numpy", img.as_numpy), ("array", lambda: img.array),
                     ("np_asarray", lambda: np.asarray(img))):
        out.append(Result(f"core.view_{name}", "core", f"direct view: {name}",
                          per_call(fn) * 1e6, "us", "ndarray.view()", t_ref * 1e6, "us",
                          "<= 1 us"))
    return out


def accessor_views(quick: bool) -> list[Result]:
    """Lock-holding views: acquire, make the view, release; and the bare accessor."""
    import mitk
    from mitk._core import ReadAccessor

    img = mitk.Image(np.zeros((64, 64, 64), np.float32))
    buf = img.pixel_buffer
    lock = threading.Lock()

    def with_lock():
        with lock:
            pass

    t_ref = per_call(with_lock)

    def accessor_view():
        img.as_numpy(use_accessor=True)

    def bare_accessor():
        with ReadAccessor(buf):
            pass

    return [
        Result("locks.accessor_view", "locks", "as_numpy(use_accessor=True): acquire, view, release",
               per_call(accessor_view) * 1e6, "us", "threading.Lock acquire+release",
               t_ref * 1e6, "us", "<= 2 us"),
        Result("locks.read_accessor", "locks", "with ReadAccessor(buf): pass",
               per_call(bare_accessor) * 1e6, "us", "threading.Lock acquire+release",
               t_ref * 1e6, "us", "<= 1.5 us"),
    ]


def _threaded_sum(img, threads: int, seconds: float) -> float:
    """Bytes per second summed by ``threads`` threads through read-accessor views."""
    done = [0] * threads
    stop = time.perf_counter() + seconds
    barrier = threading.Barrier(threads)

    def work(i):
        barrier.wait()
        while time.perf_counter() < stop:
            with img.read() as acc:
                acc.array.sum()
            done[i] += 1

    ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(done) * img.nbytes / (time.perf_counter() - t0)


def reader_scaling(quick: bool) -> Result:
    """Two threads summing one image through read accessors, against one thread."""
    import mitk

    img = mitk.Image(np.ones(((8 if quick else 64) * MiB) // 4, np.float32).reshape(-1, 256, 256))
    seconds = 0.3 if quick else 1.5
    one = max(_threaded_sum(img, 1, seconds) for _ in range(2))
    two = max(_threaded_sum(img, 2, seconds) for _ in range(2))
    return Result("locks.reader_scaling", "locks", "2 threads summing one image (read accessors)",
                  two / 1e9, "GB/s", "1 thread", one / 1e9, "GB/s", ">= 1.8x")


def contended_locks(quick: bool) -> Result:
    """Two Python threads taking one image's write lock in turn, against ``threading.Lock``."""
    import mitk
    from mitk._core import WriteAccessor

    buf = mitk.Image(np.zeros((4, 4), np.float32)).pixel_buffer
    lock = threading.Lock()
    n = 20_000 if quick else 200_000

    def ours():
        for _ in range(n):
            with WriteAccessor(buf):
                pass

    def reference():
        for _ in range(n):
            with lock:
                pass

    def two(fn) -> float:
        ts = [threading.Thread(target=fn) for _ in range(2)]
        t0 = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return time.perf_counter() - t0

    repeat = 3 if quick else 5
    t_ours = min(two(ours) for _ in range(repeat))
    t_ref = min(two(reference) for _ in range(repeat))
    return Result("locks.contended", "locks",
                  "2 threads contending for one write lock (with WriteAccessor)",
                  2 * n / t_ours / 1e6, "M pairs/s", "threading.Lock, 2 threads",
                  2 * n / t_ref / 1e6, "M pairs/s")


def pickle5(quick: bool) -> list[Result]:
    """Pickle protocol 5 of a 150 MB image against the bare ndarray: in band and out of band."""
    import mitk

    nbytes = (16 if quick else 150) * 1000 * 1000
    arr = np.ones(nbytes // 4, np.float32).reshape(-1, 250, 250)
    img = mitk.Image(arr)

    def in_band(obj):
        return pickle.loads(pickle.dumps(obj, protocol=5))

    def out_of_band(obj):
        buffers = []
        data = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
        return pickle.loads(data, buffers=buffers)

    repeat = 3 if quick else 5
    t_ref = best_time(lambda: in_band(arr), repeat=repeat)
    t_ours = best_time(lambda: in_band(img), repeat=repeat)
    oob_ref = per_call(lambda: out_of_band(arr))
    oob_ours = per_call(lambda: out_of_band(img))
    return [
        Result("pickle.protocol5", "pickle",
               f"pickle protocol 5 dumps+loads, {nbytes // 1000000} MB image (in band)",
               _gbps(nbytes, t_ours), "GB/s", "the same for the bare ndarray",
               _gbps(nbytes, t_ref), "GB/s", ">= 0.9x"),
        Result("pickle.protocol5_out_of_band", "pickle",
               "pickle protocol 5 round trip, out of band (zero-copy): latency",
               oob_ours * 1e6, "us", "the same for the bare ndarray", oob_ref * 1e6, "us"),
    ]


def _import_ms(setup: str, code: str, repeat: int) -> float:
    """Best time (ms) of ``code`` in fresh interpreters, after ``setup`` ran there."""
    best = float("inf")
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-P", "-c",
             f"{setup}; import time; t=time.perf_counter(); {code}; "
             "print(time.perf_counter()-t)"],
            capture_output=True, text=True, check=True)
        best = min(best, float(out.stdout))
    return best * 1e3


#: Peers whose import cost is shown beside ours: table name -> module to import.
_IMPORT_PEERS = {"SimpleITK": "SimpleITK", "ITK": "itk", "nibabel": "nibabel", "pynrrd": "nrrd"}


def import_time(quick: bool, peers: bool = False) -> Result:
    """``import mitk`` in a fresh interpreter that already imported numpy."""
    import importlib.metadata
    import importlib.util

    repeat = 3 if quick else 10
    numpy_ms = _import_ms("pass", "import numpy", repeat)
    mitk_ms = _import_ms("import numpy", "import mitk", repeat)
    result = Result("import.mitk", "import", "import mitk in a fresh subprocess, after numpy",
                    mitk_ms, "ms", "import numpy", numpy_ms, "ms", "<= 15 ms")
    if peers:
        dists = {"SimpleITK": "SimpleITK", "ITK": "itk", "nibabel": "nibabel",
                 "pynrrd": "pynrrd"}
        for name, module in _IMPORT_PEERS.items():
            if importlib.util.find_spec(module) is None:
                continue
            try:
                ms = _import_ms("import numpy", f"import {module}", min(repeat, 5))
                version = importlib.metadata.version(dists[name])
            except (subprocess.CalledProcessError, ValueError,
                    importlib.metadata.PackageNotFoundError):
                continue
            result.peers[name] = {"version": version, "value": ms, "unit": "ms"}
        from . import upstream

        got = upstream.measure([{"key": "import", "kind": "import"}], min(repeat, 5))
        if got is not None and "import" in got[1]:
            result.peers["mitk-python (upstream)"] = {"version": got[0],
                                                      "value": got[1]["import"] * 1e3,
                                                      "unit": "ms"}
    return result


#: (name, function) of every core case, in table order.
CASES = [
    ("core.construct_copy", construct_copy),
    ("core.construct_adopt", construct_adopt),
    ("core.views", direct_views),
    ("locks.accessors", accessor_views),
    ("locks.reader_scaling", reader_scaling),
    ("locks.contended", contended_locks),
    ("pickle.protocol5", pickle5),
    ("import.mitk", import_time),
]
