"""The mitk exception hierarchy.

Every class derives from :class:`mitk.Exception` and from the builtin exception that matches its
meaning, so both ``except mitk.Exception`` (upstream's name) and ordinary handlers such as
``except ValueError`` work.  Wrong argument *types* raise the builtin :class:`TypeError`; a missing
input file raises the builtin :class:`FileNotFoundError`; export conflicts raise the builtin
:class:`BufferError`.
"""

from __future__ import annotations

import builtins

__all__ = [
    "ArgumentError",
    "TimeStepError",
    "NotInitializedError",
    "UnsupportedFormatError",
    "CorruptFileError",
    "LockTimeout",
    "LockError",
]


class Exception(builtins.Exception):  # noqa: A001 - upstream's name, kept on purpose
    """Base class of every exception raised by mitk itself."""


class ArgumentError(Exception, ValueError):
    """An argument has the right type but an invalid value (shape, size, geometry, option)."""


class TimeStepError(Exception, IndexError):
    """A time step is negative or not smaller than ``time_steps``."""


class NotInitializedError(Exception, RuntimeError):
    """Pixels or geometry of an empty image were used; call ``initialize()`` first."""


class UnsupportedFormatError(Exception, ValueError):
    """Unknown extension, or a pixel type, geometry or feature the format cannot hold."""


class CorruptFileError(Exception, ValueError):
    """A file is malformed, truncated, inconsistent with its header, or unsafe to read."""


class LockTimeout(Exception, TimeoutError):
    """A read or write lock was not obtained within the requested timeout."""


class LockError(Exception, RuntimeError):
    """A lock request that could never succeed because the calling thread blocks it itself."""
