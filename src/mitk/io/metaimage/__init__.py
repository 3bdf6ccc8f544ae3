"""MetaImage (MetaIO): ``.mha`` (header and data in one file) and ``.mhd`` (detached data).

A MetaImage header is text, one ``Field = value`` line per field (MetaIO also accepts ``:`` as the
separator), and ends at the ``ElementDataFile`` line.  Field names are case-sensitive, as in MetaIO.
A field given twice is CorruptFileError, and so is a ``.mha`` whose ``ElementDataFile`` line has no
line end (its data would follow one): that is a truncated file.

Reading
    ``ObjectType = Image`` (the default when absent), ``NDims`` 1-4 (a 1-D file loads as a 2D
    image of shape ``(1, N)``; a 4th dimension is time: its ``ElementSpacing`` is the step duration
    and its ``Offset`` the start; 5 or more is UnsupportedFormatError), ``DimSize``,
    ``ElementType`` (every ``MET_`` type below and its ``_ARRAY`` variant),
    ``ElementNumberOfChannels`` (the trailing component axis), ``BinaryData`` (``False``: ASCII
    numbers, read as MetaIO does: each as a double, so ``1e+06`` is an integer, but an integer
    literal keeps all 64 bits; an integer out of the type's range is CorruptFileError, a float
    beyond ``MET_FLOAT``'s range is inf), ``BinaryDataByteOrderMSB`` /
    ``ElementByteOrderMSB``, ``CompressedData`` (a zlib stream, or gzip: MetaIO accepts both),
    bounded by ``CompressedDataSize`` when given and non-zero, otherwise by the end of the file.
    ``HeaderSize`` works as in MetaIO: a positive value is the byte offset of the data from the
    start of each data file (for ``LOCAL`` data, from the start of the ``.mha`` file itself), and
    -1 means the data are the last bytes of each data file (binary, uncompressed data only); one
    beyond the end of a data file is CorruptFileError.

    ``ElementDataFile`` is ``LOCAL`` (any case), one file name (relative to the header's directory;
    if it is missing and ``<name>.gz`` exists, that is read as compressed data, as MetaIO does),
    ``LIST [nD]`` followed by one file name per line (each file holds an n-dimensional block;
    n defaults to ``NDims - 1``), or a printf pattern ``name%03d.raw [min [max [step]]]`` naming one
    file per slice of the last axis (min defaults to 1, step to 1; a file name containing spaces
    is followed by all three numbers, as MetaIO requires; a width or precision above 255, the
    longest file name, is CorruptFileError).  A data path that is absolute or leaves
    the header's directory needs ``allow_external_data=True``.

    Geometry (MetaIO's is already LPS, as ITK writes it): ``ElementSpacing`` (else ``ElementSize``)
    gives the spacing; ``TransformMatrix`` (synonyms ``Rotation`` and ``Orientation``) lists the
    axis vectors in turn, i.e. the direction in column-major order, kept exactly as given (never
    orthonormalised); ``Offset`` (synonyms ``Position``, ``Origin``, ``ImagePosition``) is the
    origin.  When several synonyms are present the one MetaIO applies last wins (``TransformMatrix``
    over ``Rotation`` over ``Orientation``; ``ImagePosition`` over ``Origin`` over ``Offset`` over
    ``Position``).  A negative spacing is folded into the direction (the world positions of the
    voxels do not change), as ITK does.  A 4D ``TransformMatrix`` must not mix time with space.

    Element types: ``MET_CHAR``/``MET_ASCII_CHAR`` int8, ``MET_UCHAR`` uint8, ``MET_SHORT`` int16,
    ``MET_USHORT`` uint16, ``MET_INT`` int32, ``MET_UINT`` uint32, ``MET_LONG`` int32 and
    ``MET_ULONG`` uint32 (MetaIO defines them as 32-bit on every platform; ITK writes a 64-bit
    ``long`` as ``MET_LONG_LONG``), ``MET_LONG_LONG`` int64, ``MET_ULONG_LONG`` uint64,
    ``MET_FLOAT`` float32, ``MET_DOUBLE`` float64.

Properties (SPEC section 6.4)
    Header fields the image model holds (dimensions, type, encoding, data location, spacing,
    origin, direction and their synonyms) are not properties.  The other fields MetaIO itself
    defines (``Comment``, ``AnatomicalOrientation``, ``CenterOfRotation``, ``ElementMin``,
    ``ElementMax``, ``Modality``, ``ElementSize`` when ``ElementSpacing`` is also given, ...; see
    :data:`METAIO_FIELDS`) load as ``meta.<Field>`` strings and are written back only to MetaImage.
    Every other header line is a user field and loads as a plain property (a string), which is
    how ITK writes its metadata dictionary.  On save, plain properties become ``Key = value`` lines
    (lists are written space-separated); a plain key that is a MetaIO field name is written as that
    field and so loads back as ``meta.<Field>``.  These raise UnsupportedFormatError before anything
    is written: a key that is empty, contains ``=``, ``:`` or a line break, or starts or ends with a
    blank; a key naming a field mitk writes from the image; a value with a line break, or whose
    first character after any blanks is ``=`` or ``:`` (MetaIO skips those after the field name,
    so the value would read back without them); a numeric MetaIO field whose value MetaIO could
    not parse.  Leading and trailing blanks of values are not kept (MetaIO strips them).

Writing
    ``.mha`` puts the data after the header (``ElementDataFile = LOCAL``); ``.mhd`` writes
    ``<stem>.raw`` (``<stem>.zraw`` when compressed) beside the header.  ``ElementDataFile`` is
    always the last field.  ``compression=None``/``"raw"`` (default) writes raw data,
    ``compression="gzip"`` a zlib stream with ``CompressedData = True`` and ``CompressedDataSize``
    (``compression_level`` 1-9, default 1); ``"bzip2"`` is an ArgumentError (MetaIO has no bzip2).
    A zlib stream has no room for a block index (:mod:`mitk.io._parallel_deflate`), so a large one is
    described by a ``MitkDeflateBlocks = <block> <total> <compressed sizes...>`` line after
    ``CompressedDataSize``; MetaIO ignores a field it does not know, and our reader uses the line
    (to inflate the blocks on several threads) only when the stream confirms it.  It is never a
    property, and a property of that name is refused.  Data are written in native byte order,
    which the header declares.  bool is written as ``MET_UCHAR`` 0/1; float16 and complex cannot
    be stored (UnsupportedFormatError).  A 2D image whose geometry leaves the xy plane cannot be
    stored either: MetaIO's 2D geometry is 2D.

    Each file is replaced atomically (:mod:`mitk.io._replace`).  A ``.mhd`` writes its data to
    ``<stem>.raw`` (``.zraw`` compressed), or, when a file of that name exists (the old pair's
    data, or another header's), to the first free ``<stem>.1.raw``, ``<stem>.2.raw``, ...  Data
    first, header last, then the data file the old header named (if it is one of these names) is
    deleted: a kill at any point leaves the old pair or the new one readable, and no other
    header's data file is ever overwritten.
"""

from __future__ import annotations

import os
from typing import Any

from .. import _options, _replace
from .._data_files import fill
from .._info import Allocator, ImageInfo
from ._data import plan
from ._header import INDEX_FIELD, METAIO_FIELDS, _parse, _read_header
from ._properties import _properties
from ._writer import WRITE_OPTIONS, write

__all__ = ["NAME", "EXTENSIONS", "READ_OPTIONS", "WRITE_OPTIONS", "METAIO_FIELDS", "INDEX_FIELD",
           "read", "write"]

NAME = "MetaImage"
EXTENSIONS = (".mha", ".mhd")
READ_OPTIONS = frozenset({"allow_external_data"})


def read(path: str, allocate: Allocator, *, allow_external_data: bool = False,
         **unknown: Any) -> ImageInfo:
    """Read a ``.mha`` or ``.mhd`` file; the reader contract is :mod:`mitk.io._info`'s.

    ``allow_external_data`` (bool) reads data files named by an absolute path or one leaving
    the header's directory.  Returns the LPS geometry, the native dtype and the ``meta.*`` and
    plain properties.  Raises CorruptFileError for a malformed header (duplicated or invalid
    fields, singular or non-finite geometry), short data or an escaping data path;
    UnsupportedFormatError for more than 4 dimensions, an element type mitk cannot hold, a
    non-image object or a 4D direction that mixes time with space; FileNotFoundError for a
    missing data file.  A ``.mhd`` is read under the shared pair lock.
    """
    _options.reject_unknown(NAME, "read", unknown, READ_OPTIONS)
    allow_external = _options.flag("allow_external_data", allow_external_data)
    # A detached pair is read under the pair lock (a save by mitk replaces it whole meanwhile,
    # never half); the header and LOCAL data are read through one open file.
    detached = path.lower().endswith(".mhd")
    with _replace.open_for_load(path, detached) as f:
        file_size = os.fstat(f.fileno()).st_size
        h = _read_header(f, path)
        L = _parse(h)
        pieces = plan(h, L, f, file_size, allow_external)
        shape = tuple(reversed(L.dims)) if L.ndims > 1 else (1, L.dims[0])
        full_shape = shape + ((L.channels,) if L.channels > 1 else ())
        out = allocate(L.dtype.newbyteorder("="), full_shape)
        fill(pieces, memoryview(out).cast("B"), out.reshape(-1), opened={path: f})
    if L.binary and not L.dtype.isnative:
        out.byteswap(inplace=True)
    return ImageInfo(dtype=out.dtype, shape=shape, channels=L.channels, spacing=L.spacing,
                     origin=L.origin, direction=L.direction, time_origin=L.time_origin,
                     time_spacing=L.time_spacing, properties=_properties(h))
