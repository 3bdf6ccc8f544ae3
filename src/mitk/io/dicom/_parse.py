"""A small DICOM element reader for the tags that grouping, geometry and pixel access need.

pydicom parses every element of a file into objects (about 1.2 ms per file); a scan of thousands
of files needs only some 40 top-level tags and the place of the pixel data.  This reader walks the
top-level elements of the dataset, keeps the raw bytes of the wanted tags (decoded on demand by
:class:`Header`), steps over everything else (sequences of defined or undefined length included)
and stops at the pixel data, recording its offset and length.  pydicom is used for what this
module does not do: enhanced multi-frame functional groups, DICOMDIR records and encapsulated
(compressed) pixel data.

Supported encodings: a Part 10 file (128-byte preamble, ``DICM``, explicit VR little endian file
meta group) in implicit VR little endian, explicit VR little or big endian, or deflated explicit
VR little endian (inflated whole, at most 1032 times its size; offsets then refer to the
inflated dataset); and a bare dataset without preamble that starts with a group 0008 element in
implicit or explicit VR little endian.
"""

from __future__ import annotations

import math
import os
import struct
import zlib

from ...errors import CorruptFileError

__all__ = ["Header", "NotDicom", "parse_file", "tag_name"]

# Transfer syntaxes whose dataset this reader walks.
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"

PIXEL_DATA = 0x7FE00010
FLOAT_PIXEL_DATA = 0x7FE00008
DOUBLE_PIXEL_DATA = 0x7FE00009
_PIXEL_TAGS = (PIXEL_DATA, FLOAT_PIXEL_DATA, DOUBLE_PIXEL_DATA)
SHARED_GROUPS = 0x52009229
PER_FRAME_GROUPS = 0x52009230

# Explicit VRs with a 2-byte reserved field and a 4-byte length.
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN",
                       b"UR", b"UT", b"UV"})

#: Tag -> (keyword, kind).  Kinds: str, strs (backslash-separated), ds (decimal strings), is
#: (integer strings), us (unsigned 16-bit), fd (float64 values), raw (bytes).
WANTED: dict[int, tuple[str, str]] = {
    0x00080008: ("ImageType", "strs"),
    0x00080016: ("SOPClassUID", "str"),
    0x00080018: ("SOPInstanceUID", "str"),
    0x00080020: ("StudyDate", "str"),
    0x00080021: ("SeriesDate", "str"),
    0x00080022: ("AcquisitionDate", "str"),
    0x0008002A: ("AcquisitionDateTime", "str"),
    0x00080030: ("StudyTime", "str"),
    0x00080031: ("SeriesTime", "str"),
    0x00080032: ("AcquisitionTime", "str"),
    0x00080033: ("ContentTime", "str"),
    0x00080060: ("Modality", "str"),
    0x00080070: ("Manufacturer", "str"),
    0x00081030: ("StudyDescription", "str"),
    0x0008103E: ("SeriesDescription", "str"),
    0x00081090: ("ManufacturerModelName", "str"),
    0x00180015: ("BodyPartExamined", "str"),
    0x00180020: ("ScanningSequence", "str"),
    0x00180050: ("SliceThickness", "ds"),
    0x00180080: ("RepetitionTime", "ds"),
    0x00180081: ("EchoTime", "ds"),
    0x00180086: ("EchoNumbers", "is"),
    0x00180087: ("MagneticFieldStrength", "ds"),
    0x00180088: ("SpacingBetweenSlices", "ds"),
    0x00181060: ("TriggerTime", "ds"),
    0x00181120: ("GantryDetectorTilt", "ds"),
    0x00181314: ("FlipAngle", "ds"),
    0x00185100: ("PatientPosition", "str"),
    0x00189087: ("DiffusionBValue", "fd"),
    0x00189089: ("DiffusionGradientOrientation", "fd"),
    0x0019100C: ("SiemensBValue", "is"),
    0x00191027: ("SiemensBMatrix", "fd"),
    0x0020000D: ("StudyInstanceUID", "str"),
    0x0020000E: ("SeriesInstanceUID", "str"),
    0x00200011: ("SeriesNumber", "is"),
    0x00200012: ("AcquisitionNumber", "is"),
    0x00200013: ("InstanceNumber", "is"),
    0x00200032: ("ImagePositionPatient", "ds"),
    0x00200037: ("ImageOrientationPatient", "ds"),
    0x00200100: ("TemporalPositionIdentifier", "is"),
    0x00200105: ("NumberOfTemporalPositions", "is"),
    0x00280002: ("SamplesPerPixel", "us"),
    0x00280004: ("PhotometricInterpretation", "str"),
    0x00280006: ("PlanarConfiguration", "us"),
    0x00280008: ("NumberOfFrames", "is"),
    0x00280010: ("Rows", "us"),
    0x00280011: ("Columns", "us"),
    0x00280030: ("PixelSpacing", "ds"),
    0x00280100: ("BitsAllocated", "us"),
    0x00280101: ("BitsStored", "us"),
    0x00280103: ("PixelRepresentation", "us"),
    0x00281052: ("RescaleIntercept", "ds"),
    0x00281053: ("RescaleSlope", "ds"),
    0x00281054: ("RescaleType", "str"),
    0x00291010: ("CSAImageHeader", "raw"),
    0x00431039: ("GESlopInt6to9", "is"),
    0x20011003: ("PhilipsBValue", "fl"),
}
_KIND = {tag: kind for tag, (_, kind) in WANTED.items()}
_KEYWORD = {keyword: tag for tag, (keyword, _) in WANTED.items()}
# Private blocks that are read only when their creator is the expected vendor's.
_CREATORS = {0x0019: "SIEMENS MR HEADER", 0x0029: "SIEMENS CSA HEADER", 0x0043: "GEMS_PARM_01",
             0x2001: "Philips Imaging DD 001"}
_CREATOR_TAGS = {(g << 16) | 0x0010: g for g in _CREATORS}


def tag_name(tag: int) -> str:
    """``Keyword (gggg,eeee)`` for error messages."""
    keyword = WANTED.get(tag, (None,))[0] or {PIXEL_DATA: "PixelData",
                                              FLOAT_PIXEL_DATA: "FloatPixelData",
                                              DOUBLE_PIXEL_DATA: "DoubleFloatPixelData",
                                              0x00020010: "TransferSyntaxUID"}.get(tag, "")
    return f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})".strip()


# Decoded values by (tag, raw bytes, little endian): most tags repeat across a series' files
# (sizes, orientation, UIDs), so a scan decodes each distinct value once.  Only successful
# decodes are kept; a dict is safe to share between the scan threads.
_MEMO: dict = {}
_MEMO_SIZE = 8192
_MISSING = object()


class NotDicom(Exception):
    """The file is not DICOM (no ``DICM`` marker and no plausible bare dataset)."""


class _NeedMore(Exception):
    """The parse ran past the bytes read so far."""


class Header:
    """The wanted top-level elements of one file, decoded on demand.

    Attributes
    ----------
    path : str
    transfer_syntax : str
    little, explicit : bool
        The dataset's byte order and VR encoding (meaningless for a deflated dataset).
    pixel_tag, pixel_offset, pixel_length : int or None
        The pixel data element, the file offset of its value and its length (-1 for undefined
        length, i.e. encapsulated data).
    enhanced : bool
        The dataset has functional group sequences (an enhanced multi-frame object).
    file_size : int
    """

    __slots__ = ("path", "transfer_syntax", "little", "explicit", "raw", "pixel_tag",
                 "pixel_offset", "pixel_length", "enhanced", "file_size", "_cache", "creators",
                 "dataset_offset", "pixel_vr")

    def __init__(self, path: str) -> None:
        self.path = path
        self.raw: dict[int, bytes] = {}
        self.creators: dict[int, str] = {}
        self._cache: dict[str, object] = {}
        self.pixel_tag = self.pixel_offset = self.pixel_length = None
        self.enhanced = False
        self.transfer_syntax = IMPLICIT_LE
        self.little = True
        self.explicit = False
        self.file_size = 0
        self.dataset_offset = 0
        self.pixel_vr = b""

    def get(self, keyword: str, default=None):
        """The decoded value of ``keyword`` (a :data:`WANTED` keyword), or ``default``.

        Strings are stripped; ``ds``/``fd`` tags give a tuple of floats, ``is``/``us`` tags an
        int (the first value); an empty or unreadable value is ``default``.  Raises
        CorruptFileError for a number that does not parse (naming file and tag).
        """
        tag = _KEYWORD[keyword]
        value = self.raw.get(tag)
        if value is None:
            return default
        cache = self._cache
        if keyword in cache:
            result = cache[keyword]
            return default if result is None else result
        group = tag >> 16
        if group in _CREATORS and self.creators.get(group) != _CREATORS[group]:
            result = None
        else:
            memo_key = (tag, value, self.little)
            result = _MEMO.get(memo_key, _MISSING)
            if result is _MISSING:
                result = self._decode(tag, value)
                if result == () or result == "":
                    result = None
                if len(_MEMO) >= _MEMO_SIZE:
                    _MEMO.clear()
                _MEMO[memo_key] = result
        cache[keyword] = result
        return default if result is None else result

    def has(self, keyword: str) -> bool:
        """True when the file holds the element ``keyword`` (even with an empty value)."""
        return _KEYWORD[keyword] in self.raw

    @staticmethod
    def tag_of(keyword: str) -> str:
        """``gggg,eeee`` of a :data:`WANTED` keyword."""
        tag = _KEYWORD[keyword]
        return f"{tag >> 16:04X},{tag & 0xFFFF:04X}"

    def _decode(self, tag: int, value: bytes):
        kind = _KIND[tag]
        if kind == "raw":
            return value
        if kind == "us":
            if len(value) < 2:
                return None
            return struct.unpack("<H" if self.little else ">H", value[:2])[0]
        if kind in ("fd", "fl"):
            code, size = ("d", 8) if kind == "fd" else ("f", 4)
            count = len(value) // size
            if count == 0:
                return None
            # Some writers store these private/binary tags as decimal strings instead.
            if self._looks_textual(value):
                return self._numbers(tag, value, float)
            values = struct.unpack(("<" if self.little else ">") + code * count,
                                   value[: count * size])
            return tuple(values)
        text = value.decode("latin-1").strip(" \x00")
        if kind == "str":
            return text
        if kind == "strs":
            return tuple(part.strip() for part in text.split("\\"))
        if kind == "ds":
            return self._numbers(tag, value, float)
        numbers = self._numbers(tag, value, float)
        if not numbers:
            return None
        first = numbers[0]
        if not math.isfinite(first) or first != int(first):
            raise CorruptFileError(f"{self.path}: {tag_name(tag)} is {text!r}, not an integer")
        return int(first)

    @staticmethod
    def _looks_textual(value: bytes) -> bool:
        return all(c in b"0123456789+-.eE\\ \x00" for c in value)

    def _numbers(self, tag: int, value: bytes, kind) -> tuple:
        text = value.decode("latin-1").strip(" \x00")
        if not text:
            return ()
        try:
            return tuple(kind(part) for part in text.split("\\"))
        except ValueError:
            raise CorruptFileError(f"{self.path}: {tag_name(tag)} is {text[:60]!r}, not a "
                                   "list of numbers") from None


def _element(buf: bytes, pos: int, explicit: bool, little: bool):
    """(tag, vr, length, value offset) of the element at ``pos``; _NeedMore past the end."""
    if pos + 8 > len(buf):
        raise _NeedMore
    if little:
        group, elem = struct.unpack_from("<HH", buf, pos)
    else:
        group, elem = struct.unpack_from(">HH", buf, pos)
    tag = (group << 16) | elem
    if group == 0xFFFE:
        # Item and delimiters never carry a VR.
        length = struct.unpack_from("<I" if little else ">I", buf, pos + 4)[0]
        return tag, b"", length, pos + 8
    if not explicit:
        return tag, b"", struct.unpack_from("<I", buf, pos + 4)[0], pos + 8
    vr = buf[pos + 4:pos + 6]
    if vr in _LONG_VRS:
        if pos + 12 > len(buf):
            raise _NeedMore
        return tag, vr, struct.unpack_from("<I" if little else ">I", buf, pos + 8)[0], pos + 12
    return tag, vr, struct.unpack_from("<H" if little else ">H", buf, pos + 6)[0], pos + 8


def _skip_undefined(buf: bytes, pos: int, explicit: bool, little: bool, depth: int = 0) -> int:
    """Offset just past the sequence delimiter of an undefined-length value starting at ``pos``."""
    if depth > 64:
        raise ValueError("sequences nested more than 64 deep")
    while True:
        tag, vr, length, value = _element(buf, pos, explicit, little)
        if tag == 0xFFFEE0DD or tag == 0xFFFEE00D:
            return value
        if tag == 0xFFFEE000:
            if length == 0xFFFFFFFF:
                pos = _skip_undefined(buf, value, explicit, little, depth + 1)
            else:
                pos = value + length
            continue
        if length == 0xFFFFFFFF:
            # An undefined-length UN element holds implicit VR little endian data.
            inner_explicit = explicit and vr != b"UN"
            pos = _skip_undefined(buf, value, inner_explicit, little if inner_explicit else True,
                                  depth + 1)
        else:
            pos = value + length
        if pos > len(buf):
            raise _NeedMore


def _meta(buf: bytes, header: Header) -> int:
    """Parse the file meta group (explicit VR LE); returns the dataset's offset."""
    pos = 132
    while True:
        if pos + 8 > len(buf):
            raise _NeedMore
        group = struct.unpack_from("<H", buf, pos)[0]
        if group != 0x0002:
            return pos
        tag, _vr, length, value = _element(buf, pos, True, True)
        if length == 0xFFFFFFFF:
            raise CorruptFileError(f"{header.path}: undefined length in the file meta group "
                                   f"at offset {pos}")
        if value + length > len(buf):
            raise _NeedMore
        if tag == 0x00020010:
            header.transfer_syntax = buf[value:value + length].decode("latin-1").strip(" \x00")
        pos = value + length


_LE_TAG_VR_LEN = struct.Struct("<I2sH").unpack_from
_LE_TAG_LEN = struct.Struct("<II").unpack_from
_LE_U32 = struct.Struct("<I").unpack_from


def _swap(tag: int) -> int:
    """``tag`` as the little-endian uint32 of its first four bytes (element << 16 | group)."""
    return ((tag & 0xFFFF) << 16) | (tag >> 16)


_SWAPPED_WANTED = {_swap(t): t for t in _KIND}
_SWAPPED_CREATORS = {_swap(t): g for t, g in _CREATOR_TAGS.items()}
_SWAPPED_PIXEL = {_swap(t): t for t in _PIXEL_TAGS}
_SWAPPED_GROUPS = frozenset({_swap(SHARED_GROUPS), _swap(PER_FRAME_GROUPS)})
_SWAPPED_ITEM_GROUP = 0xFFFE


def _dataset_le(buf: bytes, pos: int, header: Header) -> None:
    """The little-endian walk of :func:`_dataset`, kept tight: a scan spends its time here."""
    explicit = header.explicit
    raw = header.raw
    n = len(buf)
    wanted, creators, pixel = _SWAPPED_WANTED, _SWAPPED_CREATORS, _SWAPPED_PIXEL
    long_vrs = _LONG_VRS
    while pos + 8 <= n:
        if explicit:
            key, vr, length = _LE_TAG_VR_LEN(buf, pos)
            if vr in long_vrs:
                if pos + 12 > n:
                    raise _NeedMore
                length = _LE_U32(buf, pos + 8)[0]
                value = pos + 12
            else:
                value = pos + 8
        else:
            key, length = _LE_TAG_LEN(buf, pos)
            vr = b""
            value = pos + 8
        if key in pixel:
            header.pixel_tag = pixel[key]
            header.pixel_vr = vr
            header.pixel_offset = value
            header.pixel_length = -1 if length == 0xFFFFFFFF else length
            return
        if key & 0xFFFF == _SWAPPED_ITEM_GROUP or key & 0xFFFF == 0:
            # Item tags and group 0000 (the network command group) never belong here; a run of
            # zero bytes would otherwise parse as endless empty (0000,0000) elements.
            raise CorruptFileError(f"{header.path}: misplaced tag "
                                   f"({key & 0xFFFF:04X},{key >> 16:04X}) at offset {pos}")
        if key in _SWAPPED_GROUPS:
            header.enhanced = True
        if length == 0xFFFFFFFF:
            inner_explicit = explicit and vr != b"UN"
            pos = _skip_undefined(buf, value, inner_explicit, True)
            continue
        end = value + length
        if key in wanted:
            if end > n:
                raise _NeedMore
            raw[wanted[key]] = buf[value:end]
        elif key in creators:
            if end > n:
                raise _NeedMore
            header.creators[creators[key]] = buf[value:end].decode("latin-1").strip(" \x00")
        pos = end
    if pos != n:
        raise _NeedMore


def _dataset(buf: bytes, pos: int, header: Header) -> None:
    """Walk the top-level elements from ``pos`` up to the pixel data (see the module docstring)."""
    if header.little:
        return _dataset_le(buf, pos, header)
    raw = header.raw
    n = len(buf)
    while pos < n:
        tag, vr, length, value = _element(buf, pos, True, False)
        if tag in _PIXEL_TAGS:
            header.pixel_tag = tag
            header.pixel_vr = vr
            header.pixel_offset = value
            header.pixel_length = -1 if length == 0xFFFFFFFF else length
            return
        if tag >> 16 == 0xFFFE:
            raise CorruptFileError(f"{header.path}: misplaced item tag "
                                   f"({tag >> 16:04X},{tag & 0xFFFF:04X}) at offset {pos}")
        if tag == SHARED_GROUPS or tag == PER_FRAME_GROUPS:
            header.enhanced = True
        if length == 0xFFFFFFFF:
            inner_explicit = vr != b"UN"
            pos = _skip_undefined(buf, value, inner_explicit, not inner_explicit)
            continue
        end = value + length
        if tag in _KIND:
            if end > n:
                raise _NeedMore
            raw[tag] = buf[value:end]
        elif tag in _CREATOR_TAGS:
            if end > n:
                raise _NeedMore
            header.creators[_CREATOR_TAGS[tag]] = buf[value:end].decode("latin-1").strip(" \x00")
        pos = end
    if pos != n:
        raise _NeedMore


def _looks_bare(buf: bytes) -> tuple[bool, bool] | None:
    """(explicit, little) for a preamble-less dataset starting with a group 0008 element."""
    if len(buf) < 8 or buf[0:2] != b"\x08\x00":
        return None
    vr = buf[4:6]
    if vr.isalpha() and vr.isupper():
        return True, True
    return False, True


def inflate_dataset(buf: bytes, path: str, offset: int | None = None,
                    limit: int | None = None) -> bytes:
    """The inflated dataset of a deflated-transfer-syntax file whose bytes are ``buf``.

    At most ``limit`` bytes are inflated (a declared size, so a bomb cannot grow past it).
    """
    if offset is None:
        offset = _meta(buf, Header(path))
    inflater = zlib.decompressobj(-15)
    try:
        return inflater.decompress(buf[offset:], limit or 0)
    except zlib.error as exc:
        raise CorruptFileError(f"{path}: corrupt deflated dataset ({exc})") from None


def _parse_deflated(buf: bytes, offset: int, header: Header) -> None:
    """Inflate a megabyte at a time until the walk reaches the pixel data (or the stream ends)."""
    inflater = zlib.decompressobj(-15)
    source = buf[offset:]
    data = b""
    while True:
        try:
            data += inflater.decompress(source, 1 << 20)
        except zlib.error as exc:
            raise CorruptFileError(f"{header.path}: corrupt deflated dataset ({exc})") from None
        source = inflater.unconsumed_tail
        header.raw.clear()
        header.creators.clear()
        try:
            _dataset(data, 0, header)
            return
        except _NeedMore:
            if not source:
                raise CorruptFileError(f"{header.path}: truncated deflated dataset") from None


def parse_bytes(buf: bytes, path: str, eof: bool, file_size: int) -> Header:
    """Parse ``buf`` (the start of the file, or all of it when ``eof``); see :func:`parse_file`."""
    header = Header(path)
    header.file_size = file_size
    if len(buf) >= 132 and buf[128:132] == b"DICM":
        pos = _meta(buf, header)
        ts = header.transfer_syntax
        header.little = ts != EXPLICIT_BE
        header.explicit = ts != IMPLICIT_LE
        header.dataset_offset = pos
        if ts == DEFLATED:
            # The dataset is one raw deflate stream; offsets below are into the inflated bytes.
            if not eof:
                raise _NeedMore
            _parse_deflated(buf, pos, header)
            return header
    else:
        bare = _looks_bare(buf)
        if bare is None:
            raise NotDicom(path)
        header.explicit, header.little = bare
        header.transfer_syntax = EXPLICIT_LE if bare[0] else IMPLICIT_LE
        pos = 0
    _dataset(buf, pos, header)
    return header


def parse_file(path: str, chunk: int = 16384) -> Header:
    """The :class:`Header` of the file at ``path``.

    Reads the first ``chunk`` bytes and more only when the header is longer.  Raises
    :class:`NotDicom` for a file that is not DICOM, CorruptFileError for a truncated or malformed
    header (naming the file and offset), and OSError as the operating system raises it.
    """
    with open(path, "rb", buffering=0) as f:
        buf = f.read(chunk)
        if len(buf) < chunk:
            eof = True
            size = len(buf)
        else:
            size = os.fstat(f.fileno()).st_size
            eof = size <= len(buf)
        part10 = buf[128:132] == b"DICM"
        if not part10 and _looks_bare(buf) is None:
            raise NotDicom(path)
        while True:
            try:
                return parse_bytes(buf, path, eof, size)
            except _NeedMore:
                if eof:
                    if not part10:
                        raise NotDicom(path) from None
                    raise CorruptFileError(f"{path}: truncated DICOM header (an element runs "
                                           f"past the end of the file at {len(buf)} bytes)"
                                           ) from None
                more = f.read(max(chunk, len(buf)))
                buf += more
                eof = len(buf) >= size or not more
            except (struct.error, ValueError, UnicodeDecodeError) as exc:
                if not part10:
                    # A bare dataset is only guessed from its first bytes: garbage is not DICOM.
                    raise NotDicom(path) from None
                if isinstance(exc, CorruptFileError):
                    raise
                raise CorruptFileError(f"{path}: malformed DICOM header ({exc})") from None
