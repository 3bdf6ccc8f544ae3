"""NRRD axes: pixel type, encoding, the role of each axis (space, time, components), the image
shape, and the checks that tie them together (see :mod:`mitk.io.nrrd` for the rules)."""

from __future__ import annotations

import numpy as np

from ...errors import UnsupportedFormatError
from ._geometry import _geometry, _space_units
from ._header import _Header, _fail, _int, _ints, _unsupported, _vector_list
from ._properties import _properties
from ._vocabulary import (_DOMAIN_KINDS, _ENCODINGS, _KIND_SIZE, _KINDS, _MAX_BYTES, _MAX_DIM,
                          _SPACES, _TYPES, _UNKNOWN_KINDS)


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

