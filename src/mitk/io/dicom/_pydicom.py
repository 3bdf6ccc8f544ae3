"""The optional dependencies of DICOM reading, imported on first need.

pydicom (>= 3) reads what :mod:`._parse` does not (enhanced functional groups, DICOMDIR,
encapsulated frames); imagecodecs (BSD) decodes the compressed transfer syntaxes.  Both come
with the ``dicom`` extra: ``pip install "mitk-core[dicom]"``.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import warnings
from types import ModuleType

from ...errors import CorruptFileError, UnsupportedFormatError

__all__ = ["imagecodecs", "pydicom", "quiet_read"]

log = logging.getLogger("mitk")

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


@contextlib.contextmanager
def quiet_read(path: str, what: str):
    """Run a pydicom read of ``path``: its warnings go to the log, its errors become ours.

    pydicom warns about odd but readable files; mitk prints nothing, so the warnings are logged
    at DEBUG instead.  Any exception pydicom (or the value conversions in the block) raises for
    a malformed file becomes CorruptFileError naming the file and ``what`` was being read.
    (``warnings.catch_warnings`` is process-wide; this runs on the calling thread only.)
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except (CorruptFileError, UnsupportedFormatError, MemoryError):
            raise
        except OSError as exc:
            if exc.errno is not None:
                raise  # a real I/O error; pydicom's "no tag to read" has no errno
            raise CorruptFileError(f"{path}: unreadable {what} ({exc})") from None
        except Exception as exc:  # pydicom raises many types for a malformed file
            raise CorruptFileError(f"{path}: unreadable {what} ({type(exc).__name__}: "
                                   f"{exc})") from None
    for warning in caught:
        log.debug("pydicom on %s: %s", path, warning.message)
