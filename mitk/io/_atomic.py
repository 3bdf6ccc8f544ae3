"""Atomic file replacement: write to a temporary file beside the target, fsync, rename.

A save either leaves the complete new file or the complete old one, never a partial file.  The
temporary file lives in the target's directory (so the final :func:`os.replace` is a rename within
one file system) and its name starts with :data:`TEMP_PREFIX`, so a temporary left behind by a
killed process is recognisable and never mistaken for data.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Iterator

#: Name prefix of every temporary file a save creates (documented; safe to delete when stale).
TEMP_PREFIX = ".mitk-tmp-"


def _fsync_directory(directory: str) -> None:
    # Makes the rename itself durable; not every platform can open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """Open a temporary binary file that replaces ``path`` when the ``with`` block succeeds.

    Parameters
    ----------
    path : str or os.PathLike
        The final file name.  Its directory must exist and be writable (otherwise the original
        :class:`OSError` propagates and nothing is created).

    Yields
    ------
    file
        An unbuffered-enough binary file object opened for writing.

    Notes
    -----
    On success the data is flushed and fsynced, the file is renamed over ``path`` with
    :func:`os.replace`, and the directory is fsynced.  On any exception the temporary file is
    removed and ``path`` is untouched.  A process killed mid-save leaves at most a stale
    ``.mitk-tmp-*`` file.  Does not take any lock and does not touch the GIL.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".part", dir=directory)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600; give the file the permissions a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)
