"""How many threads mitk's own parallel work may use (SPEC.md section 14): one knob.

mitk starts worker threads only inside a call (parallel copies, deflate and inflate blocks,
DICOM frame decoding, region reads) and never more than :func:`get_num_threads` of them.  The
value is looked up in this order:

1. ``with mitk.num_threads(n):`` -- for the calling thread, and for work started from it in a
   copy of its context (a :mod:`contextvars` variable, so other threads are not affected);
2. ``mitk.set_num_threads(n)`` -- for the whole process;
3. the start value: the ``MITK_NUM_THREADS`` environment variable (read once, at the first
   lookup); otherwise 1 inside a Dask worker task or where ``OMP_NUM_THREADS=1`` is set (the
   process or its scheduler already runs one task per core); otherwise the number of CPUs in the
   process's affinity mask.

An invalid ``MITK_NUM_THREADS`` (not an integer, or below 1) is ignored, with a DEBUG record on
the ``"mitk"`` logger, and the rules after it apply: a typo in the environment must not make
every load fail, and a library must not print.

Everything here is safe to call from any thread, also on free-threaded CPython: the process
value is changed under a lock and read as one reference, and the scoped value lives in a
context variable.  Code that starts worker threads calls :func:`threads_for`.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
import threading
from typing import Iterator

from .errors import ArgumentError

__all__ = ["get_num_threads", "num_threads", "set_num_threads", "threads_for"]

_log = logging.getLogger("mitk")

#: Environment variable with the start value.
ENV_VAR = "MITK_NUM_THREADS"

# None until set_num_threads() or the first lookup fixes it; then an int >= 1.  Written under
# _lock only; a reader sees either None or a complete int.
_process_value: int | None = None
# Whether _process_value came from set_num_threads or MITK_NUM_THREADS (explicit) rather than
# from the CPU count; only then does a Dask worker task get it instead of 1.
_explicit = False
_lock = threading.Lock()
_scoped: contextvars.ContextVar[int | None] = contextvars.ContextVar("mitk_num_threads",
                                                                     default=None)


def _new_lock_in_child() -> None:
    # A thread of the parent may have held _lock at fork time; the child must not inherit that.
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_in_child)


def _check(n: object) -> int:
    if isinstance(n, bool) or not hasattr(type(n), "__index__"):
        raise TypeError(f"the number of threads must be an int, not {type(n).__name__}")
    value = n.__index__()  # type: ignore[attr-defined]
    if value < 1:
        raise ArgumentError(f"the number of threads must be >= 1, got {value}")
    return value


def _cpus() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        pass
    count = getattr(os, "process_cpu_count", os.cpu_count)()  # process_cpu_count: 3.13+
    return max(1, count or 1)


def _from_environment() -> int | None:
    raw = os.environ.get(ENV_VAR)
    if raw is None:
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value < 1:
        _log.debug("ignoring %s=%r: expected an integer >= 1", ENV_VAR, raw)
        return None
    return value


def _in_dask_worker() -> bool:
    """Whether the calling thread runs a task of a dask.distributed worker.

    Looks only at modules already imported: importing dask here would cost the import time
    that mitk promises not to spend (and a process that never imported it runs no worker).
    """
    worker = sys.modules.get("distributed.worker")
    get_worker = getattr(worker, "get_worker", None)
    if get_worker is None:
        return False
    try:
        get_worker()
    except ValueError:  # "No worker found": not inside a task
        return False
    return True


def _start_value() -> tuple[int, bool]:
    value = _from_environment()
    if value is not None:
        return value, True
    if os.environ.get("OMP_NUM_THREADS", "").strip() == "1":
        return 1, False
    return _cpus(), False


def get_num_threads() -> int:
    """Most threads mitk's own parallel work uses (for this thread, now).

    Returns
    -------
    int
        ``>= 1``: the value of the innermost :func:`num_threads` block of this context, else the
        process value (:func:`set_num_threads`, or the start value described in
        :mod:`mitk._threads`).

    Notes
    -----
    Takes no pixel lock and never blocks on another thread for long (the first call reads the
    environment under a process-wide lock).  Safe without the GIL.
    """
    global _process_value, _explicit
    scoped = _scoped.get()
    if scoped is not None:
        return scoped
    value = _process_value
    if value is None:
        with _lock:
            if _process_value is None:
                _process_value, _explicit = _start_value()
            value = _process_value
    if not _explicit and _in_dask_worker():
        return 1
    return value


def set_num_threads(n: int) -> None:
    """Set how many threads mitk's own parallel work may use, for the whole process.

    Parameters
    ----------
    n : int
        ``>= 1``.

    Raises
    ------
    TypeError
        ``n`` is not an int (``bool`` included).
    ArgumentError
        ``n < 1``.

    Notes
    -----
    Replaces the start value (``MITK_NUM_THREADS`` or the CPU count) and applies in Dask worker
    tasks too.  An enclosing :func:`num_threads` block of the calling context still takes
    precedence there.  Thread-safe; starts and stops no thread.
    """
    global _process_value, _explicit
    value = _check(n)
    with _lock:
        _process_value, _explicit = value, True


def num_threads(n: int) -> contextlib.AbstractContextManager[int]:
    """Use ``n`` threads for mitk's own parallel work inside a ``with`` block.

    Parameters
    ----------
    n : int
        ``>= 1``.

    Returns
    -------
    context manager
        ``with mitk.num_threads(2) as n:`` -- sets the value for the calling thread (and for work
        it starts in a copy of its :mod:`contextvars` context) until the block ends; ``n`` is
        the value.  Blocks nest, and it also works as a function decorator.

    Raises
    ------
    TypeError, ArgumentError
        As :func:`set_num_threads`, when called (not when the block is entered).

    Notes
    -----
    Other threads, and the process value, are not changed.  Safe without the GIL.
    """
    return _scope(_check(n))


@contextlib.contextmanager
def _scope(value: int) -> Iterator[int]:
    token = _scoped.set(value)
    try:
        yield value
    finally:
        _scoped.reset(token)


def threads_for(tasks: int) -> int:
    """How many worker threads to start for ``tasks`` independent pieces of work.

    ``min(get_num_threads(), tasks)``, at least 1.  Call it in the thread that starts the
    workers; to pass a :func:`num_threads` setting on to work that itself starts threads, submit
    that work as ``pool.submit(contextvars.copy_context().run, fn, *args)``.
    """
    return max(1, min(get_num_threads(), int(tasks)))
