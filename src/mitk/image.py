"""mitk.Image: pixels in a locked buffer, a time geometry of LPS geometries, and properties.

An Image is composed of a :class:`~mitk._core.buffer.PixelBuffer` (the pixels, NumPy order
``(t, z, y, x[, c])``), a :class:`~mitk.time_geometry.TimeGeometry` holding one
:class:`~mitk.geometry.Geometry3D` per time step, and a :class:`~mitk.properties.PropertyMap`.
Views are zero-copy; accessors hold the image's reader/writer lock (see the README).

This module holds construction, the pixel attributes and views; the geometry methods live in
:mod:`mitk._image_geometry` and copies, pickling and DLPack in :mod:`mitk._image_transport`
(mixins of :class:`Image`).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ._core.accessor import ReadAccessor, WriteAccessor
from ._core.buffer import PixelBuffer
from ._core.component_types import check_dtype
from ._image_geometry import ImageGeometry, extent_xyz, make_time_geometry
from ._image_transport import ImageTransport
from ._image_views import ImageViews
from ._parallel_copy import copy_pixels
from ._typing import MatrixLike, PathArg, Vector3Like
from .errors import ArgumentError, LockError, LockTimeout, NotInitializedError
from .pixel_type import PixelType, check_components
from .properties import PropertyMap
from .time_geometry import TimeGeometry

__all__ = ["Image"]

_PATH_TYPES = (str, bytes, os.PathLike)
_NOT_INITIALIZED = "the image is not initialized; call initialize() or load a file first"


def _is_array_like(obj: object) -> bool:
    if isinstance(obj, np.ndarray):
        return True
    if hasattr(obj, "__array__") or hasattr(obj, "__array_interface__"):
        return True
    try:
        memoryview(obj).release()
    except TypeError:
        return False
    return True


def _check_size(value: object, argument: str) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{argument} must be an int, not {type(value).__name__}")
    size = value.__index__()
    if size < 1:
        raise ArgumentError(f"{argument} is {size}; sizes must be >= 1")
    return size


def _check_bytes(shape: tuple[int, ...], dtype: np.dtype[Any]) -> None:
    # Before anything is built for these sizes: a product past the address space is an
    # argument error at once, not a MemoryError after allocating per-step state.
    total = dtype.itemsize
    for size in shape:
        total *= size
    if total > sys.maxsize:
        raise ArgumentError(
            f"sizes {shape} x {dtype.itemsize} bytes per component need {total} bytes, more than "
            f"the address space ({sys.maxsize}); use smaller dimensions")


def _hold_exclusively(buf: PixelBuffer) -> ReadAccessor | WriteAccessor:
    # Nobody can write to read-only pixels, so their read lock plus the export count (which
    # counts every other reader) is exclusive enough.
    try:
        return (ReadAccessor if buf.readonly else WriteAccessor)(buf, 0)
    except (LockTimeout, LockError):
        raise BufferError("cannot re-initialize: an accessor of the pixels holds their lock "
                          "(in this thread or another)") from None


class Image(ImageGeometry, ImageViews, ImageTransport):
    """A 2D, 3D or 4D image with any supported pixel type and multi-component pixels.

    Parameters
    ----------
    source : None, path or array-like
        ``None`` makes an empty image (call :meth:`initialize`).  A ``str``, ``bytes`` or
        ``os.PathLike`` loads one image from a file (as :meth:`load`).  An ndarray, or any object
        with ``__array__``, ``__array_interface__`` or the buffer protocol, of shape ``(y, x)``,
        ``(z, y, x)`` or ``(t, z, y, x)`` (plus a trailing axis of length ``channels`` when
        ``channels > 1``) makes an image of those pixels.
    spacing, origin : sequence of float, optional
        Voxel spacing (mm, > 0) and world position of voxel (0, 0, 0), LPS; 3 entries, or 2 for a
        2D image.  Default (1, 1, 1) and (0, 0, 0).
    direction : array-like, optional
        3x3 (2x2 for 2D) non-singular matrix whose columns are the world directions of the index
        axes; stored exactly as given.  Default: identity.
    copy : bool or None
        ``True`` (default) copies any layout into a new 64-byte-aligned buffer.  ``False`` adopts
        a C-contiguous, aligned, native-order array without copying (ArgumentError otherwise);
        the image then shares memory with the array and keeps it alive; a read-only array gives a
        read-only image.  ``None`` adopts when possible, else copies.
    channels : int, optional
        Components per pixel (default 1); ``k >= 2`` means the array's last axis has length ``k``.
    like : Image (or any object with ``time_geometry``, or with ``spacing``, ``origin`` and
        ``direction``, such as a LazyImage), optional
        Take the geometry of another image: spacing, origin, direction and (a copy of) its time
        geometry, with every step's extent set to the array's sizes.  Its step count must equal
        the array's (1 for 2D/3D), else ArgumentError.  ``spacing``, ``origin`` or
        ``direction`` given as well replace the ones of ``like`` on every step.

    Raises
    ------
    TypeError
        Unsupported source type (numbers, lists, an Image: use :meth:`copy`), geometry or copy
        keywords with a path, unsupported dtype.
    ArgumentError
        Wrong number of axes (2 to 4 image axes), a size < 1, a last axis that does not match
        ``channels``, invalid geometry, an array ``copy=False`` cannot adopt, a ``like`` with
        another number of time steps.

    Notes
    -----
    Copying runs without the GIL (NumPy's copy loops).  Geometry and properties take no pixel
    lock; each change is atomic (``img.spacing = v`` sets every step in one change).  Copies,
    pickles and saves read pixels, geometry and properties as one consistent snapshot.
    Pickle protocol 5 hands the pixels out as one ``PickleBuffer`` exported under the read
    lock, which is held until the consumer releases that buffer (see ``__reduce_ex__``).
    ``Image.__new__(Image)`` alone is an empty image, as ``Image()``.
    """

    __slots__ = ("_buf", "_ndim", "_channels", "_tg", "_props", "_ro", "_rw", "_init_lock",
                 "_installing", "__weakref__")

    _buf: PixelBuffer | None
    _ndim: int
    _channels: int
    _tg: TimeGeometry | None
    _props: PropertyMap
    _ro: np.ndarray | None
    _rw: np.ndarray | None
    _init_lock: threading.Lock
    _installing: PixelBuffer | None

    def __new__(cls, *args: Any, **kwargs: Any) -> Image:
        # Every slot is set here, so an image made without __init__ (copy, unpickling,
        # subclasses) is a valid empty image rather than a source of AttributeErrors.
        self = super().__new__(cls)
        self._buf = None
        self._ndim = 0
        self._channels = 1
        self._tg = None
        self._props = PropertyMap()
        self._ro = None
        self._rw = None
        self._init_lock = threading.Lock()
        self._installing = None
        return self

    def __init__(
        self,
        source: npt.ArrayLike | PathArg | None = None,
        *,
        spacing: Vector3Like | None = None,
        origin: Vector3Like | None = None,
        direction: MatrixLike | None = None,
        copy: bool | None = True,
        channels: int | None = None,
        like: object = None,
    ) -> None:
        if type(source) is np.ndarray:  # the common case first: isinstance on ABCs is slow
            self._init_from_array(source, spacing, origin, direction, copy, channels, like)
            return
        if source is None:
            if (spacing is not None or origin is not None or direction is not None or channels
                    or like is not None):
                raise TypeError("geometry, like and channels need an array; Image() is empty")
            return
        if isinstance(source, _PATH_TYPES):
            if (spacing is not None or origin is not None or direction is not None
                    or copy is not True or channels is not None or like is not None):
                raise TypeError(
                    "Image(path) takes no spacing, origin, direction, like, copy or channels; "
                    "set geometry on the loaded image instead")
            from ._image_io import load_into

            load_into(self, source)
            return
        if isinstance(source, Image):
            raise TypeError("Image(image) is not supported; use image.copy()")
        if isinstance(source, (int, float, complex, bool, list, tuple, dict, set)) or \
                not _is_array_like(source):
            raise TypeError(
                f"cannot make an Image from {type(source).__name__}; pass a NumPy array (or an "
                "object with __array__ or the buffer protocol), a path, or nothing")
        self._init_from_array(source, spacing, origin, direction, copy, channels, like)

    # -- construction -------------------------------------------------------------------------

    def _init_from_array(self, source: Any, spacing: Any, origin: Any, direction: Any,
                         copy: Any, channels: Any, like: object) -> None:
        if copy is not None and not isinstance(copy, bool):
            raise TypeError(f"copy must be True, False or None, not {type(copy).__name__}")
        arr = source if isinstance(source, np.ndarray) else np.asarray(source)
        dtype = check_dtype(arr.dtype, "array dtype")
        nchan = 1 if channels is None else check_components(channels)
        ndim = arr.ndim - (1 if nchan > 1 else 0)
        if ndim not in (2, 3, 4):
            extra = f" plus a channel axis of {nchan}" if nchan > 1 else ""
            raise ArgumentError(
                f"array of shape {arr.shape} has {ndim} image axes{extra}; an image has 2 to 4 "
                "(y, x), (z, y, x) or (t, z, y, x)" + (" plus the channel axis" if nchan > 1 else ""))
        if nchan > 1 and arr.shape[-1] != nchan:
            raise ArgumentError(
                f"array of shape {arr.shape}: the last axis has {arr.shape[-1]} entries but "
                f"channels={nchan}")
        for axis, size in enumerate(arr.shape):
            if size < 1:
                raise ArgumentError(f"array of shape {arr.shape}: axis {axis} has size {size}; "
                                    "sizes must be >= 1")
        geometry = make_time_geometry(ndim, arr.shape, spacing, origin, direction, like)
        adoptable = arr.flags.c_contiguous and arr.flags.aligned and arr.dtype.isnative
        if copy is False and not adoptable:
            reasons = [name for ok, name in ((arr.flags.c_contiguous, "C-contiguous"),
                                             (arr.flags.aligned, "aligned"),
                                             (arr.dtype.isnative, "native byte order")) if not ok]
            raise ArgumentError(
                f"copy=False cannot adopt this array: it is not {' and not '.join(reasons)}; "
                "use copy=True (or copy=None to copy only when needed)")
        if copy is True or not adoptable:
            buf = PixelBuffer.new(dtype, arr.shape, False)
            # Any layout and byte order in, C order and native out; NumPy drops the GIL here.
            copy_pixels(np.asarray(buf), arr)
        else:
            buf = PixelBuffer.adopt(arr, dtype, arr.shape)
        self._install(buf, ndim, nchan, geometry)

    def _install(self, buf: PixelBuffer, ndim: int, channels: int, tg: TimeGeometry) -> None:
        self._ro = None
        self._rw = None
        self._buf = buf
        self._ndim = ndim
        self._channels = channels
        self._tg = tg

    @classmethod
    def from_numpy(cls, array: npt.ArrayLike, *, spacing: Vector3Like | None = None,
                   origin: Vector3Like | None = None, direction: MatrixLike | None = None,
                   copy: bool | None = True, channels: int | None = None,
                   like: object = None) -> Image:
        """Make an image from an array; the same as ``Image(array, ...)``.

        See :class:`Image` for the parameters (``like`` included), copy/view rules and errors.
        """
        if isinstance(array, _PATH_TYPES) or array is None:
            raise TypeError(f"from_numpy needs an array, not {type(array).__name__}")
        return cls(array, spacing=spacing, origin=origin, direction=direction, copy=copy,
                   channels=channels, like=like)

    @classmethod
    def load(cls, path: PathArg, **options: Any) -> Image:
        """Load one image from a file (NRRD, NIfTI, MetaImage; chosen by extension).

        Parameters
        ----------
        path : str, bytes or os.PathLike
        **options
            Reader options: ``apply_scaling`` (NIfTI), ``allow_external_data`` (.nhdr/.mhd).

        Raises
        ------
        FileNotFoundError, UnsupportedFormatError, CorruptFileError, TypeError

        Notes
        -----
        Pixels are read (or decompressed) straight into the new image's buffer; file reads and
        decompression release the GIL.
        """
        from ._image_io import load_into

        image = cls()
        load_into(image, path, **options)
        return image

    def initialize(self, pixel_type: npt.DTypeLike | PixelType, dimensions: Sequence[int],
                   channels: int | None = None) -> None:
        """Allocate zero-filled pixels and reset the geometry (properties stay).

        Parameters
        ----------
        pixel_type : dtype-like or PixelType
            Component type; a :class:`PixelType` also gives the component count.
        dimensions : sequence of int
            2 to 4 sizes in MITK order ``(x, y[, z[, t]])``, each >= 1.
        channels : int, optional
            Components per pixel (default 1, or the PixelType's).

        Raises
        ------
        BufferError
            A view, accessor or DLPack export of the current pixels is alive, in this thread or
            another (nothing changes).
        ArgumentError
            Bad sizes, or sizes whose byte count exceeds the address space (checked first).
        TypeError

        Notes
        -----
        Replaces the pixel buffer; the zero-fill runs without the GIL.  Atomic: the old pixels
        are held exclusively (their write lock, tried once) from the check for live exports to
        the replacement, so an accessor requested meanwhile waits and then locks the new
        pixels, never the old ones.  Concurrent ``initialize`` calls run one after the other.
        """
        if isinstance(pixel_type, PixelType):
            dtype = check_dtype(pixel_type.dtype, "pixel_type")
            nchan = pixel_type.components if channels is None else check_components(channels)
            if nchan != pixel_type.components:
                raise ArgumentError(
                    f"pixel_type has {pixel_type.components} components but channels={nchan}")
        else:
            dtype = check_dtype(pixel_type, "pixel_type")
            nchan = 1 if channels is None else check_components(channels)
        if isinstance(dimensions, (str, bytes)) or not hasattr(dimensions, "__len__"):
            raise TypeError(
                f"dimensions must be a sequence of 2 to 4 ints, not {type(dimensions).__name__}")
        sizes = [_check_size(d, f"dimensions[{i}]") for i, d in enumerate(dimensions)]
        if not 2 <= len(sizes) <= 4:
            raise ArgumentError(
                f"dimensions {list(dimensions)} has {len(sizes)} entries; an image has 2 to 4")
        shape = tuple(reversed(sizes)) + ((nchan,) if nchan > 1 else ())
        _check_bytes(shape, dtype)
        ndim = len(sizes)
        with self._init_lock:
            old = self._buf
            guard = None if old is None else _hold_exclusively(old)
            try:
                self._release_cached_views()
                if old is not None:
                    self._installing = old  # before the count: see image_accessors._acquire
                    others = old.exports - 1  # the guard is one export itself
                    if others:
                        raise BufferError(
                            f"cannot re-initialize: {others} view(s), accessor(s) or DLPack "
                            "export(s) of the pixels are alive")
                tg = make_time_geometry(ndim, shape)
                self._install(PixelBuffer.new(dtype, shape, True), ndim, nchan, tg)
            finally:
                self._installing = None
                if guard is not None:
                    guard.release()

    def _release_cached_views(self) -> None:
        self._ro = None
        self._rw = None

    # -- attributes -----------------------------------------------------------------------------

    def _require(self) -> PixelBuffer:
        buf = self._buf
        if buf is None:
            raise NotInitializedError(_NOT_INITIALIZED)
        return buf

    @property
    def is_initialized(self) -> bool:
        """bool: True once pixels exist (``initialize``, an array or a file)."""
        return self._buf is not None

    @property
    def readonly(self) -> bool:
        """bool: True when the image adopted read-only memory (no writable views)."""
        return self._require().readonly

    @property
    def ndim(self) -> int:
        """int: image dimension, 2, 3 or 4 (time counts, components do not)."""
        self._require()
        return self._ndim

    @property
    def shape(self) -> tuple[int, ...]:
        """tuple: NumPy-order sizes ``(t, z, y, x)``, plus ``c`` last when ``channels > 1``."""
        return self._require().shape

    @property
    def dtype(self) -> np.dtype[Any]:
        """numpy.dtype: native dtype of one pixel component."""
        return self._require().dtype

    @property
    def channels(self) -> int:
        """int: components per pixel."""
        self._require()
        return self._channels

    @property
    def pixel_type(self) -> PixelType:
        """PixelType: ``(dtype, channels)``."""
        return PixelType(self._require().dtype, self._channels)

    @property
    def time_steps(self) -> int:
        """int: number of time steps (1 for 2D/3D images)."""
        buf = self._require()
        return buf.shape[0] if self._ndim == 4 else 1

    @property
    def nbytes(self) -> int:
        """int: size of the pixel buffer in bytes."""
        return self._require().nbytes

    @property
    def pixel_buffer(self) -> PixelBuffer:
        """PixelBuffer: the pixel memory, for Cython code (``cimport mitk._core.buffer``)."""
        return self._require()

    @property
    def properties(self) -> PropertyMap:
        """PropertyMap: live metadata (str keys; str/int/float/bool or lists of them)."""
        return self._props

    @property
    def property_keys(self) -> list[str]:
        """list of str: the keys of :attr:`properties`."""
        return list(self._props.keys())

    def get_dimension(self, i: int) -> int:
        """Size along MITK axis ``i`` (0=x, 1=y, 2=z, 3=t); 1 for ``i >= ndim``, as MITK."""
        buf = self._require()
        if isinstance(i, bool) or not hasattr(i, "__index__"):
            raise TypeError(f"axis must be an int, not {type(i).__name__}")
        i = i.__index__()
        if i < 0:
            raise ArgumentError(f"axis {i} is negative; MITK axes are 0 (x) to 3 (t)")
        if i >= self._ndim:
            return 1
        return buf.shape[self._ndim - 1 - i]

    def get_dimensions(self) -> tuple[int, ...]:
        """All sizes in MITK order ``(x, y[, z[, t]])``."""
        buf = self._require()
        return tuple(reversed(buf.shape[: self._ndim]))

    # -- files --------------------------------------------------------------------------------

    def save(self, path: PathArg, *, timeout: float | None = None,
             **options: Any) -> None:
        """Save to a file; the format comes from the extension.

        Parameters
        ----------
        path : str, bytes or os.PathLike
        timeout : float or None
            Bound on the wait for the read lock (None: forever).
        **options
            ``compression`` (None/"raw", "gzip", "bzip2"), ``compression_level`` (1-9),
            ``nifti_version`` (None/1/2), and for every format ``fsync`` (bool, default True).

        Notes
        -----
        Holds the read lock while writing pixels.  Atomic: a temporary file in the target
        directory (named ``.mitk-tmp-*``) is written, fsynced and renamed into place, so a
        failure or a killed process leaves the complete old file or the complete new one.
        ``fsync=False`` skips the fsyncs: the save stays atomic for the process (a kill still
        leaves the old or the new file) but not durable across a power loss or kernel crash;
        it makes large saves about three times faster where fsync waits for the disk.
        """
        from ._image_io import save

        save(self, path, timeout=timeout, **options)

    def __repr__(self) -> str:
        buf = self._buf
        if buf is None:
            return "<mitk.Image (uninitialized)>"
        return (f"<mitk.Image shape={buf.shape} dtype={buf.dtype} channels={self._channels} "
                f"spacing={self.spacing} time_steps={self.time_steps}>")


#: For the I/O glue (``mitk._image_io``): spatial sizes in MITK order of a NumPy shape.
_extent_xyz = extent_xyz
