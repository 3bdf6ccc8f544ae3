"""``geometry-figure``: an oblique image drawn in LPS and in RAS, computed by mitk itself.

The image is generated, saved as NIfTI (which stores RAS) and loaded back, so the figure shows
what the library reads: index axes, spacing, direction and origin in LPS, and the same voxel at
its RAS position.  Drawn while the page is built (HTML builds only).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

DOCS = Path(__file__).resolve().parent.parent
GENERATED = DOCS / "_generated"

ANGLE_DEG = 30.0
SPACING = (0.9, 1.4, 3.0)
ORIGIN = (-20.0, 35.0, -12.0)
VOXEL = (30, 12, 2)  # (i, j, k), MITK order


def oblique_image():
    """A 3D image whose rows and columns run at 30 degrees to the patient's axes."""
    import numpy as np

    import mitk

    a = np.deg2rad(ANGLE_DEG)
    direction = np.array([[np.cos(a), -np.sin(a), 0.0],
                          [np.sin(a), np.cos(a), 0.0],
                          [0.0, 0.0, 1.0]])
    k, j, i = np.mgrid[0:5, 0:28, 0:44].astype(np.float32)
    pixels = (np.exp(-(((i - 22) / 12) ** 2 + ((j - 14) / 7) ** 2)) * 100
              + 20 * np.sin(i / 3.0) * (j < 6)).astype(np.float32)
    image = mitk.Image(pixels, spacing=SPACING, origin=ORIGIN, direction=direction)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "oblique.nii"
        image.save(path)
        return mitk.Image(path)


def draw(path: Path) -> dict:
    """Draw the figure into ``path``; returns the numbers quoted in its caption."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    image = oblique_image()
    i0, j0, k0 = VOXEL
    frame = image.array[k0]
    ny, nx = frame.shape
    jj, ii = np.mgrid[0:ny + 1, 0:nx + 1] - 0.5
    corners = np.stack([ii.ravel(), jj.ravel(), np.full(ii.size, float(k0))], axis=1)
    world = np.asarray(image.index_to_world(corners)).reshape(ny + 1, nx + 1, 3)
    lps_voxel = np.asarray(image.index_to_world(np.array([VOXEL], dtype=float)))[0]
    origin = np.asarray(image.origin)
    axes = np.asarray(image.direction) * np.asarray(image.spacing)  # columns: one index step
    to_ras = np.array([-1.0, -1.0, 1.0])

    fig, panels = plt.subplots(1, 2, figsize=(11, 5.2), layout="constrained")
    for ax, frame_name, flip in ((panels[0], "LPS", np.ones(3)), (panels[1], "RAS", to_ras)):
        gx, gy = world[..., 0] * flip[0], world[..., 1] * flip[1]
        ax.pcolormesh(gx, gy, frame, cmap="gray", shading="flat")
        o = origin * flip
        ax.plot(o[0], o[1], "o", color="#d62728")
        ax.annotate("origin = index (0, 0, 0)", (o[0], o[1]),
                    xytext=(6, -14) if frame_name == "LPS" else (8, 4),
                    textcoords="offset points", color="#d62728", fontsize=8)
        for column, name, colour in ((0, "i", "#ff7f0e"), (1, "j", "#2ca02c")):
            step = axes[:, column] * flip * 8
            ax.annotate("", xy=(o[0] + step[0], o[1] + step[1]), xytext=(o[0], o[1]),
                        arrowprops={"arrowstyle": "->", "color": colour, "lw": 2})
            ax.text(o[0] + step[0] * 1.1, o[1] + step[1] * 1.1,
                    f"{name}: 8 voxels x {image.spacing[column]:g} mm", color=colour, fontsize=8)
        v = lps_voxel * flip
        ax.plot(v[0], v[1], "s", markersize=9, markerfacecolor="none", color="#17becf", mew=2)
        ax.annotate(f"voxel (i, j, k) = {VOXEL}\n{frame_name} ({v[0]:.2f}, {v[1]:.2f}, "
                    f"{v[2]:.2f}) mm", (v[0], v[1]), xytext=(10, 10), textcoords="offset points",
                    color="#17becf", fontsize=8,
                    bbox={"facecolor": "black", "alpha": 0.6, "edgecolor": "none"})
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
        if frame_name == "LPS":
            ax.set_xlabel("x (mm), increasing towards the patient's left")
            ax.set_ylabel("y (mm), increasing towards posterior")
            ax.set_title("mitk, ITK, DICOM: LPS")
        else:
            ax.set_xlabel("x (mm), increasing towards the patient's right")
            ax.set_ylabel("y (mm), increasing towards anterior")
            ax.set_title("NIfTI, nibabel, 3D Slicer: RAS")
    fig.suptitle(f"Slice k = {k0} of an oblique image: rows turned {ANGLE_DEG:g} degrees about z")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return {"lps": lps_voxel, "ras": lps_voxel * to_ras, "spacing": image.spacing,
            "origin": image.origin, "direction": np.asarray(image.direction)}


class GeometryFigure(SphinxDirective):
    """The figure and a caption quoting the numbers it was drawn from."""

    def run(self) -> list[nodes.Node]:
        if self.env.app.builder.format != "html":
            return []
        GENERATED.mkdir(exist_ok=True)
        png = GENERATED / "geometry-lps-ras.png"
        numbers = draw(png)
        d = numbers["direction"]
        columns = ", ".join("(" + ", ".join(f"{x:.3f}" for x in d[:, c]) + ")" for c in range(3))
        figure = nodes.figure(classes=["geometry-figure"])
        figure += nodes.image(uri=f"/_generated/{png.name}",
                              alt="An oblique image in LPS and RAS coordinates")
        figure += nodes.caption(text=(
            "The same slice in both world frames. spacing = "
            f"{tuple(round(s, 3) for s in numbers['spacing'])} mm, origin (LPS) = "
            f"{tuple(round(o, 3) for o in numbers['origin'])} mm, direction columns = "
            f"{columns}. The marked voxel {VOXEL} is at LPS "
            f"{tuple(round(float(x), 2) for x in numbers['lps'])} and RAS "
            f"{tuple(round(float(x), 2) for x in numbers['ras'])}: the same point, with x and y "
            "negated. The image was saved as NIfTI (RAS on disk) and loaded back before drawing."))
        return [figure]
