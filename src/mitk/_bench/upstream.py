"""The upstream MITK binding (``mitk-python``) as a benchmark peer, run in its own interpreter.

Upstream installs the same import name (``mitk``), so it cannot be measured in the process that
runs our cases.  Point ``MITK_BENCH_UPSTREAM_PYTHON`` (or ``python -m mitk bench
--upstream-python PATH``) at an interpreter that has ``mitk-python`` installed (it is built for
Python 3.12 only); the cases then send it the same files and collect its timings, measured there
with the same best-of-N rule.  Without it the upstream rows are simply absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile

#: Environment variable naming the interpreter that has ``mitk-python`` installed.
ENV = "MITK_BENCH_UPSTREAM_PYTHON"

# Runs inside the upstream interpreter: reads a request on stdin, prints JSON timings.  It must
# not import anything of ours (the name ``mitk`` there is upstream's).
_SCRIPT = r"""
import gc, json, subprocess, sys, threading, time
import importlib.metadata as md
import numpy as np
import mitk

req = json.load(sys.stdin)
repeat = req["repeat"]

def best(fn):
    fn()
    gc.disable()
    try:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    finally:
        gc.enable()
    return min(times)

def read(path):
    img = mitk.Image.load(path)
    return np.asarray(img)

def two_reads(paths):
    ts = [threading.Thread(target=read, args=(p,)) for p in paths]
    for t in ts:
        t.start()
    for t in ts:
        t.join()

PEAK = '''
import numpy, mitk
def hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) * 1024
before = hwm()
a = numpy.asarray(mitk.Image.load(%r))
print(hwm() - before)
'''

def imports():
    ms = []
    for code in ("import numpy", "import numpy; t=__import__('time').perf_counter(); import mitk"):
        best_t = float("inf")
        for _ in range(repeat):
            out = subprocess.run([sys.executable, "-c",
                                  "import time; t=time.perf_counter(); " + code +
                                  "; print(time.perf_counter()-t)"],
                                 capture_output=True, text=True, check=True)
            best_t = min(best_t, float(out.stdout))
        ms.append(best_t)
    return ms[1]

out = {"version": md.version("mitk-python"), "results": {}}
sources = {}
for op in req["ops"]:
    key, kind = op["key"], op["kind"]
    try:
        if kind == "read":
            value = best(lambda: read(op["path"]))
        elif kind == "write":
            if op["source"] not in sources:
                sources[op["source"]] = mitk.Image.load(op["source"])
            img = sources[op["source"]]
            value = best(lambda: img.save(op["path"]))
        elif kind == "two_reads":
            value = best(lambda: two_reads(op["paths"]))
        elif kind == "peak":
            res = subprocess.run([sys.executable, "-c", PEAK % op["path"]],
                                 capture_output=True, text=True, check=True)
            value = int(res.stdout.split()[-1])
        elif kind == "import":
            value = imports()
        else:
            raise ValueError(kind)
        out["results"][key] = value
    except Exception as exc:
        out["results"][key] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
print(json.dumps(out))
"""


def interpreter() -> str | None:
    """The configured upstream interpreter, or None."""
    path = os.environ.get(ENV)
    return path if path and os.path.exists(path) else None


def measure(ops: list[dict], repeat: int, timeout: float = 1800) -> tuple[str, dict] | None:
    """Run ``ops`` in the upstream interpreter; returns (version, {key: value}) or None.

    Each op is ``{"key", "kind", ...}`` with kind ``read`` (``path``; best seconds),
    ``write`` (``source``, ``path``; best seconds), ``two_reads`` (``paths``; best seconds),
    ``peak`` (``path``; bytes of resident-memory growth in a fresh process) or ``import``
    (best seconds of ``import mitk`` after numpy).  Failed ops are left out.
    """
    exe = interpreter()
    if exe is None or not ops:
        return None
    try:
        # ``-c`` puts the working directory first on sys.path; run from a neutral one so that a
        # source checkout of ours (same import name) cannot shadow upstream's package.
        res = subprocess.run([exe, "-c", _SCRIPT], input=json.dumps({"ops": ops, "repeat": repeat}),
                             capture_output=True, text=True, timeout=timeout,
                             cwd=tempfile.gettempdir())
    except (OSError, subprocess.TimeoutExpired):
        return None
    if res.returncode:
        return None
    try:
        data = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    results = {k: v for k, v in data["results"].items() if not isinstance(v, dict)}
    return data["version"], results
