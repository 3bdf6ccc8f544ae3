"""From frames to volumes: grouping, sorting along the normal, spacing, tilt and time.

Rules (SPEC section 12): frames are grouped by series, then split into stacks by orientation,
rows/columns, pixel spacing, samples per pixel and pixel type, and by what makes distinct volumes
(echo, diffusion b-value and direction, localizer image type, enhanced stack id).  A stack's
frames are sorted by their distance along the slice normal (row x column), never by file name
or InstanceNumber.  Frames sharing a position are time points, ordered by the first time key that
tells them apart at every position; the same number of frames must sit at every position.  The
slice step vector ``(last - first) / (n - 1)`` is the third direction column (so a gantry tilt is
kept as a shear) and its length the z spacing.  Frames without ImagePositionPatient or
ImageOrientationPatient are never stacked: each file is its own image.
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import CorruptFileError, UnsupportedFormatError
from ._frames import Frame
from ._values import pixel_format

__all__ = ["Volume", "volumes"]

# Orientation cosines closer than this are one orientation (positions carry ~1e-4 precision).
_ORIENTATION_TOL = 1e-3
# Distances along the normal closer than this (mm) are one slice position.
_POSITION_TOL = 1e-3
# A step whose sideways part is below this fraction of its length is along the normal: the rest
# is rounding of the stored positions.
_TILT_TOL = 1e-4

TIME_KEYS = ("TemporalPositionIndex", "TemporalPositionIdentifier", "TriggerTime",
             "AcquisitionNumber", "AcquisitionTime", "DimensionIndexValues", "InstanceNumber")


class Volume:
    """One image to be read: its frames in (t, z) order and the geometry they give.

    ``frames`` is t-major: frame ``t * nz + z``.  ``shape`` has no component axis.
    """

    def __init__(self, frames: list[Frame], shape: tuple, fmt, spacing, origin, direction,
                 problems: list[str]) -> None:
        self.frames = frames
        self.shape = shape
        self.format = fmt
        self.spacing = spacing
        self.origin = origin
        self.direction = direction
        self.problems = problems
        self.time_bounds: tuple | None = None
        self.time_origin = 0.0
        self.time_spacing = 1.0
        self.uneven = False     # stacked although its gaps differ (scan's report mode)
        self.tilted = False
        h = frames[0].header
        self.study = h.get("StudyInstanceUID", "")
        self.uid = h.get("SeriesInstanceUID", "")
        self.number = h.get("SeriesNumber")
        self.description = h.get("SeriesDescription", "")
        self.modality = h.get("Modality", "")

    @property
    def files(self) -> list[str]:
        """The files of the volume, each once, in slice (then time) order."""
        seen: dict[str, None] = {}
        nz = self.shape[-3] if len(self.shape) >= 3 else 1
        for z in range(nz):
            for f in self.frames[z::nz]:
                seen.setdefault(f.header.path, None)
        for f in self.frames:
            seen.setdefault(f.header.path, None)
        return list(seen)

    @property
    def time_steps(self) -> int:
        return self.shape[0] if len(self.shape) == 4 else 1

    def sort_key(self) -> tuple:
        number = self.number if self.number is not None else -1
        first = min((f.instance or 0) for f in self.frames)
        return (self.study, number, self.uid, first, self.frames[0].name)


def _cross(a, b):
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _unit(v):
    norm = math.sqrt(sum(x * x for x in v))
    return tuple(x / norm for x in v), norm


def _stack_key(f: Frame) -> tuple:
    h = f.header
    fmt = pixel_format(h)
    spacing = tuple(round(s, 4) for s in f.spacing) if f.spacing else None
    return (f.rows, f.columns, spacing, fmt.key, f.split)


def _check_orientation(f: Frame) -> tuple:
    o = f.orientation
    r, rn = _unit(o[:3])
    c, cn = _unit(o[3:])
    if not (0.5 < rn < 1.5 and 0.5 < cn < 1.5) or abs(sum(a * b for a, b in zip(r, c))) > 0.01:
        raise CorruptFileError(f"{f.name}: ImageOrientationPatient (0020,0037) is "
                               f"{list(o)}; expected two orthogonal unit vectors")
    return r, c


def _stacks(frames: list[Frame]) -> list[list[Frame]]:
    """Split one series' frames with geometry into stackable groups (stable order)."""
    groups: list[tuple[tuple, tuple, list[Frame]]] = []
    for f in frames:
        key = _stack_key(f)
        orient = f.orientation
        for gkey, gorient, members in groups:
            if gkey == key and max(abs(a - b) for a, b in zip(gorient, orient)) <= \
                    _ORIENTATION_TOL:
                members.append(f)
                break
        else:
            groups.append((key, orient, [f]))
    return [members for _, _, members in groups]


def _check_interleaved(stacks: list[list[Frame]]) -> None:
    """CorruptFileError when stacks that differ only in size, spacing or pixel type overlap.

    Such slices sit among each other at one orientation: they must be one volume, and cannot be.
    Stacks apart along the normal (a second, separate block) stay separate volumes.
    """
    spans = []
    for stack in stacks:
        f = stack[0]
        r, c = _check_orientation(f)
        n, _ = _unit(_cross(r, c))
        d = [sum(p * q for p, q in zip(g.position, n)) for g in stack]
        spans.append((f, n, min(d), max(d)))
    for i, (a, na, lo_a, hi_a) in enumerate(spans):
        for b, nb, lo_b, hi_b in spans[i + 1:]:
            if a.split != b.split or max(abs(x - y) for x, y in zip(a.orientation,
                                                                     b.orientation)) > \
                    _ORIENTATION_TOL:
                continue
            if lo_a <= hi_b + _POSITION_TOL and lo_b <= hi_a + _POSITION_TOL:
                fa, fb = pixel_format(a.header), pixel_format(b.header)
                raise CorruptFileError(
                    f"mixed slices in one volume: {a.name} ({a.rows} x {a.columns}, "
                    f"{fa.dtype}, spacing {a.spacing}) and {b.name} ({b.rows} x {b.columns}, "
                    f"{fb.dtype}, spacing {b.spacing}) share SeriesInstanceUID, orientation "
                    "and slice range but differ in Rows/Columns (0028,0010/0011), "
                    "PixelSpacing (0028,0030) or pixel type")


def _time_order(by_position: list[list[Frame]]) -> tuple[str | None, list[list[Frame]]]:
    """Order each position's frames by the first time key that separates them everywhere."""
    if len(by_position[0]) == 1:
        return None, by_position
    for key in TIME_KEYS:
        ok = True
        for group in by_position:
            values = [f.time.get(key) for f in group]
            if any(v is None for v in values) or len(set(values)) != len(values):
                ok = False
                break
        if ok:
            return key, [sorted(group, key=lambda f: f.time[key]) for group in by_position]
    group = next(g for g in by_position if len(g) > 1)
    raise CorruptFileError(
        "duplicate slice position: " + " and ".join(f.name for f in group[:2])
        + f" have the same ImagePositionPatient (0020,0032) {list(group[0].position)} and no "
        "time tag (TemporalPositionIdentifier, TriggerTime, AcquisitionNumber, AcquisitionTime, "
        "InstanceNumber) tells them apart")


def _times(key: str | None, ordered: list[list[Frame]]) -> list[float] | None:
    """Start time (ms) of each time point, or None when the files give no time."""
    steps = len(ordered[0])
    if key == "TriggerTime":
        return [min(g[t].time["TriggerTime"] for g in ordered) for t in range(steps)]
    clocks = [[g[t].clock for g in ordered] for t in range(steps)]
    if all(c is not None for row in clocks for c in row):
        starts = [min(row) for row in clocks]
        if all(b > a for a, b in zip(starts, starts[1:])):
            return [s - starts[0] for s in starts]
    return None


def _set_time(volume: Volume, times: list[float] | None, steps: int) -> None:
    if steps == 1:
        return
    if times is None:
        volume.problems.append("no acquisition times: time steps are numbered 0, 1, 2, ...")
        return
    durations = [b - a for a, b in zip(times, times[1:])]
    durations.append(durations[-1])
    if max(durations) - min(durations) <= 1e-6 * max(1.0, abs(durations[0])):
        volume.time_origin, volume.time_spacing = times[0], durations[0]
        return
    volume.time_bounds = tuple((t, t + d) for t, d in zip(times, durations))
    volume.time_origin, volume.time_spacing = times[0], durations[0]


def _runs(gaps: list[float], median: float) -> list[tuple[int, int]]:
    """Evenly spaced runs ``[start, stop)`` of slices: cut at every gap unlike the median."""
    runs, start = [], 0
    for i, gap in enumerate(gaps):
        if not _same_gap(gap, median):
            runs.append((start, i + 1))
            start = i + 1
    runs.append((start, len(gaps) + 1))
    return runs


def _same_gap(a: float, b: float) -> bool:
    return abs(a - b) <= max(0.01, 0.01 * abs(b))


def _stack_volumes(stack: list[Frame], tilt: str, uneven: str) -> list[Volume]:
    r, c = _check_orientation(stack[0])
    n, _ = _unit(_cross(r, c))
    stack = sorted(stack, key=lambda f: sum(p * q for p, q in zip(f.position, n)))
    # Positions: consecutive frames closer than the tolerance along the normal are one position.
    by_position: list[list[Frame]] = []
    last = None
    for f in stack:
        d = sum(p * q for p, q in zip(f.position, n))
        if last is not None and abs(d - last) <= _POSITION_TOL:
            by_position[-1].append(f)
        else:
            by_position.append([f])
            last = d
    counts = {len(g) for g in by_position}
    if len(counts) > 1:
        short = min(len(g) for g in by_position)
        group = next(g for g in by_position if len(g) > short)
        raise CorruptFileError(
            "duplicate slice position: " + " and ".join(f.name for f in group[:2])
            + f" have the same ImagePositionPatient (0020,0032) {list(group[0].position)}, but "
            f"other positions have {short} frame(s) each (time points must cover every slice)")
    key, ordered = _time_order(by_position)
    steps = len(ordered[0])
    d = [sum(p * q for p, q in zip(g[0].position, n)) for g in ordered]
    gaps = [b - a for a, b in zip(d, d[1:])]
    runs = [(0, len(d))]
    if gaps:
        median = sorted(gaps)[len(gaps) // 2]
        if any(not _same_gap(g, median) for g in gaps):
            if uneven == "error":
                lo, hi = min(gaps), max(gaps)
                where = "; ".join(
                    f"{g:.4g} mm between {ordered[i][0].name} and {ordered[i + 1][0].name}"
                    for i, g in enumerate(gaps) if not _same_gap(g, median))
                raise CorruptFileError(
                    f"uneven slice spacing {lo:.4g}-{hi:.4g} mm along the normal "
                    f"(ImagePositionPatient (0020,0032)); gaps: {where}. Pass uneven='split' "
                    "for one volume per evenly spaced run")
            if uneven == "split":
                runs = _runs(gaps, median)
    out = []
    for start, stop in runs:
        volume = _volume(ordered[start:stop], r, c, n, steps, key, tilt,
                         uneven_note=uneven == "report" or len(runs) > 1,
                         gaps=gaps)
        out.append(volume)
    return out


def _check_line(ordered: list[list[Frame]], p0, step) -> None:
    """CorruptFileError when a slice is off the line ``p0 + k * step`` (sideways jumps)."""
    tol = max(0.01, 0.01 * math.sqrt(sum(x * x for x in step)))
    for k, group in enumerate(ordered):
        p = group[0].position
        off = math.sqrt(sum((p[i] - p0[i] - k * step[i]) ** 2 for i in range(3)))
        if off > tol:
            raise CorruptFileError(
                f"{group[0].name}: ImagePositionPatient (0020,0032) {list(p)} is {off:.4g} mm "
                "off the line through the other slices (their even steps along the normal "
                "come with uneven sideways shifts)")


def _volume(ordered: list[list[Frame]], r, c, n, steps: int, key, tilt: str,
            uneven_note: bool, gaps: list[float]) -> Volume:
    first = ordered[0][0]
    nz = len(ordered)
    problems: list[str] = []
    ps = first.spacing or (1.0, 1.0)
    if first.spacing is None:
        problems.append("no PixelSpacing: in-plane spacing 1 mm")
    if nz > 1:
        p0, p1 = ordered[0][0].position, ordered[-1][0].position
        step = tuple((b - a) / (nz - 1) for a, b in zip(p0, p1))
        if not uneven_note:
            _check_line(ordered, p0, step)
        s, length = _unit(step)
        along = sum(a * b for a, b in zip(s, n))
        sideways = math.sqrt(max(0.0, 1.0 - along * along))
        if sideways <= _TILT_TOL:
            s = n
            length = length * along
        else:
            angle = math.degrees(math.asin(min(1.0, sideways)))
            if tilt == "error":
                raise UnsupportedFormatError(
                    f"gantry tilt {angle:.3g} deg: the slice step of {first.name} ... "
                    f"{ordered[-1][0].name} is not along the slice normal "
                    "(ImagePositionPatient (0020,0032)); pass tilt='shear' to keep it as a "
                    "sheared geometry")
            problems.append(f"gantry tilt {angle:.3g} deg (kept as a sheared geometry)")
        zs = length
    else:
        s = n
        zs = first.between or first.thickness or 1.0
    uneven = bool(gaps) and any(not _same_gap(g, sorted(gaps)[len(gaps) // 2]) for g in gaps)
    if uneven_note and uneven:
        problems.insert(0, f"uneven slice spacing {min(gaps):.4g}-{max(gaps):.4g} mm"
                        + (" (split into evenly spaced volumes)" if len(ordered) <
                           len(gaps) + 1 else ""))
    frames = [ordered[z][t] for t in range(steps) for z in range(nz)]
    fmt = pixel_format(first.header)
    plane = (first.rows, first.columns)
    if steps > 1:
        shape = (steps, nz) + plane
    elif nz > 1:
        shape = (nz,) + plane
    else:
        shape = plane
    direction = np.array([r, c, s], dtype=np.float64).T
    volume = Volume(frames, shape, fmt, (ps[1], ps[0], zs), tuple(first.position), direction,
                    problems)
    volume.uneven = uneven
    volume.tilted = any(p.startswith("gantry tilt") for p in problems)
    _set_time(volume, _times(key, ordered) if steps > 1 else None, steps)
    return volume


def _loose(frames: list[Frame]) -> list[Volume]:
    """Frames without per-frame positions: one image per file (its frames in stored order).

    A multi-frame file with one ImagePositionPatient and ImageOrientationPatient is placed
    there, its frames one SpacingBetweenSlices (else SliceThickness, else 1 mm) apart along the
    normal; without them the geometry is the identity.
    """
    by_file: dict[str, list[Frame]] = {}
    for f in frames:
        by_file.setdefault(f.header.path, []).append(f)
    out = []
    for group in by_file.values():
        first = group[0]
        ps = first.spacing or (1.0, 1.0)
        plane = (first.rows, first.columns)
        shape = (len(group),) + plane if len(group) > 1 else plane
        zs = first.between or first.thickness or 1.0
        if first.anchor is not None and first.orientation is not None:
            r, c = _check_orientation(first)
            n, _ = _unit(_cross(r, c))
            origin, direction = first.anchor, np.array([r, c, n], dtype=np.float64).T
            problems = ["one ImagePositionPatient for all frames: frames kept in stored order"]
        else:
            origin, direction = (0.0, 0.0, 0.0), np.eye(3)
            problems = ["no ImagePositionPatient/ImageOrientationPatient: identity geometry"]
        out.append(Volume(group, shape, pixel_format(first.header), (ps[1], ps[0], zs),
                          tuple(origin), direction, problems))
    return out


def volumes(frames: list[Frame], tilt: str = "shear", uneven: str = "error") -> list[Volume]:
    """The volumes that ``frames`` make, in SPEC order (study, series number, uid, group).

    ``uneven`` is "error", "split" or "report" (:func:`mitk.dicom.scan`: an uneven stack stays
    whole, with its gaps in ``problems``).
    """
    series: dict[tuple, list[Frame]] = {}
    for f in frames:
        h = f.header
        key = (h.get("StudyInstanceUID", ""), h.get("SeriesInstanceUID", "") or h.path)
        series.setdefault(key, []).append(f)
    out: list[Volume] = []
    for members in series.values():
        placed = [f for f in members if f.position is not None]
        out += _loose([f for f in members if f.position is None])
        stacks = _stacks(placed)
        _check_interleaved(stacks)
        for stack in stacks:
            out += _stack_volumes(stack, tilt, uneven)
    out.sort(key=Volume.sort_key)
    return out
