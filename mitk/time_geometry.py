"""Time geometries: which time interval each step of an image covers, and its Geometry3D.

``ProportionalTimeGeometry`` has equal steps (``first_time_point``, ``step_duration``);
``ArbitraryTimeGeometry`` takes explicit bounds per step.  Both hold one live
:class:`~mitk.geometry.Geometry3D` per step.  Method names follow MITK's C++ API.  A 2D or 3D image
has one step whose bounds are +/- ``sys.float_info.max`` (a "static" geometry).
"""

from __future__ import annotations

import math
import numbers
import sys
from typing import Any

from .errors import ArgumentError, TimeStepError
from .geometry import Geometry3D

__all__ = ["ArbitraryTimeGeometry", "ProportionalTimeGeometry", "TimeGeometry",
           "check_time_step"]

_MAX = sys.float_info.max


def check_time_step(time_step: Any, count: int) -> int:
    """Validate a time step index: an int with ``0 <= t < count``.

    Raises
    ------
    TypeError
        ``bool``, ``float`` or any other non-integer.
    TimeStepError
        Negative or not smaller than ``count`` (no wrap-around).
    """
    if isinstance(time_step, bool) or not isinstance(time_step, numbers.Integral):
        raise TypeError(f"time_step must be an int, not {type(time_step).__name__}")
    t = int(time_step)
    if not 0 <= t < count:
        raise TimeStepError(f"time_step {t} is out of range; valid steps are 0 to {count - 1}")
    return t


def _finite(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ArgumentError(f"{name} must be finite, got {value!r}")
    return v


class TimeGeometry:
    """Abstract base: a sequence of time steps, each with bounds and a Geometry3D."""

    _geometries: list

    def count_time_steps(self) -> int:
        """Number of time steps."""
        return len(self._geometries)

    def get_time_bounds(self, t: int | None = None) -> tuple:  # pragma: no cover - abstract
        """``(min, max)`` of step ``t``, or of the whole geometry when ``t`` is None."""
        raise NotImplementedError

    def is_valid_time_step(self, t: Any) -> bool:
        """True if ``t`` is an int step index of this geometry."""
        return (isinstance(t, numbers.Integral) and not isinstance(t, bool)
                and 0 <= int(t) < self.count_time_steps())

    def is_valid_time_point(self, time_point: float) -> bool:
        """True if the time point lies in ``[min, max)`` of the whole geometry."""
        lo, hi = self.get_time_bounds()
        return lo <= time_point < hi or (lo == -_MAX and hi == _MAX)

    def get_min_time_point(self, t: int | None = None) -> float:
        """Start of step ``t`` (or of the whole geometry)."""
        return self.get_time_bounds(t)[0]

    def get_max_time_point(self, t: int | None = None) -> float:
        """End of step ``t`` (or of the whole geometry)."""
        return self.get_time_bounds(t)[1]

    def time_step_to_time_point(self, t: int) -> float:
        """The time point of step ``t``: its start."""
        return self.get_time_bounds(check_time_step(t, self.count_time_steps()))[0]

    def get_geometry_for_time_step(self, t: int) -> Geometry3D:
        """The live Geometry3D of step ``t`` (changes to it change the image)."""
        return self._geometries[check_time_step(t, self.count_time_steps())]

    def get_geometry_for_time_point(self, time_point: float) -> Geometry3D:
        """The live Geometry3D of the step containing ``time_point`` (clamped, as MITK)."""
        return self._geometries[self.time_point_to_time_step(time_point)]

    def geometries(self) -> list:
        """The live per-step geometries, as a new list."""
        return list(self._geometries)

    def _set_extent(self, extent: Any) -> None:
        for g in self._geometries:
            g._set_extent(extent)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TimeGeometry) or type(self) is not type(other):
            return NotImplemented
        n = self.count_time_steps()
        return (n == other.count_time_steps()
                and all(abs(a - b) <= 1e-6 or a == b for t in range(n)
                        for a, b in zip(self.get_time_bounds(t), other.get_time_bounds(t)))
                and all(g == h for g, h in zip(self._geometries, other._geometries)))

    __hash__ = None  # type: ignore[assignment]


class ProportionalTimeGeometry(TimeGeometry):
    """Equal time steps: step ``t`` covers ``[first + t*d, first + (t+1)*d)``.

    Parameters
    ----------
    geometries : list of Geometry3D
        One per step, used as given (live).
    first_time_point : float
        Start of step 0 (default 0).
    step_duration : float
        Duration of each step, > 0 (default 1).
    static : bool
        One step valid at all times (2D/3D images): bounds +/- ``sys.float_info.max``.
    """

    def __init__(self, geometries: list, first_time_point: float = 0.0,
                 step_duration: float = 1.0, *, static: bool = False) -> None:
        geometries = list(geometries)
        if not geometries or not all(isinstance(g, Geometry3D) for g in geometries):
            raise TypeError("geometries must be a non-empty list of Geometry3D")
        if static and len(geometries) != 1:
            raise ArgumentError(f"a static time geometry has 1 step, not {len(geometries)}")
        self._geometries = geometries
        self._static = bool(static)
        if first_time_point == 0.0 and step_duration == 1.0:  # the defaults need no checks
            self._first, self._duration = 0.0, 1.0
        else:
            self.first_time_point = first_time_point
            self.step_duration = step_duration

    @classmethod
    def from_geometry(cls, geometry: Geometry3D, time_steps: int, first_time_point: float = 0.0,
                      step_duration: float = 1.0, static: bool = False
                      ) -> ProportionalTimeGeometry:
        """``time_steps`` independent copies of ``geometry``."""
        if isinstance(time_steps, bool) or not isinstance(time_steps, numbers.Integral) \
                or time_steps < 1:
            raise ArgumentError(f"time_steps must be an int >= 1, got {time_steps!r}")
        return cls([geometry.copy() for _ in range(int(time_steps))], first_time_point,
                   step_duration, static=static)

    @property
    def first_time_point(self) -> float:
        """float: start of step 0."""
        return self._first

    @first_time_point.setter
    def first_time_point(self, value: float) -> None:
        self._first = _finite(value, "first_time_point")

    @property
    def step_duration(self) -> float:
        """float: duration of every step (> 0)."""
        return self._duration

    @step_duration.setter
    def step_duration(self, value: float) -> None:
        d = _finite(value, "step_duration")
        if d <= 0:
            raise ArgumentError(f"step_duration must be > 0, got {value!r}")
        self._duration = d

    def get_time_bounds(self, t: int | None = None) -> tuple:
        if self._static:
            if t is not None:
                check_time_step(t, 1)
            return (-_MAX, _MAX)
        n = self.count_time_steps()
        if t is None:
            return (self._first, self._first + n * self._duration)
        t = check_time_step(t, n)
        return (self._first + t * self._duration, self._first + (t + 1) * self._duration)

    def time_point_to_time_step(self, time_point: float) -> int:
        """The step containing ``time_point``, clamped to the valid range (as MITK)."""
        if self._static:
            return 0
        step = math.floor((float(time_point) - self._first) / self._duration)
        return int(min(max(step, 0), self.count_time_steps() - 1))

    def copy(self) -> ProportionalTimeGeometry:
        """A deep copy (independent geometries)."""
        return ProportionalTimeGeometry([g.copy() for g in self._geometries], self._first,
                                        self._duration, static=self._static)

    def __repr__(self) -> str:
        if self._static:
            return "ProportionalTimeGeometry(steps=1, static)"
        return (f"ProportionalTimeGeometry(steps={self.count_time_steps()}, "
                f"first_time_point={self._first}, step_duration={self._duration})")


class ArbitraryTimeGeometry(TimeGeometry):
    """Time steps with explicit bounds.

    Parameters
    ----------
    bounds : sequence of (min, max)
        One interval per step; each ``min < max``, increasing, not overlapping.
    geometries : list of Geometry3D
        One per step, used as given (live).
    """

    def __init__(self, bounds: Any, geometries: list) -> None:
        geometries = list(geometries)
        if not geometries or not all(isinstance(g, Geometry3D) for g in geometries):
            raise TypeError("geometries must be a non-empty list of Geometry3D")
        pairs = []
        for i, b in enumerate(bounds):
            try:
                lo, hi = b
            except (TypeError, ValueError):
                raise ArgumentError(f"bounds[{i}] = {b!r} is not a (min, max) pair") from None
            lo, hi = _finite(lo, f"bounds[{i}][0]"), _finite(hi, f"bounds[{i}][1]")
            if not lo < hi:
                raise ArgumentError(f"bounds[{i}] = ({lo}, {hi}) must have min < max")
            if pairs and lo < pairs[-1][1]:
                raise ArgumentError(f"bounds[{i}] = ({lo}, {hi}) overlaps or precedes step {i - 1}")
            pairs.append((lo, hi))
        if len(pairs) != len(geometries):
            raise ArgumentError(f"{len(pairs)} bounds for {len(geometries)} geometries")
        self._bounds = pairs
        self._geometries = geometries

    def get_time_bounds(self, t: int | None = None) -> tuple:
        if t is None:
            return (self._bounds[0][0], self._bounds[-1][1])
        return self._bounds[check_time_step(t, self.count_time_steps())]

    def time_point_to_time_step(self, time_point: float) -> int:
        """The step containing ``time_point``, clamped to the valid range (as MITK)."""
        tp = float(time_point)
        for t, (lo, hi) in enumerate(self._bounds):
            if tp < hi:
                return t
        return len(self._bounds) - 1

    def copy(self) -> ArbitraryTimeGeometry:
        """A deep copy (independent geometries)."""
        return ArbitraryTimeGeometry(list(self._bounds), [g.copy() for g in self._geometries])

    def __repr__(self) -> str:
        return f"ArbitraryTimeGeometry(bounds={self._bounds})"
