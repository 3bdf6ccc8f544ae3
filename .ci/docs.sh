#!/usr/bin/env bash
# The documentation site, from a fresh clone's root: install the package from source with the
# `docs` extra in a new virtualenv, build the HTML with warnings as errors, run every page's
# examples (Sphinx doctest), and open the index, Images and Benchmarks pages in headless Chromium,
# failing on a missing resource, a remote request or a blank render.  The screenshots stay in
# docs/_build/html/_screenshots/.  Exits non-zero on any failure.
#
# Chromium is Debian's `chromium` package, installed with apt-get when it is missing.
# PYTHON (default python3) is the interpreter for the virtualenv; DOCS_VENV overrides its place.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
export PIP_DISABLE_PIP_VERSION_CHECK=1
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
venv=${DOCS_VENV:-$work/venv}
start=$SECONDS
section() { printf '\n==== %s (%ds) ====\n' "$*" "$((SECONDS - start))"; }

section "Chromium"
if ! command -v chromium >/dev/null 2>&1; then
    sudo=()
    if [ "$(id -u)" != 0 ]; then sudo=(sudo); fi
    "${sudo[@]}" apt-get update -q
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q chromium
fi
chromium --version 2>/dev/null | tail -n 1

section "Install mitk-core[docs] from source"
"$python" -m venv "$venv"
"$venv/bin/pip" install -q ".[docs]"

# -P keeps the checkout off sys.path: the pages run against the installed package.
section "HTML build (sphinx -W)"
rm -rf docs/_build docs/_generated
"$venv/bin/python" -P -m sphinx -W --keep-going -b html docs docs/_build/html

section "Every page's examples (sphinx doctest)"
"$venv/bin/python" -P -m sphinx -W --keep-going -b doctest docs docs/_build/doctest

section "Pages in headless Chromium"
"$venv/bin/python" -P docs/_tools/check_pages.py docs/_build/html index.html images.html benchmarks.html

section "Documentation built and checked in $((SECONDS - start)) s"
