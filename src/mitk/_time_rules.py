"""Time rules: what a valid time step, time point, step duration and set of time bounds is.

One place for the checks that :mod:`mitk.time_geometry`, :class:`mitk.Image` and the accessors
apply, so a time step means the same everywhere: an ``int`` with ``0 <= t < count``, no
wrap-around, ``bool`` and ``float`` refused.  Pure functions: no state, safe from any thread.
"""

from __future__ import annotations

import math
import numbers
import sys
from typing import Any

from .errors import ArgumentError, TimeStepError

__all__ = ["TIME_TOLERANCE", "check_bounds", "check_time_step"]

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


def _check_count(time_steps: Any) -> int:
    if isinstance(time_steps, bool) or not isinstance(time_steps, numbers.Integral):
        raise TypeError(f"time_steps must be an int, not {type(time_steps).__name__}")
    if time_steps < 1:
        raise ArgumentError(f"time_steps must be >= 1, got {time_steps}")
    return int(time_steps)


def _check_duration(value: Any) -> float:
    d = _finite(value, "step_duration")
    if d <= 0:
        raise ArgumentError(f"step_duration must be > 0, got {value!r}")
    return d


def _check_span(first: float, duration: float, count: int) -> None:
    """Every step's bounds finite (else every step duration a writer computes is not)."""
    end = first + count * duration  # Python floats: an overflow gives inf, never a warning
    if not math.isfinite(end):
        raise ArgumentError(
            f"first_time_point {first!r} plus {count} steps of step_duration {duration!r} ends "
            "beyond the float64 range; expected time points whose every bound is finite")
    if duration <= 4 * math.ulp(max(abs(first), abs(end))):
        raise ArgumentError(
            f"step_duration {duration!r} is too small for time points near "
            f"{max(abs(first), abs(end))!r}: the {count} steps would not have distinct bounds")


def check_bounds(bounds: Any, count: int | None) -> tuple[tuple[float, float], ...]:
    """Validate the (min, max) pairs of an ArbitraryTimeGeometry (``count``: expected pairs)."""
    try:
        items = list(bounds)
    except TypeError:
        raise TypeError(f"bounds must be a sequence of (min, max) pairs, not "
                        f"{type(bounds).__name__}") from None
    if count is not None and len(items) != count:
        raise ArgumentError(f"{len(items)} time bounds for {count} geometries; "
                            "expected one (min, max) pair per geometry")
    if not items:
        raise ArgumentError("bounds is empty; expected one (min, max) pair per step")
    pairs: list[tuple[float, float]] = []
    for i, b in enumerate(items):
        try:
            lo, hi = b
        except (TypeError, ValueError):
            raise ArgumentError(f"bounds[{i}] = {b!r} is not a (min, max) pair") from None
        lo, hi = _finite(lo, f"bounds[{i}][0]"), _finite(hi, f"bounds[{i}][1]")
        if not lo < hi:
            raise ArgumentError(f"bounds[{i}] = ({lo}, {hi}) is empty; expected min < max")
        if not math.isfinite(hi - lo):
            raise ArgumentError(f"bounds[{i}] = ({lo}, {hi}) lasts longer than the float64 "
                                "range; expected a finite duration")
        if pairs and lo < pairs[-1][1]:
            raise ArgumentError(f"bounds[{i}] = ({lo}, {hi}) starts before step {i - 1} "
                                f"ends at {pairs[-1][1]}; expected increasing, "
                                "non-overlapping bounds")
        pairs.append((lo, hi))
    return tuple(pairs)
