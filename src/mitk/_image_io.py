"""The glue between :class:`mitk.Image` and the file layer :mod:`mitk.io`.

This is the only module that knows both: formats read into and write from plain NumPy arrays
described by an :class:`~mitk.io._info.ImageInfo`, and never see an ``Image``; ``mitk.io``
never imports ``mitk.image``.  :mod:`mitk.image` and :mod:`mitk.ioutil` import this module
lazily, on their first load or save, so ``import mitk`` loads no I/O code.

Loading allocates each image's own :class:`~mitk._core.buffer.PixelBuffer` and hands it to the
reader as a writable array (no intermediate copy); saving takes the image's read lock first and
reads pixels, shape and geometry under it, so a concurrent ``initialize()`` can never mix one
generation's header with another's pixels.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import io
from ._core.buffer import PixelBuffer
from .errors import ArgumentError, CorruptFileError, UnsupportedFormatError
from .geometry import Geometry3D
from .image import Image, _extent_xyz
from .io._info import Allocator, ImageInfo
from .time_geometry import ArbitraryTimeGeometry, ProportionalTimeGeometry, TimeGeometry

__all__ = ["image_from", "image_info", "load", "load_all", "load_into", "save"]


class _Buffers:
    """The ``allocate`` callback readers get: each call makes one image's own pixel buffer."""

    def __init__(self) -> None:
        self.buffers: list[PixelBuffer] = []

    def __call__(self, dtype: np.dtype, shape: tuple) -> np.ndarray:
        # Uninitialised memory: the reader fills every byte.
        buf = PixelBuffer.new(dtype, shape, False)
        self.buffers.append(buf)
        return np.asarray(buf)


def _time_geometry(info: ImageInfo, path: str) -> TimeGeometry:
    geometry = Geometry3D(spacing=tuple(info.spacing), origin=tuple(info.origin),
                          direction=np.array(info.direction, dtype=np.float64),
                          extent=_extent_xyz(info.ndim, info.shape))
    try:
        if info.time_bounds is not None:
            return ArbitraryTimeGeometry.from_geometry(geometry, info.time_bounds)
        return ProportionalTimeGeometry.from_geometry(
            geometry, info.time_steps, first_time_point=float(info.time_origin),
            step_duration=float(info.time_spacing), static=info.ndim < 4)
    except ArgumentError as exc:  # time values the model refuses (e.g. bounds past float64)
        raise CorruptFileError(f"{path}: unusable time values: {exc}") from None


def _install(image: Image, info: ImageInfo, buf: PixelBuffer | None, path: str) -> None:
    if buf is None or tuple(buf.shape) != info.full_shape or buf.dtype != info.dtype:
        # A reader may allocate a temporary and return a converted array instead (scaling):
        # it then calls allocate() last for the final pixels.
        raise RuntimeError(f"the reader returned an inconsistent image for {path}")
    image._install(buf, info.ndim, info.channels, _time_geometry(info, path))
    image.properties.update(info.properties)


def load_into(image: Image, path: Any, **options: Any) -> None:
    """Read the one image in ``path`` into the empty ``image``; see :meth:`mitk.Image.load`."""
    buffers = _Buffers()
    info = io.read(path, buffers, **options)
    _install(image, info, buffers.buffers[-1] if buffers.buffers else None, io.fspath(path))


def image_from(read: Callable[[Allocator], ImageInfo], path: str) -> Image:
    """An image from a reader: ``read(allocate)`` fills one buffer and describes it.

    For readers outside the registry (a :class:`mitk.dicom.Series` loads its own volume);
    ``path`` names the file in errors.
    """
    buffers = _Buffers()
    info = read(buffers)
    image = Image()
    _install(image, info, buffers.buffers[-1] if buffers.buffers else None, path)
    return image


def load(path: Any, **options: Any) -> Image:
    """One image from ``path``; see :meth:`mitk.Image.load`."""
    image = Image()
    load_into(image, path, **options)
    return image


def load_all(path: Any, **options: Any) -> list[Image]:
    """Every image in ``path`` (one for the single-image formats); see :meth:`mitk.IOUtil.load`.

    Notes
    -----
    A reader of several images (``read_all``) calls ``allocate`` once per image, in the order of
    the infos it returns.
    """
    buffers = _Buffers()
    infos = io.read_all(path, buffers, **options)
    if len(buffers.buffers) != len(infos):
        raise RuntimeError(f"the reader returned {len(infos)} images for {io.fspath(path)} but "
                           f"allocated {len(buffers.buffers)} buffers")
    images = []
    for info, buf in zip(infos, buffers.buffers):
        image = Image()
        _install(image, info, buf, io.fspath(path))
        images.append(image)
    return images


def image_info(image: Image, format_name: str) -> ImageInfo:
    """The format-neutral description of ``image`` that writers take.

    The caller holds the image's read lock, so shape, dtype and geometry belong to the pixels
    being written.  Raises UnsupportedFormatError naming the first step whose geometry or
    duration differs, since every format stores one geometry and one step duration.
    """
    tg = image.time_geometry.copy()  # one consistent snapshot of every step
    g0 = tg.get_geometry_for_time_step(0)
    t = tg._first_differing_step()
    if t is not None:
        raise UnsupportedFormatError(
            f"{format_name} stores one geometry for all time steps, but step {t} differs "
            "from step 0 (set the same spacing, origin and direction on every step)")
    time_origin, time_spacing = 0.0, 1.0
    if image.ndim == 4:
        time_origin, end = tg.get_time_bounds(0)
        time_spacing = end - time_origin
        t = tg._first_uneven_step()
        if t is not None:
            lo, hi = tg.get_time_bounds(t)
            raise UnsupportedFormatError(
                f"{format_name} stores one time step duration, but step {t} lasts {hi - lo} "
                f"and step 0 {time_spacing}")
    return ImageInfo(
        dtype=image.dtype,
        shape=tuple(image.shape[: image.ndim]),
        channels=image.channels,
        spacing=tuple(g0.spacing),
        origin=tuple(g0.origin),
        direction=g0.direction,
        time_origin=float(time_origin),
        time_spacing=float(time_spacing),
        properties=image.properties.to_dict(),
    )


def save(image: Image, path: Any, *, timeout: float | None = None, **options: Any) -> None:
    """Save ``image`` to ``path``; see :meth:`mitk.Image.save`.

    Extension and options are checked before the lock is taken; everything read from the image
    (pixels, shape, dtype, geometry, properties) is read under its read lock.
    """
    if not isinstance(image, Image):
        raise TypeError(f"save needs a mitk.Image, not {type(image).__name__}")
    image._require()
    target = io.prepare_write(path, options)
    with image.read(timeout=timeout) as acc:
        target.write(acc.array, image_info(image, target.format.NAME))
