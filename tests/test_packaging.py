"""The installed package holds every Python file of the tree (meson lists them one by one).

Compiled sources (``.pyx``) and the private ``.pxd`` files are build inputs only; the public
cimport API (``_core/buffer.pxd`` and ``_core/__init__.pxd``) must be installed.
"""

from pathlib import Path

import pytest

import mitk

SOURCE = Path(__file__).resolve().parent.parent / "mitk"
INSTALLED = Path(mitk.__file__).resolve().parent


@pytest.mark.skipif(not SOURCE.is_dir() or SOURCE == INSTALLED,
                    reason="needs the source tree beside an installed package")
def test_every_source_file_is_installed():
    wanted = sorted(p.relative_to(SOURCE) for p in SOURCE.rglob("*.py")
                    if "__pycache__" not in p.parts)
    wanted += [Path("_core/buffer.pxd"), Path("_core/__init__.pxd")]
    assert wanted, "no source files found"
    missing = [str(p) for p in wanted if not (INSTALLED / p).exists()]
    assert missing == [], f"not installed (add them to a meson.build): {missing}"
