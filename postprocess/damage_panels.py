"""Damage of several runs side by side, at their last field output.

    python -m postprocess.damage_panels OUT.png RUN_DIR [RUN_DIR ...]

One panel per run: the damage (0 white to 1 black) over the mesh, the non-damageable
phases (the particles) in green, titled with the run's model, split, ell and h from its
summary.json. Used for docs/model.md ("Why the cohesive default").
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from postprocess.fields import read_field_file
from postprocess.history import PostprocessError, read_summary


def title(run_dir: Path) -> str:
    summary = read_summary(run_dir) or {}
    case = summary.get("case") or {}
    fr, mesh = case.get("fracture", {}), case.get("geometry", {}).get("mesh", {})
    ell = (summary.get("failure_properties") or {}).get("electrolyte", {}).get("ell_m")
    parts = [fr.get("model", "?"), f"split {fr.get('split', '?')}"]
    if ell and mesh.get("size"):
        parts.append(f"h = ell / {ell / mesh['size']:.3g}")
    return ", ".join(parts)


def panels(out: Path, run_dirs: list[Path]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.tri as mtri

    fig, axes = plt.subplots(1, len(run_dirs), figsize=(3.6 * len(run_dirs), 3.9), squeeze=False)
    for ax, run in zip(axes[0], run_dirs):
        ff = read_field_file(run / "fields.h5")
        t = ff.times[-1]
        d, _ = ff.values("damage", t)
        phase, _ = ff.values("phase", t)
        tri = mtri.Triangulation(ff.points[:, 0], ff.points[:, 1], ff.cells)
        ax.tripcolor(tri, d, shading="gouraud", cmap="Greys", vmin=0, vmax=1)
        solid = phase != 1
        ax.tripcolor(mtri.Triangulation(ff.points[:, 0], ff.points[:, 1], ff.cells[solid]),
                     np.ones(int(solid.sum())), cmap="Greens", vmin=0, vmax=2)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title(run), fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=130)
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        print(__doc__)
        return 2
    try:
        panels(Path(argv[0]), [Path(a) for a in argv[1:]])
    except PostprocessError as exc:
        print(f"damage_panels: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
