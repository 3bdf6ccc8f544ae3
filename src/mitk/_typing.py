"""Type aliases of the public signatures (for annotations only; nothing here runs checks)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Union

import numpy as np
import numpy.typing as npt

__all__ = ["Float64Array", "MatrixLike", "PathArg", "PointsLike", "Triple", "Vector3Like"]

#: A file path: ``str``, ``bytes`` or ``os.PathLike``.
PathArg = Union[str, bytes, os.PathLike[str], os.PathLike[bytes]]

#: Three (or, for 2D images, two) numbers: a tuple, list, ndarray, Point3D or Vector3D.
Vector3Like = Union[Sequence[float], npt.NDArray[Any]]

#: A 3x3 (or, for 2D images, 2x2) matrix of numbers.
MatrixLike = Union[Sequence[Sequence[float]], npt.NDArray[Any]]

#: One point (3 numbers) or an array of points of shape ``(..., 3)``.
PointsLike = Union[Sequence[float], Sequence[Sequence[float]], npt.NDArray[Any]]

#: A spacing, origin or extent as returned by getters.
Triple = tuple[float, float, float]

#: A 3x3 direction or 4x4 affine as returned by getters (read-only).
Float64Array = npt.NDArray[np.float64]
