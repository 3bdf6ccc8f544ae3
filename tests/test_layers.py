"""The layers of the package (DESIGN.md): every import points down.

* C (``subprojects/mitkbuf``) knows no Python;
* ``mitk._core`` imports nothing of mitk but ``mitk.errors`` (and itself);
* ``mitk.io`` imports neither ``mitk.image`` nor the glue above it, nor the command line;
* nothing imports ``mitk._bench`` or ``mitk._cli`` except ``mitk.__main__`` (and themselves).

Python modules are read from the installed package with :mod:`ast` (imports inside functions
count too: a lazy import is still an arrow); compiled modules are imported in a fresh process,
which then lists what they loaded.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import mitk

PACKAGE = Path(mitk.__file__).parent
SOURCE_ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every mitk module ``path`` imports, as absolute dotted names."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "mitk")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "mitk":
                continue
            found.add(target)
            # ``from . import io`` names modules, not attributes
            found.update(f"{target}.{a.name}" for a in node.names
                         if (PACKAGE.parent / f"{target}.{a.name}".replace(".", "/")).exists()
                         or (PACKAGE.parent / (f"{target}.{a.name}".replace(".", "/") + ".py"))
                         .exists())
    return found


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))
            if "consumer" not in p.parts}


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_graph_is_read():
    graph = _graph()
    assert "mitk.io" in graph and "mitk._image_io" in graph
    assert "mitk.io" in graph["mitk._image_io"] and "mitk.image" in graph["mitk._image_io"]
    assert "mitk._image_io" in graph["mitk.image"]  # a lazy import is an arrow too


def test_io_imports_neither_the_image_nor_the_command_line():
    bad = {mod: sorted(t for t in targets
                       if any(_within(t, p) for p in ("mitk.image", "mitk._image_io",
                                                      "mitk.ioutil", "mitk._cli",
                                                      "mitk._bench", "mitk.__main__")))
           for mod, targets in _graph().items() if _within(mod, "mitk.io")}
    assert {m: t for m, t in bad.items() if t} == {}


def test_only_the_entry_point_imports_the_command_line_and_the_benchmarks():
    bad = {}
    for mod, targets in _graph().items():
        for private in ("mitk._cli", "mitk._bench"):
            if mod == "mitk.__main__" or _within(mod, private):
                continue
            hits = sorted(t for t in targets if _within(t, private))
            if hits:
                bad[mod] = hits
    assert bad == {}


def test_core_python_modules_import_only_errors():
    allowed = ("mitk._core", "mitk.errors")
    bad = {mod: sorted(t for t in targets if not any(_within(t, a) for a in allowed))
           for mod, targets in _graph().items() if _within(mod, "mitk._core")}
    assert {m: t for m, t in bad.items() if t} == {}


def test_compiled_core_modules_load_only_errors():
    # The extensions' imports are compiled in: import each one in a fresh process and see
    # which mitk modules came with it.
    names = sorted({p.name.split(".")[0] for p in (PACKAGE / "_core").iterdir()
                    if p.suffix in (".so", ".pyd")})
    if not names:  # an editable install keeps its extensions in the build directory
        names = sorted(p.stem for p in (SOURCE_ROOT / "src" / "mitk" / "_core").glob("*.pyx"))
    assert {"buffer", "accessor", "component_types", "dlpack"} <= set(names)
    script = (
        "import importlib, json, sys\n"
        "out = {}\n"
        f"for name in {names!r}:\n"
        "    before = set(sys.modules)\n"
        "    importlib.import_module('mitk._core.' + name)\n"
        "    out[name] = sorted(m for m in set(sys.modules) - before if m.startswith('mitk'))\n"
        "print(json.dumps(out))\n")
    result = subprocess.run([sys.executable, "-P", "-c", script], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    bad = {name: [m for m in mods if not (_within(m, "mitk._core") or m in ("mitk",
                                                                            "mitk.errors"))]
           for name, mods in loaded.items()}
    assert {n: m for n, m in bad.items() if m} == {}


def test_the_c_core_knows_no_python():
    sources = SOURCE_ROOT / "subprojects" / "mitkbuf"
    files = [p for p in sources.rglob("*") if p.suffix in (".c", ".h")]
    assert files, f"no C sources under {sources}"
    offenders = [str(p.relative_to(sources)) for p in files
                 if "Python.h" in p.read_text(encoding="utf-8") or
                 "PyObject" in p.read_text(encoding="utf-8")]
    assert offenders == []


@pytest.mark.parametrize("module", ["mitk.io", "mitk.io.nrrd", "mitk.io.nifti",
                                    "mitk.io.metaimage"])
def test_io_loads_without_the_image_model(module):
    script = (f"import sys, {module}\n"
              "print(sorted(m for m in sys.modules if m in ('mitk.image', 'mitk._image_io')))")
    result = subprocess.run([sys.executable, "-P", "-c", script], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
