"""NRRD data: where the pixels are (attached, one data file, LIST, SKIPLIST or a pattern), how
they are encoded, and the plan that :func:`mitk.io._data_files.fill` reads into the image.

Everything here is checked before the image buffer exists: names (with the shared limits of
:mod:`mitk.io._data_files`, made and resolved one at a time so that the first missing file is
reported at once), file types and sizes, and what compressed streams can hold.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from typing import TYPE_CHECKING, Iterator

import numpy as np

from ...errors import CorruptFileError
from .. import _streams
from .._ascii import AsciiValues, short_tokens
from .._data_files import (MAX_DATA_FILES, PatternNames, Piece, resolve_data_file,
                           stat_data_file)
from ._header import _Header, _fail, _unsupported

if TYPE_CHECKING:
    from ._layout import _Layout

# bzip2 cannot expand more than about 46 million times (runs of zeros); a header declaring more
# than this from the bytes present is refused before allocating.
_BZIP2_MAX_RATIO = 50_000_000
#: With byte skip -1 on a compressed stream, the most bytes read before the data (when the data
#: are smaller than this): the prefix is undeclared, so its size must be bounded somehow.
MAX_UNDECLARED_PREFIX = 16 << 20
# Between deflate's bound and bzip2's, a declared size is only plausible for a stream that really
# expands that much (an empty mask), so the stream is counted before the buffer is allocated: a
# few hundred bytes must not reserve gigabytes.
_BZIP2_COUNT_RATIO = _streams.MAX_DEFLATE_RATIO
_PATTERN = re.compile(r"(?:[^%]|%%)*%0?\d*d(?:[^%]|%%)*")


def _parse_ascii(tokens: list, dtype: np.dtype) -> np.ndarray:
    """teem's reading of ascii values: integers exactly (a 64-bit range check), floats as doubles.

    One fixed-width array of every token costs count x longest token: long ones are shortened
    first (:func:`mitk.io._ascii.short_tokens`).
    """
    strings = np.array(short_tokens(tokens, dtype.kind != "f"))
    if dtype.kind == "f":
        return strings.astype(np.float64)
    values = strings.astype(np.dtype(np.uint64 if dtype.kind == "u" else np.int64))
    info = np.iinfo(dtype)
    if values.size and (values.min() < info.min or values.max() > info.max):
        raise OverflowError
    return values


ASCII = AsciiValues("NRRD ascii data", _parse_ascii, commas=True)


def _resolve(h: _Header, name: str, allow_external: bool) -> str:
    return resolve_data_file(h.path, name, "NRRD field 'data file'", allow_external)


def _subdim(h: _Header, text: str, dim: int) -> int:
    try:
        sub = int(text)
    except ValueError:
        raise _fail(h.path, "data file", f"gives {text!r} as the data file dimension, expected "
                    "an integer") from None
    if not 1 <= sub <= dim:
        raise _fail(h.path, "data file", f"gives data file dimension {sub}, expected 1 to {dim}")
    return sub


def _skiplist(h: _Header, L: _Layout) -> tuple[list, list]:
    """(byte skips, names) of a SKIPLIST."""
    skips, names = [], []
    for line in h.list_lines:
        fields = line.split(None, 1)
        try:
            skip = int(fields[0])
        except ValueError:
            skip = None
        if skip is None or len(fields) != 2 or skip < -1:
            raise _fail(h.path, "data file", f"SKIPLIST line {line!r} is not "
                        "'<byte skip> <file name>'")
        skips.append(skip)
        names.append(fields[1])
    if L.byte_skip:
        raise _fail(h.path, "byte skip", "cannot be combined with a SKIPLIST, which gives a "
                    "byte skip per file")
    if -1 in skips and L.encoding in ("ascii", "hex"):
        raise _fail(h.path, "data file", "SKIPLIST gives a byte skip of -1, which only raw and "
                    f"compressed data allow, not {L.encoding}")
    return skips, names


def _pattern(h: _Header, value: str, parts: list) -> PatternNames:
    if len(parts) not in (4, 5):
        raise _fail(h.path, "data file", f"is {value!r}, expected '<format> <min> <max> <step> "
                    "[<subdim>]'")
    try:
        lo, hi, step = int(parts[1]), int(parts[2]), int(parts[3])
    except ValueError:
        raise _fail(h.path, "data file", f"is {value!r}; min, max and step must be "
                    "integers") from None
    if step == 0 or (hi - lo) * step < 0:
        raise _fail(h.path, "data file", f"is {value!r}; the step must go from min to max")
    numbers = range(lo, hi + (1 if step > 0 else -1), step)
    return PatternNames(parts[0], numbers, lambda message: _fail(h.path, "data file", message),
                        lambda message: _unsupported(h.path, "data file", message))


def data_files(h: _Header, L: _Layout, allow_external: bool
               ) -> tuple[int, Iterator[tuple[str, int]]] | None:
    """(count, iterator of (path, byte skip)) of the detached data files; None when attached.

    Names are made and resolved as the iterator advances (lazily: a header naming a million
    files costs nothing until they are checked).
    """
    value = h.fields.get("data file")
    if value is None:
        if not h.ended_by_blank:
            raise _fail(h.path, "data file", "is missing and no data follow the header (a "
                        "detached header needs 'data file')")
        return None
    parts = value.split()
    skips = None
    if parts and parts[0] in ("LIST", "SKIPLIST"):
        if len(parts) > 2:
            raise _fail(h.path, "data file", f"is {value!r}, expected '{parts[0]} [subdim]'")
        sub = _subdim(h, parts[1], L.dim) if len(parts) == 2 else L.dim - 1
        names = h.list_lines
        if parts[0] == "SKIPLIST":
            skips, names = _skiplist(h, L)
        if not names:
            raise _fail(h.path, "data file", f"is {parts[0]} but no file names follow the header")
        if len(names) > MAX_DATA_FILES:
            raise _unsupported(h.path, "data file", f"names {len(names)} files; mitk reads at "
                               f"most {MAX_DATA_FILES}")
    elif parts and "%" in parts[0] and _PATTERN.fullmatch(parts[0]):
        names = _pattern(h, value, parts)
        sub = _subdim(h, parts[4], L.dim) if len(parts) == 5 else L.dim - 1
    else:
        if value == "-":
            raise _unsupported(h.path, "data file", "is '-' (standard input), which mitk cannot "
                               "read")
        return 1, iter([(_resolve(h, value, allow_external), L.byte_skip)])
    # teem's rule: files hold sub-dimensional pieces, or equal slabs of the slowest axis.
    pieces = math.prod(L.sizes[sub:]) if sub < L.dim else None
    if pieces is not None and pieces != len(names):
        raise _fail(h.path, "data file", f"names {len(names)} files, but {pieces} pieces of "
                    f"dimension {sub} make up the sizes {L.sizes}")
    if pieces is None and L.sizes[-1] % len(names):
        raise _fail(h.path, "data file", f"names {len(names)} files, which do not divide the "
                    f"{L.sizes[-1]} slices of the last axis")
    skips = skips or itertools.repeat(L.byte_skip)
    return len(names), ((_resolve(h, n, allow_external), s) for n, s in zip(names, skips))


def _skip_lines(f, count: int, where: str, start: int) -> int:
    """Offset just after ``count`` line ends from ``start``; CorruptFileError if there are fewer."""
    f.seek(start)
    pos, found = start, 0
    while found < count:
        chunk = f.read(1 << 20)
        if not chunk:
            raise CorruptFileError(f"{where}: NRRD field 'line skip' asks to skip {count} lines "
                                   f"but the file has only {found}")
        at = -1
        while found < count:
            at = chunk.find(b"\n", at + 1)
            if at < 0:
                break
            found += 1
        if found == count:
            return pos + at + 1
        pos += len(chunk)
    return pos


def _last_bytes_skip(f, pos: int, encoding: str, where: str, nbytes: int) -> int:
    """The byte skip that leaves the last ``nbytes`` of a compressed stream (byte skip -1).

    The stream's length is not declared: it is counted, but only so far.  A bzip2 stream of a
    few KB can hold gigabytes, which no header asked for.
    """
    limit = nbytes + max(nbytes, MAX_UNDECLARED_PREFIX)
    f.seek(pos)
    total = _streams.stream_length(f, encoding, where, limit=limit)
    if total > limit:
        raise CorruptFileError(
            f"{where}: NRRD field 'byte skip' is -1, but more than {limit - nbytes} bytes of the "
            f"{encoding} stream precede its last {nbytes}; mitk reads at most "
            f"max(data size, {MAX_UNDECLARED_PREFIX}) bytes before them")
    if total < nbytes:
        raise CorruptFileError(
            f"{where}: NRRD {encoding} stream holds {total} bytes, fewer than the {nbytes} its "
            "last bytes should supply (byte skip -1)")
    return total - nbytes


def plan(h: _Header, L: _Layout, allow_external: bool, header_file) -> list[Piece]:
    """Every data file's share of the pixels, located and size-checked (nothing allocated).

    ``header_file`` is the open header: attached data are checked (and later read) through it,
    never by opening the path again.
    """
    files = data_files(h, L, allow_external)
    count, sources = (1, iter([(h.path, L.byte_skip)])) if files is None else files
    per = L.nbytes // count
    values = per // L.file_dtype.itemsize
    pieces = []
    for src, skip in sources:
        if files is None:
            where, start = h.path, h.data_offset
            size = os.fstat(header_file.fileno()).st_size
            pieces.append(_piece(h, L, header_file, src, where, start, size, skip, per, values))
            continue
        where = f"{src} (data file of {h.path})"
        size = stat_data_file(src, h.path, "NRRD", "data file",
                              h.fields.get("data file", "")).st_size
        with open(src, "rb", buffering=0) as f:
            pieces.append(_piece(h, L, f, src, where, 0, size, skip, per, values))
    return pieces


def _piece(h: _Header, L: _Layout, f, src: str, where: str, pos: int, size: int, skip: int,
           per: int, count: int) -> Piece:
    """One file's piece; ``f`` is that file, open, for the checks that read it (line skips,
    counting a bzip2 stream or the prefix of byte skip -1)."""
    if L.line_skip:
        pos = _skip_lines(f, L.line_skip, where, pos)
    available = max(size - pos, 0)
    if L.encoding == "raw":
        if skip == -1:
            pos = size - per
            if pos < 0 or available < per:
                raise CorruptFileError(f"{where}: NRRD raw data is truncated: {per} bytes "
                                       f"needed at the end of the file, {available} present")
        else:
            if available < skip + per:
                raise CorruptFileError(
                    f"{where}: NRRD raw data is truncated: {skip + per} bytes needed from "
                    f"byte {pos} (byte skip {skip}, sizes {L.sizes}), {available} present")
            pos += skip
        return Piece(src, where, pos, per, what="NRRD raw data")
    if L.encoding in ("gzip", "bzip2"):
        declared = per + max(skip, 0)
        if L.encoding == "gzip":
            _streams.check_compressed_size(declared, available, "gzip", path=where)
        elif declared > _BZIP2_MAX_RATIO * max(available, 1):
            raise CorruptFileError(
                f"{where}: header declares {declared} bytes of pixel data but the bzip2 "
                f"stream has only {available} bytes; bzip2 cannot expand that much")
        elif declared > _BZIP2_COUNT_RATIO * max(available, 1):
            f.seek(pos)
            found = _streams.stream_length(f, "bzip2", where, limit=declared)
            if found < declared:
                raise CorruptFileError(
                    f"{where}: NRRD field 'sizes' {L.sizes} (byte skip {max(skip, 0)}) "
                    f"declares {declared} bytes of pixel data but the bzip2 stream holds "
                    f"only {found}")
        if skip == -1:
            skip = _last_bytes_skip(f, pos, L.encoding, where, per)
        return Piece(src, where, pos, per, encoding=L.encoding, skip=skip)
    pos += skip
    available = max(size - pos, 0)
    need = 2 * per if L.encoding == "hex" else 2 * count - 1
    if available < need:
        raise CorruptFileError(
            f"{where}: NRRD {L.encoding} data is truncated: {count} values need at least "
            f"{need} bytes from byte {pos}, {available} present")
    return Piece(src, where, pos, per, encoding=L.encoding, text=ASCII)
