"""mitk.Image: construction, attributes, views, accessors, geometry, copying, bad input."""

import copy
import gc
import pickle
import sys

import numpy as np
import pytest

import mitk_testing
from mitk_testing import record_thread_starts, PIXEL_TYPES, sample_array

import mitk


def shapes_for(ndim, channels):
    base = {2: (5, 7), 3: (3, 5, 7), 4: (4, 3, 5, 7)}[ndim]
    return base + ((channels,) if channels > 1 else ())


# -- construction and round trips --------------------------------------------------------------


@pytest.mark.parametrize("name", PIXEL_TYPES)
@pytest.mark.parametrize("ndim", [2, 3, 4])
@pytest.mark.parametrize("channels", [1, 3])
def test_array_round_trip(name, ndim, channels):
    arr = sample_array(name, shapes_for(ndim, channels))
    img = mitk.Image(arr, channels=channels if channels > 1 else None)
    assert img.ndim == ndim
    assert img.shape == arr.shape
    assert img.dtype == np.dtype(name)
    assert img.channels == channels
    assert img.time_steps == (arr.shape[0] if ndim == 4 else 1)
    assert img.nbytes == arr.nbytes
    assert img.pixel_type == mitk.PixelType(np.dtype(name), channels)
    out = img.as_numpy()
    assert out.dtype == arr.dtype and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)
    assert not np.shares_memory(out, arr)  # copy=True copies
    assert out.flags.c_contiguous and out.flags.aligned
    assert img.pixel_buffer.address % 64 == 0
    back = pickle.loads(pickle.dumps(img, protocol=5))
    np.testing.assert_array_equal(back.array, arr)
    assert back.channels == channels and back.ndim == ndim
    if ndim == 4:
        for t in range(arr.shape[0]):
            frame = img.as_numpy(time_step=t)
            assert frame.shape == arr.shape[1:]
            np.testing.assert_array_equal(frame, arr[t])
            with img.read(time_step=t) as acc:
                np.testing.assert_array_equal(acc.array, arr[t])


@pytest.mark.parametrize("layout", ["fortran", "strided", "negative", "swapped"])
def test_any_layout_is_copied_correctly(layout):
    base = sample_array("int32", (6, 8, 10))
    arr = {
        "fortran": np.asfortranarray(base),
        "strided": base[::2, :, ::3],
        "negative": base[::-1, ::-1],
        "swapped": base.astype(base.dtype.newbyteorder(">")),
    }[layout]
    img = mitk.Image(arr)
    np.testing.assert_array_equal(img.array, arr)
    assert img.dtype.isnative
    assert img.array.flags.c_contiguous


def test_copy_false_adopts_and_shares():
    arr = np.zeros((4, 5, 6), np.float32)
    img = mitk.Image(arr, copy=False)
    assert np.shares_memory(img.array, arr)
    arr[1, 2, 3] = 9
    assert img.array[1, 2, 3] == 9
    img.as_numpy(writeable=True)[0, 0, 0] = 4
    assert arr[0, 0, 0] == 4
    del arr
    gc.collect()
    assert img.array[1, 2, 3] == 9  # the image keeps the array alive


@pytest.mark.parametrize("arr,condition", [
    (np.zeros((4, 6), np.float32)[:, ::2], "C-contiguous"),
    (np.zeros((4, 6), ">f4"), "native byte order"),
    (np.asfortranarray(np.zeros((4, 6), np.float32)), "C-contiguous"),
    (np.frombuffer(bytearray(4 * 6 * 4 + 1), dtype=np.uint8)[1:].view(np.float32).reshape(4, 6),
     "aligned"),
])
def test_copy_false_refuses_and_names_the_condition(arr, condition):
    with pytest.raises(mitk.ArgumentError, match=condition):
        mitk.Image(arr, copy=False)
    img = mitk.Image(arr, copy=None)  # None copies when it cannot adopt
    np.testing.assert_array_equal(img.array, arr)


def test_copy_none_adopts_when_possible():
    arr = np.ones((3, 3), np.uint8)
    assert np.shares_memory(mitk.Image(arr, copy=None).array, arr)


def test_read_only_array_gives_read_only_image():
    arr = np.ones((3, 4), np.int16)
    arr.flags.writeable = False
    img = mitk.Image(arr, copy=False)
    assert img.readonly
    with pytest.raises(mitk.ArgumentError, match="read-only"):
        img.as_numpy(writeable=True)
    with pytest.raises(mitk.ArgumentError, match="read-only"):
        img.write()
    with pytest.raises(mitk.ArgumentError, match="read-only"):
        img.as_numpy(writeable=True, use_accessor=True)
    assert not mitk.Image(arr).readonly  # a copy is writable


def test_buffer_protocol_and_array_interface_sources():
    arr = np.arange(12, dtype=np.float64).reshape(3, 4)

    class Interface:
        __array_interface__ = arr.__array_interface__

    np.testing.assert_array_equal(mitk.Image(memoryview(arr)).array, arr)
    np.testing.assert_array_equal(mitk.Image(Interface()).array, arr)


def test_factories_and_defaults():
    arr = np.zeros((4, 5, 6), np.float32)
    img = mitk.Image.from_numpy(arr, spacing=(1.0, 1.0, 2.5))
    assert img.spacing == (1.0, 1.0, 2.5)
    assert img.origin == (0.0, 0.0, 0.0)
    np.testing.assert_array_equal(img.direction, np.eye(3))
    img = mitk.Image(arr, spacing=(1.0, 1.0, 2.5), origin=(0.0, 0.0, -100.0), direction=np.eye(3))
    assert img.origin == (0.0, 0.0, -100.0)


def test_initialize():
    img = mitk.Image()
    assert not img.is_initialized
    img.initialize("float32", dimensions=[64, 32, 16])
    assert img.shape == (16, 32, 64)
    assert img.get_dimensions() == (64, 32, 16)
    assert (img.array == 0).all()
    img.initialize("uint8", dimensions=[256, 256, 32], channels=3)
    assert img.shape == (32, 256, 256, 3) and img.channels == 3
    assert not img.array.any()
    img.initialize(mitk.make_pixel_type("int16", 4), [4, 5])
    assert img.shape == (5, 4, 4) and img.channels == 4
    img.initialize("float64", [2, 3, 4, 5])
    assert img.ndim == 4 and img.time_steps == 5 and img.shape == (5, 4, 3, 2)
    assert img.get_dimension(3) == 5 and img.get_dimension(7) == 1


def test_initialize_keeps_properties_and_resets_geometry():
    img = mitk.Image(np.zeros((3, 3, 3)), spacing=(2, 2, 2))
    img.properties["name"] = "x"
    img.initialize("int8", [2, 2, 2])
    assert img.properties["name"] == "x"
    assert img.spacing == (1.0, 1.0, 1.0)


def test_initialize_while_exported_raises_and_changes_nothing():
    img = mitk.Image(np.ones((3, 4)))
    view = img.as_numpy()
    with pytest.raises(BufferError, match="alive"):
        img.initialize("uint8", [5, 5])
    assert img.shape == (3, 4)
    del view
    acc = img.read()
    with pytest.raises(BufferError):
        img.initialize("uint8", [5, 5])
    acc.release()
    img.initialize("uint8", [5, 5])
    assert img.shape == (5, 5)


def test_repr():
    assert repr(mitk.Image()) == "<mitk.Image (uninitialized)>"
    img = mitk.Image(np.zeros((64, 64, 64), np.float32), spacing=(1.0, 1.0, 2.5))
    assert repr(img) == ("<mitk.Image shape=(64, 64, 64) dtype=float32 channels=1 "
                         "spacing=(1.0, 1.0, 2.5) time_steps=1>")


def test_no_arithmetic_len_or_iteration():
    img = mitk.Image(np.zeros((2, 2)))
    with pytest.raises(TypeError):
        len(img)
    with pytest.raises(TypeError):
        iter(img)
    with pytest.raises(TypeError):
        img + 1
    assert img == img and img != mitk.Image(np.zeros((2, 2)))


def test_unknown_attributes_are_read_only():
    img = mitk.Image(np.zeros((2, 2)))
    with pytest.raises(AttributeError):
        img.shape = (1, 1)
    with pytest.raises(AttributeError):
        img.foo = 1


# -- views ---------------------------------------------------------------------------------------


def test_direct_views():
    arr = sample_array("float32", (3, 4, 5))
    img = mitk.Image(arr)
    ro = img.as_numpy()
    assert not ro.flags.writeable
    with pytest.raises(ValueError):
        ro.flags.writeable = True
    assert not img.array.flags.writeable
    a = np.asarray(img)
    assert not a.flags.writeable and np.shares_memory(a, ro)
    rw = img.as_numpy(writeable=True)
    rw[0, 0, 0] = 123
    assert img.array[0, 0, 0] == 123
    c = np.array(img)
    assert c.flags.writeable and not np.shares_memory(c, ro)
    d = np.asarray(img, dtype=np.float64)
    assert d.dtype == np.float64
    with pytest.raises(ValueError, match="copy"):
        img.__array__(np.float64, copy=False)
    assert np.shares_memory(img.__array__(copy=False), ro)
    # Reshaping one view in place (deprecated in NumPy 2.5, still possible) does not affect the
    # next one: each call returns a new ndarray object.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ro.shape = (60,)
    assert img.as_numpy().shape == (3, 4, 5)


def test_np_asarray_survives_del_img():
    img = mitk.Image(np.full((4, 4), 3, np.uint8))
    arr = np.asarray(img)
    del img
    gc.collect()
    assert (arr == 3).all()


def test_frame_views_of_4d():
    arr = sample_array("int16", (5, 2, 3, 4))
    img = mitk.Image(arr)
    for t in range(5):
        v = img.as_numpy(writeable=True, time_step=t)
        assert v.shape == (2, 3, 4)
        v[...] = 100 + t
    full = img.array
    for t in range(5):
        assert (full[t] == 100 + t).all()
    with img.write(time_step=2) as acc:
        acc[...] = -7
    assert (img.array[2] == -7).all() and (img.array[1] == 101).all() and (img.array[3] == 103).all()
    v = img.as_numpy(use_accessor=True, writeable=True, time_step=4)
    v[0, 0, 0] = 55
    del v
    assert img.array[4, 0, 0, 0] == 55 and img.array[3, 0, 0, 0] == 103


def test_time_step_rules():
    img4 = mitk.Image(np.zeros((3, 2, 2, 2)))
    img3 = mitk.Image(np.zeros((2, 2, 2)))
    assert img3.as_numpy(time_step=0).shape == (2, 2, 2)
    for bad in (3, -1, 100):
        with pytest.raises(mitk.TimeStepError, match=str(bad)):
            img4.as_numpy(time_step=bad)
    with pytest.raises(mitk.TimeStepError):
        img3.as_numpy(time_step=1)
    for bad in (1.0, True):
        with pytest.raises(TypeError):
            img4.as_numpy(time_step=bad)
    with pytest.raises(mitk.TimeStepError):
        img4.get_geometry(3)
    with pytest.raises(mitk.TimeStepError):
        img4.read(time_step=5)


def test_accessor_views_hold_locks():
    img = mitk.Image(np.zeros((4, 4), np.float32))
    buf = img.pixel_buffer
    v = img.as_numpy(use_accessor=True)
    assert buf.lock_state()[0] == 1 and not v.flags.writeable
    w = v[1:]
    del v
    assert buf.lock_state()[0] == 1
    del w
    gc.collect()
    assert buf.lock_state() == (0, False, 0)
    v = img.as_numpy(use_accessor=True, writeable=True)
    v[...] = 2
    assert buf.lock_state()[1]
    with pytest.raises(mitk.LockError):
        img.as_numpy(use_accessor=True)
    del v
    assert (img.array == 2).all()


def test_read_write_context_managers():
    img = mitk.Image(np.zeros((3, 3), np.int32))
    with img.write(timeout=1) as acc:
        assert isinstance(acc, mitk.ImageWriteAccessor)
        acc[1, 1] = 5
        acc.array[0] = 1
        assert len(acc) == 3
    assert acc.released
    with img.read() as acc:
        assert isinstance(acc, mitk.ImageReadAccessor)
        assert acc[1, 1] == 5 and np.asarray(acc)[0, 2] == 1
        with pytest.raises(TypeError):
            acc[0, 0] = 3
    acc = mitk.ImageReadAccessor(img, timeout=0)
    acc.release()
    assert acc.released


def test_views_of_temporaries():
    v = mitk.Image(np.full((3, 3), 9.0)).as_numpy()
    gc.collect()
    assert (v == 9.0).all()


# -- geometry -----------------------------------------------------------------------------------


def test_geometry_properties():
    img = mitk.Image(np.zeros((4, 5, 6)), spacing=(0.5, 0.75, 2.0), origin=(10, -20, 30))
    assert img.spacing == (0.5, 0.75, 2.0)
    assert img.get_spacing() == (0.5, 0.75, 2.0)
    assert img.origin == (10.0, -20.0, 30.0)
    assert img.direction_cosines == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    np.testing.assert_allclose(img.affine, [[0.5, 0, 0, 10], [0, 0.75, 0, -20], [0, 0, 2, 30],
                                            [0, 0, 0, 1]])
    np.testing.assert_allclose(tuple(img.index_to_world((2, 4, 1))), (11.0, -17.0, 32.0))
    np.testing.assert_allclose(tuple(img.world_to_index((11.0, -17.0, 32.0))), (2, 4, 1))
    d = img.direction
    with pytest.raises(ValueError, match="read-only"):
        d[0, 0] = 5  # a copy: writing it could not change the image (issue 20)
    d = d.copy()
    d[0, 0] = 5
    assert img.direction[0, 0] == 1.0


def test_sheared_direction_is_kept_exactly():
    shear = np.array([[1.0, 0.3, 0.0], [0.0, 1.0, 0.0], [0.0, 0.2, 2.0]])
    img = mitk.Image(np.zeros((2, 2, 2)), direction=shear)
    np.testing.assert_array_equal(img.direction, shear)


def test_2d_geometry_accepts_2_entries():
    img = mitk.Image(np.zeros((4, 5)), spacing=(0.5, 2.0), origin=(1, 2),
                     direction=[[0, 1], [1, 0]])
    assert img.spacing == (0.5, 2.0, 1.0)
    assert img.origin == (1.0, 2.0, 0.0)
    np.testing.assert_array_equal(img.direction, [[0, 1, 0], [1, 0, 0], [0, 0, 1]])


def test_per_time_step_geometry():
    img = mitk.Image(np.zeros((3, 2, 2, 2)))
    img.set_spacing((0.8, 0.8, 1.5), time_step=0)
    assert img.get_spacing(0) == (0.8, 0.8, 1.5)
    assert img.get_spacing(1) == (1.0, 1.0, 1.0)
    img.spacing = (2, 2, 2)  # assignment sets every step
    assert all(img.get_spacing(t) == (2.0, 2.0, 2.0) for t in range(3))
    img.set_origin((1, 2, 3), time_step=None)
    assert all(img.get_origin(t) == (1.0, 2.0, 3.0) for t in range(3))
    g = img.get_geometry(2)
    g.spacing = (3, 3, 3)  # live
    assert img.get_spacing(2) == (3.0, 3.0, 3.0)
    tg = img.time_geometry
    assert tg.count_time_steps() == 3


def test_set_time_geometry():
    img = mitk.Image(np.zeros((3, 2, 2, 2)))
    tg = mitk.ProportionalTimeGeometry.from_geometry(mitk.Geometry3D.new(), 3,
                                                     first_time_point=10.0, step_duration=5.0)
    img.set_time_geometry(tg)
    assert img.time_geometry.time_step_to_time_point(1) == 15.0
    with pytest.raises(mitk.ArgumentError):
        img.set_time_geometry(mitk.ProportionalTimeGeometry.from_geometry(
            mitk.Geometry3D.new(), 2))


@pytest.mark.parametrize("kwargs", [
    {"spacing": (1, 1)}, {"spacing": (1, 1, 1, 1)}, {"spacing": (1, 0, 1)},
    {"spacing": (1, -1, 1)}, {"spacing": (1, float("nan"), 1)},
    {"origin": (1, 2)}, {"origin": (0, float("inf"), 0)},
    {"direction": np.eye(2)}, {"direction": np.zeros((3, 3))}, {"direction": np.ones((3, 3))},
    {"direction": np.full((3, 3), np.nan)}, {"direction": np.eye(4)},
])
def test_bad_geometry(kwargs):
    with pytest.raises(mitk.ArgumentError):
        mitk.Image(np.zeros((2, 2, 2)), **kwargs)
    img = mitk.Image(np.zeros((2, 2, 2)))
    (name, value), = kwargs.items()
    with pytest.raises(mitk.ArgumentError):
        setattr(img, name, value)
    assert img.spacing == (1.0, 1.0, 1.0) and img.origin == (0.0, 0.0, 0.0)


def test_get_dimension_rules():
    img = mitk.Image(np.zeros((4, 5, 6)))
    assert [img.get_dimension(i) for i in range(4)] == [6, 5, 4, 1]
    with pytest.raises(mitk.ArgumentError):
        img.get_dimension(-1)


# -- copying and transport ------------------------------------------------------------------------


def _assert_same(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype and a.channels == b.channels
    np.testing.assert_array_equal(a.array, b.array)
    for t in range(a.time_steps):
        assert a.get_geometry(t) == b.get_geometry(t)
    assert dict(a.properties) == dict(b.properties)
    assert a.time_geometry == b.time_geometry


def _rich_image():
    img = mitk.Image(sample_array("float32", (3, 2, 4, 5)), spacing=(0.5, 0.6, 0.7),
                     origin=(1, 2, 3))
    img.set_spacing((0.9, 0.9, 0.9), time_step=1)
    img.properties["patient"] = "anon"
    img.properties["count"] = 3
    return img


@pytest.mark.parametrize("how", ["copy", "copy.copy", "copy.deepcopy"])
def test_copies_are_independent(how):
    img = _rich_image()
    other = {"copy": img.copy, "copy.copy": lambda: copy.copy(img),
             "copy.deepcopy": lambda: copy.deepcopy(img)}[how]()
    _assert_same(img, other)
    other.as_numpy(writeable=True)[...] = 0
    other.spacing = (5, 5, 5)
    other.properties["patient"] = "changed"
    assert img.array.any() and img.spacing == (0.5, 0.6, 0.7)
    assert img.properties["patient"] == "anon"
    assert not copy.copy(mitk.Image()).is_initialized


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_pickle_keeps_everything(protocol):
    img = _rich_image()
    back = pickle.loads(pickle.dumps(img, protocol=protocol))
    _assert_same(img, back)
    assert not back.readonly


def test_pickle_protocol_5_out_of_band():
    img = _rich_image()
    buffers = []
    data = pickle.dumps(img, protocol=5, buffer_callback=buffers.append)
    assert len(buffers) == 1
    assert len(data) < 4096  # the pixels are not in band
    back = pickle.loads(data, buffers=buffers)
    _assert_same(img, back)
    assert np.shares_memory(back.array, img.array)  # used as given: zero-copy


def test_pickle_read_only_stays_read_only():
    arr = np.ones((3, 3), np.uint8)
    arr.flags.writeable = False
    img = mitk.Image(arr, copy=False)
    buffers = []
    data = pickle.dumps(img, protocol=5, buffer_callback=buffers.append)
    assert pickle.loads(data, buffers=buffers).readonly


def test_pickle_empty_image():
    back = pickle.loads(pickle.dumps(mitk.Image(), protocol=5))
    assert not back.is_initialized


def test_pickle_through_a_multiprocessing_child():
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    # The child's function lives in an importable module (spawn imports it by name).
    p = ctx.Process(target=mitk_testing.change_image_in_child, args=(child,))
    p.start()
    img = _rich_image()
    parent.send(img)
    back = parent.recv() if parent.poll(60) else None
    p.join(60)
    assert not p.is_alive()
    assert back is not None
    assert back.array[0, 0, 0, 0] == 99
    assert back.spacing == (7.0, 7.0, 7.0)
    assert back.properties["from"] == "child" and back.properties["patient"] == "anon"
    np.testing.assert_array_equal(back.array[1:], img.array[1:])


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", [12345, [[1]], 3.5, {"a": 1}, object()])
def test_bad_sources_are_type_errors(source):
    with pytest.raises(TypeError, match="Image"):
        mitk.Image(source)


def test_image_of_image_is_type_error():
    with pytest.raises(TypeError, match="copy"):
        mitk.Image(mitk.Image(np.zeros((2, 2))))


def test_path_with_geometry_is_type_error(tmp_path):
    with pytest.raises(TypeError):
        mitk.Image(str(tmp_path / "x.nrrd"), spacing=(1, 1, 1))
    with pytest.raises(TypeError):
        mitk.Image(tmp_path / "x.nrrd", copy=False)


@pytest.mark.parametrize("shape", [(5,), (), (1, 2, 3, 4, 5), (2, 3, 4, 5, 6, 7)])
def test_bad_axis_counts(shape):
    with pytest.raises(mitk.ArgumentError, match="2 to 4"):
        mitk.Image(np.zeros(shape))


@pytest.mark.parametrize("shape", [(0, 3), (3, 0, 2), (1, 1, 0, 1)])
def test_zero_sizes(shape):
    with pytest.raises(mitk.ArgumentError, match="size"):
        mitk.Image(np.zeros(shape))


def test_channel_errors():
    with pytest.raises(mitk.ArgumentError, match="channels"):
        mitk.Image(np.zeros((4, 4, 2)), channels=3)
    with pytest.raises(mitk.ArgumentError):
        mitk.Image(np.zeros((4, 4)), channels=0)
    with pytest.raises(TypeError):
        mitk.Image(np.zeros((4, 4, 3)), channels=3.0)
    with pytest.raises(mitk.ArgumentError, match="2 to 4"):
        mitk.Image(np.zeros((4, 3)), channels=3)  # one image axis left


@pytest.mark.parametrize("dtype", [object, "U4", "S2", [("a", "f4")], "M8[s]"])
def test_unsupported_dtypes(dtype):
    with pytest.raises(TypeError, match="supported"):
        mitk.Image(np.zeros((2, 2), dtype=dtype))
    with pytest.raises(TypeError):
        mitk.Image().initialize(dtype, [2, 2])


def test_bad_initialize():
    img = mitk.Image()
    with pytest.raises(TypeError):
        img.initialize("floaty", [2, 2])
    with pytest.raises(mitk.ArgumentError, match="2 to 4"):
        img.initialize("float32", [2])
    with pytest.raises(mitk.ArgumentError, match="2 to 4"):
        img.initialize("float32", [2, 2, 2, 2, 2])
    with pytest.raises(mitk.ArgumentError):
        img.initialize("float32", [2, 0])
    with pytest.raises(mitk.ArgumentError):
        img.initialize("float32", [2, -3])
    with pytest.raises(TypeError):
        img.initialize("float32", [2, 2.5])
    with pytest.raises(mitk.ArgumentError):
        img.initialize("float32", [2, 2], channels=0)
    with pytest.raises(mitk.ArgumentError):
        img.initialize(mitk.make_pixel_type("uint8", 3), [2, 2], channels=4)
    with pytest.raises((mitk.ArgumentError, MemoryError)):
        img.initialize("float64", [2**31, 2**31, 2**31])
    assert not img.is_initialized


def test_uninitialized_image_raises_everywhere():
    img = mitk.Image()
    for name in ("shape", "ndim", "dtype", "array", "spacing", "origin", "direction",
                 "time_steps", "time_geometry", "nbytes", "channels", "pixel_buffer", "affine"):
        with pytest.raises(mitk.NotInitializedError, match="initialize"):
            getattr(img, name)
    for call in (img.as_numpy, img.read, img.write, img.copy().as_numpy,
                 lambda: np.asarray(img), lambda: img.get_geometry(0),
                 lambda: img.save("x.nrrd")):
        with pytest.raises(mitk.NotInitializedError):
            call()
    assert img.properties is not None and repr(img) == "<mitk.Image (uninitialized)>"


def test_bad_timeouts_on_image():
    img = mitk.Image(np.zeros((2, 2)))
    with pytest.raises(mitk.ArgumentError):
        img.read(timeout=-1)
    with pytest.raises(mitk.ArgumentError):
        img.as_numpy(use_accessor=True, timeout=float("nan"))


def test_nothing_is_printed(capfd):
    img = mitk.Image(np.zeros((3, 3)))
    img.as_numpy(use_accessor=True)
    with pytest.raises(mitk.ArgumentError):
        mitk.Image(np.zeros(3))
    out, err = capfd.readouterr()
    assert out == "" and err == ""


# -- issue 22 item 11: timeouts that do not fit a float ----------------------------------------


@pytest.mark.parametrize("timeout", [10**400, -10**400, 10**5000], ids=["big", "-big", "huge"])
def test_timeouts_beyond_float_are_argument_errors(timeout, tmp_path):
    from decimal import Decimal

    img = mitk.Image(np.zeros((2, 2)))
    for value in (timeout, Decimal("sNaN"), Decimal("NaN"), Decimal("-1")):
        for call in (lambda: img.read(timeout=value), lambda: img.write(timeout=value),
                     lambda: img.as_numpy(use_accessor=True, timeout=value),
                     lambda: mitk.ImageReadAccessor(img, value),
                     lambda: img.save(tmp_path / "t.nrrd", timeout=value)):
            with pytest.raises(mitk.ArgumentError, match="timeout"):
                call()
    assert not (tmp_path / "t.nrrd").exists()
    assert img.pixel_buffer.lock_state() == (0, False, 0)


def test_timeout_types():
    from decimal import Decimal
    from fractions import Fraction

    img = mitk.Image(np.zeros((2, 2)))
    for ok in (0, 0.5, np.float32(1), Decimal("0.1"), Fraction(1, 3), float("inf")):
        with img.read(timeout=ok):
            pass
    for bad in (True, "1", b"1", 1j, [1]):
        with pytest.raises(TypeError, match="timeout"):
            img.read(timeout=bad)


# -- issue 22 item 3: sizes are checked before anything is built for them -----------------------

_HUGE_INITIALIZE = """
import numpy as np
import mitk
try:  # a cap, so that building per-step state for 2**40 steps fails fast instead of swapping
    import resource
    # 1 GiB above what the interpreter has mapped once numpy and mitk are imported: a free-threaded
    # build maps about 1 GiB more than a default one at start-up (mimalloc's arenas), so a fixed
    # cap that suits one build refuses the other's shared objects.
    with open("/proc/self/status") as status:
        mapped = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    cap = mapped + (1 << 30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
except (ImportError, ValueError, OSError, StopIteration):  # Windows, macOS
    pass
img = mitk.Image()
try:
    img.initialize(np.uint8, (2**40,) * 4)
except mitk.ArgumentError as exc:
    print("ArgumentError", exc)
print(img.is_initialized)
"""


def test_initialize_checks_the_size_product_first():
    # Issue 22: per-step geometries were built before the size check (MemoryError after 19-38 s
    # under a 4 GB cap).  A child allowed 1 GiB more address space must get ArgumentError.
    import subprocess

    import os

    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", _HUGE_INITIALIZE], capture_output=True,
                         text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("ArgumentError") and "address space" in out.stdout
    assert out.stdout.endswith("False\n")


def test_initialize_with_many_steps_is_cheap():
    img = mitk.Image()
    img.initialize(np.uint8, (1, 1, 1, 10**6))
    assert img.time_steps == 10**6 and len(img.time_geometry._table[1]) == 0
    assert img.get_geometry(10**6 - 1).extent == (1, 1, 1)


# -- issue 22 item 14: Image.__new__ and bool geometry ------------------------------------------


def test_new_without_init_is_an_empty_image():
    img = mitk.Image.__new__(mitk.Image)
    assert not img.is_initialized and repr(img) == "<mitk.Image (uninitialized)>"
    assert dict(img.properties.items()) == {}
    with pytest.raises(mitk.NotInitializedError):
        img.shape
    assert not img.copy().is_initialized
    assert not pickle.loads(pickle.dumps(img)).is_initialized
    img.initialize(np.uint8, (2, 3))
    assert img.shape == (3, 2)


@pytest.mark.parametrize("name, value", [
    ("spacing", (True, 1, 1)), ("spacing", [1, np.bool_(True), 1]), ("origin", (0, 0, False)),
    ("direction", [[True, 0, 0], [0, 1, 0], [0, 0, 1]]), ("spacing", np.ones(3, bool)),
])
def test_bool_geometry_is_a_type_error(name, value):
    with pytest.raises(TypeError, match="bool"):
        mitk.Image(np.zeros((2, 2, 2)), **{name: value})
    img = mitk.Image(np.zeros((2, 2, 2)))
    with pytest.raises(TypeError):
        setattr(img, name, value)
    with pytest.raises(TypeError):
        setattr(img.get_geometry(0), name, value)
    assert img.spacing == (1.0, 1.0, 1.0) and img.origin == (0.0, 0.0, 0.0)


# -- issue 20: geometry never changed through another image; like= ------------------------------


def test_set_time_geometry_copies():
    a = mitk.Image(np.zeros((3, 4, 5, 6)), spacing=(2, 2, 2))
    b = mitk.Image(np.zeros((3, 2, 2, 2)))
    b.set_time_geometry(a.time_geometry)
    assert a.get_geometry(0).extent == (6, 5, 4)  # not resized to b's grid
    assert b.get_geometry(0).extent == (2, 2, 2) and b.spacing == (2.0, 2.0, 2.0)
    assert b.time_geometry is not a.time_geometry
    b.spacing = (5, 5, 5)
    b.get_geometry(1).origin = (1, 1, 1)
    assert a.spacing == (2.0, 2.0, 2.0) and a.get_origin(1) == (0.0, 0.0, 0.0)
    a.spacing = (7, 7, 7)
    assert b.spacing == (5.0, 5.0, 5.0)


def test_like_takes_the_whole_geometry():
    shear = [[1.0, 0.3, 0.0], [0.0, 1.0, 0.0], [0.0, 0.2, 2.0]]
    src = mitk.Image(np.zeros((3, 4, 5, 6)), spacing=(0.5, 0.6, 0.7), origin=(1, 2, 3),
                     direction=shear)
    src.time_geometry.first_time_point = 10.0
    src.time_geometry.step_duration = 2.5
    src.set_origin((9, 9, 9), time_step=2)
    new = mitk.Image(np.ones((3, 2, 2, 2), np.uint8), like=src)
    assert new.spacing == src.spacing and new.origin == src.origin
    np.testing.assert_array_equal(new.direction, shear)
    assert new.get_origin(2) == (9.0, 9.0, 9.0)
    assert new.time_geometry.get_time_bounds(1) == (12.5, 15.0)
    assert new.get_geometry(1).extent == (2, 2, 2) and src.get_geometry(1).extent == (6, 5, 4)
    new.spacing = (3, 3, 3)  # a copy: src is untouched
    assert src.spacing == (0.5, 0.6, 0.7)
    same = mitk.Image.from_numpy(np.zeros((3, 4, 5, 6)), like=src)
    assert same.time_geometry == src.time_geometry


def test_like_with_explicit_geometry_and_other_kinds():
    src = mitk.Image(np.zeros((4, 5, 6)), spacing=(2, 2, 2), origin=(1, 1, 1))
    new = mitk.Image(np.zeros((4, 5, 6)), like=src, origin=(5, 5, 5))
    assert new.spacing == (2.0, 2.0, 2.0) and new.origin == (5.0, 5.0, 5.0)
    flat = mitk.Image(np.zeros((5, 6)), like=src)  # 3D geometry on a 2D grid: sz stays
    assert flat.spacing == (2.0, 2.0, 2.0) and flat.get_geometry(0).extent == (6, 5, 1)
    one_frame = mitk.Image(np.zeros((1, 4, 5, 6)), like=src)  # one step either way
    assert one_frame.time_steps == 1 and one_frame.spacing == (2.0, 2.0, 2.0)
    assert not one_frame.time_geometry.static

    class Described:  # anything with spacing, origin and direction (e.g. a LazyImage)
        spacing, origin, direction = (3, 3, 3), (0, 1, 2), np.eye(3)

    ducked = mitk.Image(np.zeros((2, 4, 5, 6)), like=Described())
    assert ducked.get_spacing(1) == (3.0, 3.0, 3.0) and ducked.get_origin(1) == (0.0, 1.0, 2.0)


def test_like_errors():
    src = mitk.Image(np.zeros((3, 4, 5, 6)))
    with pytest.raises(mitk.ArgumentError, match="3 time steps but the array has 2"):
        mitk.Image(np.zeros((2, 4, 5, 6)), like=src)
    with pytest.raises(mitk.ArgumentError, match="3 time steps but the array has 1"):
        mitk.Image(np.zeros((4, 5, 6)), like=src)
    with pytest.raises(TypeError, match="like"):
        mitk.Image(np.zeros((4, 5, 6)), like=42)
    with pytest.raises(mitk.NotInitializedError):
        mitk.Image(np.zeros((4, 5, 6)), like=mitk.Image())
    with pytest.raises(TypeError):
        mitk.Image(like=src)


def test_in_place_edits_of_returned_values_raise():
    img = mitk.Image(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="read-only"):
        img.direction[0, 0] = -1
    with pytest.raises(ValueError, match="read-only"):
        img.affine[0, 0] = 2
    with pytest.raises(TypeError, match="read-only copy"):
        img.get_geometry(0).spacing[0] = 3.0
    with pytest.raises(TypeError, match="read-only copy"):
        img.get_geometry(0).origin.x = 7
    assert img.spacing == (1.0, 1.0, 1.0) and img.origin == (0.0, 0.0, 0.0)
    img.get_geometry(0).origin = (7, 0, 0)  # assignment is the way, and it is live
    assert img.origin == (7.0, 0.0, 0.0)


@pytest.mark.thread_unsafe  # patches the module's thread count
@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_large_copies_follow_the_one_thread_count(monkeypatch, threads):
    import mitk._parallel_copy as parallel_copy

    monkeypatch.setattr(parallel_copy, "copy_threads", lambda: threads)
    started = record_thread_starts(monkeypatch)
    src = np.arange(5 * (1 << 20), dtype=">f8").reshape(5, -1)[:, ::-1]  # 40 MB, any layout
    img = mitk.Image(src)
    np.testing.assert_array_equal(img.array, src)
    np.testing.assert_array_equal(img.copy().array, src)
    assert started.count("mitk-copy") == 2 * (min(threads, 5) - 1)
