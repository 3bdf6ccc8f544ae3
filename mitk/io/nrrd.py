"""NRRD: ``.nrrd`` (header and data in one file) and ``.nhdr`` (detached data).

The header follows the NRRD format page and teem, its reference implementation: the magic
``NRRD0001`` to ``NRRD0006`` (or the early ``NRRD00.01``), then ``field: value`` lines,
``key:=value`` lines and ``#`` comments, ended by an empty line (attached data follow it) or by
the end of a detached header.  As in teem, field names, types, encodings, spaces, kinds and
centers are matched without regard to case and with every alias (``unsigned short``, ``ushort``,
``uint16_t``; ``gz``; ``RAS``; ``RGB``; ``3D-sym-tensor``; ``spacedirections``; ...).  A field
given twice is CorruptFileError.  A line whose name before ``": "`` is not a NRRD field is a
``key:=value`` pair when it holds ``:=`` (as teem decides), and otherwise an unknown field, kept as
a ``nrrd.<field>`` property.

Reading
    Types: every integer type of 8 to 64 bits, ``float`` and ``double`` (``block`` is
    UnsupportedFormatError).  Encodings: ``raw``, ``gzip``/``gz``, ``bzip2``/``bz2``,
    ``ascii``/``text``/``txt`` and ``hex``; ``endian`` is required where the byte order matters.
    ``line skip`` skips lines of each data file, then ``byte skip`` skips bytes of the raw file
    or, for compressed encodings, of the decompressed stream (as teem does).  ``byte skip: -1``
    means the data are the last bytes of the raw file, or of the decompressed stream (teem reads a
    ``.nii.gz`` that way; at most the data size or 16 MiB, whichever is larger, may precede them
    there); other negative values are CorruptFileError.

    ``data file`` is one file name, ``LIST [subdim]`` (the names follow the header, one per line),
    ``SKIPLIST [subdim]`` (``<byte skip> <name>`` per line) or a printf pattern
    ``<format> <min> <max> <step> [<subdim>]``; several files each hold an equal, consecutive part
    of the data (one slice of the slowest axis by default).  Names are relative to the header's
    directory; an absolute name, or one that leaves that directory, needs
    ``allow_external_data=True``.

    Axes.  With a space, an axis with a ``space directions`` vector is spatial, or time when the
    space has a time component (``-time`` spaces, and ``space dimension: 4`` as ITK writes 4D
    images) and the vector points along it only.  An axis without a vector (``none``) is time for
    kind ``time``, a complex pixel for kind ``complex`` (size 2, float or double data), and the
    component axis for any other kind; without a kind it is the component axis, except that the
    slowest axis after three spatial ones is time (ITK's fourth domain axis).  Without a space,
    kinds ``domain``, ``space`` and no kind are spatial (a fourth is time), and the others as
    above.  The component axis may be anywhere in the file; it becomes the trailing axis (and time
    the leading one) by copying through a temporary buffer, the only case that is not read
    straight into the image.  Size-1 non-spatial axes vanish.  More than one component axis,
    more than 3 spatial axes or more than one time axis is UnsupportedFormatError, and so is an
    undirected ``domain`` axis of size > 1 among directed ones (its place is ambiguous).

    Geometry is converted to LPS: ``RAS`` (and ``RAST``) flips x and y, ``LAS`` (``LAST``) flips y,
    ``LPS``, ``scanner-xyz`` and ``3D-right-handed`` are taken as they are, and ``3D-left-handed``
    flips z: a left-handed frame needs one flipped axis to become right-handed, and flipping z
    keeps the x/y plane as displayed.  Spacing is the norm of each axis vector and the direction its
    unit vector, kept exactly (never orthonormalised).  Without space directions, ``spacings``
    (else ``(axis max - axis min) / (size - 1)``) give the spacing (a negative spacing flips the
    axis) and ``axis mins`` the origin; sample 0 sits at ``axis min`` (``centers`` are not used).
    ``space units`` convert to mm (and a time unit to ms); when one is unknown, all are kept as
    the ``nrrd.space units`` property and the values are used as they are.  A 2D image gets
    ``(0, 0, 1)`` as its third direction column when it lies in the xy plane, else the unit
    normal.  A time spacing that is 0 or not finite reads as 1.

Properties (SPEC section 6.4)
    ``key:=value`` pairs (with NRRD's ``\\n`` and ``\\\\`` escapes) become plain properties.
    ``content``, ``min``, ``max``, ``old min``, ``old max``, ``sample units``, ``thicknesses``,
    ``centers``, ``labels``, ``units``, ``kinds`` (when there is a component axis), unknown
    ``space units``, ``measurement frame`` and unknown fields become ``nrrd.<field>`` strings.
    Per-axis fields are stored in the order the writer writes axes (component, x, y, z, time), so
    they are written back to the right axes; the measurement frame is converted to LPS like the
    geometry (each vector flipped as the space requires).

Writing
    ``NRRD0005`` with ``space: left-posterior-superior`` (``space dimension: 2`` for a 2D image in
    the xy plane; ``space dimension: 4`` for 4D, as ITK writes it, so ITK and SimpleITK read it
    back as 4D), ``space directions`` = columns of ``direction @ diag(spacing)`` (the time axis
    ``(0,0,0,dt)``, the time origin as the fourth origin component), the component axis first
    with direction ``none`` and kind ``RGB-color``/``RGBA-color`` (uint8 with 3/4 channels), else
    ``vector``, unless the ``nrrd.kinds`` property names a component kind of that size; complex
    pixels as a first axis of kind ``complex`` over ``float``/``double``.  Data are native order
    (``endian`` declares it), raw, gzip or bzip2 (``compression``, ``compression_level`` 1-9,
    default 1).  ``nrrd.*`` properties of the fields above are written back (per-axis ones only
    when they have one entry per written axis; unknown fields as ``nrrd.<field>:=value``), then
    plain properties as ``key:=value``.  bool is written as ``uint8`` 0/1; float16 is
    UnsupportedFormatError, as are complex pixels with several channels (two non-spatial axes).

    Each file is replaced atomically (:mod:`mitk.io._atomic`).  A ``.nhdr`` writes its data to
    ``<stem>.raw`` (``.raw.gz``, ``.raw.bz2``) beside it, named relatively in ``data file``; when
    a file of that name exists (the old pair's data, or another header's), the data go to the
    first free ``<stem>.1.raw``, ``<stem>.2.raw``, ...  Data first, header last, then the data file
    the old header named (if it is one of these names) is deleted.  So the old pair is never
    touched before the new header replaces it: a kill at any point leaves the old pair or the new
    one readable (at worst with an unused data file beside it), and no other header's data file
    is ever overwritten.
"""

from __future__ import annotations

import bz2
import errno
import math
import os
import re
import stat
import zlib
from typing import Any

import numpy as np

from ..errors import ArgumentError, CorruptFileError, UnsupportedFormatError
from . import _streams
from ._atomic import (atomic_write, discard, fresh_data_name, remove_replaced,
                      replaced_data_file)
from ._ascii import short_tokens
from ._info import Allocator, ImageInfo
from ._paths import BAD_PATH_ERRNOS, MAX_NAME_WIDTH, excess_pattern_width, resolve_data_file

__all__ = ["NAME", "EXTENSIONS", "READ_OPTIONS", "WRITE_OPTIONS", "read", "write"]

NAME = "NRRD"
EXTENSIONS = (".nrrd", ".nhdr")
READ_OPTIONS = frozenset({"allow_external_data"})
WRITE_OPTIONS = frozenset({"compression", "compression_level"})

_MAX_LINE = 1 << 22  # one header line
_MAX_HEADER = 1 << 26  # the whole header, LIST names included
_MAX_DIM = 16  # teem's NRRD_DIM_MAX
_MAX_BYTES = 1 << 62
_MAX_DATA_FILES = 1 << 20
# bzip2 cannot expand more than about 46 million times (runs of zeros); a header declaring more
# than this from the bytes present is refused before allocating.
_BZIP2_MAX_RATIO = 50_000_000
# With byte skip -1 on a compressed stream, the most bytes read before the data (when the data
# are smaller than this): the prefix is undeclared, so its size must be bounded somehow.
_MAX_UNDECLARED_PREFIX = 16 << 20
# Between deflate's bound and bzip2's, a declared size is only plausible for a stream that really
# expands that much (an empty mask), so the stream is counted before the buffer is allocated: a
# few hundred bytes must not reserve gigabytes.
_BZIP2_COUNT_RATIO = _streams.MAX_DEFLATE_RATIO

_TYPES: dict[str, np.dtype] = {}
for _names, _dt in (
    (("signed char", "int8", "int8_t"), "int8"),
    (("uchar", "unsigned char", "uint8", "uint8_t"), "uint8"),
    (("short", "short int", "signed short", "signed short int", "int16", "int16_t"), "int16"),
    (("ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t"), "uint16"),
    (("int", "signed int", "int32", "int32_t"), "int32"),
    (("uint", "unsigned int", "uint32", "uint32_t"), "uint32"),
    (("longlong", "long long", "long long int", "signed long long", "signed long long int",
      "int64", "int64_t"), "int64"),
    (("ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t"),
     "uint64"),
    (("float",), "float32"),
    (("double",), "float64"),
):
    for _n in _names:
        _TYPES[_n] = np.dtype(_dt)
_WRITE_TYPES = {np.dtype(k): v for k, v in (
    ("int8", "int8"), ("uint8", "uint8"), ("int16", "int16"), ("uint16", "uint16"),
    ("int32", "int32"), ("uint32", "uint32"), ("int64", "int64"), ("uint64", "uint64"),
    ("float32", "float"), ("float64", "double"))}

_ENCODINGS = {"raw": "raw", "gzip": "gzip", "gz": "gzip", "bzip2": "bzip2", "bz2": "bzip2",
              "ascii": "ascii", "text": "ascii", "txt": "ascii", "hex": "hex"}

_FIELDS = {"content", "number", "type", "block size", "dimension", "space", "space dimension",
           "sizes", "spacings", "thicknesses", "axis mins", "axis maxs", "space directions",
           "centers", "kinds", "labels", "units", "min", "max", "old min", "old max", "endian",
           "encoding", "line skip", "byte skip", "sample units", "space units", "space origin",
           "measurement frame", "data file"}
_FIELD_ALIASES = {"blocksize": "block size", "spacedimension": "space dimension",
                  "axismins": "axis mins", "axismaxs": "axis maxs",
                  "spacedirections": "space directions", "centerings": "centers",
                  "oldmin": "old min", "oldmax": "old max", "lineskip": "line skip",
                  "byteskip": "byte skip", "sampleunits": "sample units",
                  "spaceunits": "space units", "spaceorigin": "space origin",
                  "measurementframe": "measurement frame", "datafile": "data file"}
# Fields the image model holds: never properties, never written from properties.
_MODELLED = {"type", "dimension", "sizes", "endian", "encoding", "space", "space dimension",
             "space directions", "space origin", "data file", "line skip", "byte skip",
             "spacings", "axis mins", "axis maxs", "number", "block size"}
_PER_AXIS_PROPS = ("thicknesses", "centers", "labels", "units", "kinds")
_QUOTED = {"labels", "units", "space units"}
_SCALAR_PROPS = ("content", "min", "max", "old min", "old max", "sample units")

# Named spaces: (space dimension, flips of x/y/z into LPS).  A fourth component is time.
_SPACES: dict[str, tuple[int, tuple]] = {}
for _names, _sd, _flip in (
    (("right-anterior-superior", "ras"), 3, (-1, -1, 1)),
    (("left-anterior-superior", "las"), 3, (1, -1, 1)),
    (("left-posterior-superior", "lps"), 3, (1, 1, 1)),
    (("right-anterior-superior-time", "rast"), 4, (-1, -1, 1)),
    (("left-anterior-superior-time", "last"), 4, (1, -1, 1)),
    (("left-posterior-superior-time", "lpst"), 4, (1, 1, 1)),
    (("scanner-xyz",), 3, (1, 1, 1)),
    (("scanner-xyz-time", "scanner-xyzt"), 4, (1, 1, 1)),
    (("3d-right-handed",), 3, (1, 1, 1)),
    (("3d-left-handed",), 3, (1, 1, -1)),
    (("3d-right-handed-time",), 4, (1, 1, 1)),
    (("3d-left-handed-time",), 4, (1, 1, -1)),
):
    for _n in _names:
        # teem also accepts the words separated by blanks or run together
        for _form in (_n, _n.replace("-", " "), _n.replace("-", "")):
            _SPACES[_form] = (_sd, _flip)

# Kinds: canonical spelling, the component count they imply (None: any), and aliases.
_KIND_TABLE = (
    ("domain", None, ()), ("space", None, ()), ("time", None, ()), ("list", None, ()),
    ("point", None, ()), ("vector", None, ("contravariant-vector",)),
    ("covariant-vector", None, ()), ("normal", None, ()), ("stub", 1, ()), ("scalar", 1, ()),
    ("complex", 2, ()), ("2-vector", 2, ()), ("3-color", 3, ()),
    ("RGB-color", 3, ("RGBcolor", "RGB")), ("HSV-color", 3, ("HSVcolor", "HSV")),
    ("XYZ-color", 3, ()), ("4-color", 4, ()), ("RGBA-color", 4, ("RGBAcolor", "RGBA")),
    ("3-vector", 3, ()), ("3-gradient", 3, ()), ("3-normal", 3, ()), ("4-vector", 4, ()),
    ("quaternion", 4, ()),
    ("2D-symmetric-matrix", 3, ("2D-sym-matrix", "2D-symmetric-tensor", "2D-sym-tensor")),
    ("2D-masked-symmetric-matrix", 4, ("2D-masked-sym-matrix", "2D-masked-symmetric-tensor",
                                       "2D-masked-sym-tensor")),
    ("2D-matrix", 4, ("2D-tensor",)), ("2D-masked-matrix", 5, ("2D-masked-tensor",)),
    ("3D-symmetric-matrix", 6, ("3D-sym-matrix", "3D-symmetric-tensor", "3D-sym-tensor")),
    ("3D-masked-symmetric-matrix", 7, ("3D-masked-sym-matrix", "3D-masked-symmetric-tensor",
                                       "3D-masked-sym-tensor")),
    ("3D-matrix", 9, ("3D-tensor",)), ("3D-masked-matrix", 10, ("3D-masked-tensor",)),
)
_KINDS = {}  # lower-case spelling -> canonical
_KIND_SIZE = {}  # canonical -> component count or None
for _canon, _size, _aliases in _KIND_TABLE:
    _KIND_SIZE[_canon] = _size
    for _n in (_canon,) + _aliases:
        _KINDS[_n.lower()] = _canon
_UNKNOWN_KINDS = {"???", "none", "(unknown_kind)"}
_DOMAIN_KINDS = {"domain", "space"}

_LENGTH_TO_MM = {}
for _names, _scale in ((("mm", "millimeter", "millimeters", "millimetre", "millimetres"), 1.0),
                       (("cm", "centimeter", "centimeters", "centimetre", "centimetres"), 10.0),
                       (("m", "meter", "meters", "metre", "metres"), 1000.0),
                       (("um", "\u00b5m", "micron", "microns", "micrometer", "micrometers",
                         "micrometre", "micrometres"), 1e-3),
                       (("nm", "nanometer", "nanometers", "nanometre", "nanometres"), 1e-6)):
    for _n in _names:
        _LENGTH_TO_MM[_n] = _scale
_TIME_TO_MS = {}
for _names, _scale in ((("ms", "msec", "millisecond", "milliseconds"), 1.0),
                       (("s", "sec", "second", "seconds"), 1000.0),
                       (("us", "\u00b5s", "usec", "microsecond", "microseconds"), 1e-3),
                       (("min", "minute", "minutes"), 60000.0)):
    for _n in _names:
        _TIME_TO_MS[_n] = _scale


def _fail(path: str, field: str, message: str) -> CorruptFileError:
    return CorruptFileError(f"{path}: NRRD field '{field}' {message}")


def _unsupported(path: str, field: str, message: str) -> UnsupportedFormatError:
    return UnsupportedFormatError(f"{path}: NRRD field '{field}' {message}")


def _canonical_field(name: str) -> str:
    name = " ".join(name.lower().split())
    return _FIELD_ALIASES.get(name, name)


_ESCAPE = re.compile(r"\\(\\|n)")


def _unescape(text: str) -> str:
    # One pass, so an escaped backslash followed by 'n' stays a backslash and an 'n'.
    return _ESCAPE.sub(lambda m: "\n" if m.group(1) == "n" else "\\", text)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


# -- header ---------------------------------------------------------------------------------------


class _Header:
    """The raw header: canonical field name -> value, key/values, where the data start."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fields: dict[str, str] = {}
        self.unknown: dict[str, str] = {}
        self.keyvalues: dict[str, str] = {}
        self.list_lines: list[str] = []
        self.data_offset = 0
        self.ended_by_blank = False


def _read_header(f, path: str) -> _Header:
    h = _Header(path)
    magic = f.readline(64)
    if not re.fullmatch(rb"NRRD(000[1-6]|00\.01)\r?\n", magic):
        raise CorruptFileError(
            f"{path}: not a NRRD file: the first line is {magic[:20]!r}, expected the magic "
            "'NRRD0001' to 'NRRD0006'")
    offset = len(magic)
    in_list = False
    while True:
        raw = f.readline(_MAX_LINE + 1)
        if not raw:
            break
        start, offset = offset, offset + len(raw)
        if len(raw) > _MAX_LINE or offset > _MAX_HEADER:
            raise CorruptFileError(f"{path}: NRRD header line at byte {start} is longer than "
                                   f"{_MAX_LINE} bytes, or the header exceeds {_MAX_HEADER}")
        if b"\0" in raw:
            raise CorruptFileError(f"{path}: NRRD header line at byte {start} holds a NUL byte "
                                   "(binary data where a header line was expected)")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            line = raw.decode("latin-1")  # older writers used Latin-1 in key/values
        line = line.rstrip("\n").rstrip("\r")
        if in_list:
            if line.strip():
                h.list_lines.append(line.strip())
            continue
        if line == "":
            h.ended_by_blank = True
            break
        if line.startswith("#"):
            continue
        colon = line.find(": ")
        name = _canonical_field(line[:colon]) if colon > 0 else None
        if name not in _FIELDS and ":=" in line:
            # teem's rule: a line is a key/value unless its text before ": " names a field
            key, value = line.split(":=", 1)
            h.keyvalues[_unescape(key)] = _unescape(value)
            continue
        if name is None:
            raise CorruptFileError(
                f"{path}: NRRD header line at byte {start} ({line[:60]!r}) is neither "
                "'field: value' nor 'key:=value'")
        value = line[colon + 2:].strip()
        target = h.fields if name in _FIELDS else h.unknown
        if name in target:
            raise _fail(path, name, "appears twice in the header")
        target[name] = value
        if name == "data file" and value.split()[:1] in (["LIST"], ["SKIPLIST"]):
            in_list = True  # the data file names follow, one per line
    h.data_offset = offset
    return h


# -- field parsers --------------------------------------------------------------------------------


def _int(h: _Header, field: str) -> int:
    value = h.fields[field]
    try:
        return int(value)
    except ValueError:
        raise _fail(h.path, field, f"is {value!r}, expected an integer") from None


def _ints(h: _Header, field: str, count: int) -> list[int]:
    tokens = h.fields[field].split()
    try:
        out = [int(t) for t in tokens]
    except ValueError:
        raise _fail(h.path, field, f"is {h.fields[field]!r}, expected {count} integers") from None
    if len(out) != count:
        raise _fail(h.path, field, f"has {len(out)} entries, expected {count} (the dimension)")
    return out


def _floats(h: _Header, field: str, count: int) -> list[float]:
    tokens = h.fields[field].split()
    out = []
    for t in tokens:
        try:
            out.append(float(t))
        except ValueError:
            raise _fail(h.path, field, f"holds {t!r}, expected a number") from None
    if len(out) != count:
        raise _fail(h.path, field, f"has {len(out)} entries, expected {count} (the dimension)")
    return out


def _vector_list(path: str, field: str, text: str, count: int, dim: int) -> list:
    """Parse ``(a,b,c) none ...``: ``count`` vectors of ``dim`` numbers; None for ``none``."""
    out = []
    pos = 0
    n = len(text)
    while True:
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos == n:
            break
        if text.startswith("none", pos) and (pos + 4 == n or text[pos + 4] in " \t"):
            out.append(None)
            pos += 4
            continue
        if text[pos] != "(":
            raise _fail(path, field, f"holds {text[pos:pos + 20]!r}, expected a vector "
                        "'(x,y,...)' or 'none'")
        end = text.find(")", pos)
        if end < 0:
            raise _fail(path, field, f"has a vector without ')' in {text!r}")
        parts = text[pos + 1:end].split(",")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise _fail(path, field, f"vector {text[pos:end + 1]!r} holds a non-number") from None
        if len(values) != dim:
            raise _fail(path, field, f"vector {text[pos:end + 1]!r} has {len(values)} "
                        f"components, expected {dim} (the space dimension)")
        nans = [math.isnan(v) for v in values]
        if all(nans):
            out.append(None)  # teem writes an absent vector as NaNs
        elif any(nans) or not all(math.isfinite(v) for v in values):
            raise _fail(path, field, f"vector {text[pos:end + 1]!r} is not finite")
        else:
            out.append(values)
        pos = end + 1
    if len(out) != count:
        raise _fail(path, field, f"has {len(out)} vectors, expected {count}")
    return out


_QUOTED_TOKEN = re.compile(r'\s*"((?:[^"\\]|\\.)*)"')


def _quoted(text: str) -> list[str] | None:
    """The ``"..."`` strings of a labels/units field, or None when it is not such a list."""
    out, pos = [], 0
    while text[pos:].strip():
        m = _QUOTED_TOKEN.match(text, pos)
        if not m:
            return None
        out.append(m.group(1).replace('\\"', '"'))
        pos = m.end()
    return out


def _axis_tokens(field: str, value: str) -> list[str] | None:
    """Per-axis tokens as written (quotes kept for quoted fields), or None if unparsable."""
    if field in _QUOTED:
        return [m.group(0).strip() for m in _QUOTED_TOKEN.finditer(value)] \
            if _quoted(value) is not None else None
    return value.split()


# -- layout ---------------------------------------------------------------------------------------


class _Layout:
    """Everything the header says, validated: pixel type, axis roles, geometry, data location."""

    file_dtype: np.dtype
    encoding: str
    dim: int
    sizes: list
    roles: list
    spatial: list
    time_axis: int | None
    comp_axis: int | None
    complex_axis: int | None
    channels: int
    dtype: np.dtype
    shape: tuple
    spacing: tuple
    origin: tuple
    direction: np.ndarray
    time_origin: float
    time_spacing: float
    nbytes: int
    line_skip: int
    byte_skip: int
    properties: dict


def _parse(h: _Header) -> _Layout:
    path, F = h.path, h.fields
    L = _Layout()
    for required in ("type", "dimension", "sizes", "encoding"):
        if required not in F:
            raise _fail(path, required, "is missing (required in every NRRD header)")
    tname = " ".join(F["type"].lower().split())
    if tname == "block":
        raise _unsupported(path, "type", "is 'block' (opaque blocks of bytes), which is not a "
                           "pixel type mitk holds")
    if tname not in _TYPES:
        raise _unsupported(path, "type", f"is {F['type']!r}, not a NRRD pixel type (expected "
                           "e.g. 'uchar', 'short', 'float', 'double')")
    file_dtype = _TYPES[tname]
    dim = _int(h, "dimension")
    if not 1 <= dim <= _MAX_DIM:
        raise _fail(path, "dimension", f"is {dim}, expected 1 to {_MAX_DIM}")
    sizes = _ints(h, "sizes", dim)
    if any(s < 1 for s in sizes):
        raise _fail(path, "sizes", f"is {sizes}; every size must be >= 1")
    enc = F["encoding"].lower()
    if enc not in _ENCODINGS:
        raise _unsupported(path, "encoding", f"is {F['encoding']!r}; mitk reads raw, gzip, "
                           "bzip2, ascii and hex")
    L.encoding = _ENCODINGS[enc]
    if "endian" in F:
        endian = F["endian"].lower()
        if endian not in ("little", "big"):
            raise _fail(path, "endian", f"is {F['endian']!r}, expected 'little' or 'big'")
        if file_dtype.itemsize > 1:
            file_dtype = file_dtype.newbyteorder("<" if endian == "little" else ">")
    elif file_dtype.itemsize > 1 and L.encoding != "ascii":
        raise _fail(path, "endian", f"is missing; {tname} data in {L.encoding} encoding need "
                    "'little' or 'big'")
    L.file_dtype = file_dtype
    L.dim, L.sizes = dim, sizes

    kinds = _kinds(h, dim)
    space_dim, flips = _space(h)
    dirs = None
    if "space directions" in F:
        if not space_dim:
            raise _fail(path, "space directions", "needs 'space' or 'space dimension' first")
        dirs = _vector_list(path, "space directions", F["space directions"], dim, space_dim)
    _roles(h, L, kinds, dirs, space_dim)
    _shape(h, L, file_dtype)
    units = _space_units(h, space_dim)
    _geometry(h, L, dirs, space_dim, flips, units)

    total = file_dtype.itemsize
    for s in sizes:
        total *= s
    if total > _MAX_BYTES:
        raise _fail(path, "sizes", f"{sizes} declare {total} bytes of {tname}, more than any "
                    "file or memory holds")
    L.nbytes = total
    L.line_skip = _int(h, "line skip") if "line skip" in F else 0
    if L.line_skip < 0:
        raise _fail(path, "line skip", f"is {L.line_skip}, expected a count >= 0")
    L.byte_skip = _int(h, "byte skip") if "byte skip" in F else 0
    if L.byte_skip < -1:
        raise _fail(path, "byte skip", f"is {L.byte_skip}, expected a count >= 0 or -1 (the data "
                    "are the last bytes)")
    if L.byte_skip == -1 and L.encoding in ("ascii", "hex"):
        raise _fail(path, "byte skip", f"is -1, which only raw and compressed data allow, not "
                    f"{L.encoding}")
    L.properties = _properties(h, L, flips, space_dim, units)
    return L


def _kinds(h: _Header, dim: int) -> list:
    if "kinds" not in h.fields:
        return [None] * dim
    tokens = h.fields["kinds"].split()
    if len(tokens) != dim:
        raise _fail(h.path, "kinds", f"has {len(tokens)} entries, expected {dim} (the dimension)")
    out = []
    for t in tokens:
        low = t.lower()
        if low in _UNKNOWN_KINDS:
            out.append(None)
        elif low in _KINDS:
            out.append(_KINDS[low])
        else:
            raise _fail(h.path, "kinds", f"holds {t!r}, not a NRRD kind")
    return out


def _space(h: _Header) -> tuple[int, tuple]:
    """(space dimension, x/y/z flips into LPS); (0, ...) when the header has no space."""
    F = h.fields
    if "space" in F:
        if "space dimension" in F:
            raise _fail(h.path, "space dimension", "cannot be given together with 'space'")
        key = " ".join(F["space"].lower().split())
        if key not in _SPACES:
            raise _unsupported(h.path, "space", f"is {F['space']!r}, not a NRRD space mitk "
                               "knows (RAS, LAS, LPS, their -time forms, scanner-xyz, "
                               "3D-right-handed, 3D-left-handed)")
        return _SPACES[key]
    if "space dimension" in F:
        sd = _int(h, "space dimension")
        if sd < 1:
            raise _fail(h.path, "space dimension", f"is {sd}, expected >= 1")
        if sd > 4:
            raise _unsupported(h.path, "space dimension", f"is {sd}; mitk images live in 3D "
                               "space plus time (1 to 4)")
        return sd, (1, 1, 1)
    for field in ("space origin", "space units", "measurement frame"):
        if field in F:
            raise _fail(h.path, field, "needs 'space' or 'space dimension' first")
    return 0, (1, 1, 1)


def _roles(h: _Header, L: _Layout, kinds: list, dirs: list | None, space_dim: int) -> None:
    path, sizes, dim = h.path, L.sizes, L.dim
    roles: list = [None] * dim
    free = []  # undirected domain axes in a header that gives directions
    for i in range(dim):
        k = kinds[i]
        vec = dirs[i] if dirs is not None else None
        if vec is not None:
            if space_dim == 4 and any(vec[:3]) and vec[3]:
                raise UnsupportedFormatError(
                    f"{path}: NRRD field 'space directions': axis {i} ({vec}) moves in space and "
                    "time at once; mitk keeps time separate from space")
            if not any(vec) and space_dim != 4:
                raise _fail(path, "space directions", f"gives axis {i} a zero vector")
            # in a space with time, a vector along time only (or a zero one: a time step of 0,
            # which reads as 1) marks the time axis
            role = "time" if space_dim == 4 and not any(vec[:3]) else "space"
            if k is not None and k not in _DOMAIN_KINDS and not (k == "time" and role == "time"):
                raise UnsupportedFormatError(
                    f"{path}: NRRD axis {i} has kind {k!r} but a space direction {vec}; expected "
                    "'domain' or 'space' for an oriented axis")
            roles[i] = role
        elif k == "time":
            roles[i] = "time"
        elif k == "complex":
            if sizes[i] != 2:
                raise _fail(path, "kinds", f"marks axis {i} 'complex' but its size is "
                            f"{sizes[i]}, expected 2")
            roles[i] = "complex"
        elif k is not None and k not in _DOMAIN_KINDS:
            if _KIND_SIZE.get(k) not in (None, sizes[i]):  # as teem checks, e.g. RGB-color: 3
                raise _fail(path, "kinds", f"marks axis {i} {k!r}, which has "
                            f"{_KIND_SIZE[k]} components, but its size is {sizes[i]}")
            roles[i] = "component"
        elif dirs is not None:
            free.append(i)
        else:
            roles[i] = "space"
    n_space = roles.count("space")
    for i in free:
        if i == dim - 1 and n_space == 3 and "time" not in roles:
            roles[i] = "time"  # ITK's fourth domain axis
        elif kinds[i] is None or sizes[i] == 1:
            roles[i] = "component"  # a size-1 one vanishes below
        else:
            raise UnsupportedFormatError(
                f"{path}: NRRD axis {i} is a {kinds[i]!r} axis without a space direction among "
                "oriented axes; mitk cannot tell where it lies")
    spatial = [i for i in range(dim) if roles[i] == "space"]
    if dirs is None and len(spatial) == 4 and "time" not in roles:
        roles[spatial[-1]] = "time"  # a fourth domain axis is time
        spatial.pop()
    for i in range(dim):
        if roles[i] == "component" and sizes[i] == 1:
            roles[i] = "drop"
    times = [i for i in range(dim) if roles[i] == "time"]
    others = [i for i in range(dim) if roles[i] in ("component", "complex")]
    if len(others) > 1:
        raise UnsupportedFormatError(
            f"{path}: NRRD axes {others} (kinds {[kinds[i] for i in others]}) are all "
            "non-spatial; mitk holds one component axis (plus time)")
    if len(times) > 1:
        raise UnsupportedFormatError(f"{path}: NRRD axes {times} are all time axes; mitk holds "
                                     "one")
    if len(spatial) > 3:
        raise UnsupportedFormatError(
            f"{path}: NRRD file has {len(spatial)} spatial axes (sizes {sizes}); mitk images "
            "have 2 to 4 dimensions (at most 3 spatial plus time)")
    if not spatial:
        raise UnsupportedFormatError(f"{path}: NRRD file has no spatial axis (kinds {kinds})")
    L.roles, L.spatial = roles, spatial
    L.time_axis = times[0] if times else None
    L.comp_axis = next((i for i in others if roles[i] == "component"), None)
    L.complex_axis = next((i for i in others if roles[i] == "complex"), None)
    L.channels = sizes[L.comp_axis] if L.comp_axis is not None else 1


def _shape(h: _Header, L: _Layout, file_dtype: np.dtype) -> None:
    if L.complex_axis is not None:
        if file_dtype.kind != "f":
            raise _unsupported(h.path, "kinds", f"marks axis {L.complex_axis} 'complex' over "
                               f"{file_dtype.name} data; complex pixels need float or double")
        L.dtype = np.dtype(np.complex64 if file_dtype.itemsize == 4 else np.complex128)
    else:
        L.dtype = file_dtype.newbyteorder("=")
    xyz = [L.sizes[i] for i in L.spatial]
    if len(xyz) == 1:
        xyz.append(1)  # a 1-D file loads as a 2D image of one row
    if L.time_axis is not None:
        if len(xyz) == 2:
            xyz.append(1)  # 2D + time is held as 4D with one slice
        L.shape = (L.sizes[L.time_axis],) + tuple(reversed(xyz))
    else:
        L.shape = tuple(reversed(xyz))


def _space_units(h: _Header, space_dim: int) -> list | None:
    """Scale of each space component into mm (time into ms), or None to use values as given."""
    if "space units" not in h.fields:
        return None
    units = _quoted(h.fields["space units"])
    if units is None or len(units) != space_dim:
        raise _fail(h.path, "space units", f"is {h.fields['space units']!r}, expected "
                    f"{space_dim} quoted units (the space dimension)")
    scales = []
    for c, u in enumerate(units):
        table = _TIME_TO_MS if c == 3 else _LENGTH_TO_MM
        scale = table.get(u.strip().lower())
        if scale is None:
            return None
        scales.append(scale)
    return scales


def _spacing_of(h: _Header, L: _Layout, i: int) -> float | None:
    """Spacing of axis ``i`` from ``spacings`` or axis mins/maxs; None when not given."""
    if "spacings" in h.fields:
        s = _floats(h, "spacings", L.dim)[i]
        if math.isfinite(s) and s != 0:
            return s
    if "axis mins" in h.fields and "axis maxs" in h.fields and L.sizes[i] > 1:
        lo = _floats(h, "axis mins", L.dim)[i]
        hi = _floats(h, "axis maxs", L.dim)[i]
        if math.isfinite(lo) and math.isfinite(hi) and hi != lo:
            return (hi - lo) / (L.sizes[i] - 1)
    return None


def _complete(cols: list) -> list:
    """Pad 1 or 2 unit direction columns to 3 (identity in the xy plane, else normals)."""
    cols = list(cols)
    if len(cols) == 1:
        c0 = cols[0]
        if c0[1] == 0 and c0[2] == 0:
            return [c0, np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0])]
        e = np.eye(3)[int(np.argmin(np.abs(c0)))]
        c1 = e - np.dot(e, c0) * c0
        cols.append(c1 / np.linalg.norm(c1))
    c0, c1 = cols
    if c0[2] == 0 and c1[2] == 0:
        return [c0, c1, np.array([0.0, 0.0, 1.0])]
    n = np.cross(c0, c1)
    norm = float(np.linalg.norm(n))
    return [c0, c1, n / norm if norm > 0 else np.array([0.0, 0.0, 1.0])]


def _geometry(h: _Header, L: _Layout, dirs: list | None, space_dim: int, flips: tuple,
              units: list | None) -> None:
    path, F = h.path, h.fields
    flip = np.array(flips, dtype=np.float64)
    scale = np.ones(3)
    time_scale = 1.0
    if units is not None:
        scale[: min(space_dim, 3)] = units[:3]
        if space_dim == 4:
            time_scale = units[3]
    cols, spacing = [], []
    for k, i in enumerate(L.spatial):
        if dirs is not None:
            v = np.zeros(3)
            part = dirs[i][:3]
            v[: len(part)] = part
            with np.errstate(over="ignore"):  # beyond the float range is caught as inf below
                v = v * flip * scale
        else:
            s = _spacing_of(h, L, i)
            v = np.zeros(3)
            v[k] = 1.0 if s is None else s
            if space_dim:
                v = v * flip * scale
        norm = math.hypot(*v)  # no overflow for entries near the float maximum
        if not math.isfinite(norm) or norm == 0:
            raise _fail(path, "space directions", f"gives axis {i} a vector of length {norm}")
        cols.append(v / norm)
        spacing.append(norm)
    full = _complete(cols) if len(cols) < 3 else cols
    spacing += [1.0] * (3 - len(spacing))
    direction = np.column_stack(full)
    if not abs(np.linalg.det(direction)) > 1e-12:
        raise _fail(path, "space directions", "gives linearly dependent axes (a singular "
                    "direction)")
    origin = np.zeros(3)
    time_origin, time_spacing = 0.0, 1.0
    if "space origin" in F:
        o = _vector_list(path, "space origin", F["space origin"], 1, space_dim)[0]
        if o is not None:
            origin[: min(space_dim, 3)] = o[:3]
            origin = origin * flip * scale
            if space_dim == 4:
                time_origin = o[3] * time_scale
    elif not space_dim and "axis mins" in F:
        mins = _floats(h, "axis mins", L.dim)
        for k, i in enumerate(L.spatial):
            if math.isfinite(mins[i]):
                origin[k] = mins[i]
    t = L.time_axis
    if t is not None:
        vec = dirs[t] if dirs is not None else None
        if vec is not None:
            time_spacing = vec[3] * time_scale
        else:
            time_spacing = _spacing_of(h, L, t) or 1.0
            if "axis mins" in F and "space origin" not in F:
                lo = _floats(h, "axis mins", L.dim)[t]
                if math.isfinite(lo):
                    time_origin = lo
        if not math.isfinite(time_spacing) or time_spacing == 0:
            time_spacing = 1.0
        time_spacing = abs(time_spacing)
    if not all(math.isfinite(v) for v in (*origin, time_origin)):
        raise _fail(path, "space origin", "is not finite after unit conversion")
    L.spacing = tuple(float(s) for s in spacing)
    L.origin = tuple(float(o) for o in origin)
    L.direction = direction
    L.time_origin, L.time_spacing = float(time_origin), float(time_spacing)


def _writer_axes(L: _Layout) -> list:
    """File axes in the order the writer writes them: component, x, y, z, time."""
    order = [a for a in (L.complex_axis, L.comp_axis) if a is not None]
    order += L.spatial
    if L.time_axis is not None:
        order.append(L.time_axis)
    return order


def _vec(values) -> str:
    return "(" + ",".join(repr(float(v) + 0.0) for v in values) + ")"  # + 0.0: no "-0.0"


def _properties(h: _Header, L: _Layout, flips: tuple, space_dim: int,
                units: list | None) -> dict:
    props: dict = dict(h.keyvalues)
    F = h.fields
    order = _writer_axes(L)
    for field in _SCALAR_PROPS:
        if field in F:
            props[f"nrrd.{field}"] = F[field]
    for field in _PER_AXIS_PROPS:
        if field not in F or (field == "kinds" and L.channels == 1):
            continue
        tokens = _axis_tokens(field, F[field])
        if tokens is not None and len(tokens) == L.dim:
            props[f"nrrd.{field}"] = " ".join(tokens[a] for a in order)
        else:
            props[f"nrrd.{field}"] = F[field]
    if "space units" in F and units is None:
        props["nrrd.space units"] = F["space units"]
    if "measurement frame" in F:
        vectors = _vector_list(h.path, "measurement frame", F["measurement frame"], space_dim,
                               space_dim)
        if any(v is None for v in vectors):
            raise _fail(h.path, "measurement frame", "holds 'none'; expected one vector per "
                        "space dimension")
        lps = [[c * (flips[j] if j < 3 else 1) for j, c in enumerate(v)] for v in vectors]
        props["nrrd.measurement frame"] = " ".join(_vec(v) for v in lps)
    for field, value in h.unknown.items():
        props[f"nrrd.{field}"] = value
    return props


# -- data files -----------------------------------------------------------------------------------


def _resolve(h: _Header, name: str, allow_external: bool) -> str:
    if name == "-":
        raise _unsupported(h.path, "data file", "is '-' (standard input), which mitk cannot read")
    return resolve_data_file(h.path, name, "NRRD field 'data file'", allow_external)


_PATTERN = re.compile(r"(?:[^%]|%%)*%0?\d*d(?:[^%]|%%)*")


def _subdim(h: _Header, text: str, dim: int) -> int:
    try:
        sub = int(text)
    except ValueError:
        raise _fail(h.path, "data file", f"gives {text!r} as the data file dimension, expected "
                    "an integer") from None
    if not 1 <= sub <= dim:
        raise _fail(h.path, "data file", f"gives data file dimension {sub}, expected 1 to {dim}")
    return sub


def _data_files(h: _Header, L: _Layout, allow_external: bool) -> list | None:
    """[(path, byte skip)] of the detached data files; None for attached data."""
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
                raise _fail(h.path, "byte skip", "cannot be combined with a SKIPLIST, which "
                            "gives a byte skip per file")
            if -1 in skips and L.encoding in ("ascii", "hex"):
                raise _fail(h.path, "data file", "SKIPLIST gives a byte skip of -1, which only "
                            f"raw and compressed data allow, not {L.encoding}")
        if not names:
            raise _fail(h.path, "data file", f"is {parts[0]} but no file names follow the header")
    elif parts and "%" in parts[0] and _PATTERN.fullmatch(parts[0]):
        if len(parts) not in (4, 5):
            raise _fail(h.path, "data file", f"is {value!r}, expected '<format> <min> <max> "
                        "<step> [<subdim>]'")
        try:
            lo, hi, step = int(parts[1]), int(parts[2]), int(parts[3])
        except ValueError:
            raise _fail(h.path, "data file", f"is {value!r}; min, max and step must be "
                        "integers") from None
        if step == 0 or (hi - lo) * step < 0:
            raise _fail(h.path, "data file", f"is {value!r}; the step must go from min to max")
        wide = excess_pattern_width(parts[0])
        if wide is not None:
            raise _fail(h.path, "data file", f"pattern pads numbers to {wide} characters; a file "
                        f"name holds at most {MAX_NAME_WIDTH}")
        count = (hi - lo) // step + 1
        if count > _MAX_DATA_FILES:
            raise _unsupported(h.path, "data file", f"names {count} files; mitk reads at most "
                               f"{_MAX_DATA_FILES}")
        sub = _subdim(h, parts[4], L.dim) if len(parts) == 5 else L.dim - 1
        names = [parts[0] % i for i in range(lo, hi + (1 if step > 0 else -1), step)]
    else:
        return [(_resolve(h, value, allow_external), L.byte_skip)]
    if len(names) > _MAX_DATA_FILES:
        raise _unsupported(h.path, "data file", f"names {len(names)} files; mitk reads at most "
                           f"{_MAX_DATA_FILES}")
    # teem's rule: files hold sub-dimensional pieces, or equal slabs of the slowest axis.
    pieces = math.prod(L.sizes[sub:]) if sub < L.dim else None
    if pieces is not None and pieces != len(names):
        raise _fail(h.path, "data file", f"names {len(names)} files, but {pieces} pieces of "
                    f"dimension {sub} make up the sizes {L.sizes}")
    if pieces is None and L.sizes[-1] % len(names):
        raise _fail(h.path, "data file", f"names {len(names)} files, which do not divide the "
                    f"{L.sizes[-1]} slices of the last axis")
    skips = skips or [L.byte_skip] * len(names)
    return [(_resolve(h, n, allow_external), s) for n, s in zip(names, skips)]


class _Piece:
    """One data file's part of the pixels, located and size-checked before allocating."""

    def __init__(self, src: str, where: str, pos: int, skip: int, size: int, nbytes: int):
        self.src, self.where, self.pos, self.skip = src, where, pos, skip
        self.size, self.nbytes = size, nbytes


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


def _plan(h: _Header, L: _Layout, files: list | None) -> list[_Piece]:
    sources = [(h.path, h.data_offset, L.byte_skip)] if files is None else \
        [(p, 0, s) for p, s in files]
    per = L.nbytes // len(sources)
    count = per // L.file_dtype.itemsize
    pieces = []
    for src, start, skip in sources:
        where = h.path if files is None else f"{src} (data file of {h.path})"
        try:
            mode = os.stat(src).st_mode
        except FileNotFoundError:
            raise FileNotFoundError(
                errno.ENOENT, f"NRRD data file named by {h.path} (data file: "
                f"{h.fields.get('data file')!r}) does not exist", src) from None
        except OSError as exc:
            if exc.errno not in BAD_PATH_ERRNOS:
                raise  # a real I/O or permission problem: the OSError as it is
            raise _fail(h.path, "data file", f"names {src[:200]!r}, which cannot be a data file "
                                             f"({exc.strerror})") from None
        if not stat.S_ISREG(mode):  # a directory, or a FIFO or device that could block or never end
            raise _fail(h.path, "data file", f"names {src!r}, which is not a regular file")
        with open(src, "rb", buffering=0) as f:
            size = os.fstat(f.fileno()).st_size
            pos = _skip_lines(f, L.line_skip, where, start) if L.line_skip else start
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
        elif L.encoding in ("gzip", "bzip2"):
            declared = per + max(skip, 0)
            if L.encoding == "gzip":
                _streams.check_compressed_size(declared, available, "gzip", path=where)
            elif declared > _BZIP2_MAX_RATIO * max(available, 1):
                raise CorruptFileError(
                    f"{where}: header declares {declared} bytes of pixel data but the bzip2 "
                    f"stream has only {available} bytes; bzip2 cannot expand that much")
            elif declared > _BZIP2_COUNT_RATIO * max(available, 1):
                with open(src, "rb", buffering=0) as f:
                    f.seek(pos)
                    found = _stream_length(f, "bzip2", where, limit=declared)
                if found < declared:
                    raise CorruptFileError(
                        f"{where}: NRRD field 'sizes' {L.sizes} (byte skip {max(skip, 0)}) "
                        f"declares {declared} bytes of pixel data but the bzip2 stream holds "
                        f"only {found}")
        else:
            pos += skip
            available = max(size - pos, 0)
            need = 2 * per if L.encoding == "hex" else 2 * count - 1
            if available < need:
                raise CorruptFileError(
                    f"{where}: NRRD {L.encoding} data is truncated: {count} values need at least "
                    f"{need} bytes from byte {pos}, {available} present")
        pieces.append(_Piece(src, where, pos, skip, size, per))
    return pieces


def _stream_length(f, codec: str, where: str, limit: int | None = None) -> int:
    """Decompressed length of the (possibly multi-member) stream from ``f``'s position.

    With ``limit``, counting stops (and returns) as soon as more than ``limit`` bytes came out.
    """
    def new():
        return bz2.BZ2Decompressor() if codec == "bzip2" else zlib.decompressobj(32 + 15)

    total, d, data = 0, new(), b""
    try:
        while True:
            if d.eof:
                rest = d.unused_data or f.read(_streams.CHUNK)
                if not rest:
                    return total
                d, data = new(), rest
            elif not data and (codec != "bzip2" or d.needs_input):
                data = f.read(_streams.CHUNK)
                if not data:
                    raise CorruptFileError(f"{where}: {codec} stream is truncated (no "
                                           "end-of-stream marker)")
            total += len(d.decompress(data, _streams.CHUNK))
            data = b"" if codec == "bzip2" else d.unconsumed_tail
            if limit is not None and total > limit:
                return total
    except CorruptFileError:
        raise
    except (zlib.error, EOFError, ValueError) as exc:
        raise CorruptFileError(f"{where}: invalid {codec} data ({exc})") from None
    except OSError as exc:
        if exc.errno:
            raise
        raise CorruptFileError(f"{where}: invalid {codec} data ({exc})") from None


def _read_text(f, piece: _Piece, out: memoryview, L: _Layout) -> None:
    f.seek(piece.pos)
    text = f.read()
    native = L.file_dtype.newbyteorder("=")
    if L.encoding == "hex":
        digits = re.sub(rb"\s+", b"", text)[: 2 * len(out)]
        try:
            data = bytes.fromhex(digits.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            raise CorruptFileError(f"{piece.where}: NRRD hex data holds a character that is not "
                                   "a hexadecimal digit") from None
        if len(data) < len(out):
            raise CorruptFileError(f"{piece.where}: NRRD hex data is truncated: {len(out)} bytes "
                                   f"expected, {len(data)} found")
        out[:] = data
        return
    count = len(out) // native.itemsize
    tokens = re.split(rb"[\s,]+", text.strip(), maxsplit=count)[:count]
    if len(tokens) < count or tokens == [b""]:
        found = 0 if tokens == [b""] else len(tokens)
        raise CorruptFileError(f"{piece.where}: NRRD ascii data is truncated: {count} values "
                               f"expected, {found} found")
    try:
        # One fixed-width array of every token, count x longest token bytes: long ones are
        # shortened first.
        strings = np.array(short_tokens(tokens, native.kind != "f"))
        if native.kind == "f":
            values = strings.astype(np.float64)
        else:
            wide = np.dtype(np.uint64 if native.kind == "u" else np.int64)
            values = strings.astype(wide)
            info = np.iinfo(native)
            if values.size and (values.min() < info.min or values.max() > info.max):
                raise OverflowError
    except (ValueError, OverflowError, TypeError):
        raise CorruptFileError(f"{piece.where}: NRRD ascii data holds a value that is not a "
                               f"{native.name}") from None
    with np.errstate(over="ignore"):  # a value beyond float32 is inf, as strtof gives it
        np.frombuffer(out, dtype=native)[...] = values


def _fill(pieces: list[_Piece], L: _Layout, flat: memoryview) -> None:
    for k, piece in enumerate(pieces):
        out = flat[k * piece.nbytes:(k + 1) * piece.nbytes]
        with open(piece.src, "rb", buffering=0) as f:
            if L.encoding == "raw":
                f.seek(piece.pos)
                _streams.read_exact_into(f, out, path=piece.where, what="NRRD raw data")
            elif L.encoding in ("gzip", "bzip2"):
                skip = piece.skip
                if skip == -1:
                    # The stream's length is not declared: count it, but only so far.  A bzip2
                    # stream of a few KB can hold gigabytes, which no header asked for.
                    limit = piece.nbytes + max(piece.nbytes, _MAX_UNDECLARED_PREFIX)
                    f.seek(piece.pos)
                    total = _stream_length(f, L.encoding, piece.where, limit=limit)
                    if total > limit:
                        raise CorruptFileError(
                            f"{piece.where}: NRRD field 'byte skip' is -1, but more than "
                            f"{limit - piece.nbytes} bytes of the {L.encoding} stream precede "
                            f"its last {piece.nbytes}; mitk reads at most "
                            f"max(data size, {_MAX_UNDECLARED_PREFIX}) bytes before them")
                    if total < piece.nbytes:
                        raise CorruptFileError(
                            f"{piece.where}: NRRD {L.encoding} stream holds {total} bytes, fewer "
                            f"than the {piece.nbytes} its last bytes should supply (byte skip -1)")
                    skip = total - piece.nbytes
                f.seek(piece.pos)
                _streams.decompress_into(f, out, L.encoding, path=piece.where, skip=skip)
            else:
                _read_text(f, piece, out, L)


# -- reading --------------------------------------------------------------------------------------


def read(path: str, allocate: Allocator, *, allow_external_data: bool = False,
         **unknown: Any) -> ImageInfo:
    """Read a ``.nrrd`` or ``.nhdr`` file (see the module docstring).

    Parameters
    ----------
    path : str
        The header file (``.nrrd`` or ``.nhdr``).
    allocate : callable
        ``allocate(dtype, shape)`` returning the writable C-contiguous pixel buffer (see
        :mod:`mitk.io._info`); called once, after the whole header and the data sizes are checked.
    allow_external_data : bool
        Read data files that are absolute or outside the header's directory.

    Returns
    -------
    ImageInfo
        LPS geometry, the native dtype and the ``nrrd.*`` / plain properties.

    Raises
    ------
    CorruptFileError
        Bad magic, a malformed, duplicated or inconsistent field, non-finite or singular
        geometry, truncated data or a compressed stream longer than declared, an escaping data
        path.
    UnsupportedFormatError
        A type, encoding, space or axis layout mitk cannot hold (``block`` data, 5 or more
        dimensions, several non-spatial axes).
    FileNotFoundError
        A detached data file is missing (the message names it and the header).

    Notes
    -----
    Raw data are read with one ``readinto`` per data file straight into the buffer, compressed
    data decompressed into it in chunks (both release the GIL in the OS and codec calls), then
    byte-swapped in place if the file's byte order is not native.  Only a file whose component
    axis is not its fastest axis (or whose time axis is not its slowest) is read into a temporary
    buffer and copied.
    """
    if unknown:
        raise TypeError(f"unknown NRRD read option(s): {', '.join(sorted(unknown))}; accepted: "
                        f"{', '.join(sorted(READ_OPTIONS))}")
    if not isinstance(allow_external_data, bool):
        raise TypeError("allow_external_data must be a bool, not "
                        f"{type(allow_external_data).__name__}")
    with open(path, "rb") as f:
        h = _read_header(f, path)
    L = _parse(h)
    pieces = _plan(h, L, _data_files(h, L, allow_external_data))

    # File axes from the slowest to the fastest of the image's (t, z, y, x, c) order; size-1
    # axes that mitk drops go first, where they change nothing.
    order = [a for a in range(L.dim) if L.roles[a] == "drop"]
    order += [a for a in (L.time_axis,) if a is not None] + list(reversed(L.spatial))
    order += [a for a in (L.comp_axis, L.complex_axis) if a is not None]
    moving = [a for a in order if L.sizes[a] > 1]
    natural = moving == sorted(moving, reverse=True)
    full = L.shape + ((L.channels,) if L.channels > 1 else ())
    out = allocate(L.dtype, full)
    if not (out.flags.c_contiguous and out.flags.writeable) or out.shape != full:
        raise ValueError(f"allocate returned an unusable buffer (shape {out.shape}, flags "
                         f"{out.flags}); expected a writable C-contiguous array of shape {full}")
    component = L.file_dtype.newbyteorder("=")
    target = out if natural else np.empty(tuple(reversed(L.sizes)), dtype=component)
    flat = target.reshape(-1).view(np.uint8)
    _fill(pieces, L, memoryview(flat))
    if not L.file_dtype.isnative and L.encoding != "ascii":
        flat.view(component).byteswap(inplace=True)
    if not natural:
        perm = [L.dim - 1 - a for a in order]
        dst = out.reshape(-1).view(component).reshape([L.sizes[a] for a in order])
        dst[...] = target.transpose(perm)
    return ImageInfo(dtype=L.dtype, shape=L.shape, channels=L.channels, spacing=L.spacing,
                     origin=L.origin, direction=L.direction, time_origin=L.time_origin,
                     time_spacing=L.time_spacing, properties=L.properties)


# -- writing --------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(_text(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (str, int)):  # bool is an int
        return str(value)
    raise TypeError(f"property values must be str, int, float, bool or a list/tuple of them, "
                    f"not {type(value).__name__}")


def _header_text(path: str, what: str, text: str) -> str:
    if "\r" in text:
        raise UnsupportedFormatError(f"{path}: {what} holds a carriage return, which a NRRD "
                                     "header line cannot hold")
    if "\0" in text:  # the reader refuses a header line with a NUL, as teem does
        raise UnsupportedFormatError(f"{path}: {what} holds a NUL character, which a NRRD "
                                     "header line cannot hold")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsupportedFormatError(f"{path}: {what} is not valid UTF-8 text") from None
    return text


def _fit_frame(text: str, dim: int) -> list | None:
    """Measurement frame vectors resized to ``dim`` (identity where added); None if impossible."""
    try:
        n = len(re.findall(r"\(", text))
        vectors = _vector_list("", "", text, n, n)
    except CorruptFileError:
        return None
    if n == 0 or any(v is None for v in vectors):
        return None
    if n <= dim:
        return [v + [0.0] * (dim - n) for v in vectors] + \
            [[1.0 if r == c else 0.0 for r in range(dim)] for c in range(n, dim)]
    for c, v in enumerate(vectors):
        tail = v[dim:] if c < dim else [x for r, x in enumerate(v) if r != c]
        if any(tail) or (c >= dim and v[c] != 1.0):
            return None
    return [v[:dim] for v in vectors[:dim]]


def _component_kind(props: dict, channels: int, component: np.dtype) -> str:
    wanted = str(props.get("nrrd.kinds", "")).split()[:1]
    kind = _KINDS.get(wanted[0].lower()) if wanted else None
    if kind and kind not in _DOMAIN_KINDS and kind not in ("time", "complex") and \
            _KIND_SIZE[kind] in (None, channels):
        return kind
    if component == np.uint8 and channels in (3, 4):
        return "RGB-color" if channels == 3 else "RGBA-color"
    return "vector"


def _field_line(path: str, key: str, field: str, text: str, ndim_written: int,
                space_dim: int) -> str | None:
    """The header line of a ``nrrd.<field>`` property; None when it no longer fits the image."""
    if "\n" in text:
        raise UnsupportedFormatError(f"{path}: property {key!r} holds a line break, which a NRRD "
                                     "field cannot hold")
    _header_text(path, f"property {key!r}", text)
    if field in ("min", "max", "old min", "old max"):
        try:
            float(text)
        except ValueError:
            raise UnsupportedFormatError(f"{path}: property {key!r} is {text!r}; NRRD field "
                                         f"'{field}' must be a number") from None
    if field in _PER_AXIS_PROPS or field == "space units":
        tokens = _axis_tokens(field, text)
        if field == "centers" and any(t.lower() not in ("cell", "node", "???", "none")
                                      for t in tokens):
            raise UnsupportedFormatError(f"{path}: property {key!r} is {text!r}; NRRD centers "
                                         "are 'cell', 'node' or '???'")
        if tokens is None or len(tokens) != (space_dim if field == "space units"
                                             else ndim_written):
            return None  # it described axes this image no longer has
        if field == "space units" and all(
                (_TIME_TO_MS if c == 3 else _LENGTH_TO_MM).get(u.strip().lower()) is not None
                for c, u in enumerate(_quoted(text) or [])):
            # Units the reader converts: the geometry written here is already in mm (and ms),
            # and writing them would scale it again on reading.  Only units mitk cannot
            # convert (kept as this property on reading, the values used as they are) go back.
            return None
    return f"{field}: {text}"


def _property_lines(path: str, props: dict, ndim_written: int, space_dim: int) -> tuple:
    """(field lines, key/value lines) from the properties, validated."""
    fields, pairs = [], []
    for key, value in props.items():
        if not isinstance(key, str):
            raise TypeError(f"property keys must be str, not {type(key).__name__}")
        text = _text(value)
        if key.startswith(("nifti.", "meta.")):
            continue  # another format's fields (SPEC section 6.4)
        if key.startswith("nrrd."):
            field = _canonical_field(key[5:])
            if field in _MODELLED or field in ("kinds", "measurement frame"):
                continue  # written from the image model
            if field in _FIELDS:
                fields.append(_field_line(path, key, field, text, ndim_written, space_dim))
                continue
            # an unknown field goes out as a key/value, which teem-based readers accept
        if not key or ":=" in key or "=" in key or "\n" in key or key.startswith("#") or \
                key.lstrip() != key:
            raise UnsupportedFormatError(
                f"{path}: property key {key!r} cannot be written to NRRD (it is empty, starts "
                "with '#' or a blank, or contains ':=', '=' or a line break)")
        colon = key.find(": ")
        if colon > 0 and _canonical_field(key[:colon]) in _FIELDS:
            raise UnsupportedFormatError(
                f"{path}: property key {key!r} would be read back as the NRRD field "
                f"'{key[:colon]}'; choose a key without ': '")
        _header_text(path, f"property {key!r}", key + text)
        pairs.append(f"{_escape(key)}:={_escape(text)}")
    return fields, pairs


def _data_file_name(path: str, codec: str | None) -> tuple[str, str]:
    """The data file of a ``.nhdr``: its name in the header and its path."""
    base = os.path.basename(path)
    stem = base[: -len(".nhdr")] if base.lower().endswith(".nhdr") else base
    suffix = {None: ".raw", "gzip": ".raw.gz", "bzip2": ".raw.bz2"}[codec]
    name = fresh_data_name(os.path.dirname(os.path.abspath(path)), stem, suffix)
    if "%" in name or "\n" in name or "\r" in name:
        raise UnsupportedFormatError(
            f"{path}: the data file name {name!r} cannot be written in a NRRD header (a name "
            "with '%' reads as a file pattern); choose another name or save as .nrrd")
    _header_text(path, f"the data file name {name!r}", name)
    written = name
    if name.startswith(("LIST", "SKIPLIST")) or name[:1].isspace():
        written = "./" + name  # teem takes any name starting with LIST for a list
    return written, os.path.join(os.path.dirname(path), name)


def write(path: str, array: np.ndarray, info: ImageInfo, *, compression: str | None = None,
          compression_level: int | None = None, **unknown: Any) -> None:
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
    if unknown:
        raise TypeError(f"unknown NRRD write option(s): {', '.join(sorted(unknown))}; accepted: "
                        f"{', '.join(sorted(WRITE_OPTIONS))}")
    if compression is not None and not isinstance(compression, str):
        raise TypeError(f"compression must be a str or None, not {type(compression).__name__}")
    codecs = {None: None, "raw": None, "gzip": "gzip", "bzip2": "bzip2"}
    if compression not in codecs:
        raise ArgumentError(f"compression {compression!r} is not one NRRD writes; use None or "
                            "'raw', 'gzip' or 'bzip2'")
    codec = codecs[compression]
    level = _streams.validate_level(compression_level, codec)

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
        in_plane = (abs(direction[2, 0]) <= 1e-12 and abs(direction[2, 1]) <= 1e-12
                    and abs(origin[2]) <= 1e-12)
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
        written, data_path = _data_file_name(path, codec)
        lines.append(f"data file: {written}")
    lines += pairs
    header = ("\n".join(lines) + ("\n" if detached else "\n\n")).encode("utf-8")

    data = memoryview(array.reshape(-1).view(np.uint8))
    if detached:
        old_data = replaced_data_file(path, _DATA_FILE_LINE, _data_file_family(path))
        with atomic_write(data_path) as f:
            _write_data(f, data, codec, level)
    try:
        with atomic_write(path) as f:
            f.write(header)
            if not detached:
                _write_data(f, data, codec, level)
    except BaseException:
        if detached:  # the new data file is unused: the old pair stays as it was
            discard(data_path)
        raise
    if detached:
        remove_replaced(old_data, data_path)


# The ``data file`` line of an existing header, and the names write() gives data files.
_DATA_FILE_LINE = re.compile(r"\s*data ?file\s*:\s*(.*)$", re.IGNORECASE)


def _data_file_family(path: str) -> re.Pattern:
    base = os.path.basename(path)
    stem = base[: -len(".nhdr")] if base.lower().endswith(".nhdr") else base
    return re.compile(re.escape(stem) + r"(\.[0-9]+)?\.raw(\.gz|\.bz2)?")


def _write_data(f, data: memoryview, codec: str | None, level: int) -> None:
    if codec is None:
        _streams.write_from(f, data)
    else:
        _streams.compress_from(f, data, codec, level)
