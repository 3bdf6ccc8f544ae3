"""Where a box of a stored array lies in its bytes: the byte runs a region read must fetch.

A box is one ``(start, stop, step)`` per stored axis (steps >= 1) of a :class:`Stored` array,
whose bytes are the concatenation of its pieces (``mitk.io._regions``).  Three plans, cheapest
first, all pure functions of the box and the layout (no I/O):

* :func:`one_run`: the box is one run of bytes in one piece (a slice of the slowest axis, the
  commonest region), in Python ints;
* :func:`row_plan`: the box is the same rows of every plane of one raw piece, read either one
  span per plane or one read per row (a block, a y-plane), with arrays only per plane;
* :func:`runs` then :func:`split`: every run, per piece, as arrays (any box).

The two short plans read exactly what the general one does (the same spans, see
``mitk.io._raw_runs.spans``), so ``LazyImage.read_cost`` follows the general plan alone.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ._raw_runs import GAP, SPAN

if TYPE_CHECKING:
    from ._regions import Stored

__all__ = ["SMALL_RUN", "one_run", "row_plan", "runs", "split"]

#: A run axis with a step whose element is smaller than this is read whole and subsampled.
SMALL_RUN = 4 << 10


def _strides(stored: Stored) -> list:
    shape, strides = stored.shape, [stored.dtype.itemsize] * len(stored.shape)
    for a in range(len(shape) - 2, -1, -1):
        strides[a] = strides[a + 1] * shape[a + 1]
    return strides


def runs(stored: Stored, box: Sequence[tuple]) -> tuple[np.ndarray, int, tuple, tuple | None]:
    """Byte runs of the box in the stored stream.

    Returns (run starts, run length, shape read, subsample): runs are in C order of the shape
    read and fill it back to back; ``subsample`` is ``(axis, step)`` when the run axis was read
    whole between its first and last element and must still be stepped.
    """
    shape, strides = stored.shape, _strides(stored)
    counts = [len(range(*b)) for b in box]
    # The run axis: the slowest axis after which every axis is whole with step 1.
    j = len(shape) - 1
    while j > 0 and box[j][0] == 0 and box[j][1] == shape[j] and box[j][2] == 1:
        j -= 1
    start, stop, step = box[j]
    read_shape = list(counts)
    subsample = None
    if step == 1 or strides[j] >= SMALL_RUN:
        if step == 1:
            length = counts[j] * strides[j]
            starts = np.array([start * strides[j]], dtype=np.int64)
        else:
            length = strides[j]
            starts = np.arange(start, stop, step, dtype=np.int64) * strides[j]
    else:  # small elements with a step: the enclosing run, stepped in memory
        last = start + (counts[j] - 1) * step
        length = (last - start + 1) * strides[j]
        starts = np.array([start * strides[j]], dtype=np.int64)
        read_shape[j] = last - start + 1
        subsample = (j, step)
    for a in range(j - 1, -1, -1):
        s0, _, st = box[a]
        outer = (s0 + np.arange(counts[a], dtype=np.int64) * st) * strides[a]
        starts = (outer[:, None] + starts[None, :]).reshape(-1)
    return starts, length, tuple(read_shape), subsample


def one_run(stored: Stored, box: Sequence[tuple]) -> tuple[int, int, int] | None:
    """(piece index, byte offset in it, length) when the box is one run of bytes in one piece
    (whole slices of the slowest axes, the commonest region), else None.

    The same plan as :func:`runs` gives for such a box, in Python ints: for one run the
    arrays of the general plan cost more than the read.
    """
    shape, size = stored.shape, stored.dtype.itemsize
    j = len(shape) - 1
    while j > 0 and tuple(box[j]) == (0, shape[j], 1):
        size *= shape[j]
        j -= 1
    start, stop, step = box[j]
    count = len(range(start, stop, step))
    if count != 1 and step != 1:
        return None
    offset, stride = start * size, size * shape[j]
    for a in range(j - 1, -1, -1):
        first, end, every = box[a]
        if len(range(first, end, every)) != 1:
            return None
        offset += first * stride
        stride *= shape[a]
    p = bisect.bisect_right(stored.bounds, offset) - 1
    length = count * size
    if p + 1 >= len(stored.bounds) or offset + length > stored.bounds[p + 1]:
        return None
    return p, offset - stored.bounds[p], length


def split(stored: Stored, starts: np.ndarray, length: int):
    """Per piece: (piece index, run starts within the piece, lengths, destination offsets)."""
    dests = np.arange(starts.size, dtype=np.int64) * length
    bounds = stored.starts
    if len(stored.pieces) == 1:
        return [(0, starts, np.full(starts.size, length, dtype=np.int64), dests)]
    first = np.searchsorted(bounds, starts, side="right") - 1
    last = np.searchsorted(bounds, starts + length - 1, side="right") - 1
    lengths = np.full(starts.size, length, dtype=np.int64)
    if np.any(first != last):  # runs crossing a file boundary: cut them there
        s, ln, d, pc = [], [], [], []
        for k in range(starts.size):
            a, b, dst = int(starts[k]), int(starts[k]) + length, int(dests[k])
            for p in range(int(first[k]), int(last[k]) + 1):
                lo, hi = max(a, int(bounds[p])), min(b, int(bounds[p + 1]))
                s.append(lo), ln.append(hi - lo), d.append(dst + lo - a), pc.append(p)
        starts, lengths, dests, first = (np.array(v, dtype=np.int64) for v in (s, ln, d, pc))
    out = []
    for p in np.unique(first):
        m = first == p
        out.append((int(p), starts[m] - bounds[p], lengths[m], dests[m]))
    return out


def row_plan(stored: Stored, box: Sequence[tuple]) -> tuple | None:
    """The box as ``k >= 2`` rows per plane in one raw piece, when that is how the general plan
    reads it: (piece index, plane starts in the piece (int64, increasing), k, row step, row
    length, joined) in bytes, else None.

    A row is the run of the general plan (step 1 on its axis).  ``joined`` says each plane's
    rows are read as one span of ``(k - 1) * step + length`` bytes (rows at most ``GAP`` apart,
    a span at most ``SPAN``); otherwise every row is read alone.  Planes are always read apart:
    None when two planes would join one span (the general plan handles that).
    """
    shape = stored.shape
    if len(shape) < 2:
        return None
    strides = _strides(stored)
    j = len(shape) - 1
    while j > 0 and tuple(box[j]) == (0, shape[j], 1):
        j -= 1
    start, stop, step = box[j]
    if j == 0 or step != 1:
        return None
    length = (stop - start) * strides[j]
    r0, r1, rs = box[j - 1]
    k = len(range(r0, r1, rs))
    if k < 2:
        return None
    row_step = rs * strides[j - 1]
    joined = row_step - length <= GAP
    if joined and (k - 1) * row_step + length > SPAN:
        return None  # a plane of several spans
    first = start * strides[j] + r0 * strides[j - 1]
    last_row = (k - 1) * row_step
    # The plane axes: those of one index only add to the offset (NIfTI has several).
    varying = []
    for a in range(j - 2, -1, -1):
        s0, s1, sa = box[a]
        first += s0 * strides[a]
        if len(range(s0, s1, sa)) > 1:
            varying.append((len(range(s0, s1, sa)), sa * strides[a]))
    if len(varying) <= 1:  # planes one step apart (a 3-D box), in ints
        count, every = varying[0] if varying else (1, 0)
        if count > 1 and every - last_row - length <= GAP:
            return None  # the next plane's first row would join this plane's last read
        planes = np.arange(count, dtype=np.int64) * every + first
    else:
        planes = np.array([first], dtype=np.int64)
        for count, every in varying:
            planes = (np.arange(count, dtype=np.int64)[:, None] * every
                      + planes[None, :]).reshape(-1)
        if int((np.diff(planes) - last_row - length).min()) <= GAP:
            return None
    first, end = int(planes[0]), int(planes[-1]) + last_row + length
    p = bisect.bisect_right(stored.bounds, first) - 1
    if p + 1 >= len(stored.bounds) or end > stored.bounds[p + 1] \
            or stored.pieces[p].encoding != "raw":
        return None
    return p, planes - stored.bounds[p], k, row_step, length, joined
