"""mitk: medical images in Python, with a small C buffer core.

``mitk.Image`` holds 2D, 3D and 4D images with any numeric pixel type and multi-component pixels,
their LPS geometry and time geometry, and metadata; it reads and writes NRRD, NIfTI and MetaImage.
Pixels live in a 64-byte-aligned buffer guarded by a reader/writer lock; NumPy views are
zero-copy.  See the README for thread-safety guarantees and the Cython (``cimport``) API.

Importing ``mitk`` is cheap: the public classes are loaded on first use (PEP 562), and no file
format module is imported until a file is read or written.
"""

from __future__ import annotations

import importlib
import os

from .errors import (
    ArgumentError,
    CorruptFileError,
    Exception,
    LockError,
    LockTimeout,
    NotInitializedError,
    TimeStepError,
    UnsupportedFormatError,
)

__version__ = "0.1.0"

# Public name -> module that defines it, imported on first attribute access.
_LAZY = {
    "Image": "mitk.image",
    "ImageReadAccessor": "mitk.accessors",
    "ImageWriteAccessor": "mitk.accessors",
    "IOUtil": "mitk.ioutil",
    "PixelType": "mitk.pixel_type",
    "make_pixel_type": "mitk.pixel_type",
    "BaseGeometry": "mitk.geometry",
    "Geometry3D": "mitk.geometry",
    "Point3D": "mitk.geometry",
    "Vector3D": "mitk.geometry",
    "TimeGeometry": "mitk.time_geometry",
    "ProportionalTimeGeometry": "mitk.time_geometry",
    "ArbitraryTimeGeometry": "mitk.time_geometry",
    "get_num_threads": "mitk._threads",
    "set_num_threads": "mitk._threads",
    "num_threads": "mitk._threads",
}

__all__ = [
    "ArgumentError",
    "CorruptFileError",
    "LockError",
    "LockTimeout",
    "NotInitializedError",
    "TimeStepError",
    "UnsupportedFormatError",
    "__version__",
    "get_include",
    *_LAZY,
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mitk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def get_include() -> str:
    """Directory to put on Cython's include path for ``cimport mitk._core.buffer``.

    Returns
    -------
    str
        The directory that contains the installed ``mitk`` package; ``mitk/_core/buffer.pxd``
        is found below it.  Consumers need no C header (see the README's Cython API section).
    """
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
