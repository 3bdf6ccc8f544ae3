"""mitk.get_num_threads / set_num_threads / num_threads (SPEC.md section 14)."""

from __future__ import annotations

import contextvars
import json
import os
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest

import mitk
from mitk import _threads
from mitk_testing import record_thread_starts, join_all, start_thread


def _fresh(code: str, env: dict | None = None, drop=("MITK_NUM_THREADS", "OMP_NUM_THREADS")):
    """Run ``code`` in a new interpreter whose environment lacks ``drop`` plus ``env``; returns
    what it printed as JSON."""
    environ = {k: v for k, v in os.environ.items() if k not in drop}
    environ.update(env or {})
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=environ, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@pytest.fixture
def restore_process_value():
    # set_num_threads changes process-wide state: put it back for the next test.
    before = (_threads._process_value, _threads._explicit)
    yield
    with _threads._lock:
        _threads._process_value, _threads._explicit = before


# -- the start value ------------------------------------------------------------------------------

def test_default_is_the_cpus_of_the_affinity_mask():
    assert _fresh("import json, mitk; print(json.dumps(mitk.get_num_threads()))") == _cpus()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
def test_default_follows_a_narrowed_affinity_mask():
    code = ("import json, os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "import mitk; print(json.dumps(mitk.get_num_threads()))")
    assert _fresh(code) == 1


def test_environment_variable_sets_the_start_value():
    code = "import json, mitk; print(json.dumps(mitk.get_num_threads()))"
    assert _fresh(code, {"MITK_NUM_THREADS": "3"}) == 3
    assert _fresh(code, {"MITK_NUM_THREADS": " 7 "}) == 7
    # An explicit value wins over the OMP_NUM_THREADS rule.
    assert _fresh(code, {"MITK_NUM_THREADS": "5", "OMP_NUM_THREADS": "1"}) == 5


@pytest.mark.parametrize("raw", ["0", "-2", "four", "2.5", ""])
def test_invalid_environment_value_is_ignored_with_a_debug_record(raw):
    code = (
        "import json, logging, mitk\n"
        "records = []\n"
        "class H(logging.Handler):\n"
        "    def emit(self, r): records.append((r.levelname, r.getMessage()))\n"
        "log = logging.getLogger('mitk'); log.addHandler(H()); log.setLevel(logging.DEBUG)\n"
        "print(json.dumps([mitk.get_num_threads(), records]))\n"
    )
    value, records = _fresh(code, {"MITK_NUM_THREADS": raw})
    assert value == _cpus()
    assert len(records) == 1 and records[0][0] == "DEBUG"
    assert "MITK_NUM_THREADS" in records[0][1] and repr(raw) in records[0][1]


def test_invalid_environment_value_prints_nothing():
    out = subprocess.run(
        [sys.executable, "-c", "import mitk; mitk.get_num_threads()"], capture_output=True,
        text=True, timeout=120, env={**os.environ, "MITK_NUM_THREADS": "lots"})
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")


def test_omp_num_threads_1_makes_the_default_1():
    code = "import json, mitk; print(json.dumps(mitk.get_num_threads()))"
    assert _fresh(code, {"OMP_NUM_THREADS": "1"}) == 1
    assert _fresh(code, {"OMP_NUM_THREADS": "2"}) == _cpus()


def test_start_value_is_read_once():
    code = ("import json, os, mitk; a = mitk.get_num_threads(); "
            "os.environ['MITK_NUM_THREADS'] = '9'; print(json.dumps([a, mitk.get_num_threads()]))")
    assert _fresh(code, {"MITK_NUM_THREADS": "2"}) == [2, 2]


def test_importing_mitk_does_not_import_dask():
    code = ("import json, sys, mitk; mitk.get_num_threads(); "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('dask', 'distributed'))))")
    assert _fresh(code) == []


def test_default_is_1_in_a_dask_worker_task():
    pytest.importorskip("distributed")
    code = (
        "import json, mitk\n"
        "from distributed import Client, LocalCluster\n"
        "if __name__ == '__main__':\n"
        "    outside = mitk.get_num_threads()\n"
        "    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,\n"
        "                      dashboard_address=None) as cluster, Client(cluster) as client:\n"
        "        inside = client.submit(mitk.get_num_threads, pure=False).result()\n"
        "        mitk.set_num_threads(3)\n"
        "        explicit = client.submit(mitk.get_num_threads, pure=False).result()\n"
        "    print(json.dumps([outside, inside, explicit]))\n"
    )
    outside, inside, explicit = _fresh(code, {"MITK_NUM_THREADS": "4"}, drop=("OMP_NUM_THREADS",))
    # MITK_NUM_THREADS is explicit, so it applies in workers too; check the implicit default.
    assert (outside, inside, explicit) == (4, 4, 3)
    outside, inside, explicit = _fresh(code)
    assert (outside, inside, explicit) == (_cpus(), 1, 3)


# -- set_num_threads ------------------------------------------------------------------------------

@pytest.mark.thread_unsafe
def test_set_num_threads_sets_the_process_value(restore_process_value):
    mitk.set_num_threads(3)
    assert mitk.get_num_threads() == 3
    seen = []
    t = start_thread(lambda: seen.append(mitk.get_num_threads()))
    join_all([t])
    assert seen == [3]
    mitk.set_num_threads(np.int64(1))
    assert mitk.get_num_threads() == 1


@pytest.mark.parametrize("bad", [True, False, 2.0, "2", None, 1 + 0j])
def test_non_int_is_a_type_error(bad):
    with pytest.raises(TypeError, match="must be an int"):
        mitk.set_num_threads(bad)
    with pytest.raises(TypeError, match="must be an int"):
        mitk.num_threads(bad)


@pytest.mark.parametrize("bad", [0, -1, -(2**70)])
def test_below_one_is_an_argument_error(bad):
    with pytest.raises(mitk.ArgumentError, match=">= 1"):
        mitk.set_num_threads(bad)
    with pytest.raises(mitk.ArgumentError, match=">= 1"):
        mitk.num_threads(bad)
    assert isinstance(mitk.ArgumentError("x"), ValueError)


# -- num_threads ----------------------------------------------------------------------------------

def test_num_threads_scopes_the_value_and_nests():
    before = mitk.get_num_threads()
    with mitk.num_threads(5) as n:
        assert n == 5 and mitk.get_num_threads() == 5
        with mitk.num_threads(2):
            assert mitk.get_num_threads() == 2
        assert mitk.get_num_threads() == 5
    assert mitk.get_num_threads() == before


def test_num_threads_is_restored_after_an_exception():
    before = mitk.get_num_threads()
    with pytest.raises(KeyError):
        with mitk.num_threads(6):
            raise KeyError("x")
    assert mitk.get_num_threads() == before


def test_num_threads_as_a_decorator():
    @mitk.num_threads(4)
    def inside():
        return mitk.get_num_threads()

    assert inside() == 4 and inside() == 4


def test_num_threads_affects_only_the_calling_thread():
    other = []
    inside = threading.Event()
    checked = threading.Event()

    def watcher():
        inside.wait(10)
        other.append(mitk.get_num_threads())
        checked.set()

    t = start_thread(watcher)
    before = mitk.get_num_threads()
    with mitk.num_threads(before + 3):
        inside.set()
        assert checked.wait(10)
    join_all([t])
    assert other == [before]


def test_num_threads_reaches_work_started_in_a_copy_of_the_context():
    from concurrent.futures import ThreadPoolExecutor

    with mitk.num_threads(7), ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(contextvars.copy_context().run, mitk.get_num_threads)
                   for _ in range(4)]
        assert [f.result(timeout=30) for f in futures] == [7] * 4
        assert _threads.threads_for(3) == 3 and _threads.threads_for(100) == 7


@pytest.mark.thread_unsafe
def test_scoped_value_wins_over_the_process_value(restore_process_value):
    with mitk.num_threads(2):
        mitk.set_num_threads(6)
        assert mitk.get_num_threads() == 2
    assert mitk.get_num_threads() == 6


def test_threads_for_is_at_least_one():
    with mitk.num_threads(3):
        assert _threads.threads_for(0) == 1
        assert _threads.threads_for(2) == 2


@pytest.mark.thread_unsafe
def test_concurrent_setters_and_readers_see_only_valid_values(restore_process_value):
    # Many threads set, scope and read at once (truly in parallel on a free-threaded build):
    # every read is one of the values ever set, and every scoped read is the scope's own.
    allowed = {1, 2, 3, 4}
    bad = []
    barrier = threading.Barrier(6)

    def work(k):
        barrier.wait(10)
        for i in range(2000):
            mitk.set_num_threads(1 + (i + k) % 2)
            if mitk.get_num_threads() not in allowed:
                bad.append("process")
            with mitk.num_threads(3 + k % 2):
                if mitk.get_num_threads() != 3 + k % 2:
                    bad.append("scoped")

    threads = [start_thread(work, k) for k in range(6)]
    join_all(threads)
    assert bad == []
    assert mitk.get_num_threads() in (1, 2)


def test_exported_from_mitk_lazily():
    code = ("import json, sys, mitk; before = 'mitk._threads' in sys.modules; "
            "names = [n in mitk.__all__ for n in ('get_num_threads', 'set_num_threads', "
            "'num_threads')]; mitk.num_threads; "
            "print(json.dumps([before, names, 'mitk._threads' in sys.modules]))")
    assert _fresh(code) == [False, [True, True, True], True]
    assert mitk.get_num_threads is _threads.get_num_threads


@pytest.mark.thread_unsafe
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_child_can_use_the_knob_while_another_thread_sets_it(restore_process_value):
    # The process-wide lock is recreated in a forked child, so a setter in another thread at
    # fork time cannot leave the child's first lookup waiting forever.
    stop = threading.Event()

    def setter():
        while not stop.is_set():
            mitk.set_num_threads(2)

    t = start_thread(setter)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # forking with threads alive
            pid = os.fork()
        if pid == 0:
            code = 1
            try:
                mitk.set_num_threads(1)
                code = 0 if mitk.get_num_threads() == 1 else 3
            finally:
                os._exit(code)
        deadline = time.monotonic() + 20
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                pytest.fail("the child hung on the threads knob")
            time.sleep(0.01)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        stop.set()
        join_all([t])


def test_every_internal_pool_follows_the_one_knob(tmp_path, monkeypatch):
    # Parallel copies, deflate/inflate blocks and DICOM frame decoding all take their thread
    # count from mitk.get_num_threads() (SPEC 14): one thread means no worker threads at all.
    import numpy as np

    from mitk import _parallel_copy
    from mitk.io import _parallel_deflate
    from mitk.io.dicom import _pixels

    monkeypatch.setattr(_parallel_deflate, "PARALLEL_MIN", 64 << 10)
    monkeypatch.setattr(_parallel_deflate, "DEFLATE_BLOCK", 16 << 10)
    monkeypatch.setattr(_parallel_copy, "PARALLEL_COPY_BYTES", 1 << 10)
    arr = (np.arange(300_000) % 251).astype(np.int16).reshape(30, 100, 100)
    started = record_thread_starts(monkeypatch)
    with mitk.num_threads(1):
        assert (_parallel_copy.copy_threads(), _parallel_deflate.available_threads(),
                _pixels.decode_threads()) == (1, 1, 1)
        img = mitk.Image(arr)
        img.save(tmp_path / "a.nii.gz")
        back = mitk.Image(tmp_path / "a.nii.gz")
    np.testing.assert_array_equal(np.asarray(back), arr)
    assert started == []
    with mitk.num_threads(2):
        assert (_parallel_copy.copy_threads(), _parallel_deflate.available_threads(),
                _pixels.decode_threads()) == (2, 2, 2)
        mitk.Image(arr).save(tmp_path / "b.nii.gz")
        np.testing.assert_array_equal(np.asarray(mitk.Image(tmp_path / "b.nii.gz")), arr)
    assert any(n.startswith("mitk-copy") for n in started)
    assert any(n.startswith("mitk-deflate") for n in started)
    assert any(n.startswith("mitk-inflate") for n in started)
