"""Pixel data: checked against the headers, then read or decoded straight into the image.

Native (uncompressed) frames are read with ``readinto`` into the image's own memory, one task
per file on a few threads (file reads release the GIL); big-endian data are swapped in place.
Encapsulated frames are split by :mod:`._encaps` and decoded with imagecodecs (which releases
the GIL while decoding) into one frame-sized array per task, then copied in.  A frame that needs
rescaling to another dtype, a mosaic and colour planes go through one such per-task frame array
too; nothing is stacked after reading.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ... import _threads
from ...errors import CorruptFileError, UnsupportedFormatError
from ._frames import Frame
from ._parse import (DEFLATED, EXPLICIT_BE, EXPLICIT_LE, IMPLICIT_LE, Header, inflate_dataset,
                     tag_name)
from ._encaps import frame_index, read_frame
from ._pydicom import imagecodecs
from ._values import PixelFormat, pixel_format

__all__ = ["check_pixels", "decode_threads", "read_volume"]

NATIVE = frozenset({IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE, DEFLATED})

# Transfer syntax -> imagecodecs decoder name.
DECODERS = {
    "1.2.840.10008.1.2.4.50": "jpeg8",
    "1.2.840.10008.1.2.4.51": "jpeg8",
    "1.2.840.10008.1.2.4.57": "ljpeg",
    "1.2.840.10008.1.2.4.70": "ljpeg",
    "1.2.840.10008.1.2.4.80": "jpegls",
    "1.2.840.10008.1.2.4.81": "jpegls",
    "1.2.840.10008.1.2.4.90": "jpeg2k",
    "1.2.840.10008.1.2.4.91": "jpeg2k",
    "1.2.840.10008.1.2.4.201": "jpeg2k",
    "1.2.840.10008.1.2.4.202": "jpeg2k",
    "1.2.840.10008.1.2.4.203": "jpeg2k",
    "1.2.840.10008.1.2.5": "dicomrle",
}


def decode_threads() -> int:
    """Worker threads for reading and decoding frames.

    The one place that sets it: ``mitk.get_num_threads()``, at most 4.
    """
    return max(1, min(4, _threads.get_num_threads()))


def _frame_bytes(f: Frame, fmt: PixelFormat) -> int:
    return f.rows * f.columns * fmt.channels * fmt.dtype.itemsize


def check_pixels(h: Header, frames_in_file: int, rows: int, columns: int) -> None:
    """Header-only checks of one file's pixel data, before anything is allocated.

    Raises UnsupportedFormatError (no pixel data; an undecodable transfer syntax) or
    CorruptFileError (a length that disagrees with Rows x Columns x frames, a file shorter than
    its pixel data), naming the file and the tag.
    """
    if h.pixel_tag is None:
        raise UnsupportedFormatError(f"{h.path}: no pixel data (7FE0,0010); not an image")
    if rows < 1 or columns < 1:
        raise CorruptFileError(f"{h.path}: Rows (0028,0010) x Columns (0028,0011) is "
                               f"{rows} x {columns}; expected sizes >= 1")
    ts = h.transfer_syntax
    fmt = pixel_format(h)
    if ts in NATIVE:
        need = rows * columns * fmt.channels * fmt.dtype.itemsize * frames_in_file
        if h.pixel_length < 0 or h.pixel_length < need:
            raise CorruptFileError(
                f"{h.path}: {tag_name(h.pixel_tag)} holds {h.pixel_length} bytes but Rows x "
                f"Columns x SamplesPerPixel x frames x bytes is {rows} x {columns} x "
                f"{fmt.channels} x {frames_in_file} x {fmt.dtype.itemsize} = {need}")
        if ts != DEFLATED and h.pixel_offset + need > h.file_size:
            raise CorruptFileError(
                f"{h.path}: truncated: {tag_name(h.pixel_tag)} needs {need} bytes from offset "
                f"{h.pixel_offset}, the file has {h.file_size} bytes")
        return
    if ts not in DECODERS:
        raise UnsupportedFormatError(f"{h.path}: transfer syntax {ts} cannot be decoded "
                                     "(no decoder for it)")
    if h.pixel_length != -1:
        raise CorruptFileError(f"{h.path}: {tag_name(h.pixel_tag)} of compressed transfer "
                               f"syntax {ts} is not encapsulated (defined length)")
    imagecodecs(f"transfer syntax {ts} of {h.path}")


def _fix_bits(a: np.ndarray, fmt: PixelFormat) -> None:
    """Sign-extend or mask samples stored in fewer bits than allocated (in place)."""
    bits = fmt.dtype.itemsize * 8
    if not fmt.integer or fmt.bits_stored >= bits:
        return
    shift = bits - fmt.bits_stored
    if fmt.dtype.kind == "i":
        a <<= shift
        a >>= shift
    else:
        a &= (1 << fmt.bits_stored) - 1


def _store(dest: np.ndarray, stored: np.ndarray, slope: float, intercept: float,
           rescale: bool) -> None:
    """Write ``stored`` (one frame, stored dtype) into ``dest``, rescaled when asked."""
    if not rescale or (slope == 1.0 and intercept == 0.0):
        dest[...] = stored
    elif dest.dtype.kind in "iu":
        work = stored.astype(np.int64)
        if slope != 1.0:
            work *= int(slope)
        work += int(intercept)
        dest[...] = work
    else:
        dest[...] = stored * np.float64(slope) + np.float64(intercept)


class _FileTask:
    """Read every wanted frame of one file into its slots of ``out``."""

    def __init__(self, header: Header, slots: list[tuple[Frame, int]]) -> None:
        self.header = header
        self.slots = slots
        self.index: list | None = None  # encapsulated: the fragments of each frame

    def run(self, out: np.ndarray, rescale: bool) -> None:
        h = self.header
        fmt = pixel_format(h)
        if h.transfer_syntax in NATIVE:
            self._native(out, fmt, rescale)
        else:
            self._encapsulated(out, fmt, rescale)

    def _plane(self, f: Frame, fmt: PixelFormat) -> tuple:
        return (f.rows, f.columns) + ((fmt.channels,) if fmt.channels > 1 else ())

    def _finish(self, raw: np.ndarray, f: Frame, fmt: PixelFormat, dest: np.ndarray,
                rescale: bool) -> None:
        """Swap, fix bits, un-plane and rescale ``raw`` (stored samples) into ``dest``."""
        if self.header.transfer_syntax == EXPLICIT_BE and fmt.dtype.itemsize > 1:
            raw.byteswap(inplace=True)
        _fix_bits(raw, fmt)
        if fmt.planar:
            raw = raw.reshape(fmt.channels, f.rows, f.columns).transpose(1, 2, 0)
        if raw is not dest:
            _store(dest, raw.reshape(dest.shape), f.slope, f.intercept, rescale)

    def _native(self, out: np.ndarray, fmt: PixelFormat, rescale: bool) -> None:
        h = self.header
        data = None
        if h.transfer_syntax == DEFLATED:
            data = _inflated_pixels(h)
        elif h.transfer_syntax == EXPLICIT_BE and fmt.dtype.itemsize == 1 and h.pixel_vr == b"OW":
            data = _word_swapped_pixels(h)
        first = self.slots[0][0]
        if first.tile is not None:
            self._mosaic(out, fmt, rescale, data)
            return
        with open(h.path, "rb", buffering=0) as fh:
            for f, slot in self.slots:
                dest = out[slot]
                size = _frame_bytes(f, fmt)
                direct = (dest.dtype == fmt.dtype and not fmt.planar and
                          (not rescale or (f.slope == 1.0 and f.intercept == 0.0)))
                raw = dest if direct else np.empty(self._plane(f, fmt), fmt.dtype)
                target = memoryview(raw.reshape(-1)).cast("B")
                if data is not None:
                    target[:] = data[f.index * size:(f.index + 1) * size]
                else:
                    fh.seek(h.pixel_offset + f.index * size)
                    got = fh.readinto(target)
                    if got != size:
                        raise CorruptFileError(f"{h.path}: truncated pixel data ({got} of "
                                               f"{size} bytes of frame {f.index + 1})")
                self._finish(raw, f, fmt, dest, rescale)

    def _mosaic(self, out: np.ndarray, fmt: PixelFormat, rescale: bool, data) -> None:
        h = self.header
        rows, cols = h.get("Rows"), h.get("Columns")
        shape = (rows, cols) + ((fmt.channels,) if fmt.channels > 1 else ())
        whole = np.empty(shape, fmt.dtype)
        target = memoryview(whole.reshape(-1)).cast("B")
        if data is not None:
            target[:] = data[:len(target)]
        else:
            with open(h.path, "rb", buffering=0) as fh:
                fh.seek(h.pixel_offset)
                if fh.readinto(target) != len(target):
                    raise CorruptFileError(f"{h.path}: truncated pixel data")
        self._tiles(whole, out, fmt, rescale)

    def _tiles(self, whole: np.ndarray, out: np.ndarray, fmt: PixelFormat,
               rescale: bool) -> None:
        if self.header.transfer_syntax == EXPLICIT_BE and fmt.dtype.itemsize > 1:
            whole.byteswap(inplace=True)
        _fix_bits(whole, fmt)
        for f, slot in self.slots:
            per_row = whole.shape[1] // f.columns
            y, x = divmod(f.tile, per_row)
            tile = whole[y * f.rows:(y + 1) * f.rows, x * f.columns:(x + 1) * f.columns]
            _store(out[slot], tile, f.slope, f.intercept, rescale)

    def _encapsulated(self, out: np.ndarray, fmt: PixelFormat, rescale: bool) -> None:
        h = self.header
        ts = h.transfer_syntax
        codecs = imagecodecs(f"transfer syntax {ts} of {h.path}")
        decode = getattr(codecs, DECODERS[ts] + "_decode")
        decoded: dict[int, np.ndarray] = {}
        with open(h.path, "rb") as fh:
            for f, slot in self.slots:
                if f.index not in decoded:
                    data = read_frame(fh, self.index[f.index])
                    decoded = {f.index: self._decode(decode, data, f, fmt)}
                if f.tile is not None:
                    self._tiles(decoded[f.index], out, fmt, rescale)
                    return
                _store(out[slot], decoded[f.index], f.slope, f.intercept, rescale)

    def _decode(self, decode, data: bytes, f: Frame, fmt: PixelFormat) -> np.ndarray:
        h = self.header
        try:
            if DECODERS[h.transfer_syntax] == "dicomrle":
                a = np.frombuffer(decode(data, dtype=fmt.dtype.newbyteorder(">")),
                                  fmt.dtype.newbyteorder(">"))
                a = a.astype(fmt.dtype)
                if fmt.channels > 1:
                    a = a.reshape(fmt.channels, -1).T
            else:
                a = np.asarray(decode(data))
        except Exception as exc:  # decoders raise their own error types
            raise CorruptFileError(f"{h.path}: frame {f.index + 1} cannot be decoded "
                                   f"({h.transfer_syntax}): {exc}") from None
        rows = h.get("Rows")
        cols = h.get("Columns")
        plane = (rows, cols) + ((fmt.channels,) if fmt.channels > 1 else ())
        if a.size != int(np.prod(plane)):
            raise CorruptFileError(f"{h.path}: frame {f.index + 1} decodes to {a.shape}, "
                                   f"expected Rows x Columns {plane}")
        if a.dtype != fmt.dtype:
            if a.dtype.itemsize == fmt.dtype.itemsize and a.dtype.kind in "iu":
                a = a.view(fmt.dtype)
            else:
                a = a.astype(fmt.dtype)
        a = np.ascontiguousarray(a.reshape(plane))
        if not a.flags.writeable:
            a = a.copy()
        _fix_bits(a, fmt)
        return a


def _inflated_pixels(h: Header) -> memoryview:
    """The pixel data of a deflated-transfer-syntax file (its dataset inflated again)."""
    with open(h.path, "rb") as fh:
        end = h.pixel_offset + h.pixel_length
        dataset = inflate_dataset(fh.read(), h.path, limit=end)
    if len(dataset) < end:
        raise CorruptFileError(f"{h.path}: truncated deflated {tag_name(h.pixel_tag)} "
                               f"({len(dataset)} of {end} bytes)")
    return memoryview(dataset)[h.pixel_offset:end]


def _word_swapped_pixels(h: Header) -> memoryview:
    """8-bit samples in a big-endian OW element: the bytes of each 16-bit word are swapped."""
    with open(h.path, "rb") as fh:
        fh.seek(h.pixel_offset)
        data = bytearray(fh.read(h.pixel_length + (h.pixel_length & 1)))
    if len(data) & 1:
        data.append(0)
    np.frombuffer(data, dtype=np.uint16).byteswap(inplace=True)
    return memoryview(data)


def _tasks(frames: list[Frame], workers: int) -> list[_FileTask]:
    """One task per file; a multi-frame file is cut into ``workers`` tasks of whole frames."""
    by_file: dict[str, list[tuple[Frame, int]]] = {}
    for slot, f in enumerate(frames):
        by_file.setdefault(f.header.path, []).append((f, slot))
    tasks = []
    for slots in by_file.values():
        h = slots[0][0].header
        index = None
        if h.transfer_syntax not in NATIVE:
            index = frame_index(h.path, h.pixel_offset, h.get("NumberOfFrames") or 1)
        mosaic = slots[0][0].tile is not None
        size = len(slots) if mosaic else -(-len(slots) // max(1, min(workers, len(slots))))
        if len(by_file) > workers:
            size = len(slots)  # enough files to keep every thread busy
        for start in range(0, len(slots), size):
            task = _FileTask(h, slots[start:start + size])
            task.index = index
            tasks.append(task)
    return tasks


def read_volume(frames: list[Frame], out: np.ndarray, rescale: bool) -> None:
    """Fill ``out`` (shape ``(frames, rows, cols[, c])`` as a view) from ``frames``.

    Files (or parts of a multi-frame file) are read on :func:`decode_threads` threads; each
    writes only its own frames of ``out``, so no lock is needed between them.
    """
    threads = decode_threads()
    tasks = _tasks(frames, threads)
    workers = min(threads, len(tasks))
    if workers <= 1:
        for task in tasks:
            task.run(out, rescale)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mitk-dicom") as pool:
        for future in [pool.submit(task.run, out, rescale) for task in tasks]:
            future.result()
