"""``mitk.dicom``: what a folder of DICOM files holds, before loading any pixels.

:func:`scan` reads headers only (on a few threads) and returns one :class:`Series` per volume,
in the order :meth:`mitk.IOUtil.load` returns images; each can then be loaded on its own.
``import mitk`` does not import this module or pydicom; ``mitk.dicom`` is imported on first use.
Reading DICOM needs the ``dicom`` extra (``pip install "mitk-core[dicom]"``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .io import dicom as _format
from .io import fspath

__all__ = ["Series", "scan"]


@dataclasses.dataclass(eq=False)
class Series:
    """One volume found by :func:`scan`: what it is, where it is, and what is odd about it.

    Attributes
    ----------
    uid : str
        SeriesInstanceUID (several volumes may share it: echoes, orientations, ...).
    number : int or None
        SeriesNumber.
    description, modality : str
        SeriesDescription and Modality ("" when absent).
    files : list of str
        The files of the volume, in slice order (then time order).
    shape : tuple of int
        The image shape NumPy-order, ``(y, x)``, ``(z, y, x)`` or ``(t, z, y, x)``, plus a
        trailing component axis for colour.
    dtype : numpy.dtype
        The image dtype with the default ``rescale=True`` (see :func:`scan`).
    spacing, origin : tuple of 3 floats
        mm, LPS; spacing z is the length of the slice step.
    direction : numpy.ndarray
        3x3; columns are the row, column and slice step unit vectors (sheared for a tilt).
    time_steps : int
    problems : list of str
        One line each, e.g. ``"uneven slice spacing 1.25-202.5 mm"`` or ``"gantry tilt 18.5
        deg (kept as a sheared geometry)"``.
    """

    uid: str
    number: int | None
    description: str
    modality: str
    files: list
    shape: tuple
    dtype: np.dtype
    spacing: tuple
    origin: tuple
    direction: np.ndarray
    time_steps: int
    problems: list
    _volume: Any = dataclasses.field(repr=False, default=None)

    def load(self, **options: Any):
        """Read this volume into a new :class:`mitk.Image`.

        Parameters
        ----------
        **options
            ``tilt``, ``uneven``, ``rescale`` as for :meth:`mitk.Image.load` (SPEC 12).  With
            the default ``uneven="error"``, a series whose problems list uneven spacing raises
            CorruptFileError; ``uneven="split"`` then needs a series of one evenly spaced run.

        Returns
        -------
        mitk.Image
            A new image with its own pixels (nothing is shared with other loads).

        Notes
        -----
        Files are read on a few threads, straight into the image's buffer; the image is not
        visible to other threads until it is returned, so no lock is taken.
        """
        from ._image_io import image_from

        tilt, uneven, rescale = _format.parse_options(options)
        volume = self._volume
        if volume.uneven or (volume.tilted and tilt == "error"):
            # Planned whole for the listing: plan again as the options say (raise or split).
            planned = [v for v in _format.volumes(_frames_of(self.files), tilt, uneven)
                       if v.uid == self.uid and _same_stack(v, volume)]
            if len(planned) != 1:
                listed = "; ".join(_format.describe(v) for v in planned)
                from .errors import ArgumentError

                raise ArgumentError(f"series {self.uid} gives {len(planned)} volumes with "
                                    f"tilt={tilt!r}, uneven={uneven!r}: {listed}; load them "
                                    "all with mitk.IOUtil.load")
            volume = planned[0]
        return image_from(lambda allocate: _format.read_volumes([volume], allocate, rescale)[0],
                          self.files[0])


def _same_stack(a, b) -> bool:
    ids_a = {(f.header.path, f.index, f.tile) for f in a.frames}
    ids_b = {(f.header.path, f.index, f.tile) for f in b.frames}
    return bool(ids_a & ids_b)


def _frames_of(files: list) -> list:
    from .io.dicom._scan import frames, headers

    return frames(headers(list(files), True))


def scan(path: Any, recursive: bool = True) -> list[Series]:
    """The volumes under ``path`` (a directory, DICOMDIR or DICOM file), from headers only.

    Parameters
    ----------
    path : str, bytes or os.PathLike
    recursive : bool
        Search subdirectories of a directory (default True; every directory is visited once, so
        symlink loops end).

    Returns
    -------
    list of Series
        In the order :meth:`mitk.IOUtil.load` returns the images.  Stacks with uneven slice
        gaps are listed whole, with the gaps in ``problems`` (loading them needs
        ``uneven="split"``); a gantry tilt is kept as a sheared geometry and noted.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    UnsupportedFormatError
        No DICOM image under ``path``, or pydicom is not installed.
    CorruptFileError
        A truncated or inconsistent DICOM file (naming it and the tag).

    Notes
    -----
    Files that are not DICOM, or hold no pixel data, are skipped and logged at DEBUG on the
    ``"mitk"`` logger.  No pixels are read; headers are parsed on a few threads.
    """
    import os

    if not isinstance(recursive, bool):
        raise TypeError(f"recursive must be True or False, not {type(recursive).__name__}")
    path = fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such file or directory", path)
    out = []
    for volume in _format.plan(path, "shear", "report", recursive):
        info = _format.info_of(volume, True)
        out.append(Series(
            uid=volume.uid, number=volume.number, description=volume.description,
            modality=volume.modality, files=volume.files, shape=info.full_shape,
            dtype=info.dtype, spacing=info.spacing, origin=info.origin,
            direction=info.direction, time_steps=volume.time_steps,
            problems=list(volume.problems), _volume=volume))
    return out
