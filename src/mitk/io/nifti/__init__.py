"""NIfTI-1 and NIfTI-2: ``.nii``, ``.nii.gz`` and ``.hdr``/``.img`` pairs; Analyze 7.5 ``.hdr``.

Reading
    * The byte order and version come from ``sizeof_hdr`` (348: NIfTI-1 or Analyze, 540: NIfTI-2,
      either byte order).  The magic must be ``n+1``/``n+2`` (header and data in one file) or
      ``ni1``/``ni2`` (a ``.hdr``/``.img`` pair); the NIfTI-2 magic is followed by
      ``\\r\\n\\032\\n`` (zeros are accepted too, anything else means a text-mode transfer
      damaged the file).  A ``.hdr`` without NIfTI magic is Analyze 7.5: no scaling, units,
      qform or sform.
    * ``vox_offset`` is where the data start; extensions between the header and the data are
      skipped without being parsed.  A single file's ``vox_offset`` below the header size is
      corrupt.  Raw data must fit in the file (trailing bytes are ignored); a gzip stream must
      hold exactly the declared bytes.
    * Every datatype code except binary (1), float128 (1536) and complex256 (2048): the integers
      of 8 to 64 bits, float32/64, complex64 (32) and complex128 (1792); RGB24 (128) and RGBA32
      (2304) become uint8 with 3 or 4 channels.
    * ``dim[0]`` must be 1-7 and only ``dim[1..dim[0]]`` count.  ``dim[4]`` is time (``pixdim[4]``
      the step duration, ``toffset`` the start, both converted to ms); ``dim[5] * dim[6] *
      dim[7]`` are components (``dim[5]`` varying fastest), which the file stores as whole volumes
      and the image holds interleaved on its trailing axis.  In a file with components, one time
      step means 3D and, in addition, one slice means 2D (the way ITK writes 2D vector images).
      A 1-D file loads as shape ``(1, N)``.
    * Geometry: the sform when ``sform_code > 0`` and its matrix is finite and non-singular, else
      the qform when ``qform_code > 0`` (``pixdim[0] < 0`` flips the third axis), else the Analyze
      convention (RAS ``diag(-px, py, pz)`` centred on the volume, as nibabel).  Voxel sizes are
      ``|pixdim|`` (0 or not finite: 1), as nibabel and ITK take them.  A bad sform without
      a qform is :class:`~mitk.errors.CorruptFileError`.  RAS becomes LPS with
      ``diag(-1, -1, 1)``; spacing is the column norms and direction the unit columns, so a
      sheared sform is kept exactly.  ``xyzt_units`` convert space to mm and time to ms; a unit
      code mitk does not know (Hz, ppm, rad/s) leaves the values as they are and is kept as
      ``nifti.xyzt_units``.
    * ``apply_scaling=True`` (default): when ``scl_slope`` is finite and non-zero and the pair is
      not the identity, pixels are ``stored * scl_slope + scl_inter`` (``scl_inter`` counts as 0
      when not finite), computed in float64 and returned as float32 for stored types of up to 16
      bits and float32, float64 for wider ones; complex stays complex.  RGB is never scaled.
      ``apply_scaling=False`` returns the stored values and records ``nifti.scl_slope`` and
      ``nifti.scl_inter``.
    * Header fields the image does not model become properties: ``nifti.descrip``,
      ``nifti.aux_file``, ``nifti.intent_name`` (when not empty), ``nifti.qform_code``,
      ``nifti.sform_code`` (always), ``nifti.intent_code``, ``nifti.slice_code``,
      ``nifti.dim_info``, ``nifti.slice_start``, ``nifti.slice_end``, ``nifti.intent_p1/2/3``,
      ``nifti.cal_min``, ``nifti.cal_max``, ``nifti.slice_duration`` (when not zero; in ms, like
      ``pixdim[4]``), and
      ``nifti.version`` (0 for Analyze, 1 or 2).

Memory
    Plain files are read straight into the image buffer.  Scaled files are read into the tail of
    the (wider) output buffer and converted front to back in place, so the only extra memory is a
    2 MiB float64 work chunk.  Raw files with components are read a few component volumes at a
    time (one volume, or 512 Ki elements of volumes if that is more) into a temporary, then
    scattered into the interleaved image (when scaled, plus the same block in float64); gzip files
    with components are decompressed into a temporary of the whole stored payload first, then
    scattered the same way.

Writing
    NIfTI-1, or NIfTI-2 when a size exceeds 32767 or ``nifti_version=2`` (NIfTI-1 stores geometry
    in float32, NIfTI-2 in float64).  The exact affine goes into the sform (``sform_code`` from
    ``nifti.sform_code`` when positive, else 1), and a qform too when the direction is
    orthonormal within 1e-6 (``qform_code`` from ``nifti.qform_code`` when positive, else 1; a
    non-orthonormal direction writes ``qform_code`` 0).  Units are mm and ms.  Scaling is 1/0
    unless ``nifti.scl_slope``/``nifti.scl_inter`` say otherwise; the other ``nifti.*``
    properties above are written back, plain keys are skipped.  bool is written as uint8 0/1,
    uint8 with 3/4 channels as RGB24/RGBA32, other components as ``dim[5]`` (``dim[0] = 5``,
    ``intent_code`` 1007 "vector" unless ``nifti.intent_code`` is set); such a file cannot tell a
    3D image of one slice from a 2D one, or a 4D image of one step from a 3D one, so those load
    back with one dimension less.  float16 cannot be stored.  Unit codes kept in
    ``nifti.xyzt_units`` that mitk does not convert are written back.  ``vox_offset`` is 352
    (NIfTI-1) or 544 (NIfTI-2) with a zero extension flag; pairs get magic ``ni1``/``ni2`` and
    ``vox_offset`` 0.  ``.nii.gz`` is always gzip (``compression_level``,
    default 1); ``.nii`` and pairs are raw.

    Every file appears atomically (:mod:`mitk.io._replace`).  A pair is written as two temporary
    files, the ``.img`` renamed into place first and the ``.hdr`` right after (its temporary is
    already complete and only needs an fsync); a process killed between the two renames leaves
    the new ``.img`` beside the old ``.hdr``, which fails its size check or describes the wrong
    data.  A pair is saved under an exclusive lock on its directory and read under a shared one
    (:func:`mitk.io._replace.pair_lock`), so mitk's loads never see one save's header with
    another's data and two mitk saves never interleave; another program that rewrites a pair
    takes no such lock, and a load racing it may still see the two halves of different saves
    (a single ``.nii``/``.nii.gz`` file has no such window: it is read through one open file).
    Writing components interleaved in memory as volumes costs one component volume of
    extra memory; a ``.nii.gz`` with components is compressed by the standard library's gzip
    module (without the optional accelerators), volume by volume.
"""

from __future__ import annotations

import math
import os
from typing import Any, NamedTuple

from ...errors import CorruptFileError
from .. import _options, _replace, _streams
from .._data_files import stat_data_file
from .._info import Allocator, ImageInfo
from ._data import _read_pixels, _scaled_dtype, _scaling
from ._geometry import _geometry
from ._header import _layout, _parse_header, _paths, _read_header_bytes
from ._properties import _properties
from ._writer import WRITE_OPTIONS, write

__all__ = ["NAME", "EXTENSIONS", "READ_OPTIONS", "WRITE_OPTIONS", "read", "write"]

NAME = "NIfTI"
EXTENSIONS = (".nii", ".nii.gz", ".hdr", ".img")
READ_OPTIONS = frozenset({"apply_scaling"})


def read(path: str, allocate: Allocator, *, apply_scaling: bool = True,
         **unknown: Any) -> ImageInfo:
    """Read a NIfTI-1, NIfTI-2 or Analyze 7.5 image.

    Parameters
    ----------
    path : str
        A ``.nii``, ``.nii.gz``, ``.hdr`` or ``.img`` file (a pair is found from either name).
    allocate : callable
        ``allocate(dtype, shape)`` returning the writable C-contiguous pixel buffer; called once,
        after the whole header has been validated.
    apply_scaling : bool
        Apply ``scl_slope``/``scl_inter`` (see the module docstring).

    Returns
    -------
    ImageInfo
        Geometry in LPS, time in ms, ``nifti.*`` properties.

    Raises
    ------
    FileNotFoundError
        The other file of a pair is missing.
    CorruptFileError
        Bad magic, sizes, offset, geometry, truncated data or a gzip stream of the wrong length.
    UnsupportedFormatError
        A datatype mitk cannot hold, or RGB pixels with extra component dimensions.

    Notes
    -----
    Reads straight into the allocated buffer except as the module docstring says (scaling,
    components).  File reads and decompression release the GIL.
    """
    _options.reject_unknown(NAME, "read", unknown, READ_OPTIONS)
    apply_scaling = _options.flag("apply_scaling", apply_scaling)
    hdr_path, data_path, kind = _paths(path)
    if not os.path.isfile(hdr_path):
        raise FileNotFoundError(2, f"NIfTI/Analyze header for data file {path} not found",
                                hdr_path)
    # A pair is read under the pair lock (a save by mitk replaces it whole meanwhile, never
    # half); a single file is read through one open file: header and data of one generation.
    with _replace.open_for_load(hdr_path, kind == "pair", buffering=0) as f:
        return _read_open(f, hdr_path, data_path, kind, apply_scaling, allocate)


class Checked(NamedTuple):
    """A NIfTI header that passed every check made before the data are looked at."""

    hdr: Any
    version: int
    order: str
    layout: dict
    offset: int
    data_path: str
    kind: str


def check_header(f, hdr_path: str, data_path: str, kind: str) -> Checked:
    """Parse and check the header in ``f``: magic against the file kind, layout, vox_offset.

    A single-file header under a ``.hdr`` name (as nifti1_io accepts) turns the pair into that
    file: the returned ``data_path`` and ``kind`` say where the data are.  The pair's data file
    is stat-checked here (FileNotFoundError, or CorruptFileError for a directory or FIFO).
    """
    hdr, version, order = _parse_header(_read_header_bytes(f, hdr_path, kind == "gz"), hdr_path)
    magic = bytes(hdr["magic"])[:3]
    if kind == "pair":
        if magic in (b"n+1", b"n+2"):  # a single-file header under a .hdr name (nifti1_io)
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
                               f"{hdr.dtype.itemsize}-byte header; expected at least "
                               f"{hdr.dtype.itemsize} (normally {hdr.dtype.itemsize + 4})")
    return Checked(hdr, version, order, layout, offset, data_path, kind)


def check_data_size(checked: Checked, file_size: int, hdr_path: str) -> None:
    """CorruptFileError when the data file (of ``file_size`` bytes) cannot hold the pixels."""
    nbytes, offset, data_path = checked.layout["nbytes"], checked.offset, checked.data_path
    if checked.kind == "gz":
        _streams.check_compressed_size(offset + nbytes, file_size, "gzip", path=data_path)
    elif file_size < offset + nbytes:
        of = f" (of header {hdr_path})" if data_path != hdr_path else ""
        raise CorruptFileError(f"{data_path}: NIfTI image data{of} is truncated: vox_offset "
                               f"{offset} + {nbytes} bytes of pixels needed, the file has "
                               f"{file_size}")


def image_info(checked: Checked, hdr_path: str, apply_scaling: bool) -> tuple[ImageInfo, Any]:
    """The ImageInfo of a checked header (its dtype: what the image holds) and the scaling still
    to apply to the stored values (None: none, or left to the ``nifti.scl_*`` properties)."""
    hdr, version, layout = checked.hdr, checked.version, checked.layout
    geometry = _geometry(hdr, version, layout, hdr_path)
    scaling = _scaling(hdr, version, layout["rgb"])
    props = _properties(hdr, version, geometry["units_known"])
    native = layout["stored"].newbyteorder("=")
    if scaling is not None and not apply_scaling:
        props["nifti.scl_slope"], props["nifti.scl_inter"] = scaling
        scaling = None
    out_dtype = native if scaling is None else _scaled_dtype(native)
    info = ImageInfo(dtype=out_dtype, shape=layout["shape"], channels=layout["channels"],
                     spacing=geometry["spacing"], origin=geometry["origin"],
                     direction=geometry["direction"], time_origin=geometry["time_origin"],
                     time_spacing=geometry["time_spacing"], properties=props)
    return info, scaling


def _read_open(f, hdr_path: str, data_path: str, kind: str, apply_scaling: bool,
               allocate: Allocator) -> ImageInfo:
    checked = check_header(f, hdr_path, data_path, kind)
    data_path = checked.data_path
    if checked.kind == "pair":
        # Missing: FileNotFoundError; a directory, FIFO or device: CorruptFileError.
        stat_data_file(data_path, hdr_path, "NIfTI/Analyze", "image data (.img)",
                       os.path.basename(data_path))
    data_file = f if data_path == hdr_path else open(data_path, "rb", buffering=0)
    with data_file:
        check_data_size(checked, os.fstat(data_file.fileno()).st_size, hdr_path)
        info, scaling = image_info(checked, hdr_path, apply_scaling)
        layout = checked.layout
        layout["stored"] = layout["stored"].newbyteorder(checked.order)
        data_file.seek(0)
        _read_pixels(data_file, layout, info.dtype, scaling, allocate, gz=checked.kind == "gz",
                     offset=checked.offset, data_path=data_path)
        return info
