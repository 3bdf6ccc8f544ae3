"""NIfTI pixel data: read straight into the image, scaled in place (``scl_slope``/``scl_inter``)
or scattered from whole component volumes into interleaved pixels (see :mod:`mitk.io.nifti`)."""

from __future__ import annotations

import math

import numpy as np

from .. import _streams
from .._info import Allocator

_SCALE_CHUNK = 1 << 18  # elements converted per step when scaling (2 MiB of float64)
_GROUP_ELEMENTS = 1 << 19  # elements of component volumes read per step (at least one volume)


def _scaling(hdr, version: int, rgb: bool) -> tuple[float, float] | None:
    """(slope, inter) when the header asks for scaling, else None."""
    if not version or rgb:
        return None
    slope, inter = float(hdr["scl_slope"]), float(hdr["scl_inter"])
    if not math.isfinite(inter):
        inter = 0.0
    if slope == 0 or not math.isfinite(slope) or (slope == 1 and inter == 0):
        return None
    return slope, inter


def _scaled_dtype(stored: np.dtype) -> np.dtype:
    if stored.kind == "c":
        return stored
    if stored.itemsize <= 2 or stored == np.float32:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _scale_into(out, src, slope: float, inter: float) -> None:
    """``out[i] = src[i] * slope + inter`` for flat arrays, in float64 chunks, front to back.

    ``src`` may lie in the tail of ``out``'s own bytes: an output chunk ending at element ``j``
    ends at or before the start of source element ``j`` because outputs are at least as wide, and
    each source chunk is copied before its output is written.
    """
    work = np.empty(min(src.size, _SCALE_CHUNK),
                    dtype=np.complex128 if out.dtype.kind == "c" else np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow gives inf, as in the file
        for start in range(0, src.size, _SCALE_CHUNK):
            stop = min(start + _SCALE_CHUNK, src.size)
            tmp = work[:stop - start]
            tmp[...] = src[start:stop]
            tmp *= slope
            if inter:
                tmp += inter
            out[start:stop] = tmp


def _store_volumes(out, first: int, block, scaling, shape: tuple) -> None:
    """Scatter component volumes ``first, first + 1, ...`` (rows of ``block``, file order) into
    ``out[..., first:]``, scaling them on the way when asked."""
    src = np.moveaxis(block.reshape((block.shape[0],) + shape), 0, -1)
    if scaling is not None:
        src = src.astype(np.complex128 if out.dtype.kind == "c" else np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            src *= scaling[0]
            if scaling[1]:
                src += scaling[1]
    with np.errstate(over="ignore", invalid="ignore"):
        out[..., first:first + block.shape[0]] = src


def _read_pixels(f, layout: dict, out_dtype: np.dtype, scaling, allocate: Allocator, *,
                 gz: bool, offset: int, data_path: str) -> None:
    shape, channels, comps = layout["shape"], layout["channels"], layout["comps"]
    stored = layout["stored"]  # in the file's byte order
    full = shape + ((channels,) if channels > 1 else ())

    def fill(view: memoryview) -> None:
        if gz:
            _streams.decompress_into(f, view, "gzip", path=data_path, skip=offset)
        else:
            _streams.read_exact_into(f, view, path=data_path, what="NIfTI image data")

    if not gz:
        f.seek(offset)
    out = allocate(out_dtype, full)
    if comps > 1:  # whole component volumes in the file, interleaved in the image
        per = layout["nbytes"] // comps // stored.itemsize
        group = max(1, min(comps, _GROUP_ELEMENTS // per))  # volumes handled per step
        if gz:  # one stream: the whole stored payload first
            volumes = np.empty((comps, per), dtype=stored)
            fill(memoryview(volumes).cast("B"))
            for first in range(0, comps, group):
                _store_volumes(out, first, volumes[first:first + group], scaling, shape)
            return
        block = np.empty((group, per), dtype=stored)
        for first in range(0, comps, group):
            part = block[:min(group, comps - first)]
            fill(memoryview(part).cast("B"))
            _store_volumes(out, first, part, scaling, shape)
        return
    if scaling is None:
        fill(memoryview(out).cast("B"))
        if not stored.isnative:
            out.byteswap(inplace=True)
        return
    # Read the stored values into the tail of the wider output, then widen in place.
    raw = out.reshape(-1).view(np.uint8)
    start = raw.size - layout["nbytes"]
    fill(memoryview(raw[start:]))
    _scale_into(out.reshape(-1), raw[start:].view(stored), *scaling)

