"""Fuzz the NRRD, NIfTI and MetaImage readers with mutated real files.

Every input is a seed file with a few deterministic mutations applied, written to a temporary file
with the format's extension and loaded with ``mitk.Image(path)`` in a child process.  An input
passes when it loads, or raises one of the classes the contract documents for reading a file
(:data:`DOCUMENTED`).  Anything else is a *finding*: another exception type leaking out of a
reader (``ValueError``, ``IndexError``, ``struct.error``, ``zlib.error``, ``MemoryError``, ...),
a child that dies (a segfault or abort), or an input that does not finish within the per-input
time bound (a hang).

Why a child process, one input at a time
    The parent writes an input, sends its path to a long-lived worker over a pipe and waits for
    one result line with a timeout.  A crash or hang therefore points at exactly one input, with
    no bisection, and the worker runs under an address-space limit (``RLIMIT_AS``) so that a
    header which makes a reader allocate far more than the file can hold shows up as a leaked
    ``MemoryError`` instead of swapping the machine.

Determinism
    Input ``i`` of a format is derived from ``random.Random(f"{seed}:{format}:{i}")`` alone, so
    any input can be regenerated with ``--replay-index`` without rerunning the ones before it.

Seeds
    Small files written by mitk itself (several pixel types, 2D/3D/4D, components, every encoding
    the writers produce, plus NRRD ``ascii``/``hex`` variants of raw files) and real files shipped
    by installed packages: 3D Slicer NRRD files (``slicerio``), nibabel's NIfTI test data,
    MetaImage files of ``evalutils`` and ``grand_challenge_forge``.  A real file over
    :data:`MAX_SEED_BYTES` is shrunk: its own header with smaller sizes and the first bytes of its
    own decoded data, re-encoded as the header says, so every input loads in milliseconds.

Usage::

    python tests/io/fuzz_formats.py --inputs 100000 --format all --seed 0 \
        --save-crashers crashers/

``atheris`` is not needed: the mutators here know the formats' fields, which a byte-level
coverage-guided fuzzer has to rediscover.  When it is installed, ``--engine atheris --format F``
runs the same mutators as its custom mutator, guided by coverage of the readers (in-process:
libFuzzer then bounds time and memory and stops at the first finding).
"""

from __future__ import annotations

import argparse
import bz2
import collections
import dataclasses
import functools
import glob
import gzip
import importlib.util
import json
import math
import os
import random
import re
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib

__all__ = [
    "DOCUMENTED", "FORMATS", "Seed", "Report", "make_seeds", "mutate", "run", "replay", "main",
]

#: Formats and the extensions their inputs are written with.
FORMATS = {"nrrd": (".nrrd",), "nifti": (".nii", ".nii.gz"), "metaimage": (".mha",)}
#: Exception classes (by name) a reader may raise for a bad file (SPEC sections 7 and 8); a
#: missing detached data file is FileNotFoundError.  Matched by exact class name.
DOCUMENTED = ("CorruptFileError", "UnsupportedFormatError", "FileNotFoundError")
#: Seeds larger than this are shrunk, so that every input loads quickly.
MAX_SEED_BYTES = 256 * 1024
#: Address-space limit of the worker; an allocation beyond it is a finding.
MEMORY_LIMIT = 2 << 30
#: Seconds one input may take before it counts as a hang.
DEFAULT_TIMEOUT = 10.0

_INTERESTING_BYTES = (0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE)


@dataclasses.dataclass(frozen=True)
class Seed:
    """One seed file: ``name`` (for reports), format, extension and bytes."""

    name: str
    fmt: str
    ext: str
    data: bytes


# -- seeds ----------------------------------------------------------------------------------------


def _package_dir(package: str) -> str | None:
    # find_spec locates a package without importing it (evalutils imports pandas, for one).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def _package_files(package: str, patterns: tuple) -> list[str]:
    root = _package_dir(package)
    if root is None:
        return []
    found = set()
    for pattern in patterns:
        found.update(glob.glob(os.path.join(glob.escape(root), pattern), recursive=True))
    return sorted(found)


def _mitk_seeds(workdir: str) -> list[Seed]:
    """Small files written by mitk's own writers."""
    import numpy as np

    import mitk

    rng = np.random.default_rng(1234)
    theta = 0.3
    rot = np.array([[math.cos(theta), -math.sin(theta), 0], [math.sin(theta), math.cos(theta), 0],
                    [0, 0, 1]])
    images = []

    def add(label, arr, channels=None, **geometry):
        img = mitk.Image(arr, channels=channels, **geometry)
        images.append((label, img))

    def rand(dtype, shape):
        dtype = np.dtype(dtype)
        if dtype.kind == "f":
            return rng.standard_normal(shape).astype(dtype) * 100
        if dtype.kind == "c":
            return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
        if dtype.kind == "b":
            return rng.integers(0, 2, shape).astype(bool)
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)

    add("u8-2d", rand("uint8", (5, 7)))
    add("i16-3d", rand("int16", (4, 5, 6)), spacing=(0.5, 0.7, 2.0), origin=(10, -4, 3),
        direction=rot)
    add("f32-3d", rand("float32", (3, 4, 5)), spacing=(1.5, 1.0, 3.0))
    add("f64-4d", rand("float64", (2, 3, 4, 5)))
    add("u16-3d", rand("uint16", (6, 16, 16)), origin=(-100.5, 20, 7))
    add("i32-2d", rand("int32", (9, 4)))
    add("i64-3d", rand("int64", (2, 3, 4)))
    add("u32-3d", rand("uint32", (2, 2, 3)))
    add("i8-2d", rand("int8", (3, 3)))
    add("u64-2d", rand("uint64", (2, 5)))
    add("bool-3d", rand("bool", (2, 3, 4)))
    add("rgb-2d", rand("uint8", (6, 5, 3)), channels=3)
    add("rgba-3d", rand("uint8", (2, 3, 4, 4)), channels=4)
    add("vec2-f32-3d", rand("float32", (2, 3, 4, 2)), channels=2)
    add("vec3-4d", rand("int16", (2, 2, 3, 3, 3)), channels=3)
    add("c64-3d", rand("complex64", (2, 3, 4)))
    add("f16-2d", rand("float16", (4, 4)))
    props = mitk.Image(rand("int16", (3, 4, 5)))
    props.properties.update({"PatientName": "fuzz", "Window": 400, "Level": [40, 2.5]})
    images.append(("props-i16-3d", props))

    writes = {
        "nrrd": [(".nrrd", {}), (".nrrd", {"compression": "gzip"}),
                 (".nrrd", {"compression": "bzip2"})],
        "nifti": [(".nii", {}), (".nii.gz", {}), (".nii", {"nifti_version": 2}),
                  (".nii.gz", {"nifti_version": 2})],
        "metaimage": [(".mha", {}), (".mha", {"compression": "gzip"})],
    }
    seeds = []
    for fmt, variants in writes.items():
        for label, img in images:
            for ext, opts in variants:
                path = os.path.join(workdir, "seed" + ext)
                try:
                    img.save(path, **opts)
                except mitk.UnsupportedFormatError:
                    continue  # a type or feature this format cannot hold (float16 NRRD, ...)
                with open(path, "rb") as f:
                    data = f.read()
                os.remove(path)
                tag = "-".join(f"{k}={v}" for k, v in opts.items()) or "raw"
                seeds.append(Seed(f"mitk:{label}:{tag}{ext}", fmt, ext, data))
    seeds += [s for s in (_nrrd_text_variant(s, enc) for s in seeds
                          for enc in ("ascii", "hex") if s.fmt == "nrrd" and s.name.endswith(
                              ":raw.nrrd")) if s is not None]
    return seeds


def _split_nrrd(data: bytes) -> tuple[list[bytes], bytes] | None:
    end = data.find(b"\n\n")
    if end < 0:
        return None
    return data[:end].split(b"\n"), data[end + 2:]


def _nrrd_field(lines: list[bytes], name: bytes) -> bytes | None:
    for line in lines:
        key, sep, value = line.partition(b": ")
        if sep and key.strip().lower() == name:
            return value.strip()
    return None


def _nrrd_dtype(lines: list[bytes]):
    import numpy as np

    names = {b"int8": "i1", b"uint8": "u1", b"int16": "i2", b"uint16": "u2", b"int32": "i4",
             b"uint32": "u4", b"int64": "i8", b"uint64": "u8", b"float": "f4", b"double": "f8",
             b"int": "i4", b"short": "i2", b"uchar": "u1", b"unsigned char": "u1",
             b"signed char": "i1", b"ushort": "u2", b"unsigned short": "u2", b"uint": "u4"}
    code = names.get((_nrrd_field(lines, b"type") or b"").lower())
    if code is None:
        return None
    order = "<" if (_nrrd_field(lines, b"endian") or b"little").lower() == b"little" else ">"
    return np.dtype(order + code if code[1] != "1" else code)


def _nrrd_text_variant(seed: Seed, encoding: str) -> Seed | None:
    """The raw NRRD ``seed`` re-encoded as ``ascii`` or ``hex`` (mitk writes neither)."""
    import numpy as np

    parts = _split_nrrd(seed.data)
    if parts is None:
        return None
    lines, payload = parts
    dtype = _nrrd_dtype(lines)
    if dtype is None:
        return None
    lines = [b"encoding: " + encoding.encode() if ln.lower().startswith(b"encoding:") else ln
             for ln in lines]
    if encoding == "hex":
        body = payload.hex().encode()
        body = b"\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    else:
        values = np.frombuffer(payload, dtype=dtype)
        body = " ".join(repr(v.item()) for v in values).encode()
    return Seed(seed.name.replace(":raw.nrrd", f":{encoding}.nrrd"), "nrrd", ".nrrd",
                b"\n".join(lines) + b"\n\n" + body + b"\n")


@functools.lru_cache(maxsize=512)
def _decode(payload: bytes, encoding: str) -> bytes | None:
    # Cached: most inputs re-decode one of a few hundred seed payloads.
    try:
        if encoding in ("gzip", "gz"):
            return zlib.decompressobj(32 + 15).decompress(payload)
        if encoding in ("bzip2", "bz2"):
            return bz2.BZ2Decompressor().decompress(payload)
    except (zlib.error, OSError, EOFError, ValueError):
        return None
    return payload if encoding == "raw" else None


def _encode(raw: bytes, encoding: str) -> bytes:
    if encoding in ("gzip", "gz"):
        return gzip.compress(raw, 1, mtime=0)
    if encoding in ("bzip2", "bz2"):
        return bz2.compress(raw, 1)
    return raw


def _shrink_nrrd(data: bytes) -> bytes | None:
    """A large attached NRRD file cut to a few thousand voxels: same header, smaller sizes."""
    parts = _split_nrrd(data)
    if parts is None:
        return None
    lines, payload = parts
    sizes, dtype = _nrrd_field(lines, b"sizes"), _nrrd_dtype(lines)
    encoding = (_nrrd_field(lines, b"encoding") or b"raw").decode().lower()
    raw = _decode(payload, encoding)
    if sizes is None or dtype is None or raw is None:
        return None
    small = [min(int(s), 12) for s in sizes.split()]
    nbytes = math.prod(small) * dtype.itemsize
    lines = [b"sizes: " + b" ".join(b"%d" % s for s in small)
             if ln.lower().startswith(b"sizes:") else ln for ln in lines]
    return b"\n".join(lines) + b"\n\n" + _encode(raw[:nbytes], encoding)


_MET_SIZES = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4,
              "MET_UINT": 4, "MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8,
              "MET_ULONG_LONG": 8, "MET_FLOAT": 4, "MET_DOUBLE": 8}


def _meta_fields(text: str) -> dict:
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def _metaimage_from_pair(header_path: str) -> bytes | None:
    """A real ``.mhd`` header with its data attached (``LOCAL``), cut to a few thousand voxels.

    The header text is the real one except ``DimSize``, ``CompressedDataSize`` and
    ``ElementDataFile``; the data are the first bytes of the real data file.
    """
    with open(header_path, encoding="latin-1") as f:
        text = f.read()
    fields = _meta_fields(text)
    data_path = os.path.join(os.path.dirname(header_path), fields.get("ElementDataFile", ""))
    if not os.path.isfile(data_path) or fields.get("ElementType") not in _MET_SIZES:
        return None
    with open(data_path, "rb") as f:
        stored = f.read()
    compressed = fields.get("CompressedData", "False").lower() == "true"
    if compressed:
        try:
            stored = zlib.decompressobj(32 + 15).decompress(stored)
        except zlib.error:
            return None
    small = [min(int(s), 16) for s in fields.get("DimSize", "").split()]
    if not small:
        return None
    channels = int(fields.get("ElementNumberOfChannels", "1"))
    raw = stored[: math.prod(small) * channels * _MET_SIZES[fields["ElementType"]]]
    payload = zlib.compress(raw, 6) if compressed else raw
    out = []
    for line in text.splitlines():
        key = line.partition("=")[0].strip()
        if key == "DimSize":
            line = "DimSize = " + " ".join(map(str, small))
        elif key == "CompressedDataSize":
            line = f"CompressedDataSize = {len(payload)}"
        elif key == "ElementDataFile":
            line = "ElementDataFile = LOCAL"
        out.append(line)
    return "\n".join(out).encode("latin-1") + b"\n" + payload


def _shrink_nifti(data: bytes, gz: bool) -> bytes | None:
    """A large NIfTI file cut to a few thousand voxels: same header, smaller ``dim``."""
    raw = gzip.decompress(data) if gz else data
    layout = _nifti_layout(raw)
    if layout is None:
        return None
    fields, end = layout
    ndim_fmt, ndim_off = fields["dim"]
    dims = list(struct.unpack_from(ndim_fmt, raw, ndim_off))
    small = [dims[0]] + [min(d, 10) if 1 <= i <= dims[0] else d for i, d in enumerate(dims)
                         if i > 0]
    bitpix = struct.unpack_from(fields["bitpix"][0], raw, fields["bitpix"][1])[0]
    vox = struct.unpack_from(fields["vox_offset"][0], raw, fields["vox_offset"][1])[0]
    count = math.prod(small[1:small[0] + 1]) if 1 <= small[0] <= 7 else 0
    head = bytearray(raw[: int(vox)])
    struct.pack_into(ndim_fmt, head, ndim_off, *small)
    out = bytes(head) + raw[int(vox): int(vox) + count * max(bitpix, 8) // 8]
    return gzip.compress(out, 6, mtime=0) if gz else out


def _real_seeds(workdir: str) -> list[Seed]:
    """Files written by other software, from the packages that happen to be installed."""
    seeds = []

    def add(fmt, ext, path, data):
        if data is not None and len(data) <= MAX_SEED_BYTES:
            seeds.append(Seed(f"{os.path.basename(os.path.dirname(path))}/"
                              f"{os.path.basename(path)}", fmt, ext, data))

    def read(path):
        with open(path, "rb") as f:
            return f.read()

    for path in _package_files("slicerio", ("data/*.nrrd",)):
        data = read(path)
        add("nrrd", ".nrrd", path, data if len(data) <= MAX_SEED_BYTES else _shrink_nrrd(data))
    nib = _package_files("nibabel", ("tests/data/*.nii", "tests/data/*.nii.gz"))
    others = [p for pkg in ("evalutils", "grand_challenge_forge")
              for p in _package_files(pkg, ("**/*.mha", "**/*.mhd", "**/*.nii", "**/*.nii.gz",
                                            "**/*.nrrd"))]
    for path in nib + others:
        lower = path.lower()
        if lower.endswith((".nii", ".nii.gz")):
            gz = lower.endswith(".gz")
            data = read(path)
            if len(data) > MAX_SEED_BYTES:
                try:
                    data = _shrink_nifti(data, gz)
                except (OSError, EOFError, struct.error, ValueError, zlib.error):
                    data = None
            add("nifti", ".nii.gz" if gz else ".nii", path, data)
        elif lower.endswith(".nrrd"):
            data = read(path)
            add("nrrd", ".nrrd", path, data if len(data) <= MAX_SEED_BYTES else _shrink_nrrd(data))
        elif lower.endswith(".mha"):
            add("metaimage", ".mha", path, read(path))
        elif lower.endswith(".mhd"):
            add("metaimage", ".mha", path, _metaimage_from_pair(path))
    # Identical headers (evalutils ships copies) would only skew the seed choice.
    unique = {}
    for s in seeds:
        unique.setdefault(s.data, s)
    return list(unique.values())


def make_seeds(workdir: str) -> dict[str, list[Seed]]:
    """All seeds, by format; mitk-written ones first, then real files from installed packages."""
    seeds = {fmt: [] for fmt in FORMATS}
    for s in _mitk_seeds(workdir) + _real_seeds(workdir):
        if len(s.data) <= MAX_SEED_BYTES:
            seeds[s.fmt].append(s)
    return seeds


# -- mutators -------------------------------------------------------------------------------------

_HUGE = ("4294967296", "2147483648", "9223372036854775808", "18446744073709551617",
         "99999999999999999999999999", "1e309", "1" + "0" * 400)
_ODD = ("-1", "-2", "0", "-0", "-2147483649", "nan", "NaN", "inf", "-inf", "abc", "0x10", "1.5",
        "1e3", " ", "", "(1,2,3)", "none", "???", "\x00", "\xff\xfe", "é", "1 2", "1,2",
        "--1", "+1", "1_0", "٣", "LOCAL", "-", ".", "..", "/etc/passwd", "../x.raw")

_NRRD_FIELDS = {
    "type": ("uchar", "short", "int", "float", "double", "int64", "uint64", "block", "int128",
             "unsigned long long int", "signed char", "bool"),
    "dimension": ("0", "1", "2", "3", "4", "5", "16", "17", "-3", "100000"),
    # The big ones declare 1-40 GB: more than the worker's memory limit, yet little enough for
    # a compressed stream of a few hundred bytes to pass a plain ratio bound.
    "sizes": ("0 0 0", "1", "1 1 1 1 1", "-5 3 3", "4294967296 4294967296 4294967296",
              "100000 100000 100000", "3 3", "1 1 1", "2 2 2 2", "1000 1000 1000",
              "2048 2048 1024", "50000 50000 1", "3000 3000 3000", "1024 1024 1024 4"),
    "encoding": ("raw", "gzip", "gz", "bzip2", "bz2", "ascii", "txt", "text", "hex", "zrl",
                 "RAW", "GZIP", "lz4"),
    "endian": ("little", "big", "middle", "", "LITTLE"),
    "byte skip": ("-1", "-2", "0", "1", "1000000", "9223372036854775807", "x"),
    "line skip": ("-1", "0", "1", "5", "1000000000", "x"),
    "data file": ("input.raw", "LIST", "LIST 2", "LIST 9", "slice%03d.raw 1 3 1",
                  "slice%d.raw 0 100000000 1", "slice%d.raw 5 1 1", "slice%d.raw 1 5 0", "-",
                  "/etc/passwd", "../../x.raw", ".", "%n%n%n 1 2 1", "%s 1 2 1", "%999999d 1 1 1",
                  "", "input.nrrd", "input.nrrd/x.raw", "x" * 300, "d/" * 2100 + "x.raw"),
    "space": ("left-posterior-superior", "RAS", "LAS", "scanner-xyz", "3D-right-handed",
              "left-posterior-superior-time", "right-anterior-superior-time", "bogus", ""),
    "space dimension": ("0", "1", "2", "3", "4", "5", "-1", "100"),
    "space directions": ("none (1,0,0) (0,1,0)", "(0,0,0) (0,1,0) (0,0,1)", "(nan,0,0) (0,1,0) "
                         "(0,0,1)", "(1,0,0) (1,0,0) (0,0,1)", "(1,0) (0,1)", "(1,0,0", "()",
                         "(1e308,1e308,1e308) (0,1,0) (0,0,1)", "none none none",
                         "(1,0,0) (0,1,0) (0,0,1) (0,0,0)", "(inf,0,0) (0,1,0) (0,0,1)"),
    "space origin": ("(0,0,0)", "(nan,nan,nan)", "(inf,0,0)", "(1,2)", "(1,2,3,4)", "none", "(",
                     "(1e308,1e308,1e308)"),
    "space units": ('"mm" "mm" "mm"', '"m" "m" "m"', '"km"', '"mm" "mm"', "mm mm mm", '"'),
    "kinds": ("domain domain domain", "space space space", "vector domain domain",
              "RGB-color domain domain", "complex domain domain", "time domain domain",
              "time time domain", "list list list", "3-vector domain domain", "??? domain domain",
              "domain", "none none none"),
    "spacings": ("1 1 1", "0 0 0", "nan nan nan", "-1 1 1", "1e-320 1 1", "inf 1 1", "1"),
    "thicknesses": ("1 1 1", "nan nan nan", "x"),
    "centers": ("cell cell cell", "node node node", "??? cell cell", "cell"),
    "axis mins": ("0 0 0", "nan nan nan"),
    "axis maxs": ("1 1 1", "inf inf inf"),
    "measurement frame": ("(1,0,0) (0,1,0) (0,0,1)", "none", "(1,0,0) (0,1,0)",
                          "(nan,0,0) (0,1,0) (0,0,1)", "(0,0,0) (0,0,0) (0,0,0)"),
    "content": ("x" * 1000, "", "\x00"),
    "old min": ("0", "nan"),
    "old max": ("1", "x"),
    "labels": ('"x" "y" "z"', '"'),
}

_META_FIELDS = {
    "ObjectType": ("Image", "Mesh", "", "image"),
    "NDims": ("0", "1", "2", "3", "4", "5", "-1", "100", "2.5"),
    "DimSize": ("0 0 0", "1", "1 1 1 1 1", "-5 3 3", "4294967296 4294967296 4294967296",
                "100000 100000 100000", "3 3", "1 1 1", "2 2 2 2", "1e3 1 1", "1000 1000 1000",
                "2048 2048 1024", "3000 3000 3000", "1024 1024 1024 4"),
    "ElementType": tuple(_MET_SIZES) + ("MET_FLOAT_ARRAY", "MET_UCHAR_ARRAY", "MET_STRING",
                                         "MET_NONE", "MET_OTHER", "MET_BOGUS", "MET_LONG_FLOAT"),
    "ElementNumberOfChannels": ("0", "1", "2", "3", "4", "-1", "1000000", "x"),
    "ElementSpacing": ("1 1 1", "0 0 0", "nan 1 1", "-1 1 1", "inf 1 1", "1", "1e-320 1 1"),
    "ElementSize": ("1 1 1", "0 0 0", "nan 1 1"),
    "Offset": ("0 0 0", "nan nan nan", "inf 0 0", "1 2", "1 2 3 4 5"),
    "Origin": ("0 0 0", "nan 0 0"),
    "Position": ("0 0 0", "1e309 0 0"),
    "ImagePosition": ("0 0 0", "x y z"),
    "TransformMatrix": ("1 0 0 0 1 0 0 0 1", "0 0 0 0 0 0 0 0 0", "1 0 0 1 0 0 0 0 1",
                        "nan 0 0 0 1 0 0 0 1", "1 0 0 1", "1 0 0 0 1 0 0 0 1 0 0 0 0 0 0 1"),
    "Rotation": ("1 0 0 0 1 0 0 0 1", "0 0 0 0 0 0 0 0 0"),
    "Orientation": ("1 0 0 0 1 0 0 0 1", "1 2"),
    "BinaryData": ("True", "False", "true", "0", "1", "maybe"),
    "BinaryDataByteOrderMSB": ("True", "False", "x"),
    "ElementByteOrderMSB": ("True", "False"),
    "CompressedData": ("True", "False", "x"),
    "CompressedDataSize": ("0", "1", "-1", "10", "99999999999", "x"),
    "HeaderSize": ("-1", "-2", "0", "1", "100000000", "x"),
    "ElementDataFile": ("LOCAL", "local", "input.raw", "input.mha", "LIST", "LIST 2D", "LIST 9D",
                        "slice%03d.raw 1 3 1", "slice%d.raw 0 100000000 1", "slice%d.raw 1 5 0",
                        "/etc/passwd", "../x.raw", ".", "", "%n 1 2 1", "input.mha/x.raw",
                        "x" * 300, "d/" * 2100 + "x.raw", "x\x00.raw"),
    "AnatomicalOrientation": ("RAI", "??", "LPS", ""),
    "CenterOfRotation": ("0 0 0", "x"),
    "ElementMin": ("0", "x"),
    "ElementMax": ("1", "nan"),
    "Comment": ("x" * 1000, ""),
}


def _mutate_number_tokens(value: bytes, rng: random.Random) -> bytes:
    tokens = list(re.finditer(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", value))
    if not tokens:
        return value
    m = rng.choice(tokens)
    text = m.group()
    try:
        n = int(text)
    except ValueError:
        f = float(text)
        n = int(f) if math.isfinite(f) and abs(f) < 1e18 else 1
    new = rng.choice([
        n + 1, n - 1, 0, -n, n * 2, n * 1000, n * 65536, 2 ** 31, 2 ** 32 + n, 2 ** 63, -1,
        rng.randrange(-5, 50),
    ])
    if rng.random() < 0.2:
        new = rng.choice(["nan", "inf", "-inf", "1e309", "x", ""])
    return value[: m.start()] + str(new).encode() + value[m.end():]


def _mutate_header_lines(lines: list[bytes], fields: dict, sep: bytes, rng: random.Random,
                         ops: list[str]) -> list[bytes]:
    """One mutation of a text header given as lines (``Key<sep>value``)."""
    lines = list(lines)
    choice = rng.randrange(10)
    if not lines:
        choice = 7
    idx = rng.randrange(len(lines)) if lines else 0
    if choice <= 3:  # a field's value replaced
        line = lines[idx]
        key, s, value = line.partition(sep)
        if not s:
            key, s, value = line.partition(b":=")
        if not s:
            ops.append(f"line{idx}:garble")
            lines[idx] = bytes(rng.randrange(32, 127) for _ in range(rng.randrange(0, 20)))
            return lines
        known = fields.get(key.decode("latin-1").strip().lower(),
                           fields.get(key.decode("latin-1").strip()))
        pick = rng.random()
        if pick < 0.35:
            new = _mutate_number_tokens(value, rng)
        elif pick < 0.65 and known:
            new = rng.choice(known).encode("utf-8")
        elif pick < 0.8:
            new = rng.choice(_HUGE).encode()
        else:
            new = rng.choice(_ODD).encode("utf-8")
        if rng.random() < 0.1:  # repeat the value, as if a list got longer
            new = new + b" " + new
        ops.append(f"value:{key[:30]!r}={new[:30]!r}")
        lines[idx] = key + s + new
    elif choice == 4:
        ops.append(f"delete-line{idx}")
        del lines[idx]
    elif choice == 5:
        ops.append(f"duplicate-line{idx}")
        lines.insert(rng.randrange(len(lines) + 1), lines[idx])
    elif choice == 6:
        j = rng.randrange(len(lines))
        ops.append(f"swap-lines{idx},{j}")
        lines[idx], lines[j] = lines[j], lines[idx]
    elif choice == 7:  # a known field, perhaps again, with a hostile value
        name = rng.choice(sorted(fields))
        value = rng.choice(fields[name] + _ODD[:6])
        ops.append(f"insert:{name}={value[:30]!r}")
        lines.insert(rng.randrange(len(lines) + 1), name.encode() + sep + value.encode("utf-8"))
    elif choice == 8:
        ops.append(f"crlf-line{idx}")
        lines[idx] = lines[idx] + b"\r"
    else:
        ops.append(f"numbers-line{idx}")
        lines[idx] = _mutate_number_tokens(lines[idx], rng)
    return lines


def _mutate_bytes(data: bytes, rng: random.Random, ops: list[str], lo: int = 0) -> bytes:
    """One byte-level mutation at or after offset ``lo``."""
    buf = bytearray(data)
    n = len(buf)
    choice = rng.randrange(8)
    if n <= lo:
        choice = 5
    if choice == 0:
        i = rng.randrange(lo, n)
        bit = rng.randrange(8)
        ops.append(f"flip@{i}.{bit}")
        buf[i] ^= 1 << bit
    elif choice == 1:
        i = rng.randrange(lo, n)
        v = rng.choice(_INTERESTING_BYTES)
        ops.append(f"set@{i}={v:#x}")
        buf[i] = v
    elif choice == 2:
        i = rng.randrange(lo, n)
        k = rng.choice((1, 2, 4, 8, 64, 1024))
        ops.append(f"delete@{i}+{k}")
        del buf[i:i + k]
    elif choice == 3:
        i = rng.randrange(lo, n)
        k = rng.choice((1, 2, 4, 8, 64, 1024))
        j = rng.randrange(lo, n + 1)
        ops.append(f"duplicate@{i}+{k}->{j}")
        buf[j:j] = buf[i:i + k]
    elif choice == 4:
        j = rng.randrange(lo, n + 1)
        k = rng.choice((1, 3, 8, 100))
        ops.append(f"insert@{j}+{k}")
        buf[j:j] = bytes(rng.randrange(256) for _ in range(k))
    elif choice == 5:
        cut = rng.randrange(lo, n + 1) if n > lo else n
        if rng.random() < 0.3 and n > lo:
            cut = n - rng.randrange(1, min(16, n - lo) + 1)
        ops.append(f"truncate@{cut}")
        del buf[cut:]
    elif choice == 6:
        k = rng.choice((1, 7, 512))
        ops.append(f"append+{k}")
        buf += bytes(rng.randrange(256) for _ in range(k))
    else:
        i = rng.randrange(lo, n)
        k = rng.choice((2, 4, 8))
        v = rng.choice((b"\xff", b"\x00", b"\x7f", b"\x80"))
        ops.append(f"fill@{i}+{k}={v!r}")
        buf[i:i + k] = v * k
    return bytes(buf)


def _mutate_gzip(stream: bytes, rng: random.Random, ops: list[str]) -> bytes:
    """A corruption aimed at the gzip container: header flags, trailer, members, truncation."""
    buf = bytearray(stream)
    choice = rng.randrange(9)
    if len(buf) < 18:
        choice = 6
    if choice == 0:
        ops.append("gzip:method")
        buf[2] = rng.choice((0, 7, 9, 255))
    elif choice == 1:
        ops.append("gzip:flags")
        buf[3] = rng.choice((0x02, 0x04, 0x08, 0x10, 0x1E, 0xE0, 0xFF))
    elif choice == 2:
        ops.append("gzip:crc")
        buf[-8] ^= 0xFF
    elif choice == 3:
        ops.append("gzip:isize")
        struct.pack_into("<I", buf, len(buf) - 4, rng.choice((0, 1, 0xFFFFFFFF)))
    elif choice == 4:
        ops.append("gzip:second-member")
        buf += stream if rng.random() < 0.5 else gzip.compress(b"\x00" * rng.randrange(1, 64))
    elif choice == 5:
        ops.append("gzip:trailing-garbage")
        buf += rng.choice((b"\x00" * 8, b"\x1f\x8b", b"garbage", b"\x1f\x8b\x08\x00"))
    elif choice == 6:
        cut = rng.randrange(0, len(buf) + 1)
        ops.append(f"gzip:truncate@{cut}")
        del buf[cut:]
    elif choice == 7:
        i = rng.randrange(10, max(11, len(buf) - 8))
        ops.append(f"gzip:body-flip@{i}")
        if i < len(buf):
            buf[i] ^= 1 << rng.randrange(8)
    else:
        ops.append("gzip:stored-as-zlib")
        try:
            buf = bytearray(zlib.compress(gzip.decompress(stream)))
        except (OSError, EOFError, zlib.error):
            pass
    return bytes(buf)


def _mutate_payload(payload: bytes, encoding: str, rng: random.Random, ops: list[str]) -> bytes:
    """Change the data section: re-encoded with another length or codec, or corrupted."""
    choice = rng.randrange(5)
    raw = _decode(payload, encoding) if encoding in ("gzip", "gz", "bzip2", "bz2", "zlib") or \
        encoding == "raw" else None
    if encoding == "zlib":
        raw = _decode(payload, "gzip")  # accepts a zlib header too
    if choice == 0 and raw is not None:
        k = rng.choice((-1, 1, -8, 8, 1000))
        ops.append(f"payload:resize{k:+d}")
        raw = raw[:k] if k < 0 else raw + bytes(k)
        if encoding == "zlib":
            return zlib.compress(raw)
        return _encode(raw, encoding)
    if choice == 1 and raw is not None:
        codec = rng.choice(("gzip", "bzip2", "zlib", "raw"))
        ops.append(f"payload:as-{codec}")
        return zlib.compress(raw) if codec == "zlib" else _encode(raw, codec)
    if choice == 2 and encoding in ("gzip", "gz"):
        return _mutate_gzip(payload, rng, ops)
    if choice == 3 and raw is not None and len(raw) > 0:
        ops.append("payload:bomb")
        # A stream that expands well beyond the declared size (bounded: inputs stay fast).
        bomb = bytes(min(len(raw) * 64 + 4096, 1 << 22))
        return _encode(bomb, encoding) if encoding != "zlib" else zlib.compress(bomb, 1)
    if not payload:
        ops.append("payload:fill")
        return bytes(rng.randrange(256) for _ in range(rng.choice((1, 16, 4096))))
    return _mutate_bytes(payload, rng, ops)


def _mutate_nrrd(data: bytes, rng: random.Random, ops: list[str]) -> bytes:
    parts = _split_nrrd(data)
    if parts is None:
        return _mutate_bytes(data, rng, ops)
    lines, payload = parts
    what = rng.random()
    if what < 0.55:
        for _ in range(1 + (rng.random() < 0.3)):
            head = lines[1:]
            head = _mutate_header_lines(head, _NRRD_FIELDS, b": ", rng, ops)
            lines = lines[:1] + head
    elif what < 0.6:
        ops.append("magic")
        lines[0] = rng.choice((b"NRRD0001", b"NRRD0005", b"NRRD0009", b"NRRD", b"nrrd0004",
                               b"NRRD00041", b"\x00RRD0004"))
    elif what < 0.8:
        encoding = (_nrrd_field(lines, b"encoding") or b"raw").decode("latin-1").lower()
        payload = _mutate_payload(payload, encoding, rng, ops)
    else:
        return _mutate_bytes(b"\n".join(lines) + b"\n\n" + payload, rng, ops)
    sep = b"\n\n" if rng.random() > 0.03 else rng.choice((b"\n", b"\r\n\r\n", b"\n\r\n"))
    return b"\n".join(lines) + sep + payload


def _split_meta(data: bytes) -> tuple[list[bytes], bytes] | None:
    m = re.search(rb"(?m)^\s*ElementDataFile\s*[=:][^\n]*\n", data)
    if m is None:
        return None
    return data[: m.end() - 1].split(b"\n"), data[m.end():]


def _mutate_metaimage(data: bytes, rng: random.Random, ops: list[str]) -> bytes:
    parts = _split_meta(data)
    if parts is None:
        return _mutate_bytes(data, rng, ops)
    lines, payload = parts
    what = rng.random()
    if what < 0.6:
        for _ in range(1 + (rng.random() < 0.3)):
            lines = _mutate_header_lines(lines, _META_FIELDS, b" = ", rng, ops)
    elif what < 0.8:
        fields = _meta_fields(b"\n".join(lines).decode("latin-1"))
        compressed = fields.get("CompressedData", "False").lower() == "true"
        payload = _mutate_payload(payload, "zlib" if compressed else "raw", rng, ops)
    else:
        return _mutate_bytes(b"\n".join(lines) + b"\n" + payload, rng, ops)
    return b"\n".join(lines) + b"\n" + payload


# NIfTI header fields: (struct format without byte order, offset) for NIfTI-1 and NIfTI-2.
_NIFTI1 = {
    "sizeof_hdr": ("i", 0), "dim_info": ("b", 39), "dim": ("8h", 40), "intent_code": ("h", 68),
    "datatype": ("h", 70), "bitpix": ("h", 72), "slice_start": ("h", 74), "pixdim": ("8f", 76),
    "vox_offset": ("f", 108), "scl_slope": ("f", 112), "scl_inter": ("f", 116),
    "slice_end": ("h", 120), "slice_code": ("b", 122), "xyzt_units": ("b", 123),
    "toffset": ("f", 132), "qform_code": ("h", 252), "sform_code": ("h", 254),
    "quatern": ("6f", 256), "srow_x": ("4f", 280), "srow_y": ("4f", 296), "srow_z": ("4f", 312),
    "magic": ("4s", 344),
}
_NIFTI2 = {
    "sizeof_hdr": ("i", 0), "magic": ("8s", 4), "datatype": ("h", 12), "bitpix": ("h", 14),
    "dim": ("8q", 16), "pixdim": ("8d", 104), "vox_offset": ("q", 168), "scl_slope": ("d", 176),
    "scl_inter": ("d", 184), "toffset": ("d", 216), "slice_start": ("q", 224),
    "slice_end": ("q", 232), "qform_code": ("i", 344), "sform_code": ("i", 348),
    "quatern": ("6d", 352), "srow_x": ("4d", 400), "srow_y": ("4d", 432), "srow_z": ("4d", 464),
    "slice_code": ("i", 496), "xyzt_units": ("i", 500), "intent_code": ("i", 504),
    "dim_info": ("b", 524),
}
_DATATYPES = (0, 1, 2, 4, 8, 16, 32, 64, 128, 255, 256, 512, 768, 1024, 1280, 1536, 1792, 2048,
              2304, 32767, -1)
_INTS = (0, 1, -1, 2, 3, 4, 5, 6, 7, 8, 9, 255, 32767, -32768, 65535, 2 ** 31 - 1, -2 ** 31,
         2 ** 32, 2 ** 62, 2 ** 63 - 1)
_FLOATS = (0.0, -0.0, 1.0, -1.0, 0.5, 1e-45, 1e-30, 1e30, 3.4e38, 1e300, math.nan, math.inf,
           -math.inf, 348.0, 352.0, 351.0, 540.0, 544.0, 2.0 ** 31, 2.0 ** 63, -352.0)


def _nifti_layout(raw: bytes) -> tuple[dict, str] | None:
    """Field table and byte order of a NIfTI header (``None`` when not recognisable)."""
    if len(raw) < 4:
        return None
    for order in "<>":
        size = struct.unpack_from(order + "i", raw)[0]
        if size == 348 and len(raw) >= 348:
            return {k: (order + f, o) for k, (f, o) in _NIFTI1.items()}, order
        if size == 540 and len(raw) >= 540:
            return {k: (order + f, o) for k, (f, o) in _NIFTI2.items()}, order
    return None


def _pack_value(fmt: str, rng: random.Random):
    code = fmt[-1]
    if code in "fd":
        v = rng.choice(_FLOATS)
        return -v if rng.random() < 0.2 else v
    if code == "s":
        return rng.choice((b"n+1\0", b"ni1\0", b"n+2\0\r\n\x1a\n", b"ni2\0\r\n\x1a\n", b"\0\0\0\0",
                           b"n+1\0\r\n\x1a\n", b"xyz\0"))
    bits = struct.calcsize(fmt[0] + code) * 8
    v = rng.choice(_INTS)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return min(max(v, lo), hi)


def _mutate_nifti_header(raw: bytes, rng: random.Random, ops: list[str]) -> bytes:
    layout = _nifti_layout(raw)
    if layout is None:
        return _mutate_bytes(raw, rng, ops)
    fields, order = layout
    buf = bytearray(raw)
    name = rng.choice(sorted(fields))
    fmt, off = fields[name]
    if rng.random() < 0.05:  # the value written in the other byte order
        fmt = ("<" if order == ">" else ">") + fmt[1:]
    count = int(fmt[1:-1]) if fmt[1:-1].isdigit() and fmt[-1] != "s" else 1
    values = list(struct.unpack_from(fmt, buf, off))
    if name == "datatype":
        values[0] = rng.choice(_DATATYPES)
    elif name == "bitpix":
        values[0] = rng.choice((0, 1, 8, 16, 24, 32, 64, 128, 256, -8, 7, 32767))
    elif name == "dim" and rng.random() < 0.7:
        i = rng.randrange(count)
        values[i] = rng.choice((0, 1, 2, 3, 4, 5, 7, 8, -1, -32768, 32767, 100000, 1000, 2048,
                                values[i] + 1, values[i] * 2, values[i] - 1))
        if fmt[-1] == "h":
            values[i] = min(max(values[i], -32768), 32767)
    elif count > 1:
        i = rng.randrange(count)
        values[i] = _pack_value(fmt, rng)
    else:
        values[0] = _pack_value(fmt, rng)
    if fmt[-1] == "f":  # float32 fields: what does not fit becomes an infinity, as in C
        values = [v if not math.isfinite(v) or abs(v) < 3.4e38 else math.copysign(math.inf, v)
                  for v in values]
    ops.append(f"nifti:{name}={values if count > 1 else values[0]!r}"[:80])
    struct.pack_into(fmt, buf, off, *values)
    return bytes(buf)


def _mutate_nifti(data: bytes, gz: bool, rng: random.Random, ops: list[str]) -> bytes:
    raw = data
    if gz:
        try:
            raw = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return _mutate_bytes(data, rng, ops)
    what = rng.random()
    if what < 0.6:
        for _ in range(1 + (rng.random() < 0.4)):
            raw = _mutate_nifti_header(raw, rng, ops)
    elif what < 0.85 or not gz:
        lo = 0 if rng.random() < 0.5 else min(len(raw), 348)
        raw = _mutate_bytes(raw, rng, ops, lo)
    if not gz:
        return raw
    stream = gzip.compress(raw, 1, mtime=0)
    if what >= 0.85 or rng.random() < 0.1:
        stream = _mutate_gzip(stream, rng, ops)
    elif rng.random() < 0.03:
        ops.append("nifti:gz-not-compressed")
        stream = raw
    return stream


def mutate(seed: Seed, rng: random.Random, pool: list[Seed] = ()) -> tuple[bytes, list[str]]:
    """Apply one to four mutations to ``seed``; returns the bytes and a description of each.

    ``pool`` holds the other seeds of the format, for splicing.
    """
    data = seed.data
    ops: list[str] = []
    rounds = 1
    while rounds < 4 and rng.random() < 0.35:
        rounds += 1
    for _ in range(rounds):
        if pool and rng.random() < 0.03:
            other = rng.choice(pool).data
            cut = rng.randrange(len(data) + 1)
            start = rng.randrange(len(other) + 1)
            ops.append(f"splice@{cut}")
            data = data[:cut] + other[start:]
        elif seed.fmt == "nrrd":
            data = _mutate_nrrd(data, rng, ops)
        elif seed.fmt == "metaimage":
            data = _mutate_metaimage(data, rng, ops)
        else:
            data = _mutate_nifti(data, seed.ext == ".nii.gz", rng, ops)
    return data, ops


def input_for(seeds: list[Seed], seed: int, fmt: str, index: int) -> tuple[Seed, bytes, list]:
    """The ``index``-th input of ``fmt``: a function of the arguments alone."""
    rng = random.Random(f"{seed}:{fmt}:{index}")
    base = rng.choice(seeds)
    data, ops = mutate(base, rng, seeds)
    return base, data, ops


# -- the worker (child process) -------------------------------------------------------------------


def _worker(memory_limit: int, also_ioutil: bool) -> None:
    """Read input paths from stdin, one per line; answer one JSON line each on stdout."""
    import resource
    import traceback

    if memory_limit:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    import mitk  # noqa: F401 - imported before the first input so its time is not counted

    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        path = line.rstrip("\n")
        try:
            mitk.Image(path)
            if also_ioutil:
                mitk.IOUtil.load(path)
            result = {"outcome": "ok"}
        except BaseException as exc:  # noqa: BLE001 - classifying every escape is the point
            name = type(exc).__name__
            frames = traceback.extract_tb(exc.__traceback__)
            where = next((f"{os.path.basename(f.filename)}:{f.lineno}" for f in reversed(frames)
                          if f"{os.sep}mitk{os.sep}" in f.filename), "?")
            documented = name in DOCUMENTED and isinstance(exc, Exception)
            result = {"outcome": "documented" if documented else "finding", "class": name,
                      "message": str(exc)[:500], "where": where}
            if not documented:
                result["traceback"] = "".join(traceback.format_exception(exc))[-4000:]
            del exc
        out.write(json.dumps(result) + "\n")
        out.flush()


class _Worker:
    """A worker process with a line-based request/response protocol and timeouts."""

    def __init__(self, memory_limit: int, also_ioutil: bool) -> None:
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
                   MKL_NUM_THREADS="1", PYTHONFAULTHANDLER="1")
        cmd = [sys.executable, os.path.abspath(__file__), "--worker",
               "--memory-limit", str(memory_limit)] + (["--ioutil"] if also_ioutil else [])
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        self._buf = b""
        self._stderr = b""
        ready = self._line(120.0)
        if ready != "ready":
            raise RuntimeError(f"fuzz worker did not start: {ready!r}, "
                               f"{self._drain_stderr()[-2000:]!r}")

    def _drain_stderr(self) -> str:
        try:
            rest = self.proc.stderr.read() if self.proc.poll() is not None else b""
        except (OSError, ValueError):
            rest = b""
        return (self._stderr + rest).decode("utf-8", "replace")

    def _line(self, timeout: float) -> str | None:
        """The next stdout line; ``None`` on timeout, ``""`` when the worker died."""
        fd = self.proc.stdout.fileno()
        err = self.proc.stderr.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd, err], [], [], left)
            if err in ready:
                chunk = os.read(err, 65536)
                self._stderr = (self._stderr + chunk)[-20000:]
            if fd in ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return ""
                self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode()

    def ask(self, path: str, timeout: float) -> dict:
        try:
            self.proc.stdin.write(path.encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        line = self._line(timeout)
        if line is None:
            self.close()
            return {"outcome": "finding", "class": "Hang", "where": "?",
                    "message": f"no result within {timeout} s"}
        if line == "":
            self.proc.wait()
            code = self.proc.returncode
            return {"outcome": "finding", "class": "Crash", "where": "?",
                    "message": f"worker exited with {code}", "traceback":
                    self._drain_stderr()[-4000:]}
        return json.loads(line)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except (OSError, BrokenPipeError):
                pass


# -- driver ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class Report:
    """What one format's run produced."""

    fmt: str
    inputs: int = 0
    ok: int = 0
    documented: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    findings: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    slowest: float = 0.0
    seeds: int = 0

    @property
    def rate(self) -> float:
        return self.inputs / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        errors = ", ".join(f"{k} {v}" for k, v in sorted(self.documented.items())) or "none"
        sigs = collections.Counter(f"{f['class']} at {f['where']}" for f in self.findings)
        lines = [f"{self.fmt}: {self.inputs} inputs from {self.seeds} seeds, {self.ok} loaded, "
                 f"documented errors: {errors}; findings: {len(self.findings)}; "
                 f"{self.rate:.0f} inputs/s; slowest {self.slowest * 1000:.0f} ms"]
        lines += [f"  finding x{n}: {sig}" for sig, n in sigs.most_common()]
        return "\n".join(lines)


def run(fmt: str, inputs: int, *, seed: int = 0, timeout: float = DEFAULT_TIMEOUT,
        memory_limit: int = MEMORY_LIMIT, save_dir: str | None = None, also_ioutil: bool = False,
        seeds: dict | None = None, progress=None, start: int = 0) -> Report:
    """Run ``inputs`` mutated inputs of ``fmt`` and return the :class:`Report`.

    Every input is run, even after findings: the worker is restarted when it dies or hangs.
    """
    workdir = tempfile.mkdtemp(prefix="mitk-fuzz-")
    try:
        pool = (seeds or make_seeds(workdir))[fmt]
        if not pool:
            raise RuntimeError(f"no seeds for {fmt}")
        report = Report(fmt, seeds=len(pool))
        saved = collections.Counter()
        worker = _Worker(memory_limit, also_ioutil)
        t0 = time.monotonic()
        try:
            for index in range(start, start + inputs):
                base, data, ops = input_for(pool, seed, fmt, index)
                # The same name every time: a header naming a detached data file finds
                # nothing else in the directory (see the clean-up below).
                path = os.path.join(workdir, "input" + base.ext)
                with open(path, "wb") as f:
                    f.write(data)
                if not worker.alive:
                    worker = _Worker(memory_limit, also_ioutil)
                t = time.monotonic()
                result = worker.ask(path, timeout)
                report.slowest = max(report.slowest, time.monotonic() - t)
                report.inputs += 1
                if result["outcome"] == "ok":
                    report.ok += 1
                elif result["outcome"] == "documented":
                    report.documented[result["class"]] += 1
                else:
                    result.update(index=index, seed=base.name, ops=ops, ext=base.ext)
                    report.findings.append(result)
                    if result["class"] == "MemoryError":
                        worker.close()  # its heap may be in any state; start afresh
                    sig = f"{result['class']}-{result['where']}"
                    if save_dir and saved[sig] < 3:
                        saved[sig] += 1
                        os.makedirs(save_dir, exist_ok=True)
                        slug = re.sub(r"[^A-Za-z0-9]+", "-", sig).strip("-")
                        stem = os.path.join(save_dir, f"{fmt}-{slug}-{index}")
                        with open(stem + base.ext, "wb") as f:
                            f.write(data)
                        with open(stem + ".json", "w") as f:
                            json.dump(result, f, indent=1)
                if progress and report.inputs % 5000 == 0:
                    report.seconds = time.monotonic() - t0
                    progress(report)
                for name in os.listdir(workdir):  # nothing but the one input may stay
                    if name != "input" + base.ext:
                        full = os.path.join(workdir, name)
                        shutil.rmtree(full) if os.path.isdir(full) else os.remove(full)
        finally:
            worker.close()
        report.seconds = time.monotonic() - t0
        return report
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def replay(paths: list[str], *, timeout: float = DEFAULT_TIMEOUT,
           memory_limit: int = MEMORY_LIMIT) -> dict[str, dict]:
    """Load each file in a worker under the same bounds; returns the result per path."""
    results = {}
    worker = _Worker(memory_limit, False)
    try:
        for path in paths:
            if not worker.alive:
                worker = _Worker(memory_limit, False)
            results[path] = worker.ask(os.path.abspath(path), timeout)
    finally:
        worker.close()
    return results


def run_atheris(fmt: str, inputs: int, seeds: dict, save_dir: str | None,
                timeout: float, memory_limit: int) -> None:  # pragma: no cover - optional
    """Coverage-guided fuzzing of one format with atheris (libFuzzer), if it is installed.

    The mutators above act as atheris' custom mutator, libFuzzer's ``-timeout`` and
    ``-rss_limit_mb`` bound time and memory, and an undocumented exception stops the run with the
    input saved under ``save_dir`` (libFuzzer's ``-artifact_prefix``).
    """
    import atheris

    import mitk
    from mitk.io import _streams, metaimage, nifti, nrrd  # noqa: F401 - to be instrumented

    # The seeds were written with mitk, so it is imported already: instrument what is loaded.
    atheris.instrument_all()
    corpus = tempfile.mkdtemp(prefix="mitk-atheris-corpus-")
    scratch = tempfile.mkdtemp(prefix="mitk-atheris-")
    for i, s in enumerate(seeds[fmt]):
        with open(os.path.join(corpus, f"seed{i}{s.ext}"), "wb") as f:
            f.write(s.data)

    def ext_of(data: bytes) -> str:
        if fmt == "nifti":
            return ".nii.gz" if data[:2] == b"\x1f\x8b" else ".nii"
        return FORMATS[fmt][0]

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        base = Seed("atheris", fmt, ext_of(data), data) if data else rng.choice(seeds[fmt])
        out, _ = mutate(base, rng, seeds[fmt])
        return out[:max_size]

    def test_one_input(data: bytes) -> None:
        path = os.path.join(scratch, "input" + ext_of(data))
        with open(path, "wb") as f:
            f.write(data)
        try:
            mitk.Image(path)
        except Exception as exc:  # noqa: BLE001 - re-raised unless documented
            if type(exc).__name__ not in DOCUMENTED:
                raise

    import resource

    # libFuzzer bounds the whole process: what is resident now, plus the allowance.
    resident_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10
    args = [sys.argv[0], corpus, f"-runs={inputs}", f"-timeout={int(math.ceil(timeout))}",
            f"-rss_limit_mb={resident_mb + (memory_limit >> 20 or 2048)}",
            f"-max_len={MAX_SEED_BYTES}"]
    if save_dir:
        os.makedirs(save_dir, exist_ok=True)
        args.append(f"-artifact_prefix={os.path.join(save_dir, fmt)}-")
    atheris.Setup(args, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status (1 when there were findings)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--inputs", type=int, default=2000, help="inputs per format")
    p.add_argument("--format", choices=[*FORMATS, "all"], default="all")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start", type=int, default=0, help="index of the first input")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per input")
    p.add_argument("--memory-limit", type=int, default=MEMORY_LIMIT,
                   help="worker address-space limit in bytes (0: none)")
    p.add_argument("--save-crashers", metavar="DIR", help="save finding inputs here")
    p.add_argument("--ioutil", action="store_true", help="also load with mitk.IOUtil.load")
    p.add_argument("--replay-index", type=int, metavar="I",
                   help="write input I of --format to --save-crashers (or print its mutations)")
    p.add_argument("--replay", nargs="+", metavar="FILE", help="load these files and report")
    p.add_argument("--list-seeds", action="store_true")
    p.add_argument("--engine", choices=["builtin", "atheris"], default="builtin",
                   help="atheris: coverage-guided, in-process, one format, stops at the first "
                        "finding (needs 'pip install atheris')")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        _worker(args.memory_limit, args.ioutil)
        return 0
    if args.replay:
        for path, result in replay(args.replay, timeout=args.timeout,
                                   memory_limit=args.memory_limit).items():
            print(path, json.dumps(result))
        return 0
    formats = list(FORMATS) if args.format == "all" else [args.format]
    with tempfile.TemporaryDirectory(prefix="mitk-fuzz-seeds-") as tmp:
        seeds = make_seeds(tmp)
    if args.list_seeds:
        for fmt in formats:
            for s in seeds[fmt]:
                print(f"{fmt}\t{len(s.data)}\t{s.name}")
        return 0
    if args.engine == "atheris":
        if len(formats) != 1:
            p.error("--engine atheris fuzzes one --format at a time")
        run_atheris(formats[0], args.inputs, seeds, args.save_crashers, args.timeout,
                    args.memory_limit)
        return 0
    if args.replay_index is not None:
        for fmt in formats:
            base, data, ops = input_for(seeds[fmt], args.seed, fmt, args.replay_index)
            print(f"{fmt} #{args.replay_index}: seed {base.name}, mutations {ops}")
            if args.save_crashers:
                os.makedirs(args.save_crashers, exist_ok=True)
                out = os.path.join(args.save_crashers, f"{fmt}-{args.replay_index}{base.ext}")
                with open(out, "wb") as f:
                    f.write(data)
                print(f"  written to {out}")
        return 0
    found = 0
    for fmt in formats:
        report = run(fmt, args.inputs, seed=args.seed, timeout=args.timeout,
                     memory_limit=args.memory_limit, save_dir=args.save_crashers,
                     also_ioutil=args.ioutil, seeds=seeds, start=args.start,
                     progress=lambda r: print(f"  {r.fmt}: {r.inputs} inputs, "
                                              f"{len(r.findings)} findings, {r.rate:.0f}/s",
                                              flush=True))
        print(report.summary(), flush=True)
        found += len(report.findings)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
