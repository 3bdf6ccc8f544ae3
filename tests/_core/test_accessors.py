"""ReadAccessor / WriteAccessor: lock holding, release rules, exports, errors."""

import gc
import math

import numpy as np
import pytest

from mitk._core import PixelBuffer, ReadAccessor, WriteAccessor

import mitk


def _buffer():
    # Made in the test body, not in a fixture: under pytest-run-parallel every thread running a
    # test then has its own buffer, and lock-state assertions stay exact.
    b = PixelBuffer.new("float32", (3, 4, 5))
    np.asarray(b)[...] = np.arange(60).reshape(3, 4, 5)
    return b


def test_read_accessor_holds_the_read_lock():
    buf = _buffer()
    acc = ReadAccessor(buf)
    assert buf.lock_state() == (1, False, 0)
    assert not acc.released and acc.mode == "read"
    assert not acc.array.flags.writeable
    assert acc.array is acc.array  # the same view while it lives
    np.testing.assert_array_equal(acc.array, np.asarray(buf))
    assert np.shares_memory(acc.array, np.asarray(buf))
    acc.release()
    assert acc.released
    assert buf.lock_state() == (0, False, 0)
    acc.release()  # a second call is a no-op


def test_write_accessor_writes():
    buf = _buffer()
    with WriteAccessor(buf) as acc:
        assert buf.lock_state() == (0, True, 0)
        acc[0, 0, 0] = -1
        acc.array[1] = 7
    assert buf.lock_state() == (0, False, 0)
    assert np.asarray(buf)[0, 0, 0] == -1 and (np.asarray(buf)[1] == 7).all()


def test_release_with_live_array_raises_and_keeps_lock():
    buf = _buffer()
    acc = ReadAccessor(buf)
    arr = acc.array
    with pytest.raises(BufferError, match="alive"):
        acc.release()
    assert buf.lock_state()[0] == 1
    del arr
    acc.release()
    assert buf.lock_state()[0] == 0


def test_exit_defers_until_last_array_is_gone():
    buf = _buffer()
    with ReadAccessor(buf) as acc:
        arr = acc.array
        part = arr[1:]  # derived arrays pin the lock too
    assert buf.lock_state()[0] == 1
    del arr
    gc.collect()
    assert buf.lock_state()[0] == 1
    del part
    gc.collect()
    assert buf.lock_state()[0] == 0
    assert acc.released


def test_exit_never_raises():
    buf = _buffer()
    acc = ReadAccessor(buf)
    keep = acc.array
    acc.__exit__(None, None, None)
    del keep
    assert acc.released


def test_collecting_accessor_and_arrays_releases():
    buf = _buffer()
    arr = np.asarray(WriteAccessor(buf))
    assert buf.lock_state()[1]
    del arr
    gc.collect()
    assert buf.lock_state() == (0, False, 0)


def test_copies_hold_nothing():
    buf = _buffer()
    with ReadAccessor(buf) as acc:
        c = acc.array.copy()
    assert buf.lock_state()[0] == 0
    assert c.shape == (3, 4, 5)


def test_released_accessor_refuses_new_exports():
    buf = _buffer()
    acc = ReadAccessor(buf)
    acc.release()
    with pytest.raises(BufferError, match="released"):
        memoryview(acc)


def test_frame_accessor_is_exactly_that_frame():
    buf = _buffer()
    with WriteAccessor(buf, frame=2) as acc:
        assert acc.array.shape == (4, 5)
        acc.array[...] = -5
    full = np.asarray(buf)
    assert (full[2] == -5).all()
    assert (full[:2] != -5).all()
    with pytest.raises(IndexError):
        ReadAccessor(buf, frame=3)


def test_self_deadlock_is_immediate():
    buf = _buffer()
    r = ReadAccessor(buf)
    with pytest.raises(mitk.LockError, match="deadlock"):
        WriteAccessor(buf, timeout=30)
    r.release()
    w = WriteAccessor(buf)
    with pytest.raises(mitk.LockError):
        ReadAccessor(buf, timeout=30)
    with pytest.raises(mitk.LockError):
        WriteAccessor(buf, timeout=30)
    w.release()


def test_reentrant_reads():
    buf = _buffer()
    a = ReadAccessor(buf)
    b = ReadAccessor(buf)
    assert buf.lock_state()[0] == 2
    a.release()
    b.release()
    assert buf.lock_state()[0] == 0


@pytest.mark.parametrize("timeout", [-1, -0.5, math.nan])
def test_bad_timeouts(timeout):
    buf = _buffer()
    with pytest.raises(mitk.ArgumentError, match="timeout"):
        ReadAccessor(buf, timeout=timeout)


@pytest.mark.parametrize("timeout", ["1", [1], True])
def test_timeout_types(timeout):
    buf = _buffer()
    with pytest.raises(TypeError, match="timeout"):
        ReadAccessor(buf, timeout=timeout)


def test_write_accessor_on_read_only_buffer():
    buf = _buffer()
    src = np.zeros((2, 2), np.uint8)
    src.flags.writeable = False
    with pytest.raises(mitk.ArgumentError, match="read-only"):
        WriteAccessor(PixelBuffer.adopt(src))


def test_accessor_counts_as_export():
    buf = _buffer()
    acc = ReadAccessor(buf)
    assert buf.exports == 1
    acc.release()
    assert buf.exports == 0


def test_wrong_buffer_type():
    with pytest.raises(TypeError):
        ReadAccessor(np.zeros(3))
    with pytest.raises(TypeError):
        ReadAccessor(None)


def test_array_protocol_and_len():
    buf = _buffer()
    with ReadAccessor(buf) as acc:
        assert len(acc) == 3
        assert np.asarray(acc).shape == (3, 4, 5)
        c = np.array(acc)
        assert c.flags.writeable and not np.shares_memory(c, np.asarray(buf))
        with pytest.raises(ValueError):
            acc.__array__(np.float64, copy=False)


@pytest.mark.thread_unsafe  # gc.collect() collects other threads' garbage too
def test_accessor_in_a_reference_cycle_unlocks_when_collected():
    # The garbage collector once cleared the accessor's buffer reference before __dealloc__ could
    # unlock through it, so a collected cycle kept the lock forever.
    img = mitk.Image(np.zeros((3, 4)))
    acc = img.write(timeout=5)
    acc.cycle = acc
    del acc
    gc.collect()
    assert img.pixel_buffer.lock_state() == (0, False, 0)
    assert img.pixel_buffer.exports == 0
    with img.write(timeout=0):
        pass


def test_new_locked_makes_the_subclass_and_holds_the_lock():
    # The short path of Image.read()/write(): one call, the same lock and errors as the
    # constructors.
    from mitk._core.accessor import _new_locked

    class Mine(ReadAccessor):
        def __init__(self, *args):
            raise AssertionError("__init__ must not run")

    buf = _buffer()
    acc = _new_locked(Mine, buf, False)
    assert type(acc) is Mine and acc.mode == "read"
    assert buf.lock_state() == (1, False, 0) and buf.exports == 1
    with pytest.raises(mitk.LockError, match="deadlock"):
        _new_locked(WriteAccessor, buf, True)
    acc.release()
    w = _new_locked(WriteAccessor, buf, True)
    assert buf.lock_state() == (0, True, 0) and w.array.flags.writeable
    w.release()
    assert buf.lock_state() == (0, False, 0) and buf.exports == 0


def test_new_locked_refuses_what_the_constructors_refuse():
    from mitk._core.accessor import _new_locked

    with pytest.raises(TypeError):
        _new_locked(WriteAccessor, _buffer(), False)  # not a ReadAccessor type
    with pytest.raises(TypeError):
        _new_locked(ReadAccessor, None, False)
    src = np.zeros((2, 2), np.uint8)
    src.flags.writeable = False
    with pytest.raises(mitk.ArgumentError, match="read-only"):
        _new_locked(WriteAccessor, PixelBuffer.adopt(src), True)
