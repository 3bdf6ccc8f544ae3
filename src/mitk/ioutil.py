"""IOUtil: MITK's file I/O facade (upstream names)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    from .image import Image

__all__ = ["IOUtil"]

PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


class IOUtil:
    """Load and save images by file name, as MITK's ``mitk::IOUtil``.

    All methods go through the one registry of :mod:`mitk.io` (format by extension).
    """

    @staticmethod
    def load(path: PathLike, **options: Any) -> list[Image]:
        """Load a file; returns a list of :class:`mitk.Image` (upstream returns a list).

        One image for NRRD, NIfTI and MetaImage files.  See :meth:`mitk.Image.load` for options
        and errors.
        """
        from ._image_io import load_all

        return load_all(path, **options)

    @staticmethod
    def save(image: Image, path: PathLike, **options: Any) -> None:
        """Save an image (atomically); see :meth:`mitk.Image.save`.

        Raises TypeError when ``image`` is not a :class:`mitk.Image`.
        """
        from ._image_io import save

        save(image, path, **options)

    @staticmethod
    def supported_extensions() -> list[str]:
        """The file extensions the registry knows, sorted."""
        from .io.registry import supported_extensions

        return supported_extensions()
