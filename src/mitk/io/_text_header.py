"""Text headers (NRRD, MetaImage): reading lines within limits, and one wording for field errors.

Both formats write and read the same limits, so that whatever a writer puts in a header its own
reader accepts (a property of 10 KB written 110 times must load back): :data:`MAX_LINE` for one
line and :data:`MAX_HEADER` for the whole header.  Writers check :func:`check_line` before they
create a file.
"""

from __future__ import annotations

from typing import IO, Iterator

from ..errors import CorruptFileError, UnsupportedFormatError

__all__ = ["MAX_HEADER", "MAX_LINE", "check_header", "check_line", "field_error",
           "header_lines", "unsupported_field"]

#: The longest header line a reader accepts and a writer writes (4 MiB).
MAX_LINE = 1 << 22
#: The longest header a reader accepts (64 MiB; NRRD LIST names included).
MAX_HEADER = 1 << 26


def field_error(path: str, fmt: str, field: str, message: str) -> CorruptFileError:
    """``CorruptFileError("<path>: <fmt> field '<field>' <message>")``: the one wording."""
    return CorruptFileError(f"{path}: {fmt} field '{field}' {message}")


def unsupported_field(path: str, fmt: str, field: str, message: str) -> UnsupportedFormatError:
    """``UnsupportedFormatError`` in the wording of :func:`field_error`."""
    return UnsupportedFormatError(f"{path}: {fmt} field '{field}' {message}")


def header_lines(f: IO[bytes], path: str, fmt: str, start: int = 0
                 ) -> Iterator[tuple[int, bytes]]:
    """``(offset, raw line)`` of each line from ``f``'s position (``start`` is its offset).

    Raw lines keep their line end.  A line longer than :data:`MAX_LINE`, a header longer than
    :data:`MAX_HEADER` or a line holding a NUL byte (binary data where a header line was expected)
    is CorruptFileError.  The caller stops iterating where its header ends.
    """
    offset = start
    max_line, max_header = MAX_LINE, MAX_HEADER
    while True:
        raw = f.readline(max_line + 1)
        if not raw:
            return
        line_start, offset = offset, offset + len(raw)
        if len(raw) > max_line:
            raise CorruptFileError(f"{path}: {fmt} header line at byte {line_start} is longer "
                                   f"than {max_line} bytes (not a {fmt} header?)")
        if offset > max_header:
            raise CorruptFileError(f"{path}: {fmt} header is longer than {max_header} bytes "
                                   f"(at byte {line_start})")
        if b"\0" in raw:
            raise CorruptFileError(f"{path}: {fmt} header line at byte {line_start} holds a NUL "
                                   "byte (binary data where a header line was expected)")
        yield line_start, raw


def check_line(path: str, fmt: str, what: str, text: str) -> str:
    """Refuse ``text`` that a header line of ``fmt`` cannot hold; returns it unchanged.

    A line break or carriage return, a NUL, text that is not valid UTF-8, or a line longer than
    the reader accepts is UnsupportedFormatError (raised before any file is written).
    """
    for bad, name in (("\n", "a line break"), ("\r", "a carriage return"),
                      ("\0", "a NUL character")):
        if bad in text:
            raise UnsupportedFormatError(f"{path}: {what} holds {name}, which a {fmt} header "
                                         "line cannot hold")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise UnsupportedFormatError(f"{path}: {what} is not valid UTF-8 text") from None
    if size >= MAX_LINE:
        raise UnsupportedFormatError(f"{path}: {what} makes a header line of {size} bytes; "
                                     f"{fmt} headers hold lines of less than {MAX_LINE} bytes")
    return text


def check_header(path: str, fmt: str, lines: list[str]) -> bytes:
    """The header ``lines`` as UTF-8 bytes (one line end each), if its own reader accepts them.

    What a writer writes, its reader must read: a line of :data:`MAX_LINE` bytes or more, or a
    header over :data:`MAX_HEADER`, is UnsupportedFormatError, raised before any file is
    written (a property of megabytes: keep it in a side file).
    """
    data = [line.encode("utf-8") for line in lines]
    longest = max(data, key=len, default=b"")
    if len(longest) >= MAX_LINE:
        raise UnsupportedFormatError(
            f"{path}: a {fmt} header line would hold {len(longest)} bytes "
            f"({longest[:40].decode('utf-8', 'replace')!r}...); {fmt} headers hold lines of less "
            f"than {MAX_LINE} bytes")
    total = sum(len(d) + 1 for d in data)
    if total > MAX_HEADER:
        raise UnsupportedFormatError(f"{path}: the {fmt} header would take {total} bytes; "
                                     f"mitk reads headers of at most {MAX_HEADER}")
    return b"\n".join(data) + b"\n"
