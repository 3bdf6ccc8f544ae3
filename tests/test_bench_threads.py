"""The thread-scaling benchmark rows (``python -m mitk bench --only threads``).

Their figures depend on the machine and are not asserted; what is: every row is there, its
figures are measured throughputs, the target sits on the row the contract names and only where
it applies, and a thread that computes a wrong result fails the case.
"""

import math

import pytest

from mitk._bench import contention_cases as cases

pytestmark = pytest.mark.thread_unsafe  # each case starts and times its own threads


def test_python_slices_rows():
    rows = {r.case: r for r in cases.python_slices(quick=True)}
    assert list(rows) == ["threads.python_loop_2", "threads.slices_2", "threads.slices_4",
                          "threads.python_only_2", "threads.numpy_slices_2",
                          "threads.numpy_slices_4", "threads.numpy_only_2"]
    for r in rows.values():
        assert math.isfinite(r.value) and r.value > 0
        assert math.isfinite(r.reference_value) and r.reference_value > 0
        assert r.reference == "1 thread"
    build = "free-threaded" if cases.free_threaded() else "GIL"
    assert all(r.description.endswith(f"{build})") for r in rows.values())
    wanted = ">= 1.8x" if cases.free_threaded() and cases._cpus() >= 2 else ""
    assert rows["threads.slices_2"].target == wanted
    assert all(r.target == "" for name, r in rows.items() if name != "threads.slices_2")


def test_file_load_rows():
    rows = cases.file_loads(quick=True)
    assert [r.case for r in rows] == ["threads.load_files_2", "threads.load_files_4"]
    assert all(r.value > 0 and r.reference_value > 0 for r in rows)


def test_scaling_pairs_each_count_with_its_own_one_thread_runs():
    calls = []

    def work(i):
        calls.append(i)
        return True

    rates = cases._scaling(work, bool, 1.0, (2, 4), rounds=3)
    assert set(rates) == {2, 4}
    assert all(len(pair) == 2 and pair[0] > 0 and pair[1] > 0 for pair in rates.values())
    # Per count, 3 rounds of one 1-thread run and one n-thread run.
    assert len(calls) == 3 * (1 + 2) + 3 * (1 + 4)


def test_a_wrong_result_fails_the_case():
    with pytest.raises(AssertionError, match="wrong result"):
        cases._scaling(lambda i: i == 0, bool, 1.0, (2,), rounds=1)
