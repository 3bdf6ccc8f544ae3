"""Lock cost through the cimport API, against a bare pthread rwlock, from compiled code.

The consumer (``consumer/``, shipped in the package) is built with meson on first use into a
per-user cache directory (``$XDG_CACHE_HOME/mitk-bench`` or ``~/.cache/mitk-bench``), keyed by the
mitk version and Python ABI.  Without meson, ninja, Cython or a C compiler the case reports why
and is skipped.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from .results import Result
from .timing import best_time

HERE = Path(__file__).parent / "consumer"


def build_consumer() -> object:
    """Build (once) and import the benchmark consumer extension."""
    import mitk

    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mitk-bench"
    tag = f"{mitk.__version__}-{sysconfig.get_config_var('SOABI')}"
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


CASES = [("locks.cimport_read_pair", cimport_lock)]
