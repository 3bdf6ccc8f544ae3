"""``python -m mitk view FILE -o PNG``: axial, coronal and sagittal slices through the centre.

The panels show anatomical planes whatever the acquisition: the array axes are reordered and
flipped to the nearest LPS axes of the image's direction (no resampling, so an oblique image is
shown in its nearest planes), and each panel is labelled with the orientation letters at its
edges.  Panels follow the radiological convention: the patient's right on the viewer's left,
anterior (axial) or superior (coronal, sagittal) at the top, anterior on the left in sagittal.
"""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Panel", "anatomical_planes", "run_view"]

# Letters of the negative and positive end of each LPS axis (x: R->L, y: A->P, z: I->S).
_ENDS = (("R", "L"), ("A", "P"), ("I", "S"))


class Panel(NamedTuple):
    """One rendered plane: the 2D array exactly as drawn (row 0 at the top) and its labels."""

    #: ``"axial"``, ``"coronal"``, ``"sagittal"``, or ``"2D"`` for a 2D image.
    name: str
    #: ``(rows, columns[, channels])``: a view of the image (no resampling, no copy).
    pixels: np.ndarray
    #: Height over width of one pixel on screen (row spacing / column spacing).
    aspect: float
    #: Orientation letters at the top, bottom, left and right edges.
    letters: tuple[str, str, str, str]
    #: The slice index along the plane's normal, in the reoriented (LPS) volume.
    index: int


def _nearest_axes(direction: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """For index axes (i, j, k): the LPS world axis each lies nearest to, and its sign."""
    d = np.abs(direction)
    # The permutation carrying most of the direction's weight: a plain argmax per column could
    # pick one world axis twice for a strongly oblique image.
    best = max(itertools.permutations(range(3)), key=lambda p: sum(d[p[a], a] for a in range(3)))
    signs = tuple(1 if direction[best[a], a] >= 0 else -1 for a in range(3))
    return best, signs


def _to_lps(pixels: np.ndarray, direction: np.ndarray,
            spacing: tuple[float, float, float]) -> tuple[np.ndarray, tuple[float, ...]]:
    """The volume as a view with axes (S, P, L): increasing index = superior, posterior, left."""
    world_of, signs = _nearest_axes(direction)
    # NumPy axis of index axis a is 2 - a (arrays are (k, j, i)); world axis w goes to 2 - w.
    order = [0, 0, 0]
    for a in range(3):
        order[2 - world_of[a]] = 2 - a
    view = pixels.transpose(order + list(range(3, pixels.ndim)))
    for a in range(3):
        if signs[a] < 0:
            view = np.flip(view, axis=2 - world_of[a])
    world_spacing = [0.0, 0.0, 0.0]
    for a in range(3):
        world_spacing[world_of[a]] = spacing[a]
    return view, tuple(world_spacing)


def anatomical_planes(image: Any, time_step: int = 0) -> list[Panel]:
    """The panels ``view`` draws for ``image`` at ``time_step`` (views, no copies).

    Parameters
    ----------
    image : mitk.Image
    time_step : int
        The frame of a 4D image; 0 for 2D and 3D images.

    Returns
    -------
    list of Panel
        Axial, coronal and sagittal through the centre for 3D and 4D images; one panel for 2D.

    Raises
    ------
    mitk.TimeStepError
        ``time_step`` outside ``0 <= t < image.time_steps``.
    """
    pixels = image.as_numpy(time_step=time_step)
    if image.channels > 1 and not (image.channels in (3, 4) and pixels.dtype == np.uint8):
        pixels = np.linalg.norm(pixels.astype(np.float64), axis=-1)
    if pixels.dtype == np.bool_ or np.iscomplexobj(pixels):
        pixels = np.abs(pixels).astype(np.float32)
    direction = image.direction
    if image.ndim == 2:
        (rx, ry, _), signs = _nearest_axes(direction)
        rows = pixels if signs[1] > 0 else pixels[::-1]
        rows = rows if signs[0] > 0 else rows[:, ::-1]
        sx, sy, _ = image.spacing
        letters = (_ENDS[ry][0], _ENDS[ry][1], _ENDS[rx][0], _ENDS[rx][1])
        return [Panel("2D", rows, sy / sx, letters, 0)]
    lps, (sl, sp, ss) = _to_lps(pixels, direction, image.spacing)
    s, p, l = (n // 2 for n in lps.shape[:3])
    return [
        # Axial: rows anterior to posterior, columns right to left.
        Panel("axial", lps[s], sp / sl, ("A", "P", "R", "L"), s),
        # Coronal and sagittal: superior at the top, so the S axis is flipped for display.
        Panel("coronal", lps[::-1, p], ss / sl, ("S", "I", "R", "L"), p),
        Panel("sagittal", lps[::-1, :, l], ss / sp, ("S", "I", "A", "P"), l),
    ]


def _label(ax: Any, letters: tuple[str, str, str, str]) -> None:
    style = {"color": "yellow", "fontsize": 11, "fontweight": "bold", "transform": ax.transAxes}
    top, bottom, left, right = letters
    ax.text(0.5, 0.98, top, ha="center", va="top", **style)
    ax.text(0.5, 0.02, bottom, ha="center", va="bottom", **style)
    ax.text(0.02, 0.5, left, ha="left", va="center", **style)
    ax.text(0.98, 0.5, right, ha="right", va="center", **style)


def run_view(path: str, output: str, time_step: int = 0) -> int:
    """Render the anatomical planes of ``path`` (frame ``time_step`` if 4D) into the PNG ``output``.

    Raises
    ------
    mitk.UnsupportedFormatError
        matplotlib is not installed (``pip install 'mitk-core[view]'``).
    mitk.TimeStepError
        ``time_step`` is not a step of the image.
    """
    import mitk

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise mitk.UnsupportedFormatError(
            "view needs matplotlib: pip install 'mitk-core[view]'") from None
    image = mitk.Image.load(path)
    panels = anatomical_planes(image, time_step)
    sx, sy, sz = image.spacing
    step = ""
    if image.ndim == 4:
        at = image.time_geometry.time_step_to_time_point(time_step)
        step = f", time step {time_step} of 0..{image.time_steps - 1} (t = {at:g} ms)"
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4.4), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        data = panel.pixels
        ax.imshow(data, cmap="gray" if data.ndim == 2 else None, origin="upper",
                  aspect=panel.aspect, interpolation="nearest")
        _label(ax, panel.letters)
        ax.set_title(panel.name if panel.name == "2D" else f"{panel.name} (slice {panel.index})")
        ax.set_axis_off()
    fig.suptitle(f"{path}\nshape {image.shape}, spacing ({sx:g}, {sy:g}, {sz:g}) mm{step}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(output, dpi=80)
    plt.close(fig)
    print(f"wrote {output}" + (f" (time step {time_step})" if image.ndim == 4 else ""))
    return 0
