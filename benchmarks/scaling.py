"""Strong scaling of a run from 1 to N MPI ranks (default 2), with the time per phase.

    python benchmarks/scaling.py [CASE] [--ranks 1 2] [--set key=value ...]

By default: the default cathode under a prescribed lithiation (cases/bucci2017_prescribed.yaml) without fracture, refined to more than 200k displacement
DOFs (element size 0.025 um), 20 load steps. Each rank count runs in its own `mpiexec`;
the script prints the time of each phase (mesh, set-up, solve, output) from summary.json,
the split of the solve phase into assembly (residual and Jacobian evaluations) and linear
solves (Krylov iterations, preconditioner set-up included) from PETSc's own event log
(``-log_view``, through the PETSC_OPTIONS environment variable), the peak memory of each
rank, and the speed-up of the solve phase against the first rank count.
Target: >= 1.6 from 1 to 2 ranks in the solve phase.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SETS = ["fracture.enabled=false", "geometry.mesh.size=0.025e-6", "geometry.mesh.interface_size=0.025e-6",
                "geometry.mesh.particle_size=0.025e-6", "loading.steps=20", "output.fields_every=0"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", nargs="?", default=str(ROOT / "cases" / "bucci2017_prescribed.yaml"))
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--set", dest="sets", action="append", default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "bench_scaling")
    args = ap.parse_args()
    sets = DEFAULT_SETS if args.sets is None else args.sets
    mpiexec = Path(sys.executable).parent / "mpiexec"
    rows = []
    for n in args.ranks:
        out = args.out / f"np{n}"
        cmd = [str(mpiexec) if mpiexec.exists() else "mpiexec", "-n", str(n), sys.executable, "-m", "solver", "run",
               args.case, "--out", str(out), "--overwrite", "--progress", "none"]
        for s in sets:
            cmd += ["--set", s]
        log = args.out / f"petsc_log_np{n}.txt"
        env = dict(os.environ, PETSC_OPTIONS=f"{os.environ.get('PETSC_OPTIONS', '')} -log_view :{log}")
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
        if r.returncode != 0:
            raise SystemExit(f"{n} ranks failed:\n{r.stderr[-3000:]}")
        s = json.loads((out / "summary.json").read_text())
        rows.append((n, sum(s["dofs"].values()), s["timings_s"], s["peak_memory_mb_per_rank"], petsc_events(log)))
    print(f"case {args.case} {' '.join(sets)}")
    print(f"{'ranks':>5s} {'DOFs':>9s} {'mesh s':>7s} {'setup s':>8s} {'solve s':>8s} {'output s':>8s} "
          f"{'total s':>8s} {'speed-up':>8s}  peak MB per rank")
    base = rows[0][2]["solve"]
    for n, dofs, t, mem, _ in rows:
        print(f"{n:5d} {dofs:9d} {t['mesh']:7.1f} {t['setup']:8.1f} {t['solve']:8.1f} {t['output']:8.1f} "
              f"{t['total']:8.1f} {base / t['solve']:8.2f}  {', '.join(f'{m:.0f}' for m in mem)}")
    print("solve phase from PETSc's log (s, slowest rank): assembly = residual + Jacobian evaluations, "
          "linear = Krylov solves, preconditioner set-up included (also shown alone)")
    print(f"{'ranks':>5s} {'assembly':>9s} {'linear':>8s} {'PC setup':>9s} {'speed-up asm':>13s} {'speed-up lin':>13s}")
    ev0 = rows[0][4]
    for n, _, _, _, ev in rows:
        asm, lin = ev.get("SNESFunctionEval", 0) + ev.get("SNESJacobianEval", 0), ev.get("KSPSolve", 0)
        asm0 = ev0.get("SNESFunctionEval", 0) + ev0.get("SNESJacobianEval", 0)
        print(f"{n:5d} {asm:9.2f} {lin:8.2f} {ev.get('PCSetUp', 0):9.2f} {asm0 / max(asm, 1e-12):13.2f} "
              f"{ev0.get('KSPSolve', 0) / max(lin, 1e-12):13.2f}")
    return 0


def petsc_events(path: Path, names=("SNESFunctionEval", "SNESJacobianEval", "KSPSolve", "PCSetUp")) -> dict[str, float]:
    """Maximum time over the ranks of each event ``names`` of a PETSc -log_view file (s);
    events that appear in several stages are summed. Empty when the file is missing."""
    events: dict[str, float] = {}
    if not path.is_file():
        return events
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) > 4 and parts[0] in names:
            try:
                events[parts[0]] = events.get(parts[0], 0.0) + float(parts[3])
            except ValueError:
                continue
    return events


if __name__ == "__main__":
    sys.exit(main())
