"""Finding DICOM files and reading their headers on a few threads.

A directory is walked (recursively by default) with every directory visited once, so a symlink
loop ends; a DICOMDIR lists its files, which must stay inside the DICOMDIR's directory tree.
Files that are not DICOM, and DICOM files without pixel data (reports, presentation states,
DICOMDIRs), are skipped in a directory and logged at DEBUG on the ``"mitk"`` logger; a truncated
or malformed DICOM file is an error naming it.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor

from ...errors import CorruptFileError, UnsupportedFormatError
from ._frames import Frame, frames_of
from ._parse import Header, NotDicom, parse_file
from ._pixels import check_pixels, decode_threads
from ._pydicom import pydicom, quiet_read

__all__ = ["collect", "headers", "frames"]

log = logging.getLogger("mitk")


def _walk(root: str, recursive: bool) -> list[str]:
    files: list[str] = []
    seen: set[tuple[int, int]] = set()
    pending = [root]
    while pending:
        directory = pending.pop()
        try:
            st = os.stat(directory)
        except OSError as exc:
            log.debug("DICOM scan: skipping %s (%s)", directory, exc)
            continue
        if (st.st_dev, st.st_ino) in seen:
            log.debug("DICOM scan: %s was visited already (a symlink loop?)", directory)
            continue
        seen.add((st.st_dev, st.st_ino))
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            log.debug("DICOM scan: cannot list %s (%s)", directory, exc)
            continue
        subdirs = []
        for entry in entries:
            try:
                if entry.is_dir():
                    if recursive:
                        subdirs.append(entry.path)
                elif entry.is_file():
                    files.append(entry.path)
            except OSError:
                continue
        pending.extend(reversed(subdirs))
    return files


def _dicomdir_files(path: str) -> list[str] | None:
    """The image files a DICOMDIR references, checked to stay inside its directory.

    None when ``path`` is not a DICOMDIR (it has no Directory Record Sequence).
    """
    module = pydicom()
    with quiet_read(path, "DICOMDIR"):
        ds = module.dcmread(path, stop_before_pixels=True)
        if "DirectoryRecordSequence" not in ds:
            return None
        refs = [record.get("ReferencedFileID") for record in ds.DirectoryRecordSequence]
    base = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    out = []
    for ref in refs:
        if not ref:
            continue
        parts = [str(ref)] if isinstance(ref, str) else [str(p) for p in ref]
        target = os.path.realpath(os.path.join(base, *parts))
        if os.path.isabs(parts[0]) or os.path.commonpath([base, target]) != base:
            raise CorruptFileError(f"{path}: ReferencedFileID (0004,1500) {'/'.join(parts)!r} "
                                   "points outside the DICOMDIR's directory")
        if not os.path.isfile(target):
            raise FileNotFoundError(2, f"file listed in DICOMDIR {path} is missing", target)
        out.append(target)
    return out


def collect(path: str, recursive: bool = True) -> tuple[list[str], bool]:
    """The candidate files under ``path`` and whether it named them one by one (not a walk)."""
    if os.path.isdir(path):
        return _walk(path, recursive), False
    if os.path.basename(path).upper() == "DICOMDIR":
        listed = _dicomdir_files(path)
        if listed is not None:
            return listed, True
    return [path], True


def _parse(path: str) -> Header | None:
    try:
        return parse_file(path)
    except NotDicom:
        log.debug("DICOM scan: skipping %s (not DICOM)", path)
        return None
    except IsADirectoryError:
        return None


def _parse_batch(paths: list[str]) -> list[Header | None]:
    return [_parse(p) for p in paths]


def headers(paths: list[str], strict: bool) -> list[Header]:
    """Parsed headers of the DICOM image files among ``paths``.

    ``strict`` (a file named on its own): a file that is not DICOM or holds no pixel data is an
    error instead of being skipped.
    """
    workers = min(decode_threads(), max(1, len(paths) // 32))
    if workers > 1:
        # Batches, not one task per file: a task costs about as much as parsing a small header.
        size = -(-len(paths) // (workers * 4))
        batches = [paths[i:i + size] for i in range(0, len(paths), size)]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mitk-dicom") as pool:
            parsed = [h for batch in pool.map(_parse_batch, batches) for h in batch]
    else:
        parsed = [_parse(p) for p in paths]
    out = []
    for path, h in zip(paths, parsed):
        if h is None:
            if strict:
                raise UnsupportedFormatError(f"{path}: not a DICOM file (no DICM marker at "
                                             "bytes 128-131)")
            continue
        if h.pixel_tag is None:
            if strict:
                listed = _dicomdir_files(path)
                if listed is None:
                    raise UnsupportedFormatError(f"{path}: a DICOM file without pixel data "
                                                 "(7FE0,0010); not an image")
                out.extend(headers(listed, True))
                continue
            log.debug("DICOM scan: skipping %s (no pixel data)", path)
            continue
        out.append(h)
    return out


def frames(hs: list[Header]) -> list[Frame]:
    """Every frame of the headers ``hs``, each file's pixel data checked first."""
    out: list[Frame] = []
    for h in hs:
        fs = frames_of(h)
        count = h.get("NumberOfFrames") or 1
        check_pixels(h, count, h.get("Rows", 0), h.get("Columns", 0))
        out.extend(fs)
    return out


def find(path: str, recursive: bool = True) -> list[Frame]:
    """The frames of every DICOM image under ``path`` (a directory, DICOMDIR or file).

    Raises UnsupportedFormatError when there is none.
    """
    pydicom()
    paths, strict = collect(path, recursive)
    hs = headers(paths, strict)
    if not hs:
        raise UnsupportedFormatError(f"{path}: no DICOM image files found"
                                     + (" (searched recursively)" if recursive and
                                        os.path.isdir(path) else ""))
    return frames(hs)
