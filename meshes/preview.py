"""Quick-look pictures of microstructures (matplotlib, no ParaView needed).

2D: the particles (with their coatings and periodic images), layers and ids. 3D: three
slices z = 1/4, 1/2, 3/4 of L_z, rasterised from the exact particle shapes.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch, Polygon, Rectangle  # noqa: E402

from meshes.geometry import Particle  # noqa: E402

COLORS = {"electrolyte": "#cfe3f3", "separator": "#9fb8cf", "collector_layer": "#b9b9b9", "coating": "#6cbf6c",
          "active": "#d9822b", "active_b": "#8a5fb0"}
LABELS = {"electrolyte": "electrolyte", "separator": "separator", "collector_layer": "collector layer",
          "coating": "coating", "active": "active material", "active_b": "active material B"}


def particles_from_info(info: dict) -> list[Particle]:
    return [Particle.from_dict(p) for p in info["packing"]["particles"]]


def _layout(info: dict):
    pk = info["packing"]
    box = np.asarray(pk["box"], float)
    region = pk.get("region") or [[0.0] * len(box), list(box)]
    periodic = pk.get("periodic") or [False] * len(box)
    return box, np.asarray(region[0], float), np.asarray(region[1], float), periodic


def _images(p: Particle, box, periodic) -> list[np.ndarray]:
    """Shifts at which p shows in the box (itself and its periodic images)."""
    reach = p.bounding_radius(outer=True)
    options = []
    for k in range(p.dim):
        opts = [0.0]
        if periodic[k]:
            if p.center[k] - reach < 0:
                opts.append(box[k])
            if p.center[k] + reach > box[k]:
                opts.append(-box[k])
        options.append(opts)
    grids = np.meshgrid(*options, indexing="ij")
    return [np.array(s) for s in zip(*(g.ravel() for g in grids))]


def draw_microstructure(ax, info: dict, label_ids: bool = False) -> None:
    """Draw a 2D microstructure of a mesh.json-like dict on ``ax``."""
    box, lo, hi, periodic = _layout(info)
    ax.add_patch(Rectangle((0, 0), box[0], box[1], facecolor=COLORS["electrolyte"], edgecolor="k", lw=1.0))
    if lo[0] > 0:
        ax.add_patch(Rectangle((0, 0), lo[0], box[1], facecolor=COLORS["separator"], edgecolor="k", lw=0.6))
    if hi[0] < box[0]:
        ax.add_patch(Rectangle((hi[0], 0), box[0] - hi[0], box[1], facecolor=COLORS["collector_layer"],
                               edgecolor="k", lw=0.6))
    clip = Rectangle((0, 0), box[0], box[1], transform=ax.transData)
    for p in particles_from_info(info):
        for shift in _images(p, box, periodic):
            if p.coating > 0:
                coat = Polygon(p.boundary_points(360, outer=True) + shift, closed=True, facecolor=COLORS["coating"],
                               edgecolor="k", lw=0.3)
                ax.add_patch(coat)
                coat.set_clip_path(clip)
            patch = Polygon(p.boundary_points(360) + shift, closed=True, facecolor=COLORS[p.material], edgecolor="k",
                            lw=0.6)
            ax.add_patch(patch)
            patch.set_clip_path(clip)
            c = np.asarray(p.center) + shift
            if label_ids and 0 <= c[0] <= box[0] and 0 <= c[1] <= box[1]:
                ax.text(c[0], c[1], str(p.id), ha="center", va="center", fontsize=6)
    ax.set_xlim(0, box[0])
    ax.set_ylim(0, box[1])
    ax.set_aspect("equal")
    ax.set_xlabel("x (um): separator -> collector")
    ax.set_ylabel("y (um)")


def phase_slice(info: dict, z: float, n: int = 300) -> tuple[np.ndarray, list[str]]:
    """Raster (n_y, n_x) of phase indices (into the returned names) of a 3D microstructure
    on the plane z."""
    box, lo, hi, periodic = _layout(info)
    names = list(COLORS)
    nx = n
    ny = max(2, int(round(n * box[1] / box[0])))
    xs = (np.arange(nx) + 0.5) * box[0] / nx
    ys = (np.arange(ny) + 0.5) * box[1] / ny
    X, Y = np.meshgrid(xs, ys)
    img = np.full(X.shape, names.index("electrolyte"))
    img[X < lo[0]] = names.index("separator")
    img[X > hi[0]] = names.index("collector_layer")
    pts = np.column_stack([X.ravel(), Y.ravel(), np.full(X.size, z)])
    flat = img.ravel()
    for p in particles_from_info(info):
        for shift in _images(p, box, periodic):
            c = np.asarray(p.center) + shift
            reach = p.bounding_radius(outer=True)
            if abs(c[2] - z) > reach:
                continue
            near = np.flatnonzero(np.all(np.abs(pts[:, :2] - c[:2]) <= reach, axis=1))
            q = Particle.from_dict({**p.to_dict(), "center": list(c)})
            if p.coating > 0:
                flat[near[q.contains(pts[near], outer=True)]] = names.index("coating")
            flat[near[q.contains(pts[near])]] = names.index(p.material)
    return flat.reshape(X.shape), names


def write_preview(info: dict, path: Path, title: str = "") -> Path:
    pk = info["packing"]
    mesh = info.get("mesh", {})
    fr = info.get("fractions", {}).get("active_of_composite", pk.get("fraction", float("nan")))
    head = (f"{title}\n{len(pk['particles'])} particles, AM fraction {fr:.3f} (mesh), "
            f"{mesh.get('cells', '?')} cells")
    present = {"electrolyte"} | {p.get("material", "active") for p in pk["particles"]}
    if any(p.get("coating") for p in pk["particles"]):
        present.add("coating")
    box, lo, hi, _ = _layout(info)
    if lo[0] > 0:
        present.add("separator")
    if hi[0] < box[0]:
        present.add("collector_layer")
    legend = [Patch(facecolor=COLORS[k], edgecolor="k", label=LABELS[k]) for k in COLORS if k in present]
    if info.get("dimension", 2) == 2:
        fig, ax = plt.subplots(figsize=(5.5, 5.5 * min(2.0, box[1] / box[0]) + 0.6), dpi=120)
        draw_microstructure(ax, info, label_ids=len(pk["particles"]) <= 150)
        ax.set_title(head, fontsize=9)
        ax.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=7, frameon=False)
        fig.tight_layout()
    else:
        fig, axes = plt.subplots(1, 3, figsize=(12, 4.9), dpi=110)
        cmap = ListedColormap(list(COLORS.values()))
        for ax, frac in zip(axes, (0.25, 0.5, 0.75)):
            img, _ = phase_slice(info, frac * box[2], n=400)
            ax.imshow(img, origin="lower", extent=(0, box[0], 0, box[1]), cmap=cmap, vmin=-0.5,
                      vmax=len(COLORS) - 0.5, interpolation="nearest")
            ax.set_title(f"z = {frac * box[2]:.2f} um", fontsize=9)
            ax.set_xlabel("x (um): separator -> collector")
            ax.set_ylabel("y (um)")
        fig.suptitle(head, fontsize=9)
        fig.legend(handles=legend, loc="lower center", ncol=len(legend), fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
