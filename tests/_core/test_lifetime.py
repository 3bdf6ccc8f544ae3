"""Lifetime of buffers and views: no dangling views, no leaks, weakrefs die when they should."""

import gc
import sys
import weakref

import numpy as np
import pytest

from mitk._core import PixelBuffer, ReadAccessor

import mitk


def test_view_keeps_buffer_alive():
    buf = PixelBuffer.new("float64", (64, 64))
    view = np.asarray(buf)
    view[...] = 3.0
    ref = weakref.ref(buf)
    del buf
    gc.collect()
    assert ref() is not None
    assert (view == 3.0).all()
    del view
    gc.collect()
    assert ref() is None


def test_image_view_outlives_image():
    img = mitk.Image(np.arange(1000, dtype=np.int32).reshape(10, 10, 10))
    ref = weakref.ref(img.pixel_buffer)
    view = img.as_numpy()
    arr = np.asarray(img)
    del img
    gc.collect()
    assert ref() is not None
    assert view[9, 9, 9] == 999 and arr[0, 0, 1] == 1
    del view, arr
    gc.collect()
    assert ref() is None


def test_view_of_a_temporary_is_valid():
    # The SimpleITK #1693 crash: a view of an image that is only a temporary.
    view = mitk.Image(np.full((8, 8, 8), 5, np.uint16)).as_numpy()
    gc.collect()
    np.asarray(bytearray(10 << 20))  # churn the allocator
    assert (view == 5).all()


def test_accessor_view_of_a_temporary_is_valid():
    view = mitk.Image(np.full((4, 4, 4), 2.5, np.float32)).as_numpy(use_accessor=True)
    gc.collect()
    assert (view == 2.5).all()


def test_export_cycles_leave_refcounts_unchanged():
    # ARROW-1053: every export must be released exactly once.
    buf = PixelBuffer.new("int16", (16, 16))
    before = sys.getrefcount(buf)
    for _ in range(1000):
        mv = memoryview(buf)
        arr = np.asarray(mv)
        del arr
        mv.release()
        with ReadAccessor(buf) as acc:
            a = acc.array
            del a
        del acc
    gc.collect()
    assert sys.getrefcount(buf) == before
    assert buf.exports == 0


def test_image_views_leave_refcounts_unchanged():
    img = mitk.Image(np.zeros((8, 8), np.float32))
    buf = img.pixel_buffer
    img.as_numpy()  # fill the image's own view caches (read-only and writable) once
    img.as_numpy(writeable=True)
    before = sys.getrefcount(buf)
    for _ in range(1000):
        img.as_numpy()
        img.as_numpy(writeable=True)
        img.as_numpy(use_accessor=True)
        np.asarray(img)
    gc.collect()
    assert sys.getrefcount(buf) == before


def test_adopted_memory_is_released_once():
    arr = np.arange(12, dtype=np.float32)
    ref = weakref.ref(arr.base) if arr.base is not None else None
    before = sys.getrefcount(arr)
    buf = PixelBuffer.adopt(arr)
    assert sys.getrefcount(arr) > before  # the export pins the array
    del buf
    gc.collect()
    assert sys.getrefcount(arr) == before
    assert ref is None or ref() is not None


def test_pickle_buffer_is_zero_copy_and_survives():
    import pickle

    buf = PixelBuffer.new("float32", (4, 5))
    np.asarray(buf)[...] = np.arange(20).reshape(4, 5)
    buffers = []
    data = pickle.dumps(buf, protocol=5, buffer_callback=buffers.append)
    assert len(buffers) == 1
    back = pickle.loads(data, buffers=buffers)
    assert back.shape == (4, 5) and back.dtype == np.float32
    assert np.shares_memory(np.asarray(back), np.asarray(buf))  # out of band: no copy
    for protocol in (2, 3, 4, 5):
        other = pickle.loads(pickle.dumps(buf, protocol=protocol))
        assert not other.readonly
        np.testing.assert_array_equal(np.asarray(other), np.asarray(buf))


def test_tracemalloc_sees_no_growth():
    import tracemalloc

    tracemalloc.start()
    try:
        for _ in range(50):
            img = mitk.Image(np.zeros((32, 32, 32), np.float32))
            v = img.as_numpy(use_accessor=True)
            del v, img
        gc.collect()
        first, _ = tracemalloc.get_traced_memory()
        for _ in range(200):
            img = mitk.Image(np.zeros((32, 32, 32), np.float32))
            v = img.as_numpy(use_accessor=True)
            del v, img
        gc.collect()
        second, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert second - first < 64 * 1024
