"""Benchmark cases of thread scaling (issue 19): Python-level work and file loads on N threads.

Each case runs the same work on 1 thread and on N threads (2 and 4) in the same process and
reports the N-thread throughput against the 1-thread one, so the ratio is the speed-up.  Every
thread's results are checked against values computed up front; a wrong result fails the case.

- ``threads.slices_N``: N threads each run a Python loop over the slices of one shared image,
  taking a read accessor per slice and reducing the slice (sum and maximum, converted to Python
  floats).  Per-slice work is small, so the interpreter, not NumPy, is the bottleneck: with the
  GIL the threads take turns (a ratio of at most 1.0x), on free-threaded CPython they run at
  once.  Target (free-threaded builds with at least 2 CPUs): ``>= 1.8x`` with 2 threads.
- ``threads.python_loop_2``: the same measurement for a pure-Python loop that touches nothing of
  mitk: the parallelism the interpreter and this machine give at the moment (on a machine whose
  cores are busy with other work it is well below 2x, and so is everything else).
- ``threads.load_files_N``: N threads each load their own gzip NRRD file again and again.  File
  reading and inflating release the GIL, so this scales on both builds (as far as the cores and
  memory bandwidth allow); mitk's own threads are limited to 1 inside each load
  (``mitk.num_threads(1)``) so that the 1-thread figure is one core's worth.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
import tempfile
import threading
import time
from typing import Callable

import numpy as np

from .results import Result

#: Thread counts measured against one thread.
THREAD_COUNTS = (2, 4)


def free_threaded() -> bool:
    """Whether this interpreter runs without the GIL right now."""
    is_enabled = getattr(sys, "_is_gil_enabled", None)
    return bool(sysconfig.get_config_var("Py_GIL_DISABLED")) and is_enabled is not None \
        and not is_enabled()


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _run_threads(work: Callable[[int], object], n: int) -> tuple[float, list]:
    """Run ``work(i)`` on threads 0..n-1 at once; returns (wall seconds, their results)."""
    results: list = [None] * n
    errors: list = []
    start = threading.Barrier(n + 1)

    def body(i: int) -> None:
        start.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:  # reported below, in the measuring thread
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return elapsed, results


def _scaling(work: Callable[[int], object], check: Callable[[object], bool], units: float,
             counts: tuple, rounds: int) -> dict:
    """Best throughput (units per second) of 1 thread and of each count in ``counts``.

    Rounds alternate between the thread counts, so that a noisy neighbour slows all of them
    alike.  Raises AssertionError if any thread's result fails ``check``.
    """
    best = {n: 0.0 for n in (1, *counts)}
    for _ in range(rounds):
        for n in best:
            elapsed, results = _run_threads(work, n)
            if not all(check(r) for r in results):
                raise AssertionError(f"a thread computed a wrong result ({n} threads)")
            best[n] = max(best[n], n * units / elapsed)
    return best


def _calibrate(work: Callable[[int], object], seconds: float) -> int:
    """How many repetitions of ``work`` take about ``seconds`` on one thread (at least 1)."""
    t0 = time.perf_counter()
    work(0)
    one = max(time.perf_counter() - t0, 1e-6)
    return max(1, int(seconds / one))


def python_slices(quick: bool) -> list[Result]:
    """N threads, each a Python loop over one shared image's slices through read accessors."""
    import mitk

    rng = np.random.default_rng(19)
    # 16 x 16 slices: 256 pixels, below the size at which NumPy releases the GIL for a
    # reduction, so with the GIL every step of a slice's work holds it.
    img = mitk.Image(rng.random((256, 16, 16), dtype=np.float32))
    expected = [(float(s.sum()), float(s.max())) for s in img.array]
    nslices = len(expected)

    def one_pass() -> list:
        out = []
        for k in range(nslices):
            with img.read() as acc:
                s = acc.array[k]
                out.append((float(s.sum()), float(s.max())))
        return out

    one_pass()  # warm up (lazy imports, caches)
    passes = _calibrate(lambda i: one_pass(), 0.05 if quick else 0.25)

    def work(i: int) -> bool:
        ok = True
        for _ in range(passes):
            ok = one_pass() == expected and ok
        return ok

    def loop(i: int) -> bool:
        n = loop_length
        total = 0
        for j in range(n):
            total += j * j
        return total == (n - 1) * n * (2 * n - 1) // 6

    loop_length = 1000
    loop_length *= _calibrate(loop, 0.05 if quick else 0.25)

    rounds = 3 if quick else 5
    best = _scaling(work, bool, passes * nslices, THREAD_COUNTS, rounds)
    baseline = _scaling(loop, bool, 1, (2,), rounds)
    build = "free-threaded" if free_threaded() else "GIL"
    out = [Result("threads.python_loop_2", "threads",
                  f"2 threads: a pure-Python loop, no mitk (parallelism available now; {build})",
                  baseline[2], "loops/s", "1 thread", baseline[1], "loops/s")]
    for n in THREAD_COUNTS:
        target = ">= 1.8x" if n == 2 and free_threaded() and _cpus() >= 2 else ""
        out.append(Result(
            f"threads.slices_{n}", "threads",
            f"{n} threads: per-slice Python work on one image via read accessors ({build})",
            best[n] / 1e3, "k slices/s", "1 thread", best[1] / 1e3, "k slices/s", target))
    return out


def file_loads(quick: bool) -> list[Result]:
    """N threads, each loading its own gzip NRRD file, against one thread loading one file."""
    import mitk

    shape = (16, 128, 128) if quick else (48, 192, 192)
    z, y, x = np.indices(shape, dtype=np.float32)
    tmp = tempfile.mkdtemp(prefix="mitk-bench-")
    try:
        paths, arrays = [], []
        for i in range(max(THREAD_COUNTS)):
            arr = (np.sin(x / 9 + i) * np.cos(y / 7) * 100 + z).astype(np.float32)
            path = os.path.join(tmp, f"load{i}.nrrd")
            mitk.Image(arr).save(path, compression="gzip")
            paths.append(path)
            arrays.append(arr)

        def load(i: int) -> bool:
            with mitk.num_threads(1):
                return bool(np.array_equal(mitk.Image(paths[i]).array, arrays[i]))

        load(0)  # warm up (format modules, page cache)
        repeats = _calibrate(load, 0.05 if quick else 0.25)

        def work(i: int) -> bool:
            ok = True
            for _ in range(repeats):
                ok = load(i) and ok
            return ok

        best = _scaling(work, bool, repeats, THREAD_COUNTS, 3 if quick else 5)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    mib = arrays[0].nbytes / (1 << 20)
    build = "free-threaded" if free_threaded() else "GIL"
    return [
        Result(f"threads.load_files_{n}", "threads",
               f"{n} threads each loading its own {mib:.0f} MiB gzip NRRD ({build})",
               best[n], "files/s", "1 thread, 1 file", best[1], "files/s")
        for n in THREAD_COUNTS
    ]


#: (name, function) of every contention case, in table order.
CASES = [
    ("threads.slices", python_slices),
    ("threads.load_files", file_loads),
]
