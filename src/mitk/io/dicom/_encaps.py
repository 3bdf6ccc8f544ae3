"""Encapsulated (compressed) pixel data: where each frame's bytes are in the file.

The value of an encapsulated Pixel Data element is a sequence of items: the Basic Offset Table
first (possibly empty), then the fragments, then a sequence delimiter.  Frames are found as the
standard allows: one fragment per frame; the offsets of a non-empty Basic Offset Table; all
fragments for a single frame; otherwise JPEG-family frames end with an EOI marker (FFD9).

Only item headers (and the offset table) are read to build the index, so a task decoding some
frames reads just their fragments: memory stays at one compressed frame per thread.  Written
here rather than taken from pydicom so that worker threads never emit warnings.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

from ...errors import CorruptFileError

__all__ = ["frame_index", "read_frame"]

_ITEM = 0xE000FFFE      # (FFFE,E000) read as one little-endian uint32
_DELIMITER = 0xE0DDFFFE  # (FFFE,E0DD)

Fragments = list[tuple[int, int]]  # (file offset, length) of each fragment of a frame


def _items(fh: BinaryIO, start: int, size: int, path: str) -> Fragments:
    """(file offset, length) of every item from ``start`` up to the delimiter or end of file."""
    items = []
    pos = start
    while pos + 8 <= size:
        fh.seek(pos)
        tag, length = struct.unpack("<II", fh.read(8))
        if tag == _DELIMITER:
            return items
        if tag != _ITEM or length == 0xFFFFFFFF:
            raise CorruptFileError(f"{path}: encapsulated PixelData (7FE0,0010): expected an "
                                   f"item tag at offset {pos}")
        if pos + 8 + length > size:
            raise CorruptFileError(f"{path}: encapsulated PixelData (7FE0,0010) is truncated "
                                   f"(an item of {length} bytes at offset {pos})")
        items.append((pos + 8, length))
        pos += 8 + length
    if not items:
        raise CorruptFileError(f"{path}: encapsulated PixelData (7FE0,0010) holds no items")
    return items


def _ends_with_eoi(fh: BinaryIO, offset: int, length: int) -> bool:
    tail = min(length, 4)
    fh.seek(offset + length - tail)
    return fh.read(tail).rstrip(b"\0").endswith(b"\xff\xd9")


def frame_index(path: str, start: int, count: int) -> list[Fragments]:
    """The fragments of each of ``count`` frames of the element value at ``start``."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        items = _items(fh, start, size, path)
        (table_offset, table_length), fragments = items[0], items[1:]
        if not fragments:
            raise CorruptFileError(f"{path}: encapsulated PixelData (7FE0,0010) has no "
                                   "fragments")
        if len(fragments) == count:
            return [[f] for f in fragments]
        if count == 1:
            return [fragments]
        if table_length:
            if table_length % 4 or table_length // 4 != count:
                raise CorruptFileError(f"{path}: the Basic Offset Table lists "
                                       f"{table_length // 4} frames, NumberOfFrames "
                                       f"(0028,0008) is {count}")
            fh.seek(table_offset)
            starts = struct.unpack(f"<{count}I", fh.read(table_length))
            first = fragments[0][0] - 8  # offsets count from the first fragment's item tag
            out: list[Fragments] = [[] for _ in range(count)]
            frame = -1
            for offset, length in fragments:
                while frame + 1 < count and offset - 8 - first >= starts[frame + 1]:
                    frame += 1
                if frame < 0:
                    raise CorruptFileError(f"{path}: the Basic Offset Table does not start at "
                                           "the first fragment")
                out[frame].append((offset, length))
            if any(not parts for parts in out):
                raise CorruptFileError(f"{path}: the Basic Offset Table points past the "
                                       "fragments")
            return out
        # No table and more fragments than frames: a frame ends with a fragment ending in EOI.
        frames: list[Fragments] = []
        current: Fragments = []
        for offset, length in fragments:
            current.append((offset, length))
            if _ends_with_eoi(fh, offset, length):
                frames.append(current)
                current = []
        if len(frames) != count or current:
            raise CorruptFileError(f"{path}: cannot tell the {count} frames apart among "
                                   f"{len(fragments)} fragments of PixelData (7FE0,0010)")
        return frames


def read_frame(fh: BinaryIO, fragments: Fragments) -> bytes:
    """The compressed bytes of one frame (its fragments joined)."""
    parts = []
    for offset, length in fragments:
        fh.seek(offset)
        parts.append(fh.read(length))
    return parts[0] if len(parts) == 1 else b"".join(parts)
