"""``python -m mitk convert IN... OUT [--compression C]``: any supported format to any other."""

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
        mitk.Image.load(inputs[0]).save(output, **options)
        print(f"{inputs[0]} -> {output}")
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
        stem = os.path.basename(path)[: -len(known)] if known else os.path.basename(path)
        target = os.path.join(output, stem + ext)
        mitk.Image.load(path).save(target, **options)
        _progress(i, len(inputs), os.path.basename(path))
        print(f"{path} -> {target}")
    return 0
