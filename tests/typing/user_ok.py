"""A user's script, fully typed: ``mypy --strict`` must accept it and every assert_type."""

import os
import pathlib
from typing import Any, assert_type

import numpy as np
import numpy.typing as npt

import mitk
from mitk._core.accessor import ReadAccessor
from mitk._core.buffer import PixelBuffer


def main(folder: str) -> float:
    img = mitk.Image(np.zeros((4, 5, 6), np.float32), spacing=(1.0, 1.0, 2.5))
    assert_type(img, mitk.Image)
    path = os.path.join(folder, "volume.nrrd")
    img.save(path)
    img.save(pathlib.Path(folder) / "volume.nii.gz", compression_level=1)
    mitk.IOUtil.save(img, path.encode())
    assert_type(mitk.Image.load(path), mitk.Image)
    assert_type(mitk.Image(path), mitk.Image)
    assert_type(mitk.IOUtil.load(path), list[mitk.Image])
    assert_type(img.copy(), mitk.Image)
    assert_type(img.as_numpy(), npt.NDArray[Any])
    assert_type(img.as_numpy(writeable=True, time_step=0), npt.NDArray[Any])
    assert_type(img.array, npt.NDArray[Any])
    assert_type(img.ndim, int)
    assert_type(img.readonly, bool)
    assert_type(img.pixel_buffer, PixelBuffer)
    assert_type(img.pixel_buffer.shape, tuple[int, ...])
    assert_type(img.spacing, tuple[float, float, float])
    assert_type(img.origin, tuple[float, float, float])
    assert_type(img.direction, npt.NDArray[np.float64])
    assert_type(img.get_geometry(0), mitk.Geometry3D)
    assert_type(img.time_geometry, mitk.TimeGeometry)
    img.spacing = (0.5, 0.5, 1.0)
    with mitk.ImageReadAccessor(img) as acc:
        total = float(acc.array.sum())
    with img.read(timeout=1.0) as locked:
        assert_type(locked, mitk.ImageReadAccessor)
    with ReadAccessor(img.pixel_buffer, timeout=1.0) as raw:
        assert_type(raw, ReadAccessor)
        assert_type(raw.array, npt.NDArray[Any])
    empty = mitk.Image()
    empty.initialize(np.int16, (8, 8, 4))
    empty.initialize("uint8", [8, 8], channels=3)
    return total
