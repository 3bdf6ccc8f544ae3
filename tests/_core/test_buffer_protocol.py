"""PEP 3118 exports of PixelBuffer: format, shape, strides, flags, zero-size buffers."""

import inspect
import sys

import numpy as np
import pytest

from mitk._core import PixelBuffer, ReadAccessor, WriteAccessor
from mitk_testing import PIXEL_TYPES

import mitk

SHAPE = (2, 3, 5)


@pytest.mark.parametrize("name", PIXEL_TYPES)
def test_export_describes_the_pixels(name):
    dt = np.dtype(name)
    buf = PixelBuffer.new(dt, SHAPE)
    mv = memoryview(buf)
    assert mv.format == buf.format
    assert mv.itemsize == dt.itemsize
    assert mv.ndim == 3
    assert mv.shape == SHAPE
    assert mv.strides == (15 * dt.itemsize, 5 * dt.itemsize, dt.itemsize)
    assert mv.readonly is False
    assert mv.c_contiguous
    arr = np.asarray(buf)
    assert arr.dtype == dt and arr.shape == SHAPE
    assert not arr.flags.owndata
    assert np.shares_memory(arr, np.asarray(buf))
    assert buf.address % 64 == 0
    assert not arr.any()  # new() zero-fills
    mv.release()


@pytest.mark.parametrize("name", PIXEL_TYPES)
def test_adopted_read_only_memory_exports_read_only(name):
    src = np.ones(SHAPE, dtype=name)
    src.flags.writeable = False
    buf = PixelBuffer.adopt(src, src.dtype, src.shape)
    assert buf.readonly
    mv = memoryview(buf)
    assert mv.readonly
    assert np.shares_memory(np.asarray(buf), src)
    with pytest.raises(TypeError, match="read-only"):
        memoryview(buf).cast("B")[0] = 1
    arr = np.asarray(buf)
    assert not arr.flags.writeable
    with pytest.raises(ValueError):
        arr.flags.writeable = True


def test_components_are_the_last_axis():
    buf = PixelBuffer.new("uint8", (4, 5, 3))
    assert memoryview(buf).shape == (4, 5, 3)
    assert memoryview(buf).strides == (15, 3, 1)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="__buffer__ (PEP 688) needs Python 3.12")
class TestRequestFlags:
    Flags = inspect.BufferFlags if sys.version_info >= (3, 12) else None

    def test_simple_is_bytes(self):
        buf = PixelBuffer.new("float32", SHAPE)
        mv = buf.__buffer__(self.Flags.SIMPLE)
        assert mv.format == "B" and mv.ndim == 1 and mv.nbytes == 30 * 4

    def test_writable_on_writable(self):
        mv = PixelBuffer.new("int16", SHAPE).__buffer__(self.Flags.WRITABLE)
        assert not mv.readonly

    def test_writable_on_read_only_raises(self):
        src = np.zeros(SHAPE, np.int16)
        src.flags.writeable = False
        with pytest.raises(BufferError):
            PixelBuffer.adopt(src).__buffer__(self.Flags.WRITABLE)

    @pytest.mark.parametrize("flag", ["ND", "STRIDES", "C_CONTIGUOUS", "ANY_CONTIGUOUS",
                                      "FULL_RO", "RECORDS", "STRIDED"])
    def test_shape_requests(self, flag):
        buf = PixelBuffer.new("float64", SHAPE)
        mv = buf.__buffer__(getattr(self.Flags, flag))
        assert mv.shape == SHAPE and mv.c_contiguous

    def test_format_request(self):
        mv = PixelBuffer.new("complex64", SHAPE).__buffer__(self.Flags.FORMAT)
        assert mv.format == "B"  # no ND: a byte view, as PyBuffer_FillInfo gives
        mv = PixelBuffer.new("complex64", SHAPE).__buffer__(self.Flags.RECORDS)
        assert mv.format == "Zf"

    def test_fortran_request(self):
        with pytest.raises(BufferError):
            PixelBuffer.new("float32", SHAPE).__buffer__(self.Flags.F_CONTIGUOUS)
        # A layout with one axis longer than 1 is both C- and Fortran-contiguous.
        mv = PixelBuffer.new("float32", (1, 7, 1)).__buffer__(self.Flags.F_CONTIGUOUS)
        assert mv.shape == (1, 7, 1)

    def test_accessor_exports_honour_flags(self):
        buf = PixelBuffer.new("float32", SHAPE)
        with ReadAccessor(buf) as acc:
            with pytest.raises(BufferError):
                acc.__buffer__(self.Flags.WRITABLE)
            acc.__buffer__(self.Flags.STRIDED_RO).release()
        with WriteAccessor(buf) as acc:
            mv = acc.__buffer__(self.Flags.WRITABLE)
            assert not mv.readonly
            mv.release()


@pytest.mark.parametrize("shape", [(0,), (0, 4), (3, 0, 2)])
def test_zero_size_buffer_exports_non_null(shape):
    buf = PixelBuffer.new("float32", shape)
    assert buf.nbytes == 0
    assert buf.address != 0
    mv = memoryview(buf)
    assert mv.nbytes == 0 and mv.shape == shape
    assert np.asarray(buf).size == 0


def test_one_voxel_buffer():
    buf = PixelBuffer.new("int32", (1, 1, 1))
    arr = np.asarray(buf)
    arr[0, 0, 0] = 7
    assert memoryview(buf).tolist() == [[[7]]]


@pytest.mark.parametrize("shape,exc", [((-1, 2), mitk.ArgumentError),
                                       ((2**62, 2**62), mitk.ArgumentError),
                                       ((2**40, 2**40, 2**40), mitk.ArgumentError),
                                       ((1.5, 2), TypeError),
                                       (("a",), TypeError),
                                       ((), mitk.ArgumentError),
                                       ((1,) * 9, mitk.ArgumentError)])
def test_bad_shapes(shape, exc):
    with pytest.raises(exc, match=r"shape|overflow|axes|sizes|int"):
        PixelBuffer.new("float32", shape)


def test_unsupported_dtype():
    with pytest.raises(TypeError, match="object"):
        PixelBuffer.new(object, (2, 2))


def test_allocation_failure_is_memory_error():
    # 2**60 bytes passes the overflow check but cannot be allocated.
    with pytest.raises(MemoryError):
        PixelBuffer.new("uint8", (2**30, 2**30))


def test_adopt_refuses_non_contiguous():
    arr = np.zeros((4, 4), np.float32)[:, ::2]
    with pytest.raises(mitk.ArgumentError, match="C-contiguous"):
        PixelBuffer.adopt(arr)
    with pytest.raises(TypeError):
        PixelBuffer.adopt(12345)


def test_direct_construction_is_refused():
    with pytest.raises(TypeError):
        PixelBuffer()
