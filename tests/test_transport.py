"""Images travelling without copies: DLPack, and Dask worker processes."""

import gc

import numpy as np
import pytest

import mitk
from mitk_testing import PIXEL_TYPES, sample_array


@pytest.mark.parametrize("name", [n for n in PIXEL_TYPES])
def test_numpy_from_dlpack_is_zero_copy(name):
    img = mitk.Image(sample_array(name, (3, 4, 5)))
    arr = np.from_dlpack(img)
    assert arr.dtype == img.dtype and arr.shape == img.shape
    np.testing.assert_array_equal(arr, img.array)
    assert np.shares_memory(arr, img.array)


def test_dlpack_device_and_export_counting():
    img = mitk.Image(np.zeros((4, 4), np.float32))
    assert img.__dlpack_device__() == (1, 0)
    capsule = img.__dlpack__(max_version=(1, 0))
    with pytest.raises(BufferError):
        img.initialize("uint8", [2, 2])  # the export is alive
    arr = np.from_dlpack(mitk.Image(np.ones((2, 2))))  # consumed capsules release properly
    del capsule
    gc.collect()
    img.initialize("uint8", [2, 2])
    assert arr.sum() == 4


def test_dlpack_read_only_rules():
    src = np.arange(6, dtype=np.int32).reshape(2, 3)
    src.flags.writeable = False
    img = mitk.Image(src, copy=False)
    with pytest.raises(BufferError, match="read-only"):
        img.__dlpack__()  # a legacy capsule cannot say read-only
    arr = np.from_dlpack(img)  # NumPy asks for a versioned capsule
    assert not arr.flags.writeable
    copied = np.from_dlpack(img, copy=True)
    assert copied.flags.writeable and not np.shares_memory(copied, src)


def test_dlpack_refuses_streams_and_devices():
    img = mitk.Image(np.zeros((2, 2)))
    with pytest.raises(BufferError, match="stream"):
        img.__dlpack__(stream=1)
    with pytest.raises(BufferError, match="CPU"):
        img.__dlpack__(dl_device=(2, 0))


def test_image_from_dlpack():
    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    img = mitk.Image.from_dlpack(arr, spacing=(1, 2, 3))
    assert np.shares_memory(img.array, arr) and img.spacing == (1.0, 2.0, 3.0)
    img2 = mitk.Image.from_dlpack(img)
    assert np.shares_memory(img2.array, arr)
    img3 = mitk.Image.from_dlpack(arr, copy=True)
    assert not np.shares_memory(img3.array, arr)
    rgb = mitk.Image.from_dlpack(np.zeros((4, 5, 3), np.uint8), channels=3)
    assert rgb.channels == 3 and rgb.ndim == 2
    with pytest.raises((mitk.ArgumentError, BufferError, ValueError)):
        mitk.Image.from_dlpack(np.zeros((4, 6), np.float32)[:, ::2], copy=False)


def test_torch_round_trip():
    torch = pytest.importorskip("torch")
    img = mitk.Image(np.arange(8, dtype=np.float32).reshape(2, 4))
    t = torch.from_dlpack(img)
    assert t.shape == (2, 4) and float(t.sum()) == 28.0
    back = mitk.Image.from_dlpack(t)
    np.testing.assert_array_equal(back.array, img.array)


def test_dask_worker_processes_round_trip():
    """Images go to two Dask worker processes, are changed there, and come back."""
    import os
    import subprocess
    import sys

    pytest.importorskip("distributed")
    script = os.path.join(os.path.dirname(__file__), "dask_round_trip.py")
    out = subprocess.run([sys.executable, "-P", script], capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok 4"
