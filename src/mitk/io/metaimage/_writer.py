"""MetaImage writer: ``.mha`` (data after the header) or a ``.mhd`` pair; see
:mod:`mitk.io.metaimage` for what is written where."""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

from ..._geometry_rules import lies_in_xy_plane
from ...errors import UnsupportedFormatError
from .. import _options, _parallel_deflate, _replace, _streams
from .._info import ImageInfo
from .._text_header import check_header
from ._header import CHECKS_FIELD, INDEX_FIELD
from ._properties import _header_properties

WRITE_OPTIONS = frozenset({"compression", "compression_level", "compression_block_size"})
_CODECS = {None: None, "raw": None, "gzip": "zlib"}
_WRITE_TYPES = {
    np.dtype("int8"): "MET_CHAR", np.dtype("uint8"): "MET_UCHAR",
    np.dtype("int16"): "MET_SHORT", np.dtype("uint16"): "MET_USHORT",
    np.dtype("int32"): "MET_INT", np.dtype("uint32"): "MET_UINT",
    np.dtype("int64"): "MET_LONG_LONG", np.dtype("uint64"): "MET_ULONG_LONG",
    np.dtype("float32"): "MET_FLOAT", np.dtype("float64"): "MET_DOUBLE",
}
#: Digits of each compressed size in the block index line (zero-padded, so the writer can
#: reserve the line before the sizes are known).
_INDEX_DIGITS = 10


def _pixel_type(path: str, dtype: np.dtype) -> str:
    if dtype == np.bool_:
        return "MET_UCHAR"
    if dtype in _WRITE_TYPES:
        return _WRITE_TYPES[dtype]
    if dtype.kind == "c":
        hint = "save it as NIfTI or NRRD, which store complex pixels, or as two float images"
    elif dtype == np.float16:
        hint = "convert it to float32 first"
    else:
        hint = "convert it to one of " + ", ".join(str(d) for d in _WRITE_TYPES)
    raise UnsupportedFormatError(f"{path}: MetaImage cannot store pixel type {dtype}; {hint}")


# The ``ElementDataFile`` line of an existing header, and the names write() gives data files.
_DATA_FILE_LINE = re.compile(r"\s*ElementDataFile\s*=\s*(.*)$")


def _vector(values) -> str:
    return " ".join(repr(float(v)) for v in values)


def write(path: str, array: np.ndarray, info: ImageInfo, *, compression: str | None = None,
          compression_level: int | None = None, compression_block_size: int | None = None,
          **unknown: Any) -> None:
    """Write a ``.mha`` or ``.mhd`` file (see the module docstring).

    Parameters
    ----------
    path : str
        Target ``.mha`` (data in the file) or ``.mhd`` (data in ``<stem>.raw`` / ``.zraw``).
    array : numpy.ndarray
        Read-only, C-contiguous, native-order pixels of shape ``info.full_shape``.
    info : ImageInfo
        Geometry, time and properties to write.
    compression : {None, "raw", "gzip"}
        ``"gzip"`` writes a zlib stream (MetaIO's ``CompressedData``).
    compression_level : int, optional
        1-9 (default 1); only with ``compression="gzip"``.

    Raises
    ------
    UnsupportedFormatError
        float16 or complex pixels, a 2D geometry outside the xy plane, or a property that cannot
        be a header line; nothing is written.
    ArgumentError
        A bad option value (e.g. ``"bzip2"``, a level with raw data).
    TypeError
        An unknown option, or an option of the wrong type.

    Notes
    -----
    Reads ``array`` without copying it (bool is reinterpreted as uint8).  Each file appears
    atomically; compression releases the GIL inside zlib.
    """
    _options.reject_unknown("MetaImage", "write", unknown, WRITE_OPTIONS)
    codec = _options.compression("MetaImage", compression, _CODECS,
                                 "use None or 'raw' (uncompressed) or 'gzip' (a zlib stream)")
    level = _options.compression_level(compression_level, codec)
    block = _options.compression_block_size(compression_block_size, codec)
    element_type = _pixel_type(path, np.dtype(info.dtype))
    ndim = info.ndim
    if ndim not in (2, 3, 4):
        raise UnsupportedFormatError(f"{path}: MetaImage images here have 2 to 4 dimensions, "
                                     f"not {ndim}")
    direction = np.asarray(info.direction, dtype=np.float64)
    origin = [float(v) for v in info.origin]
    if ndim == 2:
        if not lies_in_xy_plane(direction, origin):
            raise UnsupportedFormatError(
                f"{path}: a 2D MetaImage lies in the plane z = 0, but this image's geometry "
                f"leaves it (origin z = {origin[2]}, axis z components {direction[2, 0]}, "
                f"{direction[2, 1]}); save it as NRRD or NIfTI")
    nsp = 2 if ndim == 2 else 3
    dims = list(reversed(info.shape[-nsp:])) + ([info.shape[0]] if ndim == 4 else [])
    nd = len(dims)
    extra = _header_properties(path, info.properties, nd)
    detached = path.lower().endswith(".mhd")
    if detached:
        path = _replace.pair_target(path, "MetaImage")
    matrix = np.eye(nd)
    matrix[:nsp, :nsp] = direction[:nsp, :nsp]
    spacing = list(info.spacing[:nsp]) + ([info.time_spacing] if ndim == 4 else [])
    offset = origin[:nsp] + ([info.time_origin] if ndim == 4 else [])
    lines = ["ObjectType = Image", f"NDims = {nd}", "BinaryData = True",
             f"BinaryDataByteOrderMSB = {not np.little_endian}",
             f"CompressedData = {codec is not None}"]
    size_line = len(lines)  # CompressedDataSize goes here once known
    lines += [f"TransformMatrix = {_vector(matrix.T.ravel())}",  # axis vectors in turn
              f"Offset = {_vector(offset)}",
              f"ElementSpacing = {_vector(spacing)}",
              "DimSize = " + " ".join(str(int(d)) for d in dims)]
    if info.channels > 1:
        lines.append(f"ElementNumberOfChannels = {int(info.channels)}")
    lines.append(f"ElementType = {element_type}")
    lines += extra
    # What we write we must read: checked before anything is written, with the lines added
    # later at their longest (the size, the block index, the data file's name).
    nblocks = _parallel_deflate.block_count(array.nbytes, block) if codec else 0
    later = ([f"CompressedDataSize = {' ' * 20}"] if codec else []) + (
        _index_lines(_placeholder(0, 0, nblocks)) if nblocks else []) + [
        f"ElementDataFile = {os.path.basename(path)[:-4]}.9999.zraw" if detached
        else "ElementDataFile = LOCAL"]
    check_header(path, "MetaImage", lines + later)
    pixels = np.ascontiguousarray(array)
    if pixels.dtype == np.bool_:
        pixels = pixels.view(np.uint8)
    data = memoryview(pixels).cast("B")

    # A large zlib stream is deflated in blocks; their index goes in the header, after the size.
    indexes: list[_parallel_deflate.BlockIndex] = []
    if detached:
        def header(data_name: str, n: int) -> bytes:
            if codec:
                lines.insert(size_line, f"CompressedDataSize = {n}")
                lines[size_line + 1:size_line + 1] = [line for i in indexes
                                                      for line in _index_lines(i)]
            lines.append(f"ElementDataFile = {data_name}")
            return check_header(path, "MetaImage", lines)

        _replace.write_pair(path, ".mhd", ".zraw" if codec else ".raw", r"\.z?raw", "MetaImage",
                            ("LIST", "=", ":"), _DATA_FILE_LINE,
                            lambda f: _write_data(f, data, codec, level, indexes.append, block),
                            header)
        return
    lines.append("ElementDataFile = LOCAL")
    if not codec:
        with _replace.atomic_write(path) as f:
            f.write(("\n".join(lines) + "\n").encode("utf-8"))
            _streams.write_from(f, data)
        return
    # The compressed size and the block index precede the data: reserve room for them and fill
    # them in afterwards, so the stream goes straight to the file.
    nblocks = _parallel_deflate.block_count(len(data), block)
    size = _parallel_deflate.block_size(len(data), block)
    placeholder = "\n".join(_index_lines(_placeholder(size, len(data), nblocks))) + "\n" \
        if nblocks else ""
    head = "\n".join(lines[:size_line]) + "\nCompressedDataSize = "
    tail = "\n".join(lines[size_line:]) + "\n"
    with _replace.atomic_write(path) as f:
        f.write(head.encode("utf-8"))
        mark = f.tell()
        f.write(b" " * 20 + b"\n")
        index_mark = f.tell()
        f.write((placeholder + tail).encode("utf-8"))
        n = _streams.compress_from(f, data, codec, level, on_index=indexes.append, block=block)
        f.seek(mark)
        f.write(str(n).rjust(20).encode("ascii"))
        line = "\n".join(_index_lines(indexes[0])) if indexes else ""
        if nblocks and len(line) + 1 == len(placeholder):  # zero-padded: always the same size
            f.seek(index_mark)
            f.write(line.encode("ascii"))


def _placeholder(block: int, total: int, nblocks: int) -> _parallel_deflate.BlockIndex:
    # What the index lines are reserved with: the same length as the real ones.
    return _parallel_deflate.BlockIndex(block, total, (0,) * nblocks, (0,) * nblocks)


def _index_lines(index: _parallel_deflate.BlockIndex) -> list[str]:
    """The block index line and the blocks' CRC-32 line, both of a length set by the number of
    blocks alone (zero-padded), so that the writer can reserve them."""
    sizes = " ".join(str(size).zfill(_INDEX_DIGITS) for size in index.sizes)
    crcs = " ".join(f"{crc:08x}" for crc in index.crcs)
    return [f"{INDEX_FIELD} = {index.block} {index.total} {sizes}", f"{CHECKS_FIELD} = {crcs}"]


def _write_data(f, data: memoryview, codec: str | None, level: int, on_index,
                block: int | None) -> int:
    if codec is None:
        _streams.write_from(f, data)
        return len(data)
    return _streams.compress_from(f, data, codec, level, on_index=on_index, block=block)

