"""mitk: medical images in Python, with a small C buffer core.

``mitk.Image`` holds 2D, 3D and 4D images with any numeric pixel type and multi-component pixels,
their LPS geometry and time geometry, and metadata; it reads and writes NRRD, NIfTI and MetaImage.
Pixels live in a 64-byte-aligned buffer guarded by a reader/writer lock; NumPy views are
zero-copy.  See the README for thread-safety guarantees and the Cython (``cimport``) API.

Importing ``mitk`` is cheap: the public classes are loaded on first use (PEP 562), and no file
format module is imported until a file is read or written.
"""

# Helpers bound here carry a leading underscore and there is no ``from __future__ import
# annotations``: the module's namespace is its public API (``dir(mitk)``, completion).
import logging as _logging
from importlib import import_module as _import_module
from typing import TYPE_CHECKING as _TYPE_CHECKING  # typing is loaded by NumPy anyway

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

# SPEC §2: the library logs to "mitk" only; the NullHandler keeps Python's last-resort handler
# from ever writing those records to stderr when the application configured no logging.
_logging.getLogger("mitk").addHandler(_logging.NullHandler())

if _TYPE_CHECKING:
    # The lazily imported names, for type checkers and completion engines: with only the
    # module __getattr__ below they would all be Any.  A name added to _LAZY belongs here too.
    from ._threads import get_num_threads as get_num_threads
    from ._threads import num_threads as num_threads
    from ._threads import set_num_threads as set_num_threads
    from .image_accessors import ImageReadAccessor as ImageReadAccessor
    from .image_accessors import ImageWriteAccessor as ImageWriteAccessor
    from .geometry import BaseGeometry as BaseGeometry
    from .geometry import Geometry3D as Geometry3D
    from .image import Image as Image
    from .ioutil import IOUtil as IOUtil
    from .lazy import LazyImage as LazyImage
    from .lazy import open as open
    from .pixel_type import PixelType as PixelType
    from .pixel_type import make_pixel_type as make_pixel_type
    from .time_geometry import ArbitraryTimeGeometry as ArbitraryTimeGeometry
    from .time_geometry import ProportionalTimeGeometry as ProportionalTimeGeometry
    from .time_geometry import TimeGeometry as TimeGeometry
    from .vectors import Point3D as Point3D
    from .vectors import Vector3D as Vector3D

__version__ = "0.1.0"

# Public name -> module that defines it, imported on first attribute access.
_LAZY = {
    "Image": "mitk.image",
    "ImageReadAccessor": "mitk.image_accessors",
    "ImageWriteAccessor": "mitk.image_accessors",
    "IOUtil": "mitk.ioutil",
    "PixelType": "mitk.pixel_type",
    "make_pixel_type": "mitk.pixel_type",
    "BaseGeometry": "mitk.geometry",
    "Geometry3D": "mitk.geometry",
    "Point3D": "mitk.vectors",
    "Vector3D": "mitk.vectors",
    "TimeGeometry": "mitk.time_geometry",
    "ProportionalTimeGeometry": "mitk.time_geometry",
    "ArbitraryTimeGeometry": "mitk.time_geometry",
    "get_num_threads": "mitk._threads",
    "set_num_threads": "mitk._threads",
    "num_threads": "mitk._threads",
    "open": "mitk.lazy",
    "LazyImage": "mitk.lazy",
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
    # "open" is left out, as "Exception" is: a star import must not shadow the builtin.
    *(name for name in _LAZY if name != "open"),
]


def __getattr__(name: str) -> object:
    if name in ("dicom", "dask"):  # the submodules, imported on first use (SPEC 3)
        return _import_module(f"mitk.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mitk' has no attribute {name!r}")
    value = getattr(_import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    # The public names and the module's dunders; not what the import machinery leaves behind
    # (loaded submodules) nor the private helpers above.
    dunders = {n for n in globals() if n.startswith("__") and n.endswith("__")}
    return sorted(dunders | set(__all__) | set(_LAZY) | {"Exception", "dicom", "dask"})


def get_include() -> str:
    """Directory to put on Cython's include path for ``cimport mitk._core.buffer``.

    Returns
    -------
    str
        The directory that contains the installed ``mitk`` package; ``mitk/_core/buffer.pxd``
        is found below it.  Consumers need no C header (see the README's Cython API section).
    """
    import os.path

    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
