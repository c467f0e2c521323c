"""Figures and tables of the Bucci et al. (2017) study with measured properties (docs/bucci2017.md).

    python -m postprocess.bucci2017 STUDY_DIR [--out DIR]

reads the complete runs of the study's sweeps (``ssbfrac study cases/studies/bucci2017/study.yaml``
writes them to STUDY_DIR/<sweep>/) and writes, in DIR (default STUDY_DIR/figures):

* ``bucci2017_stiffness.png``: onset strain, final sharp crack length and damaged fraction
  against the electrolyte modulus, for the two ways of holding the failure properties;
* ``bucci2017_electrolytes.png``: per electrolyte (central properties, and the low and high
  ends of their ranges): lithium fraction at the first crack, crack length after the cycle,
  first-discharge capacity lost to cracking (against the same microstructure without
  fracture) and the final effective conductivity;
* ``bucci2017_fracture_map.png``: particle expansion x Gc, how many microstructures cracked
  and the mean crack length, with Bucci et al.'s "no fracture below 7.5 % with Gc > 4 J/m^2";
* ``bucci2017_mitigation.png``: crack length and onset of each mitigation against the base;
* ``bucci2017.md``: every number of the figures, as tables.

Each point is the mean over the microstructures (packing seeds) with its 95 % confidence
interval (Student t, n - 1 degrees of freedom). A crack exists once its sharp length (half
the length of the d = 0.5 iso-line) reaches :data:`postprocess.convergence.ONSET_LENGTH`;
the onset of an uncracked run is missing, and the tables say how many runs cracked.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import stats

from postprocess.convergence import ONSET_LENGTH, first_crack
from postprocess.history import read_accepted_history, read_summary

SEED = "geometry.particles.seed"
#: the claim of Bucci et al. (2017) that the fracture map is compared with
BUCCI_EXPANSION, BUCCI_GC = 0.075, 4.0


def run_numbers(run_dir: Path) -> dict | None:
    """The numbers of one complete run (None if it is not complete)."""
    summary = read_summary(run_dir)
    if summary is None or summary.get("status") != "complete":
        return None
    h = read_accepted_history(run_dir / "history.csv")
    n = len(h["step"])
    sharp = h.get("crack_length_sharp", np.zeros(n))  # absent without fracture
    first = first_crack(sharp)
    out = {
        "cracked": first is not None,
        "onset_strain": float(abs(h["vol_strain"][first])) if first is not None else np.nan,
        "onset_x": float(h["x"][first]) if first is not None else np.nan,
        "crack_sharp": float(sharp[-1]),
        "damaged_fraction": float(h.get("damaged_fraction", np.zeros(n))[-1]),
        "band_width_ratio_max": float(np.max(h.get("band_width_ratio", np.zeros(n)))),
        "wall_s": float(summary.get("wall_time_s") or np.nan),
        "stage_III": bool((summary.get("stages") or {}).get("stage_III_detected")),
        "length_ratio_final": float((summary.get("localisation") or {}).get("length_ratio_final") or np.nan),
    }
    out["corner_distance_ell"], out["corner_chance"] = (
        first_damage_to_corner(run_dir, summary["failure_properties"]["electrolyte"]["ell_m"] * 1e6)
        if first is not None else (np.nan, np.nan))
    if "capacity_fraction" in h:  # galvanostatic: the first discharge (of the theoretical capacity), last kappa_eff
        discharge = (h["mode"] == "discharge") & (h["cycle"] == h["cycle"][0])
        out["discharge_capacity"] = float(np.max(h["capacity_fraction"][discharge]))
        out["kappa_eff_rel"] = float(h["kappa_eff_rel"][-1])
    return out


def first_damage_to_corner(run_dir: Path, ell_um: float) -> tuple[float, float]:
    """(distance from the node of largest damage to the nearest particle corner at the first
    field output with damage above 0.05, in ell; the share of the electrolyte's nodes that
    lie within that distance of a corner, i.e. the chance of being as close at random)."""
    from meshes.geometry import Particle
    from postprocess.fields import read_field_file

    info = json.loads((run_dir / "mesh.json").read_text())
    corners = np.concatenate([Particle.from_dict(p).vertices() for p in info["packing"]["particles"]])
    ff = read_field_file(run_dir / "fields.h5")
    for t in ff.times:
        d, _ = ff.values("damage", t)
        if d.max() > 0.05:
            break
    else:
        return np.nan, np.nan

    def to_corner(points):
        return np.min(np.linalg.norm(points[:, None, :2] - corners[None, :, :2], axis=2), axis=1)

    phase, _ = ff.values("phase", t)
    electrolyte = np.unique(ff.cells[phase == 1])
    first = float(to_corner(ff.points[[int(np.argmax(d))]])[0])
    return first / ell_um, float(np.mean(to_corner(ff.points[electrolyte]) <= first))


def sweep_records(sweep_dir: Path) -> list[dict]:
    """One record per complete run: its parameters (runs.json) and its numbers."""
    runs_json = sweep_dir / "runs.json"
    if not runs_json.is_file():
        return []
    runs = json.loads(runs_json.read_text())
    records = []
    for name, info in runs.items():
        numbers = run_numbers(sweep_dir / name)
        if numbers is not None:
            records.append({"run": name, **(info.get("parameters") or {}), **numbers})
    return records


def mean_ci(values) -> tuple[float, float, int]:
    """(mean, half-width of the 95 % confidence interval, n) of the finite values."""
    v = np.asarray([x for x in values if np.isfinite(x)], float)
    if len(v) == 0:
        return np.nan, np.nan, 0
    if len(v) == 1:
        return float(v[0]), np.nan, 1
    return float(v.mean()), float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))), len(v)


def group(records: list[dict], key) -> dict:
    """{key(record): [records]} in first-seen order."""
    out: dict = {}
    for r in records:
        out.setdefault(key(r), []).append(r)
    return out


def fmt(m: float, ci: float, digits: int = 2) -> str:
    if not np.isfinite(m):
        return "-"
    return f"{m:.{digits}f}" + (f" +/- {ci:.{digits}f}" if np.isfinite(ci) else "")


def family(fracture: dict) -> str:
    return "Gc + strength held" if fracture.get("Gc") is not None else "K_Ic + strength held"


# --------------------------------------------------------------------------- the four parts
METRICS = [("onset_strain", "onset: particle vol. strain (-)", 4), ("crack_sharp", "final crack length (um)", 1),
           ("damaged_fraction", "damaged fraction (d >= 0.9)", 3)]


def stiffness(records: list[dict], plt, out: Path) -> list[str]:
    lines = ["## Stiffness", "", "| failure properties | E_SE (GPa) | cracked | onset strain | crack length (um) "
             "| damaged fraction | stage III |", "|---|---|---|---|---|---|---|"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for fam, rs in group(records, lambda r: family(r["materials.electrolyte.fracture"])).items():
        by_e = group(sorted(rs, key=lambda r: r["materials.electrolyte.E"]), lambda r: r["materials.electrolyte.E"])
        es = np.array(list(by_e)) / 1e9
        for ax, (col, label, digits) in zip(axes, METRICS):
            m = np.array([mean_ci(r[col] for r in g)[:2] for g in by_e.values()])
            ax.errorbar(es, m[:, 0], yerr=m[:, 1], marker="o", capsize=3, label=fam)
            ax.set(xscale="log", xlabel="electrolyte E (GPa)", ylabel=label)
            ax.set_xticks(es, [f"{e:g}" for e in es], minor=False)
            ax.minorticks_off()
        for e, g in by_e.items():
            cells = [fmt(*mean_ci(r[c] for r in g)[:2], d) for c, _, d in METRICS]
            lines.append(f"| {fam} | {e / 1e9:g} | {sum(r['cracked'] for r in g)}/{len(g)} | " + " | ".join(cells)
                         + f" | {sum(r['stage_III'] for r in g)}/{len(g)} |")
    axes[0].legend(fontsize=8)
    fig.suptitle("NMC811 in an electrolyte of modulus E (failure properties of the 75Li2S-25P2S5 glass)", fontsize=10)
    _save(fig, out / "bucci2017_stiffness.png", plt)
    return lines


def electrolytes(records: list[dict], intact: list[dict], plt, out: Path) -> list[str]:
    reference = {(r["materials.electrolyte"]["name"], r[SEED]): r["discharge_capacity"] for r in intact}
    for r in records:
        base = r["materials.electrolyte"]["name"].replace("-low", "").replace("-high", "")
        r["base"] = base
        ref = reference.get((base, r[SEED]))
        r["capacity_lost"] = ref - r["discharge_capacity"] if ref is not None else np.nan
    cols = [("onset_x", "lithium fraction x at the first crack", 3), ("crack_sharp", "crack length after the cycle (um)", 1),
            ("capacity_lost", "1st discharge: capacity lost to cracks (of theoretical)", 4), ("kappa_eff_rel", "final kappa_eff / kappa", 3)]
    lines = ["## Electrolytes (galvanostatic cycle)", "",
             "| electrolyte | cracked | x at first crack | crack length (um) | capacity lost | kappa_eff / kappa "
             "| capacity without fracture |", "|---|---|---|---|---|---|---|"]
    names = list(group(records, lambda r: r["materials.electrolyte"]["name"]))
    by_name = group(records, lambda r: r["materials.electrolyte"]["name"])
    bases = list(dict.fromkeys(r["base"] for r in records))
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.8))
    for ax, (col, label, _) in zip(axes, cols):
        for i, b in enumerate(bases):
            m, ci, _ = mean_ci(r[col] for r in by_name.get(b, []))
            ax.errorbar([i], [m], yerr=[ci], marker="o", capsize=4, color="C0")
            for suffix, marker in (("-low", "v"), ("-high", "^")):
                g = by_name.get(b + suffix)
                if g:
                    ax.plot([i + 0.15], [mean_ci(r[col] for r in g)[0]], marker, color="C1")
        ax.set_xticks(range(len(bases)), bases, rotation=20, fontsize=8)
        ax.set_ylabel(label, fontsize=9)
    axes[0].plot([], [], "v", color="C1", label="low end of the ranges")
    axes[0].plot([], [], "^", color="C1", label="high end")
    axes[0].legend(fontsize=7)
    _save(fig, out / "bucci2017_electrolytes.png", plt)
    for n in names:
        g = by_name[n]
        cells = [fmt(*mean_ci(r[c] for r in g)[:2], d) for c, _, d in cols]
        ref = [reference[(r["base"], r[SEED])] for r in g if (r["base"], r[SEED]) in reference]
        lines.append(f"| {n} | {sum(r['cracked'] for r in g)}/{len(g)} | " + " | ".join(cells)
                     + f" | {fmt(*mean_ci(ref)[:2], 3)} |")
    return lines


def fracture_map(records: list[dict], plt, out: Path) -> list[str]:
    exps = sorted({r["materials.active.expansion"] for r in records})
    gcs = sorted({r["materials.electrolyte.fracture"]["Gc"] for r in records})
    cell = group(records, lambda r: (r["materials.active.expansion"], r["materials.electrolyte.fracture"]["Gc"]))
    length = np.full((len(gcs), len(exps)), np.nan)
    lines = ["## Fracture map (E_SE = 18.5 GPa, strength 116 MPa)", "",
             "| expansion | Gc (J/m^2) | cracked | onset strain | crack length (um) |", "|---|---|---|---|---|"]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for (e, gc), g in sorted(cell.items()):
        i, j = gcs.index(gc), exps.index(e)
        length[i, j] = mean_ci(r["crack_sharp"] for r in g)[0]
        ax.text(j, i, f"{sum(r['cracked'] for r in g)}/{len(g)}", ha="center", va="center", color="w", fontsize=9)
        lines.append(f"| {e:g} | {gc:g} | {sum(r['cracked'] for r in g)}/{len(g)} | "
                     f"{fmt(*mean_ci(r['onset_strain'] for r in g)[:2], 4)} | {fmt(*mean_ci(r['crack_sharp'] for r in g)[:2], 1)} |")
    im = ax.imshow(length, origin="lower", cmap="viridis", aspect="auto")
    fig.colorbar(im, ax=ax, label="mean final crack length (um)")
    ax.set_xticks(range(len(exps)), [f"{100 * e:g}" for e in exps])
    ax.set_yticks(range(len(gcs)), [f"{g:g}" for g in gcs])
    ax.set(xlabel="particle volume expansion (%)", ylabel="electrolyte Gc (J/m^2)",
           title="cracked microstructures / all (labels)")
    # Bucci et al.'s safe region: expansion below 7.5 % and Gc above 4 J/m^2
    if exps[0] <= BUCCI_EXPANSION <= exps[-1] and gcs[0] <= BUCCI_GC <= gcs[-1]:  # else it is not on the map
        xe = np.interp(BUCCI_EXPANSION, exps, range(len(exps)))
        yg = np.interp(BUCCI_GC, gcs, range(len(gcs)))
        ax.plot([-0.5, xe, xe], [yg, yg, len(gcs) - 0.5], "r--", label="Bucci et al.: no fracture (upper left)")
        ax.legend(fontsize=7, loc="lower right")
    _save(fig, out / "bucci2017_fracture_map.png", plt)
    return lines


def mitigation(records: list[dict], base: list[dict], plt, out: Path) -> list[str]:
    """Each variant against the base case. The lithium fraction at the first crack compares
    variants whose particles swell differently (a blend's mean volumetric strain mixes
    swelling and shrinking particles); the onset strain is the particles' mean."""
    groups = {"base (NMC811, glass)": base, **group(records, lambda r: r["variant"])}
    cols = [("onset_x", "lithium fraction x at the first crack", 3), *METRICS]
    lines = ["## Mitigation", "", "| variant | cracked | x at first crack | onset strain | crack length (um) "
             "| damaged fraction |", "|---|---|---|---|---|---|"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, (col, label, _) in zip(axes, (cols[0], cols[2])):
        for i, g in enumerate(groups.values()):
            m, ci, _ = mean_ci(r[col] for r in g)
            ax.errorbar([i], [m], yerr=[ci], marker="o", capsize=4, color="C0")
        ax.set_xticks(range(len(groups)), list(groups), rotation=30, fontsize=8, ha="right")
        ax.set_ylabel(label)
    _save(fig, out / "bucci2017_mitigation.png", plt)
    for name, g in groups.items():
        cells = [fmt(*mean_ci(r[c] for r in g)[:2], d) for c, _, d in cols]
        lines.append(f"| {name} | {sum(r['cracked'] for r in g)}/{len(g)} | " + " | ".join(cells) + " |")
    return lines


def corners(rec: dict) -> list[str]:
    """Where the first damage appears, over every cracked run of the prescribed sweeps."""
    rs = [r for name in ("stiffness", "fracture_map", "mitigation") for r in rec.get(name, [])
          if r["cracked"] and np.isfinite(r["corner_distance_ell"])]
    if not rs:
        return []
    dist = np.array([r["corner_distance_ell"] for r in rs])
    chance = np.array([r["corner_chance"] for r in rs])
    return ["## Where the first damage appears (cracked runs, prescribed lithiation)", "",
            f"{len(rs)} runs: node of largest damage at the first field output with d > 0.05 at a median "
            f"{np.median(dist):.2f} ell from the nearest particle corner (90 % of runs within "
            f"{np.percentile(dist, 90):.2f} ell, largest {dist.max():.2f} ell); a point of the electrolyte "
            f"taken at random would be that close in {100 * np.median(chance):.0f} % of cases (median).", ""]


def cost(rec: dict) -> list[str]:
    """CPU time of the complete runs of each sweep (one rank each)."""
    lines = ["## Cost (complete runs, one rank each)", "", "| sweep | runs | CPU time (h) | median per run (s) "
             "| longest (s) |", "|---|---|---|---|---|"]
    for name, records in rec.items():
        wall = np.array([r["wall_s"] for r in records])
        if len(wall):
            lines.append(f"| {name} | {len(wall)} | {wall.sum() / 3600:.2f} | {np.median(wall):.0f} | {wall.max():.0f} |")
    return lines


def localisation(rec: dict) -> list[str]:
    """Band-width ratio (d >= 0.9 area / sharp length, over the 1D profile's width) and the
    final sharp / regularised crack length ratio of the runs that cracked, per sweep."""
    lines = ["## Localisation (cracked runs)", "", "| sweep | cracked runs | largest band-width ratio (any output) "
             "| final sharp / regularised length: median (min-max) |", "|---|---|---|---|"]
    for name, records in rec.items():
        rs = [r for r in records if r["cracked"]]
        if not rs:
            continue
        ratio = np.array([r["length_ratio_final"] for r in rs])
        lines.append(f"| {name} | {len(rs)} | {max(r['band_width_ratio_max'] for r in rs):.2f} | "
                     f"{np.nanmedian(ratio):.2f} ({np.nanmin(ratio):.2f}-{np.nanmax(ratio):.2f}) |")
    return lines


def _save(fig, path: Path, plt) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    print(f"  {path}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m postprocess.bucci2017", description=__doc__.split("\n\n")[0])
    parser.add_argument("study_dir", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="figure directory (default STUDY_DIR/figures)")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = args.out or args.study_dir / "figures"
    out.mkdir(parents=True, exist_ok=True)
    rec = {name: sweep_records(args.study_dir / f"bucci2017_{name}") for name in
           ("stiffness", "electrolytes", "electrolytes_intact", "fracture_map", "mitigation")}
    lines = ["# Bucci et al. (2017) study with measured properties: numbers", "",
             f"Mean +/- 95 % confidence interval over the microstructures; a crack once its sharp length "
             f">= {ONSET_LENGTH} um.", ""]
    if rec["stiffness"]:
        lines += stiffness(rec["stiffness"], plt, out) + [""]
    if rec["electrolytes"]:
        lines += electrolytes(rec["electrolytes"], rec["electrolytes_intact"], plt, out) + [""]
    if rec["fracture_map"]:
        lines += fracture_map(rec["fracture_map"], plt, out) + [""]
    if rec["mitigation"]:
        base = [r for r in rec["stiffness"] if r["materials.electrolyte.E"] == 18.5e9
                and family(r["materials.electrolyte.fracture"]).startswith("K_Ic")]
        lines += mitigation(rec["mitigation"], base, plt, out) + [""]
    lines += corners(rec) + localisation(rec) + [""] + cost(rec) + [""]
    (out / "bucci2017.md").write_text("\n".join(lines))
    print(f"  {out / 'bucci2017.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
