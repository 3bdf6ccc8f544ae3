"""NRRD's vocabulary: field names, pixel types, encodings, spaces, kinds and units, with every
alias teem accepts, matched without regard to case (see :mod:`mitk.io.nrrd`)."""

from __future__ import annotations

import re

import numpy as np

_MAX_DIM = 16  # teem's NRRD_DIM_MAX
_MAX_BYTES = 1 << 62

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


def _canonical_field(name: str) -> str:
    name = " ".join(name.lower().split())
    return _FIELD_ALIASES.get(name, name)


_ESCAPE = re.compile(r"\\(\\|n)")


def _unescape(text: str) -> str:
    # One pass, so an escaped backslash followed by 'n' stays a backslash and an 'n'.
    return _ESCAPE.sub(lambda m: "\n" if m.group(1) == "n" else "\\", text)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")
