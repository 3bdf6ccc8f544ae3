"""MetaImage (MetaIO): ``.mha`` (header and data in one file) and ``.mhd`` (detached data).

A MetaImage header is text, one ``Field = value`` line per field (MetaIO also accepts ``:`` as the
separator), and ends at the ``ElementDataFile`` line.  Field names are case-sensitive, as in MetaIO.
A field given twice is CorruptFileError, and so is a ``.mha`` whose ``ElementDataFile`` line has no
line end (its data would follow one): that is a truncated file.

Reading
    ``ObjectType = Image`` (the default when absent), ``NDims`` 1-4 (a 1-D file loads as a 2D
    image of shape ``(1, N)``; a 4th dimension is time: its ``ElementSpacing`` is the step duration
    and its ``Offset`` the start; 5 or more is UnsupportedFormatError), ``DimSize``,
    ``ElementType`` (every ``MET_`` type below and its ``_ARRAY`` variant),
    ``ElementNumberOfChannels`` (the trailing component axis), ``BinaryData`` (``False``: ASCII
    numbers, read as MetaIO does: each as a double, so ``1e+06`` is an integer, but an integer
    literal keeps all 64 bits; an integer out of the type's range is CorruptFileError, a float
    beyond ``MET_FLOAT``'s range is inf), ``BinaryDataByteOrderMSB`` /
    ``ElementByteOrderMSB``, ``CompressedData`` (a zlib stream, or gzip: MetaIO accepts both),
    bounded by ``CompressedDataSize`` when given and non-zero, otherwise by the end of the file.
    ``HeaderSize`` works as in MetaIO: a positive value is the byte offset of the data from the
    start of each data file (for ``LOCAL`` data, from the start of the ``.mha`` file itself), and
    -1 means the data are the last bytes of each data file (binary, uncompressed data only); one
    beyond the end of a data file is CorruptFileError.

    ``ElementDataFile`` is ``LOCAL`` (any case), one file name (relative to the header's directory;
    if it is missing and ``<name>.gz`` exists, that is read as compressed data, as MetaIO does),
    ``LIST [nD]`` followed by one file name per line (each file holds an n-dimensional block;
    n defaults to ``NDims - 1``), or a printf pattern ``name%03d.raw [min [max [step]]]`` naming one
    file per slice of the last axis (min defaults to 1, step to 1; a file name containing spaces
    is followed by all three numbers, as MetaIO requires; a width or precision above 255, the
    longest file name, is CorruptFileError).  A data path that is absolute or leaves
    the header's directory needs ``allow_external_data=True``.

    Geometry (MetaIO's is already LPS, as ITK writes it): ``ElementSpacing`` (else ``ElementSize``)
    gives the spacing; ``TransformMatrix`` (synonyms ``Rotation`` and ``Orientation``) lists the
    axis vectors in turn, i.e. the direction in column-major order, kept exactly as given (never
    orthonormalised); ``Offset`` (synonyms ``Position``, ``Origin``, ``ImagePosition``) is the
    origin.  When several synonyms are present the one MetaIO applies last wins (``TransformMatrix``
    over ``Rotation`` over ``Orientation``; ``ImagePosition`` over ``Origin`` over ``Offset`` over
    ``Position``).  A negative spacing is folded into the direction (the world positions of the
    voxels do not change), as ITK does.  A 4D ``TransformMatrix`` must not mix time with space.

    Element types: ``MET_CHAR``/``MET_ASCII_CHAR`` int8, ``MET_UCHAR`` uint8, ``MET_SHORT`` int16,
    ``MET_USHORT`` uint16, ``MET_INT`` int32, ``MET_UINT`` uint32, ``MET_LONG`` int32 and
    ``MET_ULONG`` uint32 (MetaIO defines them as 32-bit on every platform; ITK writes a 64-bit
    ``long`` as ``MET_LONG_LONG``), ``MET_LONG_LONG`` int64, ``MET_ULONG_LONG`` uint64,
    ``MET_FLOAT`` float32, ``MET_DOUBLE`` float64.

Properties (SPEC section 6.4)
    Header fields the image model holds (dimensions, type, encoding, data location, spacing,
    origin, direction and their synonyms) are not properties.  The other fields MetaIO itself
    defines (``Comment``, ``AnatomicalOrientation``, ``CenterOfRotation``, ``ElementMin``,
    ``ElementMax``, ``Modality``, ``ElementSize`` when ``ElementSpacing`` is also given, ...; see
    :data:`METAIO_FIELDS`) load as ``meta.<Field>`` strings and are written back only to MetaImage.
    Every other header line is a user field and loads as a plain property (a string), which is
    how ITK writes its metadata dictionary.  On save, plain properties become ``Key = value`` lines
    (lists are written space-separated); a plain key that is a MetaIO field name is written as that
    field and so loads back as ``meta.<Field>``.  These raise UnsupportedFormatError before anything
    is written: a key that is empty, contains ``=``, ``:`` or a line break, or starts or ends with a
    blank; a key naming a field mitk writes from the image; a value with a line break, or whose
    first character after any blanks is ``=`` or ``:`` (MetaIO skips those after the field name,
    so the value would read back without them); a numeric MetaIO field whose value MetaIO could
    not parse.  Leading and trailing blanks of values are not kept (MetaIO strips them).

Writing
    ``.mha`` puts the data after the header (``ElementDataFile = LOCAL``); ``.mhd`` writes
    ``<stem>.raw`` (``<stem>.zraw`` when compressed) beside the header.  ``ElementDataFile`` is
    always the last field.  ``compression=None``/``"raw"`` (default) writes raw data,
    ``compression="gzip"`` a zlib stream with ``CompressedData = True`` and ``CompressedDataSize``
    (``compression_level`` 1-9, default 1); ``"bzip2"`` is an ArgumentError (MetaIO has no bzip2).
    A zlib stream has no room for a block index (:mod:`mitk.io._blocks`), so a large one is
    described by a ``MitkDeflateBlocks = <block> <total> <compressed sizes...>`` line after
    ``CompressedDataSize``; MetaIO ignores a field it does not know, and our reader uses the line
    (to inflate the blocks on several threads) only when the stream confirms it.  It is never a
    property, and a property of that name is refused.  Data are written in native byte order,
    which the header declares.  bool is written as ``MET_UCHAR`` 0/1; float16 and complex cannot
    be stored (UnsupportedFormatError).  A 2D image whose geometry leaves the xy plane cannot be
    stored either: MetaIO's 2D geometry is 2D.

    Each file is replaced atomically (:mod:`mitk.io._atomic`).  A ``.mhd`` writes its data to
    ``<stem>.raw`` (``.zraw`` compressed), or, when a file of that name exists (the old pair's
    data, or another header's), to the first free ``<stem>.1.raw``, ``<stem>.2.raw``, ...  Data
    first, header last, then the data file the old header named (if it is one of these names) is
    deleted: a kill at any point leaves the old pair or the new one readable, and no other
    header's data file is ever overwritten.
"""

from __future__ import annotations

import errno
import math
import os
import re
import stat
from typing import Any

import numpy as np

from ..errors import ArgumentError, CorruptFileError, UnsupportedFormatError
from .._geometry_rules import is_singular
from . import _blocks, _streams
from ._atomic import (atomic_write, discard, fresh_data_name, remove_replaced,
                      replaced_data_file)
from ._ascii import short_tokens
from ._paths import BAD_PATH_ERRNOS, MAX_NAME_WIDTH, excess_pattern_width, resolve_data_file
from ._info import Allocator, ImageInfo

__all__ = ["NAME", "EXTENSIONS", "READ_OPTIONS", "WRITE_OPTIONS", "METAIO_FIELDS", "read", "write"]

NAME = "MetaImage"
EXTENSIONS = (".mha", ".mhd")
READ_OPTIONS = frozenset({"allow_external_data"})
WRITE_OPTIONS = frozenset({"compression", "compression_level"})

_MAX_HEADER_BYTES = 1 << 20
_MAX_LINE = 1 << 16
#: Upper bound on the data files one header may name (LIST or pattern).
_MAX_FILES = 1 << 20
#: A whole data file name holds at most PATH_MAX bytes (a pattern's number, one component, at
#: most MAX_NAME_WIDTH); longer names are refused before they are all built.
_MAX_NAME_BYTES = 4096
#: Upper bound on the bytes of all the names a pattern expands to (64 MiB: a million 64-byte
#: names); a short header line must not make gigabytes of names.
_MAX_PATTERN_BYTES = 1 << 26
#: What MetaIO skips after a field name: the separators and C's isspace() (MET_SkipToVal).
#: A value starting with '=' or ':' therefore cannot be written (see _header_properties).
_SKIP_TO_VALUE = "=: \t\n\r\x0b\x0c"
_BLANKS = _SKIP_TO_VALUE[2:]

_TYPES = {
    "MET_CHAR": "i1", "MET_ASCII_CHAR": "i1", "MET_UCHAR": "u1",
    "MET_SHORT": "i2", "MET_USHORT": "u2", "MET_INT": "i4", "MET_UINT": "u4",
    # MetaIO's metaTypes.h: MET_LONG_TYPE is int32_t and MET_ULONG_TYPE uint32_t.
    "MET_LONG": "i4", "MET_ULONG": "u4",
    "MET_LONG_LONG": "i8", "MET_ULONG_LONG": "u8", "MET_FLOAT": "f4", "MET_DOUBLE": "f8",
}
_WRITE_TYPES = {
    np.dtype("int8"): "MET_CHAR", np.dtype("uint8"): "MET_UCHAR",
    np.dtype("int16"): "MET_SHORT", np.dtype("uint16"): "MET_USHORT",
    np.dtype("int32"): "MET_INT", np.dtype("uint32"): "MET_UINT",
    np.dtype("int64"): "MET_LONG_LONG", np.dtype("uint64"): "MET_ULONG_LONG",
    np.dtype("float32"): "MET_FLOAT", np.dtype("float64"): "MET_DOUBLE",
}

#: The block index of a large zlib stream (block size, total, and each block's compressed size,
#: zero-padded so the writer can reserve its line): lets our reader inflate the blocks in
#: parallel.  Other MetaIO readers keep it as an unknown field; ours never trusts it further than
#: the stream confirms it (see :mod:`mitk.io._blocks`).
INDEX_FIELD = "MitkDeflateBlocks"
_INDEX_DIGITS = 10
#: Fields the image model holds: never properties; the writer produces them from the image.
_STRUCTURAL = frozenset({
    "ObjectType", "NDims", "DimSize", "ElementType", "ElementNumberOfChannels", "BinaryData",
    "BinaryDataByteOrderMSB", "ElementByteOrderMSB", "CompressedData", "CompressedDataSize",
    "HeaderSize", "ElementDataFile", "TransformMatrix", "Rotation", "Orientation", "Offset",
    "Position", "Origin", "ImagePosition", "ElementSpacing", INDEX_FIELD,
})
#: The other fields MetaIO's MetaObject and MetaImage define; they load as ``meta.<Field>``.
METAIO_FIELDS = frozenset({
    "Comment", "AcquisitionDate", "ObjectSubType", "TransformType", "Name", "ID", "ParentID",
    "Color", "CenterOfRotation", "DistanceUnits", "AnatomicalOrientation", "Modality",
    "SequenceID", "ElementMin", "ElementMax", "ElementSize", "ElementNBits",
    "ElementToIntensityFunctionSlope", "ElementToIntensityFunctionOffset",
})
# MetaIO parses these as numbers ("n": NDims of them); text it cannot parse breaks its reader.
_NUMERIC_FIELDS = {
    "ID": 1, "ParentID": 1, "Color": 4, "CenterOfRotation": "n", "SequenceID": "n",
    "ElementMin": 1, "ElementMax": 1, "ElementSize": "n", "ElementNBits": 1,
    "ElementToIntensityFunctionSlope": 1, "ElementToIntensityFunctionOffset": 1,
}


# -- reading --------------------------------------------------------------------------------------


class _Header:
    """The fields of one MetaImage header, in file order, and the byte where the header ends."""

    def __init__(self, path: str, fields: dict, end: int) -> None:
        self.path = path
        self.fields = fields
        self.end = end

    def fail(self, field: str, message: str) -> CorruptFileError:
        return CorruptFileError(f"{self.path}: MetaImage field '{field}' {message}")

    def _tokens(self, field: str, count: int, kind: str, exact: bool) -> list[str]:
        tokens = self.fields[field].split()
        if len(tokens) < count or (exact and len(tokens) > count):
            raise self.fail(field, f"has {len(tokens)} values ({self.fields[field][:80]!r}); "
                                   f"expected {count} {kind}")
        return tokens[:count]

    def ints(self, field: str, count: int, exact: bool = False) -> list[int]:
        values = []
        for token in self._tokens(field, count, "integers", exact):
            value = _to_int(token)
            if value is None:
                raise self.fail(field, f"holds {token!r}; expected {count} integers")
            values.append(value)
        return values

    def integer(self, field: str, default: int | None = None) -> int:
        if field not in self.fields and default is not None:
            return default
        return self.ints(field, 1)[0]

    def floats(self, field: str, count: int) -> list[float]:
        try:
            return [float(t) for t in self._tokens(field, count, "numbers", False)]
        except ValueError:
            raise self.fail(field, f"is {self.fields[field][:80]!r}; expected {count} "
                                   "numbers") from None

    def flag(self, field: str, default: bool) -> bool:
        if field not in self.fields:
            return default
        # MetaIO looks at the first character only: T, t or 1 is true.
        first = self.fields[field][:1]
        if first in ("T", "t", "1"):
            return True
        if first in ("F", "f", "0"):
            return False
        raise self.fail(field, f"is {self.fields[field][:40]!r}; expected True or False")


def _to_int(token: str) -> int | None:
    try:
        return int(token)
    except ValueError:
        pass
    try:
        value = float(token)  # MetaIO reads every number as a double ("512.0" is 512)
    except ValueError:
        return None
    return int(value) if math.isfinite(value) and value.is_integer() else None


def _read_header(f, path: str) -> _Header:
    fields: dict[str, str] = {}
    pos = 0
    while True:
        raw = f.readline(_MAX_LINE + 1)
        if not raw:
            raise CorruptFileError(
                f"{path}: MetaImage header ends at byte {pos} without the field 'ElementDataFile' "
                "(expected e.g. 'ElementDataFile = LOCAL' as the last header line)")
        start = pos
        pos += len(raw)
        if len(raw) > _MAX_LINE:
            raise CorruptFileError(f"{path}: byte {start}: MetaImage header line is longer than "
                                   f"{_MAX_LINE} bytes (not a MetaImage header?)")
        if pos > _MAX_HEADER_BYTES:
            raise CorruptFileError(f"{path}: MetaImage header is longer than "
                                   f"{_MAX_HEADER_BYTES} bytes without an ElementDataFile field")
        if (not raw.endswith(b"\n") and path.lower().endswith(".mha")
                and re.match(rb"\s*ElementDataFile\s*[=:]", raw)):
            # A .mha header is followed by its data, so its last line has a line end.
            raise CorruptFileError(f"{path}: MetaImage header is truncated at byte {pos} (the "
                                   "field 'ElementDataFile' has no line end)")
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise CorruptFileError(f"{path}: byte {start}: MetaImage header line is not text "
                                   "(expected 'Field = value')") from None
        if not line:
            continue
        # The field name ends at the first '=' or ':' (MetaIO accepts both separators).
        cuts = [i for i in (line.find("="), line.find(":")) if i >= 0]
        cut = min(cuts) if cuts else -1
        if cut <= 0:
            raise CorruptFileError(f"{path}: byte {start}: expected a MetaImage header line "
                                   f"'Field = value', found {line[:60]!r}")
        key = line[:cut].strip()
        # As MET_SkipToVal: every '=', ':' and blank after the key; the writer refuses values
        # that start with a separator (test_values_starting_with_a_separator_are_refused).
        value = line[cut + 1:].lstrip(_SKIP_TO_VALUE).rstrip()
        if key in fields:
            raise CorruptFileError(f"{path}: MetaImage field '{key}' appears twice (second at "
                                   f"byte {start})")
        fields[key] = value
        if key == "ElementDataFile":
            return _Header(path, fields, pos)


class _Layout:
    """What the header says about the pixels and the geometry, validated."""

    ndims: int
    dims: list          # MetaIO order (x, y, z, t)
    dtype: np.dtype     # file byte order
    channels: int
    binary: bool
    compressed: bool
    header_size: int
    spacing: tuple
    origin: tuple
    direction: np.ndarray
    time_origin: float
    time_spacing: float

    @property
    def item_bytes(self) -> int:
        return self.dtype.itemsize * self.channels


def _parse(h: _Header) -> _Layout:
    L = _Layout()
    path, fields = h.path, h.fields
    object_type = fields.get("ObjectType", "Image")
    if object_type != "Image":
        raise UnsupportedFormatError(f"{path}: MetaImage field 'ObjectType' is {object_type!r}; "
                                     "only 'Image' objects hold an image")
    for required in ("NDims", "DimSize", "ElementType"):
        if required not in fields:
            raise h.fail(required, "is missing (NDims, DimSize and ElementType are required)")
    ndims = h.integer("NDims")
    if ndims > 4:
        raise UnsupportedFormatError(f"{path}: MetaImage field 'NDims' is {ndims}; mitk images "
                                     "have 2 to 4 dimensions (1-D files load as 2D)")
    if ndims < 1:
        raise h.fail("NDims", f"is {ndims}; expected 1 to 4")
    L.ndims = ndims
    L.dims = h.ints("DimSize", ndims, exact=True)
    if any(d < 1 for d in L.dims):
        raise h.fail("DimSize", f"is {L.dims}; every size must be >= 1")
    etype = fields["ElementType"]
    base = etype.upper()
    base = base[: -len("_ARRAY")] if base.endswith("_ARRAY") else base
    if base not in _TYPES:
        raise UnsupportedFormatError(
            f"{path}: MetaImage field 'ElementType' is {etype!r}, which mitk cannot read; "
            f"expected one of {', '.join(_TYPES)} (or their _ARRAY forms)")
    L.channels = h.integer("ElementNumberOfChannels", default=1)
    if L.channels < 1:
        raise h.fail("ElementNumberOfChannels", f"is {L.channels}; expected >= 1")
    # MetaIO reads ElementByteOrderMSB first and lets BinaryDataByteOrderMSB override it.
    msb = h.flag("BinaryDataByteOrderMSB", h.flag("ElementByteOrderMSB", False))
    L.dtype = np.dtype(_TYPES[base]).newbyteorder(">" if msb else "<")
    L.binary = h.flag("BinaryData", True)
    L.compressed = L.binary and h.flag("CompressedData", False)
    L.header_size = h.integer("HeaderSize", default=0)
    if L.header_size < -1:
        raise h.fail("HeaderSize", f"is {L.header_size}; expected >= 0, or -1 for data at the "
                                   "end of the file")
    if L.header_size == -1 and (L.compressed or not L.binary):
        raise h.fail("HeaderSize", "is -1 (data at the end of the file), which only works for "
                                   "binary uncompressed data")
    total = L.item_bytes
    for d in L.dims:
        total *= d
    if total > 1 << 62:
        raise h.fail("DimSize", f"is {L.dims} with {L.channels} channel(s) of "
                                f"{L.dtype.itemsize} bytes: {total} bytes cannot be an image")
    _parse_geometry(h, L)
    return L


def _first(fields: dict, names: tuple) -> str | None:
    return next((n for n in names if n in fields), None)


def _parse_geometry(h: _Header, L: _Layout) -> None:
    ndims, fields = L.ndims, h.fields
    nsp = min(ndims, 3)
    key = _first(fields, ("ElementSpacing", "ElementSize"))
    spacing = h.floats(key, ndims) if key else [1.0] * ndims
    okey = _first(fields, ("ImagePosition", "Origin", "Offset", "Position"))
    origin = h.floats(okey, ndims) if okey else [0.0] * ndims
    dkey = _first(fields, ("TransformMatrix", "Rotation", "Orientation")) or "TransformMatrix"
    if dkey in fields:
        # The values list the axis vectors in turn, so the rows read are the direction's columns.
        matrix = np.array(h.floats(dkey, ndims * ndims)).reshape(ndims, ndims).T
    else:
        matrix = np.eye(ndims)
    if not np.all(np.isfinite(matrix)):
        raise h.fail(dkey, "holds a non-finite value")
    for j in range(nsp):
        if not math.isfinite(spacing[j]) or spacing[j] == 0:
            raise h.fail(key or "ElementSpacing", f"is {spacing}; spatial spacings must be "
                                                  "finite and non-zero")
        if spacing[j] < 0:
            # ITK folds a negative spacing into the direction: the voxels stay where they are.
            spacing[j] = -spacing[j]
            matrix[:, j] = -matrix[:, j]
    if not all(math.isfinite(v) for v in origin):
        raise h.fail(okey or "Offset", f"is {origin}; expected finite numbers")
    if ndims == 4:
        mixed = np.any(matrix[3, :3] != 0) or np.any(matrix[:3, 3] != 0)
        if mixed:
            raise UnsupportedFormatError(
                f"{h.path}: MetaImage field '{dkey}' mixes the time axis with space; mitk keeps "
                "a spatial direction and a separate time axis")
        if matrix[3, 3] == 0:
            raise h.fail(dkey, "is singular (the time axis vector is zero)")
    direction = np.eye(3)
    direction[:nsp, :nsp] = matrix[:nsp, :nsp]
    # The criterion Image itself applies, computed on rescaled columns: a huge but independent
    # direction (1e200) is neither an overflow warning nor "singular" (test_huge_direction).
    if is_singular(direction):
        raise h.fail(dkey, f"is singular ({fields.get(dkey, 'identity')[:120]!r}); expected "
                           "independent axis vectors")
    L.direction = direction
    L.spacing = tuple(spacing[:nsp]) + (1.0,) * (3 - nsp)
    L.origin = tuple(origin[:nsp]) + (0.0,) * (3 - nsp)
    L.time_origin, L.time_spacing = 0.0, 1.0
    if ndims == 4:
        L.time_origin = float(origin[3])
        step = abs(spacing[3])
        L.time_spacing = step if math.isfinite(step) and step != 0 else 1.0


def _resolve(h: _Header, name: str, allow_external: bool) -> str:
    if "\0" in name:  # no OS call can take it (os.stat raises ValueError)
        raise h.fail("ElementDataFile", f"names {name[:80]!r}, which holds a NUL byte")
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


def _pattern_names(h: _Header, value: str, slices: int) -> list[str]:
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
    if slices > _MAX_FILES:
        raise h.fail("ElementDataFile", f"names {slices} files; at most {_MAX_FILES} are read")
    wide = excess_pattern_width(pattern)
    if wide is not None:
        raise h.fail("ElementDataFile", f"pattern pads numbers to {wide} characters; a file "
                                        f"name holds at most {MAX_NAME_WIDTH}")
    numbers = range(first, first + slices * step, step)
    # The longest name has the number of largest magnitude, at one end of the range: check it
    # before building them all.
    longest = max(len(_pattern_name(h, value, pattern, i).encode("utf-8"))
                  for i in (numbers[0], numbers[-1]))
    if longest > _MAX_NAME_BYTES:
        raise h.fail("ElementDataFile", f"is {value[:80]!r}, whose file names have up to "
                                        f"{longest} bytes; a path holds at most "
                                        f"{_MAX_NAME_BYTES}")
    if longest * slices > _MAX_PATTERN_BYTES:
        raise h.fail("ElementDataFile", f"is {value[:80]!r}, naming {slices} files of up to "
                                        f"{longest} bytes; mitk reads patterns of at most "
                                        f"{_MAX_PATTERN_BYTES} bytes of names")
    return [_pattern_name(h, value, pattern, i) for i in numbers]


def _pattern_name(h: _Header, value: str, pattern: str, number: int) -> str:
    try:
        # Exactly one integer conversion, as MetaIO's sprintf(pattern, i) needs.
        return pattern % number
    except (TypeError, ValueError, OverflowError):
        raise h.fail("ElementDataFile", f"is {value[:80]!r}; expected a printf pattern with one "
                                        "integer conversion such as %03d") from None


def _data_files(h: _Header, L: _Layout, f, file_size: int,
                allow_external: bool) -> list[tuple[str | None, int]]:
    """Where the pixels are: ``(file, or None for LOCAL; voxels in it)``, in order."""
    value = h.fields["ElementDataFile"]
    dims = L.dims
    if value.lower() == "local":
        return [(None, math.prod(dims))]
    if not value:
        raise h.fail("ElementDataFile", "is empty; expected LOCAL or a data file name")
    if value.startswith("LIST"):
        words = value.split()
        match = re.match(r"[+-]?\d+", words[1]) if len(words) > 1 else None
        block = int(match.group()) if match else 0
        if not 0 < block <= L.ndims:
            block = L.ndims - 1
        count = math.prod(dims[block:])
        if count > _MAX_FILES:
            raise h.fail("ElementDataFile", f"is LIST of {count} files; at most {_MAX_FILES} "
                                            "are read")
        names = _list_names(h, f, count, file_size)
        per_file = math.prod(dims[:block])
        return [(_resolve(h, n, allow_external), per_file) for n in names]
    if "%" in value:
        names = _pattern_names(h, value, dims[-1])
        per_file = math.prod(dims[:-1])
        return [(_resolve(h, n, allow_external), per_file) for n in names]
    full = _resolve(h, value, allow_external)
    if not os.path.exists(full) and os.path.isfile(full + ".gz"):
        # MetaIO's fallback: a gzipped data file beside the named one is compressed binary data.
        if L.header_size == -1:
            raise h.fail("HeaderSize", "is -1, which does not work for the compressed data in "
                                       f"{value + '.gz'!r}")
        full = full + ".gz"
        L.binary = L.compressed = True
    return [(full, math.prod(dims))]


class _Window:
    """The next ``size`` bytes of a file, so that bytes after a compressed stream are not read.

    ``fileno``, ``tell`` and ``limit`` (the file offset where the window ends) let the block-
    parallel inflater read the window's stream with ``os.pread``.
    """

    def __init__(self, f, size: int) -> None:
        self._f = f
        self.limit = f.tell() + size
        self._left = size

    def read(self, n: int = -1) -> bytes:
        n = self._left if n is None or n < 0 else min(n, self._left)
        data = self._f.read(n) if n else b""
        self._left -= len(data)
        return data

    def fileno(self) -> int:
        return self._f.fileno()

    def tell(self) -> int:
        return self._f.tell()

    def seek(self, pos: int) -> int:
        self._left = max(self.limit - pos, 0)
        return self._f.seek(pos)


class _Piece:
    """One data file's share of the pixels, located and size-checked before allocation."""

    def __init__(self, src: str, label: str, start: int, available: int, nbytes: int) -> None:
        self.src, self.label = src, label  # label: the file as error messages name it
        self.start, self.available, self.nbytes = start, available, nbytes


def _plan(h: _Header, L: _Layout, files: list, file_size: int) -> list[_Piece]:
    pieces = []
    declared = h.integer("CompressedDataSize", default=0) if L.compressed else 0
    if declared < 0:
        raise h.fail("CompressedDataSize", f"is {declared}; expected a byte count >= 0")
    for src, voxels in files:
        nbytes = voxels * L.item_bytes
        if src is None:
            size, start = file_size, h.end
        else:
            try:
                st = os.stat(src)
            except FileNotFoundError:
                raise FileNotFoundError(
                    errno.ENOENT, f"MetaImage data file named by {h.path} (ElementDataFile = "
                    f"{h.fields['ElementDataFile']!r}) does not exist", src) from None
            except OSError as exc:
                if exc.errno not in BAD_PATH_ERRNOS:
                    raise  # a real I/O or permission problem: the OSError as it is
                raise h.fail("ElementDataFile", f"names {src[:200]!r}, which cannot be a data "
                                                f"file ({exc.strerror})") from None
            if stat.S_ISDIR(st.st_mode):
                raise h.fail("ElementDataFile", f"names {src!r}, which is a directory")
            if not stat.S_ISREG(st.st_mode):  # a FIFO or device could block or never end
                raise h.fail("ElementDataFile", f"names {src!r}, which is not a regular file")
            size = st.st_size
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
        if L.compressed:
            # Several files each hold a whole stream; MetaIO's single size cannot bound them.
            if declared and len(files) == 1:
                if declared > available:
                    raise CorruptFileError(
                        f"{where}: MetaImage compressed data is truncated: CompressedDataSize "
                        f"declares {declared} bytes from byte {start}, {available} are present")
                available = declared
            _streams.check_compressed_size(nbytes, available, "zlib", path=where)
        elif not L.binary:
            values = voxels * L.channels
            if values > (available + 1) // 2:
                raise CorruptFileError(
                    f"{where}: MetaImage ASCII data is truncated: {values} values need at least "
                    f"{2 * values - 1} bytes from byte {start}, {available} are present")
        else:
            if L.header_size == -1:
                start = size - nbytes
            if available < nbytes or start < 0:
                raise CorruptFileError(
                    f"{where}: MetaImage pixel data is truncated: {nbytes} bytes needed from byte "
                    f"{max(start, 0)}, {min(available, size)} present (DimSize {L.dims}, "
                    f"{L.channels} channel(s) of {L.dtype.itemsize} bytes)")
        pieces.append(_Piece(src or h.path, where, start, available, nbytes))
    return pieces


def _parse_numbers(tokens: list, dtype: np.dtype, where: str, index: int) -> np.ndarray:
    """The ASCII ``tokens`` (bytes) as an array of ``dtype``, or CorruptFileError.

    MetaIO reads every value as a double, so "1e+06" and "3.0" are integers too; an integer
    literal keeps all 64 bits (a double holds only 53).  A float value beyond the type's range
    becomes inf, as MetaIO's double-to-float conversion makes it.
    """
    try:
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
    except (ValueError, OverflowError):
        raise CorruptFileError(f"{where}: MetaImage ASCII data: a value among numbers {index} to "
                               f"{index + len(tokens) - 1} is not a {dtype}") from None


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


def _read_ascii(f, limit: int, out: np.ndarray, where: str) -> None:
    count, done = out.size, 0
    source = _Window(f, limit)
    # A token cut by the end of a chunk, in pieces: joined once it ends, so a long token costs
    # time linear in its length (test_ascii_long_tokens).
    partial: list[bytes] = []
    while done < count:
        chunk = source.read(_streams.CHUNK)
        tokens = chunk.split()
        if partial:
            if not chunk or chunk[:1].isspace():
                tokens.insert(0, b"".join(partial))
            elif len(tokens) == 1 and not chunk[-1:].isspace():
                partial.append(chunk)  # the whole chunk continues the token
                continue
            else:
                tokens[0] = b"".join(partial) + tokens[0]
            partial = []
        if chunk and tokens and not chunk[-1:].isspace():
            partial = [tokens.pop()]  # may continue in the next chunk
        take = tokens[: count - done]
        if take:
            out[done:done + len(take)] = _parse_numbers(take, out.dtype, where, done)
            done += len(take)
        if not chunk:
            break
    if done < count:
        raise CorruptFileError(f"{where}: MetaImage ASCII data is truncated: {count} values "
                               f"expected, {done} found")


def _block_index(h: _Header, nbytes: int) -> _blocks.BlockIndex | None:
    """The ``MitkDeflateBlocks`` index if it is well formed for ``nbytes`` of data, else None.

    Only a hint: a malformed one is ignored (the stream is then read in one pass), because the
    file is valid MetaImage without it.
    """
    tokens = h.fields.get(INDEX_FIELD, "").split()
    # ASCII digits only: str.isdigit() also accepts '²', which int() refuses.
    if (len(tokens) < 3 or len(tokens) > 1 << 20
            or not all(t.isascii() and t.isdigit() for t in tokens)):
        return None
    numbers = [int(t) for t in tokens]
    index = _blocks.BlockIndex(numbers[0], numbers[1], tuple(numbers[2:]))
    return index if index.consistent() and index.total == nbytes else None


def _fill(pieces: list[_Piece], L: _Layout, out: np.ndarray, h: _Header) -> None:
    flat = memoryview(out).cast("B")
    values = out.reshape(-1)
    offset = 0
    for p in pieces:
        piece = flat[offset:offset + p.nbytes]
        with open(p.src, "rb", buffering=0) as f:
            f.seek(p.start)
            if L.compressed:
                # MetaIO inflates zlib and gzip streams alike; name the right one in errors.
                codec = "gzip" if f.read(2) == b"\x1f\x8b" else "zlib"
                f.seek(p.start)
                # The index describes the one stream of a single data file.
                index = _block_index(h, p.nbytes) if len(pieces) == 1 else None
                _streams.decompress_into(_Window(f, p.available), piece, codec, path=p.label,
                                         index=index)
            elif not L.binary:
                first = offset // out.itemsize
                _read_ascii(f, p.available, values[first:first + p.nbytes // out.itemsize],
                            p.label)
            else:
                _streams.read_exact_into(f, piece, path=p.label, what="MetaImage pixel data")
        offset += p.nbytes


def _properties(h: _Header) -> dict:
    props: dict = {}
    for key, value in h.fields.items():
        if key in _STRUCTURAL:
            continue
        if key == "ElementSize" and "ElementSpacing" not in h.fields:
            continue  # it gave the spacing
        props[f"meta.{key}" if key in METAIO_FIELDS else key] = value
    return props


def read(path: str, allocate: Allocator, *, allow_external_data: bool = False,
         **unknown: Any) -> ImageInfo:
    """Read a ``.mha`` or ``.mhd`` file.

    Parameters
    ----------
    path : str
        The header file (``.mha`` or ``.mhd``).
    allocate : callable
        ``allocate(dtype, shape)`` returning the writable C-contiguous pixel buffer (see
        :mod:`mitk.io._info`); called once, after the whole header and the data sizes are checked.
    allow_external_data : bool
        Read data files that are absolute or outside the header's directory.

    Returns
    -------
    ImageInfo
        LPS geometry, the native dtype and the ``meta.*`` / plain properties.

    Raises
    ------
    CorruptFileError
        A malformed header (garbage, duplicated or invalid fields, singular or non-finite
        geometry), truncated or oversized data, or an escaping data path.
    UnsupportedFormatError
        More than 4 dimensions, an element type mitk cannot hold, a non-image object, or a 4D
        direction that mixes time with space.
    FileNotFoundError
        A detached data file is missing (the message names it and the header).

    Notes
    -----
    Raw data are read with one ``readinto`` per data file straight into the buffer; compressed
    data are inflated into it in chunks.  Both release the GIL inside the OS and zlib calls.
    """
    if unknown:
        raise TypeError(f"unknown MetaImage read option(s): {', '.join(sorted(unknown))}; "
                        f"accepted: {', '.join(sorted(READ_OPTIONS))}")
    if not isinstance(allow_external_data, bool):
        raise TypeError("allow_external_data must be a bool, not "
                        f"{type(allow_external_data).__name__}")
    with open(path, "rb") as f:
        file_size = os.fstat(f.fileno()).st_size
        h = _read_header(f, path)
        L = _parse(h)
        files = _data_files(h, L, f, file_size, allow_external_data)
    pieces = _plan(h, L, files, file_size)
    shape = tuple(reversed(L.dims)) if L.ndims > 1 else (1, L.dims[0])
    full_shape = shape + ((L.channels,) if L.channels > 1 else ())
    out = allocate(L.dtype.newbyteorder("="), full_shape)
    _fill(pieces, L, out, h)
    if L.binary and not L.dtype.isnative:
        out.byteswap(inplace=True)
    return ImageInfo(dtype=out.dtype, shape=shape, channels=L.channels, spacing=L.spacing,
                     origin=L.origin, direction=L.direction, time_origin=L.time_origin,
                     time_spacing=L.time_spacing, properties=_properties(h))


# -- writing --------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return str(value)


def _numbers_ok(text: str, count: int) -> bool:
    tokens = text.split()
    if len(tokens) < count:
        return False
    try:
        for t in tokens[:count]:
            float(t)
    except ValueError:
        return False
    return True


def _header_properties(path: str, properties: dict, ndims: int) -> list[str]:
    lines: list[str] = []
    seen: dict[str, str] = {}
    for key, value in properties.items():
        if not isinstance(key, str):
            raise UnsupportedFormatError(f"{path}: property key {key!r} is not a str")
        if key.startswith(("nrrd.", "nifti.")):
            continue  # another format's header field
        field = key[5:] if key.startswith("meta.") else key
        if field in _STRUCTURAL:
            if key.startswith("meta."):
                continue  # written from the image itself
            raise UnsupportedFormatError(
                f"{path}: property {key!r} would be written as the MetaImage field {field!r}, "
                "which mitk writes from the image itself; rename the property")
        if (not field or any(c in field for c in "=:\n\r") or field != field.strip()
                or not field.isprintable()):
            raise UnsupportedFormatError(
                f"{path}: property key {key!r} cannot be a MetaImage header field (it is empty, "
                "contains '=', ':' or a line break, or starts or ends with a blank)")
        text = _text(value)
        if "\n" in text or "\r" in text:
            raise UnsupportedFormatError(f"{path}: the value of property {key!r} contains a "
                                         "line break, which a MetaImage header line cannot hold")
        if text.lstrip(_BLANKS)[:1] in ("=", ":"):
            # MetaIO skips every separator after the field name (MET_SkipToVal), so the value
            # would read back without them, here and in ITK.
            raise UnsupportedFormatError(
                f"{path}: the value of property {key!r} starts with {text.lstrip(_BLANKS)[0]!r}, "
                "which MetaIO reads as part of the separator after the field name; "
                "change the value")
        want = _NUMERIC_FIELDS.get(field)
        if want is not None:
            count = ndims if want == "n" else want
            if not _numbers_ok(text, count):
                raise UnsupportedFormatError(
                    f"{path}: property {key!r} is {text[:60]!r}, but MetaIO reads the field "
                    f"{field!r} as {count} number(s) for this {ndims}-D image; fix or remove it")
        if field in seen:
            raise UnsupportedFormatError(f"{path}: properties {seen[field]!r} and {key!r} would "
                                         f"both write the MetaImage field {field!r}")
        seen[field] = key
        line = f"{field} = {text}"
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:
            raise UnsupportedFormatError(f"{path}: property {key!r} is not valid UTF-8 "
                                         "text") from None
        lines.append(line)
    return lines


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


def _data_file_family(path: str) -> re.Pattern:
    stem = os.path.basename(path)[: -len(".mhd")]
    return re.compile(re.escape(stem) + r"(\.[0-9]+)?\.z?raw")


def _data_file_name(path: str, codec: str | None) -> tuple[str, str]:
    """The data file of a ``.mhd``: its name in the header and its path (a free name)."""
    stem = os.path.basename(path)[: -len(".mhd")]
    name = fresh_data_name(os.path.dirname(os.path.abspath(path)), stem,
                           ".zraw" if codec else ".raw")
    if "%" in name or "\n" in name or "\r" in name:
        raise UnsupportedFormatError(
            f"{path}: the data file name {name!r} cannot be written in a MetaImage header "
            "(MetaIO reads a name with '%' as a file pattern); choose another name or save "
            "as .mha")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsupportedFormatError(f"{path}: the data file name {name!r} is not valid UTF-8 "
                                     "text; choose another name or save as .mha") from None
    written = name
    if name.startswith(("LIST", "=", ":")) or name[:1].isspace():
        # Not a LIST, and no blank or separator for the reader to skip (MET_SkipToVal).
        written = "./" + name
    return written, os.path.join(os.path.dirname(path), name)


def _vector(values) -> str:
    return " ".join(repr(float(v)) for v in values)


def write(path: str, array: np.ndarray, info: ImageInfo, *, compression: str | None = None,
          compression_level: int | None = None, **unknown: Any) -> None:
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
    if unknown:
        raise TypeError(f"unknown MetaImage write option(s): {', '.join(sorted(unknown))}; "
                        f"accepted: {', '.join(sorted(WRITE_OPTIONS))}")
    if compression is not None and not isinstance(compression, str):
        raise TypeError(f"compression must be a str or None, not {type(compression).__name__}")
    if compression not in (None, "raw", "gzip"):
        raise ArgumentError(f"compression {compression!r} is not one MetaImage writes; use None "
                            "or 'raw' (uncompressed) or 'gzip' (a zlib stream)")
    codec = "zlib" if compression == "gzip" else None
    level = _streams.validate_level(compression_level, codec)
    element_type = _pixel_type(path, np.dtype(info.dtype))
    ndim = info.ndim
    if ndim not in (2, 3, 4):
        raise UnsupportedFormatError(f"{path}: MetaImage images here have 2 to 4 dimensions, "
                                     f"not {ndim}")
    direction = np.asarray(info.direction, dtype=np.float64)
    origin = [float(v) for v in info.origin]
    if ndim == 2:
        # hypot, not norm: a huge axis vector (1e200, which the reader accepts) must not
        # overflow (test_huge_direction).
        off_plane = [abs(direction[2, j]) > 1e-9 * np.hypot.reduce(direction[:, j])
                     for j in (0, 1)]
        if any(off_plane) or abs(origin[2]) > 1e-9 * max(1.0, abs(origin[0]), abs(origin[1])):
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
        data_name, data_path = _data_file_name(path, codec)
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
    pixels = np.ascontiguousarray(array)
    if pixels.dtype == np.bool_:
        pixels = pixels.view(np.uint8)
    data = memoryview(pixels).cast("B")

    # A large zlib stream is deflated in blocks; their index goes in the header, after the size.
    indexes: list[_blocks.BlockIndex] = []
    if detached:
        old_data = replaced_data_file(path, _DATA_FILE_LINE, _data_file_family(path))
        with atomic_write(data_path) as f:
            n = _write_data(f, data, codec, level, indexes.append)
        if codec:
            lines.insert(size_line, f"CompressedDataSize = {n}")
            lines[size_line + 1:size_line + 1] = [_index_line(i) for i in indexes]
        lines.append(f"ElementDataFile = {data_name}")
        try:
            with atomic_write(path) as f:
                f.write(("\n".join(lines) + "\n").encode("utf-8"))
        except BaseException:
            discard(data_path)  # the new data file is unused: the old pair stays
            raise
        remove_replaced(old_data, data_path)
        return
    lines.append("ElementDataFile = LOCAL")
    if not codec:
        with atomic_write(path) as f:
            f.write(("\n".join(lines) + "\n").encode("utf-8"))
            _streams.write_from(f, data)
        return
    # The compressed size and the block index precede the data: reserve room for them and fill
    # them in afterwards, so the stream goes straight to the file.
    nblocks = _blocks.block_count(len(data))
    placeholder = _index_line(_blocks.BlockIndex(_blocks.block_size(len(data)), len(data),
                                                 (0,) * nblocks)) + "\n" if nblocks else ""
    head = "\n".join(lines[:size_line]) + "\nCompressedDataSize = "
    tail = "\n".join(lines[size_line:]) + "\n"
    with atomic_write(path) as f:
        f.write(head.encode("utf-8"))
        mark = f.tell()
        f.write(b" " * 20 + b"\n")
        index_mark = f.tell()
        f.write((placeholder + tail).encode("utf-8"))
        n = _streams.compress_from(f, data, codec, level, on_index=indexes.append)
        f.seek(mark)
        f.write(str(n).rjust(20).encode("ascii"))
        line = _index_line(indexes[0]) if indexes else ""
        if nblocks and len(line) + 1 == len(placeholder):  # zero-padded: always the same size
            f.seek(index_mark)
            f.write(line.encode("ascii"))


def _index_line(index: _blocks.BlockIndex) -> str:
    sizes = " ".join(str(size).zfill(_INDEX_DIGITS) for size in index.sizes)
    return f"{INDEX_FIELD} = {index.block} {index.total} {sizes}"


def _write_data(f, data: memoryview, codec: str | None, level: int, on_index) -> int:
    if codec is None:
        _streams.write_from(f, data)
        return len(data)
    return _streams.compress_from(f, data, codec, level, on_index=on_index)
