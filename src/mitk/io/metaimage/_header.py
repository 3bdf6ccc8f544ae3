"""MetaImage header: ``Field = value`` lines up to ``ElementDataFile``, typed field access, and the
pixel layout they describe (see :mod:`mitk.io.metaimage` for the rules)."""

from __future__ import annotations

import logging
import math
import re

import numpy as np

from ...errors import CorruptFileError, UnsupportedFormatError
from .._text_header import field_error, header_lines
from ._geometry import _parse_geometry

_log = logging.getLogger(__name__)

#: What MetaIO skips after a field name: the separators and C's isspace() (MET_SkipToVal).
#: A value starting with '=' or ':' therefore cannot be written (see _properties).
_SKIP_TO_VALUE = "=: \t\n\r\x0b\x0c"
_BLANKS = _SKIP_TO_VALUE[2:]

_TYPES = {
    "MET_CHAR": "i1", "MET_ASCII_CHAR": "i1", "MET_UCHAR": "u1",
    "MET_SHORT": "i2", "MET_USHORT": "u2", "MET_INT": "i4", "MET_UINT": "u4",
    # MetaIO's metaTypes.h: MET_LONG_TYPE is int32_t and MET_ULONG_TYPE uint32_t.
    "MET_LONG": "i4", "MET_ULONG": "u4",
    "MET_LONG_LONG": "i8", "MET_ULONG_LONG": "u8", "MET_FLOAT": "f4", "MET_DOUBLE": "f8",
}


#: The block index of a large zlib stream (block size, total, and each block's compressed size,
#: zero-padded so the writer can reserve its line): lets our reader inflate the blocks in
#: parallel.  Other MetaIO readers keep it as an unknown field; ours never trusts it further than
#: the stream confirms it (see :mod:`mitk.io._parallel_deflate`).
INDEX_FIELD = "MitkDeflateBlocks"
#: Each block's CRC-32 (eight hex digits each), beside the index: a region read, which inflates
#: only some blocks, checks them against these.
CHECKS_FIELD = "MitkDeflateBlockCRC32"


#: Fields the image model holds: never properties; the writer produces them from the image.
_STRUCTURAL = frozenset({
    "ObjectType", "NDims", "DimSize", "ElementType", "ElementNumberOfChannels", "BinaryData",
    "BinaryDataByteOrderMSB", "ElementByteOrderMSB", "CompressedData", "CompressedDataSize",
    "HeaderSize", "ElementDataFile", "TransformMatrix", "Rotation", "Orientation", "Offset",
    "Position", "Origin", "ImagePosition", "ElementSpacing", INDEX_FIELD, CHECKS_FIELD,
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



class _Header:
    """The fields of one MetaImage header, in file order, and the byte where the header ends."""

    def __init__(self, path: str, fields: dict, end: int) -> None:
        self.path = path
        self.fields = fields
        self.end = end

    def fail(self, field: str, message: str) -> CorruptFileError:
        return field_error(self.path, "MetaImage", field, message)

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
    for start, raw in header_lines(f, path, "MetaImage"):
        pos = start + len(raw)
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
            # MetaIO, SimpleITK and MITK skip such a line (a stray word); real files carry them.
            _log.debug("%s: byte %d: skipped MetaImage header line %r (not 'Field = value')",
                       path, start, line[:60])
            continue
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
    raise CorruptFileError(
        f"{path}: MetaImage header ends at byte {pos} without the field 'ElementDataFile' "
        "(expected e.g. 'ElementDataFile = LOCAL' as the last header line)")


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
