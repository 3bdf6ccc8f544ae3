"""The compiled core of mitk: pixel buffers and lock-holding accessors.

Public Python names are re-exported here; the Cython API is ``mitk/_core/buffer.pxd``.
"""

from .accessor import ReadAccessor, WriteAccessor
from .buffer import CAPI_VERSION, PixelBuffer, buffer_cache
from .component_types import SUPPORTED, check_dtype, pep3118_format

__all__ = [
    "CAPI_VERSION",
    "PixelBuffer",
    "ReadAccessor",
    "SUPPORTED",
    "WriteAccessor",
    "buffer_cache",
    "check_dtype",
    "pep3118_format",
]
