"""Geometry of an image in the LPS world: spacing, origin, direction, and index <-> world maps.

``world = origin + direction @ (spacing * index)``: voxel centres sit at integer indices, column
``j`` of ``direction`` is the world direction of index axis ``j`` (x, y, z), and the direction is
stored exactly as given (never orthonormalised, so a sheared but invertible matrix is valid).
Index points use MITK order ``(i, j, k)`` addressing ``array[k, j, i]``.

Thread safety: a :class:`Geometry3D` keeps its values in one immutable
:class:`~mitk._geometry_state.GeometryState`.  Each setter validates first and then stores a new
record with one assignment (under a lock, so two setters in different threads never lose one
another's change), so a reader in another thread sees the old or the new geometry, never a
mixture, and a failed assignment changes nothing.  The geometry of a time step of a
:class:`~mitk.time_geometry.TimeGeometry` keeps its record in the time geometry's table instead,
which is what makes a change of every step one atomic change.
"""

from __future__ import annotations

import abc
import math
import numbers
import threading
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ._geometry_rules import (_float_array, _show, validate_direction, validate_origin,
                              validate_spacing)
from ._geometry_state import DEFAULT_STATE, IDENTITY, GeometryState, check_extent
from ._typing import Float64Array, MatrixLike, PointsLike, Vector3Like
from .errors import ArgumentError
from .vectors import Point3D, Vector3D

if TYPE_CHECKING:
    from .time_geometry import TimeGeometry

__all__ = [
    "BaseGeometry",
    "Geometry3D",
    "Point3D",
    "Vector3D",
    "validate_direction",
    "validate_origin",
    "validate_spacing",
]

#: Serialises read-modify-write of stand-alone geometries (held for a few microseconds, never
#: while waiting for anything else).  Geometries of time steps use their time geometry's lock.
_STANDALONE_LOCK = threading.Lock()


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


def _unit_columns(direction: Float64Array) -> tuple[Float64Array, Float64Array]:
    """``direction = units * norms`` column-wise, computed without overflow or underflow."""
    scale = np.max(np.abs(direction), axis=0)  # > 0: a valid direction has no zero column
    scaled = direction / scale
    lengths = np.sqrt(np.sum(scaled * scaled, axis=0))
    return scaled / lengths, scale * lengths


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
        Arguments that are not numbers (``bool`` included).

    Notes
    -----
    ``spacing``, ``origin`` and ``direction`` return read-only copies (a ``Vector3D``, a
    ``Point3D`` and a read-only array): changing an item of one raises instead of silently
    changing nothing.  Change the geometry by assignment (``geometry.spacing = v``).  An
    assignment validates first and then replaces the stored values in one step: a failed one
    changes nothing, and a reader in another thread sees the old or the new value, never a
    mixture.  Geometry changes take no pixel lock.

    The geometry of a time step (``image.get_geometry(t)``,
    ``time_geometry.get_geometry_for_time_step(t)``) is live: assigning to it changes that step
    of its time geometry, and only that step.  Geometries pickle and deep-copy as stand-alone
    geometries; ``copy()`` gives an independent one.
    """

    __slots__ = ("_own", "_home", "_step", "__weakref__")

    _own: GeometryState
    _home: TimeGeometry | None
    _step: int

    def __init__(self, spacing: Vector3Like = (1.0, 1.0, 1.0),
                 origin: Vector3Like = (0.0, 0.0, 0.0), direction: MatrixLike | None = None,
                 extent: tuple[int, int, int] | list[int] = (1, 1, 1)) -> None:
        self._own = GeometryState(validate_spacing(spacing), validate_origin(origin),
                                  IDENTITY if direction is None
                                  else validate_direction(direction),
                                  check_extent(extent))
        self._home = None
        self._step = 0

    @classmethod
    def _of_state(cls, state: GeometryState) -> Geometry3D:
        # A stand-alone geometry holding an (immutable, so shareable) record.
        g = cls.__new__(cls)
        g._own = state
        g._home = None
        g._step = 0
        return g

    @classmethod
    def _bound(cls, home: TimeGeometry, step: int) -> Geometry3D:
        # The live geometry of one step: reads and writes go to ``home``'s table.
        g = cls.__new__(cls)
        g._home = home
        g._step = step
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
        return cls._of_state(DEFAULT_STATE)

    @property
    def _state(self) -> GeometryState:
        # One read: the record is immutable, so everything taken from it is consistent.
        home = self._home
        if home is None:
            return self._own
        return home._step_state(self._step)

    def _update(self, change: Callable[[GeometryState], GeometryState]) -> None:
        home = self._home
        if home is not None:
            home._update_step(self._step, change)
            return
        with _STANDALONE_LOCK:
            self._own = change(self._own)

    def _set_extent(self, extent: Any) -> None:
        # For the owning image only: the extent follows the pixel buffer's shape.
        value = check_extent(extent)
        self._update(lambda s: s.replace(extent=value))

    # -- settable properties

    @property
    def spacing(self) -> Vector3D:
        """Vector3D: voxel size in mm along x, y, z.

        A read-only copy (item assignment raises ``TypeError``); assign to change (validated
        as :func:`validate_spacing` with three entries).
        """
        return Vector3D._readonly(self._state.spacing)  # type: ignore[no-any-return]

    @spacing.setter
    def spacing(self, value: Vector3Like) -> None:
        spacing = validate_spacing(value)
        self._update(lambda s: s.replace(spacing=spacing))

    @property
    def origin(self) -> Point3D:
        """Point3D: world position (LPS, mm) of the centre of voxel ``(0, 0, 0)``.

        A read-only copy (item assignment raises ``TypeError``); assign to change (validated
        as :func:`validate_origin` with three entries).
        """
        return Point3D._readonly(self._state.origin)  # type: ignore[no-any-return]

    @origin.setter
    def origin(self, value: Vector3Like) -> None:
        origin = validate_origin(value)
        self._update(lambda s: s.replace(origin=origin))

    @property
    def direction(self) -> Float64Array:
        """numpy.ndarray: 3x3 float64; column ``j`` is the world direction of index axis ``j``.

        Read-only (writing an entry raises ``ValueError``, as for any read-only array); assign
        to change (validated as :func:`validate_direction`, stored exactly as given).  Use
        ``geometry.direction.copy()`` for a writable copy.
        """
        return self._state.direction.view()

    @direction.setter
    def direction(self, value: MatrixLike) -> None:
        direction = validate_direction(value)
        self._update(lambda s: s.replace(direction=direction))

    # -- read-only properties

    @property
    def extent(self) -> tuple[int, int, int]:
        """tuple of int: sizes along x, y, z (MITK order); set by the owning image."""
        return self._state.extent

    @property
    def bounds(self) -> tuple[float, float, float, float, float, float]:
        """tuple of float: ``(0, X, 0, Y, 0, Z)`` in index units, as MITK's image geometries."""
        x, y, z = self._state.extent
        return (0.0, float(x), 0.0, float(y), 0.0, float(z))

    @property
    def image_geometry(self) -> bool:
        """bool: always True (voxel centres at integer indices, MITK's ``ImageGeometry``)."""
        return True

    @property
    def affine(self) -> Float64Array:
        """numpy.ndarray: the 4x4 LPS index-to-world matrix (a new, read-only array).

        ``affine[:3, :3] = direction @ diag(spacing)`` and ``affine[:3, 3] = origin``; entries
        beyond the float64 range are infinite.
        """
        state = self._state
        m = np.eye(4)
        with np.errstate(over="ignore"):
            m[:3, :3] = state.direction * np.asarray(state.spacing)
        m[:3, 3] = state.origin
        m.flags.writeable = False
        return m

    @property
    def center(self) -> Point3D:
        """Point3D: world centre of the outer box (index ``(size - 1) / 2`` on every axis)."""
        state = self._state
        return self._map_state(state, Point3D(*((n - 1) / 2.0 for n in state.extent)), None,
                               True)

    @property
    def diagonal_length(self) -> float:
        """float: length in mm of the outer box's diagonal (corner 0 to corner 7).

        Computed without intermediate overflow; ``inf`` only when the length itself is beyond
        the float64 range.
        """
        state = self._state
        units, norms = _unit_columns(state.direction)
        with np.errstate(all="ignore"):
            lengths = np.asarray(state.extent, dtype=np.float64) * np.asarray(state.spacing) * norms
            longest = float(np.max(lengths))
            if not math.isfinite(longest):
                return math.inf  # independent columns: an infinite edge, an infinite diagonal
            diagonal = units @ (lengths / longest)
        return math.hypot(*diagonal.tolist()) * longest

    # -- mapping

    @staticmethod
    def _map_state(state: GeometryState, point: Any, out: Any, forward: bool) -> Any:
        if isinstance(point, Vector3D):
            as_vector, pts = True, np.asarray(point)
        else:
            as_vector, pts = False, _float_array(point, "point")
        if pts.ndim == 0 or pts.shape[-1] != 3 or (as_vector and pts.ndim != 1):
            raise ArgumentError(f"point {_show(point)} has shape {pts.shape}; expected 3 "
                                "coordinates or an (N, 3) array")
        flat = pts.reshape(-1, 3)
        spacing = np.asarray(state.spacing)
        origin = np.asarray(state.origin)
        # Unit columns times their lengths: extreme but valid spacings and directions (1e300,
        # 1e-300) then overflow only where the result itself is beyond the float64 range
        # (giving inf), never in an intermediate product, and never warn (SPEC section 2).
        units, norms = _unit_columns(state.direction)
        with np.errstate(all="ignore"):
            if forward:
                res = ((flat * spacing) * norms) @ units.T
                if not as_vector:
                    res += origin
            else:
                rel = flat if as_vector else flat - origin
                res = np.linalg.solve(units, rel.T).T / norms / spacing
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
            return Vector3D(*res.tolist()) if as_vector else Point3D(*res.tolist())
        if isinstance(out, np.ndarray):
            if out.shape != (3,):
                raise ArgumentError(f"out must have shape (3,), not {out.shape}")
            np.copyto(out, res, casting="same_kind")
        else:
            for i in range(3):
                out[i] = float(res[i])
        return out

    def index_to_world(self, point: PointsLike | Point3D | Vector3D, out: Any = None) -> Any:
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

        Notes
        -----
        Never warns.  A coordinate beyond the float64 range (about 1.8e308) comes out as
        ``inf``, or NaN where such terms cancel.
        """
        return self._map_state(self._state, point, out, True)

    def world_to_index(self, point: PointsLike | Point3D | Vector3D, out: Any = None) -> Any:
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

        Notes
        -----
        Never warns; out-of-range results are as for :meth:`index_to_world`.
        """
        return self._map_state(self._state, point, out, False)

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
        return float(self._state.extent[self._axis(axis)])

    def get_extent_in_mm(self, axis: int) -> float:
        """Physical length of one axis: size times the norm of its column of the affine.

        Parameters
        ----------
        axis : {0, 1, 2}
            MITK axis: 0 = x, 1 = y, 2 = z.

        Returns
        -------
        float
            ``size * spacing * |direction[:, axis]|`` in mm (``inf`` beyond the float64
            range, without a warning).

        Raises
        ------
        IndexError
            ``axis`` outside 0..2.
        TypeError
            ``axis`` not an int.
        """
        a = self._axis(axis)
        state = self._state
        # Python floats: an overflow gives inf, never a warning.
        return state.extent[a] * state.spacing[a] * math.hypot(*state.direction[:, a].tolist())

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
        state = self._state
        length = state.spacing[a] * state.extent[a]
        return Vector3D(*(float(v) * length for v in state.direction[:, a].tolist()))

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
        state = self._state
        corner = [state.extent[bit] - 0.5 if (index >> bit) & 1 else -0.5 for bit in range(3)]
        return self._map_state(state, Point3D(*corner), None, True)  # type: ignore[no-any-return]

    def is_index_inside(self, point: PointsLike) -> Any:
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
        upper = np.asarray(self._state.extent, dtype=np.float64) - 0.5
        inside = np.all((p >= -0.5) & (p < upper), axis=-1)
        return bool(inside) if p.ndim == 1 else inside

    def is_inside(self, world: PointsLike) -> Any:
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
        return self.is_index_inside(np.asarray(self._map_state(self._state, pts, None, False)))

    # -- copying, comparison, pickling

    def copy(self) -> Geometry3D:
        """An independent, stand-alone copy (changes to either do not affect the other).

        Returns
        -------
        Geometry3D
            Same spacing, origin, direction and extent.
        """
        return Geometry3D._of_state(self._state)  # records are immutable: sharing is a copy

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Geometry3D):
            return NotImplemented
        return self._state.close(other._state)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        s = self._state
        return (f"Geometry3D(spacing={s.spacing}, origin={s.origin}, "
                f"direction={s.direction.tolist()}, extent={s.extent})")

    def __getstate__(self) -> dict[str, Any]:
        s = self._state
        return {"spacing": s.spacing, "origin": s.origin, "direction": s.direction.tolist(),
                "extent": s.extent}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Always stand-alone: a copy of a time step's geometry belongs to no time geometry.
        self._own = GeometryState(tuple(state["spacing"]), tuple(state["origin"]),
                                  np.array(state["direction"], dtype=np.float64),
                                  tuple(state["extent"]))
        self._home = None
        self._step = 0
