"""What a format module reads from, and writes to, a file: the format-neutral image description.

Format modules never see :class:`mitk.Image`.  A reader parses and validates a header, asks the
caller for a pixel buffer through an ``allocate`` callback, fills it, and returns an
:class:`ImageInfo`; a writer receives a read-only C-contiguous native-order array plus an
:class:`ImageInfo`.  The glue in :mod:`mitk.io` turns these into images and back.  Keeping the
formats free of ``Image`` lets each one be tested with plain NumPy arrays.

Reader contract (``read(path, allocate, **options) -> ImageInfo``)
    * ``path`` is a ``str`` naming an existing regular file whose extension the registry matched.
    * The whole header is parsed and validated first; the data size is checked against the file
      (raw) or bounded (compressed) *before* ``allocate`` is called.
    * ``allocate(dtype, shape)`` takes a native-order NumPy dtype of one component and the full
      NumPy-order shape ``(t, z, y, x[, c])`` (spatial/time axes first, component axis last only
      when ``channels > 1``) and returns a writable, C-contiguous ndarray (contents undefined).
      Readers fill it with ``readinto`` / streaming decompression, then byte-swap in place if the
      file's byte order is not native.
    * Errors: :class:`~mitk.errors.CorruptFileError` / :class:`~mitk.errors.UnsupportedFormatError`
      naming the file and the field; a missing detached data file is ``FileNotFoundError``.

Writer contract (``write(path, array, info, **options) -> None``)
    * ``array`` is a read-only, C-contiguous, native-order ndarray of shape ``info.full_shape``.
    * Everything (pixel type, geometry, properties, options) is validated before any byte is
      written; the file appears atomically (:mod:`mitk.io._replace`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

#: ``allocate(dtype, shape) -> writable C-contiguous ndarray`` (see the module docstring).
Allocator = Callable[[np.dtype, tuple], np.ndarray]


@dataclasses.dataclass
class ImageInfo:
    """A format-neutral description of one image in a file.

    Attributes
    ----------
    dtype : numpy.dtype
        Native-order dtype of one pixel component (bool for masks the writer gets; readers return
        what the file stores, so masks come back as uint8).
    shape : tuple of int
        NumPy-order image shape without the component axis: ``(y, x)``, ``(z, y, x)`` or
        ``(t, z, y, x)``.  ``len(shape)`` is the image dimension (2, 3 or 4).
    channels : int
        Components per pixel (>= 1); when > 1 the pixel array has a trailing axis of this length.
    spacing, origin : tuple of 3 floats
        Voxel spacing (mm) and world position of voxel (0, 0, 0), both in LPS.
    direction : numpy.ndarray
        3x3 float64; column ``j`` is the LPS world direction of index axis ``j`` (x, y, z).  Kept
        exactly as the file gives it (never orthonormalised).
    time_origin, time_spacing : float
        Start and duration of time step 0 (only meaningful for 4D; defaults 0 and 1).
    time_bounds : tuple of (float, float), optional
        ``(start, end)`` of every time step, for a 4D image whose steps are not evenly spaced
        (read-only formats such as DICOM); None (default) means ``time_origin``/``time_spacing``.
    properties : dict
        Metadata: plain user keys plus ``nrrd.*`` / ``nifti.*`` / ``meta.*`` header fields the
        image model does not hold (SPEC.md section 6.4).
    """

    dtype: np.dtype
    shape: tuple
    channels: int = 1
    spacing: tuple = (1.0, 1.0, 1.0)
    origin: tuple = (0.0, 0.0, 0.0)
    direction: Any = dataclasses.field(default_factory=lambda: np.eye(3))
    time_origin: float = 0.0
    time_spacing: float = 1.0
    time_bounds: tuple | None = None
    properties: dict = dataclasses.field(default_factory=dict)

    @property
    def ndim(self) -> int:
        """Image dimension: 2, 3 or 4 (time counts, components do not)."""
        return len(self.shape)

    @property
    def full_shape(self) -> tuple:
        """The pixel array's shape: ``shape`` plus ``(channels,)`` when ``channels > 1``."""
        return tuple(self.shape) + ((self.channels,) if self.channels > 1 else ())

    @property
    def time_steps(self) -> int:
        """Number of time steps (``shape[0]`` for 4D, else 1)."""
        return self.shape[0] if len(self.shape) == 4 else 1
