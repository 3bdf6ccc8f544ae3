"""Reading and writing images: one registry, three formats (NRRD, NIfTI-1/2, MetaImage).

``Image(path)``, ``Image.load``, ``img.save``, ``IOUtil.load`` and ``IOUtil.save`` all come here.
Loading checks, in order: a missing path (FileNotFoundError), a directory (IsADirectoryError), an
unknown extension, then a path that is not a regular file, such as a pipe (both
UnsupportedFormatError); the content is never sniffed.  Readers fill the
image's own buffer (no intermediate copy); writers write from a read-only view under the image's
read lock, atomically.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UnsupportedFormatError
from . import registry
from ._atomic import durability
from ._info import ImageInfo

if TYPE_CHECKING:
    from ..image import Image

__all__ = ["load", "load_into", "save", "supported_extensions"]

supported_extensions = registry.supported_extensions


def _fspath(path: Any, argument: str = "path") -> str:
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{argument} must be str, bytes or os.PathLike, not {type(path).__name__}")
    path = os.fspath(path)
    return os.fsdecode(path) if isinstance(path, bytes) else path


#: Save options every format accepts (see :meth:`mitk.Image.save`).
_COMMON_WRITE_OPTIONS = frozenset({"fsync"})


def _check_options(fmt, given: dict, allowed: frozenset, what: str) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        accepted = ", ".join(sorted(allowed)) or "none"
        raise TypeError(
            f"unknown {fmt.NAME} {what} option(s) {', '.join(unknown)}; accepted: {accepted}")


def load_into(image: Image, path: Any, **options: Any) -> None:
    """Read the file at ``path`` into the (empty) ``image``; see :meth:`mitk.Image.load`."""
    from .._core.buffer import PixelBuffer
    from ..geometry import Geometry3D
    from ..image import _extent_xyz
    from ..time_geometry import ProportionalTimeGeometry

    path = _fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such file or directory", path)
    if os.path.isdir(path):
        raise IsADirectoryError(21, "Is a directory (expected an image file)", path)
    fmt = registry.format_for(path)
    if not stat.S_ISREG(os.stat(path).st_mode):
        # A FIFO or a device would block open() or never end: only regular files are images.
        raise UnsupportedFormatError(f"{path}: not a regular file (a pipe or a device); mitk "
                                     "reads images from regular files")
    _check_options(fmt, options, fmt.READ_OPTIONS, "read")
    buffers = []

    def allocate(dtype: np.dtype, shape: tuple) -> np.ndarray:
        # The image's own buffer, uninitialised: the reader fills every byte.
        buf = PixelBuffer.new(dtype, shape, False)
        buffers.append(buf)
        return np.asarray(buf)

    info: ImageInfo = fmt.read(path, allocate, **options)
    buf = buffers[-1] if buffers else None
    if buf is None or tuple(buf.shape) != info.full_shape or buf.dtype != info.dtype:
        # A reader may allocate a temporary and return a converted array instead (scaling):
        # it then calls allocate() last for the final pixels.
        raise RuntimeError(f"{fmt.NAME} reader returned an inconsistent image for {path}")
    geometry = Geometry3D(spacing=tuple(info.spacing), origin=tuple(info.origin),
                          direction=np.array(info.direction, dtype=np.float64),
                          extent=_extent_xyz(info.ndim, info.shape))
    tg = ProportionalTimeGeometry.from_geometry(
        geometry, info.time_steps, first_time_point=float(info.time_origin),
        step_duration=float(info.time_spacing), static=info.ndim < 4)
    image._install(buf, info.ndim, info.channels, tg)
    image.properties.update(info.properties)


def load(path: Any, **options: Any) -> Image:
    """Load one image from ``path``; see :meth:`mitk.Image.load`."""
    from ..image import Image

    return Image.load(path, **options)


def _info_of(image: Image, fmt) -> ImageInfo:
    tg = image.time_geometry
    steps = image.time_steps
    g0 = tg.get_geometry_for_time_step(0)
    for t in range(1, steps):
        if tg.get_geometry_for_time_step(t) != g0:
            raise UnsupportedFormatError(
                f"{fmt.NAME} stores one geometry for all time steps, but step {t} differs from "
                "step 0 (set the same spacing, origin and direction on every step)")
    time_origin, time_spacing = 0.0, 1.0
    if image.ndim == 4:
        bounds = [tg.get_time_bounds(t) for t in range(steps)]
        durations = [hi - lo for lo, hi in bounds]
        time_origin = bounds[0][0]
        time_spacing = durations[0]
        for t, d in enumerate(durations):
            if abs(d - time_spacing) > 1e-9 * max(1.0, abs(time_spacing)):
                raise UnsupportedFormatError(
                    f"{fmt.NAME} stores one time step duration, but step {t} lasts {d} and step 0 "
                    f"{time_spacing}")
    return ImageInfo(
        dtype=image.dtype,
        shape=tuple(image.shape[: image.ndim]),
        channels=image.channels,
        spacing=tuple(g0.spacing),
        origin=tuple(g0.origin),
        direction=g0.direction,
        time_origin=float(time_origin),
        time_spacing=float(time_spacing),
        properties=dict(image.properties),
    )


def save(image: Image, path: Any, *, timeout: float | None = None, **options: Any) -> None:
    """Save ``image`` to ``path``; see :meth:`mitk.Image.save`."""
    from ..image import Image

    if not isinstance(image, Image):
        raise TypeError(f"save needs a mitk.Image, not {type(image).__name__}")
    image._require()
    path = _fspath(path)
    fmt = registry.format_for(path)
    _check_options(fmt, options, fmt.WRITE_OPTIONS | _COMMON_WRITE_OPTIONS, "write")
    # ``fsync`` is common to every format: it is handled here, around the format's writer.
    fsync = options.pop("fsync", True)
    if not isinstance(fsync, bool):
        raise TypeError(f"fsync must be True or False, not {type(fsync).__name__}")
    info = _info_of(image, fmt)
    with image.read(timeout=timeout) as acc, durability(fsync):
        fmt.write(path, acc.array, info, **options)
