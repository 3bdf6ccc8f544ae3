"""Geometry from axis vectors, shared by the formats: lengths, unit directions, completion.

A file gives each index axis a world vector (NRRD ``space directions``, a NIfTI sform's
columns, a MetaImage ``TransformMatrix`` times ``ElementSpacing``).  Its length is the spacing and
its unit vector the direction column, kept exactly (never orthonormalised).  A 2D image's third
column is completed here.  Whether the result is singular is :func:`mitk._geometry_rules.is_singular`.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["BadAxis", "complete_direction", "unit_columns"]


class BadAxis(ValueError):
    """Axis vector ``index`` has a ``length`` that is 0 or not finite."""

    def __init__(self, index: int, length: float) -> None:
        super().__init__(f"axis {index} has length {length}")
        self.index, self.length = index, length


def unit_columns(vectors: Sequence[np.ndarray]) -> tuple[list[float], list[np.ndarray]]:
    """(lengths, unit vectors) of 3-vectors; BadAxis for a zero or non-finite one.

    ``math.hypot`` keeps lengths free of overflow for entries near the float maximum.
    """
    lengths, units = [], []
    for k, v in enumerate(vectors):
        length = math.hypot(*(float(x) for x in v))
        if not math.isfinite(length) or length == 0:
            raise BadAxis(k, length)
        lengths.append(length)
        units.append(np.asarray(v, dtype=np.float64) / length)
    return lengths, units


def complete_direction(units: Sequence[np.ndarray]) -> np.ndarray:
    """A 3x3 direction from 1 to 3 unit columns.

    Missing columns are the identity's when the given ones lie in the xy plane (so a 2D image
    keeps z as its third axis), else unit normals to them.
    """
    cols = [np.asarray(c, dtype=np.float64) for c in units]
    if len(cols) == 1:
        c0 = cols[0]
        if c0[1] == 0 and c0[2] == 0:
            cols = [c0, np.array([0.0, 1.0, 0.0])]
        else:
            e = np.eye(3)[int(np.argmin(np.abs(c0)))]
            c1 = e - np.dot(e, c0) * c0
            cols.append(c1 / np.linalg.norm(c1))
    if len(cols) == 2:
        c0, c1 = cols
        if c0[2] == 0 and c1[2] == 0:
            cols.append(np.array([0.0, 0.0, 1.0]))
        else:
            n = np.cross(c0, c1)
            norm = float(np.linalg.norm(n))
            cols.append(n / norm if norm > 0 else np.array([0.0, 0.0, 1.0]))
    return np.column_stack(cols)
