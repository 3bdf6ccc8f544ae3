"""Keys of :class:`mitk.LazyImage` regions: NumPy basic indices as boxes of positive steps.

``lz[key]`` reads a box (one ``(start, stop, step)`` per axis, step >= 1) and then applies the
index that turns it into ``arr[key]`` (``0`` for an integer, ``::-1`` for a negative step,
``None`` for a new axis).  Pure functions of the key and the shape; no I/O, nothing shared.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

__all__ = ["MAX_DIMS", "memo_key", "normalize", "slices"]


#: The most axes a NumPy (>= 2.0) array has: an index that would make more is an IndexError.
MAX_DIMS = 64


def memo_key(key: Any) -> Any:
    """``key`` as a dict key when it holds only integers and slices of ints (or None), else
    None.

    Keys equal as dict keys are then the same index: ``True`` and ``1.0`` equal ``1`` but are
    not valid indices (and slices are unhashable before Python 3.12), so a slice becomes the
    tuple of its parts, a NumPy integer (``for z in np.arange(n)``) the int it is, and a key
    with anything else in it has no memo key.
    """
    kind = type(key)
    if kind is int:
        return key
    if kind is slice:
        key = (key,)
    elif kind is not tuple:
        return int(key) if isinstance(key, np.integer) else None
    else:
        for k in key:  # a tuple of ints alone (a slice of a volume, a frame) is its own key
            if type(k) is not int:
                break
        else:
            return key
    out = []
    for k in key:
        kind = type(k)
        if kind is int:
            out.append(k)
        elif isinstance(k, np.integer):
            out.append(int(k))
        elif kind is slice:
            a, b, c = k.start, k.stop, k.step
            if ((a is None or type(a) is int) and (b is None or type(b) is int)
                    and (c is None or type(c) is int)):
                out.append((a, b, c))
            else:
                return None
        else:
            return None
    return tuple(out)


def normalize(key: Any, shape: tuple) -> tuple[list, tuple]:
    """(box, post): positive-step (start, stop, step) per axis, then the index that turns the
    box into ``arr[key]`` (0 for an int, ``::-1`` for a negative step, None for newaxis)."""
    parts = key if isinstance(key, tuple) else (key,)
    # The commonest keys (ints and slices: a slice of a volume, a frame, a block) skip the
    # expansion of ... and None, which costs more than reading a slice.
    plain = all(type(k) is int or type(k) is slice for k in parts)
    if not plain and sum(1 for k in parts if k is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    used = len(parts) if plain else sum(1 for k in parts if k is not None and k is not Ellipsis)
    if used > len(shape):
        raise IndexError(f"too many indices for an image of {len(shape)} axes: {used} were "
                         "indexed")
    expanded: list = []
    if plain:
        expanded = [*parts, *[slice(None)] * (len(shape) - used)]
    else:
        for k in parts:
            if k is Ellipsis:
                expanded += [slice(None)] * (len(shape) - used)
            else:
                expanded.append(k)
        if not any(k is Ellipsis for k in parts):
            expanded += [slice(None)] * (len(shape) - used)
    box, post = [], []
    axis = 0
    for k in expanded:
        if k is None:
            post.append(None)
            continue
        n = shape[axis]
        if isinstance(k, slice):
            start, stop, step = k.indices(n)
            if step == 1:  # the commonest slice, without the range below
                box.append((start, stop, 1) if start < stop else (0, 0, 1))
                post.append(slice(None))
                axis += 1
                continue
            r = range(start, stop, step)
            if len(r) == 0:
                box.append((0, 0, 1))
                post.append(slice(None))
            elif r.step > 0:
                box.append((r[0], r[-1] + 1, r.step))
                post.append(slice(None))
            else:
                box.append((r[-1], r[0] + 1, -r.step))
                post.append(slice(None, None, -1))
        else:
            if type(k) is int:
                i = k
            elif isinstance(k, (bool, np.bool_)):
                raise IndexError("boolean indices are advanced indexing; LazyImage takes "
                                 "integers, slices, ... and None")
            else:
                try:
                    i = operator.index(k)
                except TypeError:
                    raise IndexError("only integers, slices (`:`), ellipsis (`...`) and None "
                                     f"are valid indices of a LazyImage, not {type(k).__name__}"
                                     ) from None
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for axis {axis} with size {n}")
            i %= n
            box.append((i, i + 1, 1))
            post.append(0)
        axis += 1
    if not plain:  # None adds axes; NumPy refuses an index that makes too many
        ndim = sum(1 for p in post if type(p) is not int)
        if ndim > MAX_DIMS:
            raise IndexError(f"number of dimensions must be within [0, {MAX_DIMS}], indexing "
                             f"result would have {ndim}")
    return box, tuple(post)


def slices(post: tuple, box: list) -> list:
    """The slice of each axis that the (box, post) pair selects (ints as one-wide slices)."""
    out, b = [], iter(box)
    for p in post:
        if p is None:
            continue
        start, stop, step = next(b)
        if p == slice(None, None, -1):
            last = start + (len(range(start, stop, step)) - 1) * step
            out.append(slice(last, start - 1 if start else None, -step))
        else:
            out.append(slice(start, stop, step))
    return out
