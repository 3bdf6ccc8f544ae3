"""NRRD header: the magic, ``field: value`` and ``key:=value`` lines, and typed field values.

Field errors use the one wording of :mod:`mitk.io._text_header`
(``<path>: NRRD field '<field>' ...``).
"""

from __future__ import annotations

import math
import re

from ...errors import CorruptFileError, UnsupportedFormatError
from .._text_header import field_error, header_lines, unsupported_field
from ._vocabulary import _FIELDS, _QUOTED, _canonical_field, _unescape


def _fail(path: str, field: str, message: str) -> CorruptFileError:
    return field_error(path, "NRRD", field, message)


def _unsupported(path: str, field: str, message: str) -> UnsupportedFormatError:
    return unsupported_field(path, "NRRD", field, message)


class _Header:
    """The raw header: canonical field name -> value, key/values, where the data start."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fields: dict[str, str] = {}
        self.unknown: dict[str, str] = {}
        self.keyvalues: dict[str, str] = {}
        self.list_lines: list[str] = []
        self.data_offset = 0
        self.ended_by_blank = False



def _read_header(f, path: str) -> _Header:
    h = _Header(path)
    magic = f.readline(64)
    if not re.fullmatch(rb"NRRD(000[1-6]|00\.01)\r?\n", magic):
        raise CorruptFileError(
            f"{path}: not a NRRD file: the first line is {magic[:20]!r}, expected the magic "
            "'NRRD0001' to 'NRRD0006'")
    offset = len(magic)
    in_list = False
    for start, raw in header_lines(f, path, "NRRD", offset):
        offset = start + len(raw)
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            line = raw.decode("latin-1")  # older writers used Latin-1 in key/values
        line = line.rstrip("\n").rstrip("\r")
        if in_list:
            if line.strip():
                h.list_lines.append(line.strip())
            continue
        if line == "":
            h.ended_by_blank = True
            break
        if line.startswith("#"):
            continue
        colon = line.find(": ")
        name = _canonical_field(line[:colon]) if colon > 0 else None
        if name not in _FIELDS and ":=" in line:
            # teem's rule: a line is a key/value unless its text before ": " names a field
            key, value = line.split(":=", 1)
            h.keyvalues[_unescape(key)] = _unescape(value)
            continue
        if name is None:
            raise CorruptFileError(
                f"{path}: NRRD header line at byte {start} ({line[:60]!r}) is neither "
                "'field: value' nor 'key:=value'")
        value = line[colon + 2:].strip()
        target = h.fields if name in _FIELDS else h.unknown
        if name in target:
            raise _fail(path, name, "appears twice in the header")
        target[name] = value
        if name == "data file" and value.split()[:1] in (["LIST"], ["SKIPLIST"]):
            in_list = True  # the data file names follow, one per line
    h.data_offset = offset
    return h


def _int(h: _Header, field: str) -> int:
    value = h.fields[field]
    try:
        return int(value)
    except ValueError:
        raise _fail(h.path, field, f"is {value!r}, expected an integer") from None


def _ints(h: _Header, field: str, count: int) -> list[int]:
    tokens = h.fields[field].split()
    try:
        out = [int(t) for t in tokens]
    except ValueError:
        raise _fail(h.path, field, f"is {h.fields[field]!r}, expected {count} integers") from None
    if len(out) != count:
        raise _fail(h.path, field, f"has {len(out)} entries, expected {count} (the dimension)")
    return out


def _floats(h: _Header, field: str, count: int) -> list[float]:
    tokens = h.fields[field].split()
    out = []
    for t in tokens:
        try:
            out.append(float(t))
        except ValueError:
            raise _fail(h.path, field, f"holds {t!r}, expected a number") from None
    if len(out) != count:
        raise _fail(h.path, field, f"has {len(out)} entries, expected {count} (the dimension)")
    return out


def _vector_list(path: str, field: str, text: str, count: int, dim: int) -> list:
    """Parse ``(a,b,c) none ...``: ``count`` vectors of ``dim`` numbers; None for ``none``."""
    out = []
    pos = 0
    n = len(text)
    while True:
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos == n:
            break
        if text.startswith("none", pos) and (pos + 4 == n or text[pos + 4] in " \t"):
            out.append(None)
            pos += 4
            continue
        if text[pos] != "(":
            raise _fail(path, field, f"holds {text[pos:pos + 20]!r}, expected a vector "
                        "'(x,y,...)' or 'none'")
        end = text.find(")", pos)
        if end < 0:
            raise _fail(path, field, f"has a vector without ')' in {text!r}")
        parts = text[pos + 1:end].split(",")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise _fail(path, field, f"vector {text[pos:end + 1]!r} holds a non-number") from None
        if len(values) != dim:
            raise _fail(path, field, f"vector {text[pos:end + 1]!r} has {len(values)} "
                        f"components, expected {dim} (the space dimension)")
        nans = [math.isnan(v) for v in values]
        if all(nans):
            out.append(None)  # teem writes an absent vector as NaNs
        elif any(nans) or not all(math.isfinite(v) for v in values):
            raise _fail(path, field, f"vector {text[pos:end + 1]!r} is not finite")
        else:
            out.append(values)
        pos = end + 1
    if len(out) != count:
        raise _fail(path, field, f"has {len(out)} vectors, expected {count}")
    return out


_QUOTED_TOKEN = re.compile(r'\s*"((?:[^"\\]|\\.)*)"')


def _quoted(text: str) -> list[str] | None:
    """The ``"..."`` strings of a labels/units field, or None when it is not such a list."""
    out, pos = [], 0
    while text[pos:].strip():
        m = _QUOTED_TOKEN.match(text, pos)
        if not m:
            return None
        out.append(m.group(1).replace('\\"', '"'))
        pos = m.end()
    return out


def _axis_tokens(field: str, value: str) -> list[str] | None:
    """Per-axis tokens as written (quotes kept for quoted fields), or None if unparsable."""
    if field in _QUOTED:
        return [m.group(0).strip() for m in _QUOTED_TOKEN.finditer(value)] \
            if _quoted(value) is not None else None
    return value.split()


def _vec(values) -> str:
    return "(" + ",".join(repr(float(v) + 0.0) for v in values) + ")"  # + 0.0: no "-0.0"

