"""Fast fracture scheme against the plain staggered baseline, on the same case.

    python benchmarks/fracture_scheme.py [CASE] [--set key=value ...] [--out DIR] [--baseline REV]

Runs the case twice (separate processes, same mesh and load stepping): once as the
baseline and once with the default fast scheme of this checkout, then prints DOFs,
iterations (alternate-minimisation and Newton), elasticity solves (a Newton iteration of
the coupled system counts as one), the median and largest iterations per load step with
crack growth, wall time, the cost per DOF per iteration, peak memory, the ratios, and the
relative L2 difference of the two crack-length curves over the loading (interpolated on
the baseline's times). The baseline is the plain staggered scheme of this checkout, or,
with ``--baseline REV``, the default scheme of an earlier revision of ssbfrac (checked out
by git into a temporary work tree and run from there with the same settings): the
speed-up of the code between two versions. Default:
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
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from solver.runs.writers import read_history


def run(case: str, out: Path, scheme: str, sets: list[str], code: Path = ROOT) -> dict:
    """One run of ``case`` with the ssbfrac of the source tree ``code``."""
    cmd = [sys.executable, "-m", "solver", "run", case, "--out", str(out), "--overwrite", "--progress", "none",
           "--set", f"fracture.scheme.type={scheme}"]
    for s in sets:
        cmd += ["--set", s]
    env = dict(os.environ, PYTHONPATH=str(code))
    r = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=code, env=env)
    if r.returncode != 0:
        raise SystemExit(f"{scheme} run failed:\n{r.stderr[-3000:]}")
    summary = json.loads((out / "summary.json").read_text())
    hist = read_history(out / "history.csv")
    acc = hist["accepted"] == 1
    its = hist["iterations"] + hist["newton_iterations"]
    growing = acc & (np.diff(hist["crack_length"], prepend=0.0) > 0)
    # the time column orders both kinds of loading (prescribed path, galvanostatic cycling)
    return {"summary": summary, "load": hist["time"][acc], "crack": hist["crack_length"][acc],
            "growth_its": its[growing]}


@contextlib.contextmanager
def source_tree(rev: str | None):
    """This checkout, or a temporary git work tree of revision ``rev``."""
    if rev is None:
        yield ROOT
        return
    with tempfile.TemporaryDirectory(prefix="ssbfrac_baseline_") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev], check=True,
                       capture_output=True)
        try:
            yield tree
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False,
                           capture_output=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", nargs="?", default=None)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--native-mesh", action="store_true", help="the default case with its own mesh (23k DOFs)")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "bench_fracture_scheme")
    ap.add_argument("--baseline", metavar="REV", default=None,
                    help="baseline: the default scheme of this git revision (default: the staggered scheme here)")
    args = ap.parse_args()
    refine = []
    if args.case is None:
        args.case = str(ROOT / "cases" / "bucci2017.yaml")
        if not args.native_mesh:
            refine = ["geometry.mesh.size=0.09e-6", "geometry.mesh.interface_size=0.072e-6"]
    # a high iteration cap for both, so that the plain staggered baseline completes
    sets = ["fracture.enabled=true", "fracture.scheme.max_iterations=5000", "fracture.adaptive.enabled=false",
            "fracture.adaptive.growth_factor=1"] + refine + args.sets
    with source_tree(args.baseline) as code:
        if args.baseline is None:
            base_name, base = "staggered (baseline)", run(args.case, args.out / "staggered", "staggered", sets)
        else:
            base_name = f"{args.baseline[:12]} (baseline)"
            base = run(str(Path(args.case).resolve()), args.out / "baseline", "accelerated", sets, code)
    fast = run(args.case, args.out / "accelerated", "accelerated", sets)
    rows = []
    for name, r in ((base_name, base), ("accelerated (default)", fast)):
        s = r["summary"]
        c = s["counters"]
        dofs, its = sum(s["dofs"].values()), c["iterations"] + c["newton_iterations"]
        g = r["growth_its"]
        rows.append((name, dofs, c["accepted_steps"], c["rejected_steps"], its,
                     c["elastic_solves"] + c["newton_iterations"], s["timings_s"]["solve"],
                     max(s["peak_memory_mb_per_rank"]), float(np.median(g)) if len(g) else 0.0,
                     int(g.max()) if len(g) else 0, 1e6 * s["timings_s"]["solve"] / max(its, 1) / dofs))
    print(f"case {args.case} {' '.join(sets)}")
    print(f"{'scheme':24s} {'DOFs':>8s} {'steps':>6s} {'rej.':>5s} {'iters':>7s} {'el.solves':>9s} "
          f"{'solve s':>8s} {'peak MB':>8s} {'med.it':>6s} {'max.it':>6s} {'us/DOF/it':>9s}")
    for row in rows:
        print(f"{row[0]:24s} {row[1]:8d} {row[2]:6d} {row[3]:5d} {row[4]:7d} {row[5]:9d} {row[6]:8.1f} {row[7]:8.0f} "
              f"{row[8]:6.1f} {row[9]:6d} {row[10]:9.2f}")
    print("(iters: alternate-minimisation plus Newton iterations; med.it, max.it: per load step with crack growth)")
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
