"""Cost of a coupled galvanostatic run, split per physics.

    python benchmarks/cycling.py [CASE] [--ranks 2] [--set key=value ...] [--out DIR]

By default: the default case (cases/bucci2017.yaml: discharge, rest, charge with
electrochemistry, mechanics and phase-field fracture) on 2 MPI ranks. Prints the wall
time of the whole run and of each protocol segment, the solve time of each physics
(electrochemistry, mechanics and damage, effective conductivity) from summary.json and
the share of the electrochemistry in the solve time, with the step and solver counts.
Targets: one full charge (here the whole discharge-rest-charge protocol) in under
10 minutes on 2 cores; the electrochemistry at most 30 % of the solve time.
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", nargs="?", default=str(ROOT / "cases" / "bucci2017.yaml"))
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "bench_cycling")
    args = ap.parse_args()
    mpiexec = Path(sys.executable).parent / "mpiexec"
    cmd = [str(mpiexec) if mpiexec.exists() else "mpiexec", "-n", str(args.ranks), sys.executable, "-m", "solver",
           "run", args.case, "--out", str(args.out), "--overwrite", "--progress", "none"]
    for s in args.sets:
        cmd += ["--set", s]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        print(r.stdout[-2000:] + r.stderr[-3000:])
        return 1
    s = json.loads((args.out / "summary.json").read_text())
    if "cell" not in s:
        print(f"{args.case}: not a galvanostatic case (no electrochemistry)")
        return 1
    t = s["timings_s"]
    c = s["counters"]
    h = read_history(args.out / "history.csv")
    acc = h["accepted"] == 1
    print(f"case {args.case}, {s['ranks']} rank(s), DOFs {s['dofs']}, peak memory per rank "
          f"{max(s['peak_memory_mb_per_rank']):.0f} MB")
    print(f"steps: {c['accepted_steps']} accepted, {c['rejected_steps']} rejected; electrochemistry Newton "
          f"iterations {c['ec_newton_iterations']}; alternate-minimisation iterations {c['iterations']}, "
          f"monolithic Newton iterations {c['newton_iterations']}")
    wall, seg = h["wall"][acc], h["segment"][acc]
    start = 0.0
    for seginfo in s["cell"]["segments"]:
        k = seginfo["segment"]
        rows = seg == k
        end = float(wall[rows].max()) if rows.any() else start
        print(f"  segment {k} {seginfo['mode']:9s} ended by {seginfo['event']:8s} after {seginfo['duration_s']:7.0f} s "
              f"of cell time: {end - start:7.1f} s of wall time, capacity {seginfo['capacity_fraction']:.3f}")
        start = end
    solve = t["solve"]
    print(f"{'phase':28s} {'time (s)':>9s} {'share of solve':>15s}")
    for key in ("solve_electrochemistry", "solve_mechanics", "solve_effective_conductivity"):
        print(f"{key:28s} {t[key]:9.1f} {t[key] / solve:15.1%}")
    for key in ("mesh", "setup", "solve", "output", "total"):
        print(f"{key:28s} {t[key]:9.1f}")
    ec_share = t["solve_electrochemistry"] / solve
    final = float(np.asarray(h["crack_length"][acc])[-1]) if "crack_length" in h else float("nan")
    print(f"final crack length {final:.2f} um, effective conductivity {h['kappa_eff_rel'][acc][-1]:.3g} of kappa")
    print(f"target: whole protocol < 600 s -> {t['total']:.0f} s ({'met' if t['total'] < 600 else 'NOT met'}); "
          f"electrochemistry <= 30 % of the solve -> {ec_share:.0%} ({'met' if ec_share <= 0.3 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
