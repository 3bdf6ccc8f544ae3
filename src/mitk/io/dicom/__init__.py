"""DICOM (read only): a directory, a DICOMDIR or a file becomes one image per volume.

The format package of SPEC section 12, in the order a read uses it:

* :mod:`._scan` finds the files (directory walk, DICOMDIR) and parses headers on a few threads;
* :mod:`._parse` reads the few header tags that grouping and geometry need, fast;
* :mod:`._frames` (classic files, Siemens mosaics) and :mod:`._enhanced` (functional groups,
  through pydicom) turn them into one record per image plane;
* :mod:`._volumes` groups, sorts and splits the planes into volumes with their geometry and time;
* :mod:`._values` picks the pixel type (the rescale rule);
* :mod:`._pixels` (with :mod:`._encaps` for compressed frames) reads or decodes the pixels
  straight into the image buffer on a few threads.

:mod:`._pydicom` imports the optional dependencies (the ``dicom`` extra) on first need.

Options: ``tilt`` ("shear" or "error"), ``uneven`` ("error" or "split"), ``rescale`` (bool).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import ArgumentError, UnsupportedFormatError
from .. import _options
from .._info import Allocator, ImageInfo
from ._pixels import read_volume
from ._scan import find
from ._values import output_dtype
from ._volumes import Volume, volumes

__all__ = ["EXTENSIONS", "NAME", "READ_OPTIONS", "WRITE_OPTIONS", "plan", "read", "read_all",
           "read_volumes", "write"]

NAME = "DICOM"
EXTENSIONS = (".dcm", ".dicom", ".ima")
READ_OPTIONS = frozenset({"tilt", "uneven", "rescale"})
WRITE_OPTIONS = frozenset()

#: Series-level attributes copied to ``dicom.<Keyword>`` properties (from the first file).
PROPERTY_KEYWORDS = (
    "Modality", "SeriesInstanceUID", "StudyInstanceUID", "SeriesNumber", "SeriesDescription",
    "StudyDescription", "StudyDate", "SeriesDate", "Manufacturer", "ManufacturerModelName",
    "BodyPartExamined", "PatientPosition", "AcquisitionDate", "AcquisitionTime", "ImageType",
    "RepetitionTime", "EchoTime", "FlipAngle", "MagneticFieldStrength", "SliceThickness",
    "ScanningSequence", "PhotometricInterpretation", "RescaleType",
)


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if value not in choices:
        raise ArgumentError(f"{name} must be one of {', '.join(map(repr, choices))}, "
                            f"got {value!r}")
    return value


def parse_options(options: dict) -> tuple[str, str, bool]:
    """``(tilt, uneven, rescale)`` from read options, checked (TypeError / ArgumentError)."""
    _options.reject_unknown(NAME, "read", options, READ_OPTIONS)
    tilt = _choice("tilt", options.get("tilt", "shear"), ("shear", "error"))
    uneven = _choice("uneven", options.get("uneven", "error"), ("error", "split"))
    rescale = _options.flag("rescale", options.get("rescale", True))
    return tilt, uneven, rescale


def plan(path: str, tilt: str = "shear", uneven: str = "error", recursive: bool = True
         ) -> list[Volume]:
    """The volumes under ``path``, from headers only (nothing allocated)."""
    return volumes(find(path, recursive), tilt, uneven)


def _text(value: Any) -> str:
    if isinstance(value, tuple):
        return "\\".join(_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def info_of(volume: Volume, rescale: bool) -> ImageInfo:
    """The ImageInfo of ``volume`` (dtype by the rescale rule, properties)."""
    fmt = volume.format
    pairs = {(f.slope, f.intercept) for f in volume.frames}
    dtype = output_dtype(fmt, pairs, rescale)
    h = volume.frames[0].header
    properties: dict[str, Any] = {}
    for keyword in PROPERTY_KEYWORDS:
        value = h.get(keyword)
        if value is not None and value != "":
            properties[f"dicom.{keyword}"] = _text(value)
    if not rescale:
        slopes = [f.slope for f in volume.frames]
        intercepts = [f.intercept for f in volume.frames]
        one = len(pairs) == 1
        properties["dicom.RescaleSlope"] = slopes[0] if one else slopes
        properties["dicom.RescaleIntercept"] = intercepts[0] if one else intercepts
    return ImageInfo(dtype=dtype, shape=tuple(volume.shape), channels=fmt.channels,
                     spacing=tuple(float(v) for v in volume.spacing),
                     origin=tuple(float(v) for v in volume.origin),
                     direction=np.array(volume.direction, dtype=np.float64),
                     time_origin=float(volume.time_origin),
                     time_spacing=float(volume.time_spacing),
                     time_bounds=volume.time_bounds, properties=properties)


def fill(volume: Volume, info: ImageInfo, array: np.ndarray, rescale: bool) -> None:
    """Read ``volume``'s pixels into ``array`` (the allocated image, ``info.full_shape``)."""
    first = volume.frames[0]
    plane = (first.rows, first.columns) + ((info.channels,) if info.channels > 1 else ())
    read_volume(volume.frames, array.reshape((len(volume.frames),) + plane), rescale)


def read_volumes(vols: list[Volume], allocate: Allocator, rescale: bool) -> list[ImageInfo]:
    """Allocate and fill each of ``vols`` in turn (all infos are made before any allocation)."""
    infos = [info_of(v, rescale) for v in vols]
    for volume, info in zip(vols, infos):
        array = allocate(info.dtype, info.full_shape)
        fill(volume, info, array, rescale)
    return infos


def describe(volume: Volume) -> str:
    """One line naming a candidate volume: series UID and number, description, shape."""
    return (f"series {volume.number if volume.number is not None else '?'} "
            f"{volume.uid or '(no SeriesInstanceUID)'} {volume.description!r} "
            f"shape {tuple(volume.shape)}")


def read(path: str, allocate: Allocator, **options: Any) -> ImageInfo:
    """The one volume in ``path``; ArgumentError listing the candidates when there are several."""
    tilt, uneven, rescale = parse_options(options)
    vols = plan(path, tilt, uneven)
    if len(vols) != 1:
        listed = "\n  ".join(describe(v) for v in vols)
        raise ArgumentError(
            f"{path} holds {len(vols)} DICOM volumes, not one:\n  {listed}\nLoad them all "
            "with mitk.IOUtil.load(path), or pick one with mitk.dicom.scan(path)[i].load()")
    return read_volumes(vols, allocate, rescale)[0]


def read_all(path: str, allocate: Allocator, **options: Any) -> list[ImageInfo]:
    """Every volume in ``path``, in SPEC order; ``allocate`` is called once per volume."""
    tilt, uneven, rescale = parse_options(options)
    return read_volumes(plan(path, tilt, uneven), allocate, rescale)


def write(path: str, array: np.ndarray, info: ImageInfo, **options: Any) -> None:
    """Always UnsupportedFormatError: mitk reads DICOM but does not write it."""
    raise UnsupportedFormatError(f"{path}: writing DICOM is not supported; save as NRRD, "
                                 "NIfTI or MetaImage")
