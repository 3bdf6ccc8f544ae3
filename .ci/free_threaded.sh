#!/usr/bin/env bash
# CI job for free-threaded CPython (SPEC.md section 14, issue 19): install mitk from source into a
# fresh virtualenv of CPython 3.13t and, with the GIL off, check that no import turns it back on,
# then run the whole test suite, the thread tests under pytest-run-parallel and the stress suite.
#
# usage (from the root of a clone, with ../shared beside it):  .ci/free_threaded.sh
#
# The interpreter comes from ../shared/tools/free-threaded-python.sh, which builds it with pyenv
# the first time (about 10 minutes on 2 cores).  Environment knobs: MITK_FT_STRESS_SECONDS (stress
# budget, default 20), MITK_FT_PARALLEL_THREADS (pytest-run-parallel threads, default 4).
#
# Test extras left out, because they have no cp313t wheel:
#   SimpleITK   - only cp3xx-abi3 wheels, which a free-threaded interpreter cannot load; the tests
#                 that compare with it skip themselves.
#   imagecodecs - no cp313t wheel (its source build needs a dozen codec libraries): the DICOM
#                 tests of compressed transfer syntaxes skip, naming it.
#   dcm2niix    - no cp313t wheel: the tests that use the converter as an oracle skip.
#   mypy        - its ast-serialize dependency has no cp313t wheel and builds with Rust crates
#                 downloaded at build time: the two mypy tests of tests/test_typing.py skip,
#                 naming mypy (the type checks are the same on every interpreter and run in the
#                 GIL builds' sections).
# Installed differently: --prefer-binary, because the newest releases of some test extras have
# no cp313t wheel and their source builds download more sources (hypothesis: a Rust extension
# from crates.io; matplotlib: freetype); pip then takes the newest version that has a wheel,
# which satisfies the same requirement.  (msgpack, PyYAML and tornado, for Dask, have no cp313t
# wheel at all and are built from source, which needs only a C compiler.)
# Not installed: isal (a runtime dependency where it has wheels, but none for cp313t: no standard
# environment marker tells a free-threaded interpreter, so the project is installed with
# --no-deps and NumPy, its one other dependency, explicitly) and zlib-ng (the `fast` extra):
# source-only for cp313t; mitk then uses zlib and the accelerator tests skip.
set -euo pipefail

started=$(date +%s)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# The GIL must be off because the interpreter and every module say so, not because we force it.
unset PYTHON_GIL
work=$(mktemp -d)
finish() {
    local status=$?
    rm -rf "$work"
    printf '\nfree-threaded CI %s after %d s\n' "$([ $status -eq 0 ] && echo passed || echo FAILED)" \
        "$(( $(date +%s) - started ))"
    exit $status
}
trap finish EXIT
# Killed (a time limit, ^C): a failure, not the status of the last command that ended.
trap 'exit 143' TERM
trap 'exit 130' INT

section() { printf '\n==== %s ====\n' "$*"; }

section "free-threaded interpreter"
ft_python=$(../shared/tools/free-threaded-python.sh)
"$ft_python" -VV
"$ft_python" -c 'import sys; assert not sys._is_gil_enabled(), "the GIL is on"'

section "virtualenv and install from source"
"$ft_python" -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install -q --upgrade pip
# The project itself, built from this checkout (NumPy 2.4 is the last series with cp313t wheels).
"$py" -m pip install -q "numpy==2.4.*"
"$py" -m pip install -q --no-deps .
# The test extra of pyproject.toml, minus what is left out above; read from the file so that the
# two lists cannot drift apart.
mapfile -t test_reqs < <("$py" - <<'EOF'
import re
import tomllib

LEFT_OUT = {"simpleitk", "imagecodecs", "dcm2niix", "mypy"}  # see the header of .ci/free_threaded.sh
with open("pyproject.toml", "rb") as f:
    extras = tomllib.load(f)["project"]["optional-dependencies"]["test"]
for req in extras:
    name = re.split(r"[\[<>=!~; ]", req, maxsplit=1)[0].lower()
    if name not in LEFT_OUT:
        print(req)
EOF
)
"$py" -m pip install -q --prefer-binary "numpy==2.4.*" "${test_reqs[@]}" \
    "pytest-run-parallel==0.10.0"
"$py" -m pip install -q --no-deps evalutils==0.4.2
"$py" -m pip list 2>/dev/null | grep -iE '^(numpy|cython|pytest|hypothesis|dask|mitk-core) '

section "the GIL stays off: import mitk, every submodule and every optional module"
# -P: the checkout's mitk/ directory must not shadow the installed package.
"$py" -P - <<'EOF'
import importlib
import pkgutil
import sys

def gil_off(after):
    if sys._is_gil_enabled():
        sys.exit(f"the GIL was enabled after {after}")

import mitk
gil_off("import mitk")
names = [m.name for m in pkgutil.walk_packages(mitk.__path__, "mitk.")]
for name in names:
    importlib.import_module(name)
    gil_off(f"import {name}")
for name in sorted(mitk.__all__):  # the lazy public names load their modules
    getattr(mitk, name)
gil_off("loading every public name of mitk")
# Optional modules mitk uses when they are installed (accelerators, Dask, DICOM, plotting).
optional = ["isal", "zlib_ng", "dask", "dask.array", "distributed", "pydicom", "matplotlib"]
present = []
for name in optional:
    try:
        importlib.import_module(name)
    except ImportError:
        continue
    present.append(name)
    gil_off(f"import {name}")
print(f"GIL off after import mitk, {len(names)} submodules, every public name and "
      f"{', '.join(present) or 'no optional module'}")
EOF

section "whole test suite"
"$py" -P -m pytest -q

section "thread tests under pytest-run-parallel (${MITK_FT_PARALLEL_THREADS:-4} threads)"
"$py" -P -m pytest -q --parallel-threads="${MITK_FT_PARALLEL_THREADS:-4}" \
    tests/threads tests/_core tests/test_threads_api.py

section "stress suite (${MITK_FT_STRESS_SECONDS:-20} s)"
"$py" -P tests/threads/test_stress.py --seconds "${MITK_FT_STRESS_SECONDS:-20}"
"$py" -P -c 'import sys; assert not sys._is_gil_enabled()'
