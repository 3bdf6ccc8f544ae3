"""Type stub of the compiled ``mitk._core.dlpack`` (see ``dlpack.pyx``)."""

from typing import Final

from .buffer import PixelBuffer

__all__ = ["export_capsule", "DLPACK_VERSION"]

DLPACK_VERSION: Final[tuple[int, int]]

def export_capsule(buf: PixelBuffer, versioned: bool, read_only: bool = False,
                   copied: bool = False, writable: bool = False) -> object: ...
