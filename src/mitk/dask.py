"""Dask arrays of image files: ``LazyImage.to_dask``, :func:`from_files` and :func:`save`.

Needs the ``dask`` extra (``pip install "mitk-core[dask]"``).  Graph tasks carry only the path,
the read options, the files' identities and a region; each worker opens the file itself (one
:class:`~mitk.lazy.LazyImage` per file and process, cached) and reads its region, so building a
graph reads no pixels and nothing large is ever pickled.
"""

from __future__ import annotations

import dataclasses
import errno
import itertools
import os
import shutil
import tempfile
import threading
from typing import Any, Sequence

import numpy as np

from . import io
from .errors import ArgumentError, CorruptFileError, UnsupportedFormatError
from .io import _box_runs, _regions, _replace
from .io._data_files import Piece
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


def _changed_since(path: str) -> CorruptFileError:
    return CorruptFileError(f"{path}: the file was replaced, truncated or modified since the "
                            "Dask array was made; open it again")


def _read_region(path: str, frozen: tuple, region: tuple) -> np.ndarray:
    """A task: the pixels of ``region`` of the file, opened in this process if need be."""
    key = (path, frozen)
    with _OPENED_LOCK:
        lz = _OPENED.get(key)
    if lz is None:
        options, identities = dict(frozen[0]), dict(frozen[1])
        # The files first, then the header: a file removed or rewritten since the array was
        # made is the same error whether or not this process has read it before.
        if any(_regions.identity_now(name) != ident for name, ident in identities.items()):
            raise _changed_since(path)
        lz = LazyImage(path, **options)
        if lz._d.stored.identities != identities:
            raise _changed_since(path)
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
        else:
            what = _geometry_difference(lz, first, g0)
        if what is not None:
            raise ArgumentError(f"{lz.path}: differs from {first.path}: {what}")
    arrays = [_array(lz, chunks) for lz in images]
    return da.stack(arrays, axis=0), [lz.get_geometry(0) for lz in images]


def _geometry_difference(lz: LazyImage, first: LazyImage, g0) -> str | None:
    """What differs between the geometry of ``lz`` and that of ``first`` (whose time step 0
    is ``g0``), said as the first such attribute; None when they agree (within 1e-6)."""
    if lz.get_geometry(0) == g0 and lz.time_geometry == first.time_geometry:
        return None
    for name in ("spacing", "origin", "direction"):
        mine, theirs = np.asarray(getattr(lz, name)), np.asarray(getattr(first, name))
        if mine.shape != theirs.shape or not np.allclose(mine, theirs, rtol=0, atol=1e-6):
            return (f"{name} {np.round(mine, 6).tolist()}, not {np.round(theirs, 6).tolist()} "
                    "of the first file")
    mine, theirs = lz.time_geometry, first.time_geometry
    return (f"time geometry ({mine.count_time_steps()} steps in {mine.get_time_bounds()}, or "
            f"a step's geometry), not the first file's ({theirs.count_time_steps()} steps in "
            f"{theirs.get_time_bounds()})")


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
    starts, length, _, subsample = _box_runs.runs(stored, box)
    if subsample is not None:  # pragma: no cover - boxes of writers have step 1
        raise ValueError("write_box needs boxes of step 1")
    src = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    for p, s, ln, d in _box_runs.split(stored, starts, length):
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


def _write_region(d: _regions.Described, box: list, pixels: np.ndarray) -> int:
    """A task: write one chunk of pixels at its offsets in the temporary file ``d`` describes.

    The chunk is cast to the file's native dtype first: a chunk may differ from what the Dask
    array declares (a ``map_blocks`` without the right ``dtype=``), and its bytes must never be
    written as if they were of another type.
    """
    pixels = np.asarray(pixels, dtype=d.info.dtype)
    _check_chunk(box, pixels)
    _write_box(d.stored, stored_box(d, box), to_stored(d, box, pixels))
    return int(pixels.nbytes)


def _check_chunk(box: list, pixels: np.ndarray) -> None:
    """ArgumentError when a computed chunk does not have the shape of its block: a
    ``map_blocks`` that changed it without saying so (``chunks=``) would otherwise be written
    short, or cut."""
    expected = tuple(b - a for a, b, _ in box)
    if pixels.shape != expected:
        raise ArgumentError(f"a chunk of shape {pixels.shape} computed for the block at "
                            f"{tuple(a for a, _, _ in box)} of shape {expected}: the array's "
                            "chunks are not what it declares")


def save(array: Any, path: Any, like: Any, **save_options: Any) -> None:
    """Write a Dask array as one image file with the geometry of ``like``.

    Parameters
    ----------
    array : dask.array.Array
        Pixels in NumPy order, of ``like.shape``, in a dtype the format stores.
    path : str or os.PathLike
        Any file :meth:`mitk.Image.save` writes, except DICOM: ``.nrrd``/``.nhdr``,
        ``.nii``/``.nii.gz``/``.hdr``/``.img``, ``.mha``/``.mhd``.
    like : Image or LazyImage
        Gives geometry, time geometry and properties.
    **save_options
        As :meth:`mitk.Image.save` (``fsync``, ``compression``, ``compression_level``,
        ``compression_block_size``, ...).

    Raises
    ------
    ArgumentError
        ``array`` does not have the shape of ``like``, or a bad option value.
    UnsupportedFormatError
        An extension no writer has, DICOM, pixels or geometry the format cannot store, or a
        detached pair through a symlink into another directory (all found before any chunk is
        computed).
    TypeError
        ``like`` is neither an Image nor a LazyImage, or an unknown option.

    Notes
    -----
    Raw ``.nrrd``, ``.nii`` and ``.mha`` files are written in place: the header and a
    preallocated payload go to a temporary file in the target's directory (its name starts with
    ``.mitk-tmp-``); each worker writes its chunks at their offsets (``os.pwrite``: no shared file
    position, any number of threads or processes at once); then the file is fsynced and renamed
    over ``path`` (SPEC 6.2).

    Everything else (a compression, a detached pair) is staged: the workers write their chunks
    into a temporary raw file in the target's directory the same way, which then needs the
    array's ``nbytes`` of free space there; then this process writes the target from it with
    the format's own writer (gzip and zlib payloads of 16 MiB or more as independent deflate
    blocks with their block index, on :func:`mitk.get_num_threads` threads, as ``Image.save``
    does), reading the staged pixels through a read-only memory map of that private file, and
    removes it.

    Chunks are cast to the native-order dtype of ``array``; the result keeps the mode and owner
    of a file it replaces, and a symlink at ``path`` is followed, as with ``Image.save``.

    Either way a failure removes the temporary files and leaves ``path`` as it was, and the
    format's checks of pixel type, geometry and options run on a one-voxel-per-frame probe
    before any chunk is computed.  Nothing is locked.
    """
    da = _dask_array()
    if not isinstance(array, da.Array):
        raise TypeError(f"array must be a dask.array.Array, not {type(array).__name__}")
    target = io.prepare_write(path, save_options)
    if target.format.NAME == "DICOM":
        raise UnsupportedFormatError(f"{target.path}: mitk.dask.save does not write DICOM")
    if tuple(array.shape) != tuple(like.shape):
        raise ArgumentError(f"array of shape {tuple(array.shape)} does not match like's shape "
                            f"{tuple(like.shape)}")
    # Files hold native-order pixels, as mitk.Image holds them: chunks are cast on the way.
    info = _like_info(like, array.dtype.newbyteorder("="), target.format.NAME)
    # A symlink is followed (the file it leads to is replaced, the link stays), as by
    # Image.save; a detached pair through a link into another directory is refused now.
    final = _replace.target_of(target.path)
    if target.path.lower().endswith((".nhdr", ".mhd", ".hdr", ".img")):
        _replace.pair_target(target.path, target.format.NAME)
    directory = os.path.dirname(os.path.abspath(final))
    if not os.path.isdir(directory):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), target.path)
    _probe(target, info, directory)
    low = target.path.lower()
    in_place = (any(low.endswith(e) for e in IN_PLACE_EXTENSIONS)
                and target.options.get("compression") in (None, "raw"))
    if in_place:
        try:
            _save_in_place(array, target, final, info, directory)
            return
        except _NotInPlace:
            pass
    _save_staged(array, target, info, directory)


class _NotInPlace(Exception):
    """The target's raw payload cannot be written in place (see :func:`_save_in_place`)."""


#: The extensions whose raw payload :func:`save` writes in place: single files whose raw
#: pixels end the file, in the order the image holds them.
IN_PLACE_EXTENSIONS = (".nrrd", ".nii", ".mha")


def _probe_shape(info: ImageInfo) -> tuple:
    """The shape of the probe: 1 along every axis of space (the time axis kept, for the time
    geometry), except the first axis too long for NIfTI-1, which keeps its length (up to 2^20),
    so that the probe's NIfTI version and size checks, and their messages, are the image's."""
    shape, long_kept = [], False
    for a, n in enumerate(info.shape):
        if len(info.shape) == 4 and a == 0:
            shape.append(n)
        elif n > 32767 and not long_kept:
            shape.append(min(n, 1 << 20))
            long_kept = True
        else:
            shape.append(1)
    return tuple(shape)


def _probe(target: io.Target, info: ImageInfo, directory: str) -> None:
    """Let the format check ``info`` and the options on a tiny image of the same kind.

    One voxel per frame (see :func:`_probe_shape`; time steps, channels, pixel type, geometry and
    properties kept), written with the target's own name in a temporary directory beside it and
    removed: an error the writer would raise at the end is raised before any chunk is computed,
    naming the user's path.
    """
    tiny = dataclasses.replace(info, shape=_probe_shape(info), properties=dict(info.properties))
    scratch = tempfile.mkdtemp(prefix=_replace.TEMP_PREFIX + "probe-", dir=directory)
    try:
        probe = io.prepare_write(os.path.join(scratch, os.path.basename(target.path)),
                                 dict(target.options, fsync=False))
        probe.write(np.zeros(tiny.full_shape, dtype=tiny.dtype), tiny)
    except (ArgumentError, UnsupportedFormatError, CorruptFileError, TypeError,
            ValueError) as exc:
        text = str(exc)
        named = text.replace(os.path.join(scratch, ""),
                             os.path.join(os.path.dirname(os.path.abspath(target.path)), ""))
        if named == text:
            raise
        try:
            renamed = type(exc)(named)
        except Exception:  # an exception class with other arguments: keep the original
            raise exc from None
        raise renamed from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _write_chunks(array, write, *args) -> None:
    """Compute every chunk of ``array`` and hand it to the task ``write(*args, box, chunk)``."""
    import dask

    bounds = [np.cumsum((0,) + tuple(c)).tolist() for c in array.chunks]
    blocks = array.to_delayed()
    tasks = []
    for idx in itertools.product(*(range(len(c)) for c in array.chunks)):
        box = [(bounds[a][i], bounds[a][i + 1], 1) for a, i in enumerate(idx)]
        tasks.append(dask.delayed(write, pure=False)(*args, box, blocks[idx]))
    dask.compute(*tasks)


def _save_in_place(array, target: io.Target, final: str, info: ImageInfo,
                   directory: str) -> None:
    ext = next(e for e in IN_PLACE_EXTENSIONS if target.path.lower().endswith(e))
    fd, tmp = tempfile.mkstemp(prefix=_replace.TEMP_PREFIX + "dask-", suffix=ext, dir=directory)
    os.close(fd)
    try:
        # The mode (and owner) the replaced file has, or a new file's: mkstemp's is 0600.
        _replace._give_attributes(tmp, final)
        # np.zeros of this size maps untouched zero pages: the writer reads them (or copies
        # slabs of them, for NIfTI channels) without the whole payload in memory.
        staged = io.prepare_write(tmp, dict(target.options, fsync=False))
        staged.write(np.zeros(info.full_shape, dtype=info.dtype), info)
        # Described once here; every task gets the description, not the header to parse again.
        described = _describe(tmp, {})
        if tuple(described.info.full_shape) != tuple(info.full_shape):
            # The file reads back with other axes (NIfTI keeps one slice or one time step with
            # channels as an image of fewer axes): the array's blocks cannot be placed through
            # that description, so the format's own writer writes it from a staged copy.
            raise _NotInPlace
        _write_chunks(array, _write_region, described)
        with _replace.durability(target.fsync):
            if _replace._durable.get():
                fd = os.open(tmp, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            os.replace(tmp, final)
            if _replace._durable.get():
                _replace._fsync_directory(directory)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _write_staged(stored: _regions.Stored, box: list, pixels: np.ndarray) -> int:
    """A task: write one chunk at its offsets in the staging file (C order of the image)."""
    pixels = np.ascontiguousarray(pixels, dtype=stored.dtype)
    _check_chunk(box, pixels)
    _write_box(stored, box, pixels)
    return int(pixels.nbytes)


def _save_staged(array, target: io.Target, info: ImageInfo, directory: str) -> None:
    shape = info.full_shape
    nbytes = int(np.prod(shape, dtype=np.int64)) * info.dtype.itemsize
    fd, raw = tempfile.mkstemp(prefix=_replace.TEMP_PREFIX + "dask-", suffix=".raw",
                               dir=directory)
    try:
        try:
            _reserve(fd, nbytes)
        finally:
            os.close(fd)
        piece = Piece(src=raw, label=raw, start=0, nbytes=nbytes)
        _write_chunks(array, _write_staged, _regions.Stored([piece], info.dtype, shape))
        # A read-only map of our own private file (nobody else knows its name, so nobody
        # truncates it): the writers take an ndarray and read it in pieces, and the page cache,
        # not this process's heap, holds what they have read.  It is never closed here: views
        # of it may live on in a traceback, and reference counting unmaps it after the last.
        pixels = np.memmap(raw, dtype=info.dtype, mode="r", shape=shape)
        target.write(pixels, info)
        del pixels
    finally:
        try:
            os.unlink(raw)
        except OSError:
            pass


def _reserve(fd: int, nbytes: int) -> None:
    """Give the staging file its size, allocated where the system can (a full disk fails here,
    before any chunk is computed)."""
    allocate = getattr(os, "posix_fallocate", None)
    if allocate is not None:
        try:
            allocate(fd, 0, nbytes)
            return
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
                raise
    os.ftruncate(fd, nbytes)
