"""Time geometries: the time steps of an image, each with its bounds and its own Geometry3D.

Method names follow MITK (``count_time_steps``, ``time_point_to_time_step``, ...).  A 2D or 3D
image has one *static* step valid at all times (bounds ``+/- sys.float_info.max``); a 4D image
has one step per frame.  A time step is an ``int`` with ``0 <= t < count`` everywhere: no
wrap-around, and ``bool`` or ``float`` steps are refused (:func:`check_time_step`).

Thread safety: the per-step geometries are live objects whose own assignments are atomic (see
:mod:`mitk.geometry`); time settings (``first_time_point``, ``step_duration``) are replaced by
single assignments, so readers see the old or the new value.
"""

from __future__ import annotations

import abc
import math
import numbers
import sys
from typing import Any

from .errors import ArgumentError, TimeStepError
from .geometry import Geometry3D

__all__ = ["ArbitraryTimeGeometry", "ProportionalTimeGeometry", "TimeGeometry",
           "check_time_step"]

_MAX = sys.float_info.max

#: Time bounds compare equal within this absolute tolerance (as geometries do).
TIME_TOLERANCE = 1e-6


def check_time_step(time_step: Any, count: int) -> int:
    """Validate a time step index and return it as an ``int``.

    Parameters
    ----------
    time_step : int
        The step; NumPy integers are accepted.
    count : int
        Number of time steps.

    Returns
    -------
    int
        ``time_step`` with ``0 <= time_step < count``.

    Raises
    ------
    TypeError
        ``bool``, ``float`` or any other non-integer.
    TimeStepError
        Negative or not smaller than ``count`` (no wrap-around); the message names the step
        and the valid range.
    """
    if isinstance(time_step, bool) or not isinstance(time_step, numbers.Integral):
        raise TypeError(f"time_step must be an int, not {type(time_step).__name__} "
                        f"{time_step!r}")
    t = int(time_step)
    if not 0 <= t < count:
        valid = f"valid steps are 0 to {count - 1}" if count > 0 else "there are no steps"
        raise TimeStepError(f"time_step {t} is out of range; {valid} "
                            f"({count} time step{'s' if count != 1 else ''})")
    return t


def _real(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, not {type(value).__name__} {value!r}")
    return float(value)


def _finite(value: Any, name: str) -> float:
    v = _real(value, name)
    if not math.isfinite(v):
        raise ArgumentError(f"{name} must be finite, got {value!r}")
    return v


def _geometry_list(geometries: Any) -> list:
    try:
        items = list(geometries)
    except TypeError:
        raise TypeError(f"geometries must be a list of Geometry3D, not "
                        f"{type(geometries).__name__}") from None
    for i, g in enumerate(items):
        if not isinstance(g, Geometry3D):
            raise TypeError(f"geometries[{i}] must be a Geometry3D, not {type(g).__name__}")
    if not items:
        raise ArgumentError("geometries is empty; expected one Geometry3D per time step")
    return items


class TimeGeometry(abc.ABC):
    """Abstract base: a sequence of time steps, each with time bounds and a :class:`Geometry3D`.

    Notes
    -----
    Subclasses: :class:`ProportionalTimeGeometry` (equal steps) and
    :class:`ArbitraryTimeGeometry` (explicit bounds).  The geometries are held live: the
    geometry returned by :meth:`get_geometry_for_time_step` is the one an image uses.  Two time
    geometries compare equal when they have the same number of steps, bounds within 1e-6 and
    equal geometries, whatever their class.
    """

    _geometries: list

    @abc.abstractmethod
    def get_time_bounds(self, t: int | None = None) -> tuple:
        """``(min, max)`` of step ``t``, or of the whole geometry when ``t`` is None.

        Parameters
        ----------
        t : int, optional
            A time step; None for the span of all steps.

        Returns
        -------
        tuple of float
            Step ``t`` covers ``[min, max)``.

        Raises
        ------
        TimeStepError
            ``t`` out of range.
        TypeError
            ``t`` not an int.
        """

    @abc.abstractmethod
    def _step_of(self, time_point: float) -> int:
        """The step of a non-NaN ``time_point``, clamped to the valid steps."""

    @abc.abstractmethod
    def copy(self) -> TimeGeometry:
        """A deep copy: independent geometries."""

    def count_time_steps(self) -> int:
        """Number of time steps.

        Returns
        -------
        int
            At least 1.
        """
        return len(self._geometries)

    def is_valid_time_step(self, t: Any) -> bool:
        """Whether ``t`` is a time step of this geometry.

        Parameters
        ----------
        t : object
            Anything; only an ``int`` (or NumPy integer) with ``0 <= t < count`` is valid.

        Returns
        -------
        bool
            Never raises.
        """
        return (isinstance(t, numbers.Integral) and not isinstance(t, bool)
                and 0 <= int(t) < self.count_time_steps())

    def is_valid_time_point(self, time_point: float) -> bool:
        """Whether a time point lies in ``[min, max)`` of the whole geometry.

        Parameters
        ----------
        time_point : float
            A time, in the image's time unit (ms for files).

        Returns
        -------
        bool
            False for NaN.  A gap between the steps of an :class:`ArbitraryTimeGeometry` counts
            as inside (as MITK's whole-geometry bounds).

        Raises
        ------
        TypeError
            ``time_point`` not a real number.
        """
        tp = _real(time_point, "time_point")
        lo, hi = self.get_time_bounds()
        return lo <= tp < hi

    def time_point_to_time_step(self, time_point: float) -> int:
        """The step containing a time point, clamped to the valid steps (as MITK).

        Parameters
        ----------
        time_point : float
            A time; before the first step gives 0, at or after the end gives the last step.

        Returns
        -------
        int
            A valid time step.

        Raises
        ------
        TypeError
            ``time_point`` not a real number.
        ArgumentError
            ``time_point`` is NaN.
        """
        tp = _real(time_point, "time_point")
        if math.isnan(tp):
            raise ArgumentError("time_point is NaN; expected a number")
        return self._step_of(tp)

    def get_min_time_point(self, t: int | None = None) -> float:
        """Start of step ``t``, or of the whole geometry when ``t`` is None.

        Raises
        ------
        TimeStepError
            ``t`` out of range.
        TypeError
            ``t`` not an int.
        """
        return self.get_time_bounds(t)[0]

    def get_max_time_point(self, t: int | None = None) -> float:
        """End (exclusive) of step ``t``, or of the whole geometry when ``t`` is None.

        Raises
        ------
        TimeStepError
            ``t`` out of range.
        TypeError
            ``t`` not an int.
        """
        return self.get_time_bounds(t)[1]

    def time_step_to_time_point(self, t: int) -> float:
        """The time point of step ``t``: the start of its bounds.

        Raises
        ------
        TimeStepError
            ``t`` out of range.
        TypeError
            ``t`` not an int.
        """
        return self.get_time_bounds(check_time_step(t, self.count_time_steps()))[0]

    def get_geometry_for_time_step(self, t: int) -> Geometry3D:
        """The geometry of step ``t``.

        Returns
        -------
        Geometry3D
            The live object (not a copy): changing it changes the image that owns this time
            geometry.

        Raises
        ------
        TimeStepError
            ``t`` out of range.
        TypeError
            ``t`` not an int.
        """
        return self._geometries[check_time_step(t, self.count_time_steps())]

    def get_geometry_for_time_point(self, time_point: float) -> Geometry3D:
        """The live geometry of the step containing ``time_point`` (clamped, as
        :meth:`time_point_to_time_step`).

        Raises
        ------
        TypeError
            ``time_point`` not a real number.
        ArgumentError
            ``time_point`` is NaN.
        """
        return self._geometries[self.time_point_to_time_step(time_point)]

    def geometries(self) -> list:
        """The per-step geometries.

        Returns
        -------
        list of Geometry3D
            A new list holding the live geometries.
        """
        return list(self._geometries)

    def _set_extent(self, extent: Any) -> None:
        # For the owning image: every step covers the same pixel grid.
        for g in self._geometries:
            g._set_extent(extent)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TimeGeometry):
            return NotImplemented
        n = self.count_time_steps()
        if n != other.count_time_steps():
            return False
        for t in range(n):
            for a, b in zip(self.get_time_bounds(t), other.get_time_bounds(t)):
                if not (a == b or abs(a - b) <= TIME_TOLERANCE):
                    return False
        return all(g == h for g, h in zip(self._geometries, other._geometries))

    __hash__ = None  # type: ignore[assignment]  # mutable


class ProportionalTimeGeometry(TimeGeometry):
    """Equal time steps: step ``t`` covers ``[first + t*d, first + (t+1)*d)``.

    Parameters
    ----------
    geometries : list of Geometry3D
        One per step, used as given (live, not copied); at least one.
    first_time_point : float
        Start of step 0 (default 0); finite.
    step_duration : float
        Duration ``d`` of every step (default 1); finite and > 0.
    static : bool, keyword-only
        One step valid at all times, as for a 2D/3D image: its bounds are
        ``(-sys.float_info.max, sys.float_info.max)`` whatever ``first_time_point`` and
        ``step_duration`` say.  Needs exactly one geometry.

    Raises
    ------
    TypeError
        ``geometries`` holds something other than Geometry3D, or a time is not a number.
    ArgumentError
        No geometries, a static geometry with more than one step, a non-finite time, or
        ``step_duration <= 0``.

    Notes
    -----
    ``first_time_point`` and ``step_duration`` are settable (validated, replaced atomically).
    ``copy()`` and ``copy.deepcopy`` give independent geometries; pickling keeps everything.
    """

    def __init__(self, geometries: list, first_time_point: float = 0.0,
                 step_duration: float = 1.0, *, static: bool = False) -> None:
        geometries = _geometry_list(geometries)
        if static and len(geometries) != 1:
            raise ArgumentError(f"a static time geometry has exactly 1 step, not "
                                f"{len(geometries)}")
        first = _finite(first_time_point, "first_time_point")
        duration = self._check_duration(step_duration)
        self._geometries = geometries
        self._static = bool(static)
        self._first = first
        self._duration = duration

    @classmethod
    def _static_of(cls, geometry: Geometry3D) -> ProportionalTimeGeometry:
        # The one-step geometry of a 2D/3D image from an already valid Geometry3D, used live.
        # Skips the argument checks: Image(arr, copy=False) must stay within a few microseconds.
        tg = cls.__new__(cls)
        tg._geometries = [geometry]
        tg._static = True
        tg._first = 0.0
        tg._duration = 1.0
        return tg

    @classmethod
    def from_geometry(cls, geometry: Geometry3D, time_steps: int, first_time_point: float = 0.0,
                      step_duration: float = 1.0, static: bool = False
                      ) -> ProportionalTimeGeometry:
        """A time geometry whose steps hold independent copies of one geometry.

        Parameters
        ----------
        geometry : Geometry3D
            Copied once per step (the argument itself is not used live).
        time_steps : int
            Number of steps, >= 1 (exactly 1 when ``static``).
        first_time_point, step_duration, static
            As for the constructor.

        Returns
        -------
        ProportionalTimeGeometry

        Raises
        ------
        TypeError
            ``geometry`` not a Geometry3D, or ``time_steps`` not an int.
        ArgumentError
            ``time_steps < 1``, or invalid times (see the constructor).
        """
        if not isinstance(geometry, Geometry3D):
            raise TypeError(f"geometry must be a Geometry3D, not {type(geometry).__name__}")
        if isinstance(time_steps, bool) or not isinstance(time_steps, numbers.Integral):
            raise TypeError(f"time_steps must be an int, not {type(time_steps).__name__}")
        if time_steps < 1:
            raise ArgumentError(f"time_steps must be >= 1, got {time_steps}")
        return cls([geometry.copy() for _ in range(int(time_steps))], first_time_point,
                   step_duration, static=static)

    @staticmethod
    def _check_duration(value: Any) -> float:
        d = _finite(value, "step_duration")
        if d <= 0:
            raise ArgumentError(f"step_duration must be > 0, got {value!r}")
        return d

    @property
    def first_time_point(self) -> float:
        """float: start of step 0 (finite); ignored by the bounds of a static geometry."""
        return self._first

    @first_time_point.setter
    def first_time_point(self, value: float) -> None:
        self._first = _finite(value, "first_time_point")

    @property
    def step_duration(self) -> float:
        """float: duration of every step (finite, > 0); ignored by a static geometry."""
        return self._duration

    @step_duration.setter
    def step_duration(self, value: float) -> None:
        self._duration = self._check_duration(value)

    @property
    def static(self) -> bool:
        """bool: True for the single all-time step of a 2D/3D image."""
        return self._static

    def get_time_bounds(self, t: int | None = None) -> tuple:
        """``(min, max)`` of step ``t``, or of the whole geometry when ``t`` is None.

        Step ``t`` covers ``[first + t*d, first + (t+1)*d)``; a static geometry covers
        ``(-sys.float_info.max, sys.float_info.max)``.

        Raises
        ------
        TimeStepError
            ``t`` out of range.
        TypeError
            ``t`` not an int.
        """
        n = self.count_time_steps()
        if t is not None:
            t = check_time_step(t, n)
        if self._static:
            return (-_MAX, _MAX)
        first, d = self._first, self._duration  # one consistent pair
        if t is None:
            return (first, first + n * d)
        return (first + t * d, first + (t + 1) * d)

    def is_valid_time_point(self, time_point: float) -> bool:
        # A static step is valid at every finite time, its upper bound included.
        if self._static:
            return math.isfinite(_real(time_point, "time_point"))
        return super().is_valid_time_point(time_point)

    is_valid_time_point.__doc__ = TimeGeometry.is_valid_time_point.__doc__

    def _step_of(self, time_point: float) -> int:
        if self._static:
            return 0
        n = self.count_time_steps()
        first, d = self._first, self._duration
        ratio = (time_point - first) / d
        if not ratio > 0:  # also -inf
            return 0
        if ratio >= n:
            return n - 1
        step = int(ratio)
        # Division rounding may put a step's own start just below it: settle on the bounds
        # get_time_bounds reports, so time_point_to_time_step(time_step_to_time_point(t)) == t.
        if step + 1 < n and time_point >= first + (step + 1) * d:
            step += 1
        elif step > 0 and time_point < first + step * d:
            step -= 1
        return step

    def copy(self) -> ProportionalTimeGeometry:
        """A deep copy: independent geometries, same times.

        Returns
        -------
        ProportionalTimeGeometry
        """
        return ProportionalTimeGeometry([g.copy() for g in self._geometries], self._first,
                                        self._duration, static=self._static)

    def __repr__(self) -> str:
        if self._static:
            return "ProportionalTimeGeometry(time_steps=1, static=True)"
        return (f"ProportionalTimeGeometry(time_steps={self.count_time_steps()}, "
                f"first_time_point={self._first!r}, step_duration={self._duration!r})")


class ArbitraryTimeGeometry(TimeGeometry):
    """Time steps with explicit bounds (unequal durations, gaps allowed).

    Parameters
    ----------
    bounds : sequence of (min, max)
        One interval ``[min, max)`` per step: finite, ``min < max``, increasing and not
        overlapping (a step may start where the previous one ends).
    geometries : list of Geometry3D
        One per step, used as given (live, not copied).

    Raises
    ------
    TypeError
        A bound that is not a number, or ``geometries`` holding something else.
    ArgumentError
        A malformed, non-finite, empty, decreasing or overlapping interval, or a count that
        differs from the number of geometries.

    Notes
    -----
    ``time_point_to_time_step`` gives the first step whose end lies after the time point, so a
    time in a gap belongs to the next step (as MITK), and times outside are clamped.
    """

    def __init__(self, bounds: Any, geometries: list) -> None:
        geometries = _geometry_list(geometries)
        try:
            items = list(bounds)
        except TypeError:
            raise TypeError(f"bounds must be a sequence of (min, max) pairs, not "
                            f"{type(bounds).__name__}") from None
        if len(items) != len(geometries):
            raise ArgumentError(f"{len(items)} time bounds for {len(geometries)} geometries; "
                                "expected one (min, max) pair per geometry")
        pairs: list = []
        for i, b in enumerate(items):
            try:
                lo, hi = b
            except (TypeError, ValueError):
                raise ArgumentError(f"bounds[{i}] = {b!r} is not a (min, max) pair") from None
            lo, hi = _finite(lo, f"bounds[{i}][0]"), _finite(hi, f"bounds[{i}][1]")
            if not lo < hi:
                raise ArgumentError(f"bounds[{i}] = ({lo}, {hi}) is empty; expected min < max")
            if pairs and lo < pairs[-1][1]:
                raise ArgumentError(f"bounds[{i}] = ({lo}, {hi}) starts before step {i - 1} "
                                    f"ends at {pairs[-1][1]}; expected increasing, "
                                    "non-overlapping bounds")
            pairs.append((lo, hi))
        self._bounds = tuple(pairs)
        self._geometries = geometries

    def get_time_bounds(self, t: int | None = None) -> tuple:
        """``(min, max)`` of step ``t``, or ``(first min, last max)`` when ``t`` is None.

        Raises
        ------
        TimeStepError
            ``t`` out of range.
        TypeError
            ``t`` not an int.
        """
        if t is None:
            return (self._bounds[0][0], self._bounds[-1][1])
        return self._bounds[check_time_step(t, self.count_time_steps())]

    def _step_of(self, time_point: float) -> int:
        for t, (_, hi) in enumerate(self._bounds):
            if time_point < hi:
                return t
        return len(self._bounds) - 1

    def copy(self) -> ArbitraryTimeGeometry:
        """A deep copy: independent geometries, same bounds.

        Returns
        -------
        ArbitraryTimeGeometry
        """
        return ArbitraryTimeGeometry(self._bounds, [g.copy() for g in self._geometries])

    def __repr__(self) -> str:
        return f"ArbitraryTimeGeometry(bounds={list(self._bounds)})"
