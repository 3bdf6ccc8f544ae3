"""Type checkers see mitk's real names and signatures (issue "a newcomer's first hour").

``mitk/__init__.py`` loads its classes lazily through a module ``__getattr__``, which a type
checker cannot follow; its ``TYPE_CHECKING`` imports give mypy, pyright and jedi the real names.
The compiled ``_core`` modules have ``.pyi`` stubs, which mypy's stubtest compares with the
built modules.  mypy runs in strict mode on two user scripts in ``tests/typing/``: one that must
pass (its ``assert_type`` calls pin the main return types) and one whose every marked mistake
must be reported.
"""

import ast
import os
import re
import site
import subprocess
import sys
from pathlib import Path

import pytest

import mitk


DATA = Path(__file__).resolve().parent / "typing"
# The directory holding the mitk package: site-packages for a normal install, the source tree
# for an editable one (whose import hook mypy and jedi cannot follow).
PACKAGE_ROOT = Path(mitk.__file__).resolve().parent.parent
_ERROR = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): error: (?P<message>.*)$")


@pytest.fixture
def mypy():
    """The two tests that run mypy skip without it (no cp313t wheel); the others need only jedi
    or nothing."""
    return pytest.importorskip("mypy", reason="mypy is part of the test extra")


def _env() -> dict:
    env = dict(os.environ)
    sites = {Path(p).resolve() for p in site.getsitepackages() + [site.getusersitepackages()]}
    if PACKAGE_ROOT not in sites:
        env["MYPYPATH"] = str(PACKAGE_ROOT)
    return env


def _run(args: list, tmp_path: Path, config: str) -> subprocess.CompletedProcess:
    ini = tmp_path / "mypy.ini"
    ini.write_text(config)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          cwd=tmp_path, env=_env(), timeout=600)


def _mypy_errors(scripts: list, tmp_path: Path) -> dict:
    """(script name, line) -> error messages of ``mypy --strict`` on ``scripts``."""
    # The package's own modules are followed silently, as mypy treats any installed package:
    # only the user scripts are judged.
    config = "[mypy]\nstrict = True\n\n[mypy-mitk.*]\nfollow_imports = silent\n"
    out = _run(["-m", "mypy", "--config-file", "mypy.ini", "--cache-dir", str(tmp_path / "cache"),
                "--no-error-summary", "--show-absolute-path", *map(str, scripts)],
               tmp_path, config)
    assert out.returncode in (0, 1), out.stdout + out.stderr  # 2: mypy itself failed
    errors: dict = {}
    for line in out.stdout.splitlines():
        m = _ERROR.match(line)
        if m:
            errors.setdefault((Path(m["file"]).name, int(m["line"])), []).append(m["message"])
    return errors


def _lines(script: Path) -> dict:
    return dict(enumerate(script.read_text().splitlines(), 1))


def test_user_scripts_under_mypy_strict(tmp_path, mypy):
    ok, mistakes = DATA / "user_ok.py", DATA / "user_mistakes.py"
    errors = _mypy_errors([ok, mistakes], tmp_path)
    for (name, number), messages in errors.items():
        assert name in (ok.name, mistakes.name), (name, number, messages)
    for number, text in _lines(ok).items():
        messages = errors.get((ok.name, number))
        assert not messages, f"user_ok.py:{number}: {text.strip()!r}: {messages}"
    for number, text in _lines(mistakes).items():
        reported = (mistakes.name, number) in errors
        if "# error" in text:
            assert reported, f"user_mistakes.py:{number}: mypy accepts {text.strip()!r}"
        else:
            assert not reported, (number, text, errors[(mistakes.name, number)])


def test_core_stubs_match_the_compiled_modules(tmp_path, mypy):
    # stubtest imports the built extensions and compares every name and signature with the
    # .pyi; errors in the pure-Python modules are another test's business.
    config = ("[mypy]\n\n[mypy-mitk.*]\nignore_errors = True\n\n"
              "[mypy-mitk._core.*]\nignore_errors = False\n")
    modules = sorted(f"mitk._core.{p.stem}" for p in
                     (PACKAGE_ROOT / "mitk" / "_core").glob("*.pyi"))
    assert "mitk._core.buffer" in modules and "mitk._core.accessor" in modules, modules
    out = _run(["-m", "mypy.stubtest", "--mypy-config-file", "mypy.ini", "--allowlist",
                str(DATA / "stubtest_allowlist.txt"), *modules], tmp_path, config)
    assert out.returncode == 0, out.stdout + out.stderr


def test_editors_complete_the_lazy_names():
    jedi = pytest.importorskip("jedi", reason="jedi is part of the test extra")
    project = jedi.Project(path=str(PACKAGE_ROOT), added_sys_path=[str(PACKAGE_ROOT)])
    code = "import mitk\nimport numpy as np\nimg = mitk.Image(np.zeros((2, 3)))\nimg."
    names = {c.name for c in jedi.Script(code, project=project).complete(4, 4)}
    assert {"as_numpy", "spacing", "save", "read", "pixel_buffer"} <= names, sorted(names)
    names = {c.name for c in jedi.Script("import mitk\nmitk.", project=project).complete(2, 5)}
    assert {"Image", "IOUtil", "Geometry3D", "ArgumentError"} <= names, sorted(names)


def test_every_lazy_name_is_imported_for_type_checkers():
    # A name in mitk._LAZY without its TYPE_CHECKING import is typed from the module
    # __getattr__ (object): mypy would reject every use of it.
    tree = ast.parse(Path(mitk.__file__).read_text())
    guarded = {alias.asname or alias.name
               for node in tree.body
               if isinstance(node, ast.If) and isinstance(node.test, ast.Name)
               and node.test.id in ("TYPE_CHECKING", "_TYPE_CHECKING")
               for stmt in node.body if isinstance(stmt, ast.ImportFrom)
               for alias in stmt.names}
    assert set(mitk._LAZY) <= guarded, sorted(set(mitk._LAZY) - guarded)
    for name, module in mitk._LAZY.items():
        assert getattr(mitk, name).__module__ == module, name
