"""Data files: where a header's pixels are, checked before allocating, then read into the image.

Shared by every format (NRRD and MetaImage name detached data files the same way; NIfTI reads
its data the same way once it knows where they are):

* names: one file, a list, or a printf pattern (:class:`PatternNames`), with one set of limits
  (:data:`MAX_DATA_FILES` files, :data:`MAX_NAME_WIDTH` digits, :data:`MAX_NAME_BYTES` per name,
  :data:`MAX_PATTERN_BYTES` for all names); names are made and resolved one at a time, so a header
  naming a million files costs nothing until they are checked, and the first missing one is
  reported at once;
* paths: relative to the header's directory, refused outside it unless
  ``allow_external_data=True`` (:func:`resolve_data_file`); only regular files
  (:func:`stat_data_file`).  The rule confines the header's *text*: symlinks inside the
  directory are followed wherever they lead (git-annex and DataLad keep data files as symlinks
  into ``.git/annex``, outside the header's directory), so a directory's symlinks are trusted
  as its files are;
* the plan and the fill: each :class:`Piece` says where one file's share of the pixels lies and
  how it is encoded; :func:`fill` reads every piece straight into its part of the image buffer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import re
import stat
from typing import Callable, Iterator, Sequence

from ..errors import CorruptFileError
from . import _ascii, _streams

#: A data path the OS refuses as a path (too long, through a file, a symlink loop) is a header
#: error, not an I/O error: no file could ever be there.
BAD_PATH_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.ENOTDIR, errno.ELOOP, errno.EINVAL})


_DRIVE_PATH = re.compile(r"[A-Za-z]:[\\/]")
#: The widest a data-file name pattern may pad a number: a path component holds 255 bytes.
MAX_NAME_WIDTH = 255
#: The most data files one header may name (LIST or pattern).
MAX_DATA_FILES = 1 << 20
#: A whole data file name holds at most PATH_MAX bytes.
MAX_NAME_BYTES = 4096
#: Upper bound on the bytes of all the names a pattern expands to (64 MiB: a million 64-byte
#: names); a short header line must not make gigabytes of names.
MAX_PATTERN_BYTES = 1 << 26
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
    the header's directory, unless ``allow_external`` is True, and for a name holding a NUL
    byte (no OS call can take it).  Touches no file.
    """
    if "\0" in name:
        raise CorruptFileError(f"{header_path}: {field} names {name[:80]!r}, which holds a NUL "
                               "byte")
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


class PatternNames(Sequence[str]):
    """The data file names of a printf ``pattern`` for ``numbers``, made on demand.

    Checked when made: one integer conversion, no width above :data:`MAX_NAME_WIDTH`, no name
    above :data:`MAX_NAME_BYTES`, at most :data:`MAX_DATA_FILES` names and
    :data:`MAX_PATTERN_BYTES` of names in all.  ``fail(message)`` makes the format's
    CorruptFileError (for the field that holds the pattern), ``too_many(message)`` its
    UnsupportedFormatError for more names than mitk reads.
    """

    def __init__(self, pattern: str, numbers: range, fail: Callable[[str], Exception],
                 too_many: Callable[[str], Exception]) -> None:
        self._pattern, self._numbers, self._fail = pattern, numbers, fail
        # len() of a range beyond sys.maxsize raises OverflowError: count it arithmetically.
        count = max(0, (numbers.stop - numbers.start + numbers.step - (1 if numbers.step > 0
                                                                       else -1))
                    // numbers.step)
        if count > MAX_DATA_FILES:
            raise too_many(f"names {count} files; mitk reads at most {MAX_DATA_FILES}")
        wide = excess_pattern_width(pattern)
        if wide is not None:
            raise fail(f"pattern pads numbers to {wide} characters; a file name holds at most "
                       f"{MAX_NAME_WIDTH}")
        if numbers:
            # The longest name has the number of largest magnitude, at one end of the range:
            # check it before any other is made.
            longest = max(len(self[i].encode("utf-8")) for i in (0, -1))
            if longest > MAX_NAME_BYTES:
                raise fail(f"pattern {pattern[:80]!r} makes file names of up to {longest} "
                           f"bytes; a path holds at most {MAX_NAME_BYTES}")
            if longest * len(numbers) > MAX_PATTERN_BYTES:
                raise fail(f"pattern {pattern[:80]!r} names {len(numbers)} files of up to "
                           f"{longest} bytes; mitk reads patterns of at most "
                           f"{MAX_PATTERN_BYTES} bytes of names")

    def __len__(self) -> int:
        return len(self._numbers)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        try:
            # Exactly one integer conversion, as the formats' sprintf(pattern, i) needs.
            return self._pattern % self._numbers[i]
        except (TypeError, ValueError, OverflowError):
            raise self._fail(f"pattern {self._pattern[:80]!r} is not a printf pattern with one "
                             "integer conversion such as %03d") from None

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(len(self)))


def stat_data_file(src: str, header_path: str, fmt: str, field: str, value: str
                   ) -> os.stat_result:
    """Check that the data file ``src`` exists and is a regular file; its stat result.

    ``field``/``value`` name the header field (and its text) that named the file, for messages.
    FileNotFoundError names the file and the header; a path the OS refuses as a path, a
    directory, a FIFO or a device is CorruptFileError; another OSError propagates as it is.
    """
    try:
        st = os.stat(src)
    except FileNotFoundError:
        raise FileNotFoundError(
            errno.ENOENT, f"{fmt} data file named by {header_path} ({field}: {value[:200]!r}) "
            "does not exist", src) from None
    except OSError as exc:
        if exc.errno not in BAD_PATH_ERRNOS:
            raise  # a real I/O or permission problem: the OSError as it is
        raise CorruptFileError(f"{header_path}: {fmt} field '{field}' names {src[:200]!r}, which "
                               f"cannot be a data file ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise CorruptFileError(f"{header_path}: {fmt} field '{field}' names {src!r}, which is a "
                               "directory, not a regular file")
    if not stat.S_ISREG(st.st_mode):  # a FIFO or device could block or never end
        raise CorruptFileError(f"{header_path}: {fmt} field '{field}' names {src!r}, which is not "
                               "a regular file")
    return st


@dataclasses.dataclass
class Piece:
    """One file's share of the pixels, located and size-checked before the buffer exists.

    Attributes
    ----------
    src : str
        The file to open.
    label : str
        The file as error messages name it (a data file with its header).
    start : int
        Offset of the data (raw), the stream (compressed) or the text (ascii, hex) in ``src``.
    nbytes : int
        Bytes of pixels this piece fills.
    encoding : str
        ``"raw"``, ``"gzip"``, ``"zlib"``, ``"deflate"`` (gzip or zlib, told by its first bytes),
        ``"bzip2"``, ``"ascii"`` or ``"hex"``.
    limit : int or None
        Bytes of ``src`` from ``start`` that belong to the stream or text (None: to the end).
    skip : int
        Decompressed bytes before the data (NRRD ``byte skip`` of a compressed stream).
    index : BlockIndex or None
        The block index of a zlib stream, from the header.
    text : AsciiValues or None
        How ASCII values are parsed (``encoding="ascii"``).
    what : str
        What the data are called in messages ("NRRD raw data").
    """

    src: str
    label: str
    start: int
    nbytes: int
    encoding: str = "raw"
    limit: int | None = None
    skip: int = 0
    index: object = None
    text: object = None
    what: str = "pixel data"


@contextlib.contextmanager
def _open(src: str, opened) -> Iterator:
    if src in opened:
        yield opened[src]  # the caller's open file; the caller closes it
        return
    with open(src, "rb", buffering=0) as f:
        yield f


class Window:
    """The next ``size`` bytes of a file, so that bytes after a stream are not read.

    ``fileno``, ``tell`` and ``limit`` (the file offset where the window ends) let the block-
    parallel inflater read the window's stream with ``os.pread``.
    """

    def __init__(self, f, size: int) -> None:
        self._f = f
        self.limit = f.tell() + size
        self._left = size

    def read(self, n: int = -1) -> bytes:
        n = self._left if n is None or n < 0 else min(n, self._left)
        data = self._f.read(n) if n else b""
        self._left -= len(data)
        return data

    def fileno(self) -> int:
        return self._f.fileno()

    def tell(self) -> int:
        return self._f.tell()

    def seek(self, pos: int) -> int:
        self._left = max(self.limit - pos, 0)
        return self._f.seek(pos)


def fill(pieces: Sequence[Piece], flat: memoryview, values=None, opened=None) -> None:
    """Read every piece, in order, into consecutive parts of the byte view ``flat``.

    ``values`` is the flat element view of the same buffer (for ASCII pieces).  ``opened`` maps
    a path to a file the caller already has open (the header file of attached data, which must
    be read through the same open file as its header: one generation of the file, whatever
    replaces it meanwhile); other files are opened here, once each.  Raw data are read with
    ``readinto``, compressed data decompressed in chunks, both straight into the buffer and with
    the GIL released in the OS and codec calls.
    """
    offset = 0
    opened = opened or {}
    for p in pieces:
        out = flat[offset:offset + p.nbytes]
        with _open(p.src, opened) as f:
            f.seek(p.start)
            source = f if p.limit is None else Window(f, p.limit)
            if p.encoding == "raw":
                _streams.read_exact_into(f, out, path=p.label, what=p.what)
            elif p.encoding in ("gzip", "zlib", "bzip2", "deflate"):
                codec = p.encoding
                if codec == "deflate":  # MetaIO inflates zlib and gzip alike; name the right one
                    codec = "gzip" if f.read(2) == b"\x1f\x8b" else "zlib"
                    f.seek(p.start)
                    source = f if p.limit is None else Window(f, p.limit)
                _streams.decompress_into(source, out, codec, path=p.label, skip=p.skip,
                                         index=p.index)
            elif p.encoding == "hex":
                _ascii.read_hex(source, out, p.label)
            else:
                first = offset // values.itemsize
                p.text.read(source, values[first:first + p.nbytes // values.itemsize], p.label)
        offset += p.nbytes
