"""mitk.Image: pixels in a locked buffer, a time geometry of LPS geometries, and properties.

An Image is composed of a :class:`~mitk._core.buffer.PixelBuffer` (the pixels, NumPy order
``(t, z, y, x[, c])``), a :class:`~mitk.time_geometry.TimeGeometry` holding one
:class:`~mitk.geometry.Geometry3D` per time step, and a :class:`~mitk.properties.PropertyMap`.
Views are zero-copy; accessors hold the image's reader/writer lock (see the README).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from ._core.accessor import ReadAccessor, WriteAccessor
from ._core.buffer import PixelBuffer
from ._core.pixeltype import check_dtype
from .errors import ArgumentError, NotInitializedError, TimeStepError
from .geometry import Geometry3D, validate_direction, validate_origin, validate_spacing
from .pixel_type import PixelType, check_components
from .properties import PropertyMap
from .time_geometry import (ArbitraryTimeGeometry, ProportionalTimeGeometry, TimeGeometry,
                            check_time_step)
from .accessors import ImageReadAccessor, ImageWriteAccessor

__all__ = ["Image"]

_PATH_TYPES = (str, bytes, os.PathLike)
_IDENTITY = np.eye(3)
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


#: Copies at least this large are split between two threads (memory bandwidth scales; see
#: benchmarks: core.construct_copy).
_PARALLEL_COPY_BYTES = 16 << 20


def copy_pixels(dst: np.ndarray, src: np.ndarray) -> None:
    """Copy ``src`` into the C-contiguous ``dst`` (any layout or byte order in).

    Large copies run in two threads, each copying half of the first axis; NumPy releases the GIL
    in its copy loops, so both halves proceed at once.  The helper thread ends with the copy.
    """
    if dst.nbytes < _PARALLEL_COPY_BYTES or dst.shape[0] < 2 or (os.cpu_count() or 1) < 2:
        np.copyto(dst, src, casting="unsafe")
        return
    half = dst.shape[0] // 2
    errors: list[BaseException] = []

    def first_half() -> None:
        try:
            np.copyto(dst[:half], src[:half], casting="unsafe")
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    helper = threading.Thread(target=first_half, name="mitk-copy")
    helper.start()
    try:
        np.copyto(dst[half:], src[half:], casting="unsafe")
    finally:
        helper.join()
    if errors:
        raise errors[0]


def _readonly_view(buffer: PixelBuffer) -> np.ndarray:
    # A view of a read-only memoryview, so that flags.writeable = True raises ValueError.
    return np.asarray(memoryview(buffer).toreadonly())


class Image:
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

    Raises
    ------
    TypeError
        Unsupported source type (numbers, lists, an Image: use :meth:`copy`), geometry or copy
        keywords with a path, unsupported dtype.
    ArgumentError
        Wrong number of axes (2 to 4 image axes), a size < 1, a last axis that does not match
        ``channels``, invalid geometry, an array ``copy=False`` cannot adopt.

    Notes
    -----
    Copying runs without the GIL (NumPy's copy loops).  Geometry and properties take no pixel
    lock; each change is atomic.
    """

    __slots__ = ("_buf", "_ndim", "_channels", "_tg", "_props", "_ro", "_rw", "__weakref__")

    def __init__(
        self,
        source: Any = None,
        *,
        spacing: Any = None,
        origin: Any = None,
        direction: Any = None,
        copy: bool | None = True,
        channels: int | None = None,
    ) -> None:
        self._buf: PixelBuffer | None = None
        self._ndim = 0
        self._channels = 1
        self._tg: TimeGeometry | None = None
        self._props = PropertyMap()
        self._ro: np.ndarray | None = None
        self._rw: np.ndarray | None = None
        if type(source) is np.ndarray:  # the common case first: isinstance on ABCs is slow
            self._init_from_array(source, spacing, origin, direction, copy, channels)
            return
        if source is None:
            if spacing is not None or origin is not None or direction is not None or channels:
                raise TypeError("geometry and channels need an array; Image() is empty")
            return
        if isinstance(source, _PATH_TYPES):
            if (spacing is not None or origin is not None or direction is not None
                    or copy is not True or channels is not None):
                raise TypeError(
                    "Image(path) takes no spacing, origin, direction, copy or channels; "
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
        self._init_from_array(source, spacing, origin, direction, copy, channels)

    # -- construction -------------------------------------------------------------------------

    def _init_from_array(self, source, spacing, origin, direction, copy, channels) -> None:
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
        geometry = self._make_geometry(ndim, arr.shape[:ndim], spacing, origin, direction)
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

    @staticmethod
    def _make_geometry(ndim, shape, spacing, origin, direction) -> ProportionalTimeGeometry:
        geometry = Geometry3D._from_valid(
            (1.0, 1.0, 1.0) if spacing is None else validate_spacing(spacing, ndim),
            (0.0, 0.0, 0.0) if origin is None else validate_origin(origin, ndim),
            _IDENTITY.copy() if direction is None else validate_direction(direction, ndim),
            _extent_xyz(ndim, shape),
        )
        if ndim < 4:
            return ProportionalTimeGeometry._static_of(geometry)
        return ProportionalTimeGeometry.from_geometry(geometry, shape[0])

    def _install(self, buf: PixelBuffer, ndim: int, channels: int, tg: TimeGeometry) -> None:
        self._ro = None
        self._rw = None
        self._buf = buf
        self._ndim = ndim
        self._channels = channels
        self._tg = tg

    @classmethod
    def from_numpy(cls, array: Any, *, spacing=None, origin=None, direction=None,
                   copy: bool | None = True, channels: int | None = None) -> Image:
        """Make an image from an array; the same as ``Image(array, ...)``.

        See :class:`Image` for the parameters, copy/view rules and errors.
        """
        if isinstance(array, _PATH_TYPES) or array is None:
            raise TypeError(f"from_numpy needs an array, not {type(array).__name__}")
        return cls(array, spacing=spacing, origin=origin, direction=direction, copy=copy,
                   channels=channels)

    @classmethod
    def load(cls, path: str | bytes | os.PathLike, **options: Any) -> Image:
        """Load one image from a file (NRRD, NIfTI, MetaImage; chosen by extension).

        Parameters
        ----------
        path : str, bytes or os.PathLike
        **options
            Reader options: ``apply_scaling`` (NIfTI), ``allow_external_data`` (.nhdr/.mhd).

        Raises
        ------
        FileNotFoundError, IsADirectoryError, UnsupportedFormatError, CorruptFileError, TypeError

        Notes
        -----
        Pixels are read (or decompressed) straight into the new image's buffer; file reads and
        decompression release the GIL.
        """
        from ._image_io import load_into

        image = cls()
        load_into(image, path, **options)
        return image

    def initialize(self, pixel_type: Any, dimensions: Any, channels: int | None = None) -> None:
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
            A view, accessor or DLPack export of the current pixels is alive (nothing changes).
        TypeError, ArgumentError

        Notes
        -----
        Replaces the pixel buffer; the zero-fill runs without the GIL.
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
        self._release_cached_views()
        if self._buf is not None and self._buf.exports:
            raise BufferError(
                f"cannot re-initialize: {self._buf.exports} view(s), accessor(s) or DLPack "
                "export(s) of the pixels are alive")
        ndim = len(sizes)
        tg = self._make_geometry(ndim, shape[:ndim], None, None, None)
        self._install(PixelBuffer.new(dtype, shape, True), ndim, nchan, tg)

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
    def shape(self) -> tuple:
        """tuple: NumPy-order sizes ``(t, z, y, x)``, plus ``c`` last when ``channels > 1``."""
        return self._require().shape

    @property
    def dtype(self) -> np.dtype:
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
    def property_keys(self) -> list:
        """list of str: the keys of :attr:`properties`."""
        return list(self._props.keys())

    @property
    def time_geometry(self) -> TimeGeometry:
        """TimeGeometry: the live time geometry (one Geometry3D per time step)."""
        self._require()
        return self._tg

    def set_time_geometry(self, time_geometry: TimeGeometry) -> None:
        """Replace the time geometry; it must have exactly ``time_steps`` steps.

        The geometries of ``time_geometry`` are used as given (live), with their extents set to
        this image's sizes.
        """
        self._require()
        if not isinstance(time_geometry, TimeGeometry):
            raise TypeError(
                f"time_geometry must be a TimeGeometry, not {type(time_geometry).__name__}")
        steps = time_geometry.count_time_steps()
        if steps != self.time_steps:
            raise ArgumentError(
                f"time geometry has {steps} steps but the image has {self.time_steps}")
        time_geometry._set_extent(_extent_xyz(self._ndim, self._buf.shape[: self._ndim]))
        self._tg = time_geometry

    # -- geometry -------------------------------------------------------------------------------

    def get_geometry(self, time_step: int = 0) -> Geometry3D:
        """The live :class:`Geometry3D` of one time step (changes to it change the image)."""
        self._require()
        return self._tg.get_geometry_for_time_step(check_time_step(time_step, self.time_steps))

    def _steps(self, time_step) -> list:
        if time_step is None:
            return [self._tg.get_geometry_for_time_step(t) for t in range(self.time_steps)]
        return [self.get_geometry(time_step)]

    def get_spacing(self, time_step: int = 0) -> tuple:
        """Spacing ``(sx, sy, sz)`` in mm of one time step (sz = 1 for 2D)."""
        return tuple(self.get_geometry(time_step).spacing)

    def get_origin(self, time_step: int = 0) -> tuple:
        """Origin ``(ox, oy, oz)`` (LPS, mm) of one time step."""
        return tuple(self.get_geometry(time_step).origin)

    def get_direction(self, time_step: int = 0) -> np.ndarray:
        """Direction (3x3 float64 copy; columns are index axes in LPS) of one time step."""
        return self.get_geometry(time_step).direction

    def set_spacing(self, spacing: Any, time_step: int | None = 0) -> None:
        """Set the spacing of one time step (``time_step=None``: every step).

        Raises ArgumentError (nothing changes) for a wrong length, non-finite or <= 0 value.
        """
        self._require()
        value = validate_spacing(spacing, self._ndim)
        for g in self._steps(time_step):
            g.spacing = value

    def set_origin(self, origin: Any, time_step: int | None = 0) -> None:
        """Set the origin of one time step (``time_step=None``: every step)."""
        self._require()
        value = validate_origin(origin, self._ndim)
        for g in self._steps(time_step):
            g.origin = value

    def set_direction(self, direction: Any, time_step: int | None = 0) -> None:
        """Set the direction of one time step (``time_step=None``: every step); kept exactly."""
        self._require()
        value = validate_direction(direction, self._ndim)
        for g in self._steps(time_step):
            g.direction = value

    @property
    def spacing(self) -> tuple:
        """tuple: spacing of step 0; assigning sets every step."""
        return self.get_spacing(0)

    @spacing.setter
    def spacing(self, value: Any) -> None:
        self.set_spacing(value, None)

    @property
    def origin(self) -> tuple:
        """tuple: origin of step 0 (LPS); assigning sets every step."""
        return self.get_origin(0)

    @origin.setter
    def origin(self, value: Any) -> None:
        self.set_origin(value, None)

    @property
    def direction(self) -> np.ndarray:
        """numpy.ndarray: 3x3 direction of step 0 (a copy); assigning sets every step."""
        return self.get_direction(0)

    @direction.setter
    def direction(self, value: Any) -> None:
        self.set_direction(value, None)

    @property
    def direction_cosines(self) -> tuple:
        """tuple: the step-0 direction as a row-major 9-tuple."""
        return tuple(float(v) for v in self.get_direction(0).ravel())

    @property
    def affine(self) -> np.ndarray:
        """numpy.ndarray: 4x4 LPS index-to-world matrix of step 0."""
        return self.get_geometry(0).affine

    def index_to_world(self, point: Any, time_step: int = 0):
        """Map an index point ``(i, j, k)`` (or an Nx3 array) to LPS world coordinates."""
        return self.get_geometry(time_step).index_to_world(point)

    def world_to_index(self, point: Any, time_step: int = 0):
        """Map an LPS world point (or an Nx3 array) to continuous index coordinates."""
        return self.get_geometry(time_step).world_to_index(point)

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

    def get_dimensions(self) -> tuple:
        """All sizes in MITK order ``(x, y[, z[, t]])``."""
        buf = self._require()
        return tuple(reversed(buf.shape[: self._ndim]))

    # -- NumPy views ----------------------------------------------------------------------------

    def as_numpy(self, writeable: bool = False, use_accessor: bool = False,
                 time_step: int | None = None, *, timeout: float | None = None) -> np.ndarray:
        """A zero-copy NumPy view of the pixels (NumPy order, components last).

        Parameters
        ----------
        writeable : bool
            ``False`` (default) gives a read-only view; ``True`` a writable one (ArgumentError
            for a read-only image).
        use_accessor : bool
            ``False``: a direct view, no lock, never waits.  ``True``: the view holds the read
            (or, with ``writeable``, the write) lock until it and every array derived from it are
            garbage-collected.
        time_step : int or None
            ``None``: the whole image.  ``k``: exactly frame ``k`` of a 4D image, shape
            ``(z, y, x[, c])``; for 2D/3D images only 0 (the same as None).
        timeout : float or None
            Lock wait for accessor views (None: forever, 0: try once); ignored by direct views.

        Returns
        -------
        numpy.ndarray
            C-contiguous, aligned, made in O(1); its base chain keeps the pixels alive after the
            image is gone.

        Raises
        ------
        TimeStepError, TypeError, ArgumentError, LockTimeout, LockError, NotInitializedError

        Notes
        -----
        Lock waits release the GIL.
        """
        if not use_accessor and not writeable and time_step is None:
            view = self._ro
            if view is None:
                view = self._ro = _readonly_view(self._require())
            return view.view()
        buf = self._require()
        frame = None
        if time_step is not None:
            step = check_time_step(time_step, self.time_steps)
            frame = step if self._ndim == 4 else None
        if use_accessor:
            acc = (WriteAccessor if writeable else ReadAccessor)(buf, timeout, frame)
            return np.asarray(acc)
        if writeable:
            if buf.readonly:
                raise ArgumentError(
                    "the image is read-only (it adopted read-only memory); no writable view")
            view = self._rw
            if view is None:
                view = self._rw = np.asarray(buf)
        else:
            view = self._ro
            if view is None:
                view = self._ro = _readonly_view(buf)
        return view.view() if frame is None else view[frame]

    @property
    def array(self) -> np.ndarray:
        """numpy.ndarray: read-only zero-copy view of the whole image (``as_numpy()``)."""
        view = self._ro
        if view is None:
            view = self._ro = _readonly_view(self._require())
        return view.view()

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        view = self.array
        if dtype is not None and np.dtype(dtype) != view.dtype:
            if copy is False:
                raise ValueError(
                    f"converting {view.dtype} pixels to {np.dtype(dtype)} needs a copy, but "
                    "copy=False was given")
            with self.read():
                return view.astype(dtype)
        if copy:
            with self.read():
                return view.copy()
        return view

    def read(self, timeout: float | None = None, time_step: int | None = None):
        """Take the read lock; returns an :class:`~mitk.ImageReadAccessor`.

        Use as ``with img.read() as acc: ... acc.array ...``.  See ImageReadAccessor.
        """
        return ImageReadAccessor(self, timeout, time_step)

    def write(self, timeout: float | None = None, time_step: int | None = None):
        """Take the write lock; returns an :class:`~mitk.ImageWriteAccessor`.

        Use as ``with img.write() as acc: acc[...] = v``.  See ImageWriteAccessor.
        """
        return ImageWriteAccessor(self, timeout, time_step)

    # -- copying, pickling ------------------------------------------------------------------------

    def copy(self) -> Image:
        """An independent, writable copy: pixels, per-step geometry, time geometry, properties.

        Notes
        -----
        Holds the read lock while copying the pixels (waiting as ``timeout=None``); the copy runs
        without the GIL.  An empty image copies to an empty image.
        """
        new = Image()
        new._props = self._props.copy()
        buf = self._buf
        if buf is None:
            return new
        copy_buf = PixelBuffer.new(buf.dtype, buf.shape, False)
        with ReadAccessor(buf) as acc:
            copy_pixels(np.asarray(copy_buf), acc.array)
        new._install(copy_buf, self._ndim, self._channels, self._tg.copy())
        return new

    def __copy__(self) -> Image:
        return self.copy()

    def __deepcopy__(self, memo: dict) -> Image:
        return self.copy()

    def __reduce_ex__(self, protocol: int):
        # Protocol 5: the PixelBuffer reduces to one PickleBuffer (out of band with a
        # buffer_callback).  Geometry and properties travel in band as plain tuples, which
        # pickle several times faster than the objects themselves.
        buf = self._buf
        state = (self._ndim, self._channels, _time_geometry_state(self._tg) if buf is not None
                 else None, dict(self._props))
        if buf is not None and protocol < 5:
            with ReadAccessor(buf):  # the pixels are copied into the pickle here
                return _restore, (buf.__reduce_ex__(protocol), state)
        return _restore, (buf, state)

    # -- DLPack ---------------------------------------------------------------------------------

    def __dlpack__(self, *, stream: Any = None, max_version: tuple | None = None,
                   dl_device: tuple | None = None, copy: bool | None = None):
        """Export the whole image as a DLPack capsule (CPU, zero-copy unless ``copy=True``).

        Raises
        ------
        BufferError
            A non-``None`` ``stream``, a device other than the CPU, or a read-only image asked
            for by a consumer that only understands legacy (unversioned) capsules.

        Notes
        -----
        The export takes no lock and counts as an export of the pixels until the consumer
        releases it (``initialize`` refuses meanwhile).  Versioned capsules carry the
        read-only flag.
        """
        from ._core.dlpack import export_capsule

        buf = self._require()
        if stream is not None:
            raise BufferError("mitk images live in CPU memory; stream must be None")
        if dl_device is not None and tuple(dl_device) != (1, 0):
            raise BufferError(f"mitk images live on the CPU (1, 0); cannot export to {dl_device}")
        versioned = max_version is not None and tuple(max_version) >= (1, 0)
        if copy:
            buf = self.copy().pixel_buffer
        if buf.readonly and not versioned:
            raise BufferError(
                "the image is read-only and a legacy DLPack capsule cannot say so; the consumer "
                "must ask for max_version >= (1, 0)")
        return export_capsule(buf, versioned, read_only=buf.readonly, copied=bool(copy))

    def __dlpack_device__(self) -> tuple:
        """``(1, 0)``: DLPack's CPU device."""
        return (1, 0)

    @classmethod
    def from_dlpack(cls, obj: Any, *, spacing=None, origin=None, direction=None,
                    channels: int | None = None, copy: bool | None = None) -> Image:
        """Make an image from a CPU DLPack producer (a PyTorch/JAX/NumPy array, ...).

        ``copy=None`` adopts the memory when it is C-contiguous, aligned and native, else copies;
        ``False`` never copies (ArgumentError or BufferError if it would have to); ``True``
        always copies.  A read-only producer gives a read-only image.
        """
        arr = np.from_dlpack(obj, copy=copy)
        return cls(arr, spacing=spacing, origin=origin, direction=direction, channels=channels,
                   copy=copy if copy is not None else None)

    # -- files --------------------------------------------------------------------------------

    def save(self, path: str | bytes | os.PathLike, *, timeout: float | None = None,
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


def _extent_xyz(ndim: int, shape: tuple) -> tuple:
    # Spatial sizes in MITK order (x, y, z); 2D images have z = 1.
    spatial = shape[1:] if ndim == 4 else shape
    return tuple(reversed(spatial)) + ((1,) if len(spatial) == 2 else ())


def _time_geometry_state(tg: TimeGeometry) -> tuple:
    """A plain-tuple form of a time geometry (for pickling)."""
    steps = tuple((g._spacing, g._origin, tuple(g._direction.ravel().tolist()), g._extent)
                  for g in tg._geometries)
    if isinstance(tg, ProportionalTimeGeometry):
        return ("proportional", steps, tg.first_time_point, tg.step_duration, tg._static)
    return ("arbitrary", steps, tuple(tg.get_time_bounds(t) for t in range(len(steps))))


def _time_geometry_from_state(state: tuple) -> TimeGeometry:
    geoms = [Geometry3D._from_valid(tuple(sp), tuple(o), np.array(d, dtype=np.float64)
                                    .reshape(3, 3), tuple(e)) for sp, o, d, e in state[1]]
    if state[0] == "proportional":
        return ProportionalTimeGeometry(geoms, state[2], state[3], static=state[4])
    return ArbitraryTimeGeometry(state[2], geoms)


def _restore(buffer, state) -> Image:
    ndim, channels, tg_state, props = state
    image = Image()
    image._props.update(props)
    if isinstance(buffer, tuple):  # protocols 2-4: the PixelBuffer's own reduce tuple
        func, args = buffer
        buffer = func(*args)
    if buffer is not None:
        image._install(buffer, ndim, channels, _time_geometry_from_state(tg_state))
    return image
