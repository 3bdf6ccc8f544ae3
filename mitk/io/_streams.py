"""Moving pixel bytes between files and image buffers without whole-file intermediates.

Readers call :func:`read_exact_into` for raw data and :func:`decompress_into` for gzip, zlib and
bzip2 streams; writers call :func:`write_from` and :func:`compress_from`.  All of them work on a
byte-wise ``memoryview`` of the image buffer (``memoryview(arr).cast("B")``), so data goes straight
from the file into the image, in chunks that bound the memory used on the side.

When the optional ``isal`` package (``pip install mitk-core[fast]``) is installed, gzip/zlib
decompression and low-level compression use it; ``zlib-ng`` is used for compression when present.
Both produce and accept the same formats as :mod:`zlib`.  Compressing, decompressing and file reads
release the GIL inside the codecs and the OS calls.
"""

from __future__ import annotations

import bz2
import contextlib
import errno
import os
import zlib
from typing import IO, Callable, Iterator

from ..errors import ArgumentError, CorruptFileError
from . import _blocks

#: Input chunk size for streaming decompression and output chunk size for compression.
CHUNK = 1 << 20
#: Upper bound of a single decompressed piece held outside the image buffer.
_MAX_PIECE = 2 << 20
# bzip2 runs at a few tens of MB/s, so small pieces cost nothing in call overhead, and they keep
# its peak memory (its own block state plus our input and output pieces) within 1.1x the image.
_BZ2_PIECE = 256 << 10
#: gzip/zlib cannot expand more than ~1032x; a header declaring more is refused (no bombs).
MAX_DEFLATE_RATIO = 1032

try:  # optional accelerators, same stream formats as zlib
    from isal import isal_zlib as _isal_zlib  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    _isal_zlib = None
try:
    from zlib_ng import zlib_ng as _zlib_ng  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    _zlib_ng = None

CODECS = ("gzip", "zlib", "bzip2")

# The accelerators' stream errors (not subclasses of zlib.error): invalid data, like zlib's.
_ACCELERATOR_ERRORS = tuple(lib.error for lib in (_isal_zlib, _zlib_ng) if lib is not None)


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


def read_exact_into(f: IO[bytes], out: memoryview, *, path: str, what: str = "pixel data") -> None:
    """Fill ``out`` (a writable byte memoryview) from ``f``; a short file is CorruptFileError.

    The OS reads straight into the image buffer (``readinto``), with the GIL released.
    """
    total = len(out)
    pos = 0
    while pos < total:
        n = f.readinto(out[pos:])
        if not n:
            raise CorruptFileError(
                f"{path}: {what} is truncated: expected {total} bytes, found {pos}"
            )
        pos += n


def _new_decompressor(codec: str):
    if codec == "bzip2":
        return bz2.BZ2Decompressor()
    lib = _isal_zlib or _zlib_ng or zlib
    # 32 + MAX_WBITS accepts both gzip and zlib headers; "zlib" insists on a zlib header.
    return lib.decompressobj(lib.MAX_WBITS | 32 if codec == "gzip" else lib.MAX_WBITS)


def check_compressed_size(declared: int, compressed: int, codec: str, *, path: str) -> None:
    """Refuse a deflate stream that declares more output than deflate can produce from it.

    ``compressed`` is the number of bytes available for the stream in the file.
    """
    if codec in ("gzip", "zlib") and declared > MAX_DEFLATE_RATIO * max(compressed, 1) + 1024:
        raise CorruptFileError(
            f"{path}: header declares {declared} bytes of pixel data but the {codec} stream has "
            f"only {compressed} bytes; deflate cannot expand more than {MAX_DEFLATE_RATIO}x"
        )


def decompress_into(
    f: IO[bytes],
    out: memoryview,
    codec: str,
    *,
    path: str,
    skip: int = 0,
    allow_trailing: bool = False,
    index: _blocks.BlockIndex | None = None,
) -> None:
    """Decompress a gzip, zlib or bzip2 stream from ``f`` straight into ``out``.

    Parameters
    ----------
    f : binary file
        Positioned at the start of the compressed stream.
    out : memoryview
        Writable byte view of the destination; exactly ``len(out)`` bytes must come out.
    codec : {"gzip", "zlib", "bzip2"}
        ``"gzip"`` also accepts a zlib header; gzip and bzip2 accept concatenated members (as
        pigz, bgzip and pbzip2 write).
    path : str
        Used in error messages.
    skip : int
        Decompressed bytes to discard before the data (NRRD ``byte skip``).
    allow_trailing : bool
        Accept decompressed bytes after the data; otherwise a longer stream is CorruptFileError.
    index : BlockIndex, optional
        The block index of a zlib stream, from the file's header (a gzip stream carries its own).

    Raises
    ------
    CorruptFileError
        The stream is invalid, or shorter than ``skip + len(out)``, or (unless ``allow_trailing``)
        longer.  At most one chunk beyond the declared size is ever decompressed.

    Notes
    -----
    A stream with a block index (see :mod:`mitk.io._blocks`) in a real file is inflated on
    several threads, each block straight into its place in ``out``, when the index fits the
    stream and the trailer's checksum confirms the result; otherwise, and always for small
    streams, it is inflated in one pass, with the same result.
    """
    if (codec != "bzip2" and skip + len(out) >= _blocks.PARALLEL_MIN
            and _inflate_indexed(f, out, codec, skip, allow_trailing, index)):
        return
    total = len(out)
    pos = 0
    is_bz2 = codec == "bzip2"
    piece_size, read_size = (_BZ2_PIECE, _BZ2_PIECE) if is_bz2 else (_MAX_PIECE, CHUNK)
    d = _new_decompressor(codec)
    data = b""
    file_done = False
    try:
        while True:
            if d.eof:
                rest = d.unused_data
                if pos == total and not skip:
                    if not allow_trailing and (rest or f.read(1)):
                        raise CorruptFileError(
                            f"{path}: data continues after the {total} bytes of the {codec} "
                            "stream the header declares"
                        )
                    return
                if not rest:
                    rest = f.read(read_size)
                    if not rest:
                        break
                d = _new_decompressor(codec)  # next member of a multi-member file
                data = rest
            elif not data and (not is_bz2 or d.needs_input):
                if file_done:
                    break
                data = f.read(read_size)
                file_done = not data
            want = (skip if skip else total - pos) + 1
            piece = d.decompress(data, min(want, piece_size))
            # zlib hands back what it could not consume; bz2 buffers it internally.
            data = b"" if is_bz2 else d.unconsumed_tail
            if skip and piece:
                used = min(skip, len(piece))
                skip -= used
                piece = piece[used:]
            if piece:
                room = total - pos
                if len(piece) > room:
                    if not allow_trailing:
                        raise CorruptFileError(
                            f"{path}: {codec} stream holds more than the {total} bytes the "
                            "header declares"
                        )
                    piece = piece[:room]
                out[pos : pos + len(piece)] = piece
                pos += len(piece)
                if pos == total and allow_trailing and not skip:
                    return
            elif file_done and not data:
                break
    except CorruptFileError:
        raise
    except (zlib.error, EOFError, ValueError) as exc:
        raise CorruptFileError(f"{path}: invalid {codec} data ({exc})") from None
    except OSError as exc:
        if exc.errno:  # a real I/O error from the OS, not a codec complaint
            raise
        raise CorruptFileError(f"{path}: invalid {codec} data ({exc})") from None
    except Exception as exc:
        if isinstance(exc, _ACCELERATOR_ERRORS):
            raise CorruptFileError(f"{path}: invalid {codec} data ({exc})") from None
        raise
    if pos == total and not skip:
        raise CorruptFileError(f"{path}: {codec} stream is truncated (no end-of-stream marker)")
    raise CorruptFileError(
        f"{path}: {codec} stream ends after {pos} of the {total} bytes the header declares"
    )


def _zlib_header_ok(head: bytes) -> bool:
    # Deflate (CM 8) with a window of at most 32 KiB, no preset dictionary, valid FCHECK.
    return (len(head) >= 2 and head[0] & 0x0F == 8 and head[0] >> 4 <= 7 and not head[1] & 0x20
            and (head[0] << 8 | head[1]) % 31 == 0)


def _inflate_indexed(f, out: memoryview, codec: str, skip: int, allow_trailing: bool,
                     index: _blocks.BlockIndex | None) -> bool:
    """Inflate an indexed stream block-parallel; False (``f`` where it was) when it cannot."""
    if _blocks.available_threads() < 2:
        return False  # one thread: the serial pass is as fast
    try:
        fd, start = f.fileno(), f.tell()
        # A window onto a file (MetaImage data between a header and what follows) says where
        # it ends; otherwise the stream runs to the end of the file.
        limit = getattr(f, "limit", None) or os.fstat(fd).st_size
    except (AttributeError, OSError, ValueError):  # not a real file
        return False
    head = os.pread(fd, min(max(limit - start, 0), 12 + 0xFFFF + 4096), start)
    if head[:2] == b"\x1f\x8b":
        parsed = _blocks.parse_gzip_header(head) if codec == "gzip" else None
        if parsed is None:
            return False
        hlen, index = parsed
        kind, trailer = "gzip", 8
    elif _zlib_header_ok(head):
        hlen, kind, trailer = 2, "zlib", 4
    else:
        return False
    if index is None or index.total != skip + len(out):
        return False
    end = start + hlen + sum(index.sizes) + trailer
    # A stream that does not end where the data must end is left to the serial pass, which
    # reports it exactly as for any other stream.
    if end > limit or (end < limit and not allow_trailing):
        return False
    lib = _isal_zlib or _zlib_ng or zlib
    errors = (zlib.error, *_ACCELERATOR_ERRORS)
    try:
        check = _blocks.inflate(fd, start + hlen, index, out, skip, kind, lib, errors)
    except _blocks.IndexMismatch:
        return False
    expected = (check.to_bytes(4, "little") + (index.total & 0xFFFFFFFF).to_bytes(4, "little")
                if kind == "gzip" else check.to_bytes(4, "big"))
    if os.pread(fd, trailer, end - trailer) != expected:
        return False  # the serial pass names the checksum error
    f.seek(end)
    return True


def write_from(f: IO[bytes], data: memoryview) -> None:
    """Write a read-only byte view to ``f`` in large pieces (no copy of the whole payload).

    A payload of :data:`CHUNK` bytes or more is first preallocated in the file (the space it
    will fill exactly): the file system then allocates its blocks in one extent instead of
    one write at a time, which triples the speed of large writes on ext4.  A full disk is
    reported here, before any pixel is written.
    """
    if len(data) >= CHUNK:
        _preallocate(f, len(data))
    for start in range(0, len(data), 64 << 20):
        f.write(data[start : start + (64 << 20)])


def _preallocate(f: IO[bytes], nbytes: int) -> None:
    allocate = getattr(os, "posix_fallocate", None)
    if allocate is None:  # not on macOS or Windows: plain writes work, only slower
        return
    try:
        fd = f.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (a gzip member, BytesIO)
        return
    f.flush()
    try:
        # Exactly the bytes that follow, so the file's final size is unchanged.
        allocate(fd, os.lseek(fd, 0, os.SEEK_CUR), nbytes)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            raise
        # EOPNOTSUPP, EINVAL, ...: the file system cannot preallocate; write without it.


def validate_level(level: int | None, codec: str | None) -> int:
    """Check a ``compression_level`` option; returns the level to use (default 1)."""
    if level is None:
        return 1
    if isinstance(level, bool) or not isinstance(level, int):
        raise TypeError(f"compression_level must be an int from 1 to 9, not {type(level).__name__}")
    if codec is None:
        raise ArgumentError("compression_level needs a compression; raw data has no level")
    if not 1 <= level <= 9:
        raise ArgumentError(f"compression_level must be from 1 to 9, got {level}")
    return level


def _new_compressor(codec: str, level: int):
    if codec == "bzip2":
        return bz2.BZ2Compressor(level)
    wbits = 31 if codec == "gzip" else 15
    if _isal_zlib is not None and level <= 3:
        # ISA-L's levels run 0-3; 1-3 map onto its fast end and still write plain deflate.
        return _isal_zlib.compressobj(level - 1 if level > 1 else 1, _isal_zlib.DEFLATED, wbits)
    lib = _zlib_ng or zlib
    return lib.compressobj(level, lib.DEFLATED, wbits)


def compress_from(f: IO[bytes], data, codec: str, level: int = 1,
                  on_index: Callable[[_blocks.BlockIndex], None] | None = None) -> int:
    """Compress ``data`` (a byte view, or a list of them written in turn) to ``f``.

    Produces one gzip, zlib or bzip2 stream and returns the number of compressed bytes written.
    A gzip or zlib payload of :data:`~mitk.io._blocks.PARALLEL_MIN` bytes or more is deflated
    in independent blocks on several threads (see :mod:`mitk.io._blocks`): still one standard
    stream with one checksum, which any inflater reads, and the same bytes whatever the number of
    threads.  Its block index goes into the gzip header when ``f`` can seek (our readers then
    inflate the blocks in parallel too), and is handed to ``on_index`` when given (the MetaImage
    writer stores it in its header; a zlib stream has no room for it).  Smaller payloads and bzip2
    go through one compressor in :data:`CHUNK` pieces.  Either way the memory used besides the
    image is a few blocks of output.
    """
    parts = list(data) if isinstance(data, (list, tuple)) else [data]
    if codec != "bzip2" and sum(len(p) for p in parts) >= _blocks.PARALLEL_MIN:
        return _deflate_blocks(f, parts, codec, level, on_index)
    c = _new_compressor(codec, level)
    written = 0
    for part in parts:
        for start in range(0, len(part), CHUNK):
            out = c.compress(part[start : start + CHUNK])
            if out:
                f.write(out)
                written += len(out)
    out = c.flush()
    f.write(out)
    return written + len(out)


def _raw_deflater(level: int):
    """(module, its level) of the fastest deflate implementation installed, for raw blocks."""
    if _isal_zlib is not None and level <= 3:
        return _isal_zlib, (level - 1 if level > 1 else 1)
    return (_zlib_ng or zlib), level


def _zlib_header(level: int) -> bytes:
    flevel = 0 if level == 1 else 1 if level <= 5 else 2 if level == 6 else 3
    flg = flevel << 6
    flg += (31 - ((0x78 << 8 | flg) % 31)) % 31  # FCHECK: the 16-bit header is a multiple of 31
    return bytes((0x78, flg))


def _seekable(f: IO[bytes]) -> bool:
    try:
        return bool(f.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _deflate_blocks(f: IO[bytes], parts: list, codec: str, level: int, on_index) -> int:
    lib, lib_level = _raw_deflater(level)
    is_gzip = codec == "gzip"
    # The gzip header precedes the blocks, so its index is filled in by seeking back afterwards.
    indexed = is_gzip and _seekable(f)
    nblocks = _blocks.block_count(sum(len(p) for p in parts)) if indexed else 0
    head = _blocks.gzip_header(level, nblocks) if is_gzip else _zlib_header(level)
    mark = f.tell() if indexed else 0
    written, check, index = _blocks.deflate(f, parts, head, codec, lib, lib_level)
    tail = (check.to_bytes(4, "little") + (index.total & 0xFFFFFFFF).to_bytes(4, "little")
            if is_gzip else check.to_bytes(4, "big"))
    f.write(tail)
    if indexed:
        end = f.tell()
        f.seek(mark + _blocks.GZIP_INDEX_OFFSET)
        f.write(_blocks.gzip_index_field(index))
        f.seek(end)
    if on_index is not None:
        on_index(index)
    return written + len(tail)
