"""The optional dependencies of DICOM reading, imported on first need.

pydicom (>= 3) reads what :mod:`._parse` does not (enhanced functional groups, DICOMDIR,
encapsulated frames); imagecodecs (BSD) decodes the compressed transfer syntaxes.  Both come
with the ``dicom`` extra: ``pip install "mitk-core[dicom]"``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ...errors import UnsupportedFormatError

__all__ = ["imagecodecs", "pydicom"]

EXTRA = 'pip install "mitk-core[dicom]"'


def pydicom() -> ModuleType:
    """The pydicom module; UnsupportedFormatError naming the ``dicom`` extra without it."""
    try:
        module = importlib.import_module("pydicom")
    except ImportError:
        raise UnsupportedFormatError(
            f"reading DICOM needs pydicom >= 3, which is not installed ({EXTRA})") from None
    if int(module.__version__.split(".")[0]) < 3:
        raise UnsupportedFormatError(
            f"reading DICOM needs pydicom >= 3, found {module.__version__} ({EXTRA})")
    return module


def imagecodecs(what: str) -> ModuleType:
    """The imagecodecs module; UnsupportedFormatError naming ``what`` and the extra without it."""
    try:
        return importlib.import_module("imagecodecs")
    except ImportError:
        raise UnsupportedFormatError(
            f"{what} needs imagecodecs, which is not installed ({EXTRA})") from None
