"""Point3D and Vector3D: float 3-vectors, mutable by default, read-only when a geometry returns them.

A geometry hands out its spacing and origin as *read-only* vectors: they are copies, so an item
assignment such as ``geometry.origin.x = 7`` could only change the copy and would silently do
nothing.  It raises ``TypeError`` instead; assign the whole value (``geometry.origin = p``) or
make a mutable copy (``Point3D(geometry.origin)``).  Vectors made by users are mutable.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, Iterator

import numpy as np
import numpy.typing as npt

from ._geometry_rules import _float_array, _show
from .errors import ArgumentError

__all__ = ["Point3D", "Vector3D"]


def _coordinate(value: Any, owner: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner} coordinates must be real numbers, not "
                        f"{type(value).__name__} {_show(value)}")
    return float(value)


class _Triple(Sequence[float]):
    """Shared implementation of :class:`Point3D` and :class:`Vector3D`.

    The coordinates live in a list (mutable) or a tuple (read-only); which one is the whole
    read-only flag, so no extra slot is needed.
    """

    __slots__ = ("_v",)

    _v: list[float] | tuple[float, float, float]

    def __init__(self, x: float | Sequence[float] | npt.NDArray[Any] | None = None,
                 y: float | None = None, z: float | None = None) -> None:
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

    @classmethod
    def _readonly(cls, values: tuple[float, float, float]) -> Any:
        # For geometries: ``values`` are already three floats.
        v = cls.__new__(cls)
        v._v = values
        return v

    @property
    def readonly(self) -> bool:
        """bool: True for a copy handed out by a geometry (item assignment raises TypeError)."""
        return isinstance(self._v, tuple)

    def _check(self, index: Any) -> int:
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, numbers.Integral):
            raise TypeError(f"{type(self).__name__} indices must be integers, not "
                            f"{type(index).__name__}")
        if not -3 <= index <= 2:
            raise IndexError(f"{type(self).__name__} index {index} is out of range; "
                             "expected -3 to 2")
        return int(index)

    # Slices are refused (TypeError), unlike other sequences: a point is not a container.
    def __getitem__(self, index: int) -> float:  # type: ignore[override]
        return self._v[self._check(index)]

    def __setitem__(self, index: int, value: float) -> None:
        i = self._check(index)
        v = self._v
        if isinstance(v, tuple):
            raise TypeError(
                f"this {type(self).__name__} is a read-only copy of a geometry's value, so "
                "changing it would change nothing; assign the whole value to the geometry "
                f"(e.g. geometry.origin = ...) or make a mutable copy with "
                f"{type(self).__name__}(value)")
        v[i] = _coordinate(value, type(self).__name__)

    def __len__(self) -> int:
        return 3

    def __iter__(self) -> Iterator[float]:
        return iter(tuple(self._v))

    def __array__(self, dtype: npt.DTypeLike | None = None, copy: bool | None = None
                  ) -> npt.NDArray[Any]:
        if copy is False:
            raise ValueError(f"a {type(self).__name__} holds Python floats, so an array of it "
                             "is always a copy (use copy=None or copy=True)")
        return np.array(self._v, dtype=np.float64 if dtype is None else dtype)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Triple):
            return list(self._v) == list(other._v)
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
        return [float(v) for v in values] == list(self._v)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        x, y, z = self._v
        return f"{type(self).__name__}({x!r}, {y!r}, {z!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # A copy is an ordinary (mutable) vector, like Point3D(p).
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
    """A position: a float 3-vector (MITK's ``Point3D``).

    Parameters
    ----------
    x, y, z : float, optional
        The coordinates; ``Point3D()`` is ``(0, 0, 0)``.  Instead of three numbers, ``x`` may
        be one sequence of three (tuple, list, ndarray, another point or vector).

    Raises
    ------
    TypeError
        Non-numbers (``bool`` included), or neither three numbers nor one sequence.
    ArgumentError
        A sequence that does not hold exactly three numbers.

    Notes
    -----
    Supports ``.x .y .z``, indices ``-3..2`` (others raise ``IndexError``), item assignment,
    iteration, ``len``, ``tuple(p)``, ``list(p)``, ``np.asarray(p)`` (always a new float64
    array), pickling, and ``==`` with any length-3 sequence of numbers.  Points are mutable, so
    unhashable, except the read-only copies a geometry returns (:attr:`readonly`), whose item
    assignment raises ``TypeError`` instead of silently changing only the copy.
    :meth:`Geometry3D.index_to_world` maps points with the origin.
    """

    __slots__ = ()


class Vector3D(_Triple):
    """A displacement: a float 3-vector (MITK's ``Vector3D``).

    Parameters
    ----------
    x, y, z : float, optional
        The components; ``Vector3D()`` is ``(0, 0, 0)``.  Instead of three numbers, ``x`` may
        be one sequence of three.

    Raises
    ------
    TypeError
        Non-numbers (``bool`` included), or neither three numbers nor one sequence.
    ArgumentError
        A sequence that does not hold exactly three numbers.

    Notes
    -----
    Behaves as :class:`Point3D` (read-only when a geometry returns it), except that
    :meth:`Geometry3D.index_to_world` and :meth:`Geometry3D.world_to_index` map vectors
    without the origin (a difference of points).
    """

    __slots__ = ()
