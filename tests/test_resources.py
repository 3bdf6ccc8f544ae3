"""No leaked file descriptors or memory after 10,000 load/save cycles.

One cycle saves a small image in one format (the formats in turn, detached pairs included), loads
it back, loads a truncated copy (``CorruptFileError``) and, every few cycles, fails a save part
way through the pixels: the error paths open files too and must close them.  After a warm-up the
test takes the process's open file descriptors (``/proc/self/fd``), the memory traced by
:mod:`tracemalloc` (Python and NumPy allocations) and the resident set size (``VmRSS``, which
also sees C allocations such as the pixel buffers that tracemalloc cannot), runs the 10,000
cycles and compares.
"""

from __future__ import annotations

import errno
import gc
import os
import sys
import time
import tracemalloc

import numpy as np
import pytest

import mitk
from mitk.errors import CorruptFileError
from mitk.io import _streams
from mitk.io._replace import TEMP_PREFIX

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"),
                       reason="counts descriptors in /proc/self/fd and reads VmRSS from "
                              "/proc/self/status, which only Linux has"),
    pytest.mark.thread_unsafe,  # process-wide counters: parallel tests would move them
]

CYCLES = 10_000
WARMUP = 300
#: (extension, data file beside the header: the file a truncation damages; None: the file itself).
FORMATS = ((".nrrd", None), (".nii", None), (".nii.gz", None), (".mha", None),
           (".nhdr", ".raw"), (".mhd", ".raw"), (".hdr", ".img"))
#: Every how many cycles a truncated file is loaded, a save fails with a partial temporary, and
#: a save is fsynced (the fsynced path opens the directory as well; the others pass
#: ``fsync=False`` to fit the time).
BROKEN_EVERY = 3
FAIL_EVERY = 10
FSYNC_EVERY = 10
MAX_TRACED_GROWTH = 1 << 20
MAX_RSS_GROWTH = 32 << 20


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _describe_fds() -> list:
    described = []
    for name in sorted(os.listdir("/proc/self/fd"), key=int):
        try:
            described.append(f"{name} -> {os.readlink(f'/proc/self/fd/{name}')}")
        except OSError:  # the descriptor listdir itself used, closed by now
            pass
    return described


def _rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line in /proc/self/status")


class _FailingWrites:
    """Makes the writers' pixel output fail after a partial write while ``armed`` is set."""

    def __init__(self, monkeypatch):
        self.armed = False
        for name in ("write_from", "compress_from"):
            monkeypatch.setattr(_streams, name, self._wrap(getattr(_streams, name)))

    def _wrap(self, real):
        def write(f, *args, **kwargs):
            if self.armed:
                f.write(b"\0" * 16)
                raise OSError(errno.ENOSPC, "injected: no space left on device")
            return real(f, *args, **kwargs)

        return write


def _setup(directory):
    """Per format: (the files a save writes, the path of a truncated copy)."""
    img = mitk.Image(np.arange(3 * 4 * 5, dtype=np.int16).reshape(3, 4, 5))
    cases = []
    for k, (ext, data) in enumerate(FORMATS):
        target = directory / f"f{k}{ext}"
        written = (target, directory / f"f{k}{data}") if data else (target,)
        broken = directory / f"broken{k}{ext}"
        img.save(broken)
        victim = broken.with_name(f"broken{k}{data}") if data else broken
        victim.write_bytes(victim.read_bytes()[:-7])
        cases.append((written, broken))
    return img, cases


def _cycles(img, cases, failing, start: int, count: int) -> None:
    expected = img.as_numpy()
    for i in range(start, start + count):
        written, broken = cases[i % len(cases)]
        target = written[0]
        img.save(target, fsync=i % FSYNC_EVERY == 0)
        back = mitk.Image(target)
        if back.shape != expected.shape or not np.array_equal(back.as_numpy(), expected):
            raise AssertionError(f"cycle {i}: {target.name} did not round-trip")
        del back
        if i % FAIL_EVERY == 0:
            failing.armed = True
            try:
                with pytest.raises(OSError, match="injected"):
                    img.save(target, fsync=False)
            finally:
                failing.armed = False
        if i % BROKEN_EVERY == 0:
            with pytest.raises(CorruptFileError):
                mitk.Image(broken)
        if i % 2:
            # With an odd number of formats, each format's next save then creates its files and
            # the one after replaces them: both paths run, and half the renames skip ext4's
            # costly flush on replacing a file (auto_da_alloc), which keeps the time bounded.
            # A detached pair's data file name alternates (x.raw, x.1.raw): remove all of it.
            stem = target.name.split(".")[0]
            for path in target.parent.glob(f"{stem}.*"):
                os.unlink(path)


def test_no_leaks_after_10000_load_save_cycles(tmp_path, monkeypatch):
    img, cases = _setup(tmp_path)
    failing = _FailingWrites(monkeypatch)
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start(1)  # one frame: deeper tracebacks triple the run time
    try:
        # The warm-up fills the caches that are meant to grow once (imports, compiled regular
        # expressions, NumPy's small-allocation cache, the allocator's arenas).
        _cycles(img, cases, failing, 0, WARMUP)
        gc.collect()
        snapshot0 = tracemalloc.take_snapshot()  # before the baseline: counted on both sides
        fds0, rss0 = _open_fds(), _rss_bytes()
        traced0 = tracemalloc.get_traced_memory()[0]
        start = time.perf_counter()
        _cycles(img, cases, failing, WARMUP, CYCLES)
        elapsed = time.perf_counter() - start
        gc.collect()
        fds1, rss1 = _open_fds(), _rss_bytes()
        traced1 = tracemalloc.get_traced_memory()[0]
        growth = traced1 - traced0
        top = ""
        if growth >= MAX_TRACED_GROWTH:
            stats = tracemalloc.take_snapshot().compare_to(snapshot0, "lineno")
            top = "\n".join(str(s) for s in stats[:5])
        del snapshot0
    finally:
        if not was_tracing:
            tracemalloc.stop()
    print(f"{CYCLES} cycles in {elapsed:.1f} s: fds {fds0} -> {fds1}, traced memory "
          f"{traced0} -> {traced1} B ({growth:+d}), RSS {rss0 >> 10} -> {rss1 >> 10} KiB "
          f"({(rss1 - rss0) >> 10:+d} KiB)")
    assert fds1 == fds0, f"{fds1 - fds0} file descriptors leaked; open now: {_describe_fds()}"
    assert growth < MAX_TRACED_GROWTH, f"traced memory grew by {growth} bytes:\n{top}"
    assert rss1 - rss0 < MAX_RSS_GROWTH, f"RSS grew by {(rss1 - rss0) >> 20} MiB"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]
    assert leftovers == []
