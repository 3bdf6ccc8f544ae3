"""Regions of stored pixel data: a box of the stored array -> byte runs -> positioned reads.

A format describes its pixels (``_open`` in its package) as a :class:`Stored` array whose bytes
are the concatenation of its :class:`~mitk.io._data_files.Piece` objects.  :func:`plan_box` plans
the part a box selects (one ``(start, stop, step)`` per stored axis) as the byte runs
:mod:`mitk.io._box_runs` finds, and :func:`read_planned` reads it (:func:`box_cost` works out
its cost from the same runs); they are apart so that a caller reading one box again keeps its
plan.

* Raw runs are read by :mod:`mitk.io._raw_runs` (positioned reads, no shared offset, no map,
  GIL released; runs close together as one span); a box that is one run of a raw file (a
  slice), or the same rows of every plane (a y-plane, a block), by
  ``mitk._core._positioned.read_file_run`` or ``read_file_rows``, which open, check, read and
  close in one call; a slice whose plan a caller keeps by :func:`file_run`, a
  ``_positioned.FileRun`` that also makes the result.
* Compressed streams are decoded by :mod:`mitk.io._stream_regions`: only the blocks touched of
  mitk's block-indexed gzip/zlib, else one pass up to the last byte needed from the nearest
  checkpoint.  A run inside a block already in the block cache is copied from it after a
  ``stat`` of the file (no open).  ASCII is a full pass.

Each file is checked against its recorded identity when opened (or, for a run copied from the
block cache, by a ``stat``): a file replaced, truncated or modified since it was described, or a
short read, is :class:`~mitk.errors.CorruptFileError`.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import stat
from typing import Sequence

import numpy as np

from .._core import _positioned
from ..errors import CorruptFileError
from . import _parallel_deflate
from ._box_runs import one_run, row_plan, runs, split
from ._data_files import Piece, fill
from ._raw_runs import (gather as _gather, pread_into, read_raw, read_rows, rows_short,
                        short_read, spans)
from ._stream_regions import (BlockCache, BlockCRCMismatch, Checkpoints, LastEnd, Scatter,
                              read_blocks, read_sequential, stream_plan, touched_blocks)

__all__ = ["BoxPlan", "Described", "Stored", "box_cost", "file_run", "identities", "identity",
           "identity_now", "plan_box", "read_planned"]


def identity(st: os.stat_result) -> tuple:
    """What says a file is still the one that was opened: (size, mtime_ns, inode, device)."""
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


#: What opening or stating a file that was described says when no file is there now: none, a
#: directory on its path turned into a file, or a loop of symbolic links in its place.
_GONE_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ELOOP})


def identity_now(path: str) -> tuple | None:
    """:func:`identity` of the file at ``path`` now; None when no file is there (other OS
    errors, such as a directory made unreadable, are raised)."""
    try:
        return identity(os.stat(path))
    except OSError as exc:
        if exc.errno not in _GONE_ERRNOS:
            raise
        return None


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


#: Opening never waits, nor adopts a terminal: a FIFO put where a data file was would block a
#: plain open until a writer came, before the identity check could refuse it.
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | _NONBLOCK | getattr(os, "O_NOCTTY", 0)


def _gone(piece: Piece) -> CorruptFileError:
    return CorruptFileError(f"{piece.label}: the file is gone since it was opened")


def _changed(piece: Piece) -> CorruptFileError:
    return CorruptFileError(f"{piece.label}: the file was replaced, truncated or modified "
                            "since it was opened; open it again")


def _open_checked(stored: Stored, piece: Piece) -> int:
    """A descriptor of ``piece.src``, checked to be the file described (its identity, when
    recorded).  CorruptFileError if it is gone, replaced, truncated or modified."""
    try:
        fd = os.open(piece.src, _OPEN_FLAGS)
    except OSError as exc:  # a save removed the old data file, say
        if exc.errno in _GONE_ERRNOS:
            raise _gone(piece) from None
        if exc.errno == errno.ENXIO and stored.identities.get(piece.src) is not None:
            raise _changed(piece) from None  # a socket in the place of the regular file
        raise
    try:
        st = os.fstat(fd)
        expected = stored.identities.get(piece.src)
        if expected is not None:  # the file described (data files are regular: _data_files)
            if identity(st) != expected:
                raise _changed(piece)
        elif _NONBLOCK and not stat.S_ISREG(st.st_mode):
            os.set_blocking(fd, True)  # reads block again (a regular file's always do)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_stream(stored: Stored, piece: Piece, starts, lengths, dests, out,
                 points: Checkpoints | None, cache: BlockCache | None) -> None:
    fd = _open_checked(stored, piece)
    try:
        codec, plan = stream_plan(fd, stored, piece, points)
        scatter = Scatter(starts, lengths, dests, out)
        try:
            _read_stream_region(fd, piece, codec, plan, scatter, points, cache)
        except BlockCRCMismatch as mismatch:
            # The data or the index's CRC-32 is damaged: the stream's own checksum decides.
            # One pass over all of it (its memory bounded as any region's), scattering the
            # region again: CorruptFileError when the stream is damaged, as a full read says;
            # else the index was, and it is not used to check this image again.
            try:
                read_sequential(fd, piece, codec, scatter, None, through=True)
            except CorruptFileError as exc:
                raise CorruptFileError(f"{mismatch}; the stream as a whole fails too "
                                       f"({exc})") from None
            if points is not None and plan is not None:
                points.plan = (codec, (plan[0], plan[1]._replace(crcs=None), plan[2]))
    finally:
        os.close(fd)


def _read_stream_region(fd: int, piece: Piece, codec: str, plan, scatter: Scatter,
                        points: Checkpoints | None, cache: BlockCache | None) -> None:
    """The region of one stream: its blocks, else one pass from the nearest checkpoint.
    BlockCRCMismatch when a block does not match its CRC-32 in the index."""
    if plan is not None:
        try:
            read_blocks(fd, plan, scatter, piece.skip, cache, _cache_tag(piece), piece.label)
            return
        except _parallel_deflate.IndexMismatch:
            if plan[1].crcs is not None:
                # Read serially in whole blocks, each checked against its CRC-32; later
                # regions try the blocks again.
                read_sequential(fd, piece, codec, scatter, points, plan[1])
                return
            if points is not None:  # read on sequentially, now and from now on
                points.indexed = False
                if points.plan is not None:
                    points.plan = (codec, None)
    read_sequential(fd, piece, codec, scatter, points)


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
    raw_run = run is not None and stored.pieces[run[0]].encoding == "raw"
    if run is not None and not raw_run and points is not None and run[2]:
        cached = _cached_run(stored, run, points)
        if cached is not None:  # a slice read again: no open, no pool, one copy
            # Copied flat, then shaped: a copy with NIfTI's size-1 axes costs more.
            out = np.frombuffer(cached[0], stored.dtype, run[2] // stored.dtype.itemsize,
                                cached[1]).copy()
            if stored.swap:
                out.byteswap(inplace=True)
            return out.reshape(plan.read_shape)
    out = np.empty(plan.read_shape, dtype=stored.dtype)
    if raw_run:
        piece = stored.pieces[run[0]]
        _read_raw_run(stored, piece, piece.start + run[1], out)  # a slice: straight in
        if stored.swap:
            out.byteswap(inplace=True)
        return out
    flat = out.reshape(-1).view(np.uint8)
    if run is not None:
        p, offset, length = run
        if length:
            _read_piece(stored, p, np.array([offset], np.int64), np.array([length], np.int64),
                        np.zeros(1, np.int64), flat, points)
    elif plan.rows is not None:
        _read_raw_rows(stored, plan.rows, flat)
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


def file_run(stored: Stored, plan: BoxPlan, shape: tuple) -> _positioned.FileRun | None:
    """A :class:`~mitk._core._positioned.FileRun` that reads ``plan`` into a new array of
    ``shape`` in one compiled call, or None where :func:`read_planned` must read it.

    Only a plan of one run of raw data in native byte order has one (a slice, a frame), and
    only where :func:`_with_identity` can make the call.  Its ``read()`` returns None where
    the file is gone, changed or short; :func:`read_planned` then reads and says which.
    """
    run = plan.run
    if run is None or stored.swap:
        return None
    piece = stored.pieces[run[0]]
    if (piece.encoding != "raw"
            or int(np.prod(shape, dtype=np.int64)) * stored.dtype.itemsize != run[2]):
        return None
    return _with_identity(stored, piece, _positioned.FileRun, piece.start + run[1],
                          tuple(shape), stored.dtype)


def _with_identity(stored: Stored, piece: Piece, call, *args):
    """``call(path, *identity, *args)`` with ``piece``'s file and its recorded identity, for
    ``mitk._core._positioned``'s calls that open and check the file themselves; None where
    they cannot be used (no ``pread``, no recorded identity, or one beyond C's integers: a
    date past 2262)."""
    expected = stored.identities.get(piece.src)
    if expected is None or not _positioned.HAVE_PREAD:
        return None
    try:
        return call(os.fsencode(piece.src), *expected, *args)
    except OverflowError:
        return None


def _compiled(stored: Stored, piece: Piece, read, *args):
    """``read(path, *identity, *args)``: one of ``mitk._core._positioned``'s calls that open,
    check, read and close, on ``piece``'s file; what it returned, or None where it cannot be
    used (:func:`_with_identity`).  CorruptFileError when the file is gone or is not the one
    described."""
    got = _with_identity(stored, piece, read, *args)
    if got == _positioned.GONE:
        raise _gone(piece)
    if got == _positioned.CHANGED:
        raise _changed(piece)
    return got


def _read_raw_run(stored: Stored, piece: Piece, offset: int, out: np.ndarray) -> None:
    """Fill ``out`` (C-contiguous) from byte ``offset`` of a raw piece's file, checked as
    :func:`_open_checked` checks it: one compiled call where :func:`_compiled` can make it."""
    done = _compiled(stored, piece, _positioned.read_file_run, offset, out)
    if done is None:
        fd = _open_checked(stored, piece)
        try:
            pread_into(fd, memoryview(out.reshape(-1).view(np.uint8)), offset, piece.label)
        finally:
            os.close(fd)
    elif done != _positioned.WHOLE:
        raise short_read(piece.label, offset, out.nbytes, done)


def _read_raw_rows(stored: Stored, rows: tuple, flat: np.ndarray) -> None:
    """Read ``rows`` (:func:`~mitk.io._box_runs.row_plan`'s) into the uint8 result ``flat``,
    the file checked as :func:`_open_checked` checks it: one compiled call where
    :func:`_compiled` can make it."""
    p, planes, k, step, length, joined = rows
    piece = stored.pieces[p]
    short = _compiled(stored, piece, _positioned.read_file_rows, planes, piece.start, k, step,
                      length, joined, flat)
    if short is None:
        fd = _open_checked(stored, piece)
        try:
            read_rows(fd, piece, planes, k, step, length, joined, flat)
        finally:
            os.close(fd)
    elif short != _positioned.WHOLE:
        raise rows_short(piece, planes, k, step, length, short)


def _cache_tag(piece: Piece) -> tuple:
    # What a piece's blocks are known by in the block cache (with their index): the one place
    # both the reads that fill it and the cached-run shortcut take it from.
    return piece.src, piece.start


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
    buf = cache.get((_cache_tag(piece), b))
    if buf is None:
        return None
    found = identity_now(piece.src)
    if found != stored.identities.get(piece.src):
        raise _gone(piece) if found is None else _changed(piece)
    return buf, first


def box_cost(stored: Stored, box: list, points: dict | None = None) -> int:
    """Bytes read (raw, text) or decompressed (streams) to serve ``box``; reads no pixels.

    Raw runs count the spans read (gaps included); an indexed stream counts the blocks
    inflated; another stream counts from its nearest checkpoint (or its start) to the last byte
    needed; text counts its whole piece.
    """
    starts, length, _, _ = runs(stored, box)
    total = 0
    for p, s, ln, _d in split(stored, starts, length):
        piece = stored.pieces[p]
        if piece.encoding == "raw":
            los, his = spans(s, ln)
            total += int(np.sum(s[his - 1] + ln[his - 1] - s[los]))
            continue
        if piece.encoding in ("ascii", "hex"):
            # the text to its end: the size recorded at open (no file to stat)
            size = stored.identities.get(piece.src, (None,))[0]
            total += int(piece.limit or (size if size is not None else os.stat(piece.src).st_size)
                         - piece.start)
            continue
        cp = points.get(p) if points is not None else None
        first, end = int(s.min()) + piece.skip, int((s + ln).max()) + piece.skip
        fd = _open_checked(stored, piece)
        try:
            codec, plan = stream_plan(fd, stored, piece, cp)
        finally:
            os.close(fd)
        if plan is not None:
            index = plan[1]
            blocks = touched_blocks(s, s + ln, piece.skip, index.block)
            total += sum(min(index.block, index.total - b * index.block) for b in blocks)
            continue
        snapshot = cp.nearest(first) if cp is not None and codec != "bzip2" else None
        total += end - (snapshot[1] if snapshot is not None else 0)
    return total


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
            last = points.get("last") or points.setdefault("last", LastEnd())
            cp = points.get(p) or points.setdefault(p, Checkpoints(stored.bounds[-1], last))
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

