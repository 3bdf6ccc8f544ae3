"""NIfTI-1 and NIfTI-2: ``.nii``, ``.nii.gz`` and ``.hdr``/``.img`` pairs (and Analyze 7.5 ``.hdr``).

Reading: both byte orders (detected from ``sizeof_hdr``), NIfTI-1 and NIfTI-2 headers, every
datatype mitk holds (RGB24/RGBA32 become uint8 with 3/4 channels), ``dim[0]`` 1-7 (only
``dim[1..dim[0]]`` count), ``dim[4]`` as time (``pixdim[4]`` the duration, ``toffset`` the start;
``dim[4] = 1`` in a file with components means 3D), ``dim[5]*dim[6]*dim[7]`` as components (stored
as whole volumes in the file, ``dim[5]`` fastest, moved to the trailing axis: such files are read
into a temporary and interleaved, costing twice the payload in memory), ``xyzt_units`` converted to
mm and ms.  Geometry: the sform if ``sform_code > 0`` (and finite, non-singular), else the qform if
``qform_code > 0``, else the Analyze convention (RAS ``diag(-px, py, pz)`` centred, as nibabel);
RAS becomes LPS with ``diag(-1, -1, 1)``; spacing is the column norms and direction the unit
columns, so a sheared sform is kept exactly.  ``apply_scaling=True`` (default) returns
``stored * scl_slope + scl_inter`` (float32 for stored types up to 16 bits and float32, else
float64) when the slope is finite, non-zero and not the identity; ``False`` keeps stored values and
records ``nifti.scl_slope``/``nifti.scl_inter``.  Other header fields become ``nifti.<field>``
properties.

Writing: NIfTI-1, or NIfTI-2 when a size exceeds 32767 or ``nifti_version=2``; the exact affine in
the sform, a qform only when the direction is orthonormal (within 1e-6); ``.nii.gz`` is always
gzip (``compression_level``, default 1); ``.hdr``/``.img`` pairs write the ``.img`` first.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from typing import Any

import numpy as np

from ..errors import ArgumentError, CorruptFileError, UnsupportedFormatError
from . import _streams
from ._atomic import atomic_write
from ._info import Allocator, ImageInfo

NAME = "NIfTI"
EXTENSIONS = (".nii", ".nii.gz", ".hdr", ".img")
READ_OPTIONS = frozenset({"apply_scaling"})
WRITE_OPTIONS = frozenset({"compression", "compression_level", "nifti_version"})

_N1 = np.dtype([
    ("sizeof_hdr", "i4"), ("data_type", "S10"), ("db_name", "S18"), ("extents", "i4"),
    ("session_error", "i2"), ("regular", "S1"), ("dim_info", "u1"), ("dim", "i2", (8,)),
    ("intent_p1", "f4"), ("intent_p2", "f4"), ("intent_p3", "f4"), ("intent_code", "i2"),
    ("datatype", "i2"), ("bitpix", "i2"), ("slice_start", "i2"), ("pixdim", "f4", (8,)),
    ("vox_offset", "f4"), ("scl_slope", "f4"), ("scl_inter", "f4"), ("slice_end", "i2"),
    ("slice_code", "u1"), ("xyzt_units", "u1"), ("cal_max", "f4"), ("cal_min", "f4"),
    ("slice_duration", "f4"), ("toffset", "f4"), ("glmax", "i4"), ("glmin", "i4"),
    ("descrip", "S80"), ("aux_file", "S24"), ("qform_code", "i2"), ("sform_code", "i2"),
    ("quatern_b", "f4"), ("quatern_c", "f4"), ("quatern_d", "f4"), ("qoffset_x", "f4"),
    ("qoffset_y", "f4"), ("qoffset_z", "f4"), ("srow_x", "f4", (4,)), ("srow_y", "f4", (4,)),
    ("srow_z", "f4", (4,)), ("intent_name", "S16"), ("magic", "S4"),
])
_N2 = np.dtype([
    ("sizeof_hdr", "i4"), ("magic", "S8"), ("datatype", "i2"), ("bitpix", "i2"),
    ("dim", "i8", (8,)), ("intent_p1", "f8"), ("intent_p2", "f8"), ("intent_p3", "f8"),
    ("pixdim", "f8", (8,)), ("vox_offset", "i8"), ("scl_slope", "f8"), ("scl_inter", "f8"),
    ("cal_max", "f8"), ("cal_min", "f8"), ("slice_duration", "f8"), ("toffset", "f8"),
    ("slice_start", "i8"), ("slice_end", "i8"), ("descrip", "S80"), ("aux_file", "S24"),
    ("qform_code", "i4"), ("sform_code", "i4"), ("quatern_b", "f8"), ("quatern_c", "f8"),
    ("quatern_d", "f8"), ("qoffset_x", "f8"), ("qoffset_y", "f8"), ("qoffset_z", "f8"),
    ("srow_x", "f8", (4,)), ("srow_y", "f8", (4,)), ("srow_z", "f8", (4,)),
    ("slice_code", "i4"), ("xyzt_units", "i4"), ("intent_code", "i4"), ("intent_name", "S16"),
    ("dim_info", "u1"), ("unused_str", "S15"),
])
assert _N1.itemsize == 348 and _N2.itemsize == 540

_CODES = {2: "uint8", 4: "int16", 8: "int32", 16: "float32", 32: "complex64", 64: "float64",
          256: "int8", 512: "uint16", 768: "uint32", 1024: "int64", 1280: "uint64",
          1792: "complex128"}
_RGB = {128: 3, 2304: 4}
_CODE_OF = {np.dtype(v): k for k, v in _CODES.items()}
_SPACE_UNITS = {1: 1000.0, 2: 1.0, 3: 1e-3}  # meter, mm, micron -> mm
_TIME_UNITS = {8: 1000.0, 16: 1.0, 24: 1e-3}  # s, ms, us -> ms
_LPS = np.diag([-1.0, -1.0, 1.0])  # RAS <-> LPS


def _text(value: bytes) -> str:
    return value.split(b"\0", 1)[0].decode("latin-1").strip()


def _header_path(path: str) -> tuple[str, str, bool]:
    """(header file, data file, gzipped) for any of the extensions."""
    low = path.lower()
    if low.endswith(".img"):
        hdr = path[:-4] + (".HDR" if path.endswith(".IMG") else ".hdr")
        return hdr, path, False
    if low.endswith(".hdr"):
        img = path[:-4] + (".IMG" if path.endswith(".HDR") else ".img")
        return path, img, False
    return path, path, low.endswith(".gz")


def _read_raw_header(path: str, gz: bool) -> bytes:
    try:
        if gz:
            with gzip.open(path, "rb") as f:
                return f.read(540 + 4)
        with open(path, "rb") as f:
            return f.read(540 + 4)
    except (OSError, EOFError, zlib.error) as exc:
        if isinstance(exc, OSError) and exc.errno:
            raise
        raise CorruptFileError(f"{path}: not a readable gzip stream ({exc})") from None


def _parse_header(raw: bytes, path: str):
    """(header record, version 0/1/2, byte order '<' or '>')."""
    if len(raw) < 348:
        raise CorruptFileError(f"{path}: NIfTI header is truncated ({len(raw)} of 348 bytes)")
    for order in ("<", ">"):
        size = int(np.frombuffer(raw[:4], dtype=order + "i4")[0])
        if size == 348:
            hdr = np.frombuffer(raw[:348], dtype=_N1.newbyteorder(order))[0]
            magic = bytes(hdr["magic"]).rstrip(b"\0")  # NumPy drops trailing NULs anyway
            version = 1 if magic in (b"n+1", b"ni1") else 0
            if version == 0 and magic[:1] == b"n":
                raise CorruptFileError(f"{path}: NIfTI field 'magic': {magic!r} is not "
                                       "'n+1' or 'ni1'")
            return hdr, version, order
        if size == 540:
            if len(raw) < 540:
                raise CorruptFileError(f"{path}: NIfTI-2 header is truncated")
            hdr = np.frombuffer(raw[:540], dtype=_N2.newbyteorder(order))[0]
            magic = bytes(hdr["magic"])
            if magic[:3] not in (b"n+2", b"ni2"):
                raise CorruptFileError(f"{path}: NIfTI field 'magic': {magic!r} is not 'n+2'")
            return hdr, 2, order
    raise CorruptFileError(f"{path}: NIfTI field 'sizeof_hdr' is neither 348 nor 540 in either "
                           "byte order (not a NIfTI/Analyze file)")


def _quaternion_affine(hdr, pixdim) -> np.ndarray:
    b, c, d = (float(hdr[k]) for k in ("quatern_b", "quatern_c", "quatern_d"))
    a2 = 1.0 - (b * b + c * c + d * d)
    if a2 < 1e-7:  # nifti1_io: a = 0 and (b, c, d) renormalised
        n = math.sqrt(b * b + c * c + d * d) or 1.0
        a, b, c, d = 0.0, b / n, c / n, d / n
    else:
        a = math.sqrt(a2)
    r = np.array([
        [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
        [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
        [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
    ])
    qfac = -1.0 if float(pixdim[0]) < 0 else 1.0
    zooms = [abs(float(p)) if float(p) != 0 and math.isfinite(float(p)) else 1.0
             for p in pixdim[1:4]]
    m = np.eye(4)
    m[:3, :3] = r @ np.diag([zooms[0], zooms[1], zooms[2] * qfac])
    m[:3, 3] = [float(hdr["qoffset_x"]), float(hdr["qoffset_y"]), float(hdr["qoffset_z"])]
    return m


def _affine(hdr, version: int, dims: list, path: str) -> tuple[np.ndarray, str]:
    """RAS affine and where it came from ('sform', 'qform', 'analyze')."""
    pixdim = [float(p) for p in hdr["pixdim"]]
    if version and int(hdr["sform_code"]) > 0:
        m = np.eye(4)
        m[0], m[1], m[2] = hdr["srow_x"], hdr["srow_y"], hdr["srow_z"]
        ok = np.all(np.isfinite(m)) and abs(np.linalg.det(m[:3, :3])) > 1e-12 * max(
            float(np.prod(np.linalg.norm(m[:3, :3], axis=0))), 1e-300)
        if ok:
            return m, "sform"
        if int(hdr["qform_code"]) <= 0:
            raise CorruptFileError(f"{path}: NIfTI field 'srow_x/y/z': the sform is singular or "
                                   "not finite and there is no qform to fall back on")
    if version and int(hdr["qform_code"]) > 0:
        m = _quaternion_affine(hdr, pixdim)
        if not np.all(np.isfinite(m)):
            raise CorruptFileError(f"{path}: NIfTI field 'quatern_b/c/d': the qform is not "
                                   "finite")
        return m, "qform"
    zooms = [abs(p) if p != 0 and math.isfinite(p) else 1.0 for p in pixdim[1:4]]
    m = np.diag([-zooms[0], zooms[1], zooms[2], 1.0])
    centre = [(dims[i] - 1) / 2.0 if i < len(dims) else 0.0 for i in range(3)]
    m[:3, 3] = -(m[:3, :3] @ np.array(centre))
    return m, "analyze"


def read(path: str, allocate: Allocator, *, apply_scaling: bool = True,
         **unknown: Any) -> ImageInfo:
    """Read a NIfTI-1/2 or Analyze image; see the module docstring."""
    if unknown:
        raise TypeError(f"unknown NIfTI read option(s): {', '.join(sorted(unknown))}")
    if not isinstance(apply_scaling, bool):
        raise TypeError(f"apply_scaling must be a bool, not {type(apply_scaling).__name__}")
    hdr_path, data_path, gz = _header_path(path)
    if not os.path.isfile(hdr_path):
        raise FileNotFoundError(2, f"NIfTI header for {path} not found", hdr_path)
    if hdr_path != data_path and not os.path.isfile(data_path):
        raise FileNotFoundError(2, f"NIfTI image data for header {hdr_path} not found",
                                data_path)
    hdr, version, order = _parse_header(_read_raw_header(hdr_path, gz), hdr_path)
    dim = [int(v) for v in hdr["dim"]]
    if not 1 <= dim[0] <= 7:
        raise CorruptFileError(f"{hdr_path}: NIfTI field 'dim[0]' is {dim[0]}, expected 1 to 7")
    dims = dim[1:dim[0] + 1]
    if any(d < 1 for d in dims):
        raise CorruptFileError(f"{hdr_path}: NIfTI field 'dim' has a size < 1: {dims}")
    code = int(hdr["datatype"])
    rgb = _RGB.get(code, 0)
    if code not in _CODES and not rgb:
        raise UnsupportedFormatError(f"{hdr_path}: NIfTI datatype {code} is not supported "
                                     "(float128, complex256, binary and unknown codes are not)")
    stored = np.dtype("uint8" if rgb else _CODES[code]).newbyteorder(order)
    full7 = dims + [1] * (7 - len(dims))
    comps = full7[4] * full7[5] * full7[6]
    nx, ny, nz, nt = full7[:4]
    if dim[0] <= 2:
        ndim = 2  # a 1-D file loads as (1, N)
    elif dim[0] <= 4:
        ndim = dim[0]  # the declared dimension is kept (4D with one step stays 4D)
    else:
        # Components: dim[4] = 1 means 3D, and a single slice means 2D (as ITK writes 2D vectors).
        ndim = 4 if nt > 1 else (2 if nz == 1 else 3)
    channels = rgb or comps
    if rgb and comps > 1:
        raise UnsupportedFormatError(f"{hdr_path}: NIfTI RGB data with extra component "
                                     "dimensions is not supported")
    if ndim == 2:
        shape = (ny, nx)
    elif ndim == 3:
        shape = (nz, ny, nx)
    else:
        shape = (nt, nz, ny, nx)
    voxels = nx * ny * nz * nt * comps
    nbytes = voxels * stored.itemsize * (rgb or 1)
    if nbytes > (1 << 62):
        raise CorruptFileError(f"{hdr_path}: NIfTI field 'dim' {dims} declares {nbytes} bytes")
    offset = float(hdr["vox_offset"])
    if not math.isfinite(offset) or offset < 0:
        raise CorruptFileError(f"{hdr_path}: NIfTI field 'vox_offset' is {offset}")
    offset = int(offset)
    if data_path == hdr_path:
        minimum = 352 if version < 2 else 544
        if offset < (348 if version < 2 else 540):
            offset = minimum if version else 0
    file_size = os.path.getsize(data_path)
    if gz:
        _streams.check_compressed_size(offset + nbytes, file_size, "gzip", path=data_path)
    elif file_size < offset + nbytes:
        raise CorruptFileError(f"{data_path}: NIfTI data is truncated: {offset + nbytes} bytes "
                               f"needed (vox_offset {offset} + {nbytes}), {file_size} present")

    # Geometry.
    affine, source = _affine(hdr, version, [nx, ny, nz], hdr_path)
    lps = _LPS @ affine[:3, :3]
    spacing = np.linalg.norm(lps, axis=0)
    if np.any(spacing == 0) or abs(np.linalg.det(lps)) <= 1e-12 * float(np.prod(spacing)):
        raise CorruptFileError(f"{hdr_path}: NIfTI {source} geometry is singular")
    direction = lps / spacing
    origin = _LPS @ affine[:3, 3]
    units = int(hdr["xyzt_units"]) if version else 0
    space_scale = _SPACE_UNITS.get(units & 0x07, 1.0)
    time_scale = _TIME_UNITS.get(units & 0x38, 1.0)
    spacing = spacing * space_scale
    origin = origin * space_scale
    dt = float(hdr["pixdim"][4]) * time_scale
    time_spacing = abs(dt) if math.isfinite(dt) and dt != 0 else 1.0
    t0 = float(hdr["toffset"]) * time_scale if version else 0.0
    time_origin = t0 if math.isfinite(t0) else 0.0

    # Scaling.
    slope, inter = float(hdr["scl_slope"]), float(hdr["scl_inter"])
    scale = (version and math.isfinite(slope) and slope != 0 and math.isfinite(inter)
             and (slope != 1 or inter != 0) and not rgb)
    native = stored.newbyteorder("=")
    if scale and apply_scaling:
        if native.kind == "c":
            out_dtype = native
        elif native.itemsize <= 2 or native == np.float32:
            out_dtype = np.dtype(np.float32)
        else:
            out_dtype = np.dtype(np.float64)
    else:
        out_dtype = native
    full = shape + ((channels,) if channels > 1 else ())
    interleave = comps > 1
    direct = not interleave and out_dtype == native
    target_shape = ((comps,) + shape) if interleave else full
    if direct:
        target = allocate(native, full)
    else:
        target = np.empty(target_shape, dtype=native)
    flat = memoryview(target).cast("B")
    with open(data_path, "rb", buffering=0) as f:
        if gz:
            _streams.decompress_into(f, flat, "gzip", path=data_path, skip=offset)
        else:
            f.seek(offset)
            _streams.read_exact_into(f, flat, path=data_path, what="NIfTI image data")
    if not stored.isnative:
        target.byteswap(inplace=True)
    if not direct:
        out = allocate(out_dtype, full)
        src = np.moveaxis(target, 0, -1) if interleave else target
        if scale and apply_scaling:
            np.multiply(src, slope, out=out, casting="unsafe")
            if inter:
                out += inter
        else:
            out[...] = src
        del target

    props: dict = {}
    if version:
        for key in ("descrip", "aux_file", "intent_name"):
            text = _text(bytes(hdr[key]))
            if text:
                props[f"nifti.{key}"] = text
        for key in ("intent_code", "qform_code", "sform_code", "slice_code", "dim_info",
                    "xyzt_units"):
            props[f"nifti.{key}"] = int(hdr[key])
        for key in ("intent_p1", "intent_p2", "intent_p3", "cal_min", "cal_max",
                    "slice_duration"):
            value = float(hdr[key])
            if value and math.isfinite(value):
                props[f"nifti.{key}"] = value
        if scale and not apply_scaling:
            props["nifti.scl_slope"] = slope
            props["nifti.scl_inter"] = inter
    props["nifti.version"] = version
    return ImageInfo(dtype=out_dtype, shape=shape, channels=channels,
                     spacing=tuple(float(s) for s in spacing),
                     origin=tuple(float(o) for o in origin), direction=direction,
                     time_origin=float(time_origin), time_spacing=float(time_spacing),
                     properties=props)


# -- writing --------------------------------------------------------------------------------


def _quaternion(r: np.ndarray) -> tuple:
    """(b, c, d, qfac) of a rotation (or rotation with a z flip), as nifti1_io mat44_to_quatern."""
    qfac = 1.0
    if np.linalg.det(r) < 0:
        qfac = -1.0
        r = r.copy()
        r[:, 2] = -r[:, 2]
    a = r[0, 0] + r[1, 1] + r[2, 2] + 1.0
    if a > 0.5:
        a = 0.5 * math.sqrt(a)
        b = 0.25 * (r[2, 1] - r[1, 2]) / a
        c = 0.25 * (r[0, 2] - r[2, 0]) / a
        d = 0.25 * (r[1, 0] - r[0, 1]) / a
    else:
        xd = 1.0 + r[0, 0] - (r[1, 1] + r[2, 2])
        yd = 1.0 + r[1, 1] - (r[0, 0] + r[2, 2])
        zd = 1.0 + r[2, 2] - (r[0, 0] + r[1, 1])
        if xd > 1.0:
            b = 0.5 * math.sqrt(xd)
            c = 0.25 * (r[0, 1] + r[1, 0]) / b
            d = 0.25 * (r[0, 2] + r[2, 0]) / b
            a = 0.25 * (r[2, 1] - r[1, 2]) / b
        elif yd > 1.0:
            c = 0.5 * math.sqrt(yd)
            b = 0.25 * (r[0, 1] + r[1, 0]) / c
            d = 0.25 * (r[1, 2] + r[2, 1]) / c
            a = 0.25 * (r[0, 2] - r[2, 0]) / c
        else:
            d = 0.5 * math.sqrt(zd)
            b = 0.25 * (r[0, 2] + r[2, 0]) / d
            c = 0.25 * (r[1, 2] + r[2, 1]) / d
            a = 0.25 * (r[1, 0] - r[0, 1]) / d
        if a < 0:
            b, c, d = -b, -c, -d
    return b, c, d, qfac


def write(path: str, array: np.ndarray, info: ImageInfo, *, compression: str | None = None,
          compression_level: int | None = None, nifti_version: int | None = None,
          **unknown: Any) -> None:
    """Write a NIfTI image; see the module docstring."""
    if unknown:
        raise TypeError(f"unknown NIfTI write option(s): {', '.join(sorted(unknown))}")
    gz = path.lower().endswith(".gz")
    if compression is not None and not isinstance(compression, str):
        raise TypeError(f"compression must be a str or None, not {type(compression).__name__}")
    if compression not in (None, "raw", "gzip"):
        raise ArgumentError(f"compression {compression!r}: NIfTI files are raw (.nii) or gzip "
                            "(.nii.gz)")
    if compression == "gzip" and not gz:
        raise ArgumentError(f"{path}: compression='gzip' needs the extension .nii.gz")
    if compression == "raw" and gz:
        raise ArgumentError(f"{path}: a .nii.gz file is always gzip-compressed")
    level = _streams.validate_level(compression_level, "gzip" if gz else None)
    if nifti_version not in (None, 1, 2) or isinstance(nifti_version, bool):
        raise ArgumentError(f"nifti_version must be None, 1 or 2, got {nifti_version!r}")
    dtype = np.dtype(info.dtype)
    if dtype == np.bool_:
        dtype = np.dtype(np.uint8)
    rgb = dtype == np.uint8 and info.channels in (3, 4)
    if dtype not in _CODE_OF:
        raise UnsupportedFormatError(f"{path}: NIfTI cannot store pixel type {info.dtype}; "
                                     "convert to float32 first")
    ndim, shape, channels = info.ndim, info.shape, info.channels
    if ndim == 2:
        xyzt = [shape[1], shape[0], 1, 1]
    elif ndim == 3:
        xyzt = [shape[2], shape[1], shape[0], 1]
    else:
        xyzt = [shape[3], shape[2], shape[1], shape[0]]
    comps = 1 if rgb else channels
    if comps > 1:
        dims = [5] + xyzt + [comps, 1, 1]
    else:
        dims = [ndim] + xyzt + [1, 1, 1]
    version = nifti_version or (2 if max(dims[1:]) > 32767 else 1)
    if version == 1 and max(dims[1:]) > 32767:
        raise UnsupportedFormatError(f"{path}: a size over 32767 needs NIfTI-2 "
                                     "(nifti_version=2 or None)")
    props = info.properties
    direction = np.asarray(info.direction, dtype=np.float64)
    spacing = np.asarray(info.spacing, dtype=np.float64)
    ras = _LPS @ (direction * spacing)
    ras_origin = _LPS @ np.asarray(info.origin, dtype=np.float64)
    hdr = np.zeros((), dtype=_N1 if version == 1 else _N2)
    pair = path.lower().endswith((".hdr", ".img"))
    hdr["sizeof_hdr"] = 348 if version == 1 else 540
    if version == 1:
        hdr["magic"] = b"ni1\0" if pair else b"n+1\0"
        hdr["regular"] = b"r"
    else:
        hdr["magic"] = (b"ni2\0" if pair else b"n+2\0") + b"\r\n\x1a\n"
    hdr["dim"] = dims
    hdr["datatype"] = 128 if rgb and channels == 3 else 2304 if rgb else _CODE_OF[dtype]
    hdr["bitpix"] = dtype.itemsize * 8 * (channels if rgb else 1)
    orthonormal = np.allclose(direction.T @ direction, np.eye(3), atol=1e-6)
    b, c, d, qfac = _quaternion(_LPS @ direction) if orthonormal else (0.0, 0.0, 0.0, 1.0)
    hdr["pixdim"] = [qfac, spacing[0], spacing[1], spacing[2],
                     info.time_spacing if ndim == 4 else 0.0, 0, 0, 0]
    hdr["vox_offset"] = 0 if pair else (352 if version == 1 else 544)
    hdr["scl_slope"] = float(props.get("nifti.scl_slope", 1.0))
    hdr["scl_inter"] = float(props.get("nifti.scl_inter", 0.0))
    hdr["xyzt_units"] = 2 | 16  # mm and ms, as mitk holds them
    hdr["toffset"] = info.time_origin if ndim == 4 else 0.0
    for key in ("intent_code", "slice_code", "dim_info"):
        if f"nifti.{key}" in props:
            hdr[key] = int(props[f"nifti.{key}"])
    if comps > 1 and "nifti.intent_code" not in props:
        hdr["intent_code"] = 1007  # NIFTI_INTENT_VECTOR
    for key in ("intent_p1", "intent_p2", "intent_p3", "cal_min", "cal_max", "slice_duration"):
        if f"nifti.{key}" in props:
            hdr[key] = float(props[f"nifti.{key}"])
    for key, size in (("descrip", 80), ("aux_file", 24), ("intent_name", 16)):
        if f"nifti.{key}" in props:
            text = str(props[f"nifti.{key}"]).encode("utf-8")
            if len(text) > size - 1:
                raise UnsupportedFormatError(f"{path}: property nifti.{key} is longer than the "
                                             f"{size - 1} bytes NIfTI holds")
            hdr[key] = text
    hdr["sform_code"] = int(props.get("nifti.sform_code", 1)) or 1
    hdr["srow_x"] = list(ras[0]) + [ras_origin[0]]
    hdr["srow_y"] = list(ras[1]) + [ras_origin[1]]
    hdr["srow_z"] = list(ras[2]) + [ras_origin[2]]
    if orthonormal:
        hdr["qform_code"] = int(props.get("nifti.qform_code", 1)) or 1
        hdr["quatern_b"], hdr["quatern_c"], hdr["quatern_d"] = b, c, d
        hdr["qoffset_x"], hdr["qoffset_y"], hdr["qoffset_z"] = ras_origin
    header = hdr.tobytes() + (b"" if pair else b"\0\0\0\0")
    if comps > 1:  # the file holds whole component volumes: component is the slowest axis
        parts = [memoryview(np.ascontiguousarray(array[..., k])).cast("B") for k in range(comps)]
    else:
        parts = [memoryview(np.ascontiguousarray(array)).cast("B")]
    if pair:
        hdr_path, img_path, _ = _header_path(path)
        with atomic_write(img_path) as f:
            for part in parts:
                _streams.write_from(f, part)
        with atomic_write(hdr_path) as f:
            f.write(header)
        return
    with atomic_write(path) as f:
        if gz:
            _streams.compress_from(f, [memoryview(header)] + parts, "gzip", level)
        else:
            f.write(header)
            for part in parts:
                _streams.write_from(f, part)
