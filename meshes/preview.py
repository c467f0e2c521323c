"""Quick-look picture of a 2D microstructure (matplotlib, no ParaView needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Circle, Polygon, Rectangle  # noqa: E402

from meshes.packing import Particle  # noqa: E402


def particles_from_info(info: dict) -> list[Particle]:
    return [Particle(p["id"], tuple(p["center"]), p["radius"], p["shape"], p["sides"], p["angle"])
            for p in info["packing"]["particles"]]


def draw_microstructure(ax, info: dict, facecolor="#d9822b", edgecolor="k", alpha=1.0, label_ids=False) -> None:
    box = info["packing"]["box"]
    ax.add_patch(Rectangle((0, 0), box[0], box[1], facecolor="#cfe3f3", edgecolor="k", lw=1.0))
    for p in particles_from_info(info):
        if p.shape == "polygon":
            patch = Polygon(p.vertices(), closed=True)
        else:
            patch = Circle(p.center[:2], p.radius)
        patch.set(facecolor=facecolor, edgecolor=edgecolor, lw=0.6, alpha=alpha)
        ax.add_patch(patch)
        if label_ids:
            ax.text(p.center[0], p.center[1], str(p.id), ha="center", va="center", fontsize=6)
    ax.set_xlim(0, box[0])
    ax.set_ylim(0, box[1])
    ax.set_aspect("equal")
    ax.set_xlabel("x (um): separator -> collector")
    ax.set_ylabel("y (um)")


def write_preview(info: dict, path: Path, title: str = "") -> Path:
    if info.get("dimension", 2) != 2:
        raise ValueError("previews are drawn for 2D microstructures only")
    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    draw_microstructure(ax, info, label_ids=True)
    pk = info["packing"]
    mesh = info.get("mesh", {})
    ax.set_title(f"{title}\n{len(pk['particles'])} particles, AM fraction {pk['fraction']:.3f}, "
                 f"{mesh.get('cells', '?')} cells", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
