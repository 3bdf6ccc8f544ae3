"""mitk.geometry: validation helpers, Point3D/Vector3D, Geometry3D mapping, corners, copies."""

import copy
import math
import pickle
import threading
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mitk_testing import join_all, start_thread

import mitk
from mitk.geometry import (
    BaseGeometry,
    Geometry3D,
    Point3D,
    Vector3D,
    validate_direction,
    validate_origin,
    validate_spacing,
)

SHEAR = [[1.0, 0.3, 0.0], [0.0, 1.0, 0.0], [0.0, 0.2, 2.0]]


def sheared_geometry():
    """A geometry whose expected values below were worked out by hand.

    index -> world is ``(1 + 0.5 i + 0.6 j, 2 + 2 j, 3 + 0.4 j + 6 k)``: the columns of
    ``direction @ diag(spacing)`` are (0.5, 0, 0), (0.6, 2, 0.4) and (0, 0, 6).
    """
    return Geometry3D(spacing=(0.5, 2.0, 3.0), origin=(1.0, 2.0, 3.0), direction=SHEAR,
                      extent=(4, 5, 6))


# -- validate_spacing / validate_origin -----------------------------------------------------------


@pytest.mark.parametrize("value", [
    (0.5, 2, 3), [0.5, 2, 3], np.array([0.5, 2, 3]), np.array([0.5, 2, 3], dtype=np.float32),
    Vector3D(0.5, 2, 3), Point3D(0.5, 2, 3), (Fraction(1, 2), 2, 3), (np.float64(0.5), 2, 3),
])
def test_validate_spacing_accepts_sequences(value):
    result = validate_spacing(value, 3)
    assert result == (0.5, 2.0, 3.0)
    assert type(result) is tuple and all(type(v) is float for v in result)


def test_validate_spacing_2d_pads_z_with_one():
    assert validate_spacing((0.5, 2), 2) == (0.5, 2.0, 1.0)
    assert validate_spacing((0.5, 2, 4), 2) == (0.5, 2.0, 4.0)
    assert validate_origin((-1, 2), 2) == (-1.0, 2.0, 0.0)
    assert validate_origin((-1, 2, 5), 2) == (-1.0, 2.0, 5.0)


@pytest.mark.parametrize("ndim", [3, 4])
def test_validate_spacing_needs_three_entries_for_3d_and_4d(ndim):
    with pytest.raises(mitk.ArgumentError, match=r"spacing \(1, 2\).*expected 3 entries"):
        validate_spacing((1, 2), ndim)
    with pytest.raises(mitk.ArgumentError, match=r"origin"):
        validate_origin((1, 2), ndim)


@pytest.mark.parametrize("value", [(1, 1), (1, 1, 1, 1), (), [[1, 1, 1]], 2.0])
def test_validate_spacing_wrong_length(value):
    with pytest.raises(mitk.ArgumentError, match="spacing"):
        validate_spacing(value, 3)


@pytest.mark.parametrize("value", [(1, 1, 1, 1), (1,), [[1, 2]]])
def test_validate_2d_wrong_length(value):
    with pytest.raises(mitk.ArgumentError, match="2 or 3 entries"):
        validate_spacing(value, 2)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), -float("inf")])
def test_validate_spacing_bad_values(bad):
    with pytest.raises(mitk.ArgumentError) as info:
        validate_spacing((1.0, bad, 1.0), 3)
    message = str(info.value)
    assert "spacing" in message and "> 0" in message and str(bad) in message


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_validate_origin_bad_values(bad):
    with pytest.raises(mitk.ArgumentError, match="origin.*finite"):
        validate_origin((0.0, 0.0, bad), 3)


def test_validate_origin_accepts_negative_and_zero():
    assert validate_origin((-5, 0, 1e6)) == (-5.0, 0.0, 1e6)


@pytest.mark.parametrize("value", [
    "abc", "1 2 3", b"123", None, object(), ("1", "2", "3"), (1, None, 1), (True, True, True),
    (1 + 2j, 1, 1), {"x": 1}, {1, 2, 3},
])
def test_validate_non_numbers_are_type_errors(value):
    with pytest.raises(TypeError, match="spacing"):
        validate_spacing(value, 3)
    with pytest.raises(TypeError, match="origin"):
        validate_origin(value, 3)


def test_validate_ragged_is_argument_error():
    with pytest.raises(mitk.ArgumentError, match="direction"):
        validate_direction([[1, 0, 0], [0, 1], [0, 0, 1]])


def test_validate_uses_the_given_name():
    with pytest.raises(mitk.ArgumentError, match="voxel_size"):
        validate_spacing((0, 1, 1), 3, name="voxel_size")
    with pytest.raises(TypeError, match="position"):
        validate_origin("x", 3, name="position")
    with pytest.raises(mitk.ArgumentError, match="matrix_in"):
        validate_direction(np.zeros((3, 3)), 3, name="matrix_in")


@pytest.mark.parametrize("ndim", [0, 1, 5, 2.0, True])
def test_validate_rejects_bad_image_dimension(ndim):
    with pytest.raises(mitk.ArgumentError, match="ndim"):
        validate_spacing((1, 1, 1), ndim)


def test_errors_are_value_errors_of_the_mitk_family():
    with pytest.raises(ValueError):
        validate_spacing((1, -1, 1))
    with pytest.raises(mitk.Exception):
        validate_origin((1, 1))


# -- validate_direction -----------------------------------------------------------------------


def test_validate_direction_keeps_values_exactly_and_copies():
    given_matrix = np.array([[2.0, 0.3, 0.0], [0.0, 1.0, 0.0], [0.0, 0.2, 5.0]])
    result = validate_direction(given_matrix)
    assert result.dtype == np.float64 and result.shape == (3, 3)
    np.testing.assert_array_equal(result, given_matrix)  # never normalised
    assert result is not given_matrix and not np.shares_memory(result, given_matrix)
    result[0, 0] = 7.0
    assert given_matrix[0, 0] == 2.0
    assert result.flags.writeable


def test_validate_direction_accepts_lists_and_int_arrays():
    np.testing.assert_array_equal(validate_direction([[0, 1, 0], [1, 0, 0], [0, 0, 1]]),
                                  [[0, 1, 0], [1, 0, 0], [0, 0, 1]])
    assert validate_direction(np.eye(3, dtype=np.int32)).dtype == np.float64


def test_validate_direction_2d_pads_with_identity():
    result = validate_direction([[0, -1], [1, 0]], 2)
    np.testing.assert_array_equal(result, [[0, -1, 0], [1, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(validate_direction(np.eye(3) * 2, 2), np.eye(3) * 2)


@pytest.mark.parametrize("matrix", [np.eye(2), np.eye(4), np.ones(3), np.ones((3, 2))])
def test_validate_direction_wrong_shape(matrix):
    with pytest.raises(mitk.ArgumentError, match=r"direction .*shape.*expected a 3x3 matrix"):
        validate_direction(matrix, 3)


@pytest.mark.parametrize("matrix", [
    np.zeros((3, 3)),
    np.ones((3, 3)),
    [[1, 0, 0], [0, 1, 0], [0, 0, 0]],  # a zero column
    [[1, 2, 3], [2, 4, 6], [0, 0, 1]],  # rank 2
    [[1, 0, 1], [0, 1, 1], [0, 0, 1e-13]],  # |det| / prod(norms) below 1e-12
])
def test_validate_direction_singular(matrix):
    with pytest.raises(mitk.ArgumentError, match="singular"):
        validate_direction(matrix)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_validate_direction_non_finite(bad):
    matrix = np.eye(3)
    matrix[1, 2] = bad
    with pytest.raises(mitk.ArgumentError, match="direction.*finite"):
        validate_direction(matrix)


def test_validate_direction_singularity_is_relative_to_scale():
    # The criterion is scale-free: tiny or huge but well-conditioned matrices are valid.
    for scale in (1e-200, 1e-8, 1e8, 1e200):
        np.testing.assert_array_equal(validate_direction(np.eye(3) * scale), np.eye(3) * scale)
    # Nearly parallel columns just above the threshold are kept, just below are refused.
    ok = [[1, 1, 0], [0, 1e-11, 0], [0, 0, 1]]
    np.testing.assert_array_equal(validate_direction(ok), ok)
    with pytest.raises(mitk.ArgumentError):
        validate_direction([[1, 1, 0], [0, 1e-13, 0], [0, 0, 1]])


def test_validate_direction_non_numbers():
    with pytest.raises(TypeError, match="direction"):
        validate_direction("identity")
    with pytest.raises(TypeError, match="direction"):
        validate_direction([["1", "0", "0"], ["0", "1", "0"], ["0", "0", "1"]])
    with pytest.raises(TypeError, match="direction"):
        validate_direction(None)


# -- Point3D / Vector3D -----------------------------------------------------------------------


@pytest.mark.parametrize("cls", [Point3D, Vector3D])
def test_triple_construction(cls):
    assert tuple(cls()) == (0.0, 0.0, 0.0)
    assert tuple(cls(1, 2, 3)) == (1.0, 2.0, 3.0)
    assert tuple(cls(x=1, y=2, z=3)) == (1.0, 2.0, 3.0)
    assert tuple(cls([1, 2, 3])) == (1.0, 2.0, 3.0)
    assert tuple(cls(np.array([1, 2, 3], dtype=np.int16))) == (1.0, 2.0, 3.0)
    assert tuple(cls(Point3D(4, 5, 6))) == (4.0, 5.0, 6.0)
    assert all(type(v) is float for v in cls(np.int64(1), np.float32(2), 3))


@pytest.mark.parametrize("args", [(1,), (1, 2), (1, None, 3), ("1", 2, 3), (1, 2, "3"),
                                  ("abc",), (None, 1, 2), (True, 0, 0), (1j, 0, 0)])
def test_triple_construction_type_errors(args):
    with pytest.raises(TypeError):
        Point3D(*args)


@pytest.mark.parametrize("seq", [[1, 2], [1, 2, 3, 4], [[1, 2, 3]]])
def test_triple_construction_wrong_length(seq):
    with pytest.raises(mitk.ArgumentError, match="Vector3D needs 3 coordinates"):
        Vector3D(seq)


def test_point_indexing_and_attributes():
    p = Point3D(1, 2, 3)
    assert (p[0], p[1], p[2]) == (1.0, 2.0, 3.0)
    assert (p[-1], p[-2], p[-3]) == (3.0, 2.0, 1.0)
    assert (p.x, p.y, p.z) == (1.0, 2.0, 3.0)
    assert p[np.int64(1)] == 2.0
    p[0] = 10
    p[-1] = np.float32(30)
    p.y = 20
    assert tuple(p) == (10.0, 20.0, 30.0)
    assert all(type(v) is float for v in p)


@pytest.mark.parametrize("index", [3, -4, 100, -100])
def test_point_index_out_of_range_names_the_index(index):
    p = Point3D(1, 2, 3)
    with pytest.raises(IndexError, match=f"index {index} is out of range"):
        p[index]
    with pytest.raises(IndexError, match=str(index)):
        p[index] = 1.0


@pytest.mark.parametrize("index", [1.0, "0", None, True, slice(0, 2)])
def test_point_non_int_index(index):
    with pytest.raises(TypeError):
        Point3D(1, 2, 3)[index]


def test_point_rejects_non_number_assignment():
    p = Vector3D(1, 2, 3)
    for bad in ("4", None, [1], True):
        with pytest.raises(TypeError):
            p[0] = bad
        with pytest.raises(TypeError):
            p.z = bad
    assert tuple(p) == (1.0, 2.0, 3.0)


def test_point_sequence_protocol():
    p = Point3D(1.5, -2, 3)
    assert len(p) == 3
    assert list(p) == [1.5, -2.0, 3.0]  # upstream failed here: no index check (SPEC 9.7)
    assert tuple(p) == (1.5, -2.0, 3.0)
    x, y, z = p
    assert (x, y, z) == (1.5, -2.0, 3.0)
    assert 3.0 in p


def test_point_numpy_conversion():
    p = Point3D(1, 2, 3)
    a = np.asarray(p)
    assert a.dtype == np.float64 and a.shape == (3,)
    np.testing.assert_array_equal(a, [1, 2, 3])
    a[0] = 99  # a copy: the point is unchanged
    assert p.x == 1.0
    assert np.asarray(p, dtype=np.float32).dtype == np.float32
    assert np.asarray(p, dtype=np.dtype("int64")).dtype == np.int64
    b = np.array(p, copy=True)
    assert b.flags.writeable and b.tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="copy"):
        np.asarray(p, copy=False)
    np.testing.assert_array_equal(np.array([Point3D(1, 2, 3), Vector3D(4, 5, 6)]),
                                  [[1, 2, 3], [4, 5, 6]])


def test_point_equality():
    p = Point3D(1, 2, 3)
    assert p == (1, 2, 3) and p == [1.0, 2.0, 3.0] and p == np.array([1, 2, 3])
    assert p == Point3D(1, 2, 3) and p == Vector3D(1, 2, 3)
    assert (1, 2, 3) == p
    assert p != (1, 2, 3.5) and p != (1, 2) and p != (1, 2, 3, 4)
    assert p != "123" and p != None and p != 5 and p != ("1", "2", "3")  # noqa: E711
    assert not (p != [1, 2, 3])
    with pytest.raises(TypeError):
        hash(p)


@pytest.mark.parametrize("cls", [Point3D, Vector3D])
def test_triple_repr_pickle_and_copies(cls):
    p = cls(0.1, -2.5, 1e300)
    assert repr(p) == f"{cls.__name__}(0.1, -2.5, 1e+300)"
    assert eval(repr(p), {cls.__name__: cls}) == p
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(p, protocol))
        assert type(back) is cls and back == p
    for dup in (copy.copy(p), copy.deepcopy(p)):
        assert type(dup) is cls and dup == p and dup is not p
        dup[0] = 5.0
        assert p[0] == 0.1


# -- Geometry3D basics --------------------------------------------------------------------------


def test_base_geometry_is_abstract():
    with pytest.raises(TypeError):
        BaseGeometry()
    assert issubclass(Geometry3D, BaseGeometry)
    assert isinstance(Geometry3D(), mitk.BaseGeometry)
    assert mitk.Geometry3D is Geometry3D and mitk.Point3D is Point3D


def test_defaults_and_new():
    for g in (Geometry3D(), Geometry3D.new()):
        assert g.spacing == (1, 1, 1) and g.origin == (0, 0, 0)
        np.testing.assert_array_equal(g.direction, np.eye(3))
        assert g.extent == (1, 1, 1)
        assert g.bounds == (0.0, 1.0, 0.0, 1.0, 0.0, 1.0)
        assert g.image_geometry is True


def test_property_types_and_copies():
    g = sheared_geometry()
    spacing, origin, direction = g.spacing, g.origin, g.direction
    assert type(spacing) is Vector3D and spacing == (0.5, 2, 3)
    assert type(origin) is Point3D and origin == (1, 2, 3)
    assert direction.dtype == np.float64 and direction.shape == (3, 3)
    np.testing.assert_array_equal(direction, SHEAR)
    # Read-only copies: an item assignment could only change the copy (issue 20).
    assert spacing.readonly and origin.readonly and not direction.flags.writeable
    with pytest.raises(TypeError, match="read-only copy"):
        spacing[0] = 100.0
    with pytest.raises(TypeError, match="read-only copy"):
        origin.x = 100.0
    with pytest.raises(ValueError, match="read-only"):
        direction[0, 0] = 100.0
    with pytest.raises(ValueError):
        direction.flags.writeable = True
    mutable = Vector3D(spacing)
    mutable[0] = 100.0
    assert not mutable.readonly and mutable == (100, 2, 3)
    assert g.spacing == (0.5, 2, 3) and g.origin == (1, 2, 3)
    assert g.direction[0, 0] == 1.0


def test_setters_validate_and_replace():
    g = Geometry3D()
    g.spacing = [0.25, 0.5, 4]
    g.origin = Point3D(-1, -2, -3)
    g.direction = np.array(SHEAR) * 3  # kept exactly: columns not normalised
    assert g.spacing == (0.25, 0.5, 4.0)
    assert g.origin == (-1, -2, -3)
    np.testing.assert_array_equal(g.direction, np.array(SHEAR) * 3)
    g.spacing = Vector3D(1, 1, 1)
    assert g.spacing == (1, 1, 1)


@pytest.mark.parametrize("name, value, error", [
    ("spacing", (1, 0, 1), mitk.ArgumentError),
    ("spacing", (1, 1), mitk.ArgumentError),  # a geometry is always 3D
    ("spacing", (1, float("nan"), 1), mitk.ArgumentError),
    ("spacing", "1,1,1", TypeError),
    ("origin", (0, 0, float("inf")), mitk.ArgumentError),
    ("origin", (1, 2, 3, 4), mitk.ArgumentError),
    ("origin", None, TypeError),
    ("direction", np.zeros((3, 3)), mitk.ArgumentError),
    ("direction", np.eye(2), mitk.ArgumentError),
    ("direction", np.full((3, 3), np.nan), mitk.ArgumentError),
    ("direction", [["a"] * 3] * 3, TypeError),
])
def test_failed_assignment_changes_nothing(name, value, error):
    g = sheared_geometry()
    before = g.copy()
    with pytest.raises(error, match=name):
        setattr(g, name, value)
    assert g == before
    np.testing.assert_array_equal(g.direction, SHEAR)


@pytest.mark.parametrize("kwargs, error", [
    ({"spacing": (0, 1, 1)}, mitk.ArgumentError),
    ({"origin": (1, 1)}, mitk.ArgumentError),
    ({"direction": np.ones((3, 3))}, mitk.ArgumentError),
    ({"extent": (0, 1, 1)}, mitk.ArgumentError),
    ({"extent": (1, 1)}, mitk.ArgumentError),
    ({"extent": (1.5, 1, 1)}, TypeError),
    ({"extent": 3}, TypeError),
    ({"spacing": "x"}, TypeError),
])
def test_constructor_validates(kwargs, error):
    with pytest.raises(error):
        Geometry3D(**kwargs)


def test_extent_is_read_only_and_follows_the_image():
    g = Geometry3D(extent=(4, 5, 6))
    assert g.extent == (4, 5, 6)
    with pytest.raises(AttributeError):
        g.extent = (1, 1, 1)
    g = Geometry3D(extent=[np.int64(7), 8, 9])
    assert g.extent == (7, 8, 9) and all(type(v) is int for v in g.extent)
    assert g.bounds == (0.0, 7.0, 0.0, 8.0, 0.0, 9.0)
    with pytest.raises(mitk.ArgumentError, match="extent"):
        Geometry3D(extent=(7, 0, 9))
    with pytest.raises(TypeError, match="extent"):
        Geometry3D(extent=(7, True, 9))
    # An image's geometry has the image's sizes (MITK order), and keeps them when a time
    # geometry made for another image is set (it is copied, then fitted).
    img = mitk.Image(np.zeros((9, 8, 7), np.uint8))
    assert img.get_geometry(0).extent == (7, 8, 9)
    img.set_time_geometry(mitk.Image(np.zeros((2, 2, 2), np.uint8)).time_geometry)
    assert img.get_geometry(0).extent == (7, 8, 9)


def test_unknown_attributes_are_refused():
    g = Geometry3D()
    with pytest.raises(AttributeError):
        g.spacng = (2, 2, 2)  # a typo must not pass silently


# -- Geometry3D mapping -------------------------------------------------------------------------


def test_affine_by_hand():
    expected = [[0.5, 0.6, 0.0, 1.0], [0.0, 2.0, 0.0, 2.0], [0.0, 0.4, 6.0, 3.0],
                [0.0, 0.0, 0.0, 1.0]]
    np.testing.assert_allclose(sheared_geometry().affine, expected, rtol=0, atol=1e-15)
    a = sheared_geometry().affine
    with pytest.raises(ValueError, match="read-only"):
        a[0, 0] = 9  # a new array each time: writing it could change nothing
    assert sheared_geometry().affine[0, 0] == 0.5


def test_index_to_world_by_hand():
    g = sheared_geometry()
    world = g.index_to_world((1, 2, 3))
    assert type(world) is Point3D
    np.testing.assert_allclose(tuple(world), (2.7, 6.0, 21.8), atol=1e-12)
    np.testing.assert_allclose(tuple(g.index_to_world(Point3D(0, 0, 0))), (1, 2, 3), atol=0)
    # Unrounded: fractional indices map continuously.
    np.testing.assert_allclose(tuple(g.index_to_world([0.5, 0.25, -1])),
                               (1.4, 2.5, -2.9), atol=1e-12)


def test_vectors_map_without_the_origin():
    g = sheared_geometry()
    v = g.index_to_world(Vector3D(1, 1, 1))
    assert type(v) is Vector3D
    np.testing.assert_allclose(tuple(v), (1.1, 2.0, 6.4), atol=1e-12)
    back = g.world_to_index(v)
    assert type(back) is Vector3D
    np.testing.assert_allclose(tuple(back), (1, 1, 1), atol=1e-12)
    # A vector is a difference of points.
    p, q = g.index_to_world((3, 1, 2)), g.index_to_world((1, 0, 1))
    np.testing.assert_allclose(np.asarray(p) - np.asarray(q), tuple(g.index_to_world(
        Vector3D(2, 1, 1))), atol=1e-12)


def test_world_to_index_inverts_a_sheared_direction():
    g = sheared_geometry()
    for index in [(0, 0, 0), (1, 2, 3), (3.25, -7.5, 100.0), (-0.5, 4.5, 5.5)]:
        back = g.world_to_index(g.index_to_world(index))
        assert type(back) is Point3D
        np.testing.assert_allclose(tuple(back), index, rtol=0, atol=1e-9)


def test_vectorised_mapping_matches_per_point():
    g = sheared_geometry()
    rng = np.random.default_rng(3)
    pts = rng.uniform(-10, 10, (50, 3))
    world = g.index_to_world(pts)
    assert isinstance(world, np.ndarray) and world.shape == (50, 3) and world.dtype == np.float64
    for row, w in zip(pts, world):
        np.testing.assert_allclose(tuple(g.index_to_world(tuple(row))), w, rtol=1e-14, atol=1e-12)
    index = g.world_to_index(world)
    for w, i in zip(world, index):
        np.testing.assert_allclose(tuple(g.world_to_index(tuple(w))), i, rtol=1e-14, atol=1e-12)
    np.testing.assert_allclose(index, pts, atol=1e-9)
    # Lists of lists and higher-rank (..., 3) arrays work too.
    np.testing.assert_allclose(g.index_to_world(pts.tolist()), world, atol=0)
    stacked = g.index_to_world(pts.reshape(5, 10, 3))
    assert stacked.shape == (5, 10, 3)
    np.testing.assert_allclose(stacked.reshape(50, 3), world, atol=1e-12)
    assert g.index_to_world(np.empty((0, 3))).shape == (0, 3)
    assert g.world_to_index(np.empty((0, 3))).shape == (0, 3)
    # The input array is left alone.
    copy_before = pts.copy()
    g.world_to_index(pts)
    np.testing.assert_array_equal(pts, copy_before)


def test_out_argument():
    g = sheared_geometry()
    out = Point3D()
    assert g.index_to_world((1, 2, 3), out) is out
    np.testing.assert_allclose(tuple(out), (2.7, 6.0, 21.8), atol=1e-12)
    out_vec = Vector3D()
    assert g.index_to_world(Vector3D(1, 1, 1), out=out_vec) is out_vec
    np.testing.assert_allclose(tuple(out_vec), (1.1, 2.0, 6.4), atol=1e-12)
    out_list = [0.0, 0.0, 0.0]
    assert g.world_to_index((2.7, 6.0, 21.8), out_list) is out_list
    np.testing.assert_allclose(out_list, (1, 2, 3), atol=1e-9)
    out_arr = np.zeros(3)
    assert g.world_to_index(g.origin, out=out_arr) is out_arr
    np.testing.assert_allclose(out_arr, 0, atol=1e-12)
    pts = np.arange(12.0).reshape(4, 3)
    many = np.empty((4, 3))
    assert g.index_to_world(pts, out=many) is many
    np.testing.assert_array_equal(many, g.index_to_world(pts))
    f32 = np.empty((4, 3), dtype=np.float32)
    g.index_to_world(pts, f32)
    np.testing.assert_allclose(f32, many, rtol=1e-6)


def test_out_argument_errors():
    g = sheared_geometry()
    with pytest.raises(mitk.ArgumentError, match="out"):
        g.index_to_world(np.zeros((4, 3)), out=np.empty((3, 3)))
    with pytest.raises(mitk.ArgumentError, match="out"):
        g.index_to_world(np.zeros((4, 3)), out=[[0.0] * 3] * 4)
    with pytest.raises(mitk.ArgumentError, match="out"):
        g.index_to_world((1, 2, 3), out=np.empty(4))
    with pytest.raises(TypeError):
        g.index_to_world(np.zeros((4, 3)), out=np.empty((4, 3), dtype=np.int64))


@pytest.mark.parametrize("point", [(1, 2), (1, 2, 3, 4), np.zeros((4, 2)), 5.0, np.zeros(0)])
def test_mapping_wrong_shapes(point):
    g = Geometry3D()
    with pytest.raises(mitk.ArgumentError, match="point"):
        g.index_to_world(point)
    with pytest.raises(mitk.ArgumentError, match="point"):
        g.world_to_index(point)


@pytest.mark.parametrize("point", ["abc", None, ("a", "b", "c"), [1, None, 3]])
def test_mapping_non_numbers(point):
    with pytest.raises(TypeError):
        Geometry3D().index_to_world(point)


def test_mapping_uses_the_latest_assignment():
    g = Geometry3D(extent=(2, 2, 2))
    g.spacing = (2, 3, 4)
    g.origin = (10, 20, 30)
    np.testing.assert_allclose(tuple(g.index_to_world((1, 1, 1))), (12, 23, 34))
    g.direction = [[0, 1, 0], [1, 0, 0], [0, 0, -1]]  # column j: world direction of index j
    np.testing.assert_allclose(tuple(g.index_to_world((1, 0, 0))), (10, 22, 30))
    np.testing.assert_allclose(tuple(g.index_to_world((0, 1, 0))), (13, 20, 30))
    np.testing.assert_allclose(tuple(g.index_to_world((0, 0, 1))), (10, 20, 26))


# -- extent, corners, inside -----------------------------------------------------------------


def test_extents_and_axis_vectors_by_hand():
    g = sheared_geometry()
    assert [g.get_extent(i) for i in range(3)] == [4.0, 5.0, 6.0]
    assert g.get_extent_in_mm(0) == pytest.approx(2.0)
    assert g.get_extent_in_mm(1) == pytest.approx(10 * math.sqrt(0.3**2 + 1 + 0.2**2))
    assert g.get_extent_in_mm(2) == pytest.approx(36.0)  # the column has norm 2: kept
    axis = [g.get_axis_vector(i) for i in range(3)]
    assert all(type(v) is Vector3D for v in axis)
    np.testing.assert_allclose(tuple(axis[0]), (2, 0, 0), atol=1e-12)
    np.testing.assert_allclose(tuple(axis[1]), (3, 10, 2), atol=1e-12)
    np.testing.assert_allclose(tuple(axis[2]), (0, 0, 36), atol=1e-12)
    for i in range(3):
        assert np.linalg.norm(tuple(axis[i])) == pytest.approx(g.get_extent_in_mm(i))


@pytest.mark.parametrize("method", ["get_extent", "get_extent_in_mm", "get_axis_vector"])
def test_axis_errors(method):
    g = Geometry3D()
    for bad in (3, -1):
        with pytest.raises(IndexError, match=f"axis {bad}"):
            getattr(g, method)(bad)
    for bad in (1.0, True, "x"):
        with pytest.raises(TypeError):
            getattr(g, method)(bad)


def test_corner_points_by_hand():
    g = sheared_geometry()
    # Index corners: x in {-0.5, 3.5}, y in {-0.5, 4.5}, z in {-0.5, 5.5}; bit 0 = x, 1 = y, 2 = z.
    expected = {
        0: (0.45, 1.0, -0.2), 1: (2.45, 1.0, -0.2), 2: (3.45, 11.0, 1.8), 3: (5.45, 11.0, 1.8),
        4: (0.45, 1.0, 35.8), 5: (2.45, 1.0, 35.8), 6: (3.45, 11.0, 37.8), 7: (5.45, 11.0, 37.8),
    }
    for i, world in expected.items():
        corner = g.get_corner_point(i)
        assert type(corner) is Point3D
        np.testing.assert_allclose(tuple(corner), world, atol=1e-12)
    assert g.get_corner_point(np.int8(7)) == g.get_corner_point(7)


def test_corner_point_errors():
    g = Geometry3D()
    for bad in (8, -1):
        with pytest.raises(IndexError, match=f"corner index {bad}"):
            g.get_corner_point(bad)
    with pytest.raises(TypeError):
        g.get_corner_point(1.0)


def test_center_and_diagonal_by_hand():
    g = sheared_geometry()
    np.testing.assert_allclose(tuple(g.center), (2.95, 6.0, 18.8), atol=1e-12)
    assert type(g.center) is Point3D
    assert g.diagonal_length == pytest.approx(math.sqrt(5**2 + 10**2 + 38**2))
    unit = Geometry3D(extent=(3, 4, 12))
    assert unit.diagonal_length == pytest.approx(13.0)
    np.testing.assert_allclose(tuple(unit.center), (1.0, 1.5, 5.5))
    corners = np.array([tuple(g.get_corner_point(i)) for i in range(8)])
    np.testing.assert_allclose(corners.mean(axis=0), tuple(g.center), atol=1e-12)


def test_bounds():
    g = sheared_geometry()
    assert g.bounds == (0.0, 4.0, 0.0, 5.0, 0.0, 6.0)
    assert all(type(v) is float for v in g.bounds)


def test_is_index_inside_edges():
    g = Geometry3D(extent=(4, 5, 6))
    assert g.is_index_inside((0, 0, 0)) is True
    assert g.is_index_inside((-0.5, -0.5, -0.5)) is True  # lower edge inclusive
    assert g.is_index_inside((3.49, 4.49, 5.49)) is True
    assert g.is_index_inside((3.5, 0, 0)) is False  # upper edge exclusive
    assert g.is_index_inside((0, 4.5, 0)) is False
    assert g.is_index_inside((0, 0, 5.5)) is False
    assert g.is_index_inside((np.nextafter(-0.5, -1), 0, 0)) is False
    assert g.is_index_inside((float("nan"), 0, 0)) is False
    assert g.is_index_inside(Point3D(1, 1, 1)) is True
    result = g.is_index_inside([[0, 0, 0], [3.5, 0, 0], [3, 4, 5]])
    assert result.dtype == bool and result.tolist() == [True, False, True]
    with pytest.raises(mitk.ArgumentError):
        g.is_index_inside((1, 2))


def test_is_inside_world():
    g = sheared_geometry()
    assert g.is_inside(g.center) is True
    assert g.is_inside(g.index_to_world((3.4, 4.4, 5.4))) is True
    assert g.is_inside(g.index_to_world((3.6, 0, 0))) is False
    assert g.is_inside(g.index_to_world((0, -0.6, 0))) is False
    assert g.is_inside(g.index_to_world((-0.49, -0.49, -0.49))) is True
    assert g.is_inside(g.index_to_world((-0.51, 0, 0))) is False
    assert g.is_inside(np.asarray(g.get_corner_point(7)) + 1) is False
    # A Vector3D passed here is a position (no "without origin" rule).
    assert g.is_inside(Vector3D(*g.center)) is True
    pts = g.index_to_world(np.array([[0, 0, 0], [10, 0, 0]]))
    assert g.is_inside(pts).tolist() == [True, False]


# -- copies, equality, pickle -------------------------------------------------------------------


def test_copy_is_independent():
    g = sheared_geometry()
    c = g.copy()
    assert c == g and c is not g
    c.spacing = (9, 9, 9)
    c.direction = np.eye(3)
    c._set_extent((1, 1, 1))
    assert g.spacing == (0.5, 2, 3) and g.extent == (4, 5, 6)
    np.testing.assert_array_equal(g.direction, SHEAR)


def test_equality_within_tolerance():
    g = sheared_geometry()
    near = sheared_geometry()
    near.spacing = (0.5 + 5e-7, 2, 3)
    near.origin = (1, 2, 3 - 9e-7)
    d = np.array(SHEAR)
    d[2, 1] += 8e-7
    near.direction = d
    assert near == g and g == near and not (g != near)
    for name, value in [("spacing", (0.5 + 2e-6, 2, 3)), ("origin", (1, 2, 3.00001)),
                        ("direction", np.array(SHEAR) + 2e-6)]:
        far = sheared_geometry()
        setattr(far, name, value)
        assert far != g
    other_extent = sheared_geometry()
    other_extent._set_extent((4, 5, 7))
    assert other_extent != g
    assert g != "geometry" and g != None  # noqa: E711
    with pytest.raises(TypeError):
        hash(g)


def test_repr_shows_the_values():
    text = repr(sheared_geometry())
    assert text.startswith("Geometry3D(")
    for part in ("spacing=(0.5, 2.0, 3.0)", "origin=(1.0, 2.0, 3.0)", "0.3", "extent=(4, 5, 6)"):
        assert part in text


def test_pickle_and_deepcopy_round_trips():
    g = sheared_geometry()
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(g, protocol))
        assert type(back) is Geometry3D and back == g
        np.testing.assert_array_equal(back.direction, g.direction)  # exact, not within 1e-6
        assert back.spacing == g.spacing and back.origin == g.origin
    for dup in (copy.deepcopy(g), copy.copy(g)):
        assert dup == g and dup is not g
        dup.origin = (0, 0, 0)
        assert g.origin == (1, 2, 3)
    deep = copy.deepcopy([g, g])
    assert deep[0] is deep[1]  # the memo keeps shared references shared


def test_assignment_is_atomic_for_readers():
    g = Geometry3D()
    values = [(1.0, 1.0, 1.0), (2.0, 3.0, 4.0)]
    directions = [np.eye(3), np.array(SHEAR)]
    stop = threading.Event()
    seen_bad = []

    def writer():
        for n in range(3000):
            g.spacing = values[n % 2]
            g.direction = directions[n % 2]
        stop.set()

    def reader():
        while not stop.is_set():
            s = tuple(g.spacing)
            d = g.direction
            if s not in values or not any(np.array_equal(d, x) for x in directions):
                seen_bad.append((s, d))

    threads = [start_thread(reader) for _ in range(3)] + [start_thread(writer)]
    join_all(threads)
    assert seen_bad == []


# -- property tests -----------------------------------------------------------------------------

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


@st.composite
def geometries(draw):
    spacing = draw(st.tuples(*[st.floats(0.2, 5.0)] * 3))
    origin = draw(st.tuples(finite, finite, finite))
    entries = draw(st.lists(st.floats(-1.0, 1.0), min_size=9, max_size=9))
    direction = np.array(entries).reshape(3, 3)
    assume(np.all(np.linalg.norm(direction, axis=0) > 0.1))
    assume(np.linalg.cond(direction) < 20)  # sheared, flipped or rotated, but not degenerate
    return Geometry3D(spacing, origin, direction, extent=(10, 20, 30))


@settings(max_examples=200, deadline=None)
@given(geometries(), st.tuples(*[st.floats(-50, 600)] * 3))
def test_index_world_round_trip(g, index):
    world = g.index_to_world(index)
    expected = np.asarray(g.origin) + g.direction @ (np.asarray(g.spacing) * np.asarray(index))
    np.testing.assert_allclose(tuple(world), expected, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(tuple(g.world_to_index(world)), index, rtol=0, atol=1e-9)
    vec = g.world_to_index(g.index_to_world(Vector3D(*index)))
    np.testing.assert_allclose(tuple(vec), index, rtol=0, atol=1e-9)


@settings(max_examples=50, deadline=None)
@given(geometries(), st.lists(st.tuples(*[st.floats(-50, 600)] * 3), min_size=1, max_size=20))
def test_vectorised_round_trip(g, points):
    pts = np.array(points)
    world = g.index_to_world(pts)
    np.testing.assert_allclose(world, [tuple(g.index_to_world(p)) for p in points],
                               rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(g.world_to_index(world), pts, rtol=0, atol=1e-9)


@settings(max_examples=100, deadline=None)
@given(geometries())
def test_corners_span_the_axis_vectors(g):
    c0 = np.asarray(g.get_corner_point(0))
    for bit in range(3):
        edge = np.asarray(g.get_corner_point(1 << bit)) - c0
        np.testing.assert_allclose(edge, tuple(g.get_axis_vector(bit)), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(tuple(g.center), (c0 + np.asarray(g.get_corner_point(7))) / 2,
                               rtol=1e-12, atol=1e-9)


# -- issue 22 item 12: extreme but valid geometry never warns -----------------------------------

_EXTREME = [
    {"spacing": (1e300, 1e300, 1e300)},
    {"spacing": (1e-300, 1e-300, 1e-300)},
    {"spacing": (1e308, 1, 1e-308), "origin": (1e308, -1e308, 1e308)},
    {"origin": (-1.7e308, 1.7e308, 0)},
    {"direction": np.diag([1e300, 1e300, 1e300]), "spacing": (1e10, 1e10, 1e10)},
    {"direction": np.diag([1e-300, 1e-300, 1e-300]), "spacing": (1e-10, 1e-10, 1e-10)},
    {"direction": [[1e300, -1e300, 0], [1e300, 1e300, 0], [0, 0, 1e-300]]},
    {"direction": [[1.0, 0.999999, 0], [0, 1e-3, 0], [0, 0, 1]], "spacing": (1e307,) * 3},
]


@pytest.mark.parametrize("kwargs", _EXTREME)
@pytest.mark.parametrize("extent", [(1, 1, 1), (2**31, 2**31, 2**31)])
def test_extreme_geometry_never_warns(kwargs, extent):
    import warnings

    g = Geometry3D(extent=extent, **kwargs)
    points = [(0, 0, 0), (1, 1, 1), (-1e308, 1e308, 1e308), (1e-308, 0, -1e-308)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for p in points:
            world = g.index_to_world(p)
            g.world_to_index(p)
            g.world_to_index(Vector3D(p))
            g.is_inside(p)
            assert g.is_index_inside(p) in (True, False)
        g.index_to_world(np.array(points))
        g.world_to_index(np.array(points))
        g.is_inside(np.array(points))
        center, length = g.center, g.diagonal_length
        corners = [g.get_corner_point(i) for i in range(8)]
        [g.get_extent_in_mm(a) for a in range(3)], [g.get_axis_vector(a) for a in range(3)]
        g.affine
    assert length >= 0 and len(corners) == 8 and isinstance(world, Point3D)
    assert isinstance(center, Point3D)


def test_mapping_of_extreme_geometry_is_exact_where_representable():
    # Unit columns times their lengths: no intermediate overflow for a finite result.
    g = Geometry3D(spacing=(1e-300, 1e-300, 1e-300), direction=np.diag([1e300] * 3))
    np.testing.assert_allclose(tuple(g.index_to_world((2, 3, 4))), (2, 3, 4), rtol=1e-15)
    np.testing.assert_allclose(tuple(g.world_to_index((2, 3, 4))), (2, 3, 4), rtol=1e-15)
    assert g.diagonal_length == pytest.approx(np.sqrt(3.0))
    big = Geometry3D(spacing=(1e300,) * 3, extent=(10, 10, 10))
    assert big.diagonal_length == pytest.approx(np.sqrt(3.0) * 1e301)
    assert big.index_to_world((1e10, 0, 0)).x == float("inf")  # beyond float64: inf, no warning
    assert not big.is_inside((1e308, 0, 0)) and big.is_inside((1e300, 1e300, 1e300))
