"""The public signatures are precise enough for ``mypy --strict`` to catch misuse (issue 20)."""

from __future__ import annotations

import pathlib
import site
import sys
import textwrap

import pytest

import mitk.image

_USER_SCRIPT = textwrap.dedent("""
    import numpy as np
    from mitk.image import Image

    a = np.zeros((2, 3, 4), np.float32)
    img = Image(a, spacing=(1.0, 2.0, 3.0))
    img.as_numpy(writable=True)                       # line 7: typo of writeable
    img.save(123)                                     # line 8: not a path
    Image(a, spacing="abc")                           # line 9: not numbers

    # Correct uses: none of these may be reported.
    spacing: tuple[float, float, float] = img.spacing
    direction = img.direction
    geometry = img.get_geometry(0)
    geometry.spacing = (1, 2, 3)
    geometry.origin = geometry.origin
    img.set_origin([1.0, 2.0, 3.0], time_step=None)
    Image(a, like=img, direction=np.eye(3))
    Image.from_numpy(a, spacing=np.ones(3), like=img)
    img.save("x.nrrd", compression="gzip")
    img.initialize(np.uint8, (2, 3))
    img.time_geometry.get_geometry_for_time_step(0).direction = np.eye(3)
    with img.read(timeout=0.5) as acc:
        total = float(acc.array.sum())
""")


@pytest.mark.thread_unsafe  # sets MYPYPATH
def test_mypy_strict_catches_misuse(tmp_path, monkeypatch):
    api = pytest.importorskip("mypy.api")
    script = tmp_path / "user.py"
    script.write_text(_USER_SCRIPT)
    root = pathlib.Path(mitk.image.__file__).resolve().parent.parent
    if str(root) not in {str(pathlib.Path(p).resolve()) for p in site.getsitepackages()}:
        # A source checkout or an editable install, which mypy cannot follow by itself.
        monkeypatch.setenv("MYPYPATH", str(root))
    out, err, status = api.run([
        "--strict", "--follow-imports=silent", "--no-error-summary", "--show-error-codes",
        "--python-executable", sys.executable, "--cache-dir", str(tmp_path / "cache"),
        str(script)])
    errors = [line for line in out.splitlines() if ": error:" in line]
    lines = sorted(int(line.split(":")[1]) for line in errors)
    assert lines == [7, 8, 9], out + err
    assert "writeable" in errors[0] and "PathLike" in out and '"str"' in out
