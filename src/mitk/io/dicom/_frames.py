"""Frames: one record per 2D image plane, whatever object it comes from.

A classic file gives one frame (or one per frame of a multi-frame file without functional
groups), a Siemens mosaic one per tile, and an enhanced multi-frame object one per frame with its
per-frame functional groups.  Grouping and sorting (:mod:`._volumes`) then treat them alike.

Mosaic geometry (Siemens): the tiles are ``ceil(sqrt(n))`` to a row; ImagePositionPatient is the
corner of the whole mosaic, so the first tile sits half the unused width and height further along
the row and column vectors; tile ``k`` lies ``k`` slice spacings along the CSA header's
``SliceNormalVector`` (which points the way the slices were stored, so both slice orders come out
right once the frames are sorted along the normal).
"""

from __future__ import annotations

import datetime
import math
import struct

from ...errors import CorruptFileError, UnsupportedFormatError
from ._parse import Header

__all__ = ["Frame", "frames_of", "clock_ms", "datetime_ms"]


class Frame:
    """One image plane: where its pixels are and what places it in a volume.

    ``index`` is the frame number inside the file and ``tile`` the mosaic tile (or None);
    ``position``/``orientation`` are None when the file has no geometry; ``time`` holds the
    candidate time keys (tag keyword -> value) in order of preference.
    """

    __slots__ = ("header", "index", "tile", "tiles", "position", "orientation", "spacing",
                 "thickness", "between", "slope", "intercept", "rows", "columns", "split", "time",
                 "clock", "instance", "anchor")

    def __init__(self, header: Header, index: int = 0) -> None:
        self.header = header
        self.index = index
        self.tile: int | None = None
        self.tiles = 1
        self.position = None
        self.orientation = None
        self.spacing = None
        self.thickness = None
        self.between = None
        self.slope = 1.0
        self.intercept = 0.0
        self.rows = 0
        self.columns = 0
        self.split: tuple = ()
        self.time: dict = {}
        self.clock: float | None = None
        self.instance = 0
        self.anchor = None  # a multi-frame file's one ImagePositionPatient (frames not placed)

    @property
    def name(self) -> str:
        """The file, with the frame or tile number when there are several."""
        path = self.header.path
        if self.tile is not None:
            return f"{path} (tile {self.tile})"
        return f"{path} (frame {self.index + 1})" if self.index else path


def clock_ms(text: str | None) -> float | None:
    """``HHMMSS.frac`` (DICOM TM, colons tolerated) in ms since midnight, or None."""
    if not text:
        return None
    text = text.replace(":", "").strip()
    try:
        hours = int(text[0:2])
        minutes = int(text[2:4]) if len(text) >= 4 else 0
        seconds = float(text[4:]) if len(text) > 4 else 0.0
    except ValueError:
        return None
    return ((hours * 60 + minutes) * 60 + seconds) * 1000.0


def datetime_ms(text: str | None) -> float | None:
    """``YYYYMMDDHHMMSS.frac`` (DICOM DT, no offset used) in ms since 1970, or None."""
    if not text or len(text) < 8:
        return None
    text = text.split("+")[0].split("-")[0] if len(text) > 8 else text
    try:
        day = datetime.datetime(int(text[0:4]), int(text[4:6]), int(text[6:8]),
                                tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    clock = clock_ms(text[8:]) if len(text) > 8 else 0.0
    return day.timestamp() * 1000.0 + (clock or 0.0)


def _finite(header: Header, keyword: str, values, count: int):
    """``values`` as a tuple of ``count`` finite floats; CorruptFileError naming the tag."""
    if values is None:
        return None
    # A NaN or infinity anywhere makes the sum non-finite (one check instead of one per value).
    if len(values) < count or not math.isfinite(sum(values[:count])):
        raise CorruptFileError(f"{header.path}: {keyword} is {values!r}; expected {count} "
                               "finite numbers")
    return tuple(float(v) for v in values[:count])


def _b_value(h: Header):
    """The diffusion b-value from the standard tag or a vendor's private one, or None."""
    b = h.get("DiffusionBValue")
    if b:
        return round(float(b[0]), 1)
    siemens = h.get("SiemensBValue")
    if siemens is not None:
        return float(siemens)
    ge = h.get("GESlopInt6to9")
    if ge is not None:
        # GE adds 1e9 to the b-value on some software versions.
        return float(ge % 1000000000) if ge >= 1000000000 else float(ge)
    philips = h.get("PhilipsBValue")
    if philips:
        return round(float(philips[0]), 1)
    return None


def _common(frame: Frame, h: Header) -> None:
    frame.rows = h.get("Rows", 0)
    frame.columns = h.get("Columns", 0)
    frame.instance = h.get("InstanceNumber", 0)
    slope = h.get("RescaleSlope")
    intercept = h.get("RescaleIntercept")
    if slope is not None:
        frame.slope = _finite(h, "RescaleSlope", slope, 1)[0]
    if intercept is not None:
        frame.intercept = _finite(h, "RescaleIntercept", intercept, 1)[0]
    image_type = tuple(t.upper() for t in (h.get("ImageType") or ()))
    localizer = "LOCALIZER" in image_type
    bvec = h.get("DiffusionGradientOrientation")
    echo = h.get("EchoNumbers")
    if echo is None:
        te = h.get("EchoTime")
        echo = round(te[0], 3) if te else None
    frame.split = (echo, _b_value(h), tuple(round(v, 4) for v in bvec) if bvec else None,
                   localizer)
    clock = datetime_ms(h.get("AcquisitionDateTime"))
    if clock is None:
        clock = clock_ms(h.get("AcquisitionTime")) or clock_ms(h.get("ContentTime"))
    frame.clock = clock
    trigger = h.get("TriggerTime")
    frame.time = {
        "TemporalPositionIdentifier": h.get("TemporalPositionIdentifier"),
        "TriggerTime": trigger[0] if trigger else None,
        "AcquisitionNumber": h.get("AcquisitionNumber"),
        "AcquisitionTime": clock,
        "InstanceNumber": h.get("InstanceNumber"),
    }


def _present_but_empty(h: Header, keyword: str, value) -> None:
    if value is None and h.has(keyword):
        raise CorruptFileError(f"{h.path}: {keyword} ({h.tag_of(keyword)}) is empty; expected "
                               "numbers (or the attribute left out)")


def _geometry(frame: Frame, h: Header) -> None:
    ipp = h.get("ImagePositionPatient")
    iop = h.get("ImageOrientationPatient")
    for keyword, value in (("ImagePositionPatient", ipp), ("ImageOrientationPatient", iop),
                           ("PixelSpacing", h.get("PixelSpacing"))):
        _present_but_empty(h, keyword, value)
    spacing = h.get("PixelSpacing")
    if ipp is not None and iop is not None:
        frame.position = _finite(h, "ImagePositionPatient (0020,0032)", ipp, 3)
        frame.orientation = _finite(h, "ImageOrientationPatient (0020,0037)", iop, 6)
    if spacing is not None:
        sp = _finite(h, "PixelSpacing (0028,0030)", spacing, 2)
        if sp[0] <= 0 or sp[1] <= 0:
            if frame.position is not None:
                raise CorruptFileError(f"{h.path}: PixelSpacing (0028,0030) is {spacing!r}; "
                                       "expected two spacings > 0")
            # A projection radiograph without geometry: nothing is stacked, spacing 1 is used.
            sp = None
        frame.spacing = sp
    thick = h.get("SliceThickness")
    if thick and math.isfinite(thick[0]) and thick[0] > 0:
        frame.thickness = thick[0]
    between = h.get("SpacingBetweenSlices")
    if between and math.isfinite(between[0]) and between[0] > 0:
        frame.between = between[0]


def frames_of(h: Header) -> list[Frame]:
    """The frames of the file ``h`` describes (enhanced objects through pydicom)."""
    if h.enhanced:
        from ._enhanced import enhanced_frames

        return enhanced_frames(h)
    count = h.get("NumberOfFrames") or 1
    if count < 1:
        raise CorruptFileError(f"{h.path}: NumberOfFrames (0028,0008) is {count}")
    image_type = tuple(t.upper() for t in (h.get("ImageType") or ()))
    if "MOSAIC" in image_type and count == 1:
        return _mosaic_frames(h)
    frames = []
    for i in range(count):
        frame = Frame(h, i)
        _common(frame, h)
        _geometry(frame, h)
        if count > 1:
            # A classic multi-frame file shares one position: its frames are kept in stored
            # order as one image (there is nothing to sort them by), placed at that position.
            frame.anchor, frame.position = frame.position, None
        frames.append(frame)
    return frames


# -- Siemens mosaics ----------------------------------------------------------------------------


def csa_tags(data: bytes, path: str) -> dict[str, list[str]]:
    """Tag name -> item strings of a Siemens CSA header (``SV10`` or the older layout)."""
    try:
        if data[:4] == b"SV10":
            pos = 8
        else:
            pos = 0
        n_tags = struct.unpack_from("<I", data, pos)[0]
        pos += 8
        if not 0 < n_tags <= 1000:
            raise ValueError(f"{n_tags} tags")
        tags: dict[str, list[str]] = {}
        for _ in range(n_tags):
            name = data[pos:pos + 64].split(b"\x00", 1)[0].decode("latin-1")
            n_items = struct.unpack_from("<i", data, pos + 76)[0]
            pos += 84
            if not 0 <= n_items <= 1000:
                raise ValueError(f"{n_items} items in {name}")
            items = []
            for _ in range(n_items):
                x = struct.unpack_from("<4i", data, pos)
                length = x[1]
                if length < 0 or pos + 16 + length > len(data):
                    raise ValueError(f"item of {length} bytes in {name}")
                pos += 16
                value = data[pos:pos + length].split(b"\x00", 1)[0].decode("latin-1").strip()
                items.append(value)
                pos += (length + 3) // 4 * 4
            tags[name] = [v for v in items if v]
        return tags
    except (struct.error, ValueError) as exc:
        raise CorruptFileError(f"{path}: unreadable Siemens CSA image header (0029,1010): "
                               f"{exc}") from None


def _mosaic_frames(h: Header) -> list[Frame]:
    csa_raw = h.get("CSAImageHeader")
    if csa_raw is None:
        raise UnsupportedFormatError(f"{h.path}: a MOSAIC image without the Siemens CSA image "
                                     "header (0029,1010) cannot be unpacked")
    csa = csa_tags(csa_raw, h.path)
    try:
        n = int(csa["NumberOfImagesInMosaic"][0])
    except (KeyError, IndexError, ValueError):
        raise CorruptFileError(f"{h.path}: the CSA image header (0029,1010) has no "
                               "NumberOfImagesInMosaic") from None
    rows, cols = h.get("Rows", 0), h.get("Columns", 0)
    per_row = math.ceil(math.sqrt(n)) if n > 0 else 0
    if n < 1 or per_row == 0 or rows % per_row or cols % per_row:
        raise CorruptFileError(f"{h.path}: NumberOfImagesInMosaic {n} does not tile "
                               f"{rows} x {cols} pixels")
    tile_rows, tile_cols = rows // per_row, cols // per_row
    base = Frame(h, 0)
    _common(base, h)
    _geometry(base, h)
    normal = None
    if "SliceNormalVector" in csa and len(csa["SliceNormalVector"]) == 3:
        try:
            normal = tuple(float(v) for v in csa["SliceNormalVector"])
        except ValueError:
            normal = None
    step = base.between or base.thickness or 1.0
    frames = []
    for k in range(n):
        f = Frame(h, 0)
        for slot in Frame.__slots__:
            setattr(f, slot, getattr(base, slot))
        f.tile, f.tiles = k, n
        f.rows, f.columns = tile_rows, tile_cols
        if base.position is not None and base.spacing is not None:
            o = base.orientation
            r, c = o[:3], o[3:]
            nv = normal or (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2],
                            r[0] * c[1] - r[1] * c[0])
            dx = base.spacing[1] * (cols - tile_cols) / 2.0
            dy = base.spacing[0] * (rows - tile_rows) / 2.0
            f.position = tuple(base.position[i] + r[i] * dx + c[i] * dy + nv[i] * step * k
                               for i in range(3))
        frames.append(f)
    return frames
