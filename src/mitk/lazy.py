"""Images larger than memory: :func:`mitk.open` describes a file and reads regions of it on demand.

A :class:`LazyImage` holds what the header says (shape, dtype, geometry, properties), the read
plan of its pixels (:class:`mitk.io._regions.Stored`) and the identity of every file involved;
no open file.  Each region read opens the files it needs (or, for a region already inflated in
the block cache, stats it), checks that they are still the ones described, reads exactly what
the region needs (:mod:`mitk.io._regions`) and turns the stored values into image values (axis
order, components, byte order, NIfTI scaling) the way a full load does, so ``lz[key]`` equals
``np.asarray(mitk.Image(path))[key]`` bit for bit.
"""

from __future__ import annotations

import importlib
import itertools
from typing import Any, Iterator

import numpy as np

from . import _lazy_keys, io
from ._image_io import _time_geometry
from .errors import ArgumentError, CorruptFileError, UnsupportedFormatError
from .geometry import Geometry3D
from .image import Image
from .io import _regions
from .time_geometry import ProportionalTimeGeometry, TimeGeometry

_memo_key = _lazy_keys.memo_key  # looked up on every region read

__all__ = ["LazyImage", "open"]

#: Bytes per chunk that ``to_dask(chunks="auto")`` and ``iter_chunks`` aim at.
AUTO_CHUNK_BYTES = 32 << 20


def _describe(path: str, options: dict) -> _regions.Described:
    path, fmt = io._reader(path)
    try:
        opener = importlib.import_module(f"{fmt.__name__}._open")
    except ModuleNotFoundError:
        raise UnsupportedFormatError(
            f"{path}: mitk.open reads NRRD, NIfTI and MetaImage files, not {fmt.NAME}; load it "
            "with mitk.Image(path)") from None
    return opener.describe(path, **options)


class LazyImage:
    """An image file whose pixels are read on demand, region by region (SPEC 13).

    Made by :func:`mitk.open`.  It has the read-only attributes of an :class:`mitk.Image`
    (``ndim``, ``shape``, ``dtype``, ``channels``, ``nbytes``, ``spacing``, ``origin``,
    ``direction``, ``time_steps``, ``time_geometry``, ``get_geometry(t)``, ``properties``), plus
    ``path`` and ``format``.

    Notes
    -----
    No file is open between calls, and nothing is locked: every read checks that the header
    files, and the data files it reads (when it opens them, or by a ``stat`` for a region copied
    from the cache of inflated blocks), are unchanged since :func:`mitk.open` (size, mtime,
    inode; otherwise :class:`~mitk.errors.CorruptFileError`) and reads with positioned reads
    (``pread``; raw runs far apart in one compiled call), which release the GIL and share no
    file offset.  Data files a region does not touch are not looked at.  Any
    number of threads may read one LazyImage at once; the state they share (the checkpoints
    of a foreign compressed stream, the cache of inflated blocks) has its own locks; a
    stream's parsed block index is one attribute, which threads that race both set to the file's
    index (or, after an index the stream contradicts, to none).  Pickling sends (path,
    options, file identities), never pixels.
    """

    def __init__(self, path: Any, **options: Any) -> None:
        self._path = io.fspath(path)
        self._options = dict(options)
        self._d = _describe(self._path, self._options)
        self._info = self._d.info
        self._tg = _time_geometry(self._info, self._path)
        # Per-image state of the region reads (checkpoints, the block cache): made once and
        # never replaced; what lies in it locks itself.
        self._points: dict = {}
        d = self._d
        perm = stored_order(d)
        # None: the stored order already (size-1 axes, which NIfTI has many of, can go anywhere)
        moved = [a for a in perm if d.stored.shape[a] != 1]
        # NRRD's complex pairs are joined by a view, so their axis must come last in memory
        complex_last = d.complex_axis in (None, len(d.stored.shape) - 1)
        self._perm = None if moved == sorted(moved) and complex_last else perm
        self._shape = tuple(self._info.full_shape)
        # A box read as stored is the region itself (reshaped): no axes to reorder, no complex
        # pairs to join, no scaling.
        self._as_stored = self._perm is None and d.complex_axis is None and d.scaling is None
        # A region read checks each data file it reads as it reads it (and only those: a slice
        # of a LIST of a thousand files is one check, not a thousand); the headers first.
        data_files = frozenset(p.src for p in d.stored.pieces)
        self._headers = [(name, expected) for name, expected in d.stored.identities.items()
                         if name not in data_files]
        # Plans of keys read before (a region is often read again, or one per slice): pure
        # arithmetic of the key and the description, so kept; see _entry.
        self._key_plans: dict = {}
        self._box_plans: dict = {}

    # -- attributes --------------------------------------------------------------------------

    @property
    def path(self) -> str:
        """The file as given to :func:`mitk.open` (a str)."""
        return self._path

    @property
    def format(self) -> str:
        """The file format: ``"NRRD"``, ``"NIfTI"`` or ``"MetaImage"``."""
        return self._d.format

    @property
    def ndim(self) -> int:
        """Image dimension: 2, 3 or 4 (components do not count)."""
        return self._info.ndim

    @property
    def shape(self) -> tuple:
        """NumPy-order shape ``(t, z, y, x, c)`` (``t`` for 4D, ``c`` when ``channels > 1``)."""
        return self._shape

    @property
    def dtype(self) -> np.dtype:
        """Native dtype of one component, as ``mitk.Image(path)`` has it."""
        return np.dtype(self._info.dtype)

    @property
    def channels(self) -> int:
        """Components per pixel."""
        return self._info.channels

    @property
    def nbytes(self) -> int:
        """Bytes of the whole image in memory."""
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    @property
    def time_steps(self) -> int:
        """Number of time steps (1 unless 4D)."""
        return self._info.time_steps

    @property
    def spacing(self) -> tuple:
        """Spacing of step 0 in mm, ``(sx, sy, sz)``."""
        return tuple(self._tg.get_geometry_for_time_step(0).spacing)

    @property
    def origin(self) -> tuple:
        """LPS world position of voxel (0, 0, 0) of step 0."""
        return tuple(self._tg.get_geometry_for_time_step(0).origin)

    @property
    def direction(self) -> np.ndarray:
        """3x3 direction of step 0 (a copy; column ``j`` is index axis ``j``)."""
        return np.array(self._tg.get_geometry_for_time_step(0).direction, dtype=np.float64)

    @property
    def time_geometry(self) -> TimeGeometry:
        """The image's time geometry (a copy: the file cannot change through it)."""
        return self._tg.copy()

    def get_geometry(self, t: int = 0) -> Geometry3D:
        """The geometry of time step ``t`` (a copy); TimeStepError outside the steps."""
        return self._tg.get_geometry_for_time_step(t).copy()

    @property
    def properties(self) -> dict:
        """The metadata ``mitk.Image(path).properties`` would hold (a new dict)."""
        return dict(self._info.properties)

    def __repr__(self) -> str:
        return (f"<mitk.LazyImage {self._path!r} format={self.format} shape={self.shape} "
                f"dtype={self.dtype} channels={self.channels}>")

    # -- pickling ----------------------------------------------------------------------------

    def __reduce__(self):
        return _reopen, (self._path, self._options, self._d.stored.identities)

    # -- regions -----------------------------------------------------------------------------

    def _check_files(self, headers_only: bool = False) -> None:
        """CorruptFileError if a file (only the header files that hold no pixels, with
        ``headers_only``) changed since :func:`open`."""
        for name, expected in (self._headers if headers_only
                               else self._d.stored.identities.items()):
            if _regions.identity_now(name) != expected:
                raise CorruptFileError(f"{name}: the file was replaced, truncated or modified "
                                       f"since mitk.open({self._path!r}); open it again")

    def _stored_box(self, box: list) -> list:
        return stored_box(self._d, box)

    def _read_box(self, plan: _regions.BoxPlan, counts: tuple) -> np.ndarray:
        """The image values of a box (``counts`` values per axis of ``shape``) that ``plan``
        (of its stored box) reads."""
        d = self._d
        arr = _regions.read_planned(d.stored, plan, self._points)
        if self._as_stored:  # the commonest case, and read_planned's result is C-contiguous
            return arr.reshape(counts)
        if self._perm is not None:
            arr = arr.transpose(self._perm)
        if d.complex_axis is not None:
            arr = np.ascontiguousarray(arr).view(
                np.complex64 if arr.dtype.itemsize == 4 else np.complex128)
        arr = arr.reshape(counts)
        if d.scaling is not None:
            slope, inter = d.scaling
            work = arr.astype(np.complex128 if arr.dtype.kind == "c" else np.float64)
            with np.errstate(over="ignore", invalid="ignore"):
                work *= slope
                if inter:
                    work += inter
                arr = work.astype(self.dtype)
        return np.ascontiguousarray(arr)

    def _entry(self, key: Any, memo: Any) -> tuple:
        """(plan or None for an empty box, counts, post, final shape or None, direct) of
        ``key``.

        ``post`` turns the box read into ``arr[key]``; when it only drops and adds axes (no
        reversal, so all-int keys too: a 0-d array, not a scalar) ``final`` is the shape it
        gives, and a reshape does it.  Only the short plans (one run, or rows per plane: a
        slice, a frame, a y-plane, a block) are kept, by their box, and an entry of a key of
        ints and slices alone by the key too (:func:`~mitk._lazy_keys.memo_key`); each dict
        is emptied when it holds :data:`_KEPT_PLANS`.  ``direct`` is the compiled read of a
        kept entry that is one run of raw data, as the result is shaped
        (:func:`~mitk.io._regions.file_run`), else None.  ``memo`` is the key's memo key,
        which the caller has looked up already.
        """
        box, post = _lazy_keys.normalize(key, self._shape)
        counts = tuple([len(range(*b)) for b in box])
        final: list | None = []
        it = iter(counts)
        for p in post:
            if p is None:
                final.append(1)
            elif type(p) is int:
                next(it)
            elif p == _ALL:
                final.append(next(it))
            else:  # a reversed axis: indexed, not reshaped
                final = None
                break
        if 0 in counts:
            plan = None
            if final is None:
                final = list(np.empty(counts, np.uint8)[post].shape)
        else:
            boxkey = tuple(box)
            plan = self._box_plans.get(boxkey)
            if plan is None:
                plan = _regions.plan_box(self._d.stored, self._stored_box(box))
                if plan.pieces is None:  # the short plans (ints, or arrays per plane)
                    _keep(self._box_plans, boxkey, plan)
        if final is not None:
            final = tuple(final)
        direct = None
        if memo is not None and plan is not None and final is not None and self._as_stored \
                and not self._headers:
            direct = _regions.file_run(self._d.stored, plan, final)
        entry = (plan, counts, post, final, direct)
        if memo is not None and (plan is None or plan.pieces is None):
            _keep(self._key_plans, memo, entry)
        return entry

    def __getitem__(self, key: Any) -> np.ndarray:
        """The pixels ``np.asarray(mitk.Image(path))[key]``, as a new writable array.

        Parameters
        ----------
        key : int, slice, Ellipsis, None or a tuple of them
            NumPy basic indexing over :attr:`shape` (any step, negative ones too).

        Returns
        -------
        numpy.ndarray
            A new C-contiguous, writable array; reads and decodes only what the region needs.

        Raises
        ------
        IndexError
            An index out of range, too many indices, or advanced (array, bool) indexing.
        CorruptFileError
            A header file, or a data file the region reads, changed since :func:`mitk.open`
            (any file, for an empty region); or a file is truncated or corrupt where the
            region is.

        Notes
        -----
        Copies from the file; locks nothing; the GIL is released in the reads and codecs.
        """
        memo = _memo_key(key)
        entry = self._key_plans.get(memo)  # None is never a key: the ones without a memo
        if entry is None:
            entry = self._entry(key, memo)
        direct = entry[4]
        if direct is not None:  # a slice of raw data: one compiled call, from the first read
            arr = direct.read()
            if arr is not None:
                return arr
        plan, counts, post, final, _ = entry
        if plan is None:
            self._check_files()  # nothing is read, but a changed file is still reported
            return np.empty(final, dtype=self.dtype)
        if self._headers:
            self._check_files(headers_only=True)
        if final is not None:
            if self._as_stored:  # the commonest case: the stored elements, in their order
                arr = _regions.read_planned(self._d.stored, plan, self._points)
            else:
                arr = self._read_box(plan, counts)
            return arr.reshape(final)  # a view of the new array: writable, C-contiguous
        # A reversed axis (the only post that is not a reshape): a new C-contiguous copy.
        return np.ascontiguousarray(self._read_box(plan, counts)[post])

    def read_cost(self, key: Any = ...) -> int:
        """Bytes that must be read (raw, text) or decompressed (streams) to serve ``key``.

        Notes
        -----
        Reads no pixels.  A region of a foreign compressed stream costs everything from the
        start of the stream (or from the nearest checkpoint an earlier read left) to its last
        byte; an indexed stream only the blocks it touches; raw data the spans read (gaps
        of at most 4 KiB between runs are read through); ASCII the whole text.
        """
        box, _ = _lazy_keys.normalize(key, self.shape)
        if any(b[0] >= b[1] for b in box):
            return 0
        return _regions.box_cost(self._d.stored, self._stored_box(box), self._points)

    def crop(self, key: Any) -> Image:
        """An image of the pixels ``key`` selects, placed where they were in the world.

        Parameters
        ----------
        key : slice, Ellipsis or a tuple of them
            Slices only (any step); integers are a TypeError (use ``slice(i, i + 1)``).

        Returns
        -------
        Image
            A new image with its own pixels: origin at the first selected voxel, spacing times
            the step, direction columns negated for negative steps, and the time geometry of
            the selected steps.

        Raises
        ------
        TypeError
            An integer or ``None`` in ``key``.
        ArgumentError
            An empty selection, or a negative step along time.

        Notes
        -----
        Reads as ``lz[key]`` does (a copy from the file; the GIL released in the reads and
        codecs) and adopts the array into the new image without a further copy.  Locks nothing.
        """
        parts = key if isinstance(key, tuple) else (key,)
        for k in parts:
            if not (isinstance(k, slice) or k is Ellipsis):
                raise TypeError(f"crop takes slices (and ...), not {type(k).__name__}: "
                                "use slice(i, i + 1) to keep one index")
        box, post = _lazy_keys.normalize(key, self.shape)
        ranges = [range(*s.indices(n)) for s, n in zip(_lazy_keys.slices(post, box), self.shape)]
        if any(len(r) == 0 for r in ranges):
            raise ArgumentError(f"crop {key!r} selects no pixels of an image of shape "
                                f"{self.shape}")
        pixels = self[key]
        ndim, channels = self.ndim, self.channels
        if channels > 1:
            channels = len(ranges[-1])
            if channels == 1:
                pixels = pixels.reshape(pixels.shape[:-1])
        spatial = ranges[1:ndim] if ndim == 4 else ranges[:ndim]
        xyz = list(reversed(spatial))  # x, y (, z)
        g0 = self._tg.get_geometry_for_time_step(0)
        first = [r[0] for r in xyz] + [0] * (3 - len(xyz))
        origin = tuple(g0.index_to_world(tuple(float(v) for v in first)))
        spacing = list(g0.spacing)
        direction = np.array(g0.direction, dtype=np.float64)
        for i, r in enumerate(xyz):
            spacing[i] *= abs(r.step)
            if r.step < 0:
                direction[:, i] = -direction[:, i]
        image = Image(pixels, spacing=spacing, origin=origin, direction=direction, copy=False,
                      channels=channels if channels > 1 else None)
        if ndim == 4:
            steps = ranges[0]
            if steps.step < 0:
                raise ArgumentError("crop cannot reverse time: give the time axis a positive "
                                    "step")
            lo, hi = self._tg.get_time_bounds(steps[0])
            tg = ProportionalTimeGeometry.from_geometry(
                image.get_geometry(0), len(steps), first_time_point=lo,
                step_duration=(hi - lo) * steps.step)
            image.set_time_geometry(tg)
        image.properties.update(self._info.properties)
        return image

    def load(self) -> Image:
        """The whole image, as ``mitk.Image(path, **options)`` reads it.

        Raises CorruptFileError when a file changed since :func:`mitk.open` (checked before and
        after the read).

        Notes
        -----
        A copy: reads straight into the new image's buffer, releasing the GIL in the reads and
        codecs, as :meth:`mitk.Image.load` does.  Locks nothing of the LazyImage.
        """
        self._check_files()
        image = Image.load(self._path, **self._options)
        self._check_files()
        return image

    def iter_chunks(self, chunk_shape: Any = None) -> Iterator[tuple[tuple, np.ndarray]]:
        """``(slices, pixels)`` pairs covering the image, in C (file) order.

        Parameters
        ----------
        chunk_shape : tuple of int, optional
            One size per axis of :attr:`shape` (``None`` or ``-1``: the whole axis).  By default,
            whole slices of the slowest axes, about 32 MiB each.

        Notes
        -----
        Memory is one chunk at a time; each chunk is a new array read as ``lz[slices]`` (a
        copy; nothing locked; the GIL released in the reads).
        """
        if chunk_shape is None:
            sizes = _auto_chunk(self.shape, self.dtype.itemsize)
        else:
            chunk_shape = tuple(chunk_shape)
            if len(chunk_shape) != len(self.shape):
                raise ArgumentError(f"chunk_shape {chunk_shape} needs one size per axis of "
                                    f"shape {self.shape}")
            sizes = []
            for c, n in zip(chunk_shape, self.shape):
                if c is None or c == -1:
                    sizes.append(n)
                elif isinstance(c, bool) or not isinstance(c, (int, np.integer)):
                    raise TypeError(f"chunk sizes must be ints, not {type(c).__name__}")
                elif c < 1:
                    raise ArgumentError(f"chunk_shape {chunk_shape} holds a size < 1")
                else:
                    sizes.append(int(c))
        grids = [range(0, n, c) for n, c in zip(self.shape, sizes)]
        for starts in itertools.product(*grids):
            region = tuple(slice(s, min(s + c, n)) for s, c, n in zip(starts, sizes, self.shape))
            yield region, self[region]

    def to_dask(self, chunks: Any = "auto"):
        """A Dask array of the image; building it reads no pixels.

        Parameters
        ----------
        chunks : "auto" or anything ``dask.array`` accepts
            ``"auto"``: whole slices of the slowest axes, about 32 MiB per chunk.

        Returns
        -------
        dask.array.Array
            Each task carries (path, options, file identities, region) only; a worker opens
            the file itself and reads its region (CorruptFileError if the file changed).

        Notes
        -----
        Needs Dask (the ``dask`` extra).  Computing a chunk reads it as ``lz[region]`` does,
        in the worker; nothing is shared or locked between tasks.  A bzip2 stream keeps no
        checkpoints, so each chunk of it is read from the stream's start: few chunks suit it.
        """
        from . import dask as mitk_dask

        return mitk_dask._array(self, chunks)


def _reopen(path: str, options: dict, identities: dict) -> LazyImage:
    lz = LazyImage(path, **options)
    if lz._d.stored.identities != identities:
        raise CorruptFileError(f"{path}: the file was replaced, truncated or modified since the "
                               "LazyImage was pickled; open it again")
    return lz


def open(path: Any, **read_options: Any) -> LazyImage:  # noqa: A001 - the SPEC names it open
    """Open an image file for region reads, reading its header but no pixels.

    Parameters
    ----------
    path : str, bytes or os.PathLike
        A NRRD, NIfTI or MetaImage file (headers with detached data included).
    **read_options
        The format's read options (``apply_scaling``, ``allow_external_data``).

    Returns
    -------
    LazyImage

    Raises
    ------
    FileNotFoundError, UnsupportedFormatError, CorruptFileError, TypeError
        As ``mitk.Image(path)`` raises them for the header and the data files' sizes; DICOM is
        UnsupportedFormatError.

    Notes
    -----
    Validates the whole header and checks that raw data files exist and are large enough;
    holds no open file afterwards.  Nothing is locked and no pixel is read.
    """
    return LazyImage(path, **read_options)


#: The index of a whole axis (what a box needs no further index on).
_ALL = slice(None)
#: Plans a LazyImage keeps of each kind; all are dropped when there are more.
_KEPT_PLANS = 256


def _keep(plans: dict, key: Any, value: Any) -> None:
    # Dropping them all keeps this one lock-free dict operation per call (threads that race
    # only work a plan out twice).
    if len(plans) >= _KEPT_PLANS:
        plans.clear()
    plans[key] = value


def stored_box(d: _regions.Described, box: list) -> list:
    """The box of the stored array that holds the image box ``box``."""
    sbox = [(0, 1, 1)] * len(d.stored.shape)
    for a, s in enumerate(d.axes):
        if s is not None:
            sbox[s] = box[a]
    if d.complex_axis is not None:
        sbox[d.complex_axis] = (0, 2, 1)
    return sbox


def to_stored(d: _regions.Described, box: list, pixels: np.ndarray) -> np.ndarray:
    """Image pixels of ``box`` rearranged as the stored array holds them (the inverse of the
    reordering in ``LazyImage._read_box``; no scaling)."""
    perm = stored_order(d)
    kept = [n for n, s in zip(pixels.shape, d.axes) if s is not None]
    arr = np.ascontiguousarray(pixels)
    if d.complex_axis is not None:
        arr = arr.view(np.float32 if arr.dtype == np.complex64 else np.float64)
        kept.append(2)
    arr = arr.reshape([1] * (len(perm) - len(kept)) + kept)
    return np.ascontiguousarray(arr.transpose(np.argsort(perm)))


def stored_order(d: _regions.Described) -> list:
    """The stored axes in the order the image's axes come: first the size-1 stored axes the
    image lacks, then one per image axis, then NRRD's complex axis."""
    order = [s for s in d.axes if s is not None]
    if d.complex_axis is not None:
        order.append(d.complex_axis)
    return [s for s in range(len(d.stored.shape)) if s not in order] + order


def _auto_chunk(shape: tuple, itemsize: int, target: int = AUTO_CHUNK_BYTES) -> list:
    """Whole slices of the slowest axes, about ``target`` bytes per chunk."""
    sizes = list(shape)
    inner = itemsize
    for a in range(len(shape) - 1, -1, -1):
        if inner * shape[a] > target:
            sizes[a] = max(1, target // inner)
            for b in range(a):
                sizes[b] = 1
            break
        inner *= shape[a]
    return sizes

