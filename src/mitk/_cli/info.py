"""``python -m mitk info FILE... [--json]``: what a file holds, without printing pixels.

A directory or a DICOM file is described series by series from its headers
(:func:`mitk.dicom.scan`), without reading pixels.
"""

from __future__ import annotations

import json
import os

__all__ = ["describe", "describe_dicom", "run_info"]


def _is_dicom(path: str) -> bool:
    from mitk.io.registry import FORMATS, extension_of, has_dicom_marker

    if os.path.isdir(path):
        return True
    ext = extension_of(path)
    if ext is not None:
        return FORMATS[ext] == "dicom"
    return os.path.isfile(path) and has_dicom_marker(path)


def describe_dicom(path: str) -> dict:
    """A JSON-ready listing of the DICOM series under ``path`` (headers only)."""
    import mitk

    series = mitk.dicom.scan(path)
    return {
        "file": os.fspath(path),
        "format": "dicom",
        "series": [{
            "uid": s.uid,
            "number": s.number,
            "description": s.description,
            "modality": s.modality,
            "pixel_type": s.dtype.name,
            "shape": list(s.shape),
            "spacing": [float(v) for v in s.spacing],
            "origin": [float(v) for v in s.origin],
            "direction": [list(map(float, row)) for row in s.direction],
            "time_steps": s.time_steps,
            "files": len(s.files),
            "problems": list(s.problems),
        } for s in series],
    }


def describe(path: str) -> dict:
    """A JSON-ready description of the image in ``path`` (loads it; DICOM: lists the series)."""
    import mitk
    from mitk.io.registry import FORMATS, extension_of

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such file or directory", path)
    if _is_dicom(path):
        return describe_dicom(path)
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


def _number(value: float) -> str:
    # Plain digits, not 2e+06: times and sizes read better that way.
    return f"{value:.10g}" if abs(value) < 1e15 else f"{value:g}"


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"


def _dicom_text(d: dict) -> str:
    lines = [f"{d['file']}", f"  format      DICOM, {len(d['series'])} volume(s)"]
    for i, s in enumerate(d["series"], 1):
        number = s["number"] if s["number"] is not None else "-"
        lines += [
            f"  [{i}] series {number} {s['description']!r} ({s['modality'] or '?'})",
            f"      uid         {s['uid']}",
            f"      pixel type  {s['pixel_type']}",
            f"      shape       {tuple(s['shape'])}  ({s['files']} file(s), "
            f"{s['time_steps']} time step(s))",
            f"      spacing     {_fmt(s['spacing'])} mm",
            f"      origin      {_fmt(s['origin'])} mm (LPS)",
            "      direction   " + "  ".join(_fmt(row) for row in s["direction"]),
        ]
        lines += [f"      problem     {p}" for p in s["problems"]]
    return "\n".join(lines)


def _text(d: dict) -> str:
    if d.get("format") == "dicom":
        return _dicom_text(d)
    fmt = _fmt

    lines = [
        f"{d['file']}",
        f"  format      {d['format']}",
        f"  pixel type  {d['pixel_type']} x {d['channels']} channel(s)",
        f"  shape       {tuple(d['shape'])}  (MITK dimensions {tuple(d['dimensions'])})",
        f"  spacing     {fmt(d['spacing'])} mm",
        f"  origin      {fmt(d['origin'])} mm (LPS)",
        "  direction   " + "  ".join(fmt(row) for row in d["direction"]),
        f"  time steps  {d['time_steps']}"
        + (f" (start {_number(d['time_origin'])} ms, step {_number(d['time_step_duration'])} ms)"
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
