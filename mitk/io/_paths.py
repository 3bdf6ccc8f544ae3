"""Detached data files: where a header's data file name points, and whether it may be read.

Shared by the NRRD and MetaImage readers, whose headers name their data files the same way:
relative to the header's directory, refused outside it unless ``allow_external_data=True``.
"""

from __future__ import annotations

import errno
import os
import re

from ..errors import CorruptFileError

#: A data path the OS refuses as a path (too long, through a file, a symlink loop) is a header
#: error, not an I/O error: no file could ever be there.
BAD_PATH_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.ENOTDIR, errno.ELOOP, errno.EINVAL})


_DRIVE_PATH = re.compile(r"[A-Za-z]:[\\/]")
#: The widest a data-file name pattern may pad a number: a path component holds 255 bytes.
MAX_NAME_WIDTH = 255
# A printf conversion's width and precision (``%%`` is a literal percent sign).
_CONVERSION = re.compile(r"%%|%[-+ #0]*(\d*)(?:\.(\d*))?")


def excess_pattern_width(pattern: str) -> str | None:
    """A width or precision in the printf ``pattern`` above :data:`MAX_NAME_WIDTH`, or None.

    Checked before any name is built: ``%300000000d`` would build gigabytes of names, and
    Python's ``%`` refuses a width above ``sys.maxsize`` with a ValueError.  The digits come back
    as written (shortened past 20) for the caller's message.
    """
    for m in _CONVERSION.finditer(pattern):
        for digits in m.groups():
            # len() first: int() refuses strings of more than 4300 digits.
            if digits and (len(digits) > 3 or int(digits) > MAX_NAME_WIDTH):
                return digits if len(digits) <= 20 else digits[:20] + "..."
    return None


def is_inside(base: str, full: str) -> bool:
    """Whether the normalised path ``full`` lies in the directory ``base``."""
    try:
        return os.path.commonpath([base, full]) == base
    except ValueError:  # different drives
        return False


def resolve_data_file(header_path: str, name: str, field: str, allow_external: bool) -> str:
    """The path of the data file ``name`` given by ``field`` of the header at ``header_path``.

    Raises CorruptFileError for an absolute name (a drive letter included) or one that leaves
    the header's directory, unless ``allow_external`` is True.  Touches no file.
    """
    base = os.path.dirname(os.path.abspath(header_path))
    # A Windows drive path ('C:\\x', 'C:/x') is absolute on any system; 'c:scan.raw' is an
    # ordinary name on POSIX (and, on Windows, leaves the directory: join() keeps its drive).
    absolute = os.path.isabs(name) or _DRIVE_PATH.match(name) is not None
    full = os.path.normpath(os.path.join(base, name))
    if (absolute or not is_inside(base, full)) and not allow_external:
        raise CorruptFileError(
            f"{header_path}: {field} names {name!r}, which is outside the header's directory; "
            "pass allow_external_data=True to read it")
    return full
