"""Benchmark cases of thread scaling (issue 19): Python-level work and file loads on N threads.

Each case runs the same work on 1 thread and on N threads (2 and 4) in the same process and
reports the N-thread throughput against the 1-thread one, so the ratio is the speed-up.  Every
thread's results are checked against values computed up front; a wrong result fails the case.

- ``threads.slices_N``: N threads each run a Python loop over the slices of one shared image,
  taking a read accessor per slice and reducing the slice in Python (its values as Python floats,
  then ``sum`` and ``max`` of each row).  The interpreter is the bottleneck: with the GIL the
  threads take turns (a ratio of about 1.0x, give or take this machine's noise), on
  free-threaded CPython they run at once.
  Target (free-threaded builds with at least 2 CPUs): ``>= 1.8x`` with 2 threads.
  ``threads.python_only_2`` is the same work on slices of one shared plain array with no mitk
  involved: what the interpreter and the machine allow for it in the same run.
- ``threads.numpy_slices_N``: the same loop with NumPy's ``sum()`` and ``max()`` of each slice,
  and ``threads.numpy_only_2`` the same NumPy calls on slices of one shared plain array, with no
  mitk involved.  On free-threaded CPython every thread updates the reference counts of objects
  they all share (the array, its dtype, NumPy's ufuncs) in each such call, so small NumPy calls
  scale less than Python work; the ``numpy_only`` row shows how much, on this machine, for
  NumPy alone.
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


def _build() -> str:
    """The build named in row descriptions: "free-threaded" (GIL off now) or "GIL"."""
    return "free-threaded" if free_threaded() else "GIL"


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
    """Throughputs (units per second) ``{n: (n threads, 1 thread)}`` of the median pair.

    Each count has its own block of ``rounds`` pairs: one thread, then ``n`` threads, back to
    back, so that a row's reference is measured next to it and the two-thread row's block comes
    before any run with more threads than a small machine has CPUs (which unsettles the timing of
    what runs next).  The pair reported is the one whose ratio is the median of the block's
    ratios: its two throughputs were measured together, and no lucky single run sets the ratio.
    On a 2-vCPU virtual machine single pairs of the same work range from about 1.5x to 2.5x, so
    the Python-work rows take 15 short rounds.  Raises AssertionError if any thread's result
    fails ``check``.
    """
    out = {}
    for n in counts:
        pairs = []
        for _ in range(rounds):
            rates = []
            for count in (1, n):
                elapsed, results = _run_threads(work, count)
                if not all(check(r) for r in results):
                    raise AssertionError(f"a thread computed a wrong result ({count} threads)")
                rates.append(count * units / elapsed)
            pairs.append((rates[1], rates[0]))
        pairs.sort(key=lambda pair: pair[0] / pair[1])
        out[n] = pairs[(len(pairs) - 1) // 2]  # the lower median for an even count
    return out


def _calibrate(work: Callable[[int], object], seconds: float) -> int:
    """How many repetitions of ``work`` take about ``seconds`` on one thread (at least 1)."""
    t0 = time.perf_counter()
    work(0)
    one = max(time.perf_counter() - t0, 1e-6)
    return max(1, int(seconds / one))


def _python_reduction(rows: list) -> tuple[float, float]:
    """Sum and maximum of a slice given as nested lists, in Python."""
    total, peak = 0.0, float("-inf")
    for row in rows:
        total += sum(row)
        top = max(row)
        if top > peak:
            peak = top
    return total, peak


def _scaling_rows(prefix: str, what: str, one_pass: Callable[[int], list], expected: list,
                  quick: bool, counts: tuple, target: str = "") -> list[Result]:
    """Rows ``{prefix}_{n}``: n threads each running ``one_pass`` again and again, over one."""
    one_pass(0)  # warm up (lazy imports, caches)
    passes = _calibrate(one_pass, 0.05 if quick else 0.15)

    def work(i: int) -> bool:
        ok = True
        for _ in range(passes):
            ok = one_pass(i) == expected and ok
        return ok

    rates = _scaling(work, bool, passes * len(expected), counts, 5 if quick else 15)
    build = _build()
    return [Result(f"{prefix}_{n}", "threads", f"{n} threads: {what} ({build})",
                   rates[n][0] / 1e3, "k slices/s", "1 thread", rates[n][1] / 1e3, "k slices/s",
                   target if n == 2 else "")
            for n in counts]


def python_slices(quick: bool) -> list[Result]:
    """N threads, each a Python loop over one shared image's slices through read accessors."""
    import mitk

    rng = np.random.default_rng(19)
    # 16 x 16 slices: 256 pixels, below the size at which NumPy releases the GIL for a
    # reduction, so with the GIL every step of a slice's work holds it.
    plain = rng.random((256, 16, 16), dtype=np.float32)
    img = mitk.Image(plain)
    nslices = len(plain)

    def in_python(i: int) -> list:
        out = []
        for k in range(nslices):
            with img.read() as acc:
                out.append(_python_reduction(acc.array[k].tolist()))
        return out

    def python_only(i: int) -> list:
        return [_python_reduction(plain[k].tolist()) for k in range(nslices)]

    def in_numpy(i: int) -> list:
        out = []
        for k in range(nslices):
            with img.read() as acc:
                s = acc.array[k]
                out.append((float(s.sum()), float(s.max())))
        return out

    def numpy_only(i: int) -> list:
        out = []
        for k in range(nslices):
            s = plain[k]
            out.append((float(s.sum()), float(s.max())))
        return out

    def loop(i: int) -> bool:
        n = loop_length
        total = 0
        for j in range(n):
            total += j * j
        return total == (n - 1) * n * (2 * n - 1) // 6

    build = _build()
    target = ">= 1.8x" if free_threaded() and _cpus() >= 2 else ""
    by_python = [_python_reduction(s.tolist()) for s in plain]
    by_numpy = [(float(s.sum()), float(s.max())) for s in plain]
    rows = [
        *_scaling_rows("threads.slices", "per-slice Python work on one image via read accessors",
                       in_python, by_python, quick, THREAD_COUNTS, target),
        *_scaling_rows("threads.python_only", "the same per-slice Python work on slices of "
                       "a plain array, no mitk", python_only, by_python, quick, (2,)),
        *_scaling_rows("threads.numpy_slices",
                       "per-slice NumPy sum and max on one image via read accessors",
                       in_numpy, by_numpy, quick, THREAD_COUNTS),
        *_scaling_rows("threads.numpy_only", "per-slice NumPy sum and max of a plain array, "
                       "no mitk", numpy_only, by_numpy, quick, (2,)),
    ]
    # Measured last, so that it is not the first thing the machine runs (which, on a small
    # virtual machine, can catch it still settling), and shown first.
    loop_length = 1000
    loop_length *= _calibrate(loop, 0.05 if quick else 0.15)
    baseline = _scaling(loop, bool, 1, (2,), 5 if quick else 15)
    return [
        Result("threads.python_loop_2", "threads",
               f"2 threads: a pure-Python loop, no mitk (parallelism available now; {build})",
               baseline[2][0], "loops/s", "1 thread", baseline[2][1], "loops/s"),
        *rows,
    ]


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

        rates = _scaling(work, bool, repeats, THREAD_COUNTS, 5 if quick else 9)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    mib = arrays[0].nbytes / (1 << 20)
    build = _build()
    return [
        Result(f"threads.load_files_{n}", "threads",
               f"{n} threads each loading its own {mib:.0f} MiB gzip NRRD ({build})",
               rates[n][0], "files/s", "1 thread, 1 file", rates[n][1], "files/s")
        for n in THREAD_COUNTS
    ]


#: (name, function) of every contention case, in table order.
CASES = [
    ("threads.slices", python_slices),
    ("threads.load_files", file_loads),
]
