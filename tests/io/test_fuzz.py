"""The file readers under fuzzing: mutated real files never crash, hang or leak an exception.

``fuzz_formats.py`` (beside this file) holds the harness; this runs it with a CI budget of
``MITK_FUZZ_INPUTS`` inputs per format (default 1500) and replays every saved regression input in
``fuzz_regressions/``.  The long run is ``python tests/io/fuzz_formats.py --inputs 100000``.
"""

import importlib.util
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REGRESSIONS = os.path.join(HERE, "fuzz_regressions")
BUDGET = int(os.environ.get("MITK_FUZZ_INPUTS", "1500"))


def _load_harness():
    # tests/io is not a package and not on sys.path; the harness is also a script.
    name = "mitk_fuzz_formats"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, "fuzz_formats.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


fuzz = _load_harness()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return fuzz.make_seeds(str(tmp_path_factory.mktemp("seeds")))


def _describe(findings):
    return "\n".join(
        f"#{f['index']} seed {f['seed']} mutations {f['ops']}: {f['class']} at {f['where']}: "
        f"{f['message']}\n{f.get('traceback', '')}" for f in findings[:5])


@pytest.mark.parametrize("fmt", sorted(fuzz.FORMATS))
def test_mutated_files_load_or_raise_documented_errors(seeds, fmt):
    assert seeds[fmt], f"no seeds for {fmt}"
    report = fuzz.run(fmt, BUDGET, seed=0, seeds=seeds)
    assert report.inputs == BUDGET  # every input ran: nothing skipped silently
    assert report.ok + sum(report.documented.values()) + len(report.findings) == BUDGET
    assert not report.findings, _describe(report.findings)
    # The budget reaches both outcomes; all-errors would mean the mutations never get past the
    # header checks, all-successes that they change nothing.
    assert report.ok > 0 and sum(report.documented.values()) > 0, report.summary()


@pytest.mark.parametrize("fmt", sorted(fuzz.FORMATS))
def test_seeds_cover_every_extension_and_load(seeds, tmp_path, fmt):
    assert {s.ext for s in seeds[fmt]} == set(fuzz.FORMATS[fmt])
    paths = []
    for i, s in enumerate(seeds[fmt]):
        path = tmp_path / f"seed{i}{s.ext}"
        path.write_bytes(s.data)
        paths.append(str(path))
    results = fuzz.replay(paths)
    bad = {p: r for p, r in results.items() if r["outcome"] != "ok"}
    assert not bad


def test_inputs_are_a_function_of_seed_format_and_index(seeds):
    first = [fuzz.input_for(seeds["nrrd"], 7, "nrrd", i)[1] for i in range(50)]
    again = [fuzz.input_for(seeds["nrrd"], 7, "nrrd", i)[1] for i in range(50)]
    assert first == again
    assert len(set(first)) > 40


def _regression_files():
    if not os.path.isdir(REGRESSIONS):
        return []
    known = tuple(ext for exts in fuzz.FORMATS.values() for ext in exts) + (".nhdr", ".mhd")
    return sorted(os.path.join(REGRESSIONS, n) for n in os.listdir(REGRESSIONS)
                  if n.lower().endswith(known))


def test_regression_directory_holds_inputs():
    assert _regression_files(), f"{REGRESSIONS} holds no regression inputs"


@pytest.fixture(scope="module")
def regression_results():
    return fuzz.replay(_regression_files())  # one worker for all of them


@pytest.mark.parametrize("path", _regression_files(), ids=os.path.basename)
def test_regression_input_loads_or_raises_documented_error(regression_results, path):
    result = regression_results[path]
    assert result["outcome"] in ("ok", "documented"), result
    if result["outcome"] == "documented":
        # The message names the file, so a user can tell which of many inputs was refused.
        assert os.path.basename(path) in result["message"], result
