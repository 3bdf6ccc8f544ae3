"""The file layer: one registry, the formats, and the shared pieces they are built from.

Formats exchange only NumPy arrays and an :class:`~mitk.io._info.ImageInfo`; none of them, and
nothing here, knows :class:`mitk.Image` (the glue is :mod:`mitk._image_io`).

* :func:`read` / :func:`read_all` take a path and an ``allocate(dtype, shape)`` callback, make the
  load checks in their documented order, and let the format fill the buffer it allocated.
* :func:`prepare_write` checks the extension and options of a save before anything is read or
  written; the :class:`Target` it returns writes an array and its ImageInfo atomically.

Load checks, in order (SPEC 6.1): a missing path (FileNotFoundError); a directory (read as DICOM;
UnsupportedFormatError when it holds none); an unknown or missing extension
(UnsupportedFormatError) unless bytes 128-131 of the file are ``DICM`` (then it is read as
DICOM); then a path that is not a regular file, such as a pipe (UnsupportedFormatError).
Nothing else of a file's content is sniffed.
"""

from __future__ import annotations

import os
import stat
from types import ModuleType
from typing import Any, Callable

import numpy as np

from ..errors import ArgumentError, UnsupportedFormatError
from . import _options, registry
from ._replace import durability
from ._info import Allocator, ImageInfo

__all__ = ["ImageInfo", "Target", "fspath", "prepare_write", "read", "read_all",
           "supported_extensions"]

supported_extensions = registry.supported_extensions


def fspath(path: Any, argument: str = "path") -> str:
    """``path`` (str, bytes or os.PathLike) as a str.

    TypeError for anything else; ArgumentError for a path with a NUL character, which no file
    can have (checked here, before anything is read or written).
    """
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{argument} must be str, bytes or os.PathLike, not {type(path).__name__}")
    path = os.fspath(path)
    path = os.fsdecode(path) if isinstance(path, bytes) else path
    if "\0" in path:
        raise ArgumentError(f"{argument} {path[:200]!r} holds a NUL character; no file has such "
                            "a name")
    return path


def _reader(path: Any) -> tuple[str, ModuleType]:
    """The checked path and the format that reads it (the load checks, in order).

    A directory is read as DICOM; so is a file with an unknown or missing extension whose bytes
    128-131 are ``DICM`` (SPEC 6.1).  Nothing else is sniffed.
    """
    path = fspath(path)
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):  # no such path (a file on the way, too)
        raise FileNotFoundError(2, "No such file or directory", path) from None
    # other OS errors as they are (DESIGN): a loop of symbolic links is not a missing file
    if os.path.isdir(path):
        return path, registry.dicom()
    if registry.extension_of(path) is None and stat.S_ISREG(os.stat(path).st_mode) and \
            registry.has_dicom_marker(path):
        return path, registry.dicom()
    fmt = registry.format_for(path)
    if not stat.S_ISREG(os.stat(path).st_mode):
        # A FIFO or a device would block open() or never end: only regular files are images.
        raise UnsupportedFormatError(f"{path}: not a regular file (a pipe or a device); mitk "
                                     "reads images from regular files")
    return path, fmt


def read(path: Any, allocate: Allocator, **options: Any) -> ImageInfo:
    """Read the one image in ``path``: the format calls ``allocate`` once and fills the array.

    Raises the load checks' errors (see the module docstring) and the format's.
    """
    path, fmt = _reader(path)
    return fmt.read(path, allocate, **options)


def read_all(path: Any, allocate: Allocator, **options: Any) -> list[ImageInfo]:
    """Every image in ``path``; a format of one image per file gives a list of one.

    A format holding several images (``read_all``) calls ``allocate`` once per image, in the
    order of the list it returns.
    """
    path, fmt = _reader(path)
    many: Callable[..., list[ImageInfo]] | None = getattr(fmt, "read_all", None)
    if many is not None:
        return many(path, allocate, **options)
    return [fmt.read(path, allocate, **options)]


class Target:
    """A checked save: the path, its format and the format's options (see :func:`prepare_write`)."""

    def __init__(self, path: str, fmt: ModuleType, fsync: bool, options: dict) -> None:
        self.path, self.format, self.fsync, self.options = path, fmt, fsync, options

    def write(self, array: np.ndarray, info: ImageInfo) -> None:
        """Write ``array`` (read-only, C-contiguous, native order) described by ``info``.

        Atomic (a temporary file renamed into place); fsynced unless ``fsync=False``.  The
        caller holds the image's read lock.
        """
        with durability(self.fsync):
            self.format.write(self.path, array, info, **self.options)


def prepare_write(path: Any, options: dict) -> Target:
    """Check a save's path and options before anything is read or written.

    Raises TypeError (a path or option of the wrong type, an unknown option),
    UnsupportedFormatError (an unknown extension) or ArgumentError (a bad ``fsync`` value is a
    TypeError; format options are checked by the format's writer, before it creates a file).
    """
    path = fspath(path)
    fmt = registry.format_for(path)
    _options.reject_unknown(fmt.NAME, "write", options,
                            fmt.WRITE_OPTIONS | _options.COMMON_WRITE_OPTIONS)
    options = dict(options)
    fsync = _options.flag("fsync", options.pop("fsync", True))
    return Target(path, fmt, fsync, options)
