"""ImageReadAccessor and ImageWriteAccessor: lock-holding views of an Image's pixels.

An image accessor locks the image's *current* pixel buffer.  ``initialize()`` replaces the
buffer while holding it exclusively, so an accessor that was waiting for the old buffer's lock
gets it only after the replacement: it then lets it go and locks the new buffer instead (never
writing into pixels the image no longer has).  Timeouts are validated here, once, before they
reach the core (:func:`check_timeout`).
"""

from __future__ import annotations

import math
import numbers
import time
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ._core.accessor import ReadAccessor, WriteAccessor, _new_locked
from ._time_rules import check_time_step
from .errors import ArgumentError, LockTimeout

if TYPE_CHECKING:
    from .image import Image

__all__ = ["ImageReadAccessor", "ImageWriteAccessor", "check_timeout"]

_A = TypeVar("_A", bound="ReadAccessor | WriteAccessor")

#: Pause between attempts while an ``initialize()`` of the image is in progress.
_RETRY_PAUSE = 0.001


def _describe(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # ints beyond sys.get_int_max_str_digits()
        text = f"an int of {value.bit_length()} bits"
    return text if len(text) <= 60 else text[:57] + "..."


def check_timeout(timeout: object, name: str = "timeout") -> float | None:
    """Validate a lock timeout: ``None`` (wait forever) or a number of seconds >= 0.

    Parameters
    ----------
    timeout : None or real number
        ``0`` tries once; ``inf`` waits forever.  NumPy scalars, ``Decimal`` and ``Fraction``
        are accepted.
    name : str
        Argument name for error messages.

    Returns
    -------
    float or None

    Raises
    ------
    TypeError
        Not a number (``bool`` and strings included).
    ArgumentError
        Negative, NaN, or not representable as a float (``10**400``, ``Decimal('sNaN')``).
    """
    if timeout is None:
        return None
    if (isinstance(timeout, (bool, np.bool_, str, bytes, complex))
            or not hasattr(timeout, "__float__")):
        raise TypeError(
            f"{name} must be None or a number of seconds, not {type(timeout).__name__}")
    if isinstance(timeout, numbers.Complex) and not isinstance(timeout, numbers.Real):
        raise TypeError(f"{name} must be a real number of seconds, not {_describe(timeout)}")
    try:
        value = float(timeout)  # type: ignore[arg-type]
    except (OverflowError, ValueError) as exc:
        raise ArgumentError(f"{name} must be None or a number of seconds >= 0, got "
                            f"{_describe(timeout)} ({exc})") from None
    if math.isnan(value) or value < 0:
        raise ArgumentError(f"{name} must be None or >= 0 seconds, got {_describe(timeout)}")
    return value


def _frame_of(image: Image, time_step: object) -> int | None:
    # The frame accessor of a 4D image exports one time step; 2D/3D images accept 0 or None.
    if time_step is None:
        return None
    step = check_time_step(time_step, image.time_steps)
    return step if image.ndim == 4 else None


def _acquire(cls: type[_A], base: Any, image: Image, timeout: object, time_step: object) -> _A:
    """Lock the image's current buffer; retry if ``initialize()`` replaced it meanwhile."""
    if timeout is None and time_step is None:
        # The common request, in few steps: threads that share the image contend for every
        # Python-level reference to it and to its buffer on free-threaded builds.
        buf = image._buf
        if buf is not None:
            acc = _new_locked(cls, buf, base is WriteAccessor)
            if image._buf is buf and image._installing is not buf:  # as below
                return acc
            acc.release()
    wait = check_timeout(timeout)
    deadline = None if wait is None or math.isinf(wait) else time.monotonic() + wait
    while True:
        frame = _frame_of(image, time_step)
        buf = image.pixel_buffer
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        acc = base.__new__(cls)
        try:
            base.__init__(acc, buf, remaining, frame)
        except LockTimeout:
            # Name the timeout the caller gave, not what was left of it on this attempt.
            mode = "write" if base is WriteAccessor else "read"
            raise LockTimeout(f"could not acquire the {mode} lock within {timeout} s") from None
        # ``_installing`` is set by initialize() before it checks for accessors, and this
        # accessor counted as one before this test: one side always sees the other.
        if image._buf is buf and image._installing is not buf:
            return acc  # type: ignore[no-any-return]
        acc.release()
        if deadline is not None and time.monotonic() >= deadline:
            mode = "write" if base is WriteAccessor else "read"
            raise LockTimeout(f"could not acquire the {mode} lock within {timeout} s (the "
                              "image was being re-initialized)")
        time.sleep(_RETRY_PAUSE)


class ImageReadAccessor(ReadAccessor):
    """Hold the read lock of an image and view its pixels (read-only).

    Parameters
    ----------
    image : mitk.Image
    timeout : float or None
        None waits forever, 0 tries once, a positive value is seconds (see
        :func:`check_timeout`).
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
    LockTimeout, LockError, ArgumentError, TimeStepError, NotInitializedError, TypeError

    Notes
    -----
    Zero-copy.  Many readers share the lock; a waiting writer blocks new readers (not threads
    that already read).  Waiting releases the GIL.  The lock is released by :meth:`release`
    (BufferError while arrays from it live), at the end of a ``with`` block (deferred until the
    last array is gone), or when the accessor and its arrays are collected, in any thread.
    The lock is on the pixels the image has when it is granted: never on pixels that a
    concurrent ``initialize()`` has replaced.
    """

    def __new__(cls, image: Image, timeout: float | None = None,
                time_step: int | None = None) -> ImageReadAccessor:
        return _acquire(cls, ReadAccessor, image, timeout, time_step)

    def __init__(self, image: Image, timeout: float | None = None,
                 time_step: int | None = None) -> None:
        pass  # the lock was taken in __new__


class ImageWriteAccessor(WriteAccessor):
    """Hold the write lock of an image and view its pixels (writable).

    Parameters, attributes and release rules are those of :class:`ImageReadAccessor`;
    ``acc[...] = value`` writes through the locked view.

    Raises
    ------
    LockError
        This thread already holds a read or write lock on the image (it would deadlock).
    ArgumentError
        The image is read-only (it adopted read-only memory), or a bad timeout.
    LockTimeout, TimeStepError, NotInitializedError, TypeError

    Notes
    -----
    Exclusive: no other reader or writer runs while it is held.  Waiting releases the GIL.
    """

    def __new__(cls, image: Image, timeout: float | None = None,
                time_step: int | None = None) -> ImageWriteAccessor:
        return _acquire(cls, WriteAccessor, image, timeout, time_step)

    def __init__(self, image: Image, timeout: float | None = None,
                 time_step: int | None = None) -> None:
        pass  # the lock was taken in __new__
