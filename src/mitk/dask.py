"""Dask arrays of image files: ``LazyImage.to_dask``, :func:`from_files` and :func:`save`.

Needs the ``dask`` extra (``pip install "mitk-core[dask]"``).  Graph tasks carry only the path,
the read options, the files' identities and a region; each worker opens the file itself (one
:class:`~mitk.lazy.LazyImage` per file and process, cached) and reads its region, so building a
graph reads no pixels and nothing large is ever pickled.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import threading
from typing import Any, Sequence

import numpy as np

from . import io
from .errors import ArgumentError, CorruptFileError, UnsupportedFormatError
from .io import _regions, _replace
from .io._info import ImageInfo
from .lazy import LazyImage, _auto_chunk, _describe, stored_box, to_stored

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
        As :meth:`mitk.lazy.LazyImage.to_dask`; the new axis has one file per chunk.
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


#: The extensions :func:`save` writes: single files whose raw pixels end the file.
SAVE_EXTENSIONS = (".nrrd", ".nii", ".mha")


def _like_info(like: Any, dtype: np.dtype, format_name: str):
    """The ImageInfo of ``like`` (an Image or LazyImage) for pixels of ``dtype``."""
    from . import _image_io
    from .image import Image

    if isinstance(like, Image):
        info = _image_io.image_info(like, format_name)
    elif isinstance(like, LazyImage):
        info = ImageInfo(**{f: getattr(like._info, f) for f in (
            "dtype", "shape", "channels", "spacing", "origin", "direction", "time_origin",
            "time_spacing", "time_bounds", "properties")})
        info.properties = dict(info.properties)
    else:
        raise TypeError(f"like must be a mitk.Image or mitk.LazyImage, not {type(like).__name__}")
    info.dtype = np.dtype(dtype)
    # The pixels are written as they are: no scaling is declared for them.
    for key in ("nifti.scl_slope", "nifti.scl_inter"):
        info.properties.pop(key, None)
    return info


def _write_box(stored: _regions.Stored, box: Sequence[tuple], data: np.ndarray) -> None:
    """Write ``data`` (the stored elements of ``box``, C order, steps 1) into the raw pieces.

    Each run goes to its offset with ``os.pwrite`` (no shared file position), so writers of
    disjoint boxes may run at once, in threads or processes.  Only raw pieces can be written.
    """
    starts, length, _, subsample = _regions._runs(stored, box)
    if subsample is not None:  # pragma: no cover - boxes of writers have step 1
        raise ValueError("write_box needs boxes of step 1")
    src = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    for p, s, ln, d in _regions._split(stored, starts, length):
        piece = stored.pieces[p]
        if piece.encoding != "raw":
            raise ValueError(f"{piece.label}: only raw data can be written in place")
        fd = os.open(piece.src, os.O_WRONLY | getattr(os, "O_BINARY", 0))
        try:
            for a, n, dst in zip(s.tolist(), ln.tolist(), d.tolist()):
                view = memoryview(src[dst:dst + n])
                done = 0
                while done < n:
                    done += os.pwrite(fd, view[done:], piece.start + a + done)
        finally:
            os.close(fd)


def _write_region(tmp: str, box: list, pixels: np.ndarray) -> int:
    """A task: write one chunk of pixels at its offsets in the temporary file."""
    d = _describe(tmp, {})
    _write_box(d.stored, stored_box(d, box), to_stored(d, box, pixels))
    return int(pixels.nbytes)


def save(array: Any, path: Any, like: Any, **save_options: Any) -> None:
    """Write a Dask array as one image file with the geometry of ``like``.

    Parameters
    ----------
    array : dask.array.Array
        Pixels in NumPy order, of ``like.shape``, in a dtype the format stores.
    path : str or os.PathLike
        A ``.nrrd``, ``.nii`` or ``.mha`` file (raw data).
    like : Image or LazyImage
        Gives geometry, time geometry and properties.
    **save_options
        As :meth:`mitk.Image.save` (``fsync``; a compression is UnsupportedFormatError here).

    Raises
    ------
    ArgumentError
        ``array`` does not have the shape of ``like``.
    UnsupportedFormatError
        Another extension, or a compression.
    TypeError
        ``like`` is neither an Image nor a LazyImage, or an unknown option.

    Notes
    -----
    The header and a preallocated payload are written first, to a temporary file in the
    target's directory (its name starts with ``.mitk-tmp-``); then each worker writes its
    chunks at their offsets (``os.pwrite``: no shared file position, any number of threads or
    processes at once); then the file is fsynced and renamed over ``path`` (SPEC 6.2).  A
    failure removes the temporary file and leaves ``path`` as it was.  Nothing is locked.  The
    payload is preallocated by writing zeros from untouched memory (no pixels in memory).
    """
    da = _dask_array()
    if not isinstance(array, da.Array):
        raise TypeError(f"array must be a dask.array.Array, not {type(array).__name__}")
    target = io.prepare_write(path, save_options)
    low = target.path.lower()
    ext = next((e for e in SAVE_EXTENSIONS if low.endswith(e)), None)
    if ext is None or low.endswith(".nii.gz"):
        raise UnsupportedFormatError(f"{target.path}: mitk.dask.save writes "
                                     f"{', '.join(SAVE_EXTENSIONS)} files (raw data)")
    if target.options.get("compression") not in (None, "raw"):
        raise UnsupportedFormatError(f"{target.path}: mitk.dask.save writes raw data only; save "
                                     "without compression (or compute the array and save the "
                                     "Image)")
    if tuple(array.shape) != tuple(like.shape):
        raise ArgumentError(f"array of shape {tuple(array.shape)} does not match like's shape "
                            f"{tuple(like.shape)}")
    info = _like_info(like, array.dtype, target.format.NAME)
    directory = os.path.dirname(os.path.abspath(target.path))
    fd, tmp = tempfile.mkstemp(prefix=_replace.TEMP_PREFIX + "dask-", suffix=ext, dir=directory)
    os.close(fd)
    try:
        # np.zeros of this size maps untouched zero pages: the writer's reads cost no memory.
        staged = io.prepare_write(tmp, dict(target.options, fsync=False))
        staged.write(np.zeros(info.full_shape, dtype=info.dtype), info)
        bounds = [np.cumsum((0,) + tuple(c)).tolist() for c in array.chunks]
        blocks = array.to_delayed()
        import dask

        tasks = []
        for idx in itertools.product(*(range(len(c)) for c in array.chunks)):
            box = [(bounds[a][i], bounds[a][i + 1], 1) for a, i in enumerate(idx)]
            tasks.append(dask.delayed(_write_region, pure=False)(tmp, box, blocks[idx]))
        dask.compute(*tasks)
        with _replace.durability(target.fsync):
            if _replace._durable.get():
                fd = os.open(tmp, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            os.replace(tmp, target.path)
            if _replace._durable.get():
                _replace._fsync_directory(directory)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
