"""The published performance tables are tables of stored benchmark runs, not typed by hand.

The Benchmarks page (``docs/benchmarks.md``, which the README links to) and the region reads'
page (``docs/larger-than-memory.md``) mark each table with ``<!-- bench-table FILE -->`` ...
``<!-- /bench-table -->``; FILE is a ``python -m mitk bench --json`` result kept in the
repository, and the text between the markers must be exactly what
``python -m mitk bench --table FILE`` prints for it.
"""

import json
import re
from pathlib import Path

import pytest

from mitk._bench.results import SCHEMA
from mitk._bench.runner import table_of_file

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "docs" / "benchmarks.md"
REGIONS = ROOT / "docs" / "larger-than-memory.md"
MARKED = re.compile(r"<!-- bench-table (\S+) -->\n(.*?)\n<!-- /bench-table -->", re.S)

pytestmark = pytest.mark.skipif(not README.exists(), reason="needs the source tree's docs")


def _tables(page=README):
    return MARKED.findall(page.read_text(encoding="utf-8"))


def test_the_readme_has_a_generated_table():
    assert len(_tables()) == 1


@pytest.mark.parametrize("page", [README, REGIONS], ids=["benchmarks", "larger-than-memory"])
def test_the_table_is_the_stored_runs_table(page):
    (name, text), = _tables(page)
    path = ROOT / name
    assert path.exists(), f"{name} is missing"
    assert text.strip() == table_of_file(str(path)).strip()


def test_the_stored_region_run_is_a_full_run_of_the_region_cases_with_peers():
    (name, _), = _tables(REGIONS)
    data = json.loads((ROOT / name).read_text())
    assert data["schema"] == SCHEMA and data["quick"] is False
    assert {r["group"] for r in data["results"]} == {"regions"}
    cases = {r["case"] for r in data["results"]}
    for region in ("zslice", "yplane", "block40"):
        assert {f"regions.{region}.raw.{ext}" for ext in ("nrrd", "nii", "mha")} <= cases
        assert f"regions.{region}.pread_floor" in cases  # what any read without a map costs
    assert "regions.zslice.open_read_floor" in cases  # and with the open a LazyImage makes
    assert any(r["peers"] for r in data["results"]), "a run with --peers"


def test_the_stored_run_is_a_full_run_with_peers():
    (name, _), = _tables()
    data = json.loads((ROOT / name).read_text())
    assert data["schema"] == SCHEMA and data["quick"] is False
    groups = {r["group"] for r in data["results"]}
    assert {"core", "locks", "io", "pickle", "import"} <= groups
    assert any(r["peers"] for r in data["results"]), "a run with --peers"
