"""NRRD: ``.nrrd`` (header and data in one file) and ``.nhdr`` (detached data).

Reading follows the NRRD format page (NRRD0001-NRRD0005): every type and its aliases, encodings
raw, gzip, bzip2 and ascii, ``endian``, ``byte skip`` (including -1 for raw data) and
``line skip``, ``data file`` as one file, a ``LIST`` or a printf-style pattern, ``space`` /
``space dimension`` / ``space directions`` / ``space origin``, ``spacings`` / ``axis mins`` when
there is no space, ``kinds`` (a ``time`` axis is time, a size-2 ``complex`` axis makes a complex
pixel type, any other non-spatial axis is the component axis and moves last), ITK-style 4D
(``space dimension: 4``), and ``key:=value`` pairs (into ``img.properties``).  Every space is
converted to LPS: RAS flips x and y, LAS flips y, scanner-xyz and 3D-right-handed are taken as
they are, and 3D-left-handed flips z (the one axis flip that makes it right-handed).  Header fields
the image does not model are kept as ``nrrd.<field>`` properties and written back.

Writing produces NRRD0005 with ``space: left-posterior-superior`` (``space dimension: 2`` for a 2D
image in the xy plane, ``space dimension: 4`` for 4D, as ITK writes it), components as the first,
fastest axis with ``space directions`` ``none``, raw/gzip/bzip2 encodings, native byte order.  A
``.nhdr`` writes its data to ``<stem>.raw`` (``.raw.gz``, ``.raw.bz2``) beside it: data first, then
the header, each atomically; a kill between the two leaves the new data beside the old header,
which reads as the old image whenever the old data file had another name, and otherwise may fail
the size check (never a silently wrong image).
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

import numpy as np

from ..errors import ArgumentError, CorruptFileError, UnsupportedFormatError
from . import _streams
from ._atomic import atomic_write
from ._info import Allocator, ImageInfo

NAME = "NRRD"
EXTENSIONS = (".nrrd", ".nhdr")
READ_OPTIONS = frozenset({"allow_external_data"})
WRITE_OPTIONS = frozenset({"compression", "compression_level"})

_MAX_HEADER_BYTES = 1 << 20
_MAX_LINE = 1 << 16

_TYPES = {}
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
_WRITE_TYPES = {np.dtype(v): k for k, v in (
    ("int8", "int8"), ("uint8", "uint8"), ("int16", "int16"), ("uint16", "uint16"),
    ("int32", "int32"), ("uint32", "uint32"), ("int64", "int64"), ("uint64", "uint64"),
    ("float", "float32"), ("double", "float64"))}

_ENCODINGS = {"raw": "raw", "gzip": "gzip", "gz": "gzip", "bzip2": "bzip2", "bz2": "bzip2",
              "ascii": "ascii", "text": "ascii", "txt": "ascii"}

# Named spaces: dimension, whether the last component is time, and the flips to LPS.
_SPACES = {
    "right-anterior-superior": (3, False, (-1, -1, 1)), "ras": (3, False, (-1, -1, 1)),
    "left-anterior-superior": (3, False, (1, -1, 1)), "las": (3, False, (1, -1, 1)),
    "left-posterior-superior": (3, False, (1, 1, 1)), "lps": (3, False, (1, 1, 1)),
    "right-anterior-superior-time": (4, True, (-1, -1, 1)), "rast": (4, True, (-1, -1, 1)),
    "left-anterior-superior-time": (4, True, (1, -1, 1)), "last": (4, True, (1, -1, 1)),
    "left-posterior-superior-time": (4, True, (1, 1, 1)), "lpst": (4, True, (1, 1, 1)),
    "scanner-xyz": (3, False, (1, 1, 1)), "scanner-xyz-time": (4, True, (1, 1, 1)),
    "3d-right-handed": (3, False, (1, 1, 1)), "3d-right-handed-time": (4, True, (1, 1, 1)),
    "3d-left-handed": (3, False, (1, 1, -1)), "3d-left-handed-time": (4, True, (1, 1, -1)),
}

_PER_AXIS = ("sizes", "spacings", "thicknesses", "axis mins", "axismins", "axis maxs",
             "axismaxs", "centers", "centerings", "labels", "units", "kinds",
             "space directions")
_SPATIAL_KINDS = {"domain", "space"}
_COMPONENT_KINDS = {"vector", "covariant-vector", "normal", "3-vector", "3-color", "rgb-color",
                    "hsv-color", "xyz-color", "4-vector", "4-color", "rgba-color", "list",
                    "point", "quaternion", "2d-symmetric-matrix", "2d-masked-symmetric-matrix",
                    "2d-matrix", "2d-masked-matrix", "3d-symmetric-matrix",
                    "3d-masked-symmetric-matrix", "3d-matrix", "3d-masked-matrix", "stub",
                    "scalar", "none", "???"}
# Fields written from the image model; nrrd.<field> properties never override them.
_MODELLED = {"type", "dimension", "sizes", "endian", "encoding", "space", "space dimension",
             "space directions", "space origin", "kinds", "data file", "datafile", "byte skip",
             "byteskip", "line skip", "lineskip", "spacings", "axis mins", "axismins",
             "axis maxs", "axismaxs", "space units", "number", "block size", "blocksize"}
_UNITS_TO_MM = {"mm": 1.0, "millimeter": 1.0, "millimeters": 1.0, "m": 1000.0, "meter": 1000.0,
                "meters": 1000.0, "cm": 10.0, "um": 1e-3, "micron": 1e-3, "microns": 1e-3}


def _fail(path: str, field: str, message: str) -> CorruptFileError:
    return CorruptFileError(f"{path}: NRRD field '{field}': {message}")


# -- header -----------------------------------------------------------------------------------


class _Header:
    def __init__(self, path: str) -> None:
        self.path = path
        self.fields: dict[str, str] = {}
        self.keyvalues: dict[str, str] = {}
        self.data_offset = 0
        self.trailing_lines: list[str] = []  # LIST data file names after the header


def _read_header(f, path: str) -> _Header:
    h = _Header(path)
    magic = f.readline(64)
    if not re.match(rb"^NRRD000[1-5]\r?\n$", magic):
        raise CorruptFileError(f"{path}: not a NRRD file (magic {magic[:16]!r}, expected "
                               "'NRRD0001' to 'NRRD0005')")
    total = len(magic)
    list_mode = False
    while True:
        raw = f.readline(_MAX_LINE)
        total += len(raw)
        if total > _MAX_HEADER_BYTES:
            raise CorruptFileError(f"{path}: NRRD header is longer than {_MAX_HEADER_BYTES} bytes")
        if not raw:
            break  # a detached header may end at the end of the file
        if len(raw) == _MAX_LINE and not raw.endswith(b"\n"):
            raise CorruptFileError(f"{path}: NRRD header line at byte {total - len(raw)} is "
                                   f"longer than {_MAX_LINE} bytes")
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise CorruptFileError(f"{path}: NRRD header line at byte {total - len(raw)} is not "
                                   "text") from None
        if list_mode:
            if line.strip():
                h.trailing_lines.append(line.strip())
            continue
        if line == "":
            break
        if line.startswith("#"):
            continue
        if ":=" in line:
            key, value = line.split(":=", 1)
            h.keyvalues[key] = value.replace("\\n", "\n").replace("\\\\", "\\")
            continue
        if ": " not in line:
            raise CorruptFileError(f"{path}: NRRD header line {line[:60]!r} is neither "
                                   "'field: value' nor 'key:=value'")
        field, value = line.split(": ", 1)
        field = field.strip().lower()
        if field in h.fields:
            raise _fail(path, field, "appears twice")
        h.fields[field] = value.strip()
        if field in ("data file", "datafile") and value.strip().upper().startswith("LIST"):
            list_mode = True
    h.data_offset = total
    return h


def _ints(h: _Header, field: str, count: int | None = None) -> list[int]:
    value = h.fields[field]
    try:
        out = [int(v) for v in value.split()]
    except ValueError:
        raise _fail(h.path, field, f"{value!r} is not a list of integers") from None
    if count is not None and len(out) != count:
        raise _fail(h.path, field, f"has {len(out)} entries, expected {count} (the dimension)")
    return out


def _floats(h: _Header, field: str, count: int) -> list[float]:
    value = h.fields[field]
    out = []
    for token in value.split():
        try:
            out.append(float(token))
        except ValueError:
            raise _fail(h.path, field, f"{token!r} is not a number") from None
    if len(out) != count:
        raise _fail(h.path, field, f"has {len(out)} entries, expected {count}")
    return out


def _vector(h: _Header, field: str, token: str, dim: int) -> list[float] | None:
    token = token.strip()
    if token.lower() == "none":
        return None
    if not (token.startswith("(") and token.endswith(")")):
        raise _fail(h.path, field, f"{token!r} is not a vector '(x,y,z)' or 'none'")
    try:
        values = [float(v) for v in token[1:-1].split(",")]
    except ValueError:
        raise _fail(h.path, field, f"{token!r} holds a non-number") from None
    if len(values) != dim:
        raise _fail(h.path, field, f"{token!r} has {len(values)} components, expected {dim} "
                    "(the space dimension)")
    if not all(math.isfinite(v) for v in values):
        raise _fail(h.path, field, f"{token!r} is not finite")
    return values


def _vectors(h: _Header, field: str, dim: int) -> list:
    return [_vector(h, field, t, dim) for t in re.findall(r"\([^)]*\)|none", h.fields[field],
                                                         flags=re.IGNORECASE)]


# -- layout -----------------------------------------------------------------------------------


class _Layout:
    """What the header says, validated: dtype, axes roles, geometry, data location."""


def _parse(h: _Header, allow_external: bool) -> _Layout:
    path, F = h.path, h.fields
    L = _Layout()
    for required in ("type", "dimension", "sizes", "encoding"):
        if required not in F:
            raise _fail(path, required, "is missing")
    tname = " ".join(F["type"].lower().split())
    if tname == "block":
        raise UnsupportedFormatError(f"{path}: NRRD type 'block' is not a pixel type mitk holds")
    if tname not in _TYPES:
        raise UnsupportedFormatError(f"{path}: NRRD field 'type': unknown type {F['type']!r}")
    file_dtype = _TYPES[tname]
    try:
        dim = int(F["dimension"])
    except ValueError:
        raise _fail(path, "dimension", f"{F['dimension']!r} is not an integer") from None
    if not 1 <= dim <= 16:
        raise _fail(path, "dimension", f"{dim} is outside 1..16")
    sizes = _ints(h, "sizes", dim)
    if any(s < 1 for s in sizes):
        raise _fail(path, "sizes", f"{sizes} has a size < 1")
    enc_name = F["encoding"].lower()
    if enc_name not in _ENCODINGS:
        raise UnsupportedFormatError(f"{path}: NRRD field 'encoding': unsupported encoding "
                                     f"{F['encoding']!r} (mitk reads raw, gzip, bzip2, ascii)")
    L.encoding = _ENCODINGS[enc_name]
    if file_dtype.itemsize > 1 and L.encoding != "ascii":
        endian = F.get("endian", "").lower()
        if endian not in ("little", "big"):
            raise _fail(path, "endian", f"must be 'little' or 'big' for {tname} data, got "
                        f"{F.get('endian')!r}")
        file_dtype = file_dtype.newbyteorder("<" if endian == "little" else ">")
    L.file_dtype = file_dtype

    kinds = [k.lower() for k in F["kinds"].split()] if "kinds" in F else [None] * dim
    if len(kinds) != dim:
        raise _fail(path, "kinds", f"has {len(kinds)} entries, expected {dim}")

    # Space.
    space_dim, has_time, flips = 0, False, (1, 1, 1)
    if "space" in F:
        key = F["space"].lower()
        if key not in _SPACES:
            raise UnsupportedFormatError(f"{path}: NRRD field 'space': unknown space "
                                         f"{F['space']!r}")
        space_dim, has_time, flips = _SPACES[key]
        if "space dimension" in F:
            raise _fail(path, "space dimension", "cannot be given together with 'space'")
    elif "space dimension" in F:
        try:
            space_dim = int(F["space dimension"])
        except ValueError:
            raise _fail(path, "space dimension", "is not an integer") from None
        if not 1 <= space_dim <= 4:
            raise UnsupportedFormatError(f"{path}: NRRD 'space dimension' {space_dim} is not "
                                         "1 to 4")
        has_time = space_dim == 4  # ITK writes 4D images this way
    directions = [None] * dim
    if space_dim:
        if "space directions" in F:
            directions = _vectors(h, "space directions", space_dim)
            if len(directions) != dim:
                raise _fail(path, "space directions", f"has {len(directions)} entries, "
                            f"expected {dim}")
    origin_vec = None
    if "space origin" in F:
        if not space_dim:
            raise _fail(path, "space origin", "needs 'space' or 'space dimension'")
        origin_vec = _vector(h, "space origin", F["space origin"], space_dim)
        if origin_vec is None:
            raise _fail(path, "space origin", "cannot be 'none'")

    # Axis roles.
    roles = []
    for i in range(dim):
        k = kinds[i]
        if space_dim:
            if directions[i] is not None:
                vec = directions[i]
                is_time = has_time and space_dim == 4 and all(v == 0 for v in vec[:3])
                roles.append("time" if is_time else "space")
            elif k == "time":
                roles.append("time")
            elif k == "complex" and sizes[i] == 2:
                roles.append("complex")
            elif k in (None, "domain", "space") and sizes[i] > 1 and "space directions" not in F:
                roles.append("space")
            else:
                roles.append("component")
        else:
            if k == "time":
                roles.append("time")
            elif k == "complex" and sizes[i] == 2:
                roles.append("complex")
            elif k is None or k in _SPATIAL_KINDS:
                roles.append("space")
            else:
                roles.append("component")
    spatial = [i for i, r in enumerate(roles) if r == "space"]
    times = [i for i, r in enumerate(roles) if r == "time"]
    comps = [i for i, r in enumerate(roles) if r == "component"]
    cplx = [i for i, r in enumerate(roles) if r == "complex"]
    if len(comps) + len(cplx) > 1 or len(times) > 1:
        raise UnsupportedFormatError(
            f"{path}: NRRD axes with kinds {kinds} have more than one non-spatial axis; mitk "
            "holds one component axis and one time axis")
    if cplx and file_dtype.kind != "f":
        raise UnsupportedFormatError(f"{path}: a 'complex' axis needs float or double data")
    # A fourth spatial domain axis without a space is time (a 4D image).
    if not times and len(spatial) == 4 and not space_dim:
        times = [spatial.pop()]
        roles[times[0]] = "time"
    if len(spatial) > 3:
        raise UnsupportedFormatError(f"{path}: NRRD file has {len(spatial)} spatial axes; mitk "
                                     "images have at most 3 (plus time)")
    if not spatial:
        raise UnsupportedFormatError(f"{path}: NRRD file has no spatial axis")
    L.sizes, L.roles, L.dim = sizes, roles, dim
    L.spatial, L.time_axis = spatial, (times[0] if times else None)
    L.comp_axis = comps[0] if comps else None
    L.complex_axis = cplx[0] if cplx else None
    L.channels = sizes[L.comp_axis] if L.comp_axis is not None else 1
    if L.complex_axis is not None:
        L.dtype = np.dtype("complex64" if file_dtype.itemsize == 4 else "complex128")
    else:
        L.dtype = file_dtype.newbyteorder("=")
    nsp = len(spatial)
    # A 1-D image loads as 2D (1, N); declared dimensions are kept otherwise.
    if nsp == 1:
        L.shape_xyz = [sizes[spatial[0]], 1]
    else:
        L.shape_xyz = [sizes[i] for i in spatial]
    L.ndim = len(L.shape_xyz) + (1 if L.time_axis is not None else 0)
    if L.time_axis is not None and len(L.shape_xyz) == 2:
        L.shape_xyz.append(1)  # 2D + time is held as a 4D image with one slice
        L.ndim = 4

    # Geometry (LPS).
    cols, spacing = [], []
    for i in spatial:
        vec = directions[i] if space_dim else None
        if vec is not None:
            v = np.array(vec[:3] + [0.0] * (3 - min(3, len(vec))), dtype=np.float64)[:3]
            v = v * np.array(flips, dtype=np.float64)
            norm = float(np.linalg.norm(v))
            if norm == 0:
                raise _fail(path, "space directions", f"axis {i} has a zero vector")
            cols.append(v / norm)
            spacing.append(norm)
        else:
            sp = 1.0
            if "spacings" in F:
                s = _floats(h, "spacings", dim)[i]
                sp = abs(s) if math.isfinite(s) and s != 0 else 1.0
            unit = np.zeros(3)
            unit[len(cols)] = 1.0
            cols.append(unit)
            spacing.append(sp)
    while len(cols) < 3:
        if len(cols) == 2:
            c = np.cross(cols[0], cols[1])
            n = float(np.linalg.norm(c))
            cols.append(c / n if n > 0 else np.array([0.0, 0.0, 1.0]))
        else:
            cols.append(np.array([0.0, 1.0, 0.0]))
        spacing.append(1.0)
    direction = np.column_stack(cols)
    if abs(np.linalg.det(direction)) <= 1e-12:
        raise _fail(path, "space directions", "the spatial axes are linearly dependent")
    origin = [0.0, 0.0, 0.0]
    time_origin, time_spacing = 0.0, 1.0
    if origin_vec is not None:
        for k in range(min(3, len(origin_vec))):
            origin[k] = origin_vec[k] * flips[k]
        if space_dim == 4:
            time_origin = origin_vec[3]
    elif "axis mins" in F or "axismins" in F:
        key = "axis mins" if "axis mins" in F else "axismins"
        mins = _floats(h, key, dim)
        for k, i in enumerate(spatial):
            if math.isfinite(mins[i]):
                origin[k] = mins[i]
        if L.time_axis is not None and math.isfinite(mins[L.time_axis]):
            time_origin = mins[L.time_axis]
    if L.time_axis is not None:
        vec = directions[L.time_axis] if space_dim else None
        if vec is not None and space_dim == 4:
            time_spacing = vec[3]
        elif "spacings" in F:
            time_spacing = _floats(h, "spacings", dim)[L.time_axis]
        if not math.isfinite(time_spacing) or time_spacing == 0:
            time_spacing = 1.0
        time_spacing = abs(time_spacing)
    unit_scale = 1.0
    if "space units" in F:
        units = [u.strip('"').lower() for u in re.findall(r'"[^"]*"|\S+', F["space units"])]
        known = [_UNITS_TO_MM.get(u) for u in units[:3]]
        if known and all(k is not None for k in known) and len(set(known)) == 1:
            unit_scale = known[0]
    L.spacing = tuple(float(s) * unit_scale for s in spacing)
    L.origin = tuple(float(o) * unit_scale for o in origin)
    L.direction = direction
    L.time_origin, L.time_spacing = float(time_origin), float(time_spacing)

    # Byte counts (Python ints: no overflow) before anything is allocated.
    total = file_dtype.itemsize
    for s in sizes:
        total *= s
    if total > (1 << 62):
        raise _fail(path, "sizes", f"{sizes} declares {total} bytes, more than can be addressed")
    L.nbytes = total
    L.line_skip = _skip(h, ("line skip", "lineskip"), allow_minus_one=False)
    L.byte_skip = _skip(h, ("byte skip", "byteskip"), allow_minus_one=True)
    if L.byte_skip == -1 and L.encoding != "raw":
        raise _fail(path, "byte skip", "-1 is only valid for raw data")
    L.files = _data_files(h, allow_external)
    return L


def _skip(h: _Header, names: tuple, allow_minus_one: bool) -> int:
    for name in names:
        if name in h.fields:
            try:
                v = int(h.fields[name])
            except ValueError:
                raise _fail(h.path, name, f"{h.fields[name]!r} is not an integer") from None
            if v < 0 and not (allow_minus_one and v == -1):
                raise _fail(h.path, name, f"{v} is negative")
            return v
    return 0


def _data_files(h: _Header, allow_external: bool) -> list[str] | None:
    """Detached data files, resolved and checked; None for attached data."""
    name = h.fields.get("data file", h.fields.get("datafile"))
    if name is None:
        if h.path.lower().endswith(".nhdr"):
            raise _fail(h.path, "data file", "a detached header (.nhdr) needs one")
        return None
    base = os.path.dirname(os.path.abspath(h.path))
    parts = name.split()
    if parts and parts[0].upper() == "LIST":
        names = h.trailing_lines
        if not names:
            raise _fail(h.path, "data file", "LIST names no files")
    elif len(parts) >= 4 and "%" in parts[0]:
        try:
            lo, hi, step = int(parts[1]), int(parts[2]), int(parts[3])
        except ValueError:
            raise _fail(h.path, "data file", f"{name!r}: bad pattern range") from None
        if step == 0 or (hi - lo) / step < 0 or abs((hi - lo) // step) > 100000:
            raise _fail(h.path, "data file", f"{name!r}: bad pattern range")
        try:
            names = [parts[0] % i for i in range(lo, hi + (1 if step > 0 else -1), step)]
        except (TypeError, ValueError):
            raise _fail(h.path, "data file", f"{name!r}: bad printf pattern") from None
    else:
        names = [name]
    resolved = []
    for n in names:
        full = os.path.normpath(os.path.join(base, n))
        inside = os.path.commonpath([base, full]) == base
        if (os.path.isabs(n) or not inside) and not allow_external:
            raise CorruptFileError(
                f"{h.path}: NRRD field 'data file' points outside the header's directory "
                f"({n!r}); pass allow_external_data=True to read it")
        if not os.path.isfile(full):
            raise FileNotFoundError(2, f"NRRD data file named by header {h.path} not found", full)
        resolved.append(full)
    return resolved


# -- reading --------------------------------------------------------------------------------


def _numpy_order(L: _Layout) -> tuple:
    """File-order permutation that gives (t, z, y, x, c); None when the file is already so."""
    order = []  # file axes from slowest to fastest target
    if L.time_axis is not None:
        order.append(L.time_axis)
    order += list(reversed(L.spatial))
    if L.comp_axis is not None:
        order.append(L.comp_axis)
    if L.complex_axis is not None:
        order.append(L.complex_axis)
    return order


def read(path: str, allocate: Allocator, *, allow_external_data: bool = False,
         **unknown: Any) -> ImageInfo:
    """Read a NRRD image; see the module docstring and :mod:`mitk.io._info`."""
    if unknown:
        raise TypeError(f"unknown NRRD read option(s): {', '.join(sorted(unknown))}")
    with open(path, "rb") as f:
        h = _read_header(f, path)
        L = _parse(h, bool(allow_external_data))
        if L.files is None:
            file_size = os.fstat(f.fileno()).st_size
            sources = [(path, h.data_offset, file_size - h.data_offset)]
        else:
            sources = [(p, 0, os.path.getsize(p)) for p in L.files]
    per_file = L.nbytes // len(sources)
    if per_file * len(sources) != L.nbytes:
        raise _fail(path, "data file", f"{len(sources)} files cannot split {L.nbytes} bytes")
    if L.encoding == "raw":
        for src, offset, available in sources:
            need = per_file + (L.byte_skip if L.byte_skip > 0 else 0)
            if available < need and L.line_skip == 0:
                raise CorruptFileError(f"{src}: NRRD raw data is truncated: {need} bytes needed "
                                       f"after byte {offset}, {available} present")
    elif L.encoding in ("gzip", "bzip2"):
        for src, offset, available in sources:
            _streams.check_compressed_size(per_file, available, L.encoding, path=src)

    order = _numpy_order(L)
    file_shape = tuple(reversed(L.sizes))  # NumPy order of the file's own axes
    natural = tuple(L.dim - 1 - a for a in order) == tuple(range(L.dim))
    info_shape = _image_shape(L)
    full = info_shape + ((L.channels,) if L.channels > 1 else ())
    out = allocate(L.dtype, full)
    if natural:
        target = out
    else:  # rare: components not fastest, or time not slowest; read then transpose
        target = np.empty(file_shape, dtype=L.file_dtype.newbyteorder("="))
    flat = memoryview(target).cast("B")
    for k, (src, offset, available) in enumerate(sources):
        piece = flat[k * per_file:(k + 1) * per_file]
        _read_piece(L, src, offset, available, piece)
    if not L.file_dtype.isnative and L.encoding != "ascii":
        target.view(L.file_dtype.newbyteorder("=")).byteswap(inplace=True)
    if not natural:
        perm = tuple(L.dim - 1 - a for a in order)
        data = target.transpose(perm)
        if L.complex_axis is not None:
            data = np.ascontiguousarray(data).view(L.dtype)[..., 0]
        out[...] = data.reshape(full)
    return ImageInfo(dtype=L.dtype, shape=info_shape, channels=L.channels, spacing=L.spacing,
                     origin=L.origin, direction=L.direction, time_origin=L.time_origin,
                     time_spacing=L.time_spacing, properties=_properties(h))


def _image_shape(L: _Layout) -> tuple:
    xyz = list(L.shape_xyz)
    shape = tuple(reversed(xyz)) if len(xyz) == 3 else (xyz[1], xyz[0])
    if L.time_axis is not None:
        shape = (L.sizes[L.time_axis],) + (tuple(reversed(xyz)))
    return shape


def _read_piece(L: _Layout, src: str, offset: int, available: int, out: memoryview) -> None:
    with open(src, "rb", buffering=0 if L.encoding == "raw" and not L.line_skip else -1) as f:
        f.seek(offset)
        for _ in range(L.line_skip):
            if not f.readline(_MAX_HEADER_BYTES):
                raise _fail(src, "line skip", f"the data file has fewer than {L.line_skip} lines")
        if L.encoding == "raw":
            if L.byte_skip == -1:
                end = os.fstat(f.fileno()).st_size
                if end - f.tell() < len(out):
                    raise CorruptFileError(f"{src}: NRRD raw data is truncated: {len(out)} bytes "
                                           f"needed, {end - f.tell()} present")
                f.seek(end - len(out))
            elif L.byte_skip:
                f.seek(L.byte_skip, os.SEEK_CUR)
            _streams.read_exact_into(f, out, path=src, what="NRRD raw data")
        elif L.encoding in ("gzip", "bzip2"):
            _streams.decompress_into(f, out, L.encoding, path=src, skip=L.byte_skip,
                                     allow_trailing=False)
        else:
            if L.byte_skip:
                f.read(L.byte_skip)
            tokens = f.read().split()
            count = len(out) // L.file_dtype.itemsize
            if len(tokens) < count:
                raise CorruptFileError(f"{src}: NRRD ascii data has {len(tokens)} values, "
                                       f"{count} expected")
            native = L.file_dtype.newbyteorder("=")
            try:
                values = np.array(tokens[:count], dtype=np.float64 if native.kind == "f"
                                  else object)
                arr = values.astype(native)
            except (ValueError, OverflowError, TypeError):
                raise CorruptFileError(f"{src}: NRRD ascii data holds a value that is not a "
                                       f"{native}") from None
            np.frombuffer(out, dtype=native)[...] = arr


def _properties(h: _Header) -> dict:
    props: dict = dict(h.keyvalues)
    for field, value in h.fields.items():
        if field not in _MODELLED or field in ("space units", "kinds"):
            props[f"nrrd.{field}"] = value
    return props


# -- writing --------------------------------------------------------------------------------


def _escape(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        value = " ".join(str(v) for v in value)
    return str(value).replace("\\", "\\\\").replace("\n", "\\n")


def _check_properties(path: str, properties: dict) -> list[str]:
    lines = []
    for key, value in properties.items():
        if key.startswith(("nifti.", "meta.")):
            continue
        if key.startswith("nrrd."):
            field = key[5:]
            if field in _MODELLED or field in ("space units",):
                continue
            if "\n" in str(value) or ":" in field or not field:
                raise UnsupportedFormatError(f"{path}: property {key!r} cannot be a NRRD field")
            lines.append(f"{field}: {_escape(value)}")
            continue
        if not key or ":=" in key or "=" in key or "\n" in key or key.startswith("#"):
            raise UnsupportedFormatError(
                f"{path}: property key {key!r} cannot be written to NRRD (empty, or contains "
                "':=', '=' or a newline)")
        lines.append(f"{key}:={_escape(value)}")
    return lines


def _vec(values) -> str:
    return "(" + ",".join(repr(float(v)) for v in values) + ")"


def write(path: str, array: np.ndarray, info: ImageInfo, *, compression: str | None = None,
          compression_level: int | None = None, **unknown: Any) -> None:
    """Write a NRRD image; see the module docstring and :mod:`mitk.io._info`."""
    if unknown:
        raise TypeError(f"unknown NRRD write option(s): {', '.join(sorted(unknown))}")
    if compression is not None and not isinstance(compression, str):
        raise TypeError(f"compression must be a str or None, not {type(compression).__name__}")
    codec = {None: None, "raw": None, "gzip": "gzip", "bzip2": "bzip2"}.get(compression, "?")
    if codec == "?":
        raise ArgumentError(f"compression {compression!r} is not one NRRD writes; use None/'raw', "
                            "'gzip' or 'bzip2'")
    level = _streams.validate_level(compression_level, codec)
    dtype = np.dtype(info.dtype)
    is_complex = dtype.kind == "c"
    if dtype == np.bool_:
        dtype = np.dtype(np.uint8)
    component = np.dtype(f"float{dtype.itemsize * 4}") if is_complex else dtype
    if component not in _WRITE_TYPES:
        raise UnsupportedFormatError(f"{path}: NRRD cannot store pixel type {info.dtype}; "
                                     "convert to float32 first")
    if is_complex and info.channels > 1:
        raise UnsupportedFormatError(f"{path}: NRRD cannot store complex pixels with several "
                                     "channels (two non-spatial axes)")
    props = _check_properties(path, info.properties)
    ndim = info.ndim
    spacing = np.asarray(info.spacing, dtype=np.float64)
    direction = np.asarray(info.direction, dtype=np.float64)
    origin = np.asarray(info.origin, dtype=np.float64)
    shape = info.shape
    xyz = list(reversed(shape[-3:] if ndim >= 3 else shape))
    lines = ["NRRD0005", "# Complete NRRD file format specification at:",
             "# http://teem.sourceforge.net/nrrd/format.html", f"type: {_WRITE_TYPES[component]}"]
    sizes, dirs, kinds = [], [], []
    if is_complex:
        sizes.append(2)
        dirs.append("none")
        kinds.append("complex")
    elif info.channels > 1:
        sizes.append(info.channels)
        dirs.append("none")
        wanted = str(info.properties.get("nrrd.kinds", "")).split()
        kind = wanted[0] if wanted and wanted[0].lower() in _COMPONENT_KINDS else None
        if kind is None:
            kind = {3: "RGB-color", 4: "RGBA-color"}.get(info.channels) \
                if component == np.uint8 else None
        kinds.append(kind or "vector")
    if ndim == 2:
        in_plane = (abs(direction[2, 0]) < 1e-12 and abs(direction[2, 1]) < 1e-12
                    and abs(origin[2]) < 1e-12)
        space_dim = 2 if in_plane else 3
    else:
        space_dim = 4 if ndim == 4 else 3
    axes = direction * spacing  # columns: world vectors of the index axes
    for k, n in enumerate(xyz):
        sizes.append(n)
        v = list(axes[:, k][: min(space_dim, 3)]) + [0.0] * (space_dim - 3 if space_dim == 4
                                                                else 0)
        dirs.append(_vec(v))
        kinds.append("domain")
    if ndim == 4:
        sizes.append(shape[0])
        dirs.append(_vec([0.0, 0.0, 0.0, info.time_spacing]))
        kinds.append("domain")
    lines.append(f"dimension: {len(sizes)}")
    if space_dim == 3:
        lines.append("space: left-posterior-superior")
    else:
        lines.append(f"space dimension: {space_dim}")
    lines.append("sizes: " + " ".join(str(s) for s in sizes))
    lines.append("space directions: " + " ".join(dirs))
    lines.append("kinds: " + " ".join(kinds))
    if component.itemsize > 1:
        lines.append(f"endian: {'little' if np.little_endian else 'big'}")
    lines.append(f"encoding: {codec or 'raw'}")
    org = list(origin[: min(space_dim, 3)]) + ([info.time_origin] if space_dim == 4 else [])
    lines.append(f"space origin: {_vec(org)}")
    lines += props
    data = memoryview(np.ascontiguousarray(array)).cast("B")
    detached = path.lower().endswith(".nhdr")
    if detached:
        stem = os.path.basename(path)[: -len(".nhdr")]
        data_name = stem + {None: ".raw", "gzip": ".raw.gz", "bzip2": ".raw.bz2"}[codec]
        lines.append(f"data file: {data_name}")
        with atomic_write(os.path.join(os.path.dirname(path) or ".", data_name)) as f:
            _write_data(f, data, codec, level)
    header = ("\n".join(lines) + "\n\n").encode("utf-8")
    with atomic_write(path) as f:
        f.write(header)
        if not detached:
            _write_data(f, data, codec, level)


def _write_data(f, data: memoryview, codec: str | None, level: int) -> None:
    if codec is None:
        _streams.write_from(f, data)
    else:
        _streams.compress_from(f, data, codec, level)
