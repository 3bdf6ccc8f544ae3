"""Geometry rules every layer applies: valid spacing, origin and direction, and two tests.

This module is the one place that decides what a valid geometry is, so that :class:`mitk.Image`,
:class:`mitk.Geometry3D` and every file format agree:

* :func:`validate_spacing`, :func:`validate_origin`, :func:`validate_direction` check an argument
  and return it in the stored form (3-tuples of floats, a new 3x3 float64 array);
* :func:`is_singular` is the one singularity rule (``abs(det(D)) <= 1e-12 * product of column
  norms``), computed without overflow for any finite matrix;
* :func:`lies_in_xy_plane` is the one rule for "this 2D geometry stays in the plane z = 0".

It imports nothing of mitk but the errors, so :mod:`mitk.io` may import it without importing
the image model.  Pure functions: no state, no locks, safe from any thread.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import ArgumentError

__all__ = [
    "EQUALITY_TOLERANCE",
    "PLANE_TOLERANCE",
    "SINGULAR_TOLERANCE",
    "is_singular",
    "lies_in_xy_plane",
    "relative_det",
    "validate_direction",
    "validate_origin",
    "validate_spacing",
]

#: Geometries compare equal when every spacing, origin and direction entry differs by at most
#: this much (MITK's ``eps`` for geometry comparisons).
EQUALITY_TOLERANCE = 1e-6

#: A direction is singular when ``abs(det(D)) <= SINGULAR_TOLERANCE * prod(column norms)``.
SINGULAR_TOLERANCE = 1e-12

#: A 2D geometry lies in the xy plane when the z components of its axis vectors are at most this
#: fraction of their lengths, and its origin's z at most this fraction of ``max(1, |ox|, |oy|)``.
PLANE_TOLERANCE = 1e-9


def _show(value: Any) -> str:
    """A short one-line rendering of an argument for error messages."""
    if isinstance(value, np.ndarray):
        return repr(value.tolist())
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _holds_bool(value: Any) -> bool:
    """Whether a (nested) list or tuple holds a ``bool`` or NumPy bool anywhere."""
    if isinstance(value, (bool, np.bool_)):
        return True
    if isinstance(value, (list, tuple)):
        return any(_holds_bool(v) for v in value)
    return False


def _float_array(value: Any, name: str) -> np.ndarray:
    """``value`` as a new float64 array.

    Raises TypeError for anything that is not made of real numbers (strings, None, bools,
    complex numbers, arbitrary objects) and ArgumentError for ragged nesting.
    """
    if value is None or isinstance(value, (str, bytes, bytearray)):
        raise TypeError(f"{name} must be numbers, not {type(value).__name__} {_show(value)}")
    if not isinstance(value, np.ndarray) and _holds_bool(value):
        # NumPy would turn (True, 1, 1) into ints: a bool is a flag, not a size or coordinate.
        raise TypeError(f"{name} must be real numbers, not {_show(value)} (it holds a bool)")
    try:
        arr = np.asarray(value)
    except ValueError:
        # NumPy refuses ragged nesting such as [[1, 0, 0], [0, 1]]: a shape problem.
        raise ArgumentError(f"{name} {_show(value)} is not a regular array of numbers") from None
    kind = arr.dtype.kind
    if kind == "O" and all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                           for v in arr.flat):
        kind = "f"  # e.g. Fractions or ints too large for int64
    if kind not in "iuf":
        raise TypeError(f"{name} must be real numbers, not {_show(value)} "
                        f"(NumPy dtype {arr.dtype})")
    try:
        return arr.astype(np.float64)  # always a new array
    except OverflowError:
        raise ArgumentError(f"{name} {_show(value)} is invalid; entries must be finite") from None


def _check_ndim(ndim: Any) -> int:
    if isinstance(ndim, bool) or not isinstance(ndim, numbers.Integral) or ndim not in (2, 3, 4):
        raise ArgumentError(f"ndim must be the image dimension 2, 3 or 4, not {ndim!r}")
    return int(ndim)


def _vector(value: Any, ndim: int, name: str) -> np.ndarray:
    arr = _float_array(value, name)
    allowed = (2, 3) if _check_ndim(ndim) == 2 else (3,)
    if arr.ndim != 1 or arr.shape[0] not in allowed:
        expected = ("2 or 3 entries (x, y[, z]) for a 2D image" if ndim == 2
                    else f"3 entries (x, y, z) for a {ndim}D image")
        raise ArgumentError(f"{name} {_show(value)} has shape {arr.shape}; expected {expected}")
    return arr


def validate_spacing(value: Any, ndim: int = 3,
                     name: str = "spacing") -> tuple[float, float, float]:
    """Check a spacing and return it as a 3-tuple of floats.

    Parameters
    ----------
    value : sequence of numbers
        Voxel size in mm along x, y, z (tuple, list, ndarray, :class:`Vector3D`, ...).
    ndim : {2, 3, 4}
        Dimension of the image; a 2D image also accepts 2 entries (the z spacing becomes 1).
    name : str
        Argument name used in error messages.

    Returns
    -------
    tuple of float
        ``(sx, sy, sz)``.

    Raises
    ------
    ArgumentError
        Wrong length, or an entry that is not finite and > 0.
    TypeError
        Not a sequence of real numbers.
    """
    arr = _vector(value, ndim, name)
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ArgumentError(f"{name} {tuple(arr.tolist())} is invalid; expected finite numbers "
                            "> 0 (voxel sizes in mm)")
    values = arr.tolist()
    if len(values) == 2:
        values.append(1.0)
    return (values[0], values[1], values[2])


def validate_origin(value: Any, ndim: int = 3,
                    name: str = "origin") -> tuple[float, float, float]:
    """Check an origin and return it as a 3-tuple of floats.

    Parameters
    ----------
    value : sequence of numbers
        World position (LPS, mm) of the centre of voxel (0, 0, 0).
    ndim : {2, 3, 4}
        Dimension of the image; a 2D image also accepts 2 entries (the z origin becomes 0).
    name : str
        Argument name used in error messages.

    Returns
    -------
    tuple of float
        ``(ox, oy, oz)``.

    Raises
    ------
    ArgumentError
        Wrong length, or an entry that is not finite.
    TypeError
        Not a sequence of real numbers.
    """
    arr = _vector(value, ndim, name)
    if not np.all(np.isfinite(arr)):
        raise ArgumentError(f"{name} {tuple(arr.tolist())} is invalid; expected finite numbers")
    values = arr.tolist()
    if len(values) == 2:
        values.append(0.0)
    return (values[0], values[1], values[2])


def validate_direction(value: Any, ndim: int = 3,
                       name: str = "direction") -> npt.NDArray[np.float64]:
    """Check a direction matrix and return it as a new 3x3 float64 array.

    Parameters
    ----------
    value : array-like
        3x3 matrix whose column ``j`` is the world direction of index axis ``j``; a 2D image
        also accepts a 2x2 matrix, padded with the identity.
    ndim : {2, 3, 4}
        Dimension of the image.
    name : str
        Argument name used in error messages.

    Returns
    -------
    numpy.ndarray
        A new, writable 3x3 float64 array with exactly the given values (never normalised or
        orthonormalised).

    Raises
    ------
    ArgumentError
        Wrong shape, a non-finite entry, or a singular matrix
        (``abs(det(D)) <= 1e-12 * product of column norms``).
    TypeError
        Not made of real numbers.
    """
    arr = _float_array(value, name)
    allowed = ((2, 2), (3, 3)) if _check_ndim(ndim) == 2 else ((3, 3),)
    if arr.shape not in allowed:
        expected = "a 2x2 or 3x3 matrix for a 2D image" if ndim == 2 else "a 3x3 matrix"
        raise ArgumentError(f"{name} {_show(value)} has shape {arr.shape}; expected {expected}")
    if not np.all(np.isfinite(arr)):
        raise ArgumentError(f"{name} {arr.tolist()} is invalid; expected finite numbers")
    if arr.shape == (2, 2):
        padded = np.eye(3)
        padded[:2, :2] = arr
        arr = padded
    if is_singular(arr):
        raise ArgumentError(f"{name} {arr.tolist()} is singular; expected an invertible matrix "
                            "whose columns are the world directions of the index axes")
    return arr


def relative_det(matrix: np.ndarray) -> float:
    """``abs(det(D)) / prod(column norms)``: 1 for orthogonal columns, 0 for singular ones."""
    # Scaling each column by its largest entry first keeps the norms and the determinant free
    # of overflow and underflow for any finite matrix (det is linear in each column).
    scale = np.max(np.abs(matrix), axis=0)
    if np.any(scale == 0):
        return 0.0
    cols = matrix / scale
    cols = cols / np.linalg.norm(cols, axis=0)
    return float(abs(np.linalg.det(cols)))


def is_singular(matrix: Any) -> bool:
    """Whether a square matrix is singular by mitk's one rule (see :data:`SINGULAR_TOLERANCE`).

    Non-finite entries count as singular.  No overflow or warning for any finite entries
    (columns are rescaled before the determinant).
    """
    m = np.asarray(matrix, dtype=np.float64)
    if not np.all(np.isfinite(m)):
        return True
    return relative_det(m) <= SINGULAR_TOLERANCE


def lies_in_xy_plane(direction: Any, origin: Any) -> bool:
    """Whether a 2D image's geometry stays in the plane z = 0 (see :data:`PLANE_TOLERANCE`).

    Parameters
    ----------
    direction : array-like
        3x3 direction; its first two columns are the x and y axis vectors.
    origin : sequence of 3 floats
        The origin.

    Notes
    -----
    A relative test: huge axis vectors (1e200) do not overflow, and rounding noise in a
    rotated direction (1e-17 of its length) still counts as in the plane.
    """
    d = np.asarray(direction, dtype=np.float64)
    ox, oy, oz = (float(v) for v in origin)
    for j in (0, 1):
        length = math.hypot(*d[:, j].tolist())
        if abs(d[2, j]) > PLANE_TOLERANCE * length:
            return False
    return abs(oz) <= PLANE_TOLERANCE * max(1.0, abs(ox), abs(oy))
