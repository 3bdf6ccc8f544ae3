"""NIfTI-1/-2 and Analyze headers: the binary layouts, byte order and version, which files hold
header and data, and the pixel layout ``dim`` and ``datatype`` describe."""

from __future__ import annotations

import os
import zlib
from typing import Any

import numpy as np

from ...errors import CorruptFileError, UnsupportedFormatError
from .. import _codecs

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


def _read_header_bytes(f, path: str, gz: bool) -> bytes:
    """The first 544 bytes of the (decompressed) header file ``f``: enough for either version.

    A gzip stream is inflated only as far as the header, across members (an empty first
    member, or a header split between two, as some tools write); what follows the last member
    and is not one (a newline) is not read here.
    """
    want = _N2.itemsize + 4
    try:
        f.seek(0)
        if not gz:
            return f.read(want)
        d = _codecs.new_decompressor("gzip")
        out = data = b""
        while len(out) < want:
            if d.eof:
                data = d.unused_data
                if len(data) < 2:  # the next member's magic may lie in the next read
                    data += f.read(1 << 16)
                if data[:2] != b"\x1f\x8b":  # the end, or what follows the stream
                    break
                d = _codecs.new_decompressor("gzip")
            data = d.unconsumed_tail or data or f.read(1 << 16)
            if not data:
                break
            out += d.decompress(data, want - len(out))
            data = b""
        return out
    except Exception as exc:
        if isinstance(exc, OSError) and exc.errno:
            raise
        if isinstance(exc, (EOFError, zlib.error, *_codecs.ACCELERATOR_ERRORS)):
            raise CorruptFileError(f"{path}: not a readable gzip stream ({exc})") from None
        raise


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

