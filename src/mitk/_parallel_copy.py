"""copy_pixels: the one large pixel copy (construction from an array, Image.copy), on threads.

:func:`copy_threads` is the single place that decides how many threads a copy may use.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _threads

__all__ = ["copy_pixels", "copy_threads"]

#: Copies at least this large are split between threads (memory bandwidth scales; see
#: benchmarks: core.construct_copy).
PARALLEL_COPY_BYTES = 16 << 20


def copy_threads() -> int:
    """How many threads a large copy may use (the calling thread included).

    The one place where mitk's copies choose their thread count: ``mitk.get_num_threads()``, at
    most two (memory bandwidth gains nothing from more).
    """
    return min(2, _threads.get_num_threads())


def copy_pixels(dst: npt.NDArray[Any], src: npt.NDArray[Any]) -> None:
    """Copy ``src`` into the C-contiguous ``dst`` (any layout or byte order in).

    Large copies are split along the first axis between :func:`copy_threads` threads, the
    caller's included; NumPy releases the GIL in its copy loops, so the parts proceed at once.
    The helper threads end with the copy; the first error is re-raised in the caller.
    """
    parts = min(copy_threads(), dst.shape[0]) if dst.nbytes >= PARALLEL_COPY_BYTES else 1
    if parts < 2:
        np.copyto(dst, src, casting="unsafe")
        return
    bounds = [dst.shape[0] * i // parts for i in range(parts + 1)]
    errors: list[BaseException] = []

    def copy_part(lo: int, hi: int) -> None:
        try:
            np.copyto(dst[lo:hi], src[lo:hi], casting="unsafe")
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    helpers = [threading.Thread(target=copy_part, args=(bounds[i], bounds[i + 1]),
                                name="mitk-copy") for i in range(1, parts)]
    for helper in helpers:
        helper.start()
    try:
        copy_part(bounds[0], bounds[1])
    finally:
        for helper in helpers:
            helper.join()
    if errors:
        raise errors[0]
