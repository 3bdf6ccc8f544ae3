"""NIfTI writer: NIfTI-1 (or NIfTI-2 when needed) ``.nii``, ``.nii.gz`` or a ``.hdr``/``.img``
pair; see :mod:`mitk.io.nifti` for what is written where."""

from __future__ import annotations

import itertools
import os
from typing import Any

import numpy as np

from ...errors import ArgumentError, UnsupportedFormatError
from .. import _options, _replace, _streams
from .._info import ImageInfo
from ._geometry import _LPS, _SPACE_UNITS, _TIME_UNITS, _quaternion
from ._header import _CODE_OF, _N1, _N2, _N2_SIGNATURE, _paths
from ._properties import (_F32_MAX, _FLOAT_FIELDS, _INT_FIELDS, _TEXT_FIELDS, _prop_float,
                          _prop_int, _prop_text)

WRITE_OPTIONS = frozenset({"compression", "compression_level", "compression_block_size",
                           "nifti_version"})
_WRITE_UNITS = 2 | 16  # mm and ms, as the image holds them
_F32_TINY = float(np.finfo(np.float32).tiny)  # the smallest normal float32
_INTENT_VECTOR = 1007


def _check_options(path: str, kind: str, compression, compression_level,
                   nifti_version) -> tuple[int, int | None]:
    """(gzip level, requested version) after validating the write options."""
    _options.compression("NIfTI", compression, {None: None, "raw": None, "gzip": "gzip"},
                         ".nii and .hdr/.img are raw, .nii.gz is gzip")
    if compression == "gzip" and kind != "gz":
        raise ArgumentError(f"{path}: compression='gzip' needs the extension .nii.gz "
                            "(.nii and .hdr/.img files are raw)")
    if compression == "raw" and kind == "gz":
        raise ArgumentError(f"{path}: a .nii.gz file is always gzip-compressed; use .nii for raw")
    level = _options.compression_level(compression_level, "gzip" if kind == "gz" else None)
    if nifti_version is not None:
        if isinstance(nifti_version, bool) or not isinstance(nifti_version, int):
            raise TypeError(f"nifti_version must be None, 1 or 2, not "
                            f"{type(nifti_version).__name__}")
        if nifti_version not in (1, 2):
            raise ArgumentError(f"nifti_version must be None, 1 or 2, got {nifti_version}")
    return level, nifti_version


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


#: Bytes of one component copied at a time when channels are written as NIfTI's 5th dimension.
_SLAB = 4 << 20


def _volumes(array: np.ndarray, comps: int):
    """Byte views of the data in file order.

    One component is one whole volume in the file (the 5th dimension), while the image holds the
    components of a pixel together: each volume is copied out a slab of rows (about
    :data:`_SLAB` bytes) at a time, so a save holds no more than one slab besides the image.
    """
    if comps == 1:
        yield memoryview(array).cast("B")
        return
    width = array.shape[-2]
    per_slab = max(1, _SLAB // (width * array.dtype.itemsize))
    for k in range(comps):
        rows = array[..., k].reshape(-1, width)  # a view: the image is C-contiguous
        for r0 in range(0, rows.shape[0], per_slab):
            yield memoryview(np.ascontiguousarray(rows[r0:r0 + per_slab])).cast("B")


def write(path: str, array: np.ndarray, info: ImageInfo, *, compression: str | None = None,
          compression_level: int | None = None, nifti_version: int | None = None,
          compression_block_size: int | None = None, **unknown: Any) -> None:
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
    _options.reject_unknown("NIfTI", "write", unknown, WRITE_OPTIONS)
    hdr_path, img_path, kind = _paths(path)
    level, requested = _check_options(path, kind, compression, compression_level, nifti_version)
    block = _options.compression_block_size(compression_block_size,
                                            "gzip" if kind == "gz" else None)
    if tuple(array.shape) != info.full_shape:
        raise ArgumentError(f"{path}: pixel array of shape {array.shape} does not match the "
                            f"image shape {info.full_shape}")
    header = _header(path, info, kind, requested)
    rgb = np.dtype(info.dtype) in (np.uint8, np.bool_) and info.channels in (3, 4)
    comps = 1 if rgb else info.channels
    if kind == "pair":
        # Both temporaries are complete before either rename; the .img is renamed first.  The
        # pair lock keeps mitk's loads from reading between the two renames, and two saves
        # from interleaving theirs (other programs do not take it: see the module docstring).
        hdr_path, img_path = _replace.target_of(hdr_path), _replace.target_of(img_path)
        with _replace.pair_lock(os.path.dirname(os.path.abspath(hdr_path)), exclusive=True):
            with _replace.atomic_write(hdr_path) as fh:
                fh.write(header)
                with _replace.atomic_write(img_path) as fi:
                    for part in _volumes(array, comps):
                        _streams.write_from(fi, part)
        return
    with _replace.atomic_write(path) as f:
        if kind == "nii":
            f.write(header)
            for part in _volumes(array, comps):
                _streams.write_from(f, part)
        else:
            # Component volumes are made a slab at a time as the compression reaches them, so
            # a few slabs exist at once; large payloads get independent blocks and their index.
            _streams.compress_from(f, itertools.chain([memoryview(header)],
                                                      _volumes(array, comps)),
                                   "gzip", level, block=block, total=len(header) + array.nbytes)

