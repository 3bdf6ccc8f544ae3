"""NRRD geometry: space directions, spacings or axis mins into LPS spacing, origin, direction
and time (reading), with units converted to mm and ms."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..._geometry_rules import is_singular
from .._geometry_axes import BadAxis, complete_direction, unit_columns
from ._header import _Header, _fail, _floats, _quoted, _vector_list
from ._vocabulary import _LENGTH_TO_MM, _TIME_TO_MS

if TYPE_CHECKING:
    from ._layout import _Layout


def _space_units(h: _Header, space_dim: int) -> list | None:
    """Scale of each space component into mm (time into ms), or None to use values as given."""
    if "space units" not in h.fields:
        return None
    units = _quoted(h.fields["space units"])
    if units is None or len(units) != space_dim:
        raise _fail(h.path, "space units", f"is {h.fields['space units']!r}, expected "
                    f"{space_dim} quoted units (the space dimension)")
    scales = []
    for c, u in enumerate(units):
        table = _TIME_TO_MS if c == 3 else _LENGTH_TO_MM
        scale = table.get(u.strip().lower())
        if scale is None:
            return None
        scales.append(scale)
    return scales


def _spacing_of(h: _Header, L: _Layout, i: int) -> float | None:
    """Spacing of axis ``i`` from ``spacings`` or axis mins/maxs; None when not given."""
    if "spacings" in h.fields:
        s = _floats(h, "spacings", L.dim)[i]
        if math.isfinite(s) and s != 0:
            return s
    if "axis mins" in h.fields and "axis maxs" in h.fields and L.sizes[i] > 1:
        lo = _floats(h, "axis mins", L.dim)[i]
        hi = _floats(h, "axis maxs", L.dim)[i]
        if math.isfinite(lo) and math.isfinite(hi) and hi != lo:
            return (hi - lo) / (L.sizes[i] - 1)
    return None


def _geometry(h: _Header, L: _Layout, dirs: list | None, space_dim: int, flips: tuple,
              units: list | None) -> None:
    path, F = h.path, h.fields
    flip = np.array(flips, dtype=np.float64)
    scale = np.ones(3)
    time_scale = 1.0
    if units is not None:
        scale[: min(space_dim, 3)] = units[:3]
        if space_dim == 4:
            time_scale = units[3]
    vectors = []
    for k, i in enumerate(L.spatial):
        if dirs is not None:
            v = np.zeros(3)
            part = dirs[i][:3]
            v[: len(part)] = part
            with np.errstate(over="ignore"):  # beyond the float range is caught as inf below
                v = v * flip * scale
        else:
            s = _spacing_of(h, L, i)
            v = np.zeros(3)
            v[k] = 1.0 if s is None else s
            if space_dim:
                v = v * flip * scale
        vectors.append(v)
    try:
        spacing, cols = unit_columns(vectors)
    except BadAxis as exc:
        raise _fail(path, "space directions", f"gives axis {L.spatial[exc.index]} a vector of "
                    f"length {exc.length}") from None
    spacing += [1.0] * (3 - len(spacing))
    direction = complete_direction(cols)
    if is_singular(direction):
        raise _fail(path, "space directions", "gives linearly dependent axes (a singular "
                    "direction)")
    origin = np.zeros(3)
    time_origin, time_spacing = 0.0, 1.0
    if "space origin" in F:
        o = _vector_list(path, "space origin", F["space origin"], 1, space_dim)[0]
        if o is not None:
            origin[: min(space_dim, 3)] = o[:3]
            with np.errstate(over="ignore"):  # beyond the float range is caught as inf below
                origin = origin * flip * scale
            if space_dim == 4:
                time_origin = o[3] * time_scale
    elif not space_dim and "axis mins" in F:
        mins = _floats(h, "axis mins", L.dim)
        for k, i in enumerate(L.spatial):
            if math.isfinite(mins[i]):
                origin[k] = mins[i]
    t = L.time_axis
    if t is not None:
        vec = dirs[t] if dirs is not None else None
        if vec is not None:
            time_spacing = vec[3] * time_scale
        else:
            time_spacing = _spacing_of(h, L, t) or 1.0
            if "axis mins" in F and "space origin" not in F:
                lo = _floats(h, "axis mins", L.dim)[t]
                if math.isfinite(lo):
                    time_origin = lo
        if not math.isfinite(time_spacing) or time_spacing == 0:
            time_spacing = 1.0
        time_spacing = abs(time_spacing)
    if not all(math.isfinite(v) for v in (*origin, time_origin)):
        raise _fail(path, "space origin", "is not finite after unit conversion")
    L.spacing = tuple(float(s) for s in spacing)
    L.origin = tuple(float(o) for o in origin)
    L.direction = direction
    L.time_origin, L.time_spacing = float(time_origin), float(time_spacing)

