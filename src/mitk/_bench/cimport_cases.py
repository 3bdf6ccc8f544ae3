"""Lock cost through the cimport API, against a bare pthread rwlock, from compiled code.

The consumer (``consumer/``, shipped in the package) is built with meson on first use into a
per-user cache directory (``$XDG_CACHE_HOME/mitk-bench`` or ``~/.cache/mitk-bench``), keyed by the
mitk version and Python ABI.  Without meson, ninja, Cython or a C compiler the case reports why
and is skipped.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from .results import Result
from .timing import best_time

HERE = Path(__file__).parent / "consumer"


def build_consumer() -> object:
    """Build (once) and import the benchmark consumer extension."""
    import mitk

    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mitk-bench"
    # The source digest is part of the key: an edited consumer is rebuilt, never reused stale.
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(HERE.iterdir())
                                     if p.is_file())).hexdigest()[:12]
    tag = f"{mitk.__version__}-{sysconfig.get_config_var('SOABI')}-{digest}"
    build = cache / tag
    ext = [p for p in build.glob("bench_consumer*") if p.suffix in (".so", ".pyd")] \
        if build.exists() else []
    if not ext:
        meson = shutil.which("meson") or str(Path(sys.executable).parent / "meson")
        if not Path(meson).exists():
            raise RuntimeError("meson is not installed (pip install meson ninja cython)")
        src = cache / f"src-{tag}"
        shutil.rmtree(src, ignore_errors=True)
        shutil.copytree(HERE, src)
        native = src / "native.ini"
        native.write_text(f"[binaries]\npython = '{sys.executable}'\n")
        env = dict(os.environ,
                   PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        shutil.rmtree(build, ignore_errors=True)
        for cmd in ([meson, "setup", str(build), str(src), "--native-file", str(native),
                     "-Dbuildtype=release"], [meson, "compile", "-C", str(build)]):
            out = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if out.returncode:
                raise RuntimeError(f"building the benchmark consumer failed: {out.stdout[-800:]}"
                                   f"{out.stderr[-800:]}")
        ext = [p for p in build.glob("bench_consumer*") if p.suffix in (".so", ".pyd")]
    spec = importlib.util.spec_from_file_location("bench_consumer", ext[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cimport_lock(quick: bool) -> Result:
    """Uncontended read lock+unlock through buffer.pxd, against pthread_rwlock."""
    import numpy as np

    import mitk

    consumer = build_consumer()
    buf = mitk.Image(np.zeros((4, 4), np.float32)).pixel_buffer
    n = 200_000 if quick else 2_000_000
    t_ours = best_time(lambda: consumer.mitk_read_pairs(buf, n), repeat=5) / n
    t_ref = best_time(lambda: consumer.pthread_read_pairs(n), repeat=5) / n
    return Result("locks.cimport_read_pair", "locks",
                  "read lock+unlock via the cimport API, nogil",
                  t_ours * 1e9, "ns", "pthread_rwlock rdlock+unlock", t_ref * 1e9, "ns", "<= 3x")


def _two_threads(fn, *args) -> float:
    """Wall time of ``fn(*args)`` run by two threads at once (they start together)."""
    import threading

    barrier = threading.Barrier(3)

    def run():
        barrier.wait()
        fn(*args)

    ts = [threading.Thread(target=run) for _ in range(2)]
    for t in ts:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    return time.perf_counter() - t0


def _two_thread_rates(case: str, description: str, ours: str, reference: str, ref_name: str,
                      n: int, quick: bool) -> Result:
    """Row ``case``: pairs per second of ``consumer.<ours>(buf, n)`` on two threads at once,
    against ``consumer.<reference>(n)`` the same way (best of a few rounds each)."""
    import numpy as np

    import mitk

    consumer = build_consumer()
    buf = mitk.Image(np.zeros((4, 4), np.float32)).pixel_buffer
    repeat = 3 if quick else 5
    t_ours = min(_two_threads(getattr(consumer, ours), buf, n) for _ in range(repeat))
    t_ref = min(_two_threads(getattr(consumer, reference), n) for _ in range(repeat))
    return Result(case, "locks", description, 2 * n / t_ours / 1e6, "M pairs/s", ref_name,
                  2 * n / t_ref / 1e6, "M pairs/s")


def cimport_contended(quick: bool) -> Result:
    """Two threads taking one write lock in turn through buffer.pxd, against a pthread rwlock."""
    return _two_thread_rates("locks.cimport_contended",
                             "2 threads contending for one write lock via the cimport API, nogil",
                             "mitk_write_pairs", "pthread_shared_write_pairs",
                             "pthread_rwlock wrlock+unlock, 2 threads",
                             50_000 if quick else 500_000, quick)


def cimport_shared_reads(quick: bool) -> Result:
    """Two threads taking read locks of one buffer at once through buffer.pxd, against pthread."""
    return _two_thread_rates("locks.cimport_shared_reads",
                             "2 threads reading one buffer at once via the cimport API, nogil",
                             "mitk_read_pairs", "pthread_shared_read_pairs",
                             "pthread_rwlock rdlock+unlock, 2 threads",
                             200_000 if quick else 2_000_000, quick)


CASES = [("locks.cimport_read_pair", cimport_lock),
         ("locks.cimport_contended", cimport_contended),
         ("locks.cimport_shared_reads", cimport_shared_reads)]
