"""The copy-on-write table of per-step geometries that every TimeGeometry keeps.

Every step reads one shared :class:`~mitk._geometry_state.GeometryState` unless it has its own
record, so memory grows with the steps that differ, not with the number of steps (a 10**7-step
image costs what a 1-step one does).  The :class:`~mitk.geometry.Geometry3D` of a step is made
on first use, bound to its step: reads and writes go to the table.

Locking: one ``threading.Lock`` per table, held only while a record is swapped or the table is
copied (never while waiting for anything else).  A change of every step replaces the whole
table with one assignment; a snapshot copies it under the lock.  So ``img.spacing = v`` is one
atomic change for every reader that takes a snapshot (copy, pickle, save).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Callable

from ._geometry_state import GeometryState, check_extent
from .errors import ArgumentError
from .geometry import Geometry3D

__all__ = ["StepTable"]


def _geometry_states(geometries: Any) -> list[GeometryState]:
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
    return [g._state for g in items]


class StepTable:
    """Mixin of :class:`~mitk.time_geometry.TimeGeometry`: per-step geometry records."""

    # The table: one record shared by every step, and the records of the steps that differ.
    # Replaced by one assignment when every step changes; one step's change edits the dict
    # under the lock.
    _table: tuple[GeometryState, dict[int, GeometryState]]
    _count: int
    _lock: threading.Lock
    _views: weakref.WeakValueDictionary[int, Geometry3D] | None  # made on first use

    def _init_steps(self, count: int, default: GeometryState,
                    overrides: dict[int, GeometryState] | None = None) -> None:
        self._count = count
        self._table = (default, {} if overrides is None else overrides)
        self._lock = threading.Lock()
        self._views = None

    def _init_from_states(self, states: list[GeometryState]) -> None:
        default = states[0]
        self._init_steps(len(states), default,
                         {t: s for t, s in enumerate(states) if not s.same(default)})

    def _step_state(self, t: int) -> GeometryState:
        default, overrides = self._table  # one read: a consistent pair
        return overrides.get(t, default)

    def _update_step(self, t: int, change: Callable[[GeometryState], GeometryState]) -> None:
        with self._lock:
            default, overrides = self._table
            new = change(overrides.get(t, default))
            if new.same(default):
                overrides.pop(t, None)
            else:
                overrides[t] = new

    def _update_all(self, change: Callable[[GeometryState], GeometryState]) -> None:
        # One atomic change of every step: readers see the old table or the new one.
        with self._lock:
            default, overrides = self._table
            new_default = change(default)
            new_overrides = {}
            for t, s in overrides.items():
                new = change(s)
                if not new.same(new_default):
                    new_overrides[t] = new
            self._table = (new_default, new_overrides)

    def _snapshot(self) -> tuple[GeometryState, dict[int, GeometryState]]:
        with self._lock:
            default, overrides = self._table
            return default, dict(overrides)

    def _first_differing_step(self) -> int | None:
        """The first step whose geometry differs from step 0's (1e-6), or None; O(differing).

        Reads one consistent snapshot.  For writers that store one geometry for all steps.
        """
        default, overrides = self._snapshot()
        first = overrides.get(0, default)
        differing = next((t for t in sorted(overrides) if t and not overrides[t].close(first)),
                         None)
        if not default.close(first):  # then the first step without its own record differs too
            shared = next((t for t in range(1, self._count) if t not in overrides), None)
            if shared is not None and (differing is None or shared < differing):
                return shared
        return differing

    def _first_uneven_step(self, rel: float = 1e-9) -> int | None:
        """The first step whose duration differs from step 0's (relative ``rel``), or None."""
        d0 = self.get_max_time_point(0) - self.get_min_time_point(0)
        for t in range(1, self._count):
            lo, hi = self.get_time_bounds(t)
            if abs((hi - lo) - d0) > rel * max(1.0, abs(d0)):
                return t
        return None

    def _view(self, t: int) -> Geometry3D:
        # Made on first use, the same object while anyone holds it.
        with self._lock:
            views = self._views
            if views is None:
                views = self._views = weakref.WeakValueDictionary()
            g = views.get(t)
            if g is None:
                g = Geometry3D._bound(self, t)
                views[t] = g
            return g

    def _set_extent(self, extent: tuple[int, int, int]) -> None:
        # For the owning image: every step covers the same pixel grid.
        value = check_extent(extent)
        self._update_all(lambda s: s.replace(extent=value))
