"""Regions of compressed streams: the bytes a region needs, decoded from a gzip, zlib or bzip2
stream and scattered into the result (:mod:`mitk.io._regions` plans the region and checks
the file; this module decodes).

* mitk's block-indexed gzip/zlib streams (:func:`stream_plan` finds the index) inflate only
  the blocks touched (:func:`read_blocks`), on ``threads_for(n)`` threads, each checked against
  its CRC-32 in the index, and keep a lone block in a :class:`BlockCache`; the parsed index
  stays in the piece's :class:`Checkpoints`.
* Other streams are decoded once up to the region's last byte (:func:`read_sequential`),
  leaving :class:`Checkpoints` (zlib decoder snapshots, one every MiB and one where the last
  region ended) for later regions.

Reads are positioned (``os.pread``) on a descriptor the caller opened and checked.
"""

from __future__ import annotations

import bisect
import bz2
import os
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from .. import _threads
from ..errors import CorruptFileError
from . import _codecs, _parallel_deflate, _streams
from ._data_files import Piece
from ._raw_runs import gather as _gather, pread as _pread

if TYPE_CHECKING:  # only named in annotations: _regions imports this module
    from ._regions import Stored

__all__ = ["BlockCRCMismatch", "BlockCache", "CACHED_BYTES", "CHECKPOINTS_PER_IMAGE",
           "CHECKPOINT_EVERY", "Checkpoints", "LastEnd", "MAX_CHECKPOINTS", "Scatter", "read_blocks",
           "read_sequential", "stream_plan", "touched_blocks"]

#: Inflated blocks of indexed streams kept for later regions, per image.
CACHED_BYTES = 4 << 20
#: Decompressed bytes between two checkpoints of a foreign deflate stream, at least.
CHECKPOINT_EVERY = 1 << 20
#: An image of more stored bytes spaces them so that this many cover all its streams (a zlib
#: snapshot holds its 32 KiB window and state, about 40 KB: about 10 MB per image).
CHECKPOINTS_PER_IMAGE = 256
#: Most checkpoints kept per stream: past it, every other one goes and the spacing doubles
#: (a safeguard: the spacing above keeps an image to about CHECKPOINTS_PER_IMAGE).
MAX_CHECKPOINTS = 2048
# Compressed bytes read at once in a sequential pass, and decompressed bytes produced at once.
_READ = 256 << 10
_OUT = 4 << 20


class BlockCache:
    """The last inflated blocks of indexed streams (at most :data:`CACHED_BYTES`); thread-safe."""

    def __init__(self) -> None:
        self._lock, self._blocks, self._bytes = threading.Lock(), {}, 0
        self._newest = None  # the key used last: already last in the order

    def get(self, key) -> bytearray | None:
        if key == self._newest:  # a slice read again: no lock, no reordering
            return self._blocks.get(key)  # None if another thread evicted it meanwhile
        with self._lock:
            data = self._blocks.pop(key, None)
            if data is not None:
                self._blocks[key] = data  # most recently used last
                self._newest = key
            return data

    def put(self, key, data: bytearray) -> None:
        with self._lock:
            if key in self._blocks or len(data) > CACHED_BYTES:
                return
            self._blocks[key], self._bytes = data, self._bytes + len(data)
            self._newest = key
            while self._bytes > CACHED_BYTES:
                self._bytes -= len(self._blocks.pop(next(iter(self._blocks))))


class LastEnd:
    """Where the image's last region read of a stream ended: (its stream's
    :class:`Checkpoints`, snapshot) or None.  One per image, however many files it has (a
    LIST of a thousand gzip files keeps one snapshot of 40 KB, not a thousand); one attribute,
    set whole."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: tuple | None = None


class Checkpoints:
    """Decoder snapshots of a foreign deflate stream: (next input offset, output offset, zlib
    decoder) each, one every :attr:`every` output bytes, and the image's :class:`LastEnd`
    (so that reading the next slice after a slice goes on from there).  ``nbytes`` is what all
    the image's streams hold (its stored bytes): the spacing keeps the image's checkpoints to
    about :data:`CHECKPOINTS_PER_IMAGE`, however many files it has.  Readers copy a snapshot,
    never use the stored one.  Thread-safe."""

    def __init__(self, nbytes: int = 0, last: LastEnd | None = None) -> None:
        self._lock = threading.Lock()
        self._outs: list[int] = []
        self._points: list[tuple[int, int, object]] = []
        self._last = last if last is not None else LastEnd()
        #: Output bytes between checkpoints: :data:`CHECKPOINT_EVERY`, or more for an image of
        #: ``nbytes`` that many would not cover in :data:`CHECKPOINTS_PER_IMAGE`.
        self.every = max(CHECKPOINT_EVERY, -(-nbytes // CHECKPOINTS_PER_IMAGE))
        #: None until known: whether the piece's block index was confirmed usable.
        self.indexed: bool | None = None
        #: (codec, block plan or None) once worked out for a file whose identity is recorded:
        #: every later read checks that identity first, so the plan stays the file's.
        self.plan: tuple | None = None

    def nearest(self, upos: int) -> tuple[int, int, object] | None:
        """The last checkpoint at or before decompressed offset ``upos`` (a private copy)."""
        with self._lock:
            i = bisect.bisect_right(self._outs, upos) - 1
            found = self._points[i] if i >= 0 else None
            held = self._last.value
            last = held[1] if held is not None and held[0] is self else None
            if last is not None and last[1] <= upos and (found is None or last[1] > found[1]):
                found = last
            if found is None:
                return None
            fpos, out, d = found
            return fpos, out, d.copy()

    def ended(self, fpos: int, upos: int, d) -> None:
        """Keep a snapshot of ``d`` where a region's read stopped, as the image's last end
        (replacing the one before, of this stream or another)."""
        self._last.value = (self, (fpos, upos, d.copy()))

    def due(self, upos: int) -> int:
        """Where the next checkpoint is wanted: :attr:`every` bytes after the last one at or
        before decompressed offset ``upos`` (or after the stream's start)."""
        with self._lock:
            i = bisect.bisect_right(self._outs, upos) - 1
            return (self._outs[i] if i >= 0 else 0) + self.every

    def add(self, fpos: int, upos: int, d) -> None:
        with self._lock:
            i = bisect.bisect_left(self._outs, upos)
            if i < len(self._outs) and self._outs[i] == upos:
                return
            if len(self._outs) >= MAX_CHECKPOINTS:
                # Keep every other one and space later ones twice as far apart.
                self._outs, self._points = self._outs[1::2], self._points[1::2]
                self.every *= 2
                i = bisect.bisect_left(self._outs, upos)
            self._outs.insert(i, upos)
            self._points.insert(i, (fpos, upos, d.copy()))


class Scatter:
    """Copies the parts of consecutive stream chunks that the runs need into the result."""

    def __init__(self, starts, lengths, dests, out: np.ndarray) -> None:
        self.out = out
        if len(starts) == 1:  # a slice: its (start, end, dest) as ints, no run arrays
            first = int(starts[0])
            self.one = (first, first + int(lengths[0]), int(dests[0]))
            self.first, self.end = self.one[:2]
            return
        self.one = None
        self.starts, self.ends, self.dests = starts, starts + lengths, dests
        #: The first byte the runs need, and the byte after their last.
        self.first, self.end = int(starts.min()), int(self.ends.max())

    def put(self, pos: int, chunk) -> None:
        """``chunk`` holds stream bytes [pos, pos + len(chunk))."""
        n = len(chunk)
        if self.one is not None:
            s0, e0, d0 = self.one
            s, e = max(s0, pos), min(e0, pos + n)
            if e > s:
                self.out[d0 + s - s0:d0 + e - s0] = np.frombuffer(chunk, np.uint8, e - s, s - pos)
            return
        lo = int(np.searchsorted(self.ends, pos, side="right"))
        hi = int(np.searchsorted(self.starts, pos + n, side="left"))
        if not n or hi <= lo:
            return
        src = np.frombuffer(chunk, dtype=np.uint8)
        s = np.maximum(self.starts[lo:hi], pos)
        e = np.minimum(self.ends[lo:hi], pos + n)
        d = self.dests[lo:hi] + (s - self.starts[lo:hi])
        _gather(self.out, src, s - pos, e - s, d)


class _Into:
    """What ``_inflate_block`` writes into: ``self[a:b] = piece`` scatters stream bytes a..b."""

    def __init__(self, scatter: Scatter, skip: int) -> None:
        self.scatter, self.skip = scatter, skip

    def __setitem__(self, where: slice, piece) -> None:
        self.scatter.put(where.start - self.skip, piece)


def _codec_of(fd: int, piece: Piece) -> str:
    if piece.encoding != "deflate":
        return piece.encoding
    return "gzip" if _pread(fd, 2, piece.start) == b"\x1f\x8b" else "zlib"


def _block_plan(fd: int, piece: Piece, codec: str):
    """(first block offset, index, block offsets) when the stream's block index fits it, else
    None; the offsets (int64, one more than the blocks) are where each block starts in the file.

    The index's CRC-32s are checked for every block a region inflates, also where a block is
    not what the index says (the serial read that replaces it checks them too).  They may be
    wrong where the data are right (a damaged header field; MetaImage header lines another
    MetaIO writer kept over its own stream of other pixels): a mismatch is settled by the
    stream's own checksum (see ``mitk.io._regions``).  An index without them (as mitk wrote
    before them) is used as it is: its regions are not checked.
    """
    limit = piece.start + piece.limit if piece.limit is not None else os.fstat(fd).st_size
    head = _pread(fd, min(max(limit - piece.start, 0), 12 + 0xFFFF + 4096), piece.start)
    if head[:2] == b"\x1f\x8b":
        parsed = _parallel_deflate.parse_gzip_header(head)
        if parsed is None:
            return None
        hlen, index = parsed
        trailer = 8
    elif codec != "bzip2" and _parallel_deflate._zlib_header_ok(head):
        hlen, index, trailer = 2, piece.index, 4
    else:
        return None
    if index is None or index.total != piece.skip + piece.nbytes:
        return None
    if piece.start + hlen + sum(index.sizes) + trailer > limit:
        return None
    return piece.start + hlen, index, np.cumsum([piece.start + hlen, *index.sizes],
                                                dtype=np.int64)


def stream_plan(fd: int, stored: Stored, piece: Piece, points: Checkpoints | None) -> tuple:
    """(codec, block plan or None) of the stream ``piece`` (``fd`` open and checked on it).

    The plan (:func:`_block_plan`) is None for a foreign stream, or where positioned reads are
    missing.  Kept in ``points`` when the file's identity is recorded: working it out reads
    and parses the gzip header and its index, which costs more than a cached slice.
    """
    if points is not None and points.plan is not None:
        return points.plan
    codec = _codec_of(fd, piece)
    plan = None
    if codec != "bzip2" and hasattr(os, "pread") and (points is None
                                                       or points.indexed is not False):
        plan = _block_plan(fd, piece, codec)
        if points is not None:
            points.indexed = plan is not None
    if points is not None and stored.identities.get(piece.src) is not None:
        points.plan = (codec, plan)
    return codec, plan


def touched_blocks(starts: np.ndarray, ends: np.ndarray, skip: int, block: int) -> list:
    """Indices of the blocks holding stream bytes [starts, ends) (offsets after ``skip``)."""
    first = (starts + skip) // block
    last = (ends - 1 + skip) // block
    if np.all(last - first <= 1):
        return np.union1d(first, last).tolist()
    found: set = set()
    for a, b in zip(first.tolist(), last.tolist()):
        found.update(range(a, b + 1))
    return sorted(found)


def read_blocks(fd: int, plan: tuple, scatter: Scatter, skip: int,
                 cache: BlockCache | None, tag, label: str) -> None:
    """Inflate the blocks holding the runs (stream offsets after ``skip``), on several threads;
    ``plan`` is :func:`_block_plan`'s.

    Each block is checked against its CRC-32 where the index has them (the stream's own
    checksum covers all blocks, which a region does not read): CorruptFileError naming
    ``label`` when one differs.  IndexMismatch when a block is not what the index says (its
    size, its deflate data): the caller reads the stream instead, checking the same CRC-32s.
    """
    _, index, offsets = plan
    if scatter.one is not None:
        blocks = list(range((scatter.first + skip) // index.block,
                            (scatter.end - 1 + skip) // index.block + 1))
    else:
        blocks = touched_blocks(scatter.starts, scatter.ends, skip, index.block)
    if len(blocks) == 1 and cache is not None:  # a slice read again: no pool, no decoder
        buf = cache.get((tag, blocks[0]))
        if buf is not None:
            scatter.put(blocks[0] * index.block - skip, buf)
            return
    lib = _codecs.inflate_lib()
    n = len(index.sizes)
    failed = threading.Event()
    corrupt: list = []  # blocks whose CRC-32 differs (appended by the threads: list.append)

    # One block (a slice, say) is kept for the next region; a larger region is scattered
    # piece by piece as it is inflated, holding no whole block.
    keep = cache if len(blocks) == 1 else None

    def one(b: int) -> None:
        usize = min(index.block, index.total - b * index.block)
        buf = cache.get((tag, b)) if cache is not None else None
        if buf is not None:
            scatter.put(b * index.block - skip, buf)
            return
        buf = bytearray(usize) if keep is not None else None
        try:
            crc = _parallel_deflate._inflate_block(
                fd, int(offsets[b]), int(offsets[b + 1]), b * index.block, usize,
                # the bytearray itself, not a view: a bytearray freed by the garbage collector
                # while a view of it lives is a SystemError on Python 3.11
                buf if buf is not None else _Into(scatter, skip), b * index.block
                if buf is not None else 0, b == n - 1, lib, lib.crc32, failed)
            if index.crcs is not None and crc != index.crcs[b]:
                corrupt.append(BlockCRCMismatch(
                    f"{label}: deflate block {b} (bytes {b * index.block} to "
                    f"{b * index.block + usize} of the stream) does not match its CRC-32 in the "
                    "block index: the file is corrupt"))
                raise corrupt[-1]
        except BaseException as exc:
            failed.set()
            if isinstance(exc, _codecs.DEFLATE_ERRORS):
                raise _parallel_deflate.IndexMismatch from None
            raise
        if buf is not None:
            scatter.put(b * index.block - skip, buf)
            keep.put((tag, b), buf)  # no writer keeps it

    threads = _threads.threads_for(len(blocks))
    with (ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mitk-region")
          if threads > 1 else _parallel_deflate._InlinePool()) as pool:
        pending: list = []
        try:
            for b in blocks:  # at most two blocks per thread in flight
                pending.append(pool.submit(one, b))
                if len(pending) >= 2 * threads:
                    pending.pop(0).result()
            for future in pending:
                future.result()
        except _parallel_deflate.IndexMismatch:
            # A block that stopped because another failed its CRC-32 says IndexMismatch (read
            # serially): the corrupt block is what to report.
            if corrupt:
                raise corrupt[0] from None
            raise


def read_sequential(fd: int, piece: Piece, codec: str, scatter: Scatter,
                     points: Checkpoints | None,
                     checks: _parallel_deflate.BlockIndex | None = None,
                     through: bool = False) -> None:
    """Decompress from the nearest checkpoint until the last run's byte (stream after skip).

    A region stops exactly at its end and, unless that is the data's last byte, leaves a
    snapshot there for the next region.  One that holds the data's last byte reads on to the
    end of the member, as a full read does (:func:`mitk.io._streams.finish_member`: within
    1 MiB), so that the member's check (CRC-32, Adler-32) is verified.

    ``checks``: a block index with CRC-32s whose blocks could not be inflated apart; the
    region is then read in whole blocks, each checked against its CRC-32 (BlockCRCMismatch).
    ``through``: read on to the end of the data and its member, whose checksum is verified.
    """
    first = scatter.first + piece.skip
    end = piece.skip + piece.nbytes if through else scatter.end + piece.skip
    crcs = None
    if checks is not None:
        first = first // checks.block * checks.block
        end = min(-(-end // checks.block) * checks.block, checks.total)
        crcs = _BlockChecks(checks, first, piece.label)
    to_the_end = end >= piece.skip + piece.nbytes
    limit = piece.start + piece.limit if piece.limit is not None else None
    keep = points is not None and codec != "bzip2"  # a bzip2 decoder cannot be copied
    snapshot = points.nearest(first) if keep else None
    fpos, upos, d = snapshot or (piece.start, 0, _new_decoder(codec))
    data = b""
    try:
        while upos < end:
            if d.eof:
                rest = d.unused_data or _read(fd, fpos, limit)
                fpos += 0 if d.unused_data else len(rest)
                if not rest:
                    break
                d, data = _new_decoder(codec), rest
            elif not data and (codec != "bzip2" or d.needs_input):
                data = _read(fd, fpos, limit)
                fpos += len(data)
                if not data:
                    break
            # No further than the region's end (the next region, the next slice, starts
            # there), nor than the next checkpoint's place.
            cap = min(_OUT, end - upos)
            due = points.due(upos) if keep else None
            if due is not None and due > upos:
                cap = min(cap, due - upos)
            out = d.decompress(data, cap)
            data = b"" if codec == "bzip2" else d.unconsumed_tail
            scatter.put(upos - piece.skip, out)
            if crcs is not None:
                crcs.update(upos, out)
            upos += len(out)
            if due is not None and upos >= due:
                points.add(*_snapshot(d, fpos, data, upos, codec))
        if to_the_end and upos >= end and not d.eof:
            # On to the member's end, so that its check is verified, as a full read does.
            _streams.finish_member(d, data, _PositionedReader(fd, fpos, limit), _READ,
                                   codec == "bzip2", codec, piece.label)
    except CorruptFileError:
        raise
    except (zlib.error, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno:
            raise
        raise CorruptFileError(f"{piece.label}: invalid {codec} data ({exc})") from None
    if upos < end:
        raise CorruptFileError(f"{piece.label}: {codec} stream ends after {upos - piece.skip} "
                               f"bytes of data, before byte {end - piece.skip} of the region "
                               "(the file was truncated, or is corrupt)")
    if keep and not to_the_end:
        points.ended(*_snapshot(d, fpos, data, upos, codec))


class BlockCRCMismatch(CorruptFileError):
    """A block's bytes do not match its CRC-32 in the index: the data, or the index, is
    damaged (the caller lets the stream's own checksum decide which)."""


class _BlockChecks:
    """The CRC-32 of each whole block a serial read decodes, compared with the index's."""

    def __init__(self, index: _parallel_deflate.BlockIndex, first: int, label: str) -> None:
        self.index, self.label = index, label
        self.b, self.crc = first // index.block, 0  # the block being checked, so far

    def update(self, pos: int, chunk: bytes) -> None:
        """Take decoded stream bytes [pos, pos + len(chunk)) (in order; bytes before the
        first block checked, from a checkpoint before it, are passed over)."""
        index, view = self.index, memoryview(chunk)
        while view and self.b < len(index.sizes):
            start = self.b * index.block
            if pos < start:
                if pos + len(view) <= start:
                    return
                view, pos = view[start - pos:], start
            stop = min(start + index.block, index.total)
            take = min(len(view), stop - pos)
            self.crc = zlib.crc32(view[:take], self.crc)
            view, pos = view[take:], pos + take
            if pos == stop:
                if self.crc != index.crcs[self.b]:
                    raise BlockCRCMismatch(
                        f"{self.label}: deflate block {self.b} (bytes {start} to {stop} of the "
                        "stream) does not match its CRC-32 in the block index: the file is "
                        "corrupt")
                self.b, self.crc = self.b + 1, 0


def _snapshot(d, fpos: int, data: bytes, upos: int, codec: str) -> tuple:
    """(input offset, output offset, decoder) to go on from where ``d`` stands: the input it
    has not taken yet (``data``, read up to ``fpos``) is read again; after the end of a member,
    a fresh decoder starts where the next member (if any) does."""
    if d.eof:
        return fpos - len(d.unused_data), upos, _new_decoder(codec)
    return fpos - len(data), upos, d


class _PositionedReader:
    """``read(n)`` of a file from ``pos`` on, by positioned reads (what
    :func:`mitk.io._streams.finish_member` reads from)."""

    def __init__(self, fd: int, pos: int, limit: int | None) -> None:
        self.fd, self.pos, self.limit = fd, pos, limit

    def read(self, n: int) -> bytes:
        data = _read(self.fd, self.pos, self.limit, n)
        self.pos += len(data)
        return data


def _new_decoder(codec: str):
    # The standard zlib decoder: it can be copied (checkpoints); the accelerators' cannot.
    if codec == "bzip2":
        return bz2.BZ2Decompressor()
    return zlib.decompressobj(zlib.MAX_WBITS | (32 if codec == "gzip" else 0))


def _read(fd: int, pos: int, limit: int | None, size: int = _READ) -> bytes:
    size = size if limit is None else min(size, max(limit - pos, 0))
    return _pread(fd, size, pos) if size else b""
