"""Every asv benchmark in benchmarks/ runs once (setup, the benchmark, teardown) and returns.

asv itself is not needed: the suites are plain classes following its conventions (``params``,
``setup``/``teardown``, ``time_*``/``peakmem_*``/``track_*``/``timeraw_*``).
"""

from __future__ import annotations

import importlib.util
import itertools
import subprocess
import sys
from pathlib import Path

import pytest

SUITES = Path(__file__).resolve().parent.parent / "benchmarks" / "benchmarks"
PREFIXES = ("time_", "peakmem_", "track_", "timeraw_", "mem_")


def _modules():
    return sorted(SUITES.glob("bench_*.py")) if SUITES.is_dir() else []


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"asv_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _suites(module):
    for name, cls in vars(module).items():
        if isinstance(cls, type) and not name.startswith("_") and \
                any(m.startswith(PREFIXES) for m in dir(cls)):
            yield cls


def test_there_are_suites_for_every_area():
    names = {p.stem for p in _modules()}
    assert {"bench_core", "bench_cimport", "bench_io", "bench_import"} <= names


@pytest.mark.cython
@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.stem)
def test_every_benchmark_runs_once(path):
    module = _load(path)
    ran = 0
    for cls in _suites(module):
        params = getattr(cls, "params", [])
        if params and not isinstance(params[0], list):
            params = [params]
        combos = list(itertools.product(*params)) if params else [()]
        for combo in combos:
            suite = cls()
            if hasattr(suite, "setup"):
                suite.setup(*combo)
            try:
                for name in sorted(dir(cls)):
                    if not name.startswith(PREFIXES):
                        continue
                    result = getattr(suite, name)(*combo)
                    if name.startswith("timeraw_"):
                        # asv runs the returned code (and setup code) in a fresh interpreter.
                        code, setup = (result, "") if isinstance(result, str) else result
                        subprocess.run([sys.executable, "-P", "-c", f"{setup}\n{code}"],
                                       check=True, timeout=120)
                    elif name.startswith("track_"):
                        assert isinstance(result, (int, float)) and result == result
                    ran += 1
            finally:
                if hasattr(suite, "teardown"):
                    suite.teardown(*combo)
    assert ran > 0, f"{path.name} has no benchmark methods"
