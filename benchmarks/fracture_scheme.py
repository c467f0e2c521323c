"""Fast fracture scheme against the plain staggered baseline, on the same case.

    python benchmarks/fracture_scheme.py [CASE] [--set key=value ...] [--out DIR]

Runs the case twice (separate processes, same mesh and load stepping): once with
``fracture.scheme.type=staggered`` and once with the default fast scheme, then prints
DOFs, iterations, elasticity solves (a Newton iteration of the coupled system counts as
one), wall time, peak memory, the ratios, and the relative L2 difference of the two
crack-length curves over the loading (interpolated on the baseline's times). Default:
the default case (cases/bucci2017.yaml, galvanostatic discharge, rest and charge) with
its electrolyte mesh refined from 0.125 to 0.09 um (about 40k DOFs; ``--native-mesh``
keeps the case's own mesh). Any case works, e.g. cases/bucci2017_prescribed.yaml (the
same cathode under a prescribed lithiation); the mesh refinement applies to the default
case only.
Both runs get an iteration cap of 5000 per step, so that the baseline completes, and the
same fixed steps (``fracture.adaptive.enabled=false``, ``growth_factor=1``): with adaptive
steps the plain scheme, needing more iterations per step, would take smaller steps and
sample the brittle crack jumps at other times, and the curves would differ by the sampling,
not by the schemes. ``--set fracture.adaptive.enabled=true`` compares with adaptive steps.
Targets: >= 5x fewer elasticity solves, >= 3x less wall time, curves within 3 %.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from solver.runs.writers import read_history  # noqa: E402


def run(case: str, out: Path, scheme: str, sets: list[str]) -> dict:
    cmd = [sys.executable, "-m", "solver", "run", case, "--out", str(out), "--overwrite", "--progress", "none",
           "--set", f"fracture.scheme.type={scheme}"]
    for s in sets:
        cmd += ["--set", s]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        raise SystemExit(f"{scheme} run failed:\n{r.stderr[-3000:]}")
    summary = json.loads((out / "summary.json").read_text())
    hist = read_history(out / "history.csv")
    acc = hist["accepted"] == 1
    # the time column orders both kinds of loading (prescribed path, galvanostatic cycling)
    return {"summary": summary, "load": hist["time"][acc], "crack": hist["crack_length"][acc]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", nargs="?", default=None)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--native-mesh", action="store_true", help="the default case with its own mesh (23k DOFs)")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "bench_fracture_scheme")
    args = ap.parse_args()
    refine = []
    if args.case is None:
        args.case = str(ROOT / "cases" / "bucci2017.yaml")
        if not args.native_mesh:
            refine = ["geometry.mesh.size=0.09e-6", "geometry.mesh.interface_size=0.072e-6"]
    # a high iteration cap for both, so that the plain staggered baseline completes
    sets = ["fracture.enabled=true", "fracture.scheme.max_iterations=5000", "fracture.adaptive.enabled=false",
            "fracture.adaptive.growth_factor=1"] + refine + args.sets
    base = run(args.case, args.out / "staggered", "staggered", sets)
    fast = run(args.case, args.out / "accelerated", "accelerated", sets)
    rows = []
    for name, r in (("staggered (baseline)", base), ("accelerated (default)", fast)):
        s = r["summary"]
        c = s["counters"]
        rows.append((name, sum(s["dofs"].values()), c["accepted_steps"], c["rejected_steps"], c["iterations"],
                     c["elastic_solves"] + c["newton_iterations"], s["timings_s"]["solve"],
                     max(s["peak_memory_mb_per_rank"])))
    print(f"case {args.case} {' '.join(sets)}")
    print(f"{'scheme':24s} {'DOFs':>8s} {'steps':>6s} {'rej.':>5s} {'iters':>7s} {'el.solves':>9s} "
          f"{'solve s':>8s} {'peak MB':>8s}")
    for row in rows:
        print(f"{row[0]:24s} {row[1]:8d} {row[2]:6d} {row[3]:5d} {row[4]:7d} {row[5]:9d} {row[6]:8.1f} {row[7]:8.0f}")
    fb = np.interp(base["load"], fast["load"], fast["crack"])
    scale = np.sqrt(np.mean(base["crack"] ** 2)) or 1.0
    l2 = float(np.sqrt(np.mean((fb - base["crack"]) ** 2)) / scale)
    print(f"elasticity solves ratio (baseline / fast): {rows[0][5] / max(rows[1][5], 1):.2f}  (target >= 5)")
    print(f"solve wall-time ratio   (baseline / fast): {rows[0][6] / max(rows[1][6], 1e-9):.2f}  (target >= 3)")
    mech = [r["summary"]["timings_s"].get("solve_mechanics") for r in (base, fast)]
    if None not in mech:  # a cycling run: the time of the mechanics and damage alone
        print(f"  of which mechanics and damage: {mech[0]:.1f} s / {mech[1]:.1f} s = {mech[0] / max(mech[1], 1e-9):.2f} "
              "(the electrochemistry costs the same in both)")
    print(f"crack-length curve relative L2 difference: {100 * l2:.2f} %  (target <= 3 %)")
    print(f"total wall time of the default scheme: {fast['summary']['wall_time_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
