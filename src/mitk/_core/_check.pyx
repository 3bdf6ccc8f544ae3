"""Translation of mitkbuf status codes into the exceptions of :mod:`mitk.errors`."""

from mitk._core._mitkbuf cimport (
    MITKBUF_OK, MITKBUF_ENOMEM, MITKBUF_EOVERFLOW, MITKBUF_EINVAL, MITKBUF_EBUSY,
    MITKBUF_ETIMEDOUT, MITKBUF_EDEADLK, MITKBUF_EPERM, mitkbuf_strerror,
)

from mitk.errors import ArgumentError, LockError, LockTimeout


cdef int raise_status(int status, str what) except -1:
    """Raise the exception matching ``status``; ``what`` says which operation failed."""
    cdef str message = mitkbuf_strerror(status).decode("ascii")
    if status == MITKBUF_ENOMEM:
        raise MemoryError(f"{what}: {message}")
    if status == MITKBUF_EOVERFLOW:
        raise ArgumentError(f"{what}: {message}")
    if status == MITKBUF_ETIMEDOUT or status == MITKBUF_EBUSY:
        raise LockTimeout(f"{what}: {message}")
    if status == MITKBUF_EDEADLK:
        raise LockError(f"{what}: {message}")
    if status == MITKBUF_EINVAL:
        raise ArgumentError(f"{what}: {message}")
    if status == MITKBUF_EPERM:
        raise RuntimeError(f"{what}: {message}")
    raise OSError(f"{what}: {message}")


cdef int check(int status) except -1 nogil:
    # Takes the GIL only on the error path (the pyarrow check_status pattern).
    if status == MITKBUF_OK:
        return 0
    with gil:
        return raise_status(status, "mitkbuf")
