"""Which module reads and writes which file extension.

Adding a format is one module (with ``NAME``, ``EXTENSIONS``, ``READ_OPTIONS``, ``WRITE_OPTIONS``,
``read`` and ``write``; see :mod:`mitk.io._info`) and one line in :data:`FORMATS`.  Format modules
are imported only when a file of theirs is read or written, so ``import mitk`` stays fast.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from ..errors import UnsupportedFormatError

#: Extension (lower case) -> module name below ``mitk.io``.  Longest extensions match first.
FORMATS: dict[str, str] = {
    ".nrrd": "nrrd",
    ".nhdr": "nrrd",
    ".nii": "nifti",
    ".nii.gz": "nifti",
    ".hdr": "nifti",
    ".img": "nifti",
    ".mha": "metaimage",
    ".mhd": "metaimage",
    ".dcm": "dicom",
    ".dicom": "dicom",
    ".ima": "dicom",
}

#: The format of directories and of ``DICM`` files without a registered extension (SPEC 6.1).
DICOM = "dicom"


def supported_extensions() -> list[str]:
    """The registered extensions, e.g. ``[".mha", ".mhd", ".nhdr", ...]`` (sorted)."""
    return sorted(FORMATS)


def extension_of(path: str) -> str | None:
    """The registered extension ``path`` ends with (any case), or None."""
    name = os.path.basename(path).lower()
    for ext in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(ext) and len(name) > len(ext):
            return ext
    return None


def dicom() -> ModuleType:
    """The DICOM format package (directories and files sniffed as DICOM)."""
    return importlib.import_module(f"mitk.io.{DICOM}")


def has_dicom_marker(path: str) -> bool:
    """True when bytes 128-131 of the file ``path`` are ``DICM`` (False if unreadable)."""
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def format_for(path: str) -> ModuleType:
    """The format module for ``path``; UnsupportedFormatError for an unknown extension."""
    ext = extension_of(path)
    if ext is None:
        raise UnsupportedFormatError(
            f"{path}: unknown or missing file extension; known extensions: "
            f"{', '.join(supported_extensions())}")
    return importlib.import_module(f"mitk.io.{FORMATS[ext]}")
