"""Build a downstream Cython extension against the installed mitk and use its C API.

The scipy/pyarrow pattern: a tiny meson project (meson.build + consumer.pyx beside this file) is
built in tmp_path with a native file pinning this interpreter, then imported by path, and also run
in a fresh subprocess that did not import mitk first.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import mitk

pytestmark = pytest.mark.cython

HERE = Path(__file__).parent


def _installed_from_source_tree() -> bool:
    # An editable install points the package at the checkout; the test needs an installed one.
    return Path(mitk.__file__).resolve().parent == (HERE.parent.parent / "src" / "mitk").resolve()


@pytest.fixture(scope="module")
def consumer_dir(tmp_path_factory):
    meson = shutil.which("meson") or (Path(sys.executable).parent / "meson")
    if not Path(meson).exists() and shutil.which("meson") is None:
        pytest.skip("meson is not installed (pip install meson ninja)")
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler")
    if _installed_from_source_tree():
        pytest.skip("mitk is installed in editable mode; the consumer needs an installed copy")
    src = tmp_path_factory.mktemp("consumer_src")
    for name in ("meson.build", "consumer.pyx"):
        shutil.copy(HERE / name, src / name)
    build = src / "build"
    native = src / "native.ini"
    native.write_text(f"[binaries]\npython = '{sys.executable}'\n"
                      f"cython = '{Path(sys.executable).parent / 'cython'}'\n")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    subprocess.run([str(meson), "setup", str(build), str(src), "--native-file", str(native)],
                   check=True, capture_output=True, env=env, timeout=300)
    subprocess.run([str(meson), "compile", "-C", str(build)], check=True, capture_output=True,
                   env=env, timeout=300)
    return build


@pytest.fixture(scope="module")
def consumer(consumer_dir):
    path = next(p for p in consumer_dir.iterdir() if p.name.startswith("consumer.") and
                p.suffix in (".so", ".pyd"))
    spec = importlib.util.spec_from_file_location("consumer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_capi_version(consumer):
    from mitk._core import CAPI_VERSION

    assert consumer.CAPI_VERSION == CAPI_VERSION == 1


def test_sum_without_gil_matches_numpy(consumer):
    arr = np.random.default_rng(1).standard_normal((7, 31, 33))
    img = mitk.Image(arr)
    assert consumer.sum_float64(img.pixel_buffer) == pytest.approx(arr.sum(), rel=1e-12)


def test_write_through_the_c_api(consumer):
    img = mitk.Image(np.zeros((5, 6), np.int32))
    assert consumer.fill_int32(img.pixel_buffer, 42) == consumer.STATUS["OK"]
    assert (img.array == 42).all()


def test_layout(consumer):
    img = mitk.Image(np.zeros((3, 4, 5, 3), np.uint8), channels=3)
    nd, shape, strides, itemsize, nbytes, fmt, readonly, non_null = consumer.layout(
        img.pixel_buffer)
    assert (nd, shape, strides, itemsize, nbytes, fmt) == (4, (3, 4, 5, 3), (60, 15, 3, 1), 1,
                                                           180, "B")
    assert not readonly and non_null


def test_none_gives_error_status_not_crash(consumer):
    assert consumer.layout(None)[:2] == (0, None)
    assert consumer.try_read(None) == consumer.STATUS["ERROR"]
    assert consumer.unlock_write(None) == consumer.STATUS["ERROR"]


def test_wrong_type_is_type_error(consumer):
    with pytest.raises(TypeError):
        consumer.sum_float64(np.zeros(3))
    with pytest.raises(TypeError):
        consumer.try_read(mitk.Image(np.zeros((2, 2))))


def test_lock_rules_are_shared_with_accessors(consumer):
    S = consumer.STATUS
    img = mitk.Image(np.zeros((4, 4)))
    buf = img.pixel_buffer
    acc = img.write()
    assert consumer.try_read(buf) == S["DEADLOCK"]  # same thread holds the write lock
    result = []
    t = threading.Thread(target=lambda: result.append(consumer.lock_read(buf, 0.2)))
    t.start()
    t.join(10)
    assert not t.is_alive()
    assert result == [S["TIMEOUT"]]
    acc.release()
    assert consumer.try_read(buf) == S["OK"]
    assert consumer.try_write(buf) == S["DEADLOCK"]
    with pytest.raises(mitk.LockError):
        img.write()
    assert consumer.unlock_read(buf) == S["OK"]
    assert consumer.unlock_read(buf) == S["ERROR"]
    assert consumer.lock_write(buf, 1.0) == S["OK"]
    assert consumer.unlock_write(buf) == S["OK"]


def test_gil_is_released_while_the_consumer_waits(consumer):
    img = mitk.Image(np.ones((8, 8)))
    acc = img.write()
    out = []
    t = threading.Thread(target=lambda: out.append(consumer.sum_float64(img.pixel_buffer)))
    t.start()
    count = 0
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        count += 1  # runs only if the waiting consumer does not hold the GIL
    acc.release()
    t.join(10)
    assert not t.is_alive()
    assert out == [64.0] and count > 1000


def test_in_a_fresh_subprocess(consumer_dir):
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(consumer_dir)!r})
        import consumer              # imports mitk._core.buffer itself, mitk not imported yet
        import numpy as np
        import mitk
        arr = np.arange(1000, dtype=np.float64)
        print(consumer.sum_float64(mitk.Image(arr.reshape(10, 100)).pixel_buffer))
    """)
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=str(consumer_dir))
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) == 499500.0


def test_each_thread_is_one_owner_across_accessors_and_the_c_api(consumer_dir):
    # The lock tells owners apart by a per-thread id.  Accessors (mitk._core.accessor) and the C
    # API (mitk._core.buffer) are separate extension modules; if each numbered threads on its own,
    # a thread first seen by one module and another thread first seen by the other would share an
    # id, and the second would be taken for the first: a deadlock report instead of a wait, or
    # one thread releasing another's hold.  A fresh process makes the numbering predictable.
    code = textwrap.dedent(f"""
        import sys, threading
        sys.path.insert(0, {str(consumer_dir)!r})
        import consumer
        import numpy as np
        import mitk
        S = consumer.STATUS
        img = mitk.Image(np.zeros((4, 4)))
        buf = img.pixel_buffer
        held, done = threading.Event(), threading.Event()

        def hold_with_accessor():     # the first thread the accessor module sees
            with img.read():
                held.set()
                done.wait(30)

        holder = threading.Thread(target=hold_with_accessor)
        holder.start()
        held.wait(30)
        seen = []
        for _ in range(4):            # the first threads the C API module sees
            t = threading.Thread(target=lambda: seen.append(consumer.lock_write(buf, 0.05)))
            t.start()
            t.join(30)
        done.set()
        holder.join(30)
        assert seen == [S["TIMEOUT"]] * 4, seen

        # The other way round: a hold taken through the C API, writers through accessors.
        held.clear(); done.clear()
        def hold_with_c_api():
            assert consumer.lock_read(buf, 1.0) == S["OK"]
            held.set()
            done.wait(30)
            assert consumer.unlock_read(buf) == S["OK"]
        holder = threading.Thread(target=hold_with_c_api)
        holder.start()
        held.wait(30)
        errors = []
        def write_with_accessor():
            try:
                img.write(timeout=0.05)
            except Exception as exc:
                errors.append(type(exc).__name__)
        for _ in range(4):
            t = threading.Thread(target=write_with_accessor)
            t.start()
            t.join(30)
        done.set()
        holder.join(30)
        assert errors == ["LockTimeout"] * 4, errors
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=str(consumer_dir))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok"]
