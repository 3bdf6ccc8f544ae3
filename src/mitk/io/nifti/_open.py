"""NIfTI described without reading pixels: the header checks of ``read`` and the stored axes.

The file stores ``x`` fastest, then ``y``, ``z``, ``t`` and the component volumes
(``dim[5..7]``) slowest; RGB pixels hold their 3 or 4 bytes together.  So the stored array is
``(components, t, z, y, x, rgb)``, with size 1 for what the file lacks.
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Any

from ...errors import CorruptFileError
from .. import _options, _replace, _streams
from .._data_files import Piece, stat_data_file
from .._info import ImageInfo
from .._regions import Described, Stored, identity
from ._data import _scaled_dtype, _scaling
from ._geometry import _geometry
from ._header import _layout, _parse_header, _paths, _read_header_bytes
from ._properties import _properties

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
    with _replace.pair_lock(os.path.dirname(os.path.abspath(hdr_path)), exclusive=False) \
            if kind == "pair" else contextlib.nullcontext(), open(hdr_path, "rb", buffering=0) as f:
        return _describe(f, hdr_path, data_path, kind, apply_scaling)


def _describe(f, hdr_path: str, data_path: str, kind: str, apply_scaling: bool) -> Described:
    hdr, version, order = _parse_header(_read_header_bytes(f, hdr_path, kind == "gz"), hdr_path)
    found = {hdr_path: identity(os.fstat(f.fileno()))}
    magic = bytes(hdr["magic"])[:3]
    if kind == "pair":
        if magic in (b"n+1", b"n+2"):
            data_path, kind = hdr_path, "nii"
    elif version == 0:
        raise CorruptFileError(f"{hdr_path}: NIfTI field 'magic' is missing; a file without "
                               "NIfTI magic is only read as Analyze 7.5 from a .hdr/.img pair")
    elif magic in (b"ni1", b"ni2"):
        raise CorruptFileError(f"{hdr_path}: NIfTI field 'magic' is {magic.decode()!r}, which "
                               "marks a .hdr/.img pair, but the file holds the data itself "
                               "(expected 'n+1' or 'n+2')")
    layout = _layout(hdr, hdr_path)
    offset_value = float(hdr["vox_offset"])
    if not math.isfinite(offset_value) or offset_value < 0 or offset_value >= 2.0 ** 62:
        raise CorruptFileError(f"{hdr_path}: NIfTI field 'vox_offset' is {offset_value}; "
                               "expected a byte offset >= 0")
    offset = int(offset_value)
    if kind != "pair" and offset < hdr.dtype.itemsize:
        raise CorruptFileError(f"{hdr_path}: NIfTI field 'vox_offset' is {offset}, inside the "
                               f"{hdr.dtype.itemsize}-byte header")
    if kind == "pair":
        # Missing: FileNotFoundError; a directory, FIFO or device: CorruptFileError.
        st = stat_data_file(data_path, hdr_path, "NIfTI/Analyze", "image data (.img)",
                            os.path.basename(data_path))
        found[data_path] = identity(st)
    nbytes = layout["nbytes"]
    file_size = os.fstat(f.fileno()).st_size if kind != "pair" else st.st_size
    if kind == "gz":
        _streams.check_compressed_size(offset + nbytes, file_size, "gzip", path=data_path)
        piece = Piece(data_path, data_path, 0, nbytes, encoding="gzip", skip=offset)
    else:
        if file_size < offset + nbytes:
            of = f" (of header {hdr_path})" if data_path != hdr_path else ""
            raise CorruptFileError(f"{data_path}: NIfTI image data{of} is truncated: vox_offset "
                                   f"{offset} + {nbytes} bytes of pixels needed, the file has "
                                   f"{file_size}")
        piece = Piece(data_path, data_path, offset, nbytes, what="NIfTI image data")
    geometry = _geometry(hdr, version, layout, hdr_path)
    scaling = _scaling(hdr, version, layout["rgb"])
    props = _properties(hdr, version, geometry["units_known"])
    stored_dtype = layout["stored"].newbyteorder(order)
    native = stored_dtype.newbyteorder("=")
    if scaling is not None and not apply_scaling:
        props["nifti.scl_slope"], props["nifti.scl_inter"] = scaling
        scaling = None
    out_dtype = native if scaling is None else _scaled_dtype(native)
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
    info = ImageInfo(dtype=out_dtype, shape=shape, channels=channels,
                     spacing=geometry["spacing"], origin=geometry["origin"],
                     direction=geometry["direction"], time_origin=geometry["time_origin"],
                     time_spacing=geometry["time_spacing"], properties=props)
    return Described(info, stored, axes, None, scaling, "NIfTI")
