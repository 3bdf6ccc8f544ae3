"""Dask arrays of image files: ``LazyImage.to_dask``, :func:`from_files` and :func:`save`.

Needs the ``dask`` extra (``pip install "mitk-core[dask]"``).  Graph tasks carry only the path,
the read options, the files' identities and a region; each worker opens the file itself (one
:class:`~mitk.lazy.LazyImage` per file and process, cached) and reads its region, so building a
graph reads no pixels and nothing large is ever pickled.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any, Sequence

import numpy as np

from .errors import ArgumentError, CorruptFileError, UnsupportedFormatError
from .lazy import LazyImage, _auto_chunk

__all__ = ["from_files", "save"]

# Per process: the LazyImage of each (path, options, identities) a task has read.
_OPENED: dict = {}
_OPENED_LOCK = threading.Lock()


def _dask_array():
    try:
        import dask.array as da
    except ImportError:
        raise ImportError("mitk.dask needs Dask: pip install \"mitk-core[dask]\"") from None
    return da


def _freeze(options: dict, identities: dict) -> tuple:
    return (tuple(sorted(options.items())), tuple(sorted(identities.items())))


def _read_region(path: str, frozen: tuple, region: tuple) -> np.ndarray:
    """A task: the pixels of ``region`` of the file, opened in this process if need be."""
    key = (path, frozen)
    with _OPENED_LOCK:
        lz = _OPENED.get(key)
    if lz is None:
        options, identities = dict(frozen[0]), dict(frozen[1])
        lz = LazyImage(path, **options)
        if lz._d.stored.identities != identities:
            raise CorruptFileError(f"{path}: the file was replaced, truncated or modified since "
                                   "the Dask array was made; open it again")
        with _OPENED_LOCK:
            if len(_OPENED) > 64:
                _OPENED.clear()
            _OPENED[key] = lz
    return lz[region]


def _array(lz: LazyImage, chunks: Any = "auto"):
    da = _dask_array()
    from dask.base import tokenize

    if isinstance(chunks, str) and chunks == "auto":
        sizes = _auto_chunk(lz.shape, lz.dtype.itemsize)
        chunks = tuple(tuple(min(c, n - s) for s in range(0, n, c))
                       for c, n in zip(sizes, lz.shape))
    else:
        chunks = da.core.normalize_chunks(chunks, lz.shape, dtype=lz.dtype)
    frozen = _freeze(lz._options, lz._d.stored.identities)
    name = "mitk-open-" + tokenize(lz.path, frozen, chunks)
    bounds = [np.cumsum((0,) + tuple(c)).tolist() for c in chunks]
    graph = {}
    for idx in itertools.product(*(range(len(c)) for c in chunks)):
        region = tuple(slice(bounds[a][i], bounds[a][i + 1]) for a, i in enumerate(idx))
        graph[(name,) + idx] = (_read_region, lz.path, frozen, region)
    return da.Array(graph, name, chunks, dtype=lz.dtype)


def from_files(paths: Sequence[Any], chunks: Any = "auto", **read_options: Any):
    """Stack same-shaped image files along a new first axis, as one Dask array.

    Parameters
    ----------
    paths : sequence of str or os.PathLike
        At least one file; each is opened with :func:`mitk.open` (headers only).
    chunks : "auto" or chunks of one image
        As :meth:`mitk.LazyImage.to_dask`; the new axis has one file per chunk.
    **read_options
        Passed to :func:`mitk.open` for every file.

    Returns
    -------
    (dask.array.Array, list of Geometry3D)
        The stack and each file's geometry of time step 0.

    Raises
    ------
    ArgumentError
        No paths, or a file whose shape, dtype or geometry (within 1e-6) differs from the
        first file's; the message names the first such file.
    """
    da = _dask_array()
    paths = list(paths)
    if not paths:
        raise ArgumentError("from_files needs at least one path")
    images = [LazyImage(p, **read_options) for p in paths]
    first = images[0]
    g0 = first.get_geometry(0)
    for lz in images[1:]:
        what = None
        if lz.shape != first.shape:
            what = f"shape {lz.shape}, not {first.shape}"
        elif lz.dtype != first.dtype:
            what = f"dtype {lz.dtype}, not {first.dtype}"
        elif lz.get_geometry(0) != g0:
            what = (f"geometry (spacing {lz.spacing}, origin {lz.origin}), not that of the first "
                    f"file (spacing {first.spacing}, origin {first.origin})")
        if what is not None:
            raise ArgumentError(f"{lz.path}: differs from {first.path}: {what}")
    arrays = [_array(lz, chunks) for lz in images]
    return da.stack(arrays, axis=0), [lz.get_geometry(0) for lz in images]


def save(array: Any, path: Any, like: Any, **save_options: Any) -> None:
    """Write a Dask array as one image file with the geometry of ``like``.

    Parameters
    ----------
    array : dask.array.Array
        Pixels in NumPy order, shaped like ``like`` (``like.shape``), of a dtype the format
        stores.
    path : str or os.PathLike
        The file to write.
    like : Image or LazyImage
        Gives geometry, time geometry and properties.
    **save_options
        As :meth:`mitk.Image.save`.

    Raises
    ------
    ArgumentError
        ``array`` does not have the shape of ``like``.
    """
    raise UnsupportedFormatError("mitk.dask.save is not available yet")
