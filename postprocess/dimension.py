"""2D against 3D: a 3D run and 2D runs of its plane sections (docs/dimension.md).

    python -m postprocess.dimension RUN_3D RUN_2D [RUN_2D ...] [--out PREFIX]

reads a 3D run (e.g. of cases/bucci2017_3d.yaml) and 2D runs of sections of the same
microstructure (cases/dimension/, python -m meshes.section) and writes PREFIX.png (crack
density and damaged fraction against the lithiation, effective ionic conductivity and
voltage against the capacity) and PREFIX.md (one row per run). A run still going or
stopped counts with what it has, marked so.

The measures are those a 2D and a 3D run share:

* crack density, by stereology: a 3D crack of area S per volume V (S_V = S / V, 1/um)
  crosses a random plane in a trace of length L_A = (pi / 4) S_V per area (isotropic
  cracks; for cracks normal to the section plane the factor is 1). A 2D run measures
  L_A directly (crack length over the section's area). So a 2D run that predicts the
  3D cracks' traces has L_A near (pi / 4) S_V of the 3D run: the table gives both, and
  their ratio;
* the damaged fraction (d >= 0.9) of the electrolyte, and the dissipated energy per
  volume (J/m^3; a 2D run's energy is per unit thickness, over its area): the same
  quantity in 2D and 3D;
* the effective ionic conductivity of the composite relative to the electrolyte's
  (kappa_eff_rel), the capacity fraction at the end of the discharge and at the end, and
  the voltage.

Crack lengths and areas are the regularised ones (history column ``crack_length``).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from postprocess.history import accepted_rows, read_case, read_history, read_summary

#: crack trace length per area of a random plane section over crack area per volume
STEREOLOGY = math.pi / 4


def run_record(run_dir: Path) -> dict:
    summary = read_summary(run_dir)
    case = summary["case"] if summary is not None else read_case(run_dir)
    every = read_history(run_dir / "history.csv")
    h = accepted_rows(every, run_dir / "history.csv")
    size = [float(s) * 1e6 for s in case["geometry"]["size"]]  # um
    dim = len(size)
    measure = float(np.prod(size))  # um^2 (2D) or um^3 (3D)
    density = h["crack_length"] / measure  # L_A (2D) or S_V (3D), 1/um
    trace = density if dim == 2 else STEREOLOGY * density  # expected trace length per area
    # nJ/um (2D, per thickness) over um^2, or nJ over um^3 (3D): nJ/um^3 = 1e9 J/m^3
    energy = h["fracture_energy"] / measure * 1e9
    mode = h.get("mode", np.array(["discharge"] * len(h["x"])))
    discharge = np.flatnonzero(mode == "discharge")
    end_discharge = int(discharge[-1]) if discharge.size else len(h["x"]) - 1
    open_crack = np.flatnonzero(h["damaged_fraction"] > 0)
    return {
        "run": run_dir.name, "dim": dim, "complete": summary is not None,
        "dofs": sum(summary["dofs"].values()) if summary else None,
        "x": h["x"], "capacity": h.get("capacity_fraction", np.full(len(h["x"]), np.nan)),
        "voltage": h.get("voltage", np.full(len(h["x"]), np.nan)),
        "kappa": h.get("kappa_eff_rel", np.full(len(h["x"]), np.nan)), "mode": mode,
        "trace": trace, "damaged": h["damaged_fraction"], "energy": energy, "d_max": h["d_max"],
        "end_discharge": end_discharge,
        "onset_x": float(h["x"][open_crack[0]]) if open_crack.size else float("nan"),
        "wall_s": float(every["wall"][-1]),
    }


def table(records: list[dict]) -> str:
    head = ("| run | dim | DOFs | first open crack (d >= 0.9) at x | crack trace per area at the end of the discharge "
            "1/um | ratio to the 3D run | damaged fraction | dissipated energy kJ/m^3 | d_max | capacity at the end "
            "of the discharge | kappa_eff / kappa at the end of the discharge | at the end | wall s |")
    lines = [head, "|" + "---|" * 13]
    ref = next((r for r in records if r["dim"] == 3), None)
    for r in records:
        k = r["end_discharge"]
        ratio = r["trace"][k] / ref["trace"][ref["end_discharge"]] if ref is not None else float("nan")
        name = r["run"] if r["complete"] else f"{r['run']} (not complete: to x = {r['x'][-1]:.3f}, {r['mode'][-1]})"
        dofs = f"{r['dofs']:,}" if r["dofs"] else "-"
        lines.append(
            f"| {name} | {r['dim']}D | {dofs} | {r['onset_x']:.3f} | {r['trace'][k]:.3f} | {ratio:.2f} | "
            f"{r['damaged'][k]:.4f} | {r['energy'][k] / 1e3:.1f} | {r['d_max'][k]:.2f} | {r['capacity'][k]:.3f} | "
            f"{r['kappa'][k]:.3f} | {r['kappa'][-1]:.3f} | {r['wall_s']:.0f} |")
    return "\n".join(lines) + "\n"


def figure(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 2, figsize=(10.5, 7.8))
    for r in records:
        style = dict(lw=2.2, color="k") if r["dim"] == 3 else dict(lw=1.2)
        label = f"{r['dim']}D {r['run']}" + ("" if r["complete"] else " (not complete)")
        dis = slice(0, r["end_discharge"] + 1)
        ax[0, 0].plot(r["x"][dis], r["trace"][dis], label=label, **style)
        ax[0, 1].plot(r["x"][dis], r["damaged"][dis], label=label, **style)
        ax[1, 0].plot(r["capacity"], r["kappa"], label=label, **style)
        ax[1, 1].plot(r["capacity"], r["voltage"], label=label, **style)
    ax[0, 0].set_ylabel("crack trace per area (1/um)\n3D: (pi/4) x crack area per volume")
    ax[0, 1].set_ylabel("damaged fraction of the electrolyte (d >= 0.9)")
    for a in ax[0]:
        a.set_xlabel("mean lithiation x of the particles (discharge)")
    ax[1, 0].set_ylabel("kappa_eff / kappa of the electrolyte")
    ax[1, 1].set_ylabel("voltage (V)")
    for a in ax[1]:
        a.set_xlabel("capacity (fraction of the theoretical)")
    for a in ax.flat:
        a.grid(alpha=0.3)
    ax[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m postprocess.dimension", description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run directories: a 3D run and 2D runs of its sections")
    ap.add_argument("--out", type=Path, default=Path("dimension"), help="prefix of the .png and .md written")
    args = ap.parse_args(argv)
    for run in args.runs:
        if not (run / "history.csv").is_file():
            raise SystemExit(f"{run}: no history.csv: not an ssbfrac run directory")
    records = [run_record(run) for run in args.runs]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = table(records)
    args.out.with_suffix(".md").write_text(text)
    figure(records, args.out.with_suffix(".png"))
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
