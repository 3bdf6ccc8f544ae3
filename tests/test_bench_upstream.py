"""The upstream peer runner measures the interpreter it is given, not a checkout in the cwd."""

import os
import sys

import numpy as np

from mitk._bench import upstream

FAKE_UPSTREAM = '''
import numpy as np

class Image:
    @staticmethod
    def load(path):
        return Image()

    def __array__(self, dtype=None, copy=None):
        return np.zeros(4, np.int16)
'''


def test_upstream_runner_ignores_a_checkout_in_the_working_directory(tmp_path, monkeypatch):
    # An installed "mitk-python" on PYTHONPATH ...
    site = tmp_path / "site"
    (site / "mitk").mkdir(parents=True)
    (site / "mitk" / "__init__.py").write_text(FAKE_UPSTREAM)
    dist = site / "mitk_python-9.9.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mitk-python\nVersion: 9.9\n")
    # ... and a source checkout of the same import name in the working directory, which a
    # plain ``python -c`` would import first.
    checkout = tmp_path / "checkout"
    (checkout / "mitk").mkdir(parents=True)
    (checkout / "mitk" / "__init__.py").write_text("raise ImportError('the checkout')\n")
    data = tmp_path / "x.nii"
    np.zeros(4, np.int16).tofile(data)

    monkeypatch.chdir(checkout)
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setenv(upstream.ENV, sys.executable)
    got = upstream.measure([{"key": "r", "kind": "read", "path": os.fspath(data)}], repeat=1)
    assert got is not None
    version, values = got
    assert version == "9.9"
    assert values["r"] > 0


def test_upstream_runner_absent_without_an_interpreter(monkeypatch):
    monkeypatch.delenv(upstream.ENV, raising=False)
    assert upstream.measure([{"key": "r", "kind": "read", "path": "x"}], repeat=1) is None
