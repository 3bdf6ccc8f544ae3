"""How an :class:`mitk.Image` shows its pixels: NumPy views and the reader/writer lock.

:class:`ImageViews` is a mixin of ``Image``.  Direct views (``as_numpy()``, ``img.array``,
``np.asarray(img)``) are zero-copy and take no lock; ``read()``/``write()`` and
``as_numpy(use_accessor=True)`` hold the image's lock through an accessor
(:mod:`mitk.image_accessors`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ._core.accessor import ReadAccessor, WriteAccessor
from ._core.buffer import PixelBuffer
from ._time_rules import check_time_step
from .image_accessors import ImageReadAccessor, ImageWriteAccessor, _acquire
from .errors import ArgumentError

__all__ = ["ImageViews"]


def _readonly_view(buffer: PixelBuffer) -> np.ndarray:
    # A view of a read-only memoryview, so that flags.writeable = True raises ValueError.
    return np.asarray(memoryview(buffer).toreadonly())


class ImageViews:
    """Mixin of :class:`mitk.Image`: ``as_numpy``, ``array``, ``__array__``, ``read``, ``write``."""

    __slots__ = ()

    _ro: np.ndarray | None
    _rw: np.ndarray | None
    _ndim: int

    if TYPE_CHECKING:
        def _require(self) -> PixelBuffer: ...

        @property
        def time_steps(self) -> int: ...

    # -- NumPy views ----------------------------------------------------------------------------

    def as_numpy(self, writeable: bool = False, use_accessor: bool = False,
                 time_step: int | None = None, *,
                 timeout: float | None = None) -> npt.NDArray[Any]:
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
            Lock wait for accessor views (None: forever, 0: try once; validated as
            :func:`mitk.image_accessors.check_timeout`); ignored by direct views.

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
        if use_accessor:
            acc = (ImageWriteAccessor if writeable else ImageReadAccessor)(
                self, timeout, time_step)
            return np.asarray(acc)
        buf = self._require()
        frame = None
        if time_step is not None:
            step = check_time_step(time_step, self.time_steps)
            frame = step if self._ndim == 4 else None
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
    def array(self) -> npt.NDArray[Any]:
        """numpy.ndarray: read-only zero-copy view of the whole image (``as_numpy()``).

        Writing into it raises NumPy's "assignment destination is read-only": write through
        ``img.as_numpy(writeable=True)`` (no lock) or ``with img.write() as acc: acc[...] = v``
        (under the write lock).
        """
        view = self._ro
        if view is None:
            view = self._ro = _readonly_view(self._require())
        return view.view()

    def __array__(self, dtype: npt.DTypeLike = None, copy: bool | None = None
                  ) -> npt.NDArray[Any]:
        view = self.array
        convert = dtype is not None and np.dtype(dtype) != view.dtype
        if convert and copy is False:
            raise ValueError(
                f"converting {view.dtype} pixels to {np.dtype(dtype)} needs a copy, but "
                "copy=False was given")
        if convert or copy:
            with self.read() as acc:  # the pixels of this moment, under the read lock
                return acc.array.astype(dtype) if convert else acc.array.copy()
        return view

    def read(self, timeout: float | None = None,
             time_step: int | None = None) -> ImageReadAccessor:
        """Take the image's read lock and return the accessor that holds it.

        Parameters
        ----------
        timeout : float or None
            Seconds to wait: ``None`` waits forever, ``0`` tries once; negative, NaN or beyond
            the float range is ArgumentError (:func:`mitk.image_accessors.check_timeout`).
        time_step : int or None
            ``None``: ``acc.array`` is the whole image; ``k``: exactly frame ``k`` of a 4D image
            (the lock still covers the whole image).

        Returns
        -------
        ImageReadAccessor
            ``acc.array`` (read-only, zero-copy, the same view each time), ``acc[...]``,
            ``np.asarray(acc)``; ``with img.read() as acc:`` releases at the end of the block.

        Raises
        ------
        LockTimeout
            The lock was not obtained in time (a writer holds it or is waiting for it).
        LockError
            This thread holds the write lock on this image: the request could never succeed.
        TimeStepError, NotInitializedError, ArgumentError

        Notes
        -----
        Many readers hold the lock at once; a waiting writer blocks new readers, except threads
        that already read.  The lock is released by ``release()``, at the end of a ``with``
        block, or when the accessor and every array taken from it are collected, in any thread;
        never while such an array is alive.  Waiting releases the GIL and checks signals every
        100 ms.
        """
        return _acquire(ImageReadAccessor, ReadAccessor, self, timeout, time_step)

    def write(self, timeout: float | None = None,
              time_step: int | None = None) -> ImageWriteAccessor:
        """Take the image's write lock and return the accessor that holds it.

        Parameters
        ----------
        timeout : float or None
            As for :meth:`read`.
        time_step : int or None
            ``None``: the whole image; ``k``: exactly frame ``k`` of a 4D image (the lock still
            covers the whole image).

        Returns
        -------
        ImageWriteAccessor
            ``acc.array`` is writable; ``acc[...] = value`` writes in place.

        Raises
        ------
        LockTimeout
            Not obtained in time (readers or another writer hold it).
        LockError
            This thread already holds a lock on this image (read or write): waiting would
            deadlock, so it fails at once.
        ArgumentError
            The image is read-only (it adopted read-only memory).
        TimeStepError, NotInitializedError

        Notes
        -----
        Exclusive: no reader or other writer holds the lock meanwhile (direct views ignore
        locks).  Released as for :meth:`read`.  Waiting releases the GIL.
        """
        return _acquire(ImageWriteAccessor, WriteAccessor, self, timeout, time_step)
