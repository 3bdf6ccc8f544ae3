"""Moving pixel bytes between files and image buffers without whole-file intermediates.

Readers call :func:`read_exact_into` for raw data and :func:`decompress_into` for gzip, zlib and
bzip2 streams; writers call :func:`write_from` and :func:`compress_from`.  All of them work on a
byte-wise ``memoryview`` of the image buffer (``memoryview(arr).cast("B")``), so data goes straight
from the file into the image, in chunks that bound the memory used on the side.

Large gzip/zlib streams with a block index are inflated and deflated block-parallel by
:mod:`mitk.io._parallel_deflate`; which deflate implementation runs is :mod:`mitk.io._codecs`'s
choice.  Compressing, decompressing and file reads release the GIL inside the codecs and the OS
calls.
"""

from __future__ import annotations

import contextlib
import errno
import os
import zlib
from typing import IO, Callable, Iterator

from ..errors import CorruptFileError
from . import _codecs, _parallel_deflate
from ._codecs import accelerator, deflate_backend  # noqa: F401 - re-exported for benchmarks
from ._options import compression_level as validate_level  # noqa: F401 - one level check

#: Input chunk size for streaming decompression and output chunk size for compression.
CHUNK = 1 << 20
#: Upper bound of a single decompressed piece held outside the image buffer.
_MAX_PIECE = 2 << 20
# bzip2 runs at a few tens of MB/s, so small pieces cost nothing in call overhead, and they keep
# its peak memory (its own block state plus our input and output pieces) within 1.1x the image.
_BZ2_PIECE = 256 << 10
#: gzip/zlib cannot expand more than ~1032x; a header declaring more is refused (no bombs).
MAX_DEFLATE_RATIO = 1032
#: Bytes decompressed after the payload to reach the end of its member and check the checksum.
_CHECK_BEYOND = 1 << 20


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


def check_compressed_size(declared: int, compressed: int, codec: str, *, path: str) -> None:
    """Refuse a deflate stream that declares more output than deflate can produce from it.

    ``compressed`` is the number of bytes available for the stream in the file.
    """
    if codec in ("gzip", "zlib") and declared > MAX_DEFLATE_RATIO * max(compressed, 1) + 1024:
        raise CorruptFileError(
            f"{path}: header declares {declared} bytes of pixel data but the {codec} stream has "
            f"only {compressed} bytes; deflate cannot expand more than {MAX_DEFLATE_RATIO}x"
        )


def _invalid(path: str, codec: str, exc: BaseException) -> CorruptFileError:
    return CorruptFileError(f"{path}: invalid {codec} data ({exc})")


@contextlib.contextmanager
def _codec_errors(path: str, codec: str) -> Iterator[None]:
    """Turn a codec's complaint about the data into CorruptFileError (real I/O errors pass)."""
    try:
        yield
    except CorruptFileError:
        raise
    except Exception as exc:
        if _is_codec_error(exc):
            raise _invalid(path, codec, exc) from None
        raise


def _is_codec_error(exc: BaseException) -> bool:
    """Whether ``exc`` from a codec means bad data (rather than a real I/O error)."""
    if isinstance(exc, (zlib.error, EOFError, ValueError)) or \
            isinstance(exc, _codecs.ACCELERATOR_ERRORS):
        return True
    return isinstance(exc, OSError) and not exc.errno  # bz2 says "Invalid data stream"


def decompress_into(
    f: IO[bytes],
    out: memoryview,
    codec: str,
    *,
    path: str,
    skip: int = 0,
    index: _parallel_deflate.BlockIndex | None = None,
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
    index : BlockIndex, optional
        The block index of a zlib stream, from the file's header (a gzip stream carries its own).

    Raises
    ------
    CorruptFileError
        The stream is invalid before the payload ends, or shorter than ``skip + len(out)``.

    Notes
    -----
    What follows the declared payload is ignored (SPEC 6.2), as teem, nifti_clib, SimpleITK and
    nibabel ignore it: more decompressed bytes (the reader stops after the payload and
    decompresses at most one piece more), or bytes after the compressed member, such as the
    newline some NRRD writers put there.  When the stream ends exactly with the payload, its
    checksum is still verified (the trailer is right there).

    A stream with a block index (see :mod:`mitk.io._parallel_deflate`) in a real file is
    inflated on several threads, each block straight into its place in ``out``, when the index
    fits the stream and the trailer's checksum confirms the result; otherwise, and always for
    small streams, it is inflated in one pass, with the same result.
    """
    if (codec != "bzip2" and skip + len(out) >= _parallel_deflate.PARALLEL_MIN
            and _parallel_deflate.inflate_indexed(f, out, codec, skip, index, path)):
        return
    total = len(out)
    pos = 0
    is_bz2 = codec == "bzip2"
    piece_size, read_size = (_BZ2_PIECE, _BZ2_PIECE) if is_bz2 else (_MAX_PIECE, CHUNK)
    d = _codecs.new_decompressor(codec)
    data = b""
    file_done = False
    with _codec_errors(path, codec):
        while True:
            if pos == total and not skip:
                finish_member(d, data, f, read_size, is_bz2, codec, path)
                return
            if d.eof:
                rest = d.unused_data or f.read(read_size)
                if not rest:
                    break
                d = _codecs.new_decompressor(codec)  # next member of a multi-member file
                data = rest
            elif not data and not file_done and (not is_bz2 or d.needs_input):
                data = f.read(read_size)
                file_done = not data
            want = (skip if skip else total - pos)
            piece = d.decompress(data, min(want, piece_size))
            # zlib hands back what it could not consume; bz2 buffers it internally.
            data = b"" if is_bz2 else d.unconsumed_tail
            if not piece and file_done and not data:
                # Nothing more comes out.  Until then the decoder is asked again after the
                # file's end: isal's holds output it decoded past `want` with no input left.
                break
            if skip:
                used = min(skip, len(piece))
                skip -= used
                piece = piece[used:]
            if piece:
                out[pos : pos + len(piece)] = piece
                pos += len(piece)
    raise CorruptFileError(
        f"{path}: {codec} stream ends after {pos} of the {total} bytes the header declares"
    )


def _truncated(path: str, codec: str) -> CorruptFileError:
    return CorruptFileError(f"{path}: {codec} stream is truncated (no end-of-stream marker)")


def finish_member(d, data: bytes, f, read_size: int, is_bz2: bool, codec: str,
                   path: str) -> None:
    """After the payload: end the member, so that its checksum is checked, within a bound.

    Up to :data:`_CHECK_BEYOND` more bytes are decompressed (and dropped) to reach the end of the
    member, where the decoder checks the trailer: a damaged stream that still yields the payload
    is caught, and a few extra bytes inside the stream (as some writers leave) cost nothing.  A
    member that goes on longer is left unread (a bomb never expands), and what follows the
    member is never read.  A stream that stops before its end-of-stream marker is
    CorruptFileError, as before the payload.  ``f`` is anything with ``read(n)`` (region reads
    pass a positioned reader); ``data`` is the input ``d`` has not taken yet.
    """
    budget = _CHECK_BEYOND
    ended = False
    while not d.eof:
        if not data and not ended and (not is_bz2 or d.needs_input):
            data = f.read(read_size)
            ended = not data
        piece = d.decompress(data, min(budget, _MAX_PIECE) + 1)
        left = b"" if is_bz2 else d.unconsumed_tail
        if ended and not piece and not d.eof and len(left) == len(data):
            # The file ended, and the decoder holds nothing more (isal's may hold output it
            # decoded beyond what was asked: it is asked again after the file's end).
            raise _truncated(path, codec)
        data = left
        budget -= len(piece)
        if budget < 0:
            return  # the member holds far more than declared: the rest is not ours to read


def stream_length(f: IO[bytes], codec: str, path: str, limit: int | None = None) -> int:
    """Decompressed length of the (possibly multi-member) stream from ``f``'s position.

    With ``limit``, counting stops (and returns) as soon as more than ``limit`` bytes came out.
    """
    total, d, data, ended = 0, _codecs.new_decompressor(codec), b"", False
    with _codec_errors(path, codec):
        while True:
            if d.eof:
                rest = d.unused_data or f.read(CHUNK)
                if not rest:
                    return total
                d, data = _codecs.new_decompressor(codec), rest
            elif not data and not ended and (codec != "bzip2" or d.needs_input):
                data = f.read(CHUNK)
                ended = not data
            piece = d.decompress(data, CHUNK)
            left = b"" if codec == "bzip2" else d.unconsumed_tail
            if ended and not piece and not d.eof and len(left) == len(data):
                raise _truncated(path, codec)  # as in finish_member
            total += len(piece)
            data = left
            if limit is not None and total > limit:
                return total


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


def compress_from(f: IO[bytes], data, codec: str, level: int = 1,
                  on_index: Callable[[_parallel_deflate.BlockIndex], None] | None = None,
                  block: int | None = None, total: int | None = None) -> int:
    """Compress ``data`` (a byte view, or a list of them written in turn) to ``f``.

    Produces one gzip, zlib or bzip2 stream and returns the number of compressed bytes written.
    A gzip or zlib payload of :data:`~mitk.io._parallel_deflate.PARALLEL_MIN` bytes or more is
    deflated in independent blocks on several threads (see :mod:`mitk.io._parallel_deflate`):
    still one standard stream with one checksum, which any inflater reads, and the same bytes
    whatever the number of threads.  Its block index goes into the gzip header when ``f`` can
    seek (our readers then inflate the blocks in parallel too), and is handed to ``on_index``
    when given (the MetaImage writer stores it in its header; a zlib stream has no room for it).
    ``block`` is the uncompressed block size (the ``compression_block_size`` save option).
    Smaller payloads and bzip2 go through one compressor in :data:`CHUNK` pieces.  Either way the
    memory used besides the image is a few blocks of output.  With ``total`` (the bytes of all
    views), ``data`` may be any iterable of views, drawn from as the compression reaches them:
    views made one at a time (copies of slabs) are then held a few at a time.
    """
    if total is not None and not isinstance(data, (list, tuple, memoryview)):
        parts = iter(data)
    else:
        parts = list(data) if isinstance(data, (list, tuple)) else [data]
        total = sum(len(p) for p in parts)
    if codec != "bzip2" and total >= _parallel_deflate.PARALLEL_MIN:
        return _parallel_deflate.deflate_indexed(f, parts, codec, level, on_index, block, total)
    c = _codecs.new_compressor(codec, level)
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
