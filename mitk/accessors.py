"""ImageReadAccessor and ImageWriteAccessor: lock-holding views of an Image's pixels."""

from __future__ import annotations

from ._core.accessor import ReadAccessor, WriteAccessor
from .time_geometry import check_time_step

__all__ = ["ImageReadAccessor", "ImageWriteAccessor"]


def _frame_of(image, time_step):
    # The frame accessor of a 4D image exports one time step; 2D/3D images accept 0 or None.
    if time_step is None:
        return None
    step = check_time_step(time_step, image.time_steps)
    return step if image.ndim == 4 else None


class ImageReadAccessor(ReadAccessor):
    """Hold the read lock of an image and view its pixels (read-only).

    Parameters
    ----------
    image : mitk.Image
    timeout : float or None
        None waits forever, 0 tries once, a positive value is seconds.
    time_step : int or None
        None views the whole image; ``k`` views exactly frame ``k`` of a 4D image.  The lock
        always covers the whole image.

    Attributes
    ----------
    array : numpy.ndarray
        The locked view (the same array while it is alive); ``acc[...]``, ``np.asarray(acc)``
        and ``len(acc)`` work on it.
    released : bool

    Raises
    ------
    LockTimeout, LockError, ArgumentError, TimeStepError, NotInitializedError

    Notes
    -----
    Zero-copy.  Many readers share the lock; a waiting writer blocks new readers (not threads
    that already read).  Waiting releases the GIL.  The lock is released by :meth:`release`
    (BufferError while arrays from it live), at the end of a ``with`` block (deferred until the
    last array is gone), or when the accessor and its arrays are collected, in any thread.
    """

    def __init__(self, image, timeout=None, time_step=None):
        frame = _frame_of(image, time_step)
        super().__init__(image.pixel_buffer, timeout, frame)


class ImageWriteAccessor(WriteAccessor):
    """Hold the write lock of an image and view its pixels (writable).

    Parameters, attributes and release rules are those of :class:`ImageReadAccessor`;
    ``acc[...] = value`` writes through the locked view.

    Raises
    ------
    LockError
        This thread already holds a read or write lock on the image (it would deadlock).
    ArgumentError
        The image is read-only (it adopted read-only memory).
    LockTimeout, TimeStepError, NotInitializedError

    Notes
    -----
    Exclusive: no other reader or writer runs while it is held.  Waiting releases the GIL.
    """

    def __init__(self, image, timeout=None, time_step=None):
        frame = _frame_of(image, time_step)
        super().__init__(image.pixel_buffer, timeout, frame)
