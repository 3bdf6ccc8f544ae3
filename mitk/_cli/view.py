"""``python -m mitk view FILE -o PNG``: three orthogonal slices through the centre."""

from __future__ import annotations

import numpy as np

__all__ = ["run_view"]


def run_view(path: str, output: str) -> int:
    """Render axial, coronal and sagittal slices of ``path`` into the PNG ``output``."""
    import mitk

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise mitk.UnsupportedFormatError(
            "view needs matplotlib: pip install 'mitk-core[view]'") from None
    image = mitk.Image.load(path)
    pixels = image.as_numpy(time_step=0 if image.ndim == 4 else None)
    if image.channels > 1:
        pixels = pixels if image.channels in (3, 4) and pixels.dtype == np.uint8 else \
            np.linalg.norm(pixels.astype(np.float64), axis=-1)
    if pixels.dtype == np.bool_ or np.iscomplexobj(pixels):
        pixels = np.abs(pixels).astype(np.float32)
    if image.ndim == 2:
        pixels = pixels[np.newaxis]
    sx, sy, sz = image.spacing
    z, y, x = (n // 2 for n in pixels.shape[:3])
    world = image.index_to_world((x, y, z))
    views = [
        (f"axial k={z}", pixels[z], sy / sx),
        (f"coronal j={y}", pixels[:, y], sz / sx),
        (f"sagittal i={x}", pixels[:, :, x], sz / sy),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.4))
    for ax, (title, data, aspect) in zip(axes, views):
        ax.imshow(data, cmap="gray" if data.ndim == 2 else None, origin="lower", aspect=aspect,
                  interpolation="nearest")
        ax.set_title(title)
        ax.set_axis_off()
    fig.suptitle(f"{path}\nshape {image.shape}, spacing ({sx:g}, {sy:g}, {sz:g}) mm, "
                 f"centre ({world[0]:.1f}, {world[1]:.1f}, {world[2]:.1f}) mm LPS", fontsize=9)
    fig.tight_layout()
    fig.savefig(output, dpi=80)
    plt.close(fig)
    print(f"wrote {output}")
    return 0
