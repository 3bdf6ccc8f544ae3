"""MetaImage described without reading pixels: the header, the read plan and the stored axes."""

from __future__ import annotations

import os
from typing import Any

from .. import _options, _replace
from .._info import ImageInfo
from .._regions import Described, Stored, identities, identity
from ._data import plan
from ._header import _parse, _read_header
from ._properties import _properties

READ_OPTIONS = frozenset({"allow_external_data"})


def describe(path: str, *, allow_external_data: bool = False, **unknown: Any) -> Described:
    """The image in the ``.mha``/``.mhd`` file ``path``, checked as ``read`` checks it.

    Raises what :func:`mitk.io.metaimage.read` raises before it allocates; reads no pixels.
    """
    _options.reject_unknown("MetaImage", "read", unknown, READ_OPTIONS)
    allow_external = _options.flag("allow_external_data", allow_external_data)
    # As read() does: a detached pair under the pair lock, header and plan from one open file
    # (the identity recorded is that file's, so a later region read notices any other).
    detached = path.lower().endswith(".mhd")
    with _replace.open_for_load(path, detached) as f:
        st = os.fstat(f.fileno())
        h = _read_header(f, path)
        L = _parse(h)
        pieces = plan(h, L, f, st.st_size, allow_external)
        found = identities(pieces)
        found[path] = identity(st)
    shape = tuple(reversed(L.dims)) if L.ndims > 1 else (1, L.dims[0])
    full = shape + ((L.channels,) if L.channels > 1 else ())
    native = L.dtype.newbyteorder("=")
    stored = Stored(pieces, native, full, swap=L.binary and not L.dtype.isnative,
                    identities=found)
    info = ImageInfo(dtype=native, shape=shape, channels=L.channels, spacing=L.spacing,
                     origin=L.origin, direction=L.direction, time_origin=L.time_origin,
                     time_spacing=L.time_spacing, properties=_properties(h))
    return Described(info, stored, tuple(range(len(full))), None, None, "MetaImage")
