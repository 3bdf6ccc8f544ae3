"""MetaImage (MetaIO): ``.mha`` (header and data in one file) and ``.mhd`` (detached data).

Reading: ``NDims`` 1-4 (a 4th dimension is time: its ``ElementSpacing`` is the step duration and
its ``Offset`` the start), ``DimSize``, every ``MET_`` element type (and ``_ARRAY`` variants),
``ElementNumberOfChannels`` (the trailing component axis), ``BinaryDataByteOrderMSB`` /
``ElementByteOrderMSB``, ``CompressedData`` (a zlib stream, checked against
``CompressedDataSize`` and bounded), ``HeaderSize`` (-1: the data are the last bytes of the file),
``ElementDataFile`` as ``LOCAL``, one file, ``LIST [n]`` or a ``%d`` pattern ``min max step``,
``TransformMatrix`` (synonyms ``Rotation``, ``Orientation``: the axis vectors in turn, kept exactly),
``Offset`` (synonyms ``Position``, ``Origin``), ``ElementSpacing`` (else ``ElementSize``).  MetaIO
geometry is LPS (as ITK writes it).  Other fields known to MetaIO are kept as ``meta.<Field>``
properties; any other ``Key = value`` line is a plain property (string).

Writing: ``ElementDataFile = LOCAL`` for ``.mha``; ``.mhd`` writes ``<stem>.raw`` (``.zraw`` when
compressed) beside the header, data first, header last (a kill in between leaves the old header,
which still describes the old data when that had another name, else fails its size check).
``compression="gzip"`` writes zlib ``CompressedData = True``.  complex and float16 cannot be
stored; bool is written as ``MET_UCHAR`` 0/1.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from ..errors import ArgumentError, CorruptFileError, UnsupportedFormatError
from . import _streams
from ._atomic import atomic_write
from ._info import Allocator, ImageInfo

NAME = "MetaImage"
EXTENSIONS = (".mha", ".mhd")
READ_OPTIONS = frozenset({"allow_external_data"})
WRITE_OPTIONS = frozenset({"compression", "compression_level"})

_MAX_HEADER_BYTES = 1 << 20
_TYPES = {
    "MET_CHAR": "int8", "MET_UCHAR": "uint8", "MET_SHORT": "int16", "MET_USHORT": "uint16",
    "MET_INT": "int32", "MET_UINT": "uint32",
    # MetaIO's MET_LONG/MET_ULONG are 32-bit (ITK maps long to MET_INT/MET_LONG by size).
    "MET_LONG": "int32", "MET_ULONG": "uint32",
    "MET_LONG_LONG": "int64", "MET_ULONG_LONG": "uint64",
    "MET_FLOAT": "float32", "MET_DOUBLE": "float64",
}
_WRITE_TYPES = {np.dtype("int8"): "MET_CHAR", np.dtype("uint8"): "MET_UCHAR",
                np.dtype("int16"): "MET_SHORT", np.dtype("uint16"): "MET_USHORT",
                np.dtype("int32"): "MET_INT", np.dtype("uint32"): "MET_UINT",
                np.dtype("int64"): "MET_LONG_LONG", np.dtype("uint64"): "MET_ULONG_LONG",
                np.dtype("float32"): "MET_FLOAT", np.dtype("float64"): "MET_DOUBLE"}
# Fields of MetaIO that the image model holds (not kept as properties).
_MODELLED = {"ObjectType", "NDims", "DimSize", "ElementType", "ElementNumberOfChannels",
             "BinaryData", "BinaryDataByteOrderMSB", "ElementByteOrderMSB", "CompressedData",
             "CompressedDataSize", "HeaderSize", "ElementDataFile", "TransformMatrix", "Rotation",
             "Orientation", "Offset", "Position", "Origin", "ElementSpacing", "ElementSize"}
# Other MetaIO fields: kept as meta.<Field> and written back by MetaImage only.
_KNOWN = {"Comment", "ObjectSubType", "TransformType", "Name", "ID", "ParentID", "Color",
          "AnatomicalOrientation", "CenterOfRotation", "DistanceUnits", "AcquisitionDate",
          "Modality", "SequenceID", "ElementMin", "ElementMax", "ElementNBits",
          "ElementToIntensityFunctionSlope", "ElementToIntensityFunctionOffset", "FormTypeName",
          "ElementSizeValid", "AxesLengths"}


def _fail(path: str, field: str, message: str) -> CorruptFileError:
    return CorruptFileError(f"{path}: MetaImage field '{field}': {message}")


def _read_header(f, path: str) -> tuple[dict, list, int]:
    fields: dict[str, str] = {}
    order: list[str] = []
    total = 0
    while True:
        raw = f.readline(1 << 16)
        total += len(raw)
        if not raw:
            raise CorruptFileError(f"{path}: MetaImage header has no ElementDataFile line")
        if total > _MAX_HEADER_BYTES:
            raise CorruptFileError(f"{path}: MetaImage header is longer than "
                                   f"{_MAX_HEADER_BYTES} bytes")
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise CorruptFileError(f"{path}: MetaImage header line at byte {total - len(raw)} "
                                   "is not text") from None
        if not line:
            continue
        if "=" not in line:
            raise CorruptFileError(f"{path}: MetaImage header line {line[:60]!r} is not "
                                   "'Key = value'")
        key, value = (part.strip() for part in line.split("=", 1))
        if key in fields:
            raise _fail(path, key, "appears twice")
        fields[key] = value
        order.append(key)
        if key == "ElementDataFile":
            return fields, order, total


def _numbers(path: str, fields: dict, key: str, count: int, kind=float) -> list:
    try:
        values = [kind(v) for v in fields[key].split()]
    except ValueError:
        raise _fail(path, key, f"{fields[key]!r} is not a list of numbers") from None
    if len(values) < count:
        raise _fail(path, key, f"has {len(values)} entries, expected {count}")
    return values[:count]


def _bool(path: str, fields: dict, key: str) -> bool:
    value = fields.get(key, "False").lower()
    if value not in ("true", "false", "1", "0"):
        raise _fail(path, key, f"{fields[key]!r} is not True or False")
    return value in ("true", "1")


def read(path: str, allocate: Allocator, *, allow_external_data: bool = False,
         **unknown: Any) -> ImageInfo:
    """Read a MetaImage; see the module docstring and :mod:`mitk.io._info`."""
    if unknown:
        raise TypeError(f"unknown MetaImage read option(s): {', '.join(sorted(unknown))}")
    with open(path, "rb") as f:
        fields, order, header_end = _read_header(f, path)
        list_names = []
        if fields["ElementDataFile"].split()[0:1] == ["LIST"]:
            for raw in f.read(_MAX_HEADER_BYTES).decode("utf-8", "replace").splitlines():
                if raw.strip():
                    list_names.append(raw.strip())
        file_size = os.fstat(f.fileno()).st_size
    if fields.get("ObjectType", "Image") != "Image":
        raise UnsupportedFormatError(f"{path}: MetaImage ObjectType {fields['ObjectType']!r} is "
                                     "not an Image")
    for required in ("NDims", "DimSize", "ElementType"):
        if required not in fields:
            raise _fail(path, required, "is missing")
    try:
        ndims = int(fields["NDims"])
    except ValueError:
        raise _fail(path, "NDims", f"{fields['NDims']!r} is not an integer") from None
    if ndims > 4:
        raise UnsupportedFormatError(f"{path}: MetaImage NDims {ndims}: mitk images have 2 to 4 "
                                     "dimensions")
    if ndims < 1:
        raise _fail(path, "NDims", f"{ndims} is not 1 to 4")
    dims = _numbers(path, fields, "DimSize", ndims, int)
    if any(d < 1 for d in dims):
        raise _fail(path, "DimSize", f"{dims} has a size < 1")
    etype = fields["ElementType"].upper().replace("_ARRAY", "")
    if etype not in _TYPES:
        raise UnsupportedFormatError(f"{path}: MetaImage ElementType {fields['ElementType']!r} "
                                     "is not supported")
    try:
        channels = int(fields.get("ElementNumberOfChannels", "1"))
    except ValueError:
        raise _fail(path, "ElementNumberOfChannels", "is not an integer") from None
    if channels < 1:
        raise _fail(path, "ElementNumberOfChannels", f"{channels} is < 1")
    msb = _bool(path, fields, "BinaryDataByteOrderMSB") or \
        _bool(path, fields, "ElementByteOrderMSB")
    file_dtype = np.dtype(_TYPES[etype]).newbyteorder(">" if msb else "<")
    compressed = _bool(path, fields, "CompressedData")
    if "BinaryData" in fields and not _bool(path, fields, "BinaryData"):
        raise UnsupportedFormatError(f"{path}: MetaImage ASCII data (BinaryData = False) is not "
                                     "supported")

    # Geometry (LPS).
    nsp = min(ndims, 3)
    spacing = [1.0] * 4
    key = "ElementSpacing" if "ElementSpacing" in fields else (
        "ElementSize" if "ElementSize" in fields else None)
    if key:
        spacing[:ndims] = _numbers(path, fields, key, ndims)
    offset = [0.0] * 4
    for key in ("Offset", "Position", "Origin"):
        if key in fields:
            offset[:ndims] = _numbers(path, fields, key, ndims)
            break
    direction = np.eye(3)
    for key in ("TransformMatrix", "Rotation", "Orientation"):
        if key in fields:
            # ndims x ndims, listing the axis vectors in turn; the spatial block is used.
            m = _numbers(path, fields, key, ndims * ndims)
            block = np.array(m, dtype=np.float64).reshape(ndims, ndims).T
            direction[:nsp, :nsp] = block[:nsp, :nsp]
            break
    if not all(math.isfinite(v) for v in spacing[:nsp] + offset[:nsp]) or \
            not np.all(np.isfinite(direction)):
        raise _fail(path, "ElementSpacing/Offset/TransformMatrix", "holds a non-finite value")
    if any(s <= 0 for s in spacing[:nsp]):
        raise _fail(path, "ElementSpacing", f"{spacing[:nsp]} has a value <= 0")
    if abs(np.linalg.det(direction)) <= 1e-12:
        raise _fail(path, "TransformMatrix", "is singular")

    # Shape: 1-D loads as (1, N); 4D keeps time first.
    sizes = list(dims)
    if ndims == 1:
        sizes = [dims[0], 1]
    shape = tuple(reversed(sizes))
    full = shape + ((channels,) if channels > 1 else ())
    nbytes = file_dtype.itemsize * channels
    for d in dims:
        nbytes *= d
    if nbytes > (1 << 62):
        raise _fail(path, "DimSize", f"{dims} declares {nbytes} bytes")

    # Data location.
    data_field = fields["ElementDataFile"]
    base = os.path.dirname(os.path.abspath(path))
    sources: list[str | None]
    if data_field == "LOCAL":
        sources = [None]
    else:
        parts = data_field.split()
        if parts[0] == "LIST":
            names = list_names
        elif len(parts) >= 4 and "%" in parts[0]:
            try:
                lo, hi, step = int(parts[1]), int(parts[2]), int(parts[3])
                if step == 0 or abs(hi - lo) // abs(step) > 100000:
                    raise ValueError
                names = [parts[0] % i for i in range(lo, hi + (1 if step > 0 else -1), step)]
            except (ValueError, TypeError):
                raise _fail(path, "ElementDataFile", f"bad pattern {data_field!r}") from None
        else:
            names = [data_field]
        if not names:
            raise _fail(path, "ElementDataFile", "names no file")
        sources = []
        for n in names:
            full_path = os.path.normpath(os.path.join(base, n))
            if (os.path.isabs(n) or os.path.commonpath([base, full_path]) != base) and \
                    not allow_external_data:
                raise CorruptFileError(
                    f"{path}: MetaImage ElementDataFile {n!r} points outside the header's "
                    "directory; pass allow_external_data=True to read it")
            if not os.path.isfile(full_path):
                raise FileNotFoundError(2, f"MetaImage data file named by header {path} not "
                                        "found", full_path)
            sources.append(full_path)
    per_file = nbytes // len(sources)
    if per_file * len(sources) != nbytes:
        raise _fail(path, "ElementDataFile", f"{len(sources)} files cannot split {nbytes} bytes")
    try:
        header_size = int(fields.get("HeaderSize", "0"))
    except ValueError:
        raise _fail(path, "HeaderSize", "is not an integer") from None
    if header_size < -1:
        raise _fail(path, "HeaderSize", f"{header_size} is negative")
    if compressed and header_size == -1:
        raise _fail(path, "HeaderSize", "-1 is not valid for compressed data")
    # Validate sizes before allocating.
    spans = []
    for src in sources:
        start = header_end if src is None else 0
        size = (file_size if src is None else os.path.getsize(src)) - start
        if header_size > 0:
            start += header_size
            size -= header_size
        if compressed:
            if "CompressedDataSize" in fields and len(sources) == 1:
                try:
                    declared = int(fields["CompressedDataSize"])
                except ValueError:
                    raise _fail(path, "CompressedDataSize", "is not an integer") from None
                if declared < 0 or declared > size:
                    raise _fail(path, "CompressedDataSize", f"{declared} bytes declared, {size} "
                                "present")
            _streams.check_compressed_size(per_file, size, "zlib", path=src or path)
        elif size < per_file:
            raise CorruptFileError(f"{src or path}: MetaImage data is truncated: {per_file} "
                                   f"bytes needed, {max(size, 0)} present")
        spans.append((src or path, start, size))

    out = allocate(file_dtype.newbyteorder("="), full)
    flat = memoryview(out).cast("B")
    for k, (src, start, size) in enumerate(spans):
        piece = flat[k * per_file:(k + 1) * per_file]
        with open(src, "rb", buffering=0) as f:
            if header_size == -1:
                start = start + size - per_file
            f.seek(start)
            if compressed:
                _streams.decompress_into(f, piece, "zlib", path=src)
            else:
                _streams.read_exact_into(f, piece, path=src, what="MetaImage data")
    if not file_dtype.isnative:
        out.byteswap(inplace=True)

    props: dict = {}
    for key in order:
        if key in _MODELLED:
            continue
        props[f"meta.{key}" if key in _KNOWN else key] = fields[key]
    time_origin, time_spacing = 0.0, 1.0
    if ndims == 4:
        time_origin = offset[3]
        time_spacing = spacing[3] if math.isfinite(spacing[3]) and spacing[3] != 0 else 1.0
    return ImageInfo(dtype=out.dtype, shape=shape, channels=channels,
                     spacing=tuple(spacing[:3]) if nsp == 3 else (spacing[0], spacing[1], 1.0),
                     origin=tuple(offset[:3]) if nsp == 3 else (offset[0], offset[1], 0.0),
                     direction=direction, time_origin=float(time_origin),
                     time_spacing=float(abs(time_spacing)), properties=props)


def _value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return str(value)


def write(path: str, array: np.ndarray, info: ImageInfo, *, compression: str | None = None,
          compression_level: int | None = None, **unknown: Any) -> None:
    """Write a MetaImage; see the module docstring and :mod:`mitk.io._info`."""
    if unknown:
        raise TypeError(f"unknown MetaImage write option(s): {', '.join(sorted(unknown))}")
    if compression is not None and not isinstance(compression, str):
        raise TypeError(f"compression must be a str or None, not {type(compression).__name__}")
    if compression not in (None, "raw", "gzip"):
        raise ArgumentError(f"compression {compression!r} is not one MetaImage writes; use "
                            "None/'raw' or 'gzip' (a zlib stream)")
    codec = "zlib" if compression == "gzip" else None
    level = _streams.validate_level(compression_level, codec)
    dtype = np.dtype(info.dtype)
    if dtype == np.bool_:
        dtype = np.dtype(np.uint8)
    if dtype not in _WRITE_TYPES:
        hint = "float32" if dtype.kind == "f" else "two float images (real, imaginary)"
        raise UnsupportedFormatError(f"{path}: MetaImage cannot store pixel type {info.dtype}; "
                                     f"use {hint}, or save as NIfTI")
    ndim = info.ndim
    direction = np.asarray(info.direction, dtype=np.float64)
    if ndim == 2:
        if (abs(direction[2, 0]) > 1e-12 or abs(direction[2, 1]) > 1e-12 or
                abs(direction[0, 2]) > 1e-12 or abs(direction[1, 2]) > 1e-12 or
                abs(info.origin[2]) > 1e-12):
            raise UnsupportedFormatError(f"{path}: a 2D MetaImage cannot hold a geometry that "
                                         "leaves the xy plane; save as NRRD or NIfTI")
    extra = []
    for key, value in info.properties.items():
        if key.startswith(("nrrd.", "nifti.")):
            continue
        name = key[5:] if key.startswith("meta.") else key
        if key.startswith("meta.") and name in _MODELLED:
            continue
        if not name or "=" in name or "\n" in name or name != name.strip() or \
                "\n" in _value(value) or name in _MODELLED:
            raise UnsupportedFormatError(f"{path}: property {key!r} cannot be written as a "
                                         "MetaImage header line")
        extra.append(f"{name} = {_value(value)}")
    nsp = 2 if ndim == 2 else 3
    sizes = list(reversed(info.shape[-nsp:])) + ([info.shape[0]] if ndim == 4 else [])
    spacing = list(info.spacing[:nsp]) + ([info.time_spacing] if ndim == 4 else [])
    offset = list(info.origin[:nsp]) + ([info.time_origin] if ndim == 4 else [])
    nd = len(sizes)
    matrix = np.eye(nd)
    matrix[:nsp, :nsp] = direction[:nsp, :nsp]
    lines = ["ObjectType = Image", f"NDims = {nd}", "BinaryData = True",
             f"BinaryDataByteOrderMSB = {not np.little_endian}",
             f"CompressedData = {codec is not None}"]
    lines.append("TransformMatrix = " + " ".join(repr(float(v)) for v in matrix.T.ravel()))
    lines.append("Offset = " + " ".join(repr(float(v)) for v in offset))
    lines.append("CenterOfRotation = " + " ".join("0" for _ in range(nd)))
    lines.append("ElementSpacing = " + " ".join(repr(float(v)) for v in spacing))
    lines.append("DimSize = " + " ".join(str(s) for s in sizes))
    if info.channels > 1:
        lines.append(f"ElementNumberOfChannels = {info.channels}")
    lines.append(f"ElementType = {_WRITE_TYPES[dtype]}")
    lines = [ln for ln in lines if not any(ln.startswith(f"{e.split(' = ')[0]} =")
                                           for e in extra)] + extra
    data = memoryview(np.ascontiguousarray(array)).cast("B")
    detached = path.lower().endswith(".mhd")
    if detached:
        stem = os.path.basename(path)[:-4]
        data_name = stem + (".zraw" if codec else ".raw")
        with atomic_write(os.path.join(os.path.dirname(path) or ".", data_name)) as f:
            n = _write_data(f, data, codec, level)
        if codec:
            lines.append(f"CompressedDataSize = {n}")
        lines.append(f"ElementDataFile = {data_name}")
        with atomic_write(path) as f:
            f.write(("\n".join(lines) + "\n").encode("utf-8"))
        return
    if codec:
        # The compressed size goes into the header, before the data: compress first.
        import io

        buf = io.BytesIO()
        n = _write_data(buf, data, codec, level)
        lines.append(f"CompressedDataSize = {n}")
        lines.append("ElementDataFile = LOCAL")
        with atomic_write(path) as f:
            f.write(("\n".join(lines) + "\n").encode("utf-8"))
            f.write(buf.getbuffer())
        return
    lines.append("ElementDataFile = LOCAL")
    with atomic_write(path) as f:
        f.write(("\n".join(lines) + "\n").encode("utf-8"))
        _write_data(f, data, None, level)


def _write_data(f, data: memoryview, codec: str | None, level: int) -> int:
    if codec is None:
        _streams.write_from(f, data)
        return len(data)
    return _streams.compress_from(f, data, codec, level)
