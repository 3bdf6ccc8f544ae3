"""Which deflate implementation gzip/zlib streams use, and the codec objects made from it.

The optional accelerators (``pip install mitk-core[fast]``) produce and accept the same streams
as :mod:`zlib`: ISA-L (``isal``) is preferred for inflating and for fast deflate levels, zlib-ng
for the other levels.  :func:`deflate_backend` swaps them for benchmarks and tests.  Every codec
releases the GIL while it runs.
"""

from __future__ import annotations

import bz2
import contextlib
import zlib
from typing import Iterator

try:  # optional accelerators, same stream formats as zlib
    from isal import isal_zlib as _isal_zlib  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    _isal_zlib = None
try:
    from zlib_ng import zlib_ng as _zlib_ng  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    _zlib_ng = None

#: The accelerators' stream errors (not subclasses of zlib.error): invalid data, like zlib's.
ACCELERATOR_ERRORS = tuple(lib.error for lib in (_isal_zlib, _zlib_ng) if lib is not None)
#: Every exception class that means "invalid deflate data", whichever library raised it.
DEFLATE_ERRORS = (zlib.error, *ACCELERATOR_ERRORS)


@contextlib.contextmanager
def deflate_backend(name: str) -> Iterator[None]:
    """Make gzip/zlib reads and writes use ``name`` ("zlib", "isal" or "zlib-ng") in the block.

    For benchmarks and tests: it swaps this module's globals, so no other thread may run gzip
    I/O meanwhile.  LookupError when the named accelerator is not installed.
    """
    global _isal_zlib, _zlib_ng
    saved = _isal_zlib, _zlib_ng
    if name == "isal" and saved[0] is None or name == "zlib-ng" and saved[1] is None:
        raise LookupError(f"{name} is not installed")
    _isal_zlib = saved[0] if name == "isal" else None
    _zlib_ng = saved[1] if name == "zlib-ng" else None
    try:
        yield
    finally:
        _isal_zlib, _zlib_ng = saved


def accelerator() -> str:
    """Name of the deflate implementation in use: ``"isal"``, ``"zlib-ng"`` or ``"zlib"``."""
    if _isal_zlib is not None:
        return "isal"
    if _zlib_ng is not None:
        return "zlib-ng"
    return "zlib"


def accelerators_installed() -> dict:
    """Which accelerators are importable here (whatever :func:`deflate_backend` selected)."""
    from importlib.util import find_spec

    return {"isal": find_spec("isal") is not None, "zlib-ng": find_spec("zlib_ng") is not None}


def inflate_lib():
    """The zlib-compatible module that inflates (the fastest one selected)."""
    return _isal_zlib or _zlib_ng or zlib


def new_decompressor(codec: str):
    """A streaming decompressor: ``"gzip"`` accepts gzip and zlib headers, ``"zlib"`` insists on
    a zlib header, ``"bzip2"`` is bzip2."""
    if codec == "bzip2":
        return bz2.BZ2Decompressor()
    lib = inflate_lib()
    # 32 + MAX_WBITS accepts both gzip and zlib headers; "zlib" insists on a zlib header.
    return lib.decompressobj(lib.MAX_WBITS | 32 if codec == "gzip" else lib.MAX_WBITS)


def new_compressor(codec: str, level: int):
    """A streaming compressor writing a whole gzip, zlib or bzip2 stream at ``level`` (1-9)."""
    if codec == "bzip2":
        return bz2.BZ2Compressor(level)
    wbits = 31 if codec == "gzip" else 15
    if _isal_zlib is not None and level <= 3:
        # ISA-L's levels run 0-3; 1-3 map onto its fast end and still write plain deflate.
        return _isal_zlib.compressobj(level - 1 if level > 1 else 1, _isal_zlib.DEFLATED, wbits)
    lib = _zlib_ng or zlib
    return lib.compressobj(level, lib.DEFLATED, wbits)


def raw_deflater(level: int):
    """(module, its level) of the fastest deflate implementation selected, for raw blocks."""
    if _isal_zlib is not None and level <= 3:
        return _isal_zlib, (level - 1 if level > 1 else 1)
    return (_zlib_ng or zlib), level
