"""Geometry of an image in the LPS world: spacing, origin, direction, and index <-> world maps.

``world = origin + direction @ (spacing * index)``: voxel centres sit at integer indices, column
``j`` of ``direction`` is the world direction of index axis ``j`` (x, y, z), and the direction is
stored exactly as given (never orthonormalised, so a sheared but invertible matrix is valid).
Index points use MITK order ``(i, j, k)`` addressing ``array[k, j, i]``.

Thread safety: a :class:`Geometry3D` never changes a stored value in place.  Each setter
validates first and then replaces the stored value with one attribute assignment, so a reader
in another thread sees the old or the new value, never a mixture, and a failed assignment
changes nothing.
"""

from __future__ import annotations

import abc
import numbers
from typing import Any, Iterator

import numpy as np

from ._geometry_rules import (EQUALITY_TOLERANCE, SINGULAR_TOLERANCE, _float_array,  # noqa: F401
                              _show, validate_direction, validate_origin, validate_spacing)
from .errors import ArgumentError

__all__ = [
    "BaseGeometry",
    "Geometry3D",
    "Point3D",
    "Vector3D",
    "validate_direction",
    "validate_origin",
    "validate_spacing",
]

# -- points and vectors --------------------------------------------------------------------------


def _coordinate(value: Any, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner} coordinates must be real numbers, not "
                        f"{type(value).__name__} {_show(value)}")
    return float(value)


class _Triple:
    """Shared implementation of :class:`Point3D` and :class:`Vector3D`."""

    __slots__ = ("_v",)

    def __init__(self, x: Any = None, y: Any = None, z: Any = None) -> None:
        owner = type(self).__name__
        if y is None and z is None:
            if x is None:
                self._v = [0.0, 0.0, 0.0]
                return
            if isinstance(x, numbers.Number):
                raise TypeError(f"{owner} takes three coordinates or one sequence of three, "
                                f"not the single number {x!r}")
            values = _float_array(x, owner)
            if values.shape != (3,):
                raise ArgumentError(f"{owner} needs 3 coordinates, got {_show(x)} of shape "
                                    f"{values.shape}")
            self._v = values.tolist()
        elif x is None or y is None or z is None:
            raise TypeError(f"{owner} takes three coordinates x, y, z or one sequence of three")
        else:
            self._v = [_coordinate(x, owner), _coordinate(y, owner), _coordinate(z, owner)]

    def _check(self, index: Any) -> int:
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"{type(self).__name__} indices must be integers, not "
                            f"{type(index).__name__}")
        if not -3 <= index <= 2:
            raise IndexError(f"{type(self).__name__} index {index} is out of range; "
                             "expected -3 to 2")
        return int(index)

    def __getitem__(self, index: int) -> float:
        return self._v[self._check(index)]

    def __setitem__(self, index: int, value: float) -> None:
        self._v[self._check(index)] = _coordinate(value, type(self).__name__)

    def __len__(self) -> int:
        return 3

    def __iter__(self) -> Iterator[float]:
        return iter(list(self._v))

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if copy is False:
            raise ValueError(f"a {type(self).__name__} holds Python floats, so an array of it "
                             "is always a copy (use copy=None or copy=True)")
        return np.array(self._v, dtype=np.float64 if dtype is None else dtype)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Triple):
            return self._v == other._v
        if isinstance(other, (str, bytes)):
            return NotImplemented
        try:
            if len(other) != 3:  # type: ignore[arg-type]
                return False
            values = list(other)  # type: ignore[call-overload]
        except TypeError:
            return NotImplemented
        if not all(isinstance(v, numbers.Real) for v in values):
            return False
        return [float(v) for v in values] == self._v

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        x, y, z = self._v
        return f"{type(self).__name__}({x!r}, {y!r}, {z!r})"

    def __reduce__(self):
        return type(self), tuple(self._v)

    @property
    def x(self) -> float:
        """float: first coordinate (index 0)."""
        return self._v[0]

    @x.setter
    def x(self, value: float) -> None:
        self[0] = value

    @property
    def y(self) -> float:
        """float: second coordinate (index 1)."""
        return self._v[1]

    @y.setter
    def y(self, value: float) -> None:
        self[1] = value

    @property
    def z(self) -> float:
        """float: third coordinate (index 2)."""
        return self._v[2]

    @z.setter
    def z(self, value: float) -> None:
        self[2] = value


class Point3D(_Triple):
    """A position: a mutable float 3-vector (MITK's ``Point3D``).

    Parameters
    ----------
    x, y, z : float, optional
        The coordinates; ``Point3D()`` is ``(0, 0, 0)``.  Instead of three numbers, ``x`` may
        be one sequence of three (tuple, list, ndarray, another point or vector).

    Raises
    ------
    TypeError
        Non-numbers, or neither three numbers nor one sequence.
    ArgumentError
        A sequence that does not hold exactly three numbers.

    Notes
    -----
    Supports ``.x .y .z``, indices ``-3..2`` (others raise ``IndexError``), item assignment,
    iteration, ``len``, ``tuple(p)``, ``list(p)``, ``np.asarray(p)`` (always a new float64
    array), pickling, and ``==`` with any length-3 sequence of numbers.  Points are mutable, so
    unhashable.  :meth:`Geometry3D.index_to_world` maps points with the origin.
    """

    __slots__ = ()


class Vector3D(_Triple):
    """A displacement: a mutable float 3-vector (MITK's ``Vector3D``).

    Parameters
    ----------
    x, y, z : float, optional
        The components; ``Vector3D()`` is ``(0, 0, 0)``.  Instead of three numbers, ``x`` may
        be one sequence of three.

    Raises
    ------
    TypeError
        Non-numbers, or neither three numbers nor one sequence.
    ArgumentError
        A sequence that does not hold exactly three numbers.

    Notes
    -----
    Behaves as :class:`Point3D`, except that :meth:`Geometry3D.index_to_world` and
    :meth:`Geometry3D.world_to_index` map vectors without the origin (a difference of points).
    """

    __slots__ = ()


# -- geometries -----------------------------------------------------------------------------------


class BaseGeometry(abc.ABC):
    """Abstract base of geometries (MITK's ``BaseGeometry``): maps between index and world.

    Notes
    -----
    Subclasses implement :meth:`index_to_world` and :meth:`world_to_index`; the only concrete
    geometry is :class:`Geometry3D`.
    """

    __slots__ = ()

    @abc.abstractmethod
    def index_to_world(self, point: Any, out: Any = None) -> Any:
        """Map index coordinates to LPS world coordinates."""

    @abc.abstractmethod
    def world_to_index(self, point: Any, out: Any = None) -> Any:
        """Map LPS world coordinates to continuous index coordinates."""


def _check_extent(extent: Any) -> tuple:
    try:
        sizes = list(extent)
    except TypeError:
        raise TypeError(f"extent must be a sequence of 3 ints, not "
                        f"{type(extent).__name__}") from None
    for v in sizes:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"extent {_show(extent)} must hold ints, not {type(v).__name__}")
    if len(sizes) != 3 or any(v < 1 for v in sizes):
        raise ArgumentError(f"extent {_show(extent)} is invalid; expected 3 sizes >= 1 "
                            "(x, y, z)")
    return tuple(int(v) for v in sizes)


class Geometry3D(BaseGeometry):
    """Spacing, origin and direction of one image (one time step), with its extent.

    ``world = origin + direction @ (spacing * index)`` with voxel centres at integer indices.

    Parameters
    ----------
    spacing : sequence of 3 floats
        Voxel size in mm along x, y, z; default ``(1, 1, 1)``.
    origin : sequence of 3 floats
        World position (LPS, mm) of the centre of voxel ``(0, 0, 0)``; default ``(0, 0, 0)``.
    direction : 3x3 array-like, optional
        Column ``j`` is the world direction of index axis ``j``; default the identity.  Kept
        exactly as given (copied, never normalised).
    extent : sequence of 3 ints
        Sizes along x, y, z (MITK order); default ``(1, 1, 1)``.  An image sets it from its
        shape.

    Raises
    ------
    ArgumentError
        Invalid values (see :func:`validate_spacing`, :func:`validate_origin`,
        :func:`validate_direction`), or sizes < 1.
    TypeError
        Arguments that are not numbers.

    Notes
    -----
    ``spacing``, ``origin`` and ``direction`` return copies and are changed by assignment
    (``geometry.spacing = v``).  An assignment validates first and then replaces the stored
    value in one step: a failed one changes nothing, and a reader in another thread sees the
    old or the new value, never a mixture.  Geometry changes take no pixel lock.  Geometries
    pickle and deep-copy; ``copy()`` gives an independent geometry.
    """

    __slots__ = ("_spacing", "_origin", "_direction", "_extent", "__weakref__")

    def __init__(self, spacing: Any = (1.0, 1.0, 1.0), origin: Any = (0.0, 0.0, 0.0),
                 direction: Any = None, extent: Any = (1, 1, 1)) -> None:
        self._spacing = validate_spacing(spacing)
        self._origin = validate_origin(origin)
        self._direction = np.eye(3) if direction is None else validate_direction(direction)
        self._extent = _check_extent(extent)

    @classmethod
    def _from_valid(cls, spacing: tuple, origin: tuple, direction: np.ndarray,
                    extent: tuple) -> Geometry3D:
        # Values validated before (copies, defaults) skip the checks, which would cost more
        # than the rest of an ``Image(arr, copy=False)``.  ``direction`` is owned from now on.
        g = cls.__new__(cls)
        g._spacing = spacing
        g._origin = origin
        g._direction = direction
        g._extent = extent
        return g

    @classmethod
    def new(cls) -> Geometry3D:
        """A geometry with the defaults (MITK's ``Geometry3D::New()``).

        Returns
        -------
        Geometry3D
            Spacing ``(1, 1, 1)``, origin ``(0, 0, 0)``, identity direction, extent
            ``(1, 1, 1)``.
        """
        return cls()

    def _set_extent(self, extent: Any) -> None:
        # For the owning image only: the extent follows the pixel buffer's shape.
        self._extent = _check_extent(extent)

    # -- settable properties

    @property
    def spacing(self) -> Vector3D:
        """Vector3D: voxel size in mm along x, y, z.

        A copy: changing it does not change the geometry; assign to change (validated as
        :func:`validate_spacing` with three entries).
        """
        return Vector3D(*self._spacing)

    @spacing.setter
    def spacing(self, value: Any) -> None:
        self._spacing = validate_spacing(value)

    @property
    def origin(self) -> Point3D:
        """Point3D: world position (LPS, mm) of the centre of voxel ``(0, 0, 0)``.

        A copy; assign to change (validated as :func:`validate_origin` with three entries).
        """
        return Point3D(*self._origin)

    @origin.setter
    def origin(self, value: Any) -> None:
        self._origin = validate_origin(value)

    @property
    def direction(self) -> np.ndarray:
        """numpy.ndarray: 3x3 float64; column ``j`` is the world direction of index axis ``j``.

        A new array on each access; assign to change (validated as :func:`validate_direction`,
        stored exactly as given).
        """
        return self._direction.copy()

    @direction.setter
    def direction(self, value: Any) -> None:
        self._direction = validate_direction(value)

    # -- read-only properties

    @property
    def extent(self) -> tuple:
        """tuple of int: sizes along x, y, z (MITK order); set by the owning image."""
        return self._extent

    @property
    def bounds(self) -> tuple:
        """tuple of float: ``(0, X, 0, Y, 0, Z)`` in index units, as MITK's image geometries."""
        x, y, z = self._extent
        return (0.0, float(x), 0.0, float(y), 0.0, float(z))

    @property
    def image_geometry(self) -> bool:
        """bool: always True (voxel centres at integer indices, MITK's ``ImageGeometry``)."""
        return True

    @property
    def affine(self) -> np.ndarray:
        """numpy.ndarray: the 4x4 LPS index-to-world matrix (a new array).

        ``affine[:3, :3] = direction @ diag(spacing)`` and ``affine[:3, 3] = origin``.
        """
        m = np.eye(4)
        m[:3, :3] = self._direction * np.asarray(self._spacing)
        m[:3, 3] = self._origin
        return m

    @property
    def center(self) -> Point3D:
        """Point3D: world centre of the outer box (index ``(size - 1) / 2`` on every axis)."""
        return self.index_to_world(Point3D(*((n - 1) / 2.0 for n in self._extent)))

    @property
    def diagonal_length(self) -> float:
        """float: length in mm of the outer box's diagonal (corner 0 to corner 7)."""
        diagonal = np.asarray(self.get_corner_point(7)) - np.asarray(self.get_corner_point(0))
        return float(np.linalg.norm(diagonal))

    # -- mapping

    def _map(self, point: Any, out: Any, forward: bool) -> Any:
        # One read of each stored value: a concurrent assignment replaces, never mutates them.
        matrix = self._direction * np.asarray(self._spacing)
        origin = np.asarray(self._origin)
        if isinstance(point, Vector3D):
            as_vector, pts = True, np.asarray(point)
        else:
            as_vector, pts = False, _float_array(point, "point")
        if pts.ndim == 0 or pts.shape[-1] != 3 or (as_vector and pts.ndim != 1):
            raise ArgumentError(f"point {_show(point)} has shape {pts.shape}; expected 3 "
                                "coordinates or an (N, 3) array")
        flat = pts.reshape(-1, 3)
        if forward:
            res = flat @ matrix.T
            if not as_vector:
                res += origin
        else:
            res = np.linalg.solve(matrix, (flat if as_vector else flat - origin).T).T
        res = res.reshape(pts.shape)
        if pts.ndim > 1:
            if out is None:
                return res
            if not isinstance(out, np.ndarray) or out.shape != res.shape:
                raise ArgumentError(f"out must be an ndarray of shape {res.shape}, got "
                                    f"{type(out).__name__} of shape {np.shape(out)}")
            np.copyto(out, res, casting="same_kind")
            return out
        if out is None:
            return Vector3D(*res) if as_vector else Point3D(*res)
        if isinstance(out, np.ndarray):
            if out.shape != (3,):
                raise ArgumentError(f"out must have shape (3,), not {out.shape}")
            np.copyto(out, res, casting="same_kind")
        else:
            for i in range(3):
                out[i] = float(res[i])
        return out

    def index_to_world(self, point: Any, out: Any = None) -> Any:
        """Map index coordinates to LPS world coordinates (mm), unrounded.

        Parameters
        ----------
        point : Point3D, Vector3D, sequence of 3 numbers or array of shape (..., 3)
            Continuous index ``(i, j, k)``; integers are voxel centres.
        out : Point3D, Vector3D, list or ndarray, optional
            Filled with the result and returned.

        Returns
        -------
        Point3D, Vector3D or numpy.ndarray
            A :class:`Point3D` for one point (``origin + direction @ (spacing * p)``); a
            :class:`Vector3D` for a vector, mapped without the origin; a new float64 array of
            the same shape for an array of points; or ``out``.

        Raises
        ------
        ArgumentError
            A point without 3 coordinates, or an ``out`` of the wrong shape.
        TypeError
            Non-numbers, or an ``out`` that cannot hold floats.
        """
        return self._map(point, out, True)

    def world_to_index(self, point: Any, out: Any = None) -> Any:
        """Map LPS world coordinates (mm) to continuous index coordinates, unrounded.

        The exact inverse of :meth:`index_to_world` (solved with the stored direction, so a
        sheared direction maps back correctly); round the result to get a voxel index.

        Parameters
        ----------
        point : Point3D, Vector3D, sequence of 3 numbers or array of shape (..., 3)
            World position; a :class:`Vector3D` is a displacement (no origin).
        out : Point3D, Vector3D, list or ndarray, optional
            Filled with the result and returned.

        Returns
        -------
        Point3D, Vector3D or numpy.ndarray
            As :meth:`index_to_world`.

        Raises
        ------
        ArgumentError
            A point without 3 coordinates, or an ``out`` of the wrong shape.
        TypeError
            Non-numbers, or an ``out`` that cannot hold floats.
        """
        return self._map(point, out, False)

    # -- extent and corners

    @staticmethod
    def _axis(axis: Any) -> int:
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise TypeError(f"axis must be an int, not {type(axis).__name__}")
        if not 0 <= axis <= 2:
            raise IndexError(f"axis {axis} is out of range; expected 0 (x), 1 (y) or 2 (z)")
        return int(axis)

    def get_extent(self, axis: int) -> float:
        """Size along one axis, in voxels.

        Parameters
        ----------
        axis : {0, 1, 2}
            MITK axis: 0 = x, 1 = y, 2 = z.

        Returns
        -------
        float
            ``bounds[2*axis + 1] - bounds[2*axis]``, i.e. the size.

        Raises
        ------
        IndexError
            ``axis`` outside 0..2.
        TypeError
            ``axis`` not an int.
        """
        return float(self._extent[self._axis(axis)])

    def get_extent_in_mm(self, axis: int) -> float:
        """Physical length of one axis: size times the norm of its column of the affine.

        Parameters
        ----------
        axis : {0, 1, 2}
            MITK axis: 0 = x, 1 = y, 2 = z.

        Returns
        -------
        float
            ``size * spacing * |direction[:, axis]|`` in mm.

        Raises
        ------
        IndexError
            ``axis`` outside 0..2.
        TypeError
            ``axis`` not an int.
        """
        a = self._axis(axis)
        return float(self._extent[a] * self._spacing[a] * np.linalg.norm(self._direction[:, a]))

    def get_axis_vector(self, axis: int) -> Vector3D:
        """World vector spanning one axis over the whole image.

        Parameters
        ----------
        axis : {0, 1, 2}
            MITK axis: 0 = x, 1 = y, 2 = z.

        Returns
        -------
        Vector3D
            ``direction[:, axis] * spacing[axis] * size[axis]`` (as MITK's ``GetAxisVector``).

        Raises
        ------
        IndexError
            ``axis`` outside 0..2.
        TypeError
            ``axis`` not an int.
        """
        a = self._axis(axis)
        return Vector3D(*(self._direction[:, a] * (self._spacing[a] * self._extent[a])))

    def get_corner_point(self, index: int) -> Point3D:
        """World position of one corner of the outer box (voxel edges, not centres).

        Parameters
        ----------
        index : int, 0..7
            Bit 0 picks the high x side, bit 1 the high y side, bit 2 the high z side; the low
            side is index ``-0.5`` and the high side ``size - 0.5``.

        Returns
        -------
        Point3D
            The corner in LPS world coordinates.

        Raises
        ------
        IndexError
            ``index`` outside 0..7.
        TypeError
            ``index`` not an int.
        """
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"corner index must be an int, not {type(index).__name__}")
        if not 0 <= index <= 7:
            raise IndexError(f"corner index {index} is out of range; expected 0 to 7")
        corner = [self._extent[bit] - 0.5 if (index >> bit) & 1 else -0.5 for bit in range(3)]
        return self.index_to_world(Point3D(*corner))

    def is_index_inside(self, point: Any) -> Any:
        """Whether continuous index coordinates lie in the image: ``-0.5 <= p_i < size_i - 0.5``.

        Parameters
        ----------
        point : sequence of 3 numbers or array of shape (..., 3)
            Continuous index ``(i, j, k)``.

        Returns
        -------
        bool or numpy.ndarray of bool
            One answer per point (NaN coordinates are outside).

        Raises
        ------
        ArgumentError
            Not 3 coordinates.
        TypeError
            Non-numbers.
        """
        p = _float_array(point, "point")
        if p.ndim == 0 or p.shape[-1] != 3:
            raise ArgumentError(f"point {_show(point)} has shape {p.shape}; expected 3 "
                                "coordinates or an (N, 3) array")
        upper = np.asarray(self._extent, dtype=np.float64) - 0.5
        inside = np.all((p >= -0.5) & (p < upper), axis=-1)
        return bool(inside) if p.ndim == 1 else inside

    def is_inside(self, world: Any) -> Any:
        """Whether world coordinates lie inside the image's outer box.

        Parameters
        ----------
        world : sequence of 3 numbers or array of shape (..., 3)
            LPS position(s) in mm.

        Returns
        -------
        bool or numpy.ndarray of bool
            ``is_index_inside(world_to_index(world))``.

        Raises
        ------
        ArgumentError
            Not 3 coordinates.
        TypeError
            Non-numbers.
        """
        pts = _float_array(world, "world")  # a Vector3D here is a position, not a displacement
        return self.is_index_inside(np.asarray(self._map(pts, None, False)))

    # -- copying, comparison, pickling

    def copy(self) -> Geometry3D:
        """An independent copy (changes to either do not affect the other).

        Returns
        -------
        Geometry3D
            Same spacing, origin, direction and extent.
        """
        return Geometry3D._from_valid(self._spacing, self._origin, self._direction.copy(),
                                      self._extent)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Geometry3D):
            return NotImplemented
        tol = EQUALITY_TOLERANCE
        return (self._extent == other._extent
                and all(abs(a - b) <= tol for a, b in zip(self._spacing, other._spacing))
                and all(abs(a - b) <= tol for a, b in zip(self._origin, other._origin))
                and bool(np.all(np.abs(self._direction - other._direction) <= tol)))

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (f"Geometry3D(spacing={self._spacing}, origin={self._origin}, "
                f"direction={self._direction.tolist()}, extent={self._extent})")

    def __getstate__(self) -> dict:
        return {"spacing": self._spacing, "origin": self._origin,
                "direction": self._direction.tolist(), "extent": self._extent}

    def __setstate__(self, state: dict) -> None:
        self._spacing = tuple(state["spacing"])
        self._origin = tuple(state["origin"])
        self._direction = np.array(state["direction"], dtype=np.float64)
        self._extent = tuple(state["extent"])
