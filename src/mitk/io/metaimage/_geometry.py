"""MetaImage geometry: ``ElementSpacing``/``ElementSize``, ``TransformMatrix`` and ``Offset`` (and
their synonyms) into LPS spacing, origin, direction and time, and back (MetaIO's frame is LPS)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ...errors import UnsupportedFormatError
from ..._geometry_rules import is_singular

if TYPE_CHECKING:
    from ._header import _Header, _Layout


def _first(fields: dict, names: tuple) -> str | None:
    return next((n for n in names if n in fields), None)


def _parse_geometry(h: _Header, L: _Layout) -> None:
    ndims, fields = L.ndims, h.fields
    nsp = min(ndims, 3)
    key = _first(fields, ("ElementSpacing", "ElementSize"))
    spacing = h.floats(key, ndims) if key else [1.0] * ndims
    okey = _first(fields, ("ImagePosition", "Origin", "Offset", "Position"))
    origin = h.floats(okey, ndims) if okey else [0.0] * ndims
    dkey = _first(fields, ("TransformMatrix", "Rotation", "Orientation")) or "TransformMatrix"
    if dkey in fields:
        # The values list the axis vectors in turn, so the rows read are the direction's columns.
        matrix = np.array(h.floats(dkey, ndims * ndims)).reshape(ndims, ndims).T
    else:
        matrix = np.eye(ndims)
    if not np.all(np.isfinite(matrix)):
        raise h.fail(dkey, "holds a non-finite value")
    for j in range(nsp):
        if not math.isfinite(spacing[j]) or spacing[j] == 0:
            raise h.fail(key or "ElementSpacing", f"is {spacing}; spatial spacings must be "
                                                  "finite and non-zero")
        if spacing[j] < 0:
            # ITK folds a negative spacing into the direction: the voxels stay where they are.
            spacing[j] = -spacing[j]
            matrix[:, j] = -matrix[:, j]
    if not all(math.isfinite(v) for v in origin):
        raise h.fail(okey or "Offset", f"is {origin}; expected finite numbers")
    if ndims == 4:
        mixed = np.any(matrix[3, :3] != 0) or np.any(matrix[:3, 3] != 0)
        if mixed:
            raise UnsupportedFormatError(
                f"{h.path}: MetaImage field '{dkey}' mixes the time axis with space; mitk keeps "
                "a spatial direction and a separate time axis")
        if matrix[3, 3] == 0:
            raise h.fail(dkey, "is singular (the time axis vector is zero)")
    direction = np.eye(3)
    direction[:nsp, :nsp] = matrix[:nsp, :nsp]
    # The criterion Image itself applies, computed on rescaled columns: a huge but independent
    # direction (1e200) is neither an overflow warning nor "singular" (test_huge_direction).
    if is_singular(direction):
        raise h.fail(dkey, f"is singular ({fields.get(dkey, 'identity')[:120]!r}); expected "
                           "independent axis vectors")
    L.direction = direction
    L.spacing = tuple(spacing[:nsp]) + (1.0,) * (3 - nsp)
    L.origin = tuple(origin[:nsp]) + (0.0,) * (3 - nsp)
    L.time_origin, L.time_spacing = 0.0, 1.0
    if ndims == 4:
        L.time_origin = float(origin[3])
        step = abs(spacing[3])
        L.time_spacing = step if math.isfinite(step) and step != 0 else 1.0

