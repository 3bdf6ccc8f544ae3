"""MetaImage data: where the pixels are (``LOCAL``, one file, ``LIST`` or a pattern), how they are
encoded, and the plan that :func:`mitk.io._data_files.fill` reads into the image.

Everything here is checked before the image buffer exists, with the shared limits and lazy names
of :mod:`mitk.io._data_files` (the first missing data file is reported at once).
"""

from __future__ import annotations

import math
import os
import re
from typing import Iterator

import numpy as np

from ...errors import CorruptFileError
from .. import _parallel_deflate, _streams
from .._ascii import AsciiValues, short_tokens
from .._data_files import MAX_DATA_FILES, PatternNames, Piece, resolve_data_file, stat_data_file
from .._text_header import MAX_LINE as _MAX_LINE
from ._header import CHECKS_FIELD, INDEX_FIELD, _Header, _Layout, _to_int


def _resolve(h: _Header, name: str, allow_external: bool) -> str:
    return resolve_data_file(h.path, name, "MetaImage field 'ElementDataFile'", allow_external)


def _list_names(h: _Header, f, count: int, file_size: int) -> list[str]:
    room = file_size - h.end
    if count > (room + 1) // 2:
        raise h.fail("ElementDataFile", f"is LIST of {count} files, but only {room} bytes follow "
                                        "the header to name them (one name per line)")
    f.seek(h.end)
    names = []
    for k in range(count):
        raw = f.readline(_MAX_LINE + 1)
        if not raw or len(raw) > _MAX_LINE:
            raise h.fail("ElementDataFile", f"is LIST of {count} files, but file name {k + 1} "
                                            "is missing or too long")
        try:
            name = raw.decode("utf-8").rstrip()  # MetaIO strips trailing blanks only
        except UnicodeDecodeError:
            raise h.fail("ElementDataFile", f"LIST file name {k + 1} is not text") from None
        if not name:
            raise h.fail("ElementDataFile", f"LIST file name {k + 1} of {count} is empty")
        names.append(name)
    return names


def _integers(tokens: list, values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Integers from tokens that are not all integer literals; ``values`` are their doubles.

    Raises ValueError for a value that is not an integer of ``dtype``.
    """
    info = np.iinfo(dtype)
    out = np.empty(values.shape, dtype)
    # Up to 2**53 a double is an exact integer, and NumPy's comparisons with the type's limits
    # are exact; larger ones (and inf, NaN) are read one by one from their tokens, since
    # float(iinfo.max) rounds up to 2**63 and "9223372036854775807.0" would wrap.
    small = np.abs(values) < 2.0 ** 53
    v = values[small]
    if v.size and (np.any(v != np.trunc(v)) or v.min() < info.min or v.max() > info.max):
        raise ValueError
    out[small] = v
    for k in np.flatnonzero(~small):
        value = _to_int(tokens[k])
        if value is None or not info.min <= value <= info.max:
            raise ValueError
        out[k] = value
    return out


def _block_index(h: _Header, nbytes: int) -> _parallel_deflate.BlockIndex | None:
    """The ``MitkDeflateBlocks`` index if it is well formed for ``nbytes`` of data, else None.

    Only a hint: a malformed one is ignored (the stream is then read in one pass), because the
    file is valid MetaImage without it.
    """
    tokens = h.fields.get(INDEX_FIELD, "").split()
    # ASCII digits only (str.isdigit() also accepts '²', which int() refuses), at most 20 of
    # them (int() refuses 4300), and no more blocks than a gzip header can index: the writer
    # never makes more, and a hostile index of a million blocks must not cost a million tasks.
    if (len(tokens) < 3 or len(tokens) > 2 + _parallel_deflate.MAX_INDEXED_BLOCKS
            or not all(t.isascii() and t.isdigit() and len(t) <= 20 for t in tokens)):
        return None
    numbers = [int(t) for t in tokens]
    index = _parallel_deflate.BlockIndex(numbers[0], numbers[1], tuple(numbers[2:]))
    smallest = min(_parallel_deflate.MIN_BLOCK, _parallel_deflate.DEFLATE_BLOCK)
    if not smallest <= index.block <= max(_parallel_deflate.MAX_BLOCK,
                                          _parallel_deflate.block_size(nbytes)):
        return None  # not a block size the writer uses (compression_block_size's range)
    if not (index.consistent() and index.total == nbytes):
        return None
    # Each block's CRC-32, when the writer gave them (eight hex digits each, one per block).
    crcs = h.fields.get(CHECKS_FIELD, "").split()
    if len(crcs) == len(index.sizes) and all(
            len(c) == 8 and all(ch in "0123456789abcdefABCDEF" for ch in c) for c in crcs):
        index = index._replace(crcs=tuple(int(c, 16) for c in crcs))
    return index



def _parse_ascii(tokens: list, dtype: np.dtype) -> np.ndarray:
    """MetaIO's reading of ASCII values: every value a double, so "1e+06" and "3.0" are integers
    too; an integer literal keeps all 64 bits (a double holds only 53).  A float beyond the
    type's range becomes inf, as MetaIO's double-to-float conversion makes it.
    """
    # np.array(tokens) is count x longest token bytes (test_ascii_long_tokens).
    tokens = short_tokens(tokens, dtype.kind != "f")
    text = np.array(tokens)
    if dtype.kind == "f":
        with np.errstate(over="ignore"):  # beyond float32: inf, as in MetaIO
            return text.astype(np.float64).astype(dtype)
    try:
        return text.astype(dtype)  # integer literals, range-checked exactly by NumPy
    except (ValueError, OverflowError):
        pass
    return _integers(tokens, text.astype(np.float64), dtype)


ASCII = AsciiValues("MetaImage ASCII data", _parse_ascii)


def _pattern_names(h: _Header, value: str, slices: int) -> PatternNames:
    words = value.split()
    if len(words) >= 5:
        # MetaIO: a pattern with blanks in it is followed by all three numbers.
        pattern, numbers = " ".join(words[:-3]), words[-3:]
    else:
        pattern, numbers = words[0], words[1:]
    parsed = [_to_int(w) for w in numbers]
    if any(v is None for v in parsed):
        raise h.fail("ElementDataFile", f"is {value!r}; the pattern must be followed by integer "
                                        "min, max and step")
    first = parsed[0] if len(parsed) >= 1 else 1
    last = parsed[1] if len(parsed) >= 2 else first + slices - 1
    step = parsed[2] if len(parsed) >= 3 else 1
    if step <= 0:
        raise h.fail("ElementDataFile", f"is {value!r}; the step must be >= 1")
    count = (last - first) // step + 1 if last >= first else 0
    if count < slices:
        raise h.fail("ElementDataFile", f"is {value!r}, naming {count} files for {slices} slices")

    def fail(message: str) -> CorruptFileError:
        return h.fail("ElementDataFile", message)

    return PatternNames(pattern, range(first, first + slices * step, step), fail, fail)


def data_files(h: _Header, L: _Layout, f, file_size: int, allow_external: bool
               ) -> tuple[int, Iterator[tuple[str | None, int]]]:
    """(count, iterator of (file, or None for LOCAL; voxels in it)), in order.

    Names are resolved as the iterator advances, so the first missing one is reported at once.
    """
    value = h.fields["ElementDataFile"]
    dims = L.dims
    if value.lower() == "local":
        return 1, iter([(None, math.prod(dims))])
    if not value:
        raise h.fail("ElementDataFile", "is empty; expected LOCAL or a data file name")
    if value.startswith("LIST"):
        words = value.split()
        match = re.match(r"[+-]?\d+", words[1]) if len(words) > 1 else None
        block = int(match.group()) if match else 0
        if not 0 < block <= L.ndims:
            block = L.ndims - 1
        count = math.prod(dims[block:])
        if count > MAX_DATA_FILES:
            raise h.fail("ElementDataFile", f"is LIST of {count} files; at most "
                                            f"{MAX_DATA_FILES} are read")
        names = _list_names(h, f, count, file_size)
        per_file = math.prod(dims[:block])
    elif "%" in value:
        names = _pattern_names(h, value, dims[-1])
        per_file = math.prod(dims[:-1])
    else:
        full = _resolve(h, value, allow_external)
        if not os.path.exists(full) and os.path.isfile(full + ".gz"):
            # MetaIO's fallback: a gzipped data file beside the named one is compressed data.
            if L.header_size == -1:
                raise h.fail("HeaderSize", "is -1, which does not work for the compressed data "
                                           f"in {value + '.gz'!r}")
            full = full + ".gz"
            L.binary = L.compressed = True
        return 1, iter([(full, math.prod(dims))])
    return len(names), ((_resolve(h, n, allow_external), per_file) for n in names)


def plan(h: _Header, L: _Layout, f, file_size: int, allow_external: bool) -> list[Piece]:
    """Every data file's share of the pixels, located and size-checked (nothing allocated)."""
    count, files = data_files(h, L, f, file_size, allow_external)
    pieces = []
    declared = h.integer("CompressedDataSize", default=0) if L.compressed else 0
    if declared < 0:
        raise h.fail("CompressedDataSize", f"is {declared}; expected a byte count >= 0")
    for src, voxels in files:
        nbytes = voxels * L.item_bytes
        if src is None:
            size, start = file_size, h.end
        else:
            size = stat_data_file(src, h.path, "MetaImage", "ElementDataFile",
                                  h.fields["ElementDataFile"]).st_size
            start = 0
        where = f"{src} (data file of {h.path})" if src else h.path
        if L.header_size > 0:
            if src is None and L.header_size < h.end:
                raise h.fail("HeaderSize", f"is {L.header_size}, inside the header (which ends at "
                                           f"byte {h.end}); for LOCAL data it counts from the "
                                           "start of the file")
            start = L.header_size
            if start > size:  # also keeps f.seek() from overflowing (HeaderSize = 1e300)
                raise h.fail("HeaderSize", f"is {h.fields['HeaderSize'][:40]!r}, beyond the end "
                                           f"of {where} ({size} bytes)")
        available = max(size - start, 0)
        src = src or h.path
        if L.compressed:
            # Several files each hold a whole stream; MetaIO's single size cannot bound them.
            if declared and count == 1:
                if declared > available:
                    raise CorruptFileError(
                        f"{where}: MetaImage compressed data is truncated: CompressedDataSize "
                        f"declares {declared} bytes from byte {start}, {available} are present")
                available = declared
            _streams.check_compressed_size(nbytes, available, "zlib", path=where)
            # The index describes the one stream of a single data file.
            index = _block_index(h, nbytes) if count == 1 else None
            pieces.append(Piece(src, where, start, nbytes, encoding="deflate", limit=available,
                                index=index))
        elif not L.binary:
            values = voxels * L.channels
            if values > (available + 1) // 2:
                raise CorruptFileError(
                    f"{where}: MetaImage ASCII data is truncated: {values} values need at least "
                    f"{2 * values - 1} bytes from byte {start}, {available} are present")
            pieces.append(Piece(src, where, start, nbytes, encoding="ascii", limit=available,
                                text=ASCII))
        else:
            if L.header_size == -1:
                start = size - nbytes
            if available < nbytes or start < 0:
                raise CorruptFileError(
                    f"{where}: MetaImage pixel data is truncated: {nbytes} bytes needed from byte "
                    f"{max(start, 0)}, {min(available, size)} present (DimSize {L.dims}, "
                    f"{L.channels} channel(s) of {L.dtype.itemsize} bytes)")
            pieces.append(Piece(src, where, start, nbytes, what="MetaImage pixel data"))
    return pieces
