"""Raw byte runs of one data file, read with positioned reads straight into a region's result.

A region of raw pixels is a list of byte runs (``mitk.io._box_runs`` plans them).  Runs at most
:data:`GAP` apart are read as one span into scratch memory and copied out; lone runs are read
straight into the result.

* :func:`read_rows`: the same rows of every plane (a block, a y-plane), as
  ``mitk.io._box_runs.row_plan`` finds them: one compiled call
  (``mitk._core._positioned.read_rows``, GIL released) for all planes, with no array per run.
* :func:`read_raw`: any list of runs.  A list of several runs goes to the compiled
  ``mitk._core._positioned.read_runs`` in one call; a single run or span is one
  ``os.preadv``.  Which runs make a span, and whether every span holds the same rows, is one
  compiled pass (``mitk._core._run_plan``).

Where the platform has no ``pread``, runs are read one by one.  No file offset is used, so
threads may share a descriptor; no memory map, so a file truncated meanwhile is
:class:`~mitk.errors.CorruptFileError`, never SIGBUS.  :func:`pread` and :func:`gather` also
serve the stream and text paths of ``_regions``.
"""

from __future__ import annotations

import os

import numpy as np

from .._core import _positioned, _run_plan
from ..errors import CorruptFileError
from ._data_files import Piece

__all__ = ["GAP", "SPAN", "gather", "pread", "pread_into", "read_raw", "read_rows", "read_runs",
           "rows_short", "short_read", "spans"]

#: Runs whose gap is at most this many bytes are read as one span: a positioned read costs about
#: what copying this many more bytes from the page cache does (measured on Linux: 0.25 us a
#: call, 0.054 us a KiB, so reading through a 64 KiB gap took 14 times the call it saved).
GAP = 4 << 10
#: The largest span read into scratch memory at once (a region read's memory besides its result).
SPAN = 4 << 20


def pread(fd: int, size: int, offset: int) -> bytes:
    """Up to ``size`` bytes from ``offset`` (fewer at the end of the file); no offset moved
    where the platform has ``os.pread``."""
    if hasattr(os, "pread"):
        return os.pread(fd, size, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # no positioned reads (Windows): the descriptor is ours
    return os.read(fd, size)


def short_read(label: str, offset: int, length: int, done: int) -> CorruptFileError:
    """The error for a read of ``length`` bytes from ``offset`` of ``label`` that found the
    file ending ``done`` bytes in."""
    return CorruptFileError(f"{label}: data end at byte {offset + done}, before the {length} "
                            f"bytes from byte {offset} the header declares")


def rows_short(piece: Piece, planes: np.ndarray, k: int, step: int, length: int,
               short: tuple) -> CorruptFileError:
    """The error for rows (``k`` per plane, as :func:`read_rows` takes them) whose reads found
    the file ending: ``short`` is ``(row, done)``, the compiled row reader's report."""
    row, done = short
    return short_read(piece.label, piece.start + int(planes[row // k]) + row % k * step, length,
                      done)


def pread_into(fd: int, view: memoryview, offset: int, label: str) -> None:
    """Fill ``view`` with the bytes of the file from ``offset`` on.

    Parameters
    ----------
    fd : int
        Open data file (its offset is not used where the platform has ``os.preadv``).
    view : memoryview
        Writable bytes: the result, or scratch memory.
    offset : int
        Byte offset in the file.
    label : str
        The file, for errors.

    Raises
    ------
    CorruptFileError
        The file ends before ``view`` is full.

    Notes
    -----
    ``os.preadv`` (it releases the GIL), again after a short read; a seek and a read where
    the platform has no positioned reads.  Locks nothing.
    """
    done = 0
    while done < len(view):
        if hasattr(os, "preadv"):
            got = os.preadv(fd, [view[done:]], offset + done)
        else:
            data = pread(fd, len(view) - done, offset + done)
            got = len(data)
            view[done:done + got] = data
        if not got:
            raise short_read(label, offset, len(view), done)
        done += got


def read_runs(fd: int, offsets: np.ndarray, lengths: np.ndarray, dests: np.ndarray,
              out: np.ndarray, label: str) -> None:
    """``out[dests[k]:+lengths[k]] = file[offsets[k]:+lengths[k]]`` for every run ``k``.

    Parameters
    ----------
    fd : int
        Open data file.
    offsets, lengths, dests : numpy.ndarray
        Byte offsets in the file, run lengths and offsets in ``out`` (int64, one per run).
    out : numpy.ndarray
        C-contiguous uint8 result (or scratch) the runs lie in.
    label : str
        The file, for errors.

    Raises
    ------
    CorruptFileError
        The file ends before a run's last byte.

    Notes
    -----
    One compiled call that releases the GIL for all the reads, where ``pread`` exists and
    there is more than one run; else ``os.preadv`` (which releases it too).
    """
    # One run is cheaper through os.preadv than through the arrays the compiled loop takes.
    if len(offsets) > 1 and _positioned.HAVE_PREAD:
        offsets, lengths, dests = (np.ascontiguousarray(a, dtype=np.int64)
                                   for a in (offsets, lengths, dests))
        short = _positioned.read_runs(fd, offsets, lengths, dests, out)
        if short is not None:
            k, done = short
            raise short_read(label, int(offsets[k]), int(lengths[k]), done)
        return
    mv = memoryview(out)
    for off, n, d in zip(offsets.tolist(), lengths.tolist(), dests.tolist()):
        pread_into(fd, mv[d:d + n], off, label)


def spans(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(los, his): the [lo, hi) index ranges of runs that are read as one span (gaps <= GAP,
    span <= SPAN), as two int64 arrays (one compiled pass over the runs)."""
    return _run_plan.spans(np.ascontiguousarray(starts, dtype=np.int64),
                           np.ascontiguousarray(lengths, dtype=np.int64), GAP, SPAN)


def gather(dst: np.ndarray, src: np.ndarray, rel: np.ndarray, lengths: np.ndarray,
           dests: np.ndarray) -> None:
    """dst[dests[k] : +lengths[k]] = src[rel[k] : +lengths[k]] for every run k."""
    n = rel.size
    if n == 1:
        dst[dests[0]:dests[0] + lengths[0]] = src[rel[0]:rel[0] + lengths[0]]
        return
    length = int(lengths[0])
    if np.all(lengths == length) and np.all(np.diff(dests) == length):
        d = dst[dests[0]:dests[0] + n * length].reshape(n, length)
        steps = np.diff(rel)
        if np.all(steps == steps[0]) and steps[0] >= 0:
            d[...] = np.lib.stride_tricks.as_strided(src[rel[0]:], shape=(n, length),
                                                     strides=(int(steps[0]), 1), writeable=False)
        else:
            d[...] = src[rel[:, None] + np.arange(length)]
        return
    for r, ln, de in zip(rel.tolist(), lengths.tolist(), dests.tolist()):
        dst[de:de + ln] = src[r:r + ln]


def read_raw(fd: int, piece: Piece, starts, lengths, dests, out: np.ndarray) -> None:
    """Read the runs (``starts`` within ``piece``, ``lengths``, ``dests`` in ``out``) of one raw
    piece into the uint8 result ``out``.  CorruptFileError if the file ends before a run."""
    if starts.size == 1:  # one run (a slice of the slowest axis): straight into the result
        d, n = int(dests[0]), int(lengths[0])
        pread_into(fd, memoryview(out)[d:d + n], piece.start + int(starts[0]), piece.label)
        return
    los, his = spans(starts, lengths)
    pattern = _run_plan.regular(los, his, starts, lengths, dests) if los.size > 1 else None
    if pattern is not None:  # a box: the same rows in every plane
        k, step, _ = pattern
        read_rows(fd, piece, starts[los], k, step, int(lengths[0]), True, out)
        return
    lone = his - los == 1
    if lone.any():  # straight into the result, all in one call
        idx = los[lone]
        read_runs(fd, piece.start + starts[idx], lengths[idx], dests[idx], out, piece.label)
    scratch = None
    for lo, hi in zip(los[~lone].tolist(), his[~lone].tolist()):
        span_lo = int(starts[lo])
        size = int(starts[hi - 1] + lengths[hi - 1]) - span_lo
        if scratch is None or scratch.size < size:
            scratch = np.empty(max(size, 1), dtype=np.uint8)
        read_runs(fd, np.array([piece.start + span_lo]), np.array([size]), np.zeros(1, np.int64),
                  scratch, piece.label)
        gather(out, scratch, starts[lo:hi] - span_lo, lengths[lo:hi], dests[lo:hi])


def read_rows(fd: int, piece: Piece, planes: np.ndarray, k: int, step: int, length: int,
              joined: bool, out: np.ndarray) -> None:
    """Read ``k`` rows of ``length`` bytes, ``step`` apart, from each plane start (offsets in
    ``piece``) into the uint8 result ``out``, back to back.

    ``joined``: the rows of each plane are read together, gaps included, into scratch memory
    and copied out; else one read per row, straight into the result.  Where the platform has
    ``pread``, all of it is one compiled call (``mitk._core._positioned.read_rows``, GIL
    released, a plane's worth of scratch); elsewhere planes are read a batch at a time in
    Python.  CorruptFileError if the file ends before a row.
    """
    n = planes.size
    if _positioned.HAVE_PREAD:
        offsets = np.ascontiguousarray(piece.start + planes, dtype=np.int64)
        short = _positioned.read_rows(fd, offsets, k, step, length, joined, out)
        if short is not None:
            raise rows_short(piece, planes, k, step, length, short)
        return
    if not joined:
        offsets = (planes[:, None] + np.arange(k, dtype=np.int64) * step).reshape(-1)
        read_runs(fd, piece.start + offsets, np.full(n * k, length, dtype=np.int64),
                  np.arange(n * k, dtype=np.int64) * length, out, piece.label)
        return
    span = (k - 1) * step + length
    batch = max(1, SPAN // span)
    scratch = np.empty(min(batch, n) * span, dtype=np.uint8)
    rows = out[:n * k * length].reshape(n, k, length)
    for g0 in range(0, n, batch):
        g1 = min(g0 + batch, n)
        read_runs(fd, piece.start + planes[g0:g1], np.full(g1 - g0, span, dtype=np.int64),
                  np.arange(g1 - g0, dtype=np.int64) * span, scratch, piece.label)
        rows[g0:g1] = np.lib.stride_tricks.as_strided(
            scratch, (g1 - g0, k, length), (span, step, 1), writeable=False)

