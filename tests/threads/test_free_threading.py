"""Free-threaded CPython: importing mitk must not re-enable the GIL."""

import os
import subprocess
import sys
import sysconfig

import pytest

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


@pytest.mark.skipif(not FREE_THREADED, reason="needs a free-threaded (3.13t+) interpreter")
def test_import_keeps_the_gil_disabled():
    code = ("import sys, mitk, mitk._core, mitk._core.dlpack, numpy as np; "
            "img = mitk.Image(np.zeros((4, 4))); img.as_numpy(use_accessor=True); "
            "print(sys._is_gil_enabled())")
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"



@pytest.mark.skipif(not FREE_THREADED, reason="needs a free-threaded (3.13t+) interpreter")
def test_thread_stress_runs_without_the_gil(tmp_path):
    # The stress workers in a fresh interpreter: the invariants hold with truly parallel threads
    # and the GIL is still disabled at the end (no extension turned it back on on first use).
    here = os.path.dirname(os.path.abspath(__file__))
    code = (f"import sys; sys.path.insert(0, {here!r}); import test_stress; "
            f"r = test_stress.run_stress(3.0, {str(tmp_path)!r}); "
            "print(r['failures'] == [] and r['final'] == r['expected'], sys._is_gil_enabled())")
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False"], out.stdout
