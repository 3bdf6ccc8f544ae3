"""NIfTI described without reading pixels: the header checks of ``read`` and the stored axes.

The file stores ``x`` fastest, then ``y``, ``z``, ``t`` and the component volumes
(``dim[5..7]``) slowest; RGB pixels hold their 3 or 4 bytes together.  So the stored array is
``(components, t, z, y, x, rgb)``, with size 1 for what the file lacks.
"""

from __future__ import annotations

import os
from typing import Any

from ...errors import CorruptFileError
from .. import _options, _replace
from .._data_files import Piece, stat_data_file
from .._regions import Described, Stored, identity
from . import check_data_size, check_header, image_info
from ._header import _paths

READ_OPTIONS = frozenset({"apply_scaling"})


def describe(path: str, *, apply_scaling: bool = True, **unknown: Any) -> Described:
    """The image in the NIfTI or Analyze file ``path``, checked as ``read`` checks it.

    Raises what :func:`mitk.io.nifti.read` raises before it allocates; reads no pixels.
    """
    _options.reject_unknown("NIfTI", "read", unknown, READ_OPTIONS)
    apply_scaling = _options.flag("apply_scaling", apply_scaling)
    hdr_path, data_path, kind = _paths(path)
    if not os.path.isfile(hdr_path):
        raise FileNotFoundError(2, f"NIfTI/Analyze header for data file {path} not found",
                                hdr_path)
    # As read() does: a pair under the pair lock, a single file's header and size from one
    # open file (whose identity is recorded, so a later region read notices any other).
    with _replace.open_for_load(hdr_path, kind == "pair", buffering=0) as f:
        return _describe(f, hdr_path, data_path, kind, apply_scaling)


def _describe(f, hdr_path: str, data_path: str, kind: str, apply_scaling: bool) -> Described:
    checked = check_header(f, hdr_path, data_path, kind)
    found = {hdr_path: identity(os.fstat(f.fileno()))}
    data_path, layout, offset = checked.data_path, checked.layout, checked.offset
    if checked.kind == "pair":
        # Missing: FileNotFoundError; a directory, FIFO or device: CorruptFileError.
        st = stat_data_file(data_path, hdr_path, "NIfTI/Analyze", "image data (.img)",
                            os.path.basename(data_path))
        found[data_path] = identity(st)
        file_size = st.st_size
    else:
        file_size = os.fstat(f.fileno()).st_size
    check_data_size(checked, file_size, hdr_path)
    nbytes = layout["nbytes"]
    if checked.kind == "gz":
        piece = Piece(data_path, data_path, 0, nbytes, encoding="gzip", skip=offset)
    else:
        piece = Piece(data_path, data_path, offset, nbytes, what="NIfTI image data")
    info, scaling = image_info(checked, hdr_path, apply_scaling)
    stored_dtype = layout["stored"].newbyteorder(checked.order)
    native = stored_dtype.newbyteorder("=")
    shape, channels = layout["shape"], layout["channels"]
    nx, ny, nz = layout["xyz"]
    nt = 1 if len(shape) < 4 else shape[0]
    rgb = channels if layout["rgb"] else 1
    comps = 1 if layout["rgb"] else layout["comps"]
    stored_shape = (comps, nt, nz, ny, nx, rgb)
    axes = {2: (3, 4), 3: (2, 3, 4), 4: (1, 2, 3, 4)}[len(shape)]
    if len(shape) == 2 and nz > 1:  # pragma: no cover - _layout never gives this
        raise CorruptFileError(f"{hdr_path}: NIfTI 2D image with {nz} slices")
    if channels > 1:
        axes += (5,) if layout["rgb"] else (0,)
    stored = Stored([piece], native, stored_shape,
                    swap=not stored_dtype.isnative and native.itemsize > 1,
                    identities=found)
    return Described(info, stored, axes, None, scaling, "NIfTI")
