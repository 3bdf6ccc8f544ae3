"""ASCII (and hex) pixel data, shared by the NRRD and MetaImage readers.

The text is read in chunks of :data:`CHUNK` bytes, whatever the file's size, and each chunk's
tokens are converted with one NumPy conversion of a fixed-width bytes array.  That conversion
costs the token count times the longest token: one value written with 200,000 leading zeros (a
valid 0) would ask for gigabytes, so longer tokens are shortened one by one first.  How a token
becomes a value (every value a double, as MetaIO reads them; or integers exactly, as teem does)
is the format's ``parse`` function.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import CorruptFileError

#: Bytes of text read at once (memory stays proportional to this, not to the file).
CHUNK = 1 << 20

#: Tokens up to this long go to NumPy as they are.
SHORT_TOKEN = 32


def short_tokens(tokens: list, integer: bool) -> list:
    """``tokens`` (bytes), each longer than :data:`SHORT_TOKEN` replaced by a short one for the
    same value; the list itself when none is that long.

    Parameters
    ----------
    tokens : list of bytes
        ASCII numbers.
    integer : bool
        Whether the pixel type is an integer: a run of digits then keeps every bit (leading zeros
        dropped).  Any other long token becomes the double it reads as, which the caller's
        conversion then refuses or accepts as it would that short form.

    Raises
    ------
    ValueError
        A long token is not a number, or an integer with more digits than 2**64 has.
    """
    if max(map(len, tokens), default=0) <= SHORT_TOKEN:
        return tokens
    return [t if len(t) <= SHORT_TOKEN else _shorten(t, integer) for t in tokens]


def _shorten(token: bytes, integer: bool) -> bytes:
    """A short token for the same value, in time linear in its length (see short_tokens).

    Raises
    ------
    ValueError
        The token is not a number, or an integer with more digits than 2**64 has.
    """
    sign = token[:1] if token[:1] in (b"+", b"-") else b""
    digits = token[len(sign):]
    if integer and digits.isdigit():  # bytes.isdigit(): ASCII digits only
        digits = digits.lstrip(b"0") or b"0"
        if len(digits) > 20:
            raise ValueError(token[:40])
        return sign + digits
    return repr(float(token)).encode("ascii")  # float() reads any length in linear time


class AsciiValues:
    """How a format's ASCII pixel data are read.

    Parameters
    ----------
    label : str
        The data as messages name them ("NRRD ascii data", "MetaImage ASCII data").
    parse : callable
        ``parse(tokens, dtype) -> ndarray`` converts a list of bytes tokens to values of
        ``dtype``; raises ValueError or OverflowError for a token that is not such a value.
    commas : bool
        Whether commas separate values too (NRRD), besides white space.
    """

    def __init__(self, label: str, parse: Callable[[list, np.dtype], np.ndarray],
                 commas: bool = False) -> None:
        self.label, self.parse, self.commas = label, parse, commas

    def read(self, source, out: np.ndarray, where: str) -> None:
        """Fill the flat array ``out`` with the first ``out.size`` values of ``source``.

        A token cut by the end of a chunk is kept in pieces and joined once it ends, so a long
        token costs time linear in its length.  Raises CorruptFileError for too few values or a
        token ``parse`` refuses, naming the file and the values' positions.
        """
        count, done = out.size, 0
        partial: list[bytes] = []
        table = bytes.maketrans(b",", b" ") if self.commas else None
        while done < count:
            chunk = source.read(CHUNK)
            if table is not None:
                chunk = chunk.translate(table)
            tokens = chunk.split()
            if partial:
                if not chunk or chunk[:1].isspace():
                    tokens.insert(0, b"".join(partial))
                elif len(tokens) == 1 and not chunk[-1:].isspace():
                    partial.append(chunk)  # the whole chunk continues the token
                    continue
                else:
                    tokens[0] = b"".join(partial) + tokens[0]
                partial = []
            if chunk and tokens and not chunk[-1:].isspace():
                partial = [tokens.pop()]  # may continue in the next chunk
            take = tokens[: count - done]
            if take:
                try:
                    values = self.parse(take, out.dtype)
                except (ValueError, OverflowError, TypeError):
                    raise CorruptFileError(
                        f"{where}: {self.label}: a value among numbers {done} to "
                        f"{done + len(take) - 1} is not a {out.dtype}") from None
                with np.errstate(over="ignore"):  # beyond float32: inf, as strtof gives it
                    out[done:done + len(take)] = values
                done += len(take)
            if not chunk:
                break
        if done < count:
            raise CorruptFileError(f"{where}: {self.label} is truncated: {count} values "
                                   f"expected, {done} found")


def read_hex(source, out: memoryview, where: str) -> None:
    """Fill the byte view ``out`` from hexadecimal text (white space ignored), in chunks."""
    pos, total = 0, len(out)
    odd = b""
    while pos < total:
        chunk = source.read(CHUNK)
        if not chunk:
            break
        digits = odd + b"".join(chunk.split())
        digits, odd = (digits[:-1], digits[-1:]) if len(digits) % 2 else (digits, b"")
        try:
            data = bytes.fromhex(digits.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            raise CorruptFileError(f"{where}: NRRD hex data holds a character that is not a "
                                   "hexadecimal digit") from None
        data = data[: total - pos]
        out[pos:pos + len(data)] = data
        pos += len(data)
    if pos < total:
        raise CorruptFileError(f"{where}: NRRD hex data is truncated: {total} bytes expected, "
                               f"{pos} found")
