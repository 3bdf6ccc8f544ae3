"""``python -m mitk info FILE... [--json]``: what a file holds, without printing pixels."""

from __future__ import annotations

import json
import os

__all__ = ["describe", "run_info"]


def describe(path: str) -> dict:
    """A JSON-ready description of the image in ``path`` (loads it)."""
    import mitk
    from mitk.io.registry import FORMATS, extension_of

    image = mitk.Image.load(path)
    ext = extension_of(os.fspath(path))
    return {
        "file": os.fspath(path),
        "format": FORMATS[ext] if ext else None,
        "pixel_type": image.dtype.name,
        "shape": list(image.shape),
        "dimensions": list(image.get_dimensions()),
        "channels": image.channels,
        "spacing": list(image.spacing),
        "origin": list(image.origin),
        "direction": [list(map(float, row)) for row in image.direction],
        "time_steps": image.time_steps,
        "time_origin": image.time_geometry.get_min_time_point(0) if image.ndim == 4 else None,
        "time_step_duration": (image.time_geometry.get_max_time_point(0)
                               - image.time_geometry.get_min_time_point(0))
        if image.ndim == 4 else None,
        "nbytes": image.nbytes,
        "properties": {k: image.properties[k] for k in image.property_keys},
    }


def _text(d: dict) -> str:
    def fmt(values):
        return "(" + ", ".join(f"{v:g}" for v in values) + ")"

    lines = [
        f"{d['file']}",
        f"  format      {d['format']}",
        f"  pixel type  {d['pixel_type']} x {d['channels']} channel(s)",
        f"  shape       {tuple(d['shape'])}  (MITK dimensions {tuple(d['dimensions'])})",
        f"  spacing     {fmt(d['spacing'])} mm",
        f"  origin      {fmt(d['origin'])} mm (LPS)",
        "  direction   " + "  ".join(fmt(row) for row in d["direction"]),
        f"  time steps  {d['time_steps']}"
        + (f" (start {d['time_origin']:g}, step {d['time_step_duration']:g})"
           if d["time_origin"] is not None else ""),
        f"  size        {d['nbytes']} bytes",
    ]
    if d["properties"]:
        lines.append("  properties")
        lines += [f"    {k} = {v!r}" for k, v in sorted(d["properties"].items())]
    return "\n".join(lines)


def run_info(files: list[str], as_json: bool = False) -> int:
    """Print a description of each file; errors propagate to the command line handler."""
    described = [describe(f) for f in files]
    if as_json:
        print(json.dumps(described if len(described) > 1 else described[0], indent=2))
    else:
        print("\n".join(_text(d) for d in described))
    return 0
