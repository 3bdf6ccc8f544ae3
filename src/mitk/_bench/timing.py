"""Small, dependable timing helpers (best-of-N wall time; no statistics theatre)."""

from __future__ import annotations

import gc
import subprocess
import sys
import time
from typing import Callable, Sequence


def best_time(fn: Callable[[], object], *, repeat: int = 5, number: int = 1,
              warmup: int = 1) -> float:
    """Best wall time in seconds of ``number`` calls of ``fn``, over ``repeat`` rounds, per call.

    The garbage collector is paused while timing (as :mod:`timeit` does).
    """
    for _ in range(warmup):
        fn()
    best = float("inf")
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            best = min(best, (time.perf_counter() - t0) / number)
    finally:
        if enabled:
            gc.enable()
    return best


def calibrated_number(fn: Callable[[], object], target: float = 0.05) -> int:
    """How many calls of ``fn`` take about ``target`` seconds (at least 1)."""
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        dt = time.perf_counter() - t0
        if dt >= target / 4 or number >= 1 << 24:
            return max(1, int(number * target / max(dt, 1e-9)))
        number *= 4


def per_call(fn: Callable[[], object], *, repeat: int = 7, target: float = 0.05) -> float:
    """Best seconds per call of a fast ``fn`` (number of calls calibrated to ~``target`` s)."""
    return best_time(fn, repeat=repeat, number=calibrated_number(fn, target))


_PEAK = """
import numpy
def hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) * 1024
{setup}
before = hwm()
{load}
print(hwm() - before, {report})
"""


def peak_growth(setup: str, load: str, *, report: Sequence[str] = (),
                exe: str = sys.executable) -> list[int]:
    """Peak resident memory growth, in bytes, of running ``load`` after ``setup`` in a fresh
    interpreter ``exe`` (``-P``: the working directory is not imported), then the value of each
    expression in ``report`` evaluated there.

    VmHWM (the high-water mark of resident memory) is exact when read, unlike getrusage's
    ru_maxrss, which Linux updates lazily.  Linux only (``/proc``).
    CalledProcessError when the child fails.
    """
    script = _PEAK.format(setup=setup, load=load, report=", ".join(report))
    res = subprocess.run([exe, "-P", "-c", script], capture_output=True, text=True, check=True)
    return [int(v) for v in res.stdout.split()[-1 - len(report):]]
