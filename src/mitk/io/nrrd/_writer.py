"""NRRD writer: ``NRRD0005`` with an LPS space, attached (``.nrrd``) or as a detached pair
(``.nhdr`` and its data file); see :mod:`mitk.io.nrrd` for what is written where."""

from __future__ import annotations

import math
import os
import re
from typing import Any

import numpy as np

from ..._geometry_rules import lies_in_xy_plane
from ...errors import ArgumentError, UnsupportedFormatError
from .. import _options, _replace, _streams
from .._info import ImageInfo
from .._text_header import check_header
from ._header import _vec
from ._properties import _component_kind, _fit_frame, _header_text, _property_lines, _text
from ._vocabulary import _WRITE_TYPES

WRITE_OPTIONS = frozenset({"compression", "compression_level", "compression_block_size"})
_CODECS = {None: None, "raw": None, "gzip": "gzip", "bzip2": "bzip2"}


def write(path: str, array: np.ndarray, info: ImageInfo, *, compression: str | None = None,
          compression_level: int | None = None, compression_block_size: int | None = None,
          **unknown: Any) -> None:
    """Write a ``.nrrd`` or ``.nhdr`` file (see the module docstring).

    Parameters
    ----------
    path : str
        The target file; a ``.nhdr`` also gets its data file beside it.
    array : numpy.ndarray
        Read-only, C-contiguous, native-order pixels of shape ``info.full_shape``.
    info : ImageInfo
        Pixel type, shape, channels, LPS geometry, time and properties.
    compression : {None, "raw", "gzip", "bzip2"}
        Encoding of the data; None and ``"raw"`` write raw bytes.
    compression_level : int, optional
        1 (fastest, the default) to 9; only with a compression.
    compression_block_size : int, optional
        gzip payloads of 16 MiB and more: uncompressed bytes per independent deflate block
        (64 KiB to 64 MiB, default 1 MiB); smaller blocks make region reads cheaper.

    Raises
    ------
    TypeError
        An unknown option, or an option or property of the wrong type.
    ArgumentError
        An invalid option value, or geometry that is not finite.
    UnsupportedFormatError
        float16 pixels, complex pixels with several channels, or a property NRRD cannot hold.

    Notes
    -----
    Everything is validated before any file is created.  Each file is replaced atomically; the
    pixels are written from the caller's buffer in large pieces (raw) or compressed in chunks,
    with the GIL released inside the OS and codec calls.  No lock is taken here: the caller holds
    the image's read lock.
    """
    _options.reject_unknown("NRRD", "write", unknown, WRITE_OPTIONS)
    codec = _options.compression("NRRD", compression, _CODECS, "use None or 'raw', 'gzip' or "
                                 "'bzip2'")
    level = _options.compression_level(compression_level, codec)
    block = _options.compression_block_size(compression_block_size, codec)

    dtype = np.dtype(info.dtype)
    is_complex = dtype.kind == "c"
    if dtype == np.bool_:
        dtype = np.dtype(np.uint8)
    component = np.dtype(f"float{dtype.itemsize * 4}") if is_complex else dtype
    if component.kind == "f" and component.itemsize == 2:
        raise UnsupportedFormatError(f"{path}: NRRD cannot store float16 pixels; convert the "
                                     "image to float32 first")
    if component not in _WRITE_TYPES:
        raise UnsupportedFormatError(f"{path}: NRRD cannot store {info.dtype} pixels; convert "
                                     "to float32 or an integer type first")
    channels = int(info.channels)
    if is_complex and channels > 1:
        raise UnsupportedFormatError(
            f"{path}: NRRD cannot store {dtype} pixels with {channels} channels: the complex "
            "axis and the component axis would be two non-spatial axes; save the channels "
            "separately")
    if tuple(array.shape) != tuple(info.full_shape):
        raise ArgumentError(f"{path}: pixel array shape {array.shape} does not match the image "
                            f"shape {info.full_shape}")
    ndim = info.ndim
    spacing = np.asarray(info.spacing, dtype=np.float64)
    origin = np.asarray(info.origin, dtype=np.float64)
    direction = np.asarray(info.direction, dtype=np.float64)
    time_origin, time_spacing = float(info.time_origin), float(info.time_spacing)
    if not (np.all(np.isfinite(spacing)) and np.all(spacing > 0) and np.all(np.isfinite(origin))
            and np.all(np.isfinite(direction)) and math.isfinite(time_origin)
            and math.isfinite(time_spacing) and time_spacing > 0):
        raise ArgumentError(f"{path}: geometry is not finite (spacing {tuple(spacing)}, origin "
                            f"{tuple(origin)}, time {time_origin}/{time_spacing}); NRRD needs "
                            "finite values and positive spacings")
    props = info.properties

    frame_text = props.get("nrrd.measurement frame")
    if frame_text is not None:
        frame_text = _text(frame_text)
    if ndim == 2:
        in_plane = lies_in_xy_plane(direction, origin)
        space_dim = 2 if in_plane and (frame_text is None
                                       or _fit_frame(frame_text, 2) is not None) else 3
    else:
        space_dim = 4 if ndim == 4 else 3
    frame = None
    if frame_text is not None:
        frame = _fit_frame(frame_text, space_dim)
        if frame is None:
            raise UnsupportedFormatError(
                f"{path}: property 'nrrd.measurement frame' ({frame_text!r}) is not a "
                f"measurement frame NRRD can write in {space_dim}D space")

    xyz = list(reversed(info.shape[-3:] if ndim >= 3 else info.shape))
    sizes, dirs, kinds = [], [], []
    if is_complex:
        sizes.append(2)
        dirs.append("none")
        kinds.append("complex")
    elif channels > 1:
        sizes.append(channels)
        dirs.append("none")
        kinds.append(_component_kind(props, channels, component))
    axes = direction * spacing  # column j: the world vector of index axis j
    for k, n in enumerate(xyz):
        v = list(axes[: min(space_dim, 3), k]) + [0.0] * (space_dim - 3)
        sizes.append(n)
        dirs.append(_vec(v))
        kinds.append("domain")
    if ndim == 4:
        sizes.append(info.shape[0])
        dirs.append(_vec([0.0, 0.0, 0.0, time_spacing]))
        kinds.append("domain")
    field_lines, pairs = _property_lines(path, props, len(sizes), space_dim)

    lines = ["NRRD0005", "# Complete NRRD file format specification at:",
             "# http://teem.sourceforge.net/nrrd/format.html",
             f"type: {_WRITE_TYPES[component]}", f"dimension: {len(sizes)}"]
    lines.append("space: left-posterior-superior" if space_dim == 3
                 else f"space dimension: {space_dim}")
    lines.append("sizes: " + " ".join(str(int(s)) for s in sizes))
    lines.append("space directions: " + " ".join(dirs))
    lines.append("kinds: " + " ".join(kinds))
    if component.itemsize > 1:
        lines.append(f"endian: {'little' if np.little_endian else 'big'}")
    lines.append(f"encoding: {codec or 'raw'}")
    org = list(origin[: min(space_dim, 3)]) + ([time_origin] if space_dim == 4 else [])
    lines.append(f"space origin: {_vec(org)}")
    if frame is not None:
        lines.append("measurement frame: " + " ".join(_vec(v) for v in frame))
    lines += [line for line in field_lines if line is not None]
    detached = path.lower().endswith(".nhdr")
    if detached:
        path = _replace.pair_target(path, "NRRD")
    data = memoryview(array.reshape(-1).view(np.uint8))
    if not detached:
        header = check_header(path, "NRRD", lines + pairs + [""])  # the blank line ends it
        with _replace.atomic_write(path) as f:
            f.write(header)
            _write_data(f, data, codec, level, block)
        return
    suffix = {None: ".raw", "gzip": ".raw.gz", "bzip2": ".raw.bz2"}[codec]
    # Checked before anything is written, with the name the data file most likely gets.
    check_header(path, "NRRD", lines + [f"data file: {os.path.basename(path)}{suffix}"] + pairs)

    def header(written: str, _: object) -> bytes:
        _header_text(path, f"the data file name {written!r}", written)
        return check_header(path, "NRRD", lines + [f"data file: {written}"] + pairs)

    _replace.write_pair(path, ".nhdr", suffix, r"\.raw(\.gz|\.bz2)?", "NRRD",
                        ("LIST", "SKIPLIST"), _DATA_FILE_LINE,
                        lambda f: _write_data(f, data, codec, level, block), header)


# The ``data file`` line of an existing header (the data file a save may replace).
_DATA_FILE_LINE = re.compile(r"\s*data ?file\s*:\s*(.*)$", re.IGNORECASE)


def _write_data(f, data: memoryview, codec: str | None, level: int, block: int | None) -> None:
    if codec is None:
        _streams.write_from(f, data)
    else:
        _streams.compress_from(f, data, codec, level, block=block)
