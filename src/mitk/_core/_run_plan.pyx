"""Planning the reads of a raw region's byte runs: which runs are read as one span, and whether
every span holds the same pattern of runs.

A region of a raw file is a sorted list of byte runs (a 40^3 block of a 256^3 int16 volume is
1600 rows).  Both questions are one pass over the list, which in NumPy takes a dozen array
operations costing more than the pass itself; here each is one loop (``mitk.io._raw_runs``).
"""

cimport cython
from libc.stdint cimport int64_t

import operator

import numpy as np


@cython.boundscheck(False)
@cython.wraparound(False)
def spans(const int64_t[::1] starts not None, const int64_t[::1] lengths not None,
          gap, most):
    """Group sorted, non-overlapping runs into spans read at once.

    Run ``k`` joins the span of run ``k - 1`` when the gap between them is at most ``gap`` bytes
    and the span, with it, is at most ``most`` bytes; a run longer than ``most`` is a span of its
    own.

    Parameters
    ----------
    starts, lengths : int64 arrays, C-contiguous, of one length (at least 1)
        The runs, by increasing start.
    gap, most : int
        Largest gap read through, and largest span (bytes).

    Returns
    -------
    (los, his) : two int64 arrays
        Span ``i`` is runs ``los[i]`` to ``his[i] - 1``.

    Raises
    ------
    ValueError
        Arrays of different lengths, or none.
    TypeError
        ``gap`` or ``most`` is not an integer.

    Notes
    -----
    Holds the GIL (a short loop); locks nothing.
    """
    cdef Py_ssize_t n = starts.shape[0], k, count = 1
    # Python ints only (operator.index): a float would be cut silently by the C conversion.
    cdef int64_t gap_ = operator.index(gap), most_ = operator.index(most)
    if lengths.shape[0] != n or n == 0:
        raise ValueError("starts and lengths must be one or more runs each, of one length")
    los_arr = np.empty(n, dtype=np.int64)
    his_arr = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] los = los_arr, his = his_arr
    cdef int64_t first = starts[0]
    los[0] = 0
    for k in range(1, n):
        if starts[k] - (starts[k - 1] + lengths[k - 1]) > gap_ or \
                starts[k] + lengths[k] - first > most_:
            his[count - 1] = k
            los[count] = k
            count += 1
            first = starts[k]
    his[count - 1] = n
    return los_arr[:count], his_arr[:count]


@cython.boundscheck(False)
@cython.wraparound(False)
def regular(const int64_t[::1] los not None, const int64_t[::1] his not None,
            const int64_t[::1] starts not None, const int64_t[::1] lengths not None,
            const int64_t[::1] dests not None):
    """The pattern shared by every span, when there is one.

    Parameters
    ----------
    los, his : int64 arrays
        The spans, as :func:`spans` gives them.
    starts, lengths, dests : int64 arrays
        The runs, and where each goes in the result.

    Returns
    -------
    tuple of int or None
        ``(runs per span, run step, span bytes)`` when every span holds the same number (two
        or more) of equally spaced runs of one length, and the runs fill the result back to
        back from its start; else None.

    Raises
    ------
    ValueError
        Arrays of the wrong lengths.

    Notes
    -----
    Holds the GIL (a short loop); locks nothing.
    """
    cdef Py_ssize_t nspans = los.shape[0], n = starts.shape[0], i, m
    cdef int64_t k, step, length, base
    if his.shape[0] != nspans or lengths.shape[0] != n or dests.shape[0] != n or nspans == 0:
        raise ValueError("los and his, and starts, lengths and dests, must be of one length")
    k = his[0] - los[0]
    if k < 2 or nspans * k != n:
        return None
    length = lengths[0]
    step = starts[1] - starts[0]
    if step < length:
        return None
    for i in range(nspans):
        if los[i] != i * k or his[i] != (i + 1) * k:
            return None
        base = starts[los[i]]
        for m in range(k):
            if starts[los[i] + m] - base != m * step:
                return None
    for i in range(n):
        if lengths[i] != length or dests[i] != i * length:
            return None
    return int(k), int(step), int((k - 1) * step + length)
