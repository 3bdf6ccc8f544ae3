"""Regions of stored pixel data: a box of the stored array -> byte runs -> positioned reads.

A format describes its pixels (``_open`` in its package) as a :class:`Stored` array whose bytes
are the concatenation of its :class:`~mitk.io._data_files.Piece` objects.  :func:`plan_box` plans
the part a box selects (one ``(start, stop, step)`` per stored axis) as the byte runs
:mod:`mitk.io._box_runs` finds, and :func:`read_planned` reads it (``mitk.lazy`` works out its
cost from the same runs); they are apart so that a caller reading one box again keeps its plan.

* Raw runs are read by :mod:`mitk.io._raw_runs` (positioned reads, no shared offset, no map,
  GIL released; runs close together as one span).
* mitk's block-indexed gzip/zlib streams inflate only the blocks touched, on
  ``threads_for(n)`` threads, and keep a lone block in a :class:`BlockCache`; the parsed index
  stays in the piece's :class:`Checkpoints`.  A run inside a cached block is copied from it
  after a ``stat`` of the file (no open).
* Other streams are read once up to the last byte needed, leaving :class:`Checkpoints` (zlib
  decoder snapshots) for later regions.  ASCII is a full pass.

Each file is checked against its recorded identity when opened (or, for a run copied from the
block cache, by a ``stat``): a file replaced, truncated or modified since it was described, or a
short read, is :class:`~mitk.errors.CorruptFileError`.
"""

from __future__ import annotations

import bisect
import bz2
import dataclasses
import os
import stat
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np

from .. import _threads
from ..errors import CorruptFileError
from . import _codecs, _parallel_deflate
from ._box_runs import one_run, row_plan, runs, split
from ._data_files import Piece, fill
from ._raw_runs import gather as _gather, pread as _pread, pread_into, read_raw, read_rows

__all__ = ["BlockCache", "BoxPlan", "Checkpoints", "Described", "Stored", "identities",
           "identity", "plan_box", "read_planned"]

#: Inflated blocks of indexed streams kept for later regions, per image.
CACHED_BYTES = 4 << 20
#: Decompressed bytes between two checkpoints of a foreign deflate stream, at least.
CHECKPOINT_EVERY = 1 << 20
#: A longer stream spaces them so that this many cover it (a zlib snapshot holds its 32 KiB
#: window and state, about 40 KB: at most about 10 MB per stream).
CHECKPOINTS_PER_STREAM = 256
#: Most checkpoints kept per stream (more are made where the stream is longer than declared).
MAX_CHECKPOINTS = 2048
# Compressed bytes read at once in a sequential pass, and decompressed bytes produced at once.
_READ = 256 << 10
_OUT = 4 << 20


def identity(st: os.stat_result) -> tuple:
    """What says a file is still the one that was opened: (size, mtime_ns, inode, device)."""
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


@dataclasses.dataclass
class Stored:
    """A file's pixels as it stores them: ``dtype`` elements in C order of ``shape``.

    ``pieces`` (the format's read plan) hold consecutive parts of the stored bytes; ``dtype`` is
    native-order, ``swap`` says the bytes are in the other order (swapped after reading);
    ``identities`` is ``{file: identity}`` of the header and every data file, when described.
    ``starts`` (int64 array) and ``bounds`` (the same as ints) are where each piece's bytes
    begin in the stored bytes, and their total at the end.
    """

    pieces: list
    dtype: np.dtype
    shape: tuple
    swap: bool = False
    identities: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.starts = np.cumsum([0] + [p.nbytes for p in self.pieces], dtype=np.int64)
        self.bounds = self.starts.tolist()  # the same, as Python ints (for bisect)


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


class Checkpoints:
    """Decoder snapshots of a foreign deflate stream: (next input offset, output offset, zlib
    decoder) each, one every :attr:`every` output bytes, and one where the last region read
    ended (so that reading the next slice after a slice goes on from there).  Readers copy a
    snapshot, never use the stored one.  Thread-safe."""

    def __init__(self, nbytes: int = 0) -> None:
        self._lock = threading.Lock()
        self._outs: list[int] = []
        self._points: list[tuple[int, int, object]] = []
        self._last: tuple[int, int, object] | None = None
        #: Output bytes between checkpoints: :data:`CHECKPOINT_EVERY`, or more for a stream of
        #: ``nbytes`` that many would not cover in :data:`CHECKPOINTS_PER_STREAM`.
        self.every = max(CHECKPOINT_EVERY, -(-nbytes // CHECKPOINTS_PER_STREAM))
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
            last = self._last
            if last is not None and last[1] <= upos and (found is None or last[1] > found[1]):
                found = last
            if found is None:
                return None
            fpos, out, d = found
            return fpos, out, d.copy()

    def ended(self, fpos: int, upos: int, d) -> None:
        """Keep a snapshot of ``d`` where a region's read stopped (replacing the last one)."""
        snapshot = (fpos, upos, d.copy())
        with self._lock:
            self._last = snapshot

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


#: Opening never waits, nor adopts a terminal: a FIFO put where a data file was would block a
#: plain open until a writer came, before the identity check could refuse it.
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | _NONBLOCK | getattr(os, "O_NOCTTY", 0)


def _open_checked(stored: Stored, piece: Piece) -> int:
    """A descriptor of ``piece.src``, checked to be the file described (its identity, when
    recorded).  CorruptFileError if it is gone, replaced, truncated or modified."""
    try:
        fd = os.open(piece.src, _OPEN_FLAGS)
    except (FileNotFoundError, NotADirectoryError):  # a save removed the old data file, say
        raise CorruptFileError(f"{piece.label}: the file is gone since it was opened") from None
    try:
        st = os.fstat(fd)
        expected = stored.identities.get(piece.src)
        if expected is not None:  # the file described (data files are regular: _data_files)
            if identity(st) != expected:
                raise CorruptFileError(f"{piece.label}: the file was replaced, truncated or "
                                       "modified since it was opened; open it again")
        elif _NONBLOCK and not stat.S_ISREG(st.st_mode):
            os.set_blocking(fd, True)  # reads block again (a regular file's always do)
    except BaseException:
        os.close(fd)
        raise
    return fd


class _Scatter:
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

    def __init__(self, scatter: _Scatter, skip: int) -> None:
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


def _touched_blocks(starts: np.ndarray, ends: np.ndarray, skip: int, block: int) -> list:
    """Indices of the blocks holding stream bytes [starts, ends) (offsets after ``skip``)."""
    first = (starts + skip) // block
    last = (ends - 1 + skip) // block
    if np.all(last - first <= 1):
        return np.union1d(first, last).tolist()
    found: set = set()
    for a, b in zip(first.tolist(), last.tolist()):
        found.update(range(a, b + 1))
    return sorted(found)


def _read_blocks(fd: int, plan: tuple, scatter: _Scatter, skip: int,
                 cache: BlockCache | None, tag) -> None:
    """Inflate the blocks holding the runs (stream offsets after ``skip``), on several threads;
    ``plan`` is :func:`_block_plan`'s."""
    _, index, offsets = plan
    if scatter.one is not None:
        blocks = list(range((scatter.first + skip) // index.block,
                            (scatter.end - 1 + skip) // index.block + 1))
    else:
        blocks = _touched_blocks(scatter.starts, scatter.ends, skip, index.block)
    if len(blocks) == 1 and cache is not None:  # a slice read again: no pool, no decoder
        buf = cache.get((tag, blocks[0]))
        if buf is not None:
            scatter.put(blocks[0] * index.block - skip, buf)
            return
    lib = _codecs.inflate_lib()
    n = len(index.sizes)
    failed = threading.Event()

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
            _parallel_deflate._inflate_block(
                fd, int(offsets[b]), int(offsets[b + 1]), b * index.block, usize,
                # the bytearray itself, not a view: a bytearray freed by the garbage collector
                # while a view of it lives is a SystemError on Python 3.11
                buf if buf is not None else _Into(scatter, skip), b * index.block
                if buf is not None else 0, b == n - 1, lib, lib.crc32, failed)
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
        for b in blocks:  # at most two blocks per thread in flight
            pending.append(pool.submit(one, b))
            if len(pending) >= 2 * threads:
                pending.pop(0).result()
        for future in pending:
            future.result()


def _read_sequential(fd: int, piece: Piece, codec: str, scatter: _Scatter,
                     points: Checkpoints | None) -> None:
    """Decompress from the nearest checkpoint until the last run's byte (stream after skip).

    A region that ends before the data's last byte stops there exactly, and leaves a
    snapshot there for the next region; one that reaches it reads on to the end of the
    stream's member, so that the member's check (CRC-32, Adler-32) is verified.
    """
    first = scatter.first + piece.skip
    end = scatter.end + piece.skip
    to_the_end = end >= piece.skip + piece.nbytes
    limit = piece.start + piece.limit if piece.limit is not None else None
    snapshot = points.nearest(first) if points is not None and codec != "bzip2" else None
    fpos, upos, d = snapshot or (piece.start, 0, _new_decoder(codec))
    keep = points is not None and codec != "bzip2"  # a bzip2 decoder cannot be copied
    data = b""
    unchecked = False
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
            cap = _OUT if to_the_end else min(_OUT, end - upos)
            due = points.due(upos) if keep else None
            if due is not None and due > upos:
                cap = min(cap, due - upos)
            out = d.decompress(data, cap)
            data = b"" if codec == "bzip2" else d.unconsumed_tail
            scatter.put(upos - piece.skip, out)
            upos += len(out)
            if due is not None and upos >= due and not d.eof:
                # The input the decoder has not taken yet is read again from there.
                points.add(fpos - len(data), upos, d)
        while to_the_end and upos >= end and not d.eof:
            if not data and (codec != "bzip2" or d.needs_input):
                data = _read(fd, fpos, limit)
                fpos += len(data)
                if not data:
                    unchecked = True
                    break
            if d.decompress(data, 1 << 16):
                break  # more data than the header declares: not read
            data = b"" if codec == "bzip2" else d.unconsumed_tail
    except (zlib.error, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno:
            raise
        raise CorruptFileError(f"{piece.label}: invalid {codec} data ({exc})") from None
    if upos < end:
        raise CorruptFileError(f"{piece.label}: {codec} stream ends after {upos - piece.skip} "
                               f"bytes of data, before byte {end - piece.skip} of the region "
                               "(the file was truncated, or is corrupt)")
    if unchecked:
        raise CorruptFileError(f"{piece.label}: {codec} stream ends after its data, before its "
                               "check (the file was truncated)")
    if keep and not to_the_end:
        if d.eof:  # a next member (if any) starts where this one's input ended
            points.ended(fpos - len(d.unused_data), upos, _new_decoder(codec))
        else:
            points.ended(fpos - len(data), upos, d)


def _new_decoder(codec: str):
    # The standard zlib decoder: it can be copied (checkpoints); the accelerators' cannot.
    if codec == "bzip2":
        return bz2.BZ2Decompressor()
    return zlib.decompressobj(zlib.MAX_WBITS | (32 if codec == "gzip" else 0))


def _read(fd: int, pos: int, limit: int | None) -> bytes:
    size = _READ if limit is None else min(_READ, max(limit - pos, 0))
    return _pread(fd, size, pos) if size else b""


def _read_stream(stored: Stored, piece: Piece, starts, lengths, dests, out,
                 points: Checkpoints | None, cache: BlockCache | None) -> None:
    fd = _open_checked(stored, piece)
    try:
        codec, plan = stream_plan(fd, stored, piece, points)
        scatter = _Scatter(starts, lengths, dests, out)
        if plan is not None:
            try:
                _read_blocks(fd, plan, scatter, piece.skip, cache, (piece.src, piece.start))
                return
            except _parallel_deflate.IndexMismatch:
                if points is not None:  # read on sequentially, now and from now on
                    points.indexed = False
                    if points.plan is not None:
                        points.plan = (codec, None)
        _read_sequential(fd, piece, codec, scatter, points)
    finally:
        os.close(fd)


def _read_text(stored: Stored, piece: Piece, starts, lengths, dests, out) -> None:
    whole = np.empty(piece.nbytes // stored.dtype.itemsize, dtype=stored.dtype)
    # Parsed through the descriptor that was checked: opening the path again would read
    # whatever file had been put there meanwhile.
    with os.fdopen(_open_checked(stored, piece), "rb", buffering=0) as f:
        fill([piece], memoryview(whole.view(np.uint8)), whole, opened={piece.src: f})
    _gather(out, whole.view(np.uint8), starts, lengths, dests)


class BoxPlan:
    """How :func:`read_planned` reads a box: which plan (one of ``run``, ``rows`` and
    ``pieces`` is set), the shape it reads, and the step it then takes along one axis.

    ``run`` is :func:`~mitk.io._box_runs.one_run`'s, ``rows``
    :func:`~mitk.io._box_runs.row_plan`'s, ``pieces`` :func:`~mitk.io._box_runs.split`'s
    (runs per piece).  ``subsample`` is (axis, step) or None.  Immutable once made: a caller
    may keep one and read it again from any thread.
    """

    __slots__ = ("run", "rows", "pieces", "read_shape", "subsample")

    def __init__(self, run, rows, pieces, read_shape: tuple, subsample) -> None:
        self.run, self.rows, self.pieces = run, rows, pieces
        self.read_shape, self.subsample = read_shape, subsample


def plan_box(stored: Stored, box: Sequence[tuple]) -> BoxPlan:
    """The plan that reads ``box`` (``0 <= start < stop <= size``, ``step >= 1`` per stored
    axis); pure arithmetic, no I/O."""
    run = one_run(stored, box) if stored.shape else None
    rows = row_plan(stored, box) if run is None else None
    if run is None and rows is None:
        starts, length, read_shape, subsample = runs(stored, box)
        return BoxPlan(None, None, split(stored, starts, length), read_shape, subsample)
    # the short plans: Python ints, or arrays per plane, never per run
    return BoxPlan(run, rows, None, tuple([len(range(*b)) for b in box]), None)


def read_planned(stored: Stored, plan: BoxPlan, points: dict | None = None) -> np.ndarray:
    """The stored elements ``plan`` (:func:`plan_box`'s) reads, as a new C-contiguous
    native-order array of ``plan.read_shape`` (then stepped along ``plan.subsample``).

    ``points`` is the caller's dict of per-image state (checkpoints and block plans per
    compressed piece, the block cache), filled here.  CorruptFileError: a file changed since it
    was described, or it (or its stream) ends before the data.  Copies; the GIL is released
    in the reads and codecs.
    """
    run = plan.run
    if (run is not None and points is not None and run[2]
            and stored.pieces[run[0]].encoding != "raw"):
        cached = _cached_run(stored, run, points)
        if cached is not None:  # a slice read again: no open, no pool, one copy
            # Copied flat, then shaped: a copy with NIfTI's size-1 axes costs more.
            out = np.frombuffer(cached[0], stored.dtype, run[2] // stored.dtype.itemsize,
                                cached[1]).copy()
            if stored.swap:
                out.byteswap(inplace=True)
            return out.reshape(plan.read_shape)
    out = np.empty(plan.read_shape, dtype=stored.dtype)
    flat = out.reshape(-1).view(np.uint8)
    if run is not None:
        p, offset, length = run
        piece = stored.pieces[p]
        if piece.encoding == "raw":
            fd = _open_checked(stored, piece)
            try:
                pread_into(fd, memoryview(flat), piece.start + offset, piece.label)
            finally:
                os.close(fd)
        elif length:
            _read_piece(stored, p, np.array([offset], np.int64), np.array([length], np.int64),
                        np.zeros(1, np.int64), flat, points)
    elif plan.rows is not None:
        p, planes, k, step, length, joined = plan.rows
        piece = stored.pieces[p]
        fd = _open_checked(stored, piece)
        try:
            read_rows(fd, piece, planes, k, step, length, joined, flat)
        finally:
            os.close(fd)
    else:
        for p, s, ln, d in plan.pieces:
            _read_piece(stored, p, s, ln, d, flat, points)
    if stored.swap:
        out.byteswap(inplace=True)
    if plan.subsample is not None:
        axis, step = plan.subsample
        key = [slice(None)] * out.ndim
        key[axis] = slice(None, None, step)
        out = np.ascontiguousarray(out[tuple(key)])
    return out


def _cached_run(stored: Stored, run: tuple, points: dict) -> tuple | None:
    """(inflated block, offset in it) holding all of ``run`` (one_run's plan, of a stream
    whose block plan is known), from the block cache; None when it is not there.

    The file is not opened: its identity is checked by path (what opening would check), so
    a file changed since it was described is still CorruptFileError.
    """
    p, offset, length = run
    cp, cache = points.get(p), points.get("blocks")
    known = cp.plan if cp is not None else None  # read once: another thread may drop it
    if cache is None or known is None or known[1] is None:
        return None
    piece = stored.pieces[p]
    block = known[1][1].block
    b, first = divmod(offset + piece.skip, block)
    if first + length > block:
        return None
    buf = cache.get(((piece.src, piece.start), b))
    if buf is None:
        return None
    try:
        found = identity(os.stat(piece.src))
    except (FileNotFoundError, NotADirectoryError):
        found = None
    if found != stored.identities.get(piece.src):
        raise CorruptFileError(f"{piece.label}: the file is gone, or was replaced, truncated or "
                               "modified since it was opened; open it again")
    return buf, first


def _read_piece(stored: Stored, p: int, starts, lengths, dests, flat: np.ndarray,
                points: dict | None) -> None:
    """Copy the runs (``starts``/``lengths`` in piece ``p``'s bytes) to ``dests`` of ``flat``."""
    piece = stored.pieces[p]
    if piece.encoding == "raw":
        fd = _open_checked(stored, piece)
        try:
            read_raw(fd, piece, starts, lengths, dests, flat)
        finally:
            os.close(fd)
    elif piece.encoding in ("gzip", "zlib", "bzip2", "deflate"):
        cp = cache = None
        if points is not None:  # made once per image (setdefault alone would make one a call)
            cp = points.get(p) or points.setdefault(p, Checkpoints(piece.skip + piece.nbytes))
            cache = points.get("blocks") or points.setdefault("blocks", BlockCache())
        _read_stream(stored, piece, starts, lengths, dests, flat, cp, cache)
    else:
        _read_text(stored, piece, starts, lengths, dests, flat)


@dataclasses.dataclass
class Described:
    """An image described without reading its pixels (what a format's ``describe`` returns).

    ``info`` is the ImageInfo ``read`` would return; ``stored`` the stored array.  ``axes``
    gives, per axis of ``info.full_shape``, the stored axis it is (None: a size-1 axis the file
    lacks); other stored axes have size 1, except ``complex_axis`` (size 2: NRRD's real and
    imaginary parts).  ``scaling`` is (slope, inter): ``stored * slope + inter`` in float64
    (complex128), then ``info.dtype``.  ``format`` is the format's name.
    """

    info: object
    stored: Stored
    axes: tuple
    complex_axis: int | None = None
    scaling: tuple | None = None
    format: str = ""


def identities(pieces: Sequence[Piece], *paths: str) -> dict:
    """``{file: identity}`` of the header files ``paths`` and every file the pieces read."""
    out = {}
    for name in (*paths, *(p.src for p in pieces)):
        if name not in out:
            out[name] = identity(os.stat(name))
    return out

