"""ASCII pixel data, shared by the NRRD and MetaImage readers.

Both parse a chunk of tokens with one NumPy conversion of a fixed-width bytes array, which costs
the token count times the longest token: one value written with 200,000 leading zeros (a valid
0) would ask for gigabytes.  Longer tokens are shortened one by one first.
"""

from __future__ import annotations

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
