"""How an :class:`mitk.Image` leaves itself: copies, pickling and DLPack.

:class:`ImageTransport` is a mixin of ``Image``.  Everything here reads the pixels under the
image's read lock (except the DLPack export, a lock-free direct view by contract), and reads
shape, geometry and properties as one snapshot taken while that lock is held, so a concurrent
``initialize()``, ``img.spacing = v`` or ``del img.properties[k]`` can never produce a mixture.
"""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from ._core.buffer import PixelBuffer
from ._core.buffer import _rebuild as _rebuild_buffer
from ._parallel_copy import copy_pixels
from ._typing import MatrixLike, Vector3Like
from .image_accessors import ImageReadAccessor

if TYPE_CHECKING:
    from .image import Image
    from .properties import PropertyMap
    from .time_geometry import TimeGeometry

__all__ = ["ImageTransport"]


class _LockedPixels(np.ndarray):  # type: ignore[type-arg]
    """A direct view of the pixels that keeps a read accessor, and so the read lock, alive.

    Pickle protocol 5 exports this view as its one ``PickleBuffer``: the read lock is held
    until the consumer lets go of the buffer (and of everything made from it).
    """

    _accessor: ImageReadAccessor


class ImageTransport:
    """Mixin of :class:`mitk.Image`: ``copy``, pickling and DLPack (see the Image docstring)."""

    __slots__ = ()

    _buf: PixelBuffer | None
    _ndim: int
    _channels: int
    _tg: TimeGeometry | None
    _props: PropertyMap

    if TYPE_CHECKING:
        def _require(self) -> PixelBuffer: ...

        def _install(self, buf: PixelBuffer, ndim: int, channels: int,
                     tg: TimeGeometry) -> None: ...

        def __init__(self, source: Any = None, **keywords: Any) -> None: ...

    def _locked_state(self) -> tuple[ImageReadAccessor, tuple[Any, ...]]:
        # Under the read lock, the buffer, its shape and the time geometry belong together
        # (initialize() needs the write lock to replace them).
        acc = ImageReadAccessor(self)  # type: ignore[arg-type]  # self is an Image
        tg = self._tg
        assert tg is not None
        return acc, (self._ndim, self._channels, tg.copy(), self._props.to_dict())

    def copy(self) -> Image:
        """An independent, writable copy: pixels, per-step geometry, time geometry, properties.

        Returns
        -------
        Image

        Notes
        -----
        Holds the read lock while copying the pixels (waiting as ``timeout=None``); the copy runs
        without the GIL.  Geometry and properties are one consistent snapshot.  An empty image
        copies to an empty image.
        """
        new: Image = type(self).__new__(type(self))  # type: ignore[assignment]
        if self._buf is None:
            new._props.update(self._props.to_dict())
            return new
        acc, (ndim, channels, tg, props) = self._locked_state()
        with acc:
            src = acc.array
            copy_buf = PixelBuffer.new(src.dtype, src.shape, False)
            copy_pixels(np.asarray(copy_buf), src)
            del src
        new._props.update(props)
        new._install(copy_buf, ndim, channels, tg)
        return new

    def __copy__(self) -> Image:
        return self.copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> Image:
        return self.copy()

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        """Pickle support; see the Image docstring.

        Protocol 5 sends the pixels as exactly one ``PickleBuffer`` (out of band with a
        ``buffer_callback``).  That buffer is exported under the image's read lock, which stays
        held until the consumer releases the buffer: at the end of ``pickle.dumps`` without a
        callback, else when the callback's consumer drops it (``PickleBuffer.release()`` or
        garbage collection); an image unpickled in this process straight from that buffer
        shares the pixels and holds the original's read lock while it lives.  Protocols 2-4
        copy the bytes into the pickle under the read lock.
        """
        if self._buf is None:
            return _restore, (None, (0, 1, None, self._props.to_dict()))
        acc, state = self._locked_state()
        buf = acc.pixel_buffer
        if protocol < 5:
            with acc:  # the pixels are copied into the pickle here
                return _restore, (buf.__reduce_ex__(protocol), state)
        view = np.asarray(buf).view(_LockedPixels)  # read-only for a read-only image
        view._accessor = acc  # released with the last reference to the view
        data = pickle.PickleBuffer(view)
        del view, acc
        return _restore, ((_rebuild_buffer, (data, buf.dtype.str, buf.shape, buf.readonly)),
                          state)

    # -- DLPack ---------------------------------------------------------------------------------

    def __dlpack__(self, *, stream: Any = None, max_version: tuple[int, int] | None = None,
                   dl_device: tuple[int, int] | None = None, copy: bool | None = None) -> Any:
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
            buf = self.copy()._require()
        if buf.readonly and not versioned:
            raise BufferError(
                "the image is read-only and a legacy DLPack capsule cannot say so; the consumer "
                "must ask for max_version >= (1, 0)")
        return export_capsule(buf, versioned, read_only=buf.readonly, copied=bool(copy))

    def __dlpack_device__(self) -> tuple[int, int]:
        """``(1, 0)``: DLPack's CPU device."""
        return (1, 0)

    @classmethod
    def from_dlpack(cls, obj: Any, *, spacing: Vector3Like | None = None,
                    origin: Vector3Like | None = None, direction: MatrixLike | None = None,
                    channels: int | None = None, copy: bool | None = None) -> Self:
        """Make an image from a CPU DLPack producer (a PyTorch/JAX/NumPy array, ...).

        ``copy=None`` adopts the memory when it is C-contiguous, aligned and native, else copies;
        ``False`` never copies (ArgumentError or BufferError if it would have to); ``True``
        always copies.  A read-only producer gives a read-only image.
        """
        arr = np.from_dlpack(obj, copy=copy)
        return cls(arr, spacing=spacing, origin=origin, direction=direction, channels=channels,
                   copy=copy if copy is not None else None)


def _restore(buffer: Any, state: tuple[Any, ...]) -> Image:
    from .image import Image

    ndim, channels, tg, props = state
    image = Image()
    image._props.update(props)
    if isinstance(buffer, tuple):  # the PixelBuffer's own reduce tuple
        func, args = buffer
        buffer = func(*args)
    if buffer is not None:
        image._install(buffer, ndim, channels, tg)
    return image
