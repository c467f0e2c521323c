"""Where the time of a fracture run goes, from PETSc's event log, now and at an earlier revision.

    python benchmarks/profile_fracture.py [CASE] [--set key=value ...] [--baseline REV] [--out DIR]

Runs CASE (default: the tension benchmark, cases/benchmarks/sent.yaml, loaded to 5e-3 mm in
30 fixed steps: the loading before the crack runs, where every step costs about the same)
with ``-log_view`` and splits the solve phase (summary.json, ``timings_s.solve``) into

* assembly: residual and Jacobian evaluations (SNESFunctionEval + SNESJacobianEval);
* analysis: the symbolic factorisations (MatLUFactorSym + MatCholFctrSym);
* factorisation: the numeric ones (MatLUFactorNum + MatCholFctrNum);
* triangular solves (MatSolve);
* other PETSc: the rest of the nonlinear solves (the reduced-space bookkeeping of the
  bound-constrained method, line searches, Krylov and AMG work);
* outside PETSc: Python, the scheme's own work and the measures (solve - SNESSolve);

and prints them with the iterations (alternate minimisation and Newton) and the cost per
DOF per iteration. With ``--baseline REV`` the same run of that git revision (a temporary
work tree, as in benchmarks/fracture_scheme.py) comes first and the ratios follow. One
process each, serial; the ratios are what to quote on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from fracture_scheme import source_tree  # noqa: E402
from scaling import petsc_events  # noqa: E402

DEFAULT_CASE = ROOT / "cases" / "benchmarks" / "sent.yaml"
DEFAULT_SETS = ["loading.path=[0.0, 5.0e-6]", "loading.steps=30", "fracture.adaptive.enabled=false",
                "output.fields_every=0"]
EVENTS = ("SNESSolve", "SNESFunctionEval", "SNESJacobianEval", "MatLUFactorSym", "MatCholFctrSym",
          "MatLUFactorNum", "MatCholFctrNum", "MatSolve")
PARTS = ("assembly", "analysis", "factorisation", "triangular solves", "other PETSc", "outside PETSc")


def profile(case: Path, out: Path, sets: list[str], code: Path) -> dict:
    """One run of ``case`` with the ssbfrac of ``code``; its time split (s) and counts."""
    log = out.with_suffix(".log_view.txt")
    cmd = [sys.executable, "-m", "solver", "run", str(case), "--out", str(out), "--overwrite", "--progress", "none"]
    for s in sets:
        cmd += ["--set", s]
    env = dict(os.environ, PYTHONPATH=str(code), OMP_NUM_THREADS="1",
               PETSC_OPTIONS=f"{os.environ.get('PETSC_OPTIONS', '')} -log_view :{log}")
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=code, env=env)
    if r.returncode != 0:
        raise SystemExit(f"run of {code} failed:\n{r.stderr[-3000:]}")
    s = json.loads((out / "summary.json").read_text())
    ev = petsc_events(log, EVENTS)
    solve = s["timings_s"]["solve"]
    split = {
        "assembly": ev.get("SNESFunctionEval", 0.0) + ev.get("SNESJacobianEval", 0.0),
        "analysis": ev.get("MatLUFactorSym", 0.0) + ev.get("MatCholFctrSym", 0.0),
        "factorisation": ev.get("MatLUFactorNum", 0.0) + ev.get("MatCholFctrNum", 0.0),
        "triangular solves": ev.get("MatSolve", 0.0),
    }
    split["other PETSc"] = ev.get("SNESSolve", 0.0) - sum(split.values())
    split["outside PETSc"] = solve - ev.get("SNESSolve", 0.0)
    c = s["counters"]
    its = c["iterations"] + c["newton_iterations"]
    return {"split": split, "solve": solve, "dofs": sum(s["dofs"].values()), "sweeps": c["iterations"],
            "newton": c["newton_iterations"], "us_per_dof_it": 1e6 * solve / max(its, 1) / sum(s["dofs"].values())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", nargs="?", type=Path, default=DEFAULT_CASE)
    ap.add_argument("--set", dest="sets", action="append", default=None, help="(default: the loading up to 5e-3 mm)")
    ap.add_argument("--baseline", metavar="REV", default=None, help="also profile this git revision, first")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "bench_profile")
    args = ap.parse_args()
    sets = DEFAULT_SETS if args.sets is None else args.sets
    case = args.case.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    if args.baseline:
        with source_tree(args.baseline) as code:
            rows.append((args.baseline[:12], profile(case, args.out / "baseline", sets, code)))
    rows.append(("present", profile(case, args.out / "present", sets, ROOT)))
    print(f"case {case} {' '.join(sets)}")
    print(f"{'':22s}" + "".join(f"{name:>16s}" for name, _ in rows) + ("   ratio" if len(rows) == 2 else ""))

    def line(label, values, fmt):
        text = f"{label:22s}" + "".join(f"{v:16{fmt}}" for v in values)
        if len(values) == 2:
            text += f"{values[0] / values[1]:8.2f}" if values[1] else ""
        print(text)

    line("DOFs", [r["dofs"] for _, r in rows], "d")
    line("sweeps", [r["sweeps"] for _, r in rows], "d")
    line("Newton iterations", [r["newton"] for _, r in rows], "d")
    line("solve s", [r["solve"] for _, r in rows], ".2f")
    for part in PARTS:
        line(f"  {part} s", [r["split"][part] for _, r in rows], ".2f")
    line("us per DOF per iter.", [r["us_per_dof_it"] for _, r in rows], ".2f")
    print("(iter.: sweeps plus Newton iterations; times of the slowest rank from PETSc's -log_view)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
