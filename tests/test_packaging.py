"""What ships and what ``import mitk`` shows.

The installed package holds every Python file and type stub of the tree (meson lists them one
by one); compiled sources (``.pyx``) and the private ``.pxd`` files are build inputs only, while
the public cimport API (``_core/buffer.pxd`` and ``_core/__init__.pxd``) must be installed.
``dir(mitk)`` lists public names only, and the ``"mitk"`` logger carries a NullHandler.
"""

import subprocess
import sys
from pathlib import Path

import pytest

import mitk

SOURCE = Path(__file__).resolve().parent.parent / "src" / "mitk"
INSTALLED = Path(mitk.__file__).resolve().parent


@pytest.mark.skipif(not SOURCE.is_dir() or SOURCE == INSTALLED,
                    reason="needs the source tree beside an installed package")
def test_every_source_file_is_installed():
    wanted = sorted(p.relative_to(SOURCE) for pattern in ("*.py", "*.pyi", "py.typed")
                    for p in SOURCE.rglob(pattern) if "__pycache__" not in p.parts)
    wanted += [Path("_core/buffer.pxd"), Path("_core/__init__.pxd")]
    assert wanted, "no source files found"
    missing = [str(p) for p in wanted if not (INSTALLED / p).exists()]
    assert missing == [], f"not installed (add them to a meson.build): {missing}"


def _fresh(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True,
                          timeout=120)


def test_dir_lists_the_public_names_only():
    out = _fresh("import mitk; print(' '.join(dir(mitk)))")
    assert out.returncode == 0 and out.stderr == "", out.stderr
    names = set(out.stdout.split())
    assert {"Image", "IOUtil", "ArgumentError", "Exception", "get_include", "__version__"} <= names
    assert set(mitk.__all__) <= names
    # Exception and open are kept out of __all__ (a star import would shadow the builtins); the
    # submodules imported on first use (SPEC 3) are listed, though not loaded by import mitk.
    leaked = {n for n in names if not n.startswith("__") and n not in mitk.__all__} - {
        "Exception", "open", "dicom", "dask"}
    assert leaked == set(), f"dir(mitk) lists helpers: {sorted(leaked)}"
    assert {"os", "importlib", "annotations", "logging"}.isdisjoint(names)


def test_mitk_logger_has_a_null_handler_and_nothing_reaches_stderr():
    # Without the NullHandler, Python's last-resort handler prints a library's warnings on
    # stderr when the application configured no logging (SPEC §2: the library stays silent).
    out = _fresh("import logging, mitk\n"
                 "handlers = logging.getLogger('mitk').handlers\n"
                 "print(sum(isinstance(h, logging.NullHandler) for h in handlers))\n"
                 "logging.getLogger('mitk.io').warning('a warning from the library')\n"
                 "logging.getLogger('mitk').error('an error from the library')\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
    assert out.stderr == ""


def test_the_logger_is_there_without_importing_logging_first():
    out = _fresh("import mitk, sys\n"
                 "assert 'logging' in sys.modules\n"
                 "import logging\n"
                 "print([type(h).__name__ for h in logging.getLogger('mitk').handlers])\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['NullHandler']"


# The wheel is compiled without optimisation: only its contents are checked, and -O0 makes the
# compile several times cheaper.
_BUILD = """
import os, sys
import mesonpy
os.chdir(sys.argv[1])
if sys.argv[2] == "build_wheel":
    print(mesonpy.build_wheel(sys.argv[3], config_settings={
        "setup-args": ["-Doptimization=0", "-Ddebug=false"]}))
else:
    print(mesonpy.build_sdist(sys.argv[3]))
"""

ROOT = SOURCE.parent.parent  # the repository (SOURCE is src/mitk)


@pytest.mark.slow  # makes an sdist and compiles a wheel from it: a minute or more on 2 cores
@pytest.mark.skipif(not (ROOT / "pyproject.toml").is_file() or not (ROOT / ".git").exists(),
                    reason="needs the git source tree (the sdist is made from it)")
def test_sdist_and_wheel_ship_the_licence(tmp_path):
    pytest.importorskip("mesonpy", reason="meson-python is part of the test extra")
    import tarfile
    import zipfile

    licence = (ROOT / "LICENSE").read_text()
    assert "BSD 3-Clause" in licence and "Redistribution and use" in licence

    def build(kind, source, out):
        res = subprocess.run([sys.executable, "-c", _BUILD, str(source), kind, str(out)],
                             capture_output=True, text=True, timeout=1200)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        return out / res.stdout.strip().splitlines()[-1]

    # The sdist packs the committed tree; the wheel is built from the unpacked sdist, as pip
    # would, so a file missing from the sdist fails here too.
    sdist = build("build_sdist", ROOT, tmp_path)
    with tarfile.open(sdist) as tar:
        top = tar.getnames()[0].split("/")[0]
        assert tar.extractfile(f"{top}/LICENSE").read().decode() == licence
        pkg_info = tar.extractfile(f"{top}/PKG-INFO").read().decode()
        tar.extractall(tmp_path / "src", filter="data")
    assert "License-Expression: BSD-3-Clause" in pkg_info
    assert "License-File: LICENSE" in pkg_info
    (tmp_path / "wheel").mkdir()
    wheel = build("build_wheel", tmp_path / "src" / top, tmp_path / "wheel")
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        dist_info = next(n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info"))
        assert whl.read(f"{dist_info}/licenses/LICENSE").decode() == licence
        metadata = whl.read(f"{dist_info}/METADATA").decode()
        assert "mitk/_core/buffer.pyi" in names and "mitk/py.typed" in names
    assert "License-Expression: BSD-3-Clause" in metadata
    assert "License-File: LICENSE" in metadata


def test_default_install_brings_the_deflate_accelerator_where_it_has_wheels():
    # isal is a regular dependency only where python-isal publishes wheels (an environment
    # marker); there a default install reads and writes gzip through it, elsewhere through zlib.
    import importlib.util
    import sysconfig
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    from mitk.io._streams import accelerator

    regular = [Requirement(r) for r in requires("mitk-core")
               if "extra ==" not in r and Requirement(r).name == "isal"]
    assert len(regular) == 1 and regular[0].marker is not None, regular
    marker = regular[0].marker
    for machine, system, expected in (("x86_64", "linux", True), ("aarch64", "linux", True),
                                      ("arm64", "darwin", True), ("AMD64", "win32", True),
                                      ("ppc64le", "linux", False), ("x86", "win32", False)):
        env = {"platform_machine": machine, "sys_platform": system,
               "platform_python_implementation": "CPython"}
        assert marker.evaluate(env) is expected, (machine, system)
    assert not marker.evaluate({"platform_python_implementation": "PyPy"})
    # No standard marker names a free-threaded interpreter, and python-isal has no cp313t wheel:
    # there the project is installed without it (.ci/free_threaded.sh) and gzip goes through zlib.
    free_threaded = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    if marker.evaluate() and not free_threaded:
        assert accelerator() == "isal"
    elif importlib.util.find_spec("isal") is None:
        assert accelerator() in ("zlib", "zlib-ng")
    else:
        assert accelerator() == "isal"
