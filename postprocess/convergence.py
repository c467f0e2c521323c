"""ell- and mesh-convergence of crack growth (docs/model.md, "Convergence").

    python -m postprocess.convergence SWEEP_DIR [--out PREFIX]

reads the complete runs of a sweep directory (cases/studies/convergence/sweep.yaml),
groups them by microstructure (packing seed), and writes PREFIX.png / PREFIX.md: the
sharp crack length against the particle volumetric strain for every ell and mesh, and a
table of the onset strain (first row with a crack of at least ONSET_LENGTH), the final
sharp crack length, the largest band-width ratio and the final sharp/regularised length
ratio, with the spreads that the convergence criteria judge:

* across ell (at h = ell / 4): onset within 0.25 % strain, final length within 10 %;
* across meshes (at the smallest ell): final length within 5 %;

the final lengths both sharp (half the d = 0.5 iso-line) and regularised (the crack
functional's length).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from postprocess.history import read_accepted_history, read_summary

#: a crack exists once the sharp length reaches this (um): 2 elements of the finest mesh
ONSET_LENGTH = 0.05


def first_crack(sharp) -> int | None:
    """Index of the first row whose sharp crack length reaches ONSET_LENGTH, or None."""
    cracked = np.flatnonzero(np.asarray(sharp) >= ONSET_LENGTH)
    return int(cracked[0]) if len(cracked) else None


def run_record(run_dir: Path) -> dict | None:
    """The numbers of one complete run, or None."""
    summary = read_summary(run_dir)
    if summary is None:
        return None
    case = summary.get("case") or {}
    h = read_accepted_history(run_dir / "history.csv")
    strain = np.abs(h["vol_strain"])
    sharp, reg = h["crack_length_sharp"], h["crack_length"]
    first = first_crack(sharp)
    fail = summary["failure_properties"]["electrolyte"]
    geo = case.get("geometry", {})
    return {
        "run": run_dir.name, "seed": geo.get("particles", {}).get("seed"),
        "ell_um": fail["ell_m"] * 1e6, "h_um": geo.get("mesh", {}).get("size", float("nan")) * 1e6,
        "strain": strain, "sharp": sharp, "regularised": reg,
        "onset_strain": float(strain[first]) if first is not None else float("nan"),
        "final_sharp": float(sharp[-1]), "final_regularised": float(reg[-1]),
        "band_width_ratio_max": float(np.max(h["band_width_ratio"])) if "band_width_ratio" in h else float("nan"),
        "length_ratio_final": float(sharp[-1] / reg[-1]) if reg[-1] > 0 else float("nan"),
        "wall_s": summary.get("wall_time_s"),
    }


def relative_spread(records: list[dict], key: str) -> float:
    """(largest - smallest) / mean of one number over several runs."""
    values = [r[key] for r in records]
    return (max(values) - min(values)) / np.mean(values)


def spreads(records: list[dict]) -> dict:
    """Per seed: onset spread (strain) and final-length spread (relative to the mean)
    across ell at h = ell / 4, and the final-length spread across meshes at the smallest ell."""
    out = {}
    for seed in sorted({r["seed"] for r in records}):
        rs = [r for r in records if r["seed"] == seed]
        quarter = [r for r in rs if abs(r["h_um"] / r["ell_um"] - 0.25) < 0.01]
        small = min(r["ell_um"] for r in rs)
        meshes = [r for r in rs if abs(r["ell_um"] - small) < 1e-9]
        entry = {}
        if len(quarter) >= 2:
            on = [r["onset_strain"] for r in quarter]
            entry["ell"] = {"ells": sorted(r["ell_um"] for r in quarter), "onset_spread": max(on) - min(on),
                            "final_spread_rel": relative_spread(quarter, "final_sharp"),
                            "final_regularised_spread_rel": relative_spread(quarter, "final_regularised")}
        if len(meshes) >= 2:
            entry["mesh"] = {"h": sorted(r["h_um"] for r in meshes),
                             "final_spread_rel": relative_spread(meshes, "final_sharp"),
                             "final_regularised_spread_rel": relative_spread(meshes, "final_regularised")}
        out[seed] = entry
    return out


def table(records: list[dict], sp: dict) -> str:
    lines = ["| seed | ell (um) | h (um) | onset strain (%) | final sharp length (um) | final regularised (um) | "
             "largest band-width ratio | final sharp / regularised | wall (s) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(records, key=lambda r: (r["seed"], -r["ell_um"], -r["h_um"])):
        lines.append(f"| {r['seed']} | {r['ell_um']:.3g} | {r['h_um']:.3g} | {100 * r['onset_strain']:.2f} | "
                     f"{r['final_sharp']:.2f} | {r['final_regularised']:.2f} | {r['band_width_ratio_max']:.2f} | "
                     f"{r['length_ratio_final']:.2f} | {r['wall_s']:.0f} |")
    lines.append("")
    for seed, e in sp.items():
        if "ell" in e:
            lines.append(f"- seed {seed}, ell = {', '.join(f'{v:g}' for v in e['ell']['ells'])} um at h = ell/4: onset "
                         f"spread {100 * e['ell']['onset_spread']:.2f} % strain, final length spread "
                         f"{100 * e['ell']['final_spread_rel']:.1f} % (sharp), "
                         f"{100 * e['ell']['final_regularised_spread_rel']:.1f} % (regularised)")
        if "mesh" in e:
            lines.append(f"- seed {seed}, smallest ell, h = {', '.join(f'{v:.3g}' for v in e['mesh']['h'])} um: final "
                         f"length spread {100 * e['mesh']['final_spread_rel']:.1f} % (sharp), "
                         f"{100 * e['mesh']['final_regularised_spread_rel']:.1f} % (regularised)")
    return "\n".join(lines) + "\n"


def figure(records: list[dict]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = sorted({r["seed"] for r in records})
    fig, axes = plt.subplots(1, len(seeds), figsize=(5.5 * len(seeds), 4.2), squeeze=False)
    for ax, seed in zip(axes[0], seeds):
        for r in sorted((r for r in records if r["seed"] == seed), key=lambda r: (-r["ell_um"], -r["h_um"])):
            line, = ax.plot(100 * r["strain"], r["sharp"], label=f"ell {r['ell_um']:.3g} um, h {r['h_um']:.3g} um")
            ax.plot(100 * r["strain"], r["regularised"], ls="--", color=line.get_color())
        ax.set_xlabel("particle volumetric strain (%)")
        ax.set_ylabel("crack length (um): sharp (solid), regularised (dashed)")
        ax.set_title(f"microstructure seed {seed}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m postprocess.convergence", description=__doc__.split("\n\n")[0])
    ap.add_argument("sweep_dir", type=Path)
    ap.add_argument("--out", type=Path, default=None, help="output prefix (default: SWEEP_DIR/convergence)")
    args = ap.parse_args(argv)
    runs = sorted(p for p in args.sweep_dir.iterdir() if p.is_dir()) if args.sweep_dir.is_dir() else []
    records = [r for r in (run_record(p) for p in runs) if r is not None]
    if not records:
        print(f"{args.sweep_dir}: no complete run")
        return 1
    prefix = args.out or args.sweep_dir / "convergence"
    prefix.parent.mkdir(parents=True, exist_ok=True)
    sp = spreads(records)
    Path(f"{prefix}.md").write_text(table(records, sp))
    figure(records).savefig(f"{prefix}.png", dpi=130)
    print(Path(f"{prefix}.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
