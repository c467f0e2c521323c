"""Force-displacement curves of the classic fracture benchmarks (docs/benchmarks.md).

    python -m postprocess.benchmarks RUN_DIR [RUN_DIR ...] [--out PREFIX]

reads runs of `cases/benchmarks/` (single-edge-notched tension and shear, with whatever
model each run used; a run still going or stopped counts with what it has, marked so) and writes PREFIX.png (reaction force per unit thickness
against the top displacement, one panel per test, the published peak drawn as a marker)
and PREFIX.md (one row per run: model, DOFs, load steps, iterations, peak force and the
displacement where it is reached, the difference to the published peak, wall time).

Units as the benchmark papers give them: displacement in mm, force in kN for a specimen
1 mm thick (1 kN per mm of thickness = 1e6 N/m, the unit of ssbfrac's 2D reaction force).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from postprocess.history import accepted_rows, read_case, read_history, read_summary

#: published peaks: the load-displacement curves of Miehe, Hofacker & Welschinger, CMAME 199
#: (2010) 2765 (AT2 with the spectral split and a history field, ell = 0.015 mm) as read off
#: the paper's figures (digitised in PhaseFieldX 0.4,
#: examples/PhaseFieldFracture/reference_solutions/miehe_solution*.csv)
PUBLISHED = {
    "tension": {"peak_kN": 0.701, "at_mm": 5.55e-3, "source": "Miehe et al. (2010), tension test"},
    "shear": {"peak_kN": 0.531, "at_mm": 9.5e-3, "source": "Miehe et al. (2010), shear test"},
}
N_PER_M_TO_KN_PER_MM = 1e-6
UM_TO_MM = 1e-3


def test_of(case: dict) -> str:
    """'tension' or 'shear', from the loading direction of the run's case."""
    direction = case["loading"]["direction"]
    return "shear" if abs(direction[0]) > abs(direction[1]) else "tension"


def model_of(case: dict) -> str:
    fr = case["fracture"]
    if fr["model"] == "cohesive":
        return f"cohesive ({fr.get('softening', 'linear')})"
    split = fr.get("split", "none")
    return f"{fr['model']}, {'no split' if split == 'none' else split + ' split'}"


def run_record(run_dir: Path) -> dict:
    """The curve and the numbers of one benchmark run; a run that is not complete (no
    summary.json) gives what its history has so far, marked ``complete: False``."""
    summary = read_summary(run_dir)
    case = summary["case"] if summary is not None else read_case(run_dir)
    every = read_history(run_dir / "history.csv")
    h = accepted_rows(every, run_dir / "history.csv")
    u = h["displacement"] * UM_TO_MM
    f = h["reaction_force"] * N_PER_M_TO_KN_PER_MM
    k = int(np.argmax(f))
    test = test_of(case)
    pub = PUBLISHED[test]
    sharp = h["crack_length_sharp"]  # AT2 damages everywhere from the start: growth of the d = 0.5 crack
    growth = np.diff(sharp, prepend=0.0) > 1e-3 * max(float(sharp.max()), 1e-30)
    its = h["iterations"]
    return {
        "run": run_dir.name, "test": test, "model": model_of(case), "complete": summary is not None,
        "dofs": sum(summary["dofs"].values()) if summary else None, "u_mm": u, "f_kN": f,
        "steps": len(every["step"]) - 1, "rejected": int(np.sum(every["accepted"] == 0)),
        "iterations": int(np.sum(every["iterations"])), "newton": int(np.sum(every["newton_iterations"])),
        "median_growth_iterations": float(np.median(its[growth])) if growth.any() else float("nan"),
        "max_iterations": int(np.max(its)),
        "peak_kN": float(f[k]), "peak_at_mm": float(u[k]),
        "difference": float(f[k] / pub["peak_kN"] - 1.0),
        "solve_s": float(every["wall"][-1]),
    }


def table(records: list[dict]) -> str:
    head = ("| run | test | model | DOFs | steps (rejected) | sweeps + Newton iterations | "
            "sweeps per step with growth, median / max | peak force kN | at u mm | published kN | difference | "
            "solve s |")
    lines = [head, "|" + "---|" * 12]
    for r in records:
        pub = PUBLISHED[r["test"]]
        name = r["run"] if r["complete"] else f"{r['run']} (not complete: to u = {r['u_mm'][-1]:.5f} mm)"
        dofs = f"{r['dofs']:,}" if r["dofs"] else "-"
        lines.append(
            f"| {name} | {r['test']} | {r['model']} | {dofs} | {r['steps']} ({r['rejected']}) | "
            f"{r['iterations']:,} + {r['newton']:,} | {r['median_growth_iterations']:.0f} / {r['max_iterations']} | "
            f"{r['peak_kN']:.3f} | {r['peak_at_mm']:.5f} | {pub['peak_kN']:.3f} | {100 * r['difference']:+.1f} % | "
            f"{r['solve_s']:.0f} |")
    return "\n".join(lines) + "\n"


def figure(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tests = [t for t in PUBLISHED if any(r["test"] == t for r in records)]
    fig, axes = plt.subplots(1, len(tests), figsize=(5.2 * len(tests), 4.0), squeeze=False)
    for ax, test in zip(axes[0], tests):
        for r in (r for r in records if r["test"] == test):
            ax.plot(r["u_mm"], r["f_kN"], lw=1.4, label=f"{r['model']} ({r['run']})")
        pub = PUBLISHED[test]
        ax.plot([pub["at_mm"]], [pub["peak_kN"]], "k*", ms=11, label=f"published peak: {pub['source']}")
        ax.set_xlabel("top displacement (mm)")
        ax.set_ylabel("reaction force (kN, 1 mm thick)")
        ax.set_title(f"single-edge-notched {test}")
        ax.set_ylim(bottom=0.0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m postprocess.benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run directories of cases/benchmarks/ (complete or not)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks_curves"), help="prefix of the .png and .md written")
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
