"""Time geometries: the time steps of an image, each with its bounds and its own Geometry3D.

Method names follow MITK (``count_time_steps``, ``time_point_to_time_step``, ...).  A 2D or 3D
image has one *static* step valid at all times (bounds ``+/- sys.float_info.max``); a 4D image
has one step per frame.  A time step is an ``int`` with ``0 <= t < count`` everywhere: no
wrap-around, and ``bool`` or ``float`` steps are refused (:func:`check_time_step`).

Memory: the steps' geometries live in a copy-on-write table, one shared
:class:`~mitk._geometry_state.GeometryState` for every step plus one record per step that
differs, so ten million equal steps cost what one does.  The :class:`Geometry3D` of a step is
made on first use and is live: assigning to it changes that step, and only that step.

Thread safety: every change (one step, every step, the time settings) happens under the time
geometry's own lock and is published with one assignment, so readers see the old or the new
state, never a mixture; :meth:`TimeGeometry.copy` (used by ``Image.copy``, pickling and saving)
copies under the same lock, so it is a consistent snapshot of every step at once.
"""

from __future__ import annotations

import abc
import bisect
import math
import numbers
from typing import Any, Iterable

from ._geometry_state import GeometryState
from ._step_table import StepTable, _geometry_states
from ._time_rules import (_MAX, TIME_TOLERANCE, _check_count, _check_duration, _check_span,
                          _finite, _real, check_bounds, check_time_step)
from .errors import ArgumentError
from .geometry import Geometry3D

__all__ = ["ArbitraryTimeGeometry", "ProportionalTimeGeometry", "TimeGeometry",
           "check_time_step"]


class TimeGeometry(StepTable, abc.ABC):
    """Abstract base: a sequence of time steps, each with time bounds and a :class:`Geometry3D`.

    Notes
    -----
    Subclasses: :class:`ProportionalTimeGeometry` (equal steps) and
    :class:`ArbitraryTimeGeometry` (explicit bounds).  The geometry returned by
    :meth:`get_geometry_for_time_step` is live: it is the one an image uses.  Two time
    geometries compare equal when they have the same number of steps, bounds within 1e-6 and
    equal geometries, whatever their class.  Copies (:meth:`copy`, ``copy.copy``,
    ``copy.deepcopy``, pickling) are independent and taken atomically.
    """

    @abc.abstractmethod
    def get_time_bounds(self, t: int | None = None) -> tuple[float, float]:
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
        return self._count

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
            The live object (not a copy): changing it changes this step of this time geometry
            (and of the image that owns it), and no other step.  Made on first use.

        Raises
        ------
        TimeStepError
            ``t`` out of range.
        TypeError
            ``t`` not an int.
        """
        return self._view(check_time_step(t, self._count))

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
        return self._view(self.time_point_to_time_step(time_point))

    def geometries(self) -> list[Geometry3D]:
        """The per-step geometries.

        Returns
        -------
        list of Geometry3D
            A new list holding the live geometries (one object per step: O(steps)).
        """
        return [self._view(t) for t in range(self._count)]

    def _times_equal(self, other: TimeGeometry) -> bool:
        for t in range(self._count):
            for a, b in zip(self.get_time_bounds(t), other.get_time_bounds(t)):
                if not (a == b or abs(a - b) <= TIME_TOLERANCE):
                    return False
        return True

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TimeGeometry):
            return NotImplemented
        n = self._count
        if n != other._count or not self._times_equal(other):
            return False
        # Only the steps that differ from either table's shared record need a look.
        a_default, a_over = self._snapshot()
        b_default, b_over = other._snapshot()
        keys = a_over.keys() | b_over.keys()
        if len(keys) < n and not a_default.close(b_default):
            return False
        return all(a_over.get(t, a_default).close(b_over.get(t, b_default)) for t in keys)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __copy__(self) -> TimeGeometry:
        return self.copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> TimeGeometry:
        return self.copy()


class ProportionalTimeGeometry(TimeGeometry):
    """Equal time steps: step ``t`` covers ``[first + t*d, first + (t+1)*d)``.

    Parameters
    ----------
    geometries : list of Geometry3D
        One per step, at least one; their values are copied (later changes to these objects
        do not reach the time geometry: change ``get_geometry_for_time_step(t)`` instead).
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
        No geometries, a static geometry with more than one step, a non-finite time,
        ``step_duration <= 0``, or times whose bounds would leave the float64 range or not be
        distinct (e.g. ``first_time_point=1e308``).

    Notes
    -----
    ``first_time_point`` and ``step_duration`` are settable (validated, replaced atomically).
    Equal steps share one geometry record, so memory does not grow with the number of steps
    (see :meth:`from_geometry`).  ``copy()`` and ``copy.deepcopy`` give independent
    geometries; pickling keeps everything.
    """

    _times: tuple[float, float]
    _static: bool

    def __init__(self, geometries: Iterable[Geometry3D], first_time_point: float = 0.0,
                 step_duration: float = 1.0, *, static: bool = False) -> None:
        states = _geometry_states(geometries)
        if static and len(states) != 1:
            raise ArgumentError(f"a static time geometry has exactly 1 step, not "
                                f"{len(states)}")
        first = _finite(first_time_point, "first_time_point")
        duration = _check_duration(step_duration)
        if not static:
            _check_span(first, duration, len(states))
        self._init_from_states(states)
        self._static = bool(static)
        self._times = (first, duration)

    @classmethod
    def _of_state(cls, state: GeometryState, count: int, first: float = 0.0,
                  duration: float = 1.0, static: bool = False) -> ProportionalTimeGeometry:
        # Every step sharing one valid record; the times are valid too.  Skips the argument
        # checks: Image(arr, copy=False) must stay within a few microseconds.
        tg = cls.__new__(cls)
        tg._init_steps(count, state)
        tg._static = static
        tg._times = (first, duration)
        return tg

    @classmethod
    def from_geometry(cls, geometry: Geometry3D, time_steps: int, first_time_point: float = 0.0,
                      step_duration: float = 1.0, static: bool = False
                      ) -> ProportionalTimeGeometry:
        """A time geometry whose steps all start with the values of one geometry.

        Parameters
        ----------
        geometry : Geometry3D
            Its values are copied (the argument itself is not used live).
        time_steps : int
            Number of steps, >= 1 (exactly 1 when ``static``).
        first_time_point, step_duration, static
            As for the constructor.

        Returns
        -------
        ProportionalTimeGeometry
            O(1) in time and memory, whatever ``time_steps``: the steps share one record until
            one of them is changed.

        Raises
        ------
        TypeError
            ``geometry`` not a Geometry3D, or ``time_steps`` not an int.
        ArgumentError
            ``time_steps < 1``, or invalid times (see the constructor).
        """
        if not isinstance(geometry, Geometry3D):
            raise TypeError(f"geometry must be a Geometry3D, not {type(geometry).__name__}")
        count = _check_count(time_steps)
        if static and count != 1:
            raise ArgumentError(f"a static time geometry has exactly 1 step, not {count}")
        first = _finite(first_time_point, "first_time_point")
        duration = _check_duration(step_duration)
        if not static:
            _check_span(first, duration, count)
        return cls._of_state(geometry._state, count, first, duration, bool(static))

    @property
    def first_time_point(self) -> float:
        """float: start of step 0 (finite); ignored by the bounds of a static geometry."""
        return self._times[0]

    @first_time_point.setter
    def first_time_point(self, value: float) -> None:
        first = _finite(value, "first_time_point")
        with self._lock:
            duration = self._times[1]
            if not self._static:
                _check_span(first, duration, self._count)
            self._times = (first, duration)

    @property
    def step_duration(self) -> float:
        """float: duration of every step (finite, > 0); ignored by a static geometry."""
        return self._times[1]

    @step_duration.setter
    def step_duration(self, value: float) -> None:
        duration = _check_duration(value)
        with self._lock:
            first = self._times[0]
            if not self._static:
                _check_span(first, duration, self._count)
            self._times = (first, duration)

    @property
    def static(self) -> bool:
        """bool: True for the single all-time step of a 2D/3D image."""
        return self._static

    def get_time_bounds(self, t: int | None = None) -> tuple[float, float]:
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
        n = self._count
        if t is not None:
            t = check_time_step(t, n)
        if self._static:
            return (-_MAX, _MAX)
        first, d = self._times  # one consistent pair
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
        n = self._count
        first, d = self._times
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

    def _times_equal(self, other: TimeGeometry) -> bool:
        if not isinstance(other, ProportionalTimeGeometry) or self._static or other._static:
            if isinstance(other, ProportionalTimeGeometry) and self._static and other._static:
                return True
            return super()._times_equal(other)
        # Bounds are linear in the step: the first and last steps decide for all of them.
        last = self._count - 1
        return all(a == b or abs(a - b) <= TIME_TOLERANCE
                   for t in {0, last}
                   for a, b in zip(self.get_time_bounds(t), other.get_time_bounds(t)))

    def _first_uneven_step(self, rel: float = 1e-9) -> int | None:
        return None  # every step lasts step_duration

    def copy(self) -> ProportionalTimeGeometry:
        """A deep copy: independent geometries, same times; one consistent snapshot.

        Returns
        -------
        ProportionalTimeGeometry
            O(steps that differ) in time and memory.
        """
        default, overrides = self._snapshot()
        tg = ProportionalTimeGeometry._of_state(default, self._count, *self._times,
                                                static=self._static)
        tg._table = (default, overrides)
        return tg

    def __reduce__(self) -> tuple[Any, ...]:
        default, overrides = self._snapshot()
        return _restore, ("proportional", self._count, default.to_tuple(),
                          {t: s.to_tuple() for t, s in overrides.items()},
                          (self._times, self._static))

    def __repr__(self) -> str:
        if self._static:
            return "ProportionalTimeGeometry(time_steps=1, static=True)"
        first, d = self._times
        return (f"ProportionalTimeGeometry(time_steps={self._count}, "
                f"first_time_point={first!r}, step_duration={d!r})")


class ArbitraryTimeGeometry(TimeGeometry):
    """Time steps with explicit bounds (unequal durations, gaps allowed).

    Parameters
    ----------
    bounds : sequence of (min, max)
        One interval ``[min, max)`` per step: finite, with a finite duration, ``min < max``,
        increasing and not overlapping (a step may start where the previous one ends).
    geometries : list of Geometry3D
        One per step; their values are copied (see :class:`ProportionalTimeGeometry`).

    Raises
    ------
    TypeError
        A bound that is not a number, or ``geometries`` holding something else.
    ArgumentError
        A malformed, non-finite, empty, decreasing or overlapping interval, one whose duration
        is beyond the float64 range, or a count that differs from the number of geometries.

    Notes
    -----
    ``time_point_to_time_step`` gives the first step whose end lies after the time point, so a
    time in a gap belongs to the next step (as MITK), and times outside are clamped.  Equal
    geometries share one record (see :meth:`from_geometry`).
    """

    def __init__(self, bounds: Iterable[tuple[float, float]],
                 geometries: Iterable[Geometry3D]) -> None:
        states = _geometry_states(geometries)
        self._set_bounds(bounds, len(states))
        self._init_from_states(states)

    @classmethod
    def from_geometry(cls, geometry: Geometry3D,
                      bounds: Iterable[tuple[float, float]]) -> ArbitraryTimeGeometry:
        """Steps with explicit bounds that all start with the values of one geometry.

        ``geometry``'s values are copied once and shared by every step until one is changed;
        ``bounds`` are as for the constructor, one step per pair.  Raises TypeError or
        ArgumentError as the constructor does.
        """
        if not isinstance(geometry, Geometry3D):
            raise TypeError(f"geometry must be a Geometry3D, not {type(geometry).__name__}")
        tg = cls.__new__(cls)
        tg._set_bounds(bounds, None)
        tg._init_steps(len(tg._bounds), geometry._state)
        return tg

    def _set_bounds(self, bounds: Any, count: int | None) -> None:
        self._bounds = check_bounds(bounds, count)
        self._ends = tuple(hi for _, hi in self._bounds)

    def get_time_bounds(self, t: int | None = None) -> tuple[float, float]:
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
        return self._bounds[check_time_step(t, self._count)]

    def _step_of(self, time_point: float) -> int:
        return min(bisect.bisect_right(self._ends, time_point), self._count - 1)

    def copy(self) -> ArbitraryTimeGeometry:
        """A deep copy: independent geometries, same bounds; one consistent snapshot.

        Returns
        -------
        ArbitraryTimeGeometry
        """
        default, overrides = self._snapshot()
        tg = ArbitraryTimeGeometry.__new__(ArbitraryTimeGeometry)
        tg._bounds, tg._ends = self._bounds, self._ends
        tg._init_steps(self._count, default, overrides)
        return tg

    def __reduce__(self) -> tuple[Any, ...]:
        default, overrides = self._snapshot()
        return _restore, ("arbitrary", self._count, default.to_tuple(),
                          {t: s.to_tuple() for t, s in overrides.items()}, self._bounds)

    def __repr__(self) -> str:
        return f"ArbitraryTimeGeometry(bounds={list(self._bounds)})"


def _restore(kind: str, count: int, default: Any, overrides: dict[int, Any],
             times: Any) -> TimeGeometry:
    # The inverse of the time geometries' __reduce__: plain values in, no re-validation.
    state = GeometryState.from_tuple(default)
    over = {t: GeometryState.from_tuple(s) for t, s in overrides.items()}
    tg: TimeGeometry
    if kind == "proportional":
        (first, duration), static = times
        tg = ProportionalTimeGeometry._of_state(state, count, first, duration, static)
        tg._table = (state, over)
        return tg
    tg = ArbitraryTimeGeometry.__new__(ArbitraryTimeGeometry)
    tg._bounds = tuple(tuple(b) for b in times)
    tg._ends = tuple(hi for _, hi in tg._bounds)
    tg._init_steps(count, state, over)
    return tg
