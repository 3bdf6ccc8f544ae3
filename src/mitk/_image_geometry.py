"""The geometry side of :class:`mitk.Image`: per-step spacing, origin, direction, time geometry.

:class:`ImageGeometry` is a mixin of ``Image``; it owns no state of its own (the image's time
geometry ``_tg`` holds every step's geometry).  Every setter is one atomic change of the time
geometry's table (see :mod:`mitk._step_table`), so copies, pickles and saves, which read a
snapshot, never see a half-applied ``img.spacing = v``.  Geometry takes no pixel lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable


from ._geometry_rules import validate_direction, validate_origin, validate_spacing
from ._geometry_state import IDENTITY, GeometryState
from ._time_rules import check_time_step
from ._typing import Float64Array, MatrixLike, PointsLike, Triple, Vector3Like
from .errors import ArgumentError
from .geometry import Geometry3D
from .time_geometry import ProportionalTimeGeometry, TimeGeometry
from .vectors import Point3D, Vector3D

if TYPE_CHECKING:
    from ._core.buffer import PixelBuffer

__all__ = ["ImageGeometry", "extent_xyz", "make_time_geometry"]

def extent_xyz(ndim: int, shape: tuple[int, ...]) -> tuple[int, int, int]:
    """Spatial sizes in MITK order ``(x, y, z)`` of a NumPy-order shape; 2D images have z = 1."""
    spatial = shape[1:ndim] if ndim == 4 else shape[:ndim]
    if len(spatial) == 2:
        return (int(spatial[1]), int(spatial[0]), 1)
    return (int(spatial[2]), int(spatial[1]), int(spatial[0]))


def _like_time_geometry(like: object, ndim: int, steps: int) -> TimeGeometry:
    tg = getattr(like, "time_geometry", None)  # an Image or LazyImage (NotInitializedError
    if isinstance(tg, TimeGeometry):            # of an empty image propagates)
        count = tg.count_time_steps()
        if count != steps:
            raise ArgumentError(
                f"like has {count} time step{'s' if count != 1 else ''} but the array has "
                f"{steps}; the time geometry can only be taken from an image with as many "
                "steps (pass spacing, origin and direction instead)")
        new = tg.copy()
        static = isinstance(new, ProportionalTimeGeometry) and new.static
        if static != (ndim < 4):  # one step either way: 3D <-> 4D with one frame
            new = ProportionalTimeGeometry._of_state(new._step_state(0), 1, static=ndim < 4)
        return new
    try:
        values = (like.spacing, like.origin, like.direction)  # type: ignore[attr-defined]
    except AttributeError:
        raise TypeError(
            f"like must be an Image (or any object with time_geometry, or with spacing, "
            f"origin and direction), not {type(like).__name__}") from None
    state = GeometryState(validate_spacing(values[0], 3, "like.spacing"),
                          validate_origin(values[1], 3, "like.origin"),
                          validate_direction(values[2], 3, "like.direction"), (1, 1, 1))
    return ProportionalTimeGeometry._of_state(state, steps, static=ndim < 4)


def make_time_geometry(ndim: int, shape: tuple[int, ...], spacing: Any = None,
                       origin: Any = None, direction: Any = None,
                       like: object = None) -> TimeGeometry:
    """The time geometry of a new image of ``shape`` (NumPy order, ``ndim`` image axes).

    Without ``like``: the given values (validated) or the defaults on every step.  With
    ``like``: a copy of its time geometry (ArgumentError if its step count differs), and the
    given values replace its own on every step.  O(1) in the number of steps.
    """
    steps = shape[0] if ndim == 4 else 1
    extent = extent_xyz(ndim, shape)
    values = (None if spacing is None else validate_spacing(spacing, ndim),
              None if origin is None else validate_origin(origin, ndim),
              None if direction is None else validate_direction(direction, ndim))
    if like is None:
        state = GeometryState((1.0, 1.0, 1.0) if values[0] is None else values[0],
                              (0.0, 0.0, 0.0) if values[1] is None else values[1],
                              IDENTITY if values[2] is None else values[2], extent)
        return ProportionalTimeGeometry._of_state(state, steps, static=ndim < 4)
    tg = _like_time_geometry(like, ndim, steps)
    sp, og, dr = values
    tg._update_all(lambda s: s.replace(spacing=sp, origin=og, direction=dr, extent=extent))
    return tg


class ImageGeometry:
    """Mixin of :class:`mitk.Image`: geometry getters and setters (see the Image docstring)."""

    __slots__ = ()

    _tg: TimeGeometry | None
    _ndim: int
    _buf: PixelBuffer | None

    if TYPE_CHECKING:
        def _require(self) -> PixelBuffer: ...

        @property
        def time_steps(self) -> int: ...

    def _time_geometry(self) -> TimeGeometry:
        self._require()
        tg = self._tg
        assert tg is not None  # set together with the buffer
        return tg

    def _state(self, time_step: int) -> GeometryState:
        tg = self._time_geometry()
        return tg._step_state(check_time_step(time_step, tg.count_time_steps()))

    @property
    def time_geometry(self) -> TimeGeometry:
        """TimeGeometry: the live time geometry (one Geometry3D per time step, made on use).

        Its ``copy()`` is a consistent snapshot of every step, taken atomically.
        """
        return self._time_geometry()

    def set_time_geometry(self, time_geometry: TimeGeometry) -> None:
        """Replace the time geometry with a copy of ``time_geometry``.

        Parameters
        ----------
        time_geometry : TimeGeometry
            Must have exactly ``time_steps`` steps.  It is copied: the image never shares its
            geometry with another image or time geometry, so later changes to either side do
            not reach the other.  The copy's extents are set to this image's sizes.

        Raises
        ------
        TypeError
            Not a TimeGeometry.
        ArgumentError
            A different number of steps (nothing changes).
        NotInitializedError
        """
        buf = self._require()
        if not isinstance(time_geometry, TimeGeometry):
            raise TypeError(
                f"time_geometry must be a TimeGeometry, not {type(time_geometry).__name__}")
        steps = time_geometry.count_time_steps()
        if steps != self.time_steps:
            raise ArgumentError(
                f"time geometry has {steps} steps but the image has {self.time_steps}")
        new = time_geometry.copy()
        new._set_extent(extent_xyz(self._ndim, buf.shape))
        self._tg = new

    def get_geometry(self, time_step: int = 0) -> Geometry3D:
        """The live :class:`Geometry3D` of one time step (changes to it change that step only)."""
        tg = self._time_geometry()
        return tg.get_geometry_for_time_step(check_time_step(time_step, tg.count_time_steps()))

    def _set(self, time_step: int | None, change: Callable[[GeometryState], GeometryState]
             ) -> None:
        tg = self._time_geometry()
        if time_step is None:
            tg._update_all(change)  # one atomic change of every step
        else:
            tg._update_step(check_time_step(time_step, tg.count_time_steps()), change)

    def get_spacing(self, time_step: int = 0) -> Triple:
        """Spacing ``(sx, sy, sz)`` in mm of one time step (sz = 1 for 2D)."""
        return self._state(time_step).spacing

    def get_origin(self, time_step: int = 0) -> Triple:
        """Origin ``(ox, oy, oz)`` (LPS, mm) of one time step."""
        return self._state(time_step).origin

    def get_direction(self, time_step: int = 0) -> Float64Array:
        """Direction of one time step: a read-only 3x3 float64 array (columns: index axes, LPS).

        Writing an entry raises ``ValueError`` (it could not change the image); assign with
        :meth:`set_direction`, or take ``.copy()`` for a writable array.
        """
        return self._state(time_step).direction.view()

    def set_spacing(self, spacing: Vector3Like, time_step: int | None = 0) -> None:
        """Set the spacing of one time step (``time_step=None``: every step, atomically).

        Raises ArgumentError (nothing changes) for a wrong length, non-finite or <= 0 value,
        TypeError for non-numbers (``bool`` included).
        """
        self._require()
        value = validate_spacing(spacing, self._ndim)
        self._set(time_step, lambda s: s.replace(spacing=value))

    def set_origin(self, origin: Vector3Like, time_step: int | None = 0) -> None:
        """Set the origin of one time step (``time_step=None``: every step, atomically)."""
        self._require()
        value = validate_origin(origin, self._ndim)
        self._set(time_step, lambda s: s.replace(origin=value))

    def set_direction(self, direction: MatrixLike, time_step: int | None = 0) -> None:
        """Set the direction of one time step (``time_step=None``: every step, atomically).

        Kept exactly as given (never normalised).
        """
        self._require()
        value = validate_direction(direction, self._ndim)
        self._set(time_step, lambda s: s.replace(direction=value))

    @property
    def spacing(self) -> Triple:
        """tuple: spacing of step 0; assigning sets every step in one atomic change."""
        return self.get_spacing(0)

    @spacing.setter
    def spacing(self, value: Vector3Like) -> None:
        self.set_spacing(value, None)

    @property
    def origin(self) -> Triple:
        """tuple: origin of step 0 (LPS); assigning sets every step in one atomic change."""
        return self.get_origin(0)

    @origin.setter
    def origin(self, value: Vector3Like) -> None:
        self.set_origin(value, None)

    @property
    def direction(self) -> Float64Array:
        """numpy.ndarray: read-only 3x3 direction of step 0; assigning sets every step."""
        return self.get_direction(0)

    @direction.setter
    def direction(self, value: MatrixLike) -> None:
        self.set_direction(value, None)

    @property
    def direction_cosines(self) -> tuple[float, ...]:
        """tuple: the step-0 direction as a row-major 9-tuple."""
        return tuple(self.get_direction(0).ravel().tolist())

    @property
    def affine(self) -> Float64Array:
        """numpy.ndarray: 4x4 LPS index-to-world matrix of step 0 (a new, read-only array)."""
        return self.get_geometry(0).affine

    def index_to_world(self, point: PointsLike | Point3D | Vector3D, time_step: int = 0) -> Any:
        """Map an index point ``(i, j, k)`` (or an Nx3 array) to LPS world coordinates.

        See :meth:`Geometry3D.index_to_world`.
        """
        return Geometry3D._map_state(self._state(time_step), point, None, True)

    def world_to_index(self, point: PointsLike | Point3D | Vector3D, time_step: int = 0) -> Any:
        """Map an LPS world point (or an Nx3 array) to continuous index coordinates.

        See :meth:`Geometry3D.world_to_index`.
        """
        return Geometry3D._map_state(self._state(time_step), point, None, False)
