"""NRRD described without reading pixels: the header, the read plan and the stored axes."""

from __future__ import annotations

import os
from typing import Any

from .. import _options, _replace
from .._info import ImageInfo
from .._regions import Described, Stored, identities, identity
from ._data import plan
from ._header import _read_header
from ._layout import _parse

READ_OPTIONS = frozenset({"allow_external_data"})


def describe(path: str, *, allow_external_data: bool = False, **unknown: Any) -> Described:
    """The image in the ``.nrrd``/``.nhdr`` file ``path``, checked as ``read`` checks it.

    Raises what :func:`mitk.io.nrrd.read` raises before it allocates; reads no pixels.
    """
    _options.reject_unknown("NRRD", "read", unknown, READ_OPTIONS)
    allow_external = _options.flag("allow_external_data", allow_external_data)
    # As read() does: a detached pair under the pair lock, header and plan from one open file
    # (the identity recorded is that file's, so a later region read notices any other).
    detached = path.lower().endswith(".nhdr")
    with _replace.open_for_load(path, detached) as f:
        h = _read_header(f, path)
        L = _parse(h)
        pieces = plan(h, L, allow_external, f)
        found = identities(pieces)
        found[path] = identity(os.fstat(f.fileno()))
    dim = L.dim
    # Stored axes are the file's axes from the slowest: file axis a is stored axis dim - 1 - a.
    spatial = [dim - 1 - a for a in L.spatial]  # x, y, z
    while len(spatial) < (3 if L.time_axis is not None else 2):
        spatial.append(None)  # a 1-D file's y, or the z of 2D + time
    axes: list = [] if L.time_axis is None else [dim - 1 - L.time_axis]
    axes += list(reversed(spatial))
    if L.channels > 1:
        axes.append(dim - 1 - L.comp_axis)
    complex_axis = None if L.complex_axis is None else dim - 1 - L.complex_axis
    component = L.file_dtype.newbyteorder("=")
    stored = Stored(pieces, component, tuple(reversed(L.sizes)),
                    swap=not L.file_dtype.isnative and L.encoding != "ascii"
                    and L.file_dtype.itemsize > 1,
                    identities=found)
    info = ImageInfo(dtype=L.dtype, shape=L.shape, channels=L.channels, spacing=L.spacing,
                     origin=L.origin, direction=L.direction, time_origin=L.time_origin,
                     time_spacing=L.time_spacing, properties=L.properties)
    return Described(info, stored, tuple(axes), complex_axis, None, "NRRD")
