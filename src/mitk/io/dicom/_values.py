"""Pixel formats and the rescale rule (SPEC section 12).

The stored type comes from BitsAllocated, PixelRepresentation and the pixel data tag (float and
double float pixel data).  With ``rescale=True`` the output type is the stored integer type when
every ``stored * slope + intercept`` is an integer that fits it, else the smallest signed integer
type that holds them all, else float32 (float64 only for float64 data).  "Every" is decided from
the header, before any pixel is read: the stored values range over BitsStored bits, and each
frame's slope and intercept map that range.  So a CT stored as uint16 with 12 bits and intercept
-1024 becomes int16.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ...errors import UnsupportedFormatError
from ._parse import DOUBLE_PIXEL_DATA, FLOAT_PIXEL_DATA, Header

__all__ = ["PixelFormat", "output_dtype", "pixel_format"]


class PixelFormat(NamedTuple):
    """How one frame's samples are stored."""

    dtype: np.dtype          # native dtype of one sample
    channels: int            # SamplesPerPixel
    bits_stored: int
    planar: bool             # PlanarConfiguration 1 (colour planes, not interleaved)
    photometric: str

    @property
    def key(self) -> tuple:
        """What must match for frames to share a volume."""
        return (self.dtype.str, self.channels, self.bits_stored, self.planar)

    @property
    def integer(self) -> bool:
        return self.dtype.kind in "iu"

    def stored_range(self) -> tuple[int, int]:
        """Smallest and largest storable value (integers only)."""
        bits = self.bits_stored
        if self.dtype.kind == "i":
            return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        return 0, (1 << bits) - 1


def pixel_format(h: Header) -> PixelFormat:
    """The stored pixel format of ``h``; UnsupportedFormatError for one mitk cannot hold."""
    cached = h._cache.get("_format")
    if cached is not None:
        return cached
    samples = h.get("SamplesPerPixel", 1)
    bits = h.get("BitsAllocated")
    photometric = (h.get("PhotometricInterpretation") or "").upper()
    if h.pixel_tag == FLOAT_PIXEL_DATA:
        dtype = np.dtype(np.float32)
        bits = bits or 32
    elif h.pixel_tag == DOUBLE_PIXEL_DATA:
        dtype = np.dtype(np.float64)
        bits = bits or 64
    else:
        if bits not in (8, 16, 32):
            raise UnsupportedFormatError(
                f"{h.path}: BitsAllocated (0028,0100) {bits} is not supported (8, 16 or 32 "
                "bit samples)")
        signed = h.get("PixelRepresentation", 0) == 1
        dtype = np.dtype(f"{'i' if signed else 'u'}{bits // 8}")
    if samples not in (1, 3, 4):
        raise UnsupportedFormatError(f"{h.path}: SamplesPerPixel (0028,0002) {samples} is not "
                                     "supported (1, 3 or 4)")
    stored = h.get("BitsStored") or bits
    if not 1 <= stored <= bits:
        stored = bits
    if photometric in ("YBR_FULL_422", "YBR_PARTIAL_422", "YBR_PARTIAL_420") and \
            not h.transfer_syntax.startswith("1.2.840.10008.1.2.4"):
        raise UnsupportedFormatError(f"{h.path}: PhotometricInterpretation (0028,0004) "
                                     f"{photometric} (chroma-subsampled, uncompressed) is not "
                                     "supported")
    if photometric.startswith("PALETTE"):
        raise UnsupportedFormatError(f"{h.path}: PhotometricInterpretation (0028,0004) "
                                     f"{photometric} (palette colour) is not supported")
    fmt = PixelFormat(dtype, samples, stored, h.get("PlanarConfiguration", 0) == 1 and
                      samples > 1, photometric)
    h._cache["_format"] = fmt
    return fmt


def _integral(x: float) -> bool:
    return math.isfinite(x) and x == int(x)


def identity(slopes_intercepts) -> bool:
    """True when every (slope, intercept) pair is (1, 0)."""
    return all(s == 1.0 and i == 0.0 for s, i in slopes_intercepts)


def output_dtype(fmt: PixelFormat, pairs: set[tuple[float, float]], rescale: bool) -> np.dtype:
    """The image dtype for stored ``fmt`` and the frames' (slope, intercept) ``pairs``."""
    if not rescale or identity(pairs):
        return fmt.dtype
    if not fmt.integer:
        return fmt.dtype if fmt.dtype == np.float64 else np.dtype(np.float32)
    if not all(_integral(s) and _integral(i) for s, i in pairs):
        return np.dtype(np.float32)
    lo, hi = fmt.stored_range()
    values = [s * v + i for s, i in pairs for v in (lo, hi)]
    low, high = int(min(values)), int(max(values))
    info = np.iinfo(fmt.dtype)
    if info.min <= low and high <= info.max:
        return fmt.dtype
    for candidate in (np.int8, np.int16, np.int32, np.int64):
        info = np.iinfo(candidate)
        if info.min <= low and high <= info.max:
            return np.dtype(candidate)
    return np.dtype(np.float32)
