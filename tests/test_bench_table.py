"""The published performance table is the table of a stored benchmark run, not typed by hand.

The Benchmarks page (``docs/benchmarks.md``, which the README links to) marks the table with
``<!-- bench-table FILE -->`` ... ``<!-- /bench-table -->``;
FILE is a ``python -m mitk bench --json`` result kept in the repository, and the text between
the markers must be exactly what ``python -m mitk bench --table FILE`` prints for it.
"""

import json
import re
from pathlib import Path

import pytest

from mitk._bench.results import SCHEMA
from mitk._bench.runner import table_of_file

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "docs" / "benchmarks.md"
MARKED = re.compile(r"<!-- bench-table (\S+) -->\n(.*?)\n<!-- /bench-table -->", re.S)

pytestmark = pytest.mark.skipif(not README.exists(), reason="needs the source tree's docs")


def _tables():
    return MARKED.findall(README.read_text(encoding="utf-8"))


def test_the_readme_has_a_generated_table():
    assert len(_tables()) == 1


def test_the_table_is_the_stored_runs_table():
    (name, text), = _tables()
    path = ROOT / name
    assert path.exists(), f"{name} is missing"
    assert text.strip() == table_of_file(str(path)).strip()


def test_the_stored_run_is_a_full_run_with_peers():
    (name, _), = _tables()
    data = json.loads((ROOT / name).read_text())
    assert data["schema"] == SCHEMA and data["quick"] is False
    groups = {r["group"] for r in data["results"]}
    assert {"core", "locks", "io", "pickle", "import"} <= groups
    assert any(r["peers"] for r in data["results"]), "a run with --peers"
