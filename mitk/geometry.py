"""Geometry of an image in the LPS world: spacing, origin, direction, and index <-> world maps.

``world = origin + direction @ (spacing * index)``: voxel centres sit at integer indices, column
``j`` of ``direction`` is the world direction of index axis ``j`` (x, y, z), and the direction is
stored exactly as given (never orthonormalised, so a sheared but invertible matrix is valid).
Index points use MITK order ``(i, j, k)`` addressing ``array[k, j, i]``.
"""

from __future__ import annotations

import numbers
from typing import Any, Iterator

import numpy as np

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

#: Geometries compare equal within this absolute tolerance (as MITK's eps).
EQUALITY_TOLERANCE = 1e-6


# -- validation -----------------------------------------------------------------------------------


def _numbers(value: Any, name: str) -> np.ndarray:
    """``value`` as a float64 array; non-numbers are TypeError."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a sequence of numbers, not {type(value).__name__}")
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of numbers, got {value!r}") from None
    return arr


def _vector(value: Any, ndim: int, name: str) -> np.ndarray:
    arr = _numbers(value, name)
    allowed = (2, 3) if ndim == 2 else (3,)
    if arr.ndim != 1 or arr.shape[0] not in allowed:
        expected = "2 or 3 entries" if ndim == 2 else "3 entries"
        raise ArgumentError(f"{name} {value!r} has shape {arr.shape}; expected {expected}")
    return arr


def validate_spacing(value: Any, ndim: int = 3, name: str = "spacing") -> tuple:
    """Check a spacing and return it as a 3-tuple of floats (a 2D image's sz defaults to 1).

    Raises
    ------
    ArgumentError
        Wrong length, or an entry that is not finite and > 0.
    TypeError
        Not a sequence of numbers.
    """
    arr = _vector(value, ndim, name)
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ArgumentError(f"{name} {tuple(arr.tolist())} is invalid; every entry must be a "
                            "finite number > 0")
    if arr.shape[0] == 2:
        arr = np.append(arr, 1.0)
    return tuple(float(v) for v in arr)


def validate_origin(value: Any, ndim: int = 3, name: str = "origin") -> tuple:
    """Check an origin and return it as a 3-tuple of floats (a 2D image's oz defaults to 0)."""
    arr = _vector(value, ndim, name)
    if not np.all(np.isfinite(arr)):
        raise ArgumentError(f"{name} {tuple(arr.tolist())} is invalid; entries must be finite")
    if arr.shape[0] == 2:
        arr = np.append(arr, 0.0)
    return tuple(float(v) for v in arr)


def validate_direction(value: Any, ndim: int = 3, name: str = "direction") -> np.ndarray:
    """Check a direction matrix and return a new 3x3 float64 array (2x2 padded for 2D images).

    The matrix must be finite and non-singular: ``abs(det(D)) > 1e-12 * prod(column norms)``.
    It is returned exactly as given otherwise (no normalisation).
    """
    arr = _numbers(value, name)
    allowed = ((2, 2), (3, 3)) if ndim == 2 else ((3, 3),)
    if arr.shape not in allowed:
        expected = "2x2 or 3x3" if ndim == 2 else "3x3"
        raise ArgumentError(f"{name} has shape {arr.shape}; expected a {expected} matrix")
    if not np.all(np.isfinite(arr)):
        raise ArgumentError(f"{name} {arr.tolist()} is invalid; entries must be finite")
    if arr.shape == (2, 2):
        padded = np.eye(3)
        padded[:2, :2] = arr
        arr = padded
    norms = np.linalg.norm(arr, axis=0)
    if np.any(norms == 0) or abs(np.linalg.det(arr)) <= 1e-12 * float(np.prod(norms)):
        raise ArgumentError(f"{name} {arr.tolist()} is singular; expected an invertible matrix "
                            "whose columns are the world directions of the index axes")
    return arr.copy()


# -- points and vectors --------------------------------------------------------------------------


class _Triple:
    """A mutable float 3-vector with x, y, z, indexing -3..2, iteration and NumPy conversion."""

    __slots__ = ("_v",)

    def __init__(self, x: Any = 0.0, y: float = 0.0, z: float = 0.0) -> None:
        if not isinstance(x, numbers.Real) or isinstance(x, bool):
            values = _numbers(x, type(self).__name__)
            if values.shape != (3,):
                raise ArgumentError(
                    f"{type(self).__name__} needs 3 numbers, got shape {values.shape}")
            self._v = [float(v) for v in values]
        else:
            self._v = [float(x), float(y), float(z)]

    def _check(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"{type(self).__name__} indices must be int, not "
                            f"{type(index).__name__}")
        if not -3 <= index <= 2:
            raise IndexError(f"{type(self).__name__} index {index} out of range -3..2")
        return int(index)

    def __getitem__(self, index: int) -> float:
        return self._v[self._check(index)]

    def __setitem__(self, index: int, value: float) -> None:
        self._v[self._check(index)] = float(value)

    def __len__(self) -> int:
        return 3

    def __iter__(self) -> Iterator[float]:
        return iter(list(self._v))

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return np.array(self._v, dtype=dtype or np.float64)

    def __eq__(self, other: object) -> bool:
        try:
            values = [float(v) for v in other]  # type: ignore[union-attr]
        except (TypeError, ValueError):
            return NotImplemented
        return len(values) == 3 and values == self._v

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._v[0]!r}, {self._v[1]!r}, {self._v[2]!r})"

    def __reduce__(self):
        return type(self), tuple(self._v)

    x = property(lambda self: self._v[0], lambda self, v: self.__setitem__(0, v),
                 doc="float: first coordinate")
    y = property(lambda self: self._v[1], lambda self, v: self.__setitem__(1, v),
                 doc="float: second coordinate")
    z = property(lambda self: self._v[2], lambda self, v: self.__setitem__(2, v),
                 doc="float: third coordinate")


class Point3D(_Triple):
    """A point (mutable float 3-vector); maps with the origin in index <-> world conversions."""

    __slots__ = ()


class Vector3D(_Triple):
    """A vector (mutable float 3-vector); maps without the origin in index <-> world maps."""

    __slots__ = ()


# -- geometries ------------------------------------------------------------------------------------


class BaseGeometry:
    """Abstract base of geometries (MITK's ``BaseGeometry``)."""

    def index_to_world(self, point: Any, out: Any = None):  # pragma: no cover - abstract
        raise NotImplementedError

    def world_to_index(self, point: Any, out: Any = None):  # pragma: no cover - abstract
        raise NotImplementedError


class Geometry3D(BaseGeometry):
    """Spacing, origin and direction of one image (one time step), with its extent.

    Parameters
    ----------
    spacing, origin : sequence of 3 floats
        Defaults (1, 1, 1) and (0, 0, 0).
    direction : 3x3 array-like, optional
        Default identity; kept exactly.
    extent : sequence of 3 ints
        Sizes along x, y, z (MITK order); set by the owning image.

    Notes
    -----
    Setting ``spacing``, ``origin`` or ``direction`` validates the value and replaces the stored
    one in a single assignment, so a reader in another thread sees the old or the new value,
    never a mixture.  Geometry changes take no pixel lock.
    """

    def __init__(self, spacing: Any = (1.0, 1.0, 1.0), origin: Any = (0.0, 0.0, 0.0),
                 direction: Any = None, extent: Any = (1, 1, 1)) -> None:
        self._spacing = validate_spacing(spacing)
        self._origin = validate_origin(origin)
        self._direction = np.eye(3) if direction is None else validate_direction(direction)
        self._set_extent(extent)

    @classmethod
    def _from_valid(cls, spacing: tuple, origin: tuple, direction: np.ndarray,
                    extent: tuple) -> Geometry3D:
        # Values that were validated before (copies, defaults): skip the checks, which cost
        # more than the rest of an Image(arr, copy=False) together.
        g = cls.__new__(cls)
        g._spacing = spacing
        g._origin = origin
        g._direction = direction
        g._extent = extent
        return g

    @classmethod
    def new(cls) -> Geometry3D:
        """A geometry with the defaults (MITK's ``Geometry3D::New()``)."""
        return cls()

    def _set_extent(self, extent: Any) -> None:
        sizes = tuple(int(v) for v in extent)
        if len(sizes) != 3 or any(v < 1 for v in sizes):
            raise ArgumentError(f"extent {extent!r} must be 3 sizes >= 1")
        self._extent = sizes

    # settable properties
    @property
    def spacing(self) -> Vector3D:
        """Vector3D: voxel size in mm along x, y, z (a copy; assign to change)."""
        return Vector3D(*self._spacing)

    @spacing.setter
    def spacing(self, value: Any) -> None:
        self._spacing = validate_spacing(value)

    @property
    def origin(self) -> Point3D:
        """Point3D: world position (LPS, mm) of the centre of voxel (0, 0, 0) (a copy)."""
        return Point3D(*self._origin)

    @origin.setter
    def origin(self, value: Any) -> None:
        self._origin = validate_origin(value)

    @property
    def direction(self) -> np.ndarray:
        """numpy.ndarray: 3x3 copy; column j is the world direction of index axis j."""
        return self._direction.copy()

    @direction.setter
    def direction(self, value: Any) -> None:
        self._direction = validate_direction(value)

    # read-only properties
    @property
    def extent(self) -> tuple:
        """tuple of int: sizes along x, y, z (MITK order)."""
        return self._extent

    @property
    def bounds(self) -> tuple:
        """tuple: ``(0, X, 0, Y, 0, Z)`` in index units, as MITK's image geometries."""
        x, y, z = self._extent
        return (0.0, float(x), 0.0, float(y), 0.0, float(z))

    @property
    def image_geometry(self) -> bool:
        """bool: True (voxel centres at integer indices)."""
        return True

    @property
    def affine(self) -> np.ndarray:
        """numpy.ndarray: the 4x4 index-to-world matrix (LPS)."""
        m = np.eye(4)
        m[:3, :3] = self._direction * np.asarray(self._spacing)
        m[:3, 3] = self._origin
        return m

    @property
    def center(self) -> Point3D:
        """Point3D: world centre of the image's outer box."""
        return self.index_to_world(Point3D(*((n - 1) / 2.0 for n in self._extent)))

    @property
    def diagonal_length(self) -> float:
        """float: length in mm of the outer box's diagonal."""
        return float(np.linalg.norm(np.asarray(self.get_corner_point(7))
                                    - np.asarray(self.get_corner_point(0))))

    # mapping
    def _map(self, point: Any, out: Any, forward: bool):
        matrix = self._direction * np.asarray(self._spacing)
        origin = np.asarray(self._origin)
        if isinstance(point, Vector3D):
            v = np.asarray(point)
            res = matrix @ v if forward else np.linalg.solve(matrix, v)
            result = Vector3D(*res)
        elif isinstance(point, (Point3D,)) or np.ndim(point) == 1:
            p = _numbers(point, "point")
            if p.shape != (3,):
                raise ArgumentError(f"point has shape {p.shape}; expected 3 coordinates")
            res = origin + matrix @ p if forward else np.linalg.solve(matrix, p - origin)
            result = Point3D(*res)
        else:
            pts = _numbers(point, "points")
            if pts.ndim != 2 or pts.shape[1] != 3:
                raise ArgumentError(f"points have shape {pts.shape}; expected (N, 3)")
            res = pts @ matrix.T + origin if forward else \
                np.linalg.solve(matrix, (pts - origin).T).T
            if out is not None:
                out[...] = res
                return out
            return res
        if out is not None:
            for i in range(3):
                out[i] = result[i]
            return out
        return result

    def index_to_world(self, point: Any, out: Any = None):
        """Map an index point to LPS world coordinates (unrounded).

        ``point`` may be a Point3D or any 3-sequence (returns a Point3D), a Vector3D (mapped
        without the origin; returns a Vector3D), or an Nx3 array (returns Nx3).  With ``out``,
        the result is written there and returned.
        """
        return self._map(point, out, True)

    def world_to_index(self, point: Any, out: Any = None):
        """Map LPS world coordinates to continuous index coordinates (inverse of index_to_world)."""
        return self._map(point, out, False)

    def get_extent(self, axis: int) -> float:
        """Size along MITK axis ``axis`` (0 = x, 1 = y, 2 = z)."""
        return float(self._extent[self._axis(axis)])

    def get_extent_in_mm(self, axis: int) -> float:
        """Physical length of axis ``axis``: size times the length of its scaled direction."""
        a = self._axis(axis)
        return float(self._extent[a] * self._spacing[a] * np.linalg.norm(self._direction[:, a]))

    def get_axis_vector(self, axis: int) -> Vector3D:
        """World vector spanning axis ``axis`` over the whole image (direction * spacing * size)."""
        a = self._axis(axis)
        return Vector3D(*(self._direction[:, a] * self._spacing[a] * self._extent[a]))

    def get_corner_point(self, index: int) -> Point3D:
        """World position of outer corner ``index`` (0..7; bits 0/1/2 choose the high x/y/z side)."""
        if isinstance(index, bool) or not isinstance(index, numbers.Integral) \
                or not 0 <= index <= 7:
            raise IndexError(f"corner index {index!r} out of range 0..7")
        corner = [(-0.5 if not (index >> bit) & 1 else self._extent[bit] - 0.5)
                  for bit in range(3)]
        return self.index_to_world(Point3D(*corner))

    def is_index_inside(self, point: Any) -> bool:
        """True if the continuous index lies in the image: ``-0.5 <= p_i < size_i - 0.5``."""
        p = _numbers(point, "point")
        return bool(all(-0.5 <= p[i] < self._extent[i] - 0.5 for i in range(3)))

    def is_inside(self, world: Any) -> bool:
        """True if the world point lies inside the image's outer box."""
        return self.is_index_inside(self.world_to_index(Point3D(*_numbers(world, "point"))))

    def _axis(self, axis: int) -> int:
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral) or not 0 <= axis <= 2:
            raise IndexError(f"axis {axis!r} out of range 0..2")
        return int(axis)

    def copy(self) -> Geometry3D:
        """An independent copy."""
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

