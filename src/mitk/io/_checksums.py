"""Checksums of concatenated data from the checksums of the parts: CRC-32 (gzip) and Adler-32
(zlib), as zlib's ``crc32_combine`` and ``adler32_combine`` (which Python's zlib does not expose).

Blocks deflated or inflated apart each have their own checksum; the stream's is combined from
them (``mitk.io._parallel_deflate``) instead of a second pass over the bytes.
"""

from __future__ import annotations

__all__ = ["adler32_combine", "crc32_combine"]

_CRC_POLY = 0xEDB88320  # CRC-32 of gzip, bit-reversed


def _crc_multiply(a: int, b: int) -> int:
    """a * b modulo the CRC-32 polynomial, in the reflected bit order CRC-32 uses."""
    product, bit = 0, 1 << 31
    while a:
        if a & bit:
            product ^= b
            a ^= bit
        bit >>= 1
        b = (b >> 1) ^ _CRC_POLY if b & 1 else b >> 1
    return product


# x^(2^k) modulo the polynomial, k = 0..31 (x^1 is bit 30 in reflected order).
_X_POW2: list[int] = [1 << 30]
for _ in range(31):
    _X_POW2.append(_crc_multiply(_X_POW2[-1], _X_POW2[-1]))


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of ``A + B`` from ``crc32(A)``, ``crc32(B)`` and ``len(B)``.

    Appending a byte multiplies the CRC register by x^8; so ``crc1`` is carried past ``len2`` bytes
    by one multiplication with x^(8 * len2), built from the powers x^(2^k).
    """
    power, k, n = 1 << 31, 3, len2  # x^0, and 8 * len2 = len2 << 3
    while n:
        if n & 1:
            power = _crc_multiply(_X_POW2[k & 31], power)
        n >>= 1
        k += 1
    return _crc_multiply(power, crc1) ^ crc2


def adler32_combine(adler1: int, adler2: int, len2: int) -> int:
    """Adler-32 of ``A + B`` from ``adler32(A)``, ``adler32(B)`` and ``len(B)``.

    Adler-32 is (s1, s2) with s1 = 1 + sum of the bytes and s2 = sum of the running s1 values,
    both modulo 65521.  Over ``A + B``, s1 adds B's byte sum, and each of B's ``len2`` running s1
    values is B's own plus A's byte sum (s1(A) - 1).
    """
    mod = 65521
    a1, b1 = adler1 & 0xFFFF, adler1 >> 16
    a2, b2 = adler2 & 0xFFFF, adler2 >> 16
    s1 = (a1 + a2 - 1) % mod
    s2 = (b1 + b2 + (len2 % mod) * (a1 - 1)) % mod
    return s2 << 16 | s1
