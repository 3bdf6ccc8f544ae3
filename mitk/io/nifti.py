"""NIfTI-1 and NIfTI-2: ``.nii``, ``.nii.gz`` and ``.hdr``/``.img`` pairs; Analyze 7.5 ``.hdr``.

Reading
    * The byte order and version come from ``sizeof_hdr`` (348: NIfTI-1 or Analyze, 540: NIfTI-2,
      either byte order).  The magic must be ``n+1``/``n+2`` (header and data in one file) or
      ``ni1``/``ni2`` (a ``.hdr``/``.img`` pair); the NIfTI-2 magic is followed by
      ``\\r\\n\\032\\n`` (zeros are accepted too, anything else means a text-mode transfer
      damaged the file).  A ``.hdr`` without NIfTI magic is Analyze 7.5: no scaling, units,
      qform or sform.
    * ``vox_offset`` is where the data start; extensions between the header and the data are
      skipped without being parsed.  A single file's ``vox_offset`` below the header size is
      corrupt.  Raw data must fit in the file (trailing bytes are ignored); a gzip stream must
      hold exactly the declared bytes.
    * Every datatype code except binary (1), float128 (1536) and complex256 (2048): the integers
      of 8 to 64 bits, float32/64, complex64 (32) and complex128 (1792); RGB24 (128) and RGBA32
      (2304) become uint8 with 3 or 4 channels.
    * ``dim[0]`` must be 1-7 and only ``dim[1..dim[0]]`` count.  ``dim[4]`` is time (``pixdim[4]``
      the step duration, ``toffset`` the start, both converted to ms); ``dim[5] * dim[6] *
      dim[7]`` are components (``dim[5]`` varying fastest), which the file stores as whole volumes
      and the image holds interleaved on its trailing axis.  In a file with components, one time
      step means 3D and, in addition, one slice means 2D (the way ITK writes 2D vector images).
      A 1-D file loads as shape ``(1, N)``.
    * Geometry: the sform when ``sform_code > 0`` and its matrix is finite and non-singular, else
      the qform when ``qform_code > 0`` (``pixdim[0] < 0`` flips the third axis), else the Analyze
      convention (RAS ``diag(-px, py, pz)`` centred on the volume, as nibabel).  Voxel sizes are
      ``|pixdim|`` (0 or not finite: 1), as nibabel and ITK take them.  A bad sform without
      a qform is :class:`~mitk.errors.CorruptFileError`.  RAS becomes LPS with
      ``diag(-1, -1, 1)``; spacing is the column norms and direction the unit columns, so a
      sheared sform is kept exactly.  ``xyzt_units`` convert space to mm and time to ms; a unit
      code mitk does not know (Hz, ppm, rad/s) leaves the values as they are and is kept as
      ``nifti.xyzt_units``.
    * ``apply_scaling=True`` (default): when ``scl_slope`` is finite and non-zero and the pair is
      not the identity, pixels are ``stored * scl_slope + scl_inter`` (``scl_inter`` counts as 0
      when not finite), computed in float64 and returned as float32 for stored types of up to 16
      bits and float32, float64 for wider ones; complex stays complex.  RGB is never scaled.
      ``apply_scaling=False`` returns the stored values and records ``nifti.scl_slope`` and
      ``nifti.scl_inter``.
    * Header fields the image does not model become properties: ``nifti.descrip``,
      ``nifti.aux_file``, ``nifti.intent_name`` (when not empty), ``nifti.qform_code``,
      ``nifti.sform_code`` (always), ``nifti.intent_code``, ``nifti.slice_code``,
      ``nifti.dim_info``, ``nifti.slice_start``, ``nifti.slice_end``, ``nifti.intent_p1/2/3``,
      ``nifti.cal_min``, ``nifti.cal_max``, ``nifti.slice_duration`` (when not zero; in ms, like
      ``pixdim[4]``), and
      ``nifti.version`` (0 for Analyze, 1 or 2).

Memory
    Plain files are read straight into the image buffer.  Scaled files are read into the tail of
    the (wider) output buffer and converted front to back in place, so the only extra memory is a
    2 MiB float64 work chunk.  Raw files with components are read a few component volumes at a
    time (one volume, or 512 Ki elements of volumes if that is more) into a temporary, then
    scattered into the interleaved image (when scaled, plus the same block in float64); gzip files
    with components are decompressed into a temporary of the whole stored payload first, then
    scattered the same way.

Writing
    NIfTI-1, or NIfTI-2 when a size exceeds 32767 or ``nifti_version=2`` (NIfTI-1 stores geometry
    in float32, NIfTI-2 in float64).  The exact affine goes into the sform (``sform_code`` from
    ``nifti.sform_code`` when positive, else 1), and a qform too when the direction is
    orthonormal within 1e-6 (``qform_code`` from ``nifti.qform_code`` when positive, else 1; a
    non-orthonormal direction writes ``qform_code`` 0).  Units are mm and ms.  Scaling is 1/0
    unless ``nifti.scl_slope``/``nifti.scl_inter`` say otherwise; the other ``nifti.*``
    properties above are written back, plain keys are skipped.  bool is written as uint8 0/1,
    uint8 with 3/4 channels as RGB24/RGBA32, other components as ``dim[5]`` (``dim[0] = 5``,
    ``intent_code`` 1007 "vector" unless ``nifti.intent_code`` is set); such a file cannot tell a
    3D image of one slice from a 2D one, or a 4D image of one step from a 3D one, so those load
    back with one dimension less.  float16 cannot be stored.  Unit codes kept in
    ``nifti.xyzt_units`` that mitk does not convert are written back.  ``vox_offset`` is 352
    (NIfTI-1) or 544 (NIfTI-2) with a zero extension flag; pairs get magic ``ni1``/``ni2`` and
    ``vox_offset`` 0.  ``.nii.gz`` is always gzip (``compression_level``,
    default 1); ``.nii`` and pairs are raw.

    Every file appears atomically (:mod:`mitk.io._atomic`).  A pair is written as two temporary
    files, the ``.img`` renamed into place first and the ``.hdr`` right after (its temporary is
    already complete and only needs an fsync); a process killed between the two renames leaves
    the new ``.img`` beside the old ``.hdr``, which fails its size check or describes the wrong
    data.  Writing components interleaved in memory as volumes costs one component volume of
    extra memory; a ``.nii.gz`` with components is compressed by the standard library's gzip
    module (without the optional accelerators), volume by volume.
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

#: The NIfTI-1 header (nifti1.h); Analyze 7.5 shares its size and the fields used for it here.
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
#: The NIfTI-2 header (nifti2.h): 64-bit sizes and double-precision geometry.
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
_N2_SIGNATURE = b"\r\n\x1a\n"  # bytes 4-7 of the NIfTI-2 magic; a text-mode copy changes them

_CODES = {2: "uint8", 4: "int16", 8: "int32", 16: "float32", 32: "complex64", 64: "float64",
          256: "int8", 512: "uint16", 768: "uint32", 1024: "int64", 1280: "uint64",
          1792: "complex128"}
_RGB = {128: 3, 2304: 4}  # RGB24, RGBA32: interleaved uint8 per voxel
_UNSUPPORTED = {1: "binary (1 bit per voxel)", 1536: "float128", 2048: "complex256"}
_CODE_OF = {np.dtype(v): k for k, v in _CODES.items()}
_SPACE_UNITS = {0: 1.0, 1: 1000.0, 2: 1.0, 3: 1e-3}  # unknown (taken as mm), m, mm, micron
_TIME_UNITS = {0: 1.0, 8: 1000.0, 16: 1.0, 24: 1e-3}  # unknown (taken as ms), s, ms, us
_WRITE_UNITS = 2 | 16  # mm and ms, as the image holds them
_LPS = np.diag([-1.0, -1.0, 1.0])  # RAS <-> LPS (its own inverse)
_F32_MAX = float(np.finfo(np.float32).max)
_F32_TINY = float(np.finfo(np.float32).tiny)  # the smallest normal float32
_SCALE_CHUNK = 1 << 18  # elements converted per step when scaling (2 MiB of float64)
_GROUP_ELEMENTS = 1 << 19  # elements of component volumes read per step (at least one volume)
_INTENT_VECTOR = 1007

# Integer header fields kept as properties, with their NIfTI-1 range (NIfTI-2 widens some).
_INT_FIELDS = {"intent_code": (-32768, 32767), "slice_code": (0, 255), "dim_info": (0, 255),
               "slice_start": (-32768, 32767), "slice_end": (-32768, 32767)}
_FLOAT_FIELDS = ("intent_p1", "intent_p2", "intent_p3", "cal_min", "cal_max", "slice_duration")
_TEXT_FIELDS = {"descrip": 80, "aux_file": 24, "intent_name": 16}


# -- reading ----------------------------------------------------------------------------------


def _sibling(path: str, ext: str) -> str:
    """``path`` with its 4-character extension replaced by ``ext`` in the same letter case."""
    stem, old = path[:-4], path[-4:]
    candidate = stem + (ext.upper() if old.isupper() else ext)
    if not os.path.exists(candidate):
        other = stem + (ext if old.isupper() else ext.upper())
        if os.path.exists(other):
            return other
    return candidate


def _paths(path: str) -> tuple[str, str, str]:
    """(header file, data file, kind) with kind ``"nii"``, ``"gz"`` or ``"pair"``."""
    low = path.lower()
    if low.endswith(".img"):
        return _sibling(path, ".hdr"), path, "pair"
    if low.endswith(".hdr"):
        return path, _sibling(path, ".img"), "pair"
    return path, path, ("gz" if low.endswith(".gz") else "nii")


def _read_header_bytes(path: str, gz: bool) -> bytes:
    """The first 544 bytes of the (decompressed) header file: enough for either version."""
    try:
        if gz:
            with gzip.open(path, "rb") as f:
                return f.read(_N2.itemsize + 4)
        with open(path, "rb") as f:
            return f.read(_N2.itemsize + 4)
    except (OSError, EOFError, zlib.error) as exc:
        if isinstance(exc, OSError) and exc.errno:
            raise
        raise CorruptFileError(f"{path}: not a readable gzip stream ({exc})") from None


def _parse_header(raw: bytes, path: str) -> tuple[Any, int, str]:
    """(header record, version 0/1/2, byte order ``"<"`` or ``">"``) of a header's bytes."""
    if len(raw) < 4:
        raise CorruptFileError(f"{path}: NIfTI header is truncated: {len(raw)} of 348 bytes")
    if raw[:2] == b"\x1f\x8b":
        raise CorruptFileError(f"{path}: the file is gzip-compressed; name it .nii.gz")
    for order in ("<", ">"):
        size = int(np.frombuffer(raw[:4], dtype=order + "i4")[0])
        if size not in (348, 540):
            continue
        if len(raw) < size:
            raise CorruptFileError(f"{path}: NIfTI header is truncated: {len(raw)} of {size} "
                                   "bytes")
        if size == 348:
            hdr = np.frombuffer(raw[:348], dtype=_N1.newbyteorder(order))[0]
            magic = raw[344:348]
            if magic in (b"n+1\0", b"ni1\0"):
                return hdr, 1, order
            # A damaged NIfTI magic ('n', '+' or 'i', a digit, NUL) is an error; anything else is
            # Analyze, whose hist.smin occupies these bytes (smin = 110 reads as b'n\0\0\0').
            if magic[:1] == b"n" and magic[1:2] in (b"+", b"i") and magic[3:] == b"\0":
                raise CorruptFileError(f"{path}: NIfTI field 'magic' is {magic!r}; expected "
                                       "'n+1' or 'ni1' in a 348-byte header")
            return hdr, 0, order  # Analyze 7.5
        hdr = np.frombuffer(raw[:540], dtype=_N2.newbyteorder(order))[0]
        magic = raw[4:12]
        if magic[:4] not in (b"n+2\0", b"ni2\0"):
            raise CorruptFileError(f"{path}: NIfTI field 'magic' is {magic[:4]!r}; expected "
                                   "'n+2' or 'ni2' in a 540-byte header")
        if magic[4:] not in (_N2_SIGNATURE, b"\0\0\0\0"):
            raise CorruptFileError(f"{path}: NIfTI-2 field 'magic' ends in {magic[4:]!r}, not "
                                   r"'\r\n\x1a\n' (damaged by a text-mode transfer?)")
        return hdr, 2, order
    found = int(np.frombuffer(raw[:4], dtype="<i4")[0])
    raise CorruptFileError(f"{path}: NIfTI field 'sizeof_hdr' is {found}; expected 348 "
                           "(NIfTI-1/Analyze) or 540 (NIfTI-2) in either byte order")


def _layout(hdr, path: str) -> dict:
    """Shape, channels, stored dtype and byte count from ``dim`` and ``datatype``."""
    dim = [int(v) for v in hdr["dim"]]
    if not 1 <= dim[0] <= 7:
        raise CorruptFileError(f"{path}: NIfTI field 'dim[0]' is {dim[0]}; expected 1 to 7")
    for i in range(1, dim[0] + 1):
        if dim[i] < 1:
            raise CorruptFileError(f"{path}: NIfTI field 'dim[{i}]' is {dim[i]}; expected a "
                                   "size >= 1")
    sizes = dim[1:dim[0] + 1] + [1] * (7 - dim[0])
    nx, ny, nz, nt = sizes[:4]
    comps = sizes[4] * sizes[5] * sizes[6]
    code = int(hdr["datatype"])
    if code in _RGB:
        if comps > 1:
            raise UnsupportedFormatError(f"{path}: NIfTI field 'dim[5..7]' gives {comps} "
                                         "components of RGB pixels; mitk holds one component "
                                         "axis")
        stored = np.dtype(np.uint8)
        channels = _RGB[code]
    elif code in _CODES:
        stored = np.dtype(_CODES[code])
        channels = comps
    elif code in _UNSUPPORTED:
        raise UnsupportedFormatError(f"{path}: NIfTI field 'datatype' is {code} "
                                     f"({_UNSUPPORTED[code]}), which mitk cannot hold")
    else:
        raise UnsupportedFormatError(f"{path}: NIfTI field 'datatype' is {code}, not a known "
                                     f"NIfTI type code ({', '.join(map(str, sorted(_CODES)))}, "
                                     "128, 2304)")
    if dim[0] <= 2:
        shape: tuple = (ny, nx)  # a 1-D file loads as (1, N)
    elif dim[0] <= 4:
        shape = (nz, ny, nx) if dim[0] == 3 else (nt, nz, ny, nx)
    elif nt > 1:
        shape = (nt, nz, ny, nx)
    else:
        shape = (ny, nx) if nz == 1 else (nz, ny, nx)
    voxels = nx * ny * nz * nt
    if voxels * channels * stored.itemsize > 1 << 62:
        raise CorruptFileError(f"{path}: NIfTI field 'dim' declares {voxels * channels} voxels, "
                               "more than any file can hold")
    return {"shape": shape, "channels": channels, "comps": comps, "rgb": code in _RGB,
            "stored": stored, "nbytes": voxels * channels * stored.itemsize,
            "xyz": (nx, ny, nz), "dim0": dim[0]}


def _quaternion_affine(hdr, path: str) -> np.ndarray:
    """RAS affine of the qform (nifti1_io ``quatern_to_mat44``)."""
    b, c, d = (float(hdr[k]) for k in ("quatern_b", "quatern_c", "quatern_d"))
    offset = [float(hdr[k]) for k in ("qoffset_x", "qoffset_y", "qoffset_z")]
    if not all(math.isfinite(v) for v in (b, c, d, *offset)):
        raise CorruptFileError(f"{path}: NIfTI qform (fields 'quatern_b/c/d', 'qoffset_x/y/z') "
                               "is not finite")
    a2 = 1.0 - (b * b + c * c + d * d)
    if a2 < 1e-7:  # a 180 degree rotation: (b, c, d) is renormalised
        n = math.sqrt(b * b + c * c + d * d)
        a, b, c, d = 0.0, b / n, c / n, d / n
    else:
        a = math.sqrt(a2)
    rot = np.array([
        [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
        [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
        [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
    ])
    pixdim = [float(p) for p in hdr["pixdim"]]
    # |pixdim| as nibabel and ITK take it (a negative pixdim breaks the standard; nifti1_io's 1.0
    # for it would silently change the voxel size); 0 or not finite means 1.
    zooms = [abs(p) if p != 0 and math.isfinite(p) else 1.0 for p in pixdim[1:4]]
    if pixdim[0] < 0:  # qfac: a left-handed grid
        zooms[2] = -zooms[2]
    m = np.eye(4)
    m[:3, :3] = rot * zooms
    m[:3, 3] = offset
    return m


def _analyze_affine(hdr, layout: dict) -> np.ndarray:
    """nibabel's convention: RAS ``diag(-px, py, pz)`` with the volume centre at the origin."""
    ndim = layout["dim0"]
    zooms = [1.0, 1.0, 1.0]
    for i in range(min(ndim, 3)):
        p = float(hdr["pixdim"][i + 1])
        zooms[i] = abs(p) if p != 0 and math.isfinite(p) else 1.0  # nibabel takes |pixdim|
    m = np.diag([-zooms[0], zooms[1], zooms[2], 1.0])
    centre = np.array([(n - 1) / 2.0 for n in layout["xyz"]])
    m[:3, 3] = -(m[:3, :3] @ centre)
    return m


def _affine(hdr, version: int, layout: dict, path: str) -> tuple[np.ndarray, str]:
    """RAS affine and its source (``"sform"``, ``"qform"`` or ``"Analyze"``)."""
    if version and int(hdr["sform_code"]) > 0:
        m = np.eye(4)
        m[0], m[1], m[2] = hdr["srow_x"], hdr["srow_y"], hdr["srow_z"]
        norms = float(np.prod(np.linalg.norm(m[:3, :3], axis=0)))
        if np.all(np.isfinite(m)) and abs(np.linalg.det(m[:3, :3])) > 1e-12 * norms > 0:
            return m, "sform"
        if int(hdr["qform_code"]) <= 0:
            raise CorruptFileError(f"{path}: NIfTI sform (fields 'srow_x/y/z') is singular or "
                                   "not finite and there is no qform (qform_code 0) to use "
                                   "instead")
    if version and int(hdr["qform_code"]) > 0:
        return _quaternion_affine(hdr, path), "qform"
    return _analyze_affine(hdr, layout), "Analyze"


def _geometry(hdr, version: int, layout: dict, path: str) -> dict:
    # NIfTI-2 holds doubles up to 1e308: products may overflow, and the result is checked.
    with np.errstate(all="ignore"):
        affine, source = _affine(hdr, version, layout, path)
        axes = _LPS @ affine[:3, :3]
        spacing = np.linalg.norm(axes, axis=0)
        det = abs(np.linalg.det(axes))
        units = int(hdr["xyzt_units"]) if version else 0
        space, time = units & 0x07, units & 0x38
        space_scale = _SPACE_UNITS.get(space, 1.0)
        spacing_mm = spacing * space_scale
        origin_mm = (_LPS @ affine[:3, 3]) * space_scale
        direction = axes / spacing
        ok = (np.all(np.isfinite(spacing_mm)) and np.all(np.isfinite(origin_mm))
              and np.all(spacing_mm > 0) and det > 1e-12 * float(np.prod(spacing)))
    if not ok:
        raise CorruptFileError(f"{path}: NIfTI {source} geometry is singular or not finite")
    time_scale = _TIME_UNITS.get(time, 1.0)
    dt = float(hdr["pixdim"][4]) * time_scale
    t0 = float(hdr["toffset"]) * time_scale if version else 0.0
    return {
        "spacing": tuple(float(s) for s in spacing_mm),
        "origin": tuple(float(o) for o in origin_mm),
        "direction": direction,
        "time_spacing": abs(dt) if math.isfinite(dt) and dt != 0 else 1.0,
        "time_origin": t0 if math.isfinite(t0) else 0.0,
        "units_known": space in _SPACE_UNITS and time in _TIME_UNITS and not units & ~0x3F,
    }


def _text(value: bytes) -> str:
    value = value.split(b"\0", 1)[0]
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _properties(hdr, version: int, units_known: bool) -> dict:
    props: dict = {}
    for key in ("descrip", "aux_file") + (("intent_name",) if version else ()):
        text = _text(bytes(hdr[key]))
        if text:
            props[f"nifti.{key}"] = text
    if version:
        props["nifti.qform_code"] = int(hdr["qform_code"])
        props["nifti.sform_code"] = int(hdr["sform_code"])
        for key in _INT_FIELDS:
            if int(hdr[key]):
                props[f"nifti.{key}"] = int(hdr[key])
        for key in _FLOAT_FIELDS:
            value = float(hdr[key])
            if key == "slice_duration" and units_known:
                # In the units of pixdim[4] (the standard compares the two), so in ms like it:
                # the writer declares ms.
                value *= _TIME_UNITS[int(hdr["xyzt_units"]) & 0x38]
            if value and math.isfinite(value):
                props[f"nifti.{key}"] = value
        if not units_known:
            props["nifti.xyzt_units"] = int(hdr["xyzt_units"])
    props["nifti.version"] = version
    return props


def _scaling(hdr, version: int, rgb: bool) -> tuple[float, float] | None:
    """(slope, inter) when the header asks for scaling, else None."""
    if not version or rgb:
        return None
    slope, inter = float(hdr["scl_slope"]), float(hdr["scl_inter"])
    if not math.isfinite(inter):
        inter = 0.0
    if slope == 0 or not math.isfinite(slope) or (slope == 1 and inter == 0):
        return None
    return slope, inter


def _scaled_dtype(stored: np.dtype) -> np.dtype:
    if stored.kind == "c":
        return stored
    if stored.itemsize <= 2 or stored == np.float32:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _scale_into(out, src, slope: float, inter: float) -> None:
    """``out[i] = src[i] * slope + inter`` for flat arrays, in float64 chunks, front to back.

    ``src`` may lie in the tail of ``out``'s own bytes: an output chunk ending at element ``j``
    ends at or before the start of source element ``j`` because outputs are at least as wide, and
    each source chunk is copied before its output is written.
    """
    work = np.empty(min(src.size, _SCALE_CHUNK),
                    dtype=np.complex128 if out.dtype.kind == "c" else np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow gives inf, as in the file
        for start in range(0, src.size, _SCALE_CHUNK):
            stop = min(start + _SCALE_CHUNK, src.size)
            tmp = work[:stop - start]
            tmp[...] = src[start:stop]
            tmp *= slope
            if inter:
                tmp += inter
            out[start:stop] = tmp


def _store_volumes(out, first: int, block, scaling, shape: tuple) -> None:
    """Scatter component volumes ``first, first + 1, ...`` (rows of ``block``, file order) into
    ``out[..., first:]``, scaling them on the way when asked."""
    src = np.moveaxis(block.reshape((block.shape[0],) + shape), 0, -1)
    if scaling is not None:
        src = src.astype(np.complex128 if out.dtype.kind == "c" else np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            src *= scaling[0]
            if scaling[1]:
                src += scaling[1]
    with np.errstate(over="ignore", invalid="ignore"):
        out[..., first:first + block.shape[0]] = src


def _read_pixels(f, layout: dict, out_dtype: np.dtype, scaling, allocate: Allocator, *,
                 gz: bool, offset: int, data_path: str) -> None:
    shape, channels, comps = layout["shape"], layout["channels"], layout["comps"]
    stored = layout["stored"]  # in the file's byte order
    full = shape + ((channels,) if channels > 1 else ())

    def fill(view: memoryview) -> None:
        if gz:
            _streams.decompress_into(f, view, "gzip", path=data_path, skip=offset)
        else:
            _streams.read_exact_into(f, view, path=data_path, what="NIfTI image data")

    if not gz:
        f.seek(offset)
    out = allocate(out_dtype, full)
    if comps > 1:  # whole component volumes in the file, interleaved in the image
        per = layout["nbytes"] // comps // stored.itemsize
        group = max(1, min(comps, _GROUP_ELEMENTS // per))  # volumes handled per step
        if gz:  # one stream: the whole stored payload first
            volumes = np.empty((comps, per), dtype=stored)
            fill(memoryview(volumes).cast("B"))
            for first in range(0, comps, group):
                _store_volumes(out, first, volumes[first:first + group], scaling, shape)
            return
        block = np.empty((group, per), dtype=stored)
        for first in range(0, comps, group):
            part = block[:min(group, comps - first)]
            fill(memoryview(part).cast("B"))
            _store_volumes(out, first, part, scaling, shape)
        return
    if scaling is None:
        fill(memoryview(out).cast("B"))
        if not stored.isnative:
            out.byteswap(inplace=True)
        return
    # Read the stored values into the tail of the wider output, then widen in place.
    raw = out.reshape(-1).view(np.uint8)
    start = raw.size - layout["nbytes"]
    fill(memoryview(raw[start:]))
    _scale_into(out.reshape(-1), raw[start:].view(stored), *scaling)


def read(path: str, allocate: Allocator, *, apply_scaling: bool = True,
         **unknown: Any) -> ImageInfo:
    """Read a NIfTI-1, NIfTI-2 or Analyze 7.5 image.

    Parameters
    ----------
    path : str
        A ``.nii``, ``.nii.gz``, ``.hdr`` or ``.img`` file (a pair is found from either name).
    allocate : callable
        ``allocate(dtype, shape)`` returning the writable C-contiguous pixel buffer; called once,
        after the whole header has been validated.
    apply_scaling : bool
        Apply ``scl_slope``/``scl_inter`` (see the module docstring).

    Returns
    -------
    ImageInfo
        Geometry in LPS, time in ms, ``nifti.*`` properties.

    Raises
    ------
    FileNotFoundError
        The other file of a pair is missing.
    CorruptFileError
        Bad magic, sizes, offset, geometry, truncated data or a gzip stream of the wrong length.
    UnsupportedFormatError
        A datatype mitk cannot hold, or RGB pixels with extra component dimensions.

    Notes
    -----
    Reads straight into the allocated buffer except as the module docstring says (scaling,
    components).  File reads and decompression release the GIL.
    """
    if unknown:
        raise TypeError(f"unknown NIfTI read option(s): {', '.join(sorted(unknown))}; "
                        "accepted: apply_scaling")
    if not isinstance(apply_scaling, (bool, np.bool_)):
        raise TypeError(f"apply_scaling must be a bool, not {type(apply_scaling).__name__}")
    hdr_path, data_path, kind = _paths(path)
    if not os.path.isfile(hdr_path):
        raise FileNotFoundError(2, f"NIfTI/Analyze header for data file {path} not found",
                                hdr_path)
    hdr, version, order = _parse_header(_read_header_bytes(hdr_path, kind == "gz"), hdr_path)
    magic = bytes(hdr["magic"])[:3]
    if kind == "pair":
        if magic in (b"n+1", b"n+2"):  # a single-file header under a .hdr name (nifti1_io)
            data_path, kind = hdr_path, "nii"
    elif version == 0:
        raise CorruptFileError(f"{hdr_path}: NIfTI field 'magic' is missing; a file without "
                               "NIfTI magic is only read as Analyze 7.5 from a .hdr/.img pair")
    elif magic in (b"ni1", b"ni2"):
        raise CorruptFileError(f"{hdr_path}: NIfTI field 'magic' is {magic.decode()!r}, which "
                               "marks a .hdr/.img pair, but the file holds the data itself "
                               "(expected 'n+1' or 'n+2')")
    layout = _layout(hdr, hdr_path)
    offset_value = float(hdr["vox_offset"])
    if not math.isfinite(offset_value) or offset_value < 0 or offset_value >= 2.0 ** 62:
        raise CorruptFileError(f"{hdr_path}: NIfTI field 'vox_offset' is {offset_value}; "
                               "expected a byte offset >= 0")
    offset = int(offset_value)
    if kind != "pair" and offset < hdr.dtype.itemsize:
        raise CorruptFileError(f"{hdr_path}: NIfTI field 'vox_offset' is {offset}, inside the "
                               f"{hdr.dtype.itemsize}-byte header; expected at least "
                               f"{hdr.dtype.itemsize} (normally {hdr.dtype.itemsize + 4})")
    if kind == "pair" and not os.path.isfile(data_path):
        raise FileNotFoundError(2, f"NIfTI/Analyze image data for header {hdr_path} not found",
                                data_path)
    nbytes = layout["nbytes"]
    file_size = os.path.getsize(data_path)
    if kind == "gz":
        _streams.check_compressed_size(offset + nbytes, file_size, "gzip", path=data_path)
    elif file_size < offset + nbytes:
        of = f" (of header {hdr_path})" if data_path != hdr_path else ""
        raise CorruptFileError(f"{data_path}: NIfTI image data{of} is truncated: vox_offset "
                               f"{offset} + {nbytes} bytes of pixels needed, the file has "
                               f"{file_size}")
    geometry = _geometry(hdr, version, layout, hdr_path)
    scaling = _scaling(hdr, version, layout["rgb"])
    props = _properties(hdr, version, geometry["units_known"])
    native = layout["stored"].newbyteorder("=")
    if scaling is not None and not apply_scaling:
        props["nifti.scl_slope"], props["nifti.scl_inter"] = scaling
        scaling = None
    out_dtype = native if scaling is None else _scaled_dtype(native)
    layout["stored"] = layout["stored"].newbyteorder(order)
    with open(data_path, "rb", buffering=0) as f:
        _read_pixels(f, layout, out_dtype, scaling, allocate, gz=kind == "gz", offset=offset,
                     data_path=data_path)
    return ImageInfo(dtype=out_dtype, shape=layout["shape"], channels=layout["channels"],
                     spacing=geometry["spacing"], origin=geometry["origin"],
                     direction=geometry["direction"], time_origin=geometry["time_origin"],
                     time_spacing=geometry["time_spacing"], properties=props)


# -- writing ----------------------------------------------------------------------------------


def _quaternion(rot: np.ndarray) -> tuple[float, float, float, float]:
    """(b, c, d, qfac) of an orthonormal RAS direction (nifti1_io ``mat44_to_quatern``)."""
    qfac = 1.0
    if np.linalg.det(rot) < 0:  # a left-handed grid: flip the third axis, record it in qfac
        qfac = -1.0
        rot = rot * np.array([1.0, 1.0, -1.0])
    (r11, r12, r13), (r21, r22, r23), (r31, r32, r33) = rot.tolist()
    a = r11 + r22 + r33 + 1.0
    if a > 0.5:
        a = 0.5 * math.sqrt(a)
        b, c, d = 0.25 * (r32 - r23) / a, 0.25 * (r13 - r31) / a, 0.25 * (r21 - r12) / a
    else:
        xd, yd, zd = 1.0 + r11 - (r22 + r33), 1.0 + r22 - (r11 + r33), 1.0 + r33 - (r11 + r22)
        if xd > 1.0:
            b = 0.5 * math.sqrt(xd)
            c, d, a = 0.25 * (r12 + r21) / b, 0.25 * (r13 + r31) / b, 0.25 * (r32 - r23) / b
        elif yd > 1.0:
            c = 0.5 * math.sqrt(yd)
            b, d, a = 0.25 * (r12 + r21) / c, 0.25 * (r23 + r32) / c, 0.25 * (r13 - r31) / c
        else:
            d = 0.5 * math.sqrt(zd)
            b, c, a = 0.25 * (r13 + r31) / d, 0.25 * (r23 + r32) / d, 0.25 * (r21 - r12) / d
        if a < 0:
            b, c, d = -b, -c, -d
    return b, c, d, qfac


def _check_options(path: str, kind: str, compression, compression_level,
                   nifti_version) -> tuple[int, int | None]:
    """(gzip level, requested version) after validating the write options."""
    if compression is not None and not isinstance(compression, str):
        raise TypeError(f"compression must be a str or None, not {type(compression).__name__}")
    if compression not in (None, "raw", "gzip"):
        raise ArgumentError(f"compression {compression!r} is not one NIfTI writes; .nii and "
                            ".hdr/.img are raw, .nii.gz is gzip")
    if compression == "gzip" and kind != "gz":
        raise ArgumentError(f"{path}: compression='gzip' needs the extension .nii.gz "
                            "(.nii and .hdr/.img files are raw)")
    if compression == "raw" and kind == "gz":
        raise ArgumentError(f"{path}: a .nii.gz file is always gzip-compressed; use .nii for raw")
    level = _streams.validate_level(compression_level, "gzip" if kind == "gz" else None)
    if nifti_version is not None:
        if isinstance(nifti_version, bool) or not isinstance(nifti_version, int):
            raise TypeError(f"nifti_version must be None, 1 or 2, not "
                            f"{type(nifti_version).__name__}")
        if nifti_version not in (1, 2):
            raise ArgumentError(f"nifti_version must be None, 1 or 2, got {nifti_version}")
    return level, nifti_version


def _prop_int(path: str, props: dict, key: str, lo: int, hi: int) -> int | None:
    if f"nifti.{key}" not in props:
        return None
    value = props[f"nifti.{key}"]
    number = None
    if isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            pass
    if number is None or not lo <= number <= hi:
        raise UnsupportedFormatError(f"{path}: property nifti.{key} is {value!r}; NIfTI needs an "
                                     f"integer from {lo} to {hi}")
    return number


def _prop_float(path: str, props: dict, key: str, version: int) -> float | None:
    if f"nifti.{key}" not in props:
        return None
    value = props[f"nifti.{key}"]
    number = None
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            number = float(value)
        except (ValueError, OverflowError):  # not a number; an int beyond any float
            pass
    if number is None or (version == 1 and math.isfinite(number) and abs(number) > _F32_MAX):
        raise UnsupportedFormatError(f"{path}: property nifti.{key} is {value!r}; NIfTI-"
                                     f"{version} needs a number"
                                     + (" that fits float32" if version == 1 else ""))
    return number


def _prop_text(path: str, props: dict, key: str, size: int) -> bytes | None:
    if f"nifti.{key}" not in props:
        return None
    value = props[f"nifti.{key}"]
    text = value if isinstance(value, str) else str(value)
    data = _encoded(text, "utf-8")
    if data is None or len(data) > size:
        # What the reader decoded as latin-1 (bytes that are not UTF-8) goes back as it came.
        alt = _encoded(text, "latin-1")
        if alt is not None and len(alt) <= size and _encoded_as(alt, "utf-8") is None:
            data = alt
    if data is None or len(data) > size or b"\0" in data:
        got = "text that cannot be encoded" if data is None else f"{len(data)} bytes"
        raise UnsupportedFormatError(f"{path}: property nifti.{key} must be text of at most "
                                     f"{size} UTF-8 bytes without NUL characters; got {got}")
    return data  # a field filled to its width has no NUL, as the standard allows


def _encoded(text: str, encoding: str) -> bytes | None:
    try:
        return text.encode(encoding)
    except UnicodeEncodeError:
        return None


def _encoded_as(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _unsupported_type(path: str, dtype: np.dtype) -> UnsupportedFormatError:
    hint = {"f": "float32" if dtype.itemsize <= 4 else "float64", "c": "complex128"}
    suggestion = hint.get(dtype.kind, "one of " + ", ".join(str(t) for t in _CODE_OF))
    return UnsupportedFormatError(f"{path}: NIfTI cannot store pixel type {dtype}; convert to "
                                  f"{suggestion} first")


def _header(path: str, info: ImageInfo, kind: str, requested: int | None) -> bytes:
    """The complete header (with the 4-byte extension flag), validated; raises before writing."""
    dtype = np.dtype(info.dtype)
    if dtype == np.bool_:
        dtype = np.dtype(np.uint8)
    if dtype not in _CODE_OF:
        raise _unsupported_type(path, dtype)
    channels, shape, ndim = info.channels, tuple(info.shape), info.ndim
    rgb = dtype == np.uint8 and channels in (3, 4)
    xyzt = list(reversed(shape)) + [1] * (4 - ndim)
    comps = 1 if rgb else channels
    dims = ([5] + xyzt + [comps, 1, 1]) if comps > 1 else ([ndim] + xyzt + [1, 1, 1])
    big = max(dims[1:]) > 32767
    if requested == 1 and big:
        raise UnsupportedFormatError(f"{path}: a size of {max(dims[1:])} exceeds the 32767 of "
                                     "NIfTI-1; use NIfTI-2 (nifti_version=2 or None)")
    version = requested or (2 if big else 1)
    props = info.properties

    spacing = np.asarray(info.spacing, dtype=np.float64)
    direction = np.asarray(info.direction, dtype=np.float64)
    axes = _LPS @ (direction * spacing)
    origin = _LPS @ np.asarray(info.origin, dtype=np.float64)
    time_spacing = float(info.time_spacing) if ndim == 4 else 0.0
    time_origin = float(info.time_origin) if ndim == 4 else 0.0
    if version == 1:
        values = np.concatenate([axes.ravel(), origin, spacing, [time_spacing, time_origin]])
        # Beyond float32; or a spacing or time step so small that float32 makes it 0 or a
        # subnormal (1e-46 would be stored as 0 and read back as 1).  Other tiny values (rounding
        # noise in a direction) may flush to 0 harmlessly.
        steps = np.abs(np.append(spacing, time_spacing))
        if not (np.all(np.abs(values) <= _F32_MAX)
                and np.all((steps == 0) | (steps >= _F32_TINY))):
            raise UnsupportedFormatError(f"{path}: the geometry or time values do not fit the "
                                         "float32 fields of NIfTI-1; use nifti_version=2")
    orthonormal = np.allclose(direction.T @ direction, np.eye(3), rtol=0, atol=1e-6)

    hdr = np.zeros((), dtype=_N1 if version == 1 else _N2)
    pair = kind == "pair"
    hdr["sizeof_hdr"] = hdr.dtype.itemsize
    if version == 1:
        hdr["magic"] = b"ni1" if pair else b"n+1"
        hdr["regular"] = b"r"
    else:
        hdr["magic"] = (b"ni2\0" if pair else b"n+2\0") + _N2_SIGNATURE
    hdr["dim"] = dims
    hdr["datatype"] = (128 if channels == 3 else 2304) if rgb else _CODE_OF[dtype]
    hdr["bitpix"] = dtype.itemsize * 8 * (channels if rgb else 1)
    hdr["vox_offset"] = 0 if pair else hdr.dtype.itemsize + 4
    hdr["xyzt_units"] = _WRITE_UNITS
    units = _prop_int(path, props, "xyzt_units", 0, 255)
    if units is not None:  # codes mitk does not convert stay as the file had them
        space, time = units & 0x07, units & 0x38
        hdr["xyzt_units"] = ((space if space not in _SPACE_UNITS else 2)
                             | (time if time not in _TIME_UNITS else 16))
    hdr["toffset"] = time_origin
    slope = _prop_float(path, props, "scl_slope", version)
    inter = _prop_float(path, props, "scl_inter", version)
    hdr["scl_slope"] = 1.0 if slope is None else slope
    hdr["scl_inter"] = 0.0 if inter is None else inter
    wide = version == 2
    for key, (lo, hi) in _INT_FIELDS.items():
        if wide and hi == 32767:
            lo, hi = (-(1 << 31), (1 << 31) - 1) if key == "intent_code" else (-(1 << 63),
                                                                               (1 << 63) - 1)
        value = _prop_int(path, props, key, lo, hi)
        if value is not None:
            hdr[key] = value
    if comps > 1 and "nifti.intent_code" not in props:
        hdr["intent_code"] = _INTENT_VECTOR
    for key in _FLOAT_FIELDS:
        value = _prop_float(path, props, key, version)
        if value is not None:
            hdr[key] = value
    for key, size in _TEXT_FIELDS.items():
        text = _prop_text(path, props, key, size)
        if text is not None:
            hdr[key] = text
    code_max = 32767 if version == 1 else (1 << 31) - 1
    sform_code = _prop_int(path, props, "sform_code", -code_max - 1, code_max)
    hdr["sform_code"] = sform_code if sform_code and sform_code > 0 else 1
    hdr["srow_x"], hdr["srow_y"], hdr["srow_z"] = (list(axes[i]) + [origin[i]] for i in range(3))
    qfac = 1.0
    qform_code = _prop_int(path, props, "qform_code", -code_max - 1, code_max)
    if orthonormal:
        b, c, d, qfac = _quaternion(_LPS @ direction)
        hdr["qform_code"] = qform_code if qform_code and qform_code > 0 else 1
        hdr["quatern_b"], hdr["quatern_c"], hdr["quatern_d"] = b, c, d
        hdr["qoffset_x"], hdr["qoffset_y"], hdr["qoffset_z"] = origin
    hdr["pixdim"] = [qfac, spacing[0], spacing[1], spacing[2], time_spacing, 0, 0, 0]
    return hdr.tobytes() + b"\0\0\0\0"  # extension flag: none


def _volumes(array: np.ndarray, comps: int):
    """Byte views of the data in file order, one component volume (a copy) at a time."""
    if comps == 1:
        yield memoryview(array).cast("B")
        return
    for k in range(comps):
        yield memoryview(np.ascontiguousarray(array[..., k])).cast("B")


def write(path: str, array: np.ndarray, info: ImageInfo, *, compression: str | None = None,
          compression_level: int | None = None, nifti_version: int | None = None,
          **unknown: Any) -> None:
    """Write a NIfTI-1 or NIfTI-2 image (``.nii``, ``.nii.gz`` or a ``.hdr``/``.img`` pair).

    Parameters
    ----------
    path : str
        Target file; ``.hdr`` and ``.img`` both write the pair.
    array : numpy.ndarray
        Read-only, C-contiguous, native order, shape ``info.full_shape``.
    info : ImageInfo
        Pixel type, geometry (LPS), time and properties.
    compression : {None, "raw", "gzip"}
        ``.nii.gz`` is always gzip, ``.nii`` and pairs are always raw; asking otherwise is an
        ArgumentError naming the extension to use.
    compression_level : int, optional
        1-9 for ``.nii.gz`` (default 1).
    nifti_version : {None, 1, 2}
        None writes NIfTI-1 unless a size exceeds 32767.

    Raises
    ------
    UnsupportedFormatError
        float16 (or another type NIfTI lacks), a size NIfTI-1 cannot hold with
        ``nifti_version=1``, geometry beyond float32 in NIfTI-1, or a ``nifti.*`` property that
        does not fit its field.  Raised before any file is created.

    Notes
    -----
    Writes from the array without copying it, except that images with (non-RGB) components are
    converted to whole volumes one component at a time.  Compression and file writes release
    the GIL.  See the module docstring for atomicity and the pair's window.
    """
    if unknown:
        raise TypeError(f"unknown NIfTI write option(s): {', '.join(sorted(unknown))}; "
                        "accepted: compression, compression_level, nifti_version")
    hdr_path, img_path, kind = _paths(path)
    level, requested = _check_options(path, kind, compression, compression_level, nifti_version)
    if tuple(array.shape) != info.full_shape:
        raise ArgumentError(f"{path}: pixel array of shape {array.shape} does not match the "
                            f"image shape {info.full_shape}")
    header = _header(path, info, kind, requested)
    rgb = np.dtype(info.dtype) in (np.uint8, np.bool_) and info.channels in (3, 4)
    comps = 1 if rgb else info.channels
    if kind == "pair":
        # Both temporaries are complete before either rename; the .img is renamed first.
        with atomic_write(hdr_path) as fh:
            fh.write(header)
            with atomic_write(img_path) as fi:
                for part in _volumes(array, comps):
                    _streams.write_from(fi, part)
        return
    with atomic_write(path) as f:
        if kind == "nii":
            f.write(header)
            for part in _volumes(array, comps):
                _streams.write_from(f, part)
        elif comps == 1:
            _streams.compress_from(f, [memoryview(header), memoryview(array).cast("B")],
                                   "gzip", level)
        else:
            # One gzip member fed volume by volume, so only one volume copy exists at a time.
            with gzip.GzipFile(filename="", mode="wb", compresslevel=level, fileobj=f,
                               mtime=0) as gz:
                gz.write(header)
                for part in _volumes(array, comps):
                    for start in range(0, len(part), _streams.CHUNK):
                        gz.write(part[start:start + _streams.CHUNK])
