"""copy_pixels: the one large pixel copy (construction from an array, Image.copy), on threads.

:func:`copy_threads` is the single place that decides how many threads a copy may use.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["copy_pixels", "copy_threads"]

#: Copies at least this large are split between threads (memory bandwidth scales; see
#: benchmarks: core.construct_copy).
PARALLEL_COPY_BYTES = 16 << 20


def copy_threads() -> int:
    """How many threads a large copy may use (at most 2: each copies half the first axis).

    The one place where mitk's copies choose their thread count; it follows the CPU count
    until the process-wide setting (``mitk.get_num_threads()``) replaces it here.
    """
    return min(2, os.cpu_count() or 1)


def copy_pixels(dst: npt.NDArray[Any], src: npt.NDArray[Any]) -> None:
    """Copy ``src`` into the C-contiguous ``dst`` (any layout or byte order in).

    Large copies run in two threads, each copying half of the first axis; NumPy releases the GIL
    in its copy loops, so both halves proceed at once.  The helper thread ends with the copy.
    """
    if dst.nbytes < PARALLEL_COPY_BYTES or dst.shape[0] < 2 or copy_threads() < 2:
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
