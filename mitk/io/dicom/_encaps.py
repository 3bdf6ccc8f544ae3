"""Encapsulated (compressed) pixel data: the bytes of each frame, from the fragments.

The value of an encapsulated Pixel Data element is a sequence of items: the Basic Offset Table
first (possibly empty), then the fragments, then a sequence delimiter.  Frames are found as the
standard allows: one fragment per frame; the offsets of a non-empty Basic Offset Table; all
fragments for a single frame; otherwise JPEG-family frames end with an EOI marker (FFD9).
Written here rather than taken from pydicom so that the worker threads that decode frames never
emit warnings.
"""

from __future__ import annotations

import struct

from ...errors import CorruptFileError

__all__ = ["frames"]

_ITEM = 0xE000FFFE      # (FFFE,E000) read as one little-endian uint32
_DELIMITER = 0xE0DDFFFE  # (FFFE,E0DD)


def _items(blob: bytes, path: str) -> list[tuple[int, int]]:
    """(offset, length) of every item up to the delimiter (or the end of ``blob``)."""
    items = []
    pos = 0
    while pos + 8 <= len(blob):
        tag, length = struct.unpack_from("<II", blob, pos)
        if tag == _DELIMITER:
            return items
        if tag != _ITEM or length == 0xFFFFFFFF:
            raise CorruptFileError(f"{path}: encapsulated PixelData (7FE0,0010): expected an "
                                   f"item tag at byte {pos} of the pixel data")
        if pos + 8 + length > len(blob):
            raise CorruptFileError(f"{path}: encapsulated PixelData (7FE0,0010) is truncated "
                                   f"(an item of {length} bytes at byte {pos})")
        items.append((pos + 8, length))
        pos += 8 + length
    if not items:
        raise CorruptFileError(f"{path}: encapsulated PixelData (7FE0,0010) holds no items")
    return items


def frames(blob: bytes, count: int, path: str) -> list[bytes]:
    """The compressed bytes of each of ``count`` frames in ``blob`` (the element's value)."""
    items = _items(blob, path)
    table, fragments = items[0], items[1:]
    if not fragments:
        raise CorruptFileError(f"{path}: encapsulated PixelData (7FE0,0010) has no fragments")
    if len(fragments) == count:
        return [blob[o:o + n] for o, n in fragments]
    if count == 1:
        return [b"".join(blob[o:o + n] for o, n in fragments)]
    offset, length = table
    if length:
        if length % 4 or length // 4 != count:
            raise CorruptFileError(f"{path}: the Basic Offset Table lists {length // 4} frames, "
                                   f"NumberOfFrames (0028,0008) is {count}")
        starts = list(struct.unpack_from(f"<{count}I", blob, offset))
        first = fragments[0][0] - 8  # offsets count from the first fragment's item tag
        out: list[list[bytes]] = [[] for _ in range(count)]
        frame = -1
        for o, n in fragments:
            while frame + 1 < count and o - 8 - first >= starts[frame + 1]:
                frame += 1
            if frame < 0:
                raise CorruptFileError(f"{path}: the Basic Offset Table does not start at the "
                                       "first fragment")
            out[frame].append(blob[o:o + n])
        if any(not parts for parts in out):
            raise CorruptFileError(f"{path}: the Basic Offset Table points past the fragments")
        return [b"".join(parts) for parts in out]
    # No table and more fragments than frames: a frame ends with the fragment that ends in EOI.
    out, current = [], []
    for o, n in fragments:
        current.append(blob[o:o + n])
        if blob[o:o + n].rstrip(b"\0").endswith(b"\xff\xd9"):
            out.append(b"".join(current))
            current = []
    if len(out) != count or current:
        raise CorruptFileError(f"{path}: cannot tell the {count} frames apart among "
                               f"{len(fragments)} fragments of PixelData (7FE0,0010)")
    return out
