"""Image-level races: initialize vs accessors, pickling vs writers, atomic geometry, properties.

Each test reproduces a finding of issue 22 (items 7-10).  Threads are joined with timeouts and
checked with ``assert not t.is_alive()`` (mitk_testing.join_all); nothing may hang.
"""

from __future__ import annotations

import pickle
import sys
import threading

import numpy as np
import pytest

import mitk
import mitk.properties
from mitk_testing import JOIN_TIMEOUT, flipping_spacing, join_all, start_thread


@pytest.fixture
def fast_switching():
    """Switch threads every 10 microseconds, so that races show up within a few iterations."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(old)


# -- item 7: initialize() vs a write accessor taken meanwhile -------------------------------------


@pytest.mark.thread_unsafe  # patches mitk.Image
# No timeout is the short path of Image.write() (_core.accessor._new_locked): it must check for a
# replaced buffer as the general path does.
@pytest.mark.parametrize("timeout", [JOIN_TIMEOUT, None])
def test_initialize_holds_the_pixels_until_the_new_ones_are_installed(monkeypatch, timeout):
    img = mitk.Image(np.zeros((4, 4), np.uint8))
    started = threading.Event()
    second_write: list = []

    def writer():
        started.set()
        with img.write(timeout) as acc:
            acc.array[...] = 7
            try:
                img.write(timeout=0)  # the same thread: must never get a second write lock
                second_write.append("granted")
            except mitk.LockError:
                second_write.append("LockError")

    threads = []
    install = mitk.Image._install

    def install_during_writer(self, *args):
        # Runs inside initialize(), after its check for live accessors: the writer asks now.
        if not threads:
            threads.append(start_thread(writer))
            started.wait(JOIN_TIMEOUT)
            threads[0].join(0.2)  # the writer gets the old pixels here unless they are held
        install(self, *args)

    monkeypatch.setattr(mitk.Image, "_install", install_during_writer)
    img.initialize(np.uint8, (4, 4))
    join_all(threads)
    assert second_write == ["LockError"]
    assert np.all(img.array == 7), "the write went to the pixels initialize() replaced"


@pytest.mark.thread_unsafe  # patches mitk.Image
@pytest.mark.parametrize("timeout", [JOIN_TIMEOUT, None])
def test_a_reader_waiting_through_initialize_gets_the_new_pixels(monkeypatch, timeout):
    img = mitk.Image(np.full((4, 4), 9, np.uint8))
    seen: list = []
    threads: list = []
    asking = threading.Event()

    def reader():
        asking.set()
        with img.read(timeout) as acc:
            seen.append((acc.pixel_buffer is img.pixel_buffer, acc.array.dtype, acc.array.sum()))

    install = mitk.Image._install

    def install_during_reader(self, *args):
        if not threads:
            threads.append(start_thread(reader))
            assert asking.wait(JOIN_TIMEOUT)
            threads[0].join(0.2)  # the reader gets the old pixels here unless they are held
            assert threads[0].is_alive(), "the reader was not kept waiting"
        install(self, *args)

    monkeypatch.setattr(mitk.Image, "_install", install_during_reader)
    img.initialize(np.int16, (4, 4))
    join_all(threads)
    assert seen == [(True, np.dtype(np.int16), 0)]


def test_initialize_refuses_while_another_thread_holds_an_accessor():
    img = mitk.Image(np.zeros((4, 4), np.uint8))
    holding, done = threading.Event(), threading.Event()

    def reader():
        with img.read():
            holding.set()
            done.wait(JOIN_TIMEOUT)

    t = start_thread(reader)
    assert holding.wait(JOIN_TIMEOUT)
    with pytest.raises(BufferError):
        img.initialize(np.uint8, (2, 2))
    done.set()
    join_all([t])
    assert img.shape == (4, 4)
    img.initialize(np.uint8, (2, 2))
    assert img.shape == (2, 2)


def test_initialize_of_a_read_only_image_still_checks_accessors():
    arr = np.zeros((4, 4), np.uint8)
    arr.flags.writeable = False
    img = mitk.Image(arr, copy=False)
    with img.read():
        with pytest.raises(BufferError):
            img.initialize(np.uint8, (2, 2))
    img.initialize(np.uint8, (2, 2))
    assert img.shape == (2, 2) and not img.readonly


# -- item 8: pickle protocol 5 vs a writer ---------------------------------------------------------


def test_pickle_protocol_5_waits_for_a_writer():
    img = mitk.Image(np.zeros((8, 16, 16), np.uint8))
    halfway, finish = threading.Event(), threading.Event()

    def writer():
        with img.write() as acc:
            acc.array[:4] = 1
            halfway.set()
            finish.wait(JOIN_TIMEOUT)
            acc.array[4:] = 1

    pickles: list = []
    w = start_thread(writer)
    assert halfway.wait(JOIN_TIMEOUT)
    p = start_thread(lambda: pickles.append(pickle.dumps(img, protocol=5)))
    p.join(0.3)
    still_waiting = p.is_alive()
    finish.set()
    join_all([w, p])
    assert still_waiting, "protocol 5 read the pixels without the read lock"
    assert np.all(pickle.loads(pickles[0]).array == 1)


def test_pickle_protocol_5_buffer_holds_the_read_lock_until_released():
    img = mitk.Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4))
    pickle.dumps(img, protocol=5)
    assert img.pixel_buffer.lock_state()[0] == 0  # in band: released when dumps returns
    buffers: list = []
    data = pickle.dumps(img, protocol=5, buffer_callback=buffers.append)
    assert len(buffers) == 1
    assert img.pixel_buffer.lock_state()[0] == 1  # out of band: held for the consumer
    errors: list = []

    def other_writer():
        try:
            img.write(timeout=0.05)
        except mitk.LockTimeout as exc:
            errors.append(exc)

    join_all([start_thread(other_writer)])
    assert len(errors) == 1
    back = pickle.loads(data, buffers=buffers)
    assert not back.readonly and np.array_equal(back.array, img.array)
    del back
    buffers[0].release()
    del buffers
    assert img.pixel_buffer.lock_state()[0] == 0
    with img.write(timeout=0):
        pass


# -- item 9: a geometry setter is one atomic change for copies and pickles ----------------------


def _spacings(image):
    return {image.get_spacing(t) for t in range(image.time_steps)}


@pytest.mark.thread_unsafe  # sets the interpreter's switch interval
@pytest.mark.parametrize("how", ["copy", "pickle", "snapshot"])
def test_multi_step_setter_is_atomic_for_readers(fast_switching, how):
    img = mitk.Image(np.zeros((200, 1, 1, 1), np.uint8))
    mixed = 0
    with flipping_spacing(img):
        for _ in range(150):
            if how == "copy":
                seen = _spacings(img.copy())
            elif how == "pickle":
                seen = _spacings(pickle.loads(pickle.dumps(img, protocol=5)))
            else:
                snapshot = img.time_geometry.copy()  # what a save reads
                seen = {snapshot.get_geometry_for_time_step(k).spacing[0] for k in range(200)}
            mixed += len(seen) != 1
    assert mixed == 0, f"{mixed} of 150 {how}s had mixed per-step spacing"


def test_one_step_setter_changes_only_that_step():
    img = mitk.Image(np.zeros((5, 2, 2, 2)))
    img.set_origin((1, 2, 3), time_step=3)
    snapshot = img.time_geometry.copy()
    assert snapshot._first_differing_step() == 3
    img.set_origin((1, 2, 3), time_step=None)
    assert img.time_geometry.copy()._first_differing_step() is None


# -- item 10: properties deleted by another thread --------------------------------------------


@pytest.mark.thread_unsafe  # sets the interpreter's switch interval
@pytest.mark.parametrize("how", ["pickle", "copy"])
def test_pickle_and_copy_while_properties_are_deleted(fast_switching, how):
    img = mitk.Image(np.zeros((2, 2), np.uint8))
    keys = [f"key{i}" for i in range(50)]
    img.properties.update({k: k for k in keys})
    stop = threading.Event()

    def churn():
        while not stop.is_set():
            for k in keys:
                img.properties.pop(k, None)
            img.properties.update({k: k for k in keys})

    t = start_thread(churn)
    try:
        for _ in range(300):
            back = pickle.loads(pickle.dumps(img)) if how == "pickle" else img.copy()
            assert set(back.properties) <= set(keys)
    finally:
        stop.set()
        join_all([t])


class _DeletedWhileRead(mitk.properties.PropertyMap):
    """A map whose every read finds its key just deleted by "another thread": the worst
    interleaving of the race above, made deterministic."""

    def __getitem__(self, key):
        self.pop(key, None)
        return super().__getitem__(key)


@pytest.mark.parametrize("how", ["pickle", "copy", "deepcopy"])
def test_a_key_deleted_between_listing_and_reading_is_no_error(how):
    import copy

    img = mitk.Image(np.zeros((2, 2), np.uint8))
    img._props = _DeletedWhileRead({"a": 1, "b": "x"})
    back = {"pickle": lambda: pickle.loads(pickle.dumps(img)), "copy": img.copy,
            "deepcopy": lambda: copy.deepcopy(img)}[how]()
    assert dict(back.properties.items()) == {"a": 1, "b": "x"}


def test_a_lock_timeout_names_the_timeout_the_caller_gave():
    # It named what was left of it on the last attempt ("within 0.19999876000019867 s").
    img = mitk.Image(np.zeros((2, 2), np.uint8))
    holding, finish = threading.Event(), threading.Event()

    def hold() -> None:
        with img.write():
            holding.set()
            finish.wait(10)

    t = start_thread(hold)
    try:
        assert holding.wait(10)
        with pytest.raises(mitk.LockTimeout, match=r"within 0 s$"):
            img.read(timeout=0)
        with pytest.raises(mitk.LockTimeout, match=r"within 0\.2 s$"):
            img.read(timeout=0.2)
    finally:
        finish.set()
        join_all([t])
