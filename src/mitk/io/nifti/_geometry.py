"""NIfTI geometry: the sform, qform or Analyze convention into LPS spacing, origin, direction
and time (reading), and the sform/qform fields from an image's geometry (writing)."""

from __future__ import annotations

import math

import numpy as np

from ..._geometry_rules import is_singular
from ...errors import CorruptFileError
from .._geometry_axes import BadAxis, unit_columns

_SPACE_UNITS = {0: 1.0, 1: 1000.0, 2: 1.0, 3: 1e-3}  # unknown (taken as mm), m, mm, micron
_TIME_UNITS = {0: 1.0, 8: 1000.0, 16: 1.0, 24: 1e-3}  # unknown (taken as ms), s, ms, us
_LPS = np.diag([-1.0, -1.0, 1.0])  # RAS <-> LPS (its own inverse)


def _quaternion_affine(hdr, path: str) -> np.ndarray:
    """RAS affine of the qform (nifti1_io ``quatern_to_mat44``)."""
    b, c, d = (float(hdr[k]) for k in ("quatern_b", "quatern_c", "quatern_d"))
    offset = [float(hdr[k]) for k in ("qoffset_x", "qoffset_y", "qoffset_z")]
    if not all(math.isfinite(v) for v in (b, c, d, *offset)):
        raise CorruptFileError(f"{path}: NIfTI qform (fields 'quatern_b/c/d', 'qoffset_x/y/z') "
                               "is not finite")
    a2 = 1.0 - (b * b + c * c + d * d)
    if a2 < 1e-7:  # a 180 degree rotation: (b, c, d) is renormalised
        n = math.sqrt(b * b + c * c + d * d)
        a, b, c, d = 0.0, b / n, c / n, d / n
    else:
        a = math.sqrt(a2)
    rot = np.array([
        [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
        [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
        [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
    ])
    pixdim = [float(p) for p in hdr["pixdim"]]
    # |pixdim| as nibabel and ITK take it (a negative pixdim breaks the standard; nifti1_io's 1.0
    # for it would silently change the voxel size); 0 or not finite means 1.
    zooms = [abs(p) if p != 0 and math.isfinite(p) else 1.0 for p in pixdim[1:4]]
    if pixdim[0] < 0:  # qfac: a left-handed grid
        zooms[2] = -zooms[2]
    m = np.eye(4)
    m[:3, :3] = rot * zooms
    m[:3, 3] = offset
    return m


def _analyze_affine(hdr, layout: dict) -> np.ndarray:
    """nibabel's convention: RAS ``diag(-px, py, pz)`` with the volume centre at the origin."""
    ndim = layout["dim0"]
    zooms = [1.0, 1.0, 1.0]
    for i in range(min(ndim, 3)):
        p = float(hdr["pixdim"][i + 1])
        zooms[i] = abs(p) if p != 0 and math.isfinite(p) else 1.0  # nibabel takes |pixdim|
    m = np.diag([-zooms[0], zooms[1], zooms[2], 1.0])
    centre = np.array([(n - 1) / 2.0 for n in layout["xyz"]])
    m[:3, 3] = -(m[:3, :3] @ centre)
    return m


def _affine(hdr, version: int, layout: dict, path: str) -> tuple[np.ndarray, str]:
    """RAS affine and its source (``"sform"``, ``"qform"`` or ``"Analyze"``)."""
    if version and int(hdr["sform_code"]) > 0:
        m = np.eye(4)
        m[0], m[1], m[2] = hdr["srow_x"], hdr["srow_y"], hdr["srow_z"]
        if np.all(np.isfinite(m)) and not is_singular(m[:3, :3]):
            return m, "sform"
        if int(hdr["qform_code"]) <= 0:
            raise CorruptFileError(f"{path}: NIfTI sform (fields 'srow_x/y/z') is singular or "
                                   "not finite and there is no qform (qform_code 0) to use "
                                   "instead")
    if version and int(hdr["qform_code"]) > 0:
        return _quaternion_affine(hdr, path), "qform"
    return _analyze_affine(hdr, layout), "Analyze"


def _geometry(hdr, version: int, layout: dict, path: str) -> dict:
    # NIfTI-2 holds doubles up to 1e308: lengths come from hypot and singularity from the one
    # rescaled rule (mitk._geometry_rules), so no product overflows; unit scaling may still
    # overflow, and the result is checked.
    affine, source = _affine(hdr, version, layout, path)
    axes = _LPS @ affine[:3, :3]
    units = int(hdr["xyzt_units"]) if version else 0
    space, time = units & 0x07, units & 0x38
    space_scale = _SPACE_UNITS.get(space, 1.0)
    try:
        spacing, cols = unit_columns(list(axes.T))
        ok = not is_singular(np.column_stack(cols))
    except BadAxis:
        ok = False
    if ok:
        direction = np.column_stack(cols)
        with np.errstate(over="ignore", invalid="ignore"):
            spacing_mm = np.array(spacing) * space_scale
            origin_mm = (_LPS @ affine[:3, 3]) * space_scale
        ok = bool(np.all(np.isfinite(spacing_mm)) and np.all(np.isfinite(origin_mm)))
    if not ok:
        raise CorruptFileError(f"{path}: NIfTI {source} geometry is singular or not finite")
    time_scale = _TIME_UNITS.get(time, 1.0)
    dt = float(hdr["pixdim"][4]) * time_scale
    t0 = float(hdr["toffset"]) * time_scale if version else 0.0
    return {
        "spacing": tuple(float(s) for s in spacing_mm),
        "origin": tuple(float(o) for o in origin_mm),
        "direction": direction,
        "time_spacing": abs(dt) if math.isfinite(dt) and dt != 0 else 1.0,
        "time_origin": t0 if math.isfinite(t0) else 0.0,
        "units_known": space in _SPACE_UNITS and time in _TIME_UNITS and not units & ~0x3F,
    }


def _quaternion(rot: np.ndarray) -> tuple[float, float, float, float]:
    """(b, c, d, qfac) of an orthonormal RAS direction (nifti1_io ``mat44_to_quatern``)."""
    qfac = 1.0
    if np.linalg.det(rot) < 0:  # a left-handed grid: flip the third axis, record it in qfac
        qfac = -1.0
        rot = rot * np.array([1.0, 1.0, -1.0])
    (r11, r12, r13), (r21, r22, r23), (r31, r32, r33) = rot.tolist()
    a = r11 + r22 + r33 + 1.0
    if a > 0.5:
        a = 0.5 * math.sqrt(a)
        b, c, d = 0.25 * (r32 - r23) / a, 0.25 * (r13 - r31) / a, 0.25 * (r21 - r12) / a
    else:
        xd, yd, zd = 1.0 + r11 - (r22 + r33), 1.0 + r22 - (r11 + r33), 1.0 + r33 - (r11 + r22)
        if xd > 1.0:
            b = 0.5 * math.sqrt(xd)
            c, d, a = 0.25 * (r12 + r21) / b, 0.25 * (r13 + r31) / b, 0.25 * (r32 - r23) / b
        elif yd > 1.0:
            c = 0.5 * math.sqrt(yd)
            b, d, a = 0.25 * (r12 + r21) / c, 0.25 * (r23 + r32) / c, 0.25 * (r13 - r31) / c
        else:
            d = 0.5 * math.sqrt(zd)
            b, c, a = 0.25 * (r13 + r31) / d, 0.25 * (r23 + r32) / d, 0.25 * (r21 - r12) / d
        if a < 0:
            b, c, d = -b, -c, -d
    return b, c, d, qfac

