"""Read and save options: checked here, once, with one wording for every format.

Each format declares the option names it takes (``READ_OPTIONS``, ``WRITE_OPTIONS``) and calls
these checks at the top of its ``read``/``write``; :mod:`mitk.io` handles the options every format
shares (``fsync``).  An unknown option is a ``TypeError`` listing the accepted ones, a value of
the wrong type a ``TypeError``, a bad value an :class:`~mitk.errors.ArgumentError`.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..errors import ArgumentError

__all__ = ["COMMON_WRITE_OPTIONS", "compression", "compression_block_size", "compression_level",
           "flag", "reject_unknown"]

#: Save options every format accepts (handled by :mod:`mitk.io` around the format's writer).
COMMON_WRITE_OPTIONS = frozenset({"fsync"})


def reject_unknown(format_name: str, what: str, given: Mapping[str, Any],
                   accepted: frozenset) -> None:
    """TypeError naming the options in ``given`` that ``accepted`` lacks (``what``: read/write)."""
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        names = ", ".join(sorted(accepted)) or "none"
        raise TypeError(f"unknown {format_name} {what} option(s) {', '.join(unknown)}; "
                        f"accepted: {names}")


def flag(name: str, value: Any) -> bool:
    """A yes/no option: ``bool`` or NumPy's ``bool_`` (as configuration files give them)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, not {type(value).__name__}")
    return bool(value)


def compression(format_name: str, value: Any, codecs: Mapping[str | None, str | None],
                hint: str) -> str | None:
    """The codec that the ``compression`` option ``value`` selects from ``codecs``.

    ``codecs`` maps each accepted option value (None included) to a codec name or None (raw);
    ``hint`` says what to use instead, for the error message.
    """
    if value is not None and not isinstance(value, str):
        raise TypeError(f"compression must be a str or None, not {type(value).__name__}")
    if value not in codecs:
        raise ArgumentError(f"compression {value!r} is not one {format_name} writes; {hint}")
    return codecs[value]


def compression_level(level: Any, codec: str | None) -> int:
    """Check a ``compression_level`` option; returns the level to use (default 1)."""
    if level is None:
        return 1
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)):
        raise TypeError(f"compression_level must be an int from 1 to 9, not {type(level).__name__}")
    if codec is None:
        raise ArgumentError("compression_level needs a compression; raw data has no level")
    if not 1 <= level <= 9:
        raise ArgumentError(f"compression_level must be from 1 to 9, got {level}")
    return int(level)


def compression_block_size(value: Any, codec: str | None) -> int | None:
    """Check a ``compression_block_size`` option: the uncompressed bytes per independently
    deflated block of a gzip/zlib payload (16 MiB and more), from 64 KiB to 64 MiB.

    Smaller blocks make region reads of the file cheaper (a region inflates only the blocks it
    touches) at no measurable cost in size or full-read speed down to 1 MiB; None keeps the
    default (1 MiB).
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError("compression_block_size must be an int (bytes), not "
                        f"{type(value).__name__}")
    if codec not in ("gzip", "zlib"):
        raise ArgumentError("compression_block_size needs gzip compression (deflate blocks); "
                            f"this save is {codec or 'raw'}")
    if not 64 << 10 <= value <= 64 << 20:
        raise ArgumentError(f"compression_block_size must be from 65536 (64 KiB) to 67108864 "
                            f"(64 MiB) bytes, got {value}")
    return int(value)
