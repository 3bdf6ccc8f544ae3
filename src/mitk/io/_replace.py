"""Atomic file replacement and detached pairs: write beside the target, fsync, rename.

A save either leaves the complete new file or the complete old one, never a partial file.  The
temporary file lives in the target's directory (so the final :func:`os.replace` is a rename within
one file system) and its name starts with :data:`TEMP_PREFIX`, so a temporary left behind by a
killed process is recognisable and never mistaken for data.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
import stat
import tempfile
import threading
from typing import IO, Callable, Iterator, TypeVar

from ..errors import UnsupportedFormatError

_T = TypeVar("_T")

#: Name prefix of every temporary file a save creates (documented; safe to delete when stale).
TEMP_PREFIX = ".mitk-tmp-"

# Whether saves in this context fsync before renaming (the ``fsync`` save option).  A context
# variable, not a global, so one thread's ``fsync=False`` save never weakens another's.
_durable: contextvars.ContextVar[bool] = contextvars.ContextVar("mitk_durable_saves",
                                                                 default=True)


@contextlib.contextmanager
def durability(fsync: bool) -> Iterator[None]:
    """Make the :func:`atomic_write` calls inside the block fsync (True) or not (False).

    ``fsync=False`` keeps the atomicity (a killed process still leaves the complete old or new
    file, because the rename happens after the last write) but not the durability across a
    power loss or kernel crash, after which the new file may be empty or incomplete.
    """
    token = _durable.set(bool(fsync))
    try:
        yield
    finally:
        _durable.reset(token)


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


_umask_lock = threading.Lock()


def _umask() -> int:
    """The process umask, read without changing it where the OS allows.

    ``os.umask`` can only be read by setting it, which for an instant gives every other thread's
    new files a umask of 0; Linux shows it in /proc instead.  Elsewhere the set-and-restore is
    serialised with other saves.
    """
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def _give_attributes(tmp: str, like: str) -> None:
    """Give the temporary file the mode (and, where permitted, the owner) of ``like``.

    A file that does not exist yet gets the permissions a plain ``open()`` would give it.  A
    saved-over file keeps its own: a 0600 file of patient data must not become 0644.
    """
    try:
        st = os.stat(like)
    except OSError:
        st = None
    try:
        os.chmod(tmp, 0o666 & ~_umask() if st is None else stat.S_IMODE(st.st_mode))
    except PermissionError:
        return  # a file system without modes (vfat, some CIFS mounts): the file stays private
    if st is None:
        return
    if hasattr(os, "chown") and (st.st_uid, st.st_gid) != _owner_of(tmp):
        with contextlib.suppress(OSError):  # only the owner's group, or root, may change it
            os.chown(tmp, st.st_uid, st.st_gid)


def _owner_of(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_uid, st.st_gid


def pair_target(path: str, fmt: str) -> str:
    """The header a save of a detached pair to ``path`` replaces (symlinks followed).

    A header is read with its data files resolved beside the path as given (as teem and MetaIO
    do; git-annex and DataLad rely on it), so a pair saved through a symlink must keep its data
    file beside both the link and its target: a link into another directory is
    UnsupportedFormatError (save to the target, or replace the link).
    """
    target = target_of(path)
    if os.path.dirname(os.path.abspath(target)) != os.path.dirname(os.path.abspath(path)):
        raise UnsupportedFormatError(
            f"{path}: is a symlink to {target}, in another directory; a {fmt} header names its "
            "data file relative to where it is read from, which could not serve both; save to "
            "the target's path, or replace the link")
    return target


def target_of(path: str) -> str:
    """The file a save to ``path`` replaces: ``path``, or the file its symlinks lead to."""
    return os.path.realpath(path) if os.path.islink(path) else path


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, like: str | None = None) -> Iterator[IO[bytes]]:
    """Open a temporary binary file that replaces ``path`` when the ``with`` block succeeds.

    Parameters
    ----------
    path : str or os.PathLike
        The final file name.  Its directory must exist and be writable (otherwise the original
        :class:`OSError` propagates, naming ``path``, and nothing is created).  A symlink is
        followed: the file it leads to is replaced, in its own directory, and the link stays.
    like : str, optional
        A file whose mode and owner the new file takes, when it exists (the header of a
        detached pair, for its new data file).

    Yields
    ------
    file
        An unbuffered-enough binary file object opened for writing.

    Notes
    -----
    On success the data is flushed and fsynced, the file is renamed over ``path`` with
    :func:`os.replace`, and the directory is fsynced (both fsyncs are skipped inside
    ``durability(False)``).  The new file keeps the mode of the file it replaces (and its owner
    where the OS permits), or gets the mode of ``like``, or the one ``open()`` would give.  A
    file with several hard links is replaced by a new file: its other names keep the old
    content (an in-place write could not be atomic).  On any exception the temporary file is
    removed and ``path`` is untouched.  A process killed mid-save leaves at most a stale
    ``.mitk-tmp-*`` file.  Does not take any lock and does not touch the GIL.
    """
    path = target_of(os.fspath(path))
    directory = os.path.dirname(os.path.abspath(path))
    durable = _durable.get()
    try:
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".part", dir=directory)
    except OSError as exc:
        # Name the user's file, not the temporary one that could not be created.
        raise type(exc)(exc.errno, exc.strerror, path) from None
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        # mkstemp creates 0600: give the file the mode of ``like`` or of the one it replaces, or
        # an ordinary one (a new pair's data file: its reserved placeholder's 0600 is no model).
        _give_attributes(tmp, like if like is not None else path)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        _fsync_directory(directory)


# -- detached pairs ---------------------------------------------------------------------------

# Descriptors of the pair locks this process holds.  A forked child inherits them, and with them
# the locks (flock belongs to the open file): it closes its copies at once, so that a child that
# lives on (a multiprocessing worker) does not block every save and load of those pairs.
_held_locks: set[int] = set()
_held_guard = threading.Lock()


def _drop_inherited_locks() -> None:
    global _held_guard
    _held_guard = threading.Lock()  # a thread of the parent may have held it at fork time
    for fd in list(_held_locks):
        with contextlib.suppress(OSError):
            os.close(fd)
    _held_locks.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_inherited_locks)


@contextlib.contextmanager
def pair_lock(directory: str, exclusive: bool) -> Iterator[None]:
    """Hold the advisory lock that makes detached pairs in ``directory`` consistent.

    A save of a detached pair (``.nhdr``, ``.mhd``, ``.hdr``/``.img``) holds it exclusively
    while it replaces the pair; a load holds it shared while it reads one.  So a load never
    sees one save's header with another's data, and two saves never interleave their renames,
    among mitk processes and threads.  It is ``flock`` on the directory itself (nothing is
    created there).  Where the file system cannot lock (some network file systems) or the OS
    has no ``flock``, it does nothing, and only the fresh data names protect a pair.  Other
    programs do not take it.  Waiting releases the GIL.
    """
    try:
        import fcntl
    except ImportError:  # not on Windows
        yield
        return
    try:
        fd = os.open(directory or ".", os.O_RDONLY)
    except OSError:
        yield  # the directory cannot be opened for reading: nothing to lock with
        return
    with _held_guard:
        _held_locks.add(fd)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        except OSError:
            pass  # ENOLCK, EOPNOTSUPP: a file system without locks
        yield
    finally:
        with _held_guard:
            mine = fd in _held_locks  # not after a fork: the child closed it already
            _held_locks.discard(fd)
        if mine:
            os.close(fd)  # closing the last descriptor of the open file drops the lock


@contextlib.contextmanager
def open_for_load(path: str, pair: bool, buffering: int = -1) -> Iterator[IO[bytes]]:
    """Open the file a load reads its header from, as every format's ``read`` and ``describe``
    do: one open file, so header and attached data are of one generation, and for a detached
    pair (``pair``) under the shared :func:`pair_lock` of its directory, so that a save by mitk
    never shows this load one pair's header with another's data."""
    with pair_lock(os.path.dirname(os.path.abspath(path)), exclusive=False) if pair \
            else contextlib.nullcontext(), open(path, "rb", buffering=buffering) as f:
        yield f


def fresh_data_name(directory: str, stem: str, suffix: str) -> str:
    """A data file name for a detached pair that no file in ``directory`` has, reserved.

    ``stem + suffix`` when it is free, else ``stem.1 + suffix``, ``stem.2 + suffix``, ...  A new
    name keeps the old pair intact until the new header replaces it (SPEC 6.2): the old header
    still names its own, untouched data file, so a kill at any point leaves the old pair or the
    new one readable.  It also never overwrites a data file that another header uses.  The name
    is reserved by creating an empty file with ``O_EXCL``, so two concurrent saves can never
    pick the same one; the caller replaces it (or removes it on failure).
    """
    for i in range(10_000):
        name = f"{stem}.{i}{suffix}" if i else stem + suffix
        try:
            os.close(os.open(os.path.join(directory, name),
                             os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            continue
        return name
    raise FileExistsError(f"{os.path.join(directory, stem + suffix)}: no free data file name "
                          f"({stem}.1{suffix} to {stem}.9999{suffix} all exist)")


def replaced_data_file(header_path: str, field: re.Pattern, family: re.Pattern) -> str | None:
    """The data file that the existing header at ``header_path`` names, if a save may delete it.

    ``field`` matches the header line naming the data file (group 1: the name); ``family``
    matches the names this writer creates for this header.  Only such a name, in the header's
    own directory, is returned: a save never deletes a file it would not have written itself
    (a ``LIST``, a pattern, another directory, or a file of another name).
    """
    try:
        with open(header_path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return None
    text = head.decode("utf-8", "replace")
    for line in text.splitlines():
        m = field.match(line)
        if m:
            name = m.group(1).strip()
            if name.startswith("./"):
                name = name[2:]
            if family.fullmatch(name) and os.sep not in name and "/" not in name:
                return os.path.join(os.path.dirname(os.path.abspath(header_path)), name)
            return None
    return None


def remove_replaced(old_data: str | None, new_data: str) -> None:
    """After a pair's header was replaced: delete the data file the old header named.

    Best effort (the new pair is complete already); a kill before it only leaves an unused data
    file beside the pair.
    """
    if old_data and os.path.abspath(old_data) != os.path.abspath(new_data):
        discard(old_data)


def discard(path: str) -> None:
    """Delete ``path`` if it exists (best effort: a file already gone is fine)."""
    with contextlib.suppress(OSError):
        os.unlink(path)


def data_file_name(header_path: str, header_ext: str, suffix: str, fmt: str,
                   reserved: tuple[str, ...]) -> tuple[str, str]:
    """A free data file name beside a detached header, reserved: (as written in the header, path).

    The stem is the header's name without ``header_ext`` (any case); the name is the first free
    one of ``stem + suffix``, ``stem.1 + suffix``, ... (:func:`fresh_data_name`, which reserves
    it).  A name the header could not hold, or would read as a pattern (``%``), is
    UnsupportedFormatError, raised before anything is created; a name starting with one of
    ``reserved`` (such as ``LIST``) or a blank is written as ``./name``.
    """
    base = os.path.basename(header_path)
    stem = base[: -len(header_ext)] if base.lower().endswith(header_ext) else base
    directory = os.path.dirname(os.path.abspath(header_path))
    candidate = stem + suffix
    bad = next((c for c in ("%", "\n", "\r", "\0") if c in candidate), None)
    if bad is not None:
        raise UnsupportedFormatError(
            f"{header_path}: the data file name {candidate!r} cannot be written in a {fmt} "
            "header (a name with '%' reads as a file pattern); choose another name or save as "
            "one file")
    try:
        candidate.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsupportedFormatError(f"{header_path}: the data file name {candidate!r} is not "
                                     "valid UTF-8 text; choose another name or save as one "
                                     "file") from None
    try:
        name = fresh_data_name(directory, stem, suffix)
    except OSError as exc:
        if isinstance(exc, FileExistsError):
            raise
        # Name the user's file (the header), as a save of one file does.
        raise type(exc)(exc.errno, exc.strerror, header_path) from None
    written = name
    if name.startswith(reserved) or name[:1].isspace():
        written = "./" + name  # not a LIST, and nothing for the reader to skip
    return written, os.path.join(os.path.dirname(header_path), name)


def data_file_family(header_path: str, header_ext: str, suffixes: str) -> re.Pattern:
    """The names :func:`data_file_name` gives data files of this header (``suffixes``: a regex)."""
    base = os.path.basename(header_path)
    stem = base[: -len(header_ext)] if base.lower().endswith(header_ext) else base
    return re.compile(re.escape(stem) + r"(\.[0-9]+)?" + suffixes)


def write_pair(header_path: str, header_ext: str, suffix: str, suffixes: str, fmt: str,
               reserved: tuple[str, ...], field: re.Pattern,
               write_data: Callable[[IO[bytes]], _T],
               header: Callable[[str, _T], bytes]) -> None:
    """Save a detached pair: the data file first, the header last, then the old data file goes.

    Parameters
    ----------
    header_path : str
        The header (not a symlink: the caller resolves it, see :func:`target_of`).
    header_ext, suffix, suffixes, fmt, reserved
        How the data file is named: :func:`data_file_name` and :func:`data_file_family`.
    field : re.Pattern
        The old header's line naming its data file (group 1), for :func:`replaced_data_file`.
    write_data : callable
        ``write_data(f)`` writes the pixels and returns what the header needs (a size).
    header : callable
        ``header(name as written, result)`` returns the header's bytes.

    Notes
    -----
    The old pair is never touched before the new header replaces it, so a kill at any point
    leaves the old pair or the new one readable (at worst with an unused data file beside it);
    a failure removes the new data file.  The whole replacement, the choice of the fresh data
    name included, holds :func:`pair_lock`, so loads and other saves of the pair see it whole.
    """
    with pair_lock(os.path.dirname(os.path.abspath(header_path)), exclusive=True):
        written, data_path = data_file_name(header_path, header_ext, suffix, fmt, reserved)
        try:
            old_data = replaced_data_file(header_path, field,
                                          data_file_family(header_path, header_ext, suffixes))
            # A new data file takes the mode of the header it belongs to (a private pair stays
            # private).
            with atomic_write(data_path, like=header_path) as f:
                result = write_data(f)
            text = header(written, result)
            with atomic_write(header_path) as f:
                f.write(text)
        except BaseException:
            discard(data_path)  # the new data file is unused: the old pair stays as it was
            raise
        remove_replaced(old_data, data_path)
