"""``python -m mitk convert IN... OUT [--compression C]``: any supported format to any other.

An input holding several images (a DICOM directory with several series) writes one file per
image: ``OUT`` itself for one, else ``OUT`` with ``_1``, ``_2``, ... before its extension.
"""

from __future__ import annotations

import os
import sys

__all__ = ["run_convert"]


def _progress(done: int, total: int, name: str) -> None:
    # A one-line progress bar on stderr, only for interactive terminals.
    if not sys.stderr.isatty():
        return
    width = 30
    filled = width * done // total
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {name[:40]:<40}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def run_convert(inputs: list[str], output: str, compression: str | None = None,
                to: str | None = None) -> int:
    """Convert one file to ``output``, or many files into the directory ``output``."""
    import mitk
    from mitk.io.registry import extension_of, supported_extensions

    options = {} if compression in (None, "raw") else {"compression": compression}
    if len(inputs) == 1 and not os.path.isdir(output):
        images = mitk.IOUtil.load(inputs[0])
        ext = extension_of(output)
        if ext is None:
            # Let save() refuse the name with its usual message before anything is written.
            images[0].save(output, **options)
        targets = [output] if len(images) == 1 else [
            f"{output[: -len(ext)]}_{i}{output[-len(ext):]}" for i in range(1, len(images) + 1)]
        for image, target in zip(images, targets):
            image.save(target, **options)
            print(f"{inputs[0]} -> {target}")
        return 0
    if not os.path.isdir(output):
        raise FileNotFoundError(2, "output directory does not exist (several inputs need one)",
                                output)
    ext = to or ".nrrd"
    if not ext.startswith("."):
        ext = "." + ext
    if ext.lower() not in supported_extensions():
        raise mitk.UnsupportedFormatError(
            f"--to {ext}: unknown extension; known: {', '.join(supported_extensions())}")
    for i, path in enumerate(inputs, 1):
        known = extension_of(path)
        stem = os.path.basename(os.path.normpath(path))
        stem = stem[: -len(known)] if known else stem
        images = mitk.IOUtil.load(path)
        for k, image in enumerate(images, 1):
            suffix = f"_{k}" if len(images) > 1 else ""
            target = os.path.join(output, stem + suffix + ext)
            image.save(target, **options)
            print(f"{path} -> {target}")
        _progress(i, len(inputs), os.path.basename(path))
    return 0
