"""The pixel component types mitk holds, with their NumPy dtypes and PEP 3118 format strings.

Every image component is one of these native-order dtypes; components per pixel are a separate
count (``channels``), so RGB uint8 is ``uint8`` with 3 channels.
"""

import numpy as np

#: The supported component dtypes, in a stable order (used in error messages and tests).
SUPPORTED = tuple(np.dtype(n) for n in (
    "bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
    "float16", "float32", "float64", "complex64", "complex128",
))
SUPPORTED_NAMES = tuple(d.name for d in SUPPORTED)

# dtype -> PEP 3118 format.  Integers use NumPy's own type character for the platform ('l' for
# int64 on Linux, 'q' on Windows) so that np.asarray(view).dtype is exactly np.int64; complex
# uses the PEP 3118 'Z' prefix that NumPy understands.
cdef dict _FORMATS = {
    d: (("Z" + np.dtype(d.char.lower()).char) if d.kind == "c" else d.char).encode("ascii")
    for d in SUPPORTED
}
# Each supported dtype (and every dtype equal to it, e.g. 'q' and 'l' on Linux) -> the canonical
# object in SUPPORTED; a dict lookup, because this runs on every Image(...) construction.
cdef dict _CANONICAL = {d: d for d in SUPPORTED}


cpdef object check_dtype(object dtype, str argument="dtype"):
    """Return the native-order :class:`numpy.dtype` for a supported pixel type.

    Parameters
    ----------
    dtype : object
        Anything :func:`numpy.dtype` accepts (a dtype, a type, a name such as ``"float32"``).
    argument : str
        Argument name used in the error message.

    Raises
    ------
    TypeError
        The value is not a dtype, or names an unsupported type (object, strings, structured,
        datetime, longdouble, complex256, ...); the message lists the supported types.
    """
    # An array's own dtype (the common case) skips np.dtype(); everything else goes through it.
    dt = dtype if isinstance(dtype, np.dtype) else None
    if dt is None:
        try:
            dt = np.dtype(dtype)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{argument}: {dtype!r} is not a pixel type; supported: "
                f"{', '.join(SUPPORTED_NAMES)}"
            ) from None
    native = dt.newbyteorder("=") if dt.byteorder not in ("=", "|") else dt
    canonical = _CANONICAL.get(native)
    # A union dtype such as ('f4', {'a': ('f4', 0)}) compares equal to float32: check the fields.
    if canonical is None or dt.fields is not None or dt.subdtype is not None:
        raise TypeError(
            f"{argument}: pixel type {dt} is not supported; supported: "
            f"{', '.join(SUPPORTED_NAMES)}"
        )
    return canonical


cdef bytes format_of(object dtype):
    return _FORMATS[dtype]


def pep3118_format(dtype):
    """PEP 3118 format string (``str``) of a supported dtype, as mitk exports it."""
    return _FORMATS[check_dtype(dtype)].decode("ascii")
