"""NRRD: ``.nrrd`` (header and data in one file) and ``.nhdr`` (detached data).

The header follows the NRRD format page and teem, its reference implementation: the magic
``NRRD0001`` to ``NRRD0006`` (or the early ``NRRD00.01``), then ``field: value`` lines,
``key:=value`` lines and ``#`` comments, ended by an empty line (attached data follow it) or by
the end of a detached header.  As in teem, field names, types, encodings, spaces, kinds and
centers are matched without regard to case and with every alias (``unsigned short``, ``ushort``,
``uint16_t``; ``gz``; ``RAS``; ``RGB``; ``3D-sym-tensor``; ``spacedirections``; ...).  A field
given twice is CorruptFileError.  A line whose name before ``": "`` is not a NRRD field is a
``key:=value`` pair when it holds ``:=`` (as teem decides), and otherwise an unknown field, kept as
a ``nrrd.<field>`` property.

Reading
    Types: every integer type of 8 to 64 bits, ``float`` and ``double`` (``block`` is
    UnsupportedFormatError).  Encodings: ``raw``, ``gzip``/``gz``, ``bzip2``/``bz2``,
    ``ascii``/``text``/``txt`` and ``hex``; ``endian`` is required where the byte order matters.
    ``line skip`` skips lines of each data file, then ``byte skip`` skips bytes of the raw file
    or, for compressed encodings, of the decompressed stream (as teem does).  ``byte skip: -1``
    means the data are the last bytes of the raw file, or of the decompressed stream (teem reads a
    ``.nii.gz`` that way; at most the data size or 16 MiB, whichever is larger, may precede them
    there); other negative values are CorruptFileError.

    ``data file`` is one file name, ``LIST [subdim]`` (the names follow the header, one per line),
    ``SKIPLIST [subdim]`` (``<byte skip> <name>`` per line) or a printf pattern
    ``<format> <min> <max> <step> [<subdim>]``; several files each hold an equal, consecutive part
    of the data (one slice of the slowest axis by default).  Names are relative to the header's
    directory; an absolute name, or one that leaves that directory, needs
    ``allow_external_data=True``.

    Axes.  With a space, an axis with a ``space directions`` vector is spatial, or time when the
    space has a time component (``-time`` spaces, and ``space dimension: 4`` as ITK writes 4D
    images) and the vector points along it only.  An axis without a vector (``none``) is time for
    kind ``time``, a complex pixel for kind ``complex`` (size 2, float or double data), and the
    component axis for any other kind; without a kind it is the component axis, except that the
    slowest axis after three spatial ones is time (ITK's fourth domain axis).  Without a space,
    kinds ``domain``, ``space`` and no kind are spatial (a fourth is time), and the others as
    above.  The component axis may be anywhere in the file; it becomes the trailing axis (and time
    the leading one) by copying through a temporary buffer, the only case that is not read
    straight into the image.  Size-1 non-spatial axes vanish.  More than one component axis,
    more than 3 spatial axes or more than one time axis is UnsupportedFormatError, and so is an
    undirected ``domain`` axis of size > 1 among directed ones (its place is ambiguous).

    Geometry is converted to LPS: ``RAS`` (and ``RAST``) flips x and y, ``LAS`` (``LAST``) flips y,
    ``LPS``, ``scanner-xyz`` and ``3D-right-handed`` are taken as they are, and ``3D-left-handed``
    flips z: a left-handed frame needs one flipped axis to become right-handed, and flipping z
    keeps the x/y plane as displayed.  Spacing is the norm of each axis vector and the direction its
    unit vector, kept exactly (never orthonormalised).  Without space directions, ``spacings``
    (else ``(axis max - axis min) / (size - 1)``) give the spacing (a negative spacing flips the
    axis) and ``axis mins`` the origin; sample 0 sits at ``axis min`` (``centers`` are not used).
    ``space units`` convert to mm (and a time unit to ms); when one is unknown, all are kept as
    the ``nrrd.space units`` property and the values are used as they are.  A 2D image gets
    ``(0, 0, 1)`` as its third direction column when it lies in the xy plane, else the unit
    normal.  A time spacing that is 0 or not finite reads as 1.

Properties (SPEC section 6.4)
    ``key:=value`` pairs (with NRRD's ``\\n`` and ``\\\\`` escapes) become plain properties.
    ``content``, ``min``, ``max``, ``old min``, ``old max``, ``sample units``, ``thicknesses``,
    ``centers``, ``labels``, ``units``, ``kinds`` (when there is a component axis), unknown
    ``space units``, ``measurement frame`` and unknown fields become ``nrrd.<field>`` strings.
    Per-axis fields are stored in the order the writer writes axes (component, x, y, z, time), so
    they are written back to the right axes; the measurement frame is converted to LPS like the
    geometry (each vector flipped as the space requires).

Writing
    ``NRRD0005`` with ``space: left-posterior-superior`` (``space dimension: 2`` for a 2D image in
    the xy plane; ``space dimension: 4`` for 4D, as ITK writes it, so ITK and SimpleITK read it
    back as 4D), ``space directions`` = columns of ``direction @ diag(spacing)`` (the time axis
    ``(0,0,0,dt)``, the time origin as the fourth origin component), the component axis first
    with direction ``none`` and kind ``RGB-color``/``RGBA-color`` (uint8 with 3/4 channels), else
    ``vector``, unless the ``nrrd.kinds`` property names a component kind of that size; complex
    pixels as a first axis of kind ``complex`` over ``float``/``double``.  Data are native order
    (``endian`` declares it), raw, gzip or bzip2 (``compression``, ``compression_level`` 1-9,
    default 1).  ``nrrd.*`` properties of the fields above are written back (per-axis ones only
    when they have one entry per written axis; unknown fields as ``nrrd.<field>:=value``), then
    plain properties as ``key:=value``.  bool is written as ``uint8`` 0/1; float16 is
    UnsupportedFormatError, as are complex pixels with several channels (two non-spatial axes).

    Each file is replaced atomically (:mod:`mitk.io._replace`).  A ``.nhdr`` writes its data to
    ``<stem>.raw`` (``.raw.gz``, ``.raw.bz2``) beside it, named relatively in ``data file``; when
    a file of that name exists (the old pair's data, or another header's), the data go to the
    first free ``<stem>.1.raw``, ``<stem>.2.raw``, ...  Data first, header last, then the data file
    the old header named (if it is one of these names) is deleted.  So the old pair is never
    touched before the new header replaces it: a kill at any point leaves the old pair or the new
    one readable (at worst with an unused data file beside it), and no other header's data file
    is ever overwritten.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .. import _options, _replace
from .._data_files import fill
from .._info import Allocator, ImageInfo
from ._data import plan
from ._header import _read_header
from ._layout import _parse
from ._writer import WRITE_OPTIONS, write

__all__ = ["NAME", "EXTENSIONS", "READ_OPTIONS", "WRITE_OPTIONS", "read", "write"]

NAME = "NRRD"
EXTENSIONS = (".nrrd", ".nhdr")
READ_OPTIONS = frozenset({"allow_external_data"})


def read(path: str, allocate: Allocator, *, allow_external_data: bool = False,
         **unknown: Any) -> ImageInfo:
    """Read a ``.nrrd`` or ``.nhdr`` file; the reader contract is :mod:`mitk.io._info`'s.

    ``allow_external_data`` (bool) reads data files named by an absolute path or one leaving
    the header's directory.  Returns the LPS geometry, the native dtype and the ``nrrd.*`` and
    plain properties.  Raises CorruptFileError for bad magic, a malformed, duplicated or
    inconsistent field, non-finite or singular geometry, short data or an escaping data path;
    UnsupportedFormatError for a type, encoding, space or axis layout mitk cannot hold
    (``block`` data, 5 or more dimensions, several non-spatial axes); FileNotFoundError for a
    missing data file (naming it and the header).  A ``.nhdr`` is read under the shared pair
    lock (:func:`mitk.io._replace.pair_lock`).

    Only a file whose component axis is not its fastest axis (or whose time axis is not its
    slowest) is read into a temporary buffer and copied; everything else goes straight into
    ``allocate``'s buffer, then is byte-swapped in place if the file's byte order is not native.
    """
    _options.reject_unknown(NAME, "read", unknown, READ_OPTIONS)
    allow_external = _options.flag("allow_external_data", allow_external_data)
    # A detached pair is read under the pair lock (a save by mitk replaces it whole meanwhile,
    # never half); the header and attached data are read through one open file.
    detached = path.lower().endswith(".nhdr")
    with _replace.open_for_load(path, detached) as f:
        return _read_open(path, f, allocate, allow_external)


def _read_open(path: str, f, allocate: Allocator, allow_external: bool) -> ImageInfo:
    h = _read_header(f, path)
    L = _parse(h)
    pieces = plan(h, L, allow_external, f)

    # File axes from the slowest to the fastest of the image's (t, z, y, x, c) order; size-1
    # axes that mitk drops go first, where they change nothing.
    order = [a for a in range(L.dim) if L.roles[a] == "drop"]
    order += [a for a in (L.time_axis,) if a is not None] + list(reversed(L.spatial))
    order += [a for a in (L.comp_axis, L.complex_axis) if a is not None]
    moving = [a for a in order if L.sizes[a] > 1]
    natural = moving == sorted(moving, reverse=True)
    full = L.shape + ((L.channels,) if L.channels > 1 else ())
    out = allocate(L.dtype, full)
    if not (out.flags.c_contiguous and out.flags.writeable) or out.shape != full:
        raise ValueError(f"allocate returned an unusable buffer (shape {out.shape}, flags "
                         f"{out.flags}); expected a writable C-contiguous array of shape {full}")
    component = L.file_dtype.newbyteorder("=")
    target = out if natural else np.empty(tuple(reversed(L.sizes)), dtype=component)
    flat = target.reshape(-1).view(np.uint8)
    fill(pieces, memoryview(flat), flat.view(component), opened={path: f})
    if not L.file_dtype.isnative and L.encoding != "ascii":
        flat.view(component).byteswap(inplace=True)
    if not natural:
        perm = [L.dim - 1 - a for a in order]
        dst = out.reshape(-1).view(component).reshape([L.sizes[a] for a in order])
        dst[...] = target.transpose(perm)
    return ImageInfo(dtype=L.dtype, shape=L.shape, channels=L.channels, spacing=L.spacing,
                     origin=L.origin, direction=L.direction, time_origin=L.time_origin,
                     time_spacing=L.time_spacing, properties=L.properties)
