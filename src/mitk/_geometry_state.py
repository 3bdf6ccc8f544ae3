"""GeometryState: the immutable record behind every Geometry3D (spacing, origin, direction, extent).

A geometry never changes a record in place: every change builds a new record and stores it with
one assignment.  So a reader that takes a record once sees one consistent geometry, a time
geometry can share one record among any number of time steps (copy-on-write), and a change of
every step is one swap of the time geometry's table (see :mod:`mitk.time_geometry`).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import numpy.typing as npt

from ._geometry_rules import EQUALITY_TOLERANCE, _show
from .errors import ArgumentError

__all__ = ["DEFAULT_STATE", "IDENTITY", "GeometryState", "check_extent"]

Triple = tuple[float, float, float]
Extent = tuple[int, int, int]


def check_extent(extent: Any) -> Extent:
    """Validate an extent: 3 ints >= 1 (x, y, z); TypeError for non-ints, ArgumentError else."""
    try:
        sizes = list(extent)
    except TypeError:
        raise TypeError(f"extent must be a sequence of 3 ints, not "
                        f"{type(extent).__name__}") from None
    for v in sizes:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
            raise TypeError(f"extent {_show(extent)} must hold ints, not {type(v).__name__}")
    if len(sizes) != 3 or any(v < 1 for v in sizes):
        raise ArgumentError(f"extent {_show(extent)} is invalid; expected 3 sizes >= 1 "
                            "(x, y, z)")
    return (int(sizes[0]), int(sizes[1]), int(sizes[2]))


#: The identity direction, read-only and shared by every record that has it.
IDENTITY: npt.NDArray[np.float64] = np.eye(3)
IDENTITY.flags.writeable = False


def _frozen(direction: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    # The record owns this array: nobody else holds a writable reference to it.
    direction.flags.writeable = False
    return direction


class GeometryState:
    """One geometry's values; immutable (``direction`` is a read-only array owned by the record).

    Attributes
    ----------
    spacing, origin : tuple of 3 float
    direction : numpy.ndarray
        3x3 float64, read-only.
    extent : tuple of 3 int
    """

    __slots__ = ("spacing", "origin", "direction", "extent")

    spacing: Triple
    origin: Triple
    direction: npt.NDArray[np.float64]
    extent: Extent

    def __init__(self, spacing: Triple, origin: Triple, direction: npt.NDArray[np.float64],
                 extent: Extent) -> None:
        # Values are validated by the caller; ``direction`` is owned from now on.  Nothing
        # assigns these attributes again (plain slots: an image is made in microseconds).
        self.spacing = spacing
        self.origin = origin
        self.direction = direction if direction is IDENTITY else _frozen(direction)
        self.extent = extent

    def replace(self, *, spacing: Triple | None = None, origin: Triple | None = None,
                direction: npt.NDArray[np.float64] | None = None,
                extent: Extent | None = None) -> GeometryState:
        """A new record with some values replaced (the rest shared)."""
        return GeometryState(self.spacing if spacing is None else spacing,
                             self.origin if origin is None else origin,
                             self.direction if direction is None else direction,
                             self.extent if extent is None else extent)

    def same(self, other: GeometryState) -> bool:
        """Exactly equal values (used to share one record among steps)."""
        return (self is other or (self.spacing == other.spacing and self.origin == other.origin
                                  and self.extent == other.extent
                                  and bool(np.array_equal(self.direction, other.direction))))

    def close(self, other: GeometryState, tol: float = EQUALITY_TOLERANCE) -> bool:
        """Equal extents and every spacing, origin and direction entry within ``tol``."""
        if self is other:
            return True
        return (self.extent == other.extent
                and all(abs(a - b) <= tol for a, b in zip(self.spacing, other.spacing))
                and all(abs(a - b) <= tol for a, b in zip(self.origin, other.origin))
                and bool(np.all(np.abs(self.direction - other.direction) <= tol)))

    def to_tuple(self) -> tuple[Any, ...]:
        """Plain Python values, for pickling (several times faster than the objects)."""
        return (self.spacing, self.origin, tuple(self.direction.ravel().tolist()), self.extent)

    @classmethod
    def from_tuple(cls, values: Any) -> GeometryState:
        """The inverse of :meth:`to_tuple`."""
        spacing, origin, direction, extent = values
        return cls(tuple(spacing), tuple(origin),  # type: ignore[arg-type]
                   np.array(direction, dtype=np.float64).reshape(3, 3),
                   tuple(extent))  # type: ignore[arg-type]

    def __reduce__(self) -> tuple[Any, ...]:
        return GeometryState.from_tuple, (self.to_tuple(),)

    def __repr__(self) -> str:
        return (f"GeometryState(spacing={self.spacing}, origin={self.origin}, "
                f"direction={self.direction.tolist()}, extent={self.extent})")


#: The record of ``Geometry3D.new()``; shared, since records never change.
DEFAULT_STATE = GeometryState((1.0, 1.0, 1.0), (0.0, 0.0, 0.0), IDENTITY, (1, 1, 1))
