"""DLPack export flags: a zero-copy export is read-only unless asked for writably (SPEC §4.7).

``np.asarray(img)`` is a read-only view, so ``np.from_dlpack(img)`` and ``torch.from_dlpack(img)``
must not hand out a writable one: a write through it would bypass the image's lock.  The
versioned capsule carries DLPack's READ_ONLY flag; a private copy (``copy=True``) carries
IS_COPIED and is writable; a writable export is asked for with ``img.as_numpy(writeable=True)``.
"""

import ctypes

import numpy as np
import pytest

import mitk

READ_ONLY, IS_COPIED = 1, 2

_get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_get_pointer.restype = ctypes.c_void_p
_get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]


class _Versioned(ctypes.Structure):
    # The head of DLManagedTensorVersioned (dlpack.h 1.x): version, manager_ctx, deleter, flags.
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32),
                ("manager_ctx", ctypes.c_void_p), ("deleter", ctypes.c_void_p),
                ("flags", ctypes.c_uint64)]


def _flags(capsule) -> int:
    head = _Versioned.from_address(_get_pointer(capsule, b"dltensor_versioned"))
    assert head.major == 1
    return head.flags


class _Spy:
    """Passes a producer through and records what the consumer asked and got."""

    def __init__(self, producer):
        self.producer, self.calls = producer, []

    def __dlpack_device__(self):
        return self.producer.__dlpack_device__()

    def __dlpack__(self, **kwargs):
        capsule = self.producer.__dlpack__(**kwargs)
        versioned = kwargs.get("max_version") is not None and tuple(kwargs["max_version"]) >= (1, 0)
        self.calls.append((kwargs, _flags(capsule) if versioned else None))
        return capsule


@pytest.fixture
def image():
    return mitk.Image(np.arange(24, dtype=np.float32).reshape(2, 3, 4))


def test_versioned_capsule_is_read_only(image):
    capsule = image.__dlpack__(max_version=(1, 1))
    assert _flags(capsule) & READ_ONLY
    assert not _flags(capsule) & IS_COPIED
    del capsule  # never consumed: its destructor releases the export
    image.initialize("uint8", (2, 2))  # no export left behind


def test_numpy_from_dlpack_is_read_only_like_asarray(image):
    for arr in (np.from_dlpack(image), np.asarray(image)):
        assert not arr.flags.writeable
        assert np.shares_memory(arr, image.array)
        with pytest.raises(ValueError):
            arr[0, 0, 0] = -1
        with pytest.raises(ValueError):
            arr.flags.writeable = True
    assert image.array[0, 0, 0] == 0


def test_copy_is_writable_and_private(image):
    spy = _Spy(image)
    arr = np.from_dlpack(spy, copy=True)
    assert spy.calls[0][1] == IS_COPIED  # writable: a copy nobody else sees
    assert arr.flags.writeable and not np.shares_memory(arr, image.array)
    arr[...] = 7
    assert image.array.max() == 23


def test_asked_writably_shares_memory(image):
    arr = np.from_dlpack(image.as_numpy(writeable=True))
    assert arr.flags.writeable and np.shares_memory(arr, image.array)
    arr[0, 0, 0] = 42
    assert image.array[0, 0, 0] == 42


def test_read_only_image_stays_read_only_even_when_copied_by_the_consumer():
    src = np.arange(6, dtype=np.int16).reshape(2, 3)
    src.flags.writeable = False
    image = mitk.Image(src, copy=False)
    assert image.readonly
    assert _flags(image.__dlpack__(max_version=(1, 0))) & READ_ONLY
    assert not np.from_dlpack(image).flags.writeable
    with pytest.raises(BufferError):
        image.__dlpack__()  # a legacy capsule could not say read-only


def test_legacy_capsule_of_a_writable_image_still_works(image):
    # Old consumers (NumPy 2.0) ask for unversioned capsules, which have no flags at all.
    capsule = image.__dlpack__()
    assert ctypes.pythonapi.PyCapsule_IsValid(ctypes.py_object(capsule), b"dltensor")


def test_torch_gets_the_read_only_flag(image):
    torch = pytest.importorskip("torch")
    spy = _Spy(image)
    tensor = torch.from_dlpack(spy)
    (kwargs, flags), = spy.calls
    assert tuple(kwargs["max_version"]) >= (1, 0)  # torch asks for a versioned capsule ...
    assert flags & READ_ONLY  # ... and it says read-only
    # PyTorch has no read-only tensors and ignores the flag (its from_dlpack docstring says so):
    # the tensor aliases the pixels.  Ask torch for a copy to get one that may be written.
    assert tensor.data_ptr() == image.pixel_buffer.address
    spy = _Spy(image)
    copied = torch.from_dlpack(spy, copy=True)
    assert spy.calls[-1][1] == IS_COPIED
    copied[...] = -1
    assert image.array.min() == 0
    shared = torch.from_dlpack(image.as_numpy(writeable=True))
    shared[0, 0, 0] = 99
    assert image.array[0, 0, 0] == 99
