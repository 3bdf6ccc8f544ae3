"""PixelType: an immutable (component dtype, components per pixel) pair, as MITK names it."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .errors import ArgumentError

__all__ = ["PixelType", "make_pixel_type"]


class PixelType(NamedTuple):
    """The type of one pixel: a component dtype and a component count.

    Attributes
    ----------
    dtype : numpy.dtype
        Native-order dtype of one component (one of the supported types, SPEC.md section 5).
    components : int
        Components per pixel: 1 for scalar images, 3 for RGB, etc.
    """

    dtype: np.dtype
    components: int = 1

    def __repr__(self) -> str:
        return f"PixelType(dtype={self.dtype.name}, components={self.components})"


def check_components(value: object, argument: str = "channels") -> int:
    """Validate a component count: an int >= 1 (bool and non-ints are TypeError)."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{argument} must be an int, not {type(value).__name__}")
    count = value.__index__()
    if count < 1:
        raise ArgumentError(f"{argument} must be >= 1, got {count}")
    return count


def make_pixel_type(dtype: object, components: int = 1) -> PixelType:
    """Make a :class:`PixelType` from anything :func:`numpy.dtype` accepts.

    Raises
    ------
    TypeError
        Unsupported dtype (the message lists the supported ones) or non-int ``components``.
    ArgumentError
        ``components < 1``.
    """
    from ._core.component_types import check_dtype

    return PixelType(check_dtype(dtype, "dtype"), check_components(components, "components"))
