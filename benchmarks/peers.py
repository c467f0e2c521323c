"""ssbfrac and a peer phase-field code, PhaseFieldX, on the same single-edge-notched tension
test, one after the other in one call:

    python benchmarks/peers.py [--version 0.4.1] [--final-time 150] [--workdir DIR] [--skip-install]

PhaseFieldX (https://pypi.org/project/phasefieldx/, pinned) is installed in a temporary
virtual environment of its own that sees this environment's DOLFINx (a .pth file), never
into the project's environment; it is not a dependency of ssbfrac. Its SENT example
(`examples/PhaseFieldFracture/plot_1711.py` of its source distribution: AT2, no split,
history field, ell = 0.015 mm, Gc = 2.7 N/mm, E = 210 GPa, nu = 0.3, quadrilaterals of
0.002 mm in the crack band) is run with the patch it needs for this DOLFINx (an optional
import) applied in that environment. ssbfrac then runs `cases/benchmarks/sent.yaml`: the
same geometry, parameters, model and crack-band element size (triangles). The script
prints, for each: DOFs, load steps, staggered iterations (alternate-minimisation
iterations), wall and solve time, the cost per DOF per iteration (solve time / iterations /
DOFs) and the peak force, then the ratios. Serial runs (OMP_NUM_THREADS=1); run it on an
otherwise idle machine, the ratios are what to quote.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: the part of the peer's package patched for this DOLFINx: an import of an optional
#: compiled extension (scifem) at package import time, used only by solvers not run here
PACKAGE_PATCHES = [
    (f"Element/Phase_Field_Fracture/solver/solver_ener_{kind}.py", "\nimport scifem\n",
     "\ntry:\n    import scifem\nexcept ImportError:\n    scifem = None\n")
    for kind in ("non_variational", "variational")
]
#: edits of the example script so that it only solves (no plotting, the wheel's import order)
DRIVER_PATCHES = [
    ("import pyvista as pv\n", ""),
    ("import matplotlib.pyplot as plt\n", ""),
    ("from phasefieldx.PostProcessing.ReferenceResult import AllResults\n", ""),
    ("import numpy as np\n", "import dolfinx_solver  # noqa: F401  (the DOLFINx wheel first)\nimport numpy as np\n"),
]


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    print("+", " ".join(map(str, cmd)), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, **kw)


def peer_environment(venv: Path, version: str, install: bool) -> tuple[Path, Path]:
    """A virtual environment with the peer, on top of this environment's packages."""
    py = venv / "bin" / "python"
    tag = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = venv / "lib" / tag / "site-packages"
    if install:
        if not py.exists():
            sh([sys.executable, "-m", "venv", str(venv)])
        here = Path(sys.prefix) / "lib" / tag / "site-packages"
        (site / "zz_host_environment.pth").write_text(f"{here}\n")
        for lib in list((Path(sys.prefix) / "lib").glob("libmpi*")) + [Path(sys.prefix) / "lib" / "mpich"]:
            target = venv / "lib" / lib.name  # mpi4py loads libmpi from sys.prefix/lib
            if lib.exists() and not target.exists():
                target.symlink_to(lib)
        pip = [str(py), "-m", "pip", "-q", "--disable-pip-version-check"]
        sh(pip + ["install", "--no-deps", f"phasefieldx=={version}"])
        sh(pip + ["install", "pandas"])
    for rel, old, new in PACKAGE_PATCHES:
        path = site / "phasefieldx" / rel
        text = path.read_text()
        if new not in text:
            if old not in text:
                raise SystemExit(f"the peer patch does not apply to {path}")
            path.write_text(text.replace(old, new))
    return py, site


def peer_examples(py: Path, version: str, workdir: Path) -> Path:
    """The peer's examples, from its source distribution on PyPI."""
    dl = workdir / "sdist"
    dl.mkdir(parents=True, exist_ok=True)
    archive = dl / f"phasefieldx-{version}.tar.gz"
    if not archive.exists():
        sh([str(py), "-m", "pip", "-q", "download", "--no-deps", "--no-binary", ":all:", f"phasefieldx=={version}",
            "-d", str(dl)])
    root = dl / f"phasefieldx-{version}"
    if not root.is_dir():
        with tarfile.open(archive) as t:
            t.extractall(dl, filter="data")
    return root / "examples"


def peer_driver(example: Path, mesh: Path, final_time: float, out: Path) -> str:
    """The example script up to its post-processing, solving, timing the solve."""
    head = example.read_text().split("# Load results")[0].rsplit("\n###", 1)[0] + "\n"
    for old, new in DRIVER_PATCHES:
        if old not in head:
            raise SystemExit(f"the peer's example changed: {old!r} not found")
        head = head.replace(old, new, 1)
    head = re.sub(r"msh_file = os\.path\.join\([^\n]*\)", f"msh_file = {str(mesh)!r}", head)
    head = re.sub(r"^final_time = .*$", f"final_time = {float(final_time)!r}", head, flags=re.M)
    head = head.replace("save_solution_vtu=True", "save_solution_vtu=False")
    call = re.search(r"^# solve\(Data,.*?stagger_error_tol=[^)]*\)", head, re.S | re.M).group(0)
    head = head.replace(call, "")
    solve = "\n".join(line[2:] for line in call.splitlines())
    return head + f"""
import time as _t, json as _j
_t0 = _t.perf_counter()
{solve}
_j.dump(dict(dofs=V_u.dofmap.index_map.size_global * V_u.dofmap.index_map_bs + V_phi.dofmap.index_map.size_global,
             cells=msh.topology.index_map(2).size_global, solve_s=_t.perf_counter() - _t0),
        open({str(out / 'meta.json')!r}, "w"))
"""


def run_peer(args, workdir: Path) -> dict:
    py, _ = peer_environment(workdir / "venv", args.version, not args.skip_install)
    examples = peer_examples(py, args.version, workdir)
    mesh = examples / "GmshGeoFiles" / "9101_SingleNotchedTensionTest" / "mesh.msh"
    run = workdir / "peer"
    run.mkdir(exist_ok=True)
    driver = run / "driver.py"
    driver.write_text(peer_driver(examples / "PhaseFieldFracture" / "plot_1711.py", mesh, args.final_time, run))
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    t0 = time.perf_counter()
    with open(workdir / "peer_stdout.txt", "w") as log:  # the peer deletes *.log in its working directory
        sh([str(py), str(driver)], cwd=run, env=env, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    meta = json.loads((run / "meta.json").read_text())
    res = run / "1711_Single_Edge_Notched_Tension_Test"
    stagger = [int(r.split()[1]) for r in open(res / "phasefieldx.conv") if not r.startswith("#")]
    uy = [float(r.split()[2]) for r in open(res / "top.dof") if not r.startswith("#")]
    fy = [-float(r.split()[2]) for r in open(res / "bottom.reaction") if not r.startswith("#")]
    k = max(range(len(fy)), key=fy.__getitem__)
    return {"code": f"PhaseFieldX {args.version}", "dofs": meta["dofs"], "cells": meta["cells"],
            "steps": len(stagger), "iterations": sum(stagger), "max_iterations_per_step": max(stagger),
            "wall_s": wall, "solve_s": meta["solve_s"], "peak_force_kN_per_mm": fy[k], "u_at_peak_mm": uy[k]}


def run_ssbfrac(workdir: Path, sets: list[str]) -> dict:
    from solver.runs.writers import read_history

    out = workdir / "ssbfrac"
    cmd = [sys.executable, "-m", "solver", "run", str(ROOT / "cases" / "benchmarks" / "sent.yaml"), "--out", str(out),
           "--progress", "none"]
    for s in sets:
        cmd += ["--set", s]
    t0 = time.perf_counter()
    sh(cmd, env=dict(os.environ, OMP_NUM_THREADS="1"))
    wall = time.perf_counter() - t0
    summary = json.loads((out / "summary.json").read_text())
    h = read_history(out / "history.csv")
    acc = h["accepted"] == 1
    f, u = h["reaction_force"][acc], h["displacement"][acc]
    k = int(f.argmax())
    return {"code": "ssbfrac", "dofs": sum(summary["dofs"].values()), "cells": summary["mesh"]["cells_global"],
            "steps": int(summary["counters"]["steps"]), "iterations": int(summary["counters"]["iterations"]),
            "max_iterations_per_step": int(h["iterations"].max()), "wall_s": wall,
            "solve_s": summary["timings_s"]["solve"], "peak_force_kN_per_mm": float(f[k]) * 1e-6,
            "u_at_peak_mm": float(u[k]) * 1e-3}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", default="0.4.1", help="PhaseFieldX version (pinned)")
    ap.add_argument("--final-time", type=float, default=150.0,
                    help="the peer's pseudo-time: 50 steps of 1e-4 mm, then 1e-5 mm per step (150: to 6e-3 mm)")
    ap.add_argument("--workdir", type=Path, help="keep the environment and outputs here (default: a temporary one)")
    ap.add_argument("--skip-install", action="store_true", help="the peer's environment in --workdir exists")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="override a field of ssbfrac's case")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ssbfrac-peers-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        rows = [run_peer(args, workdir), run_ssbfrac(workdir, args.sets)]
    for r in rows:
        r["us_per_dof_per_iteration"] = 1e6 * r["solve_s"] / r["iterations"] / r["dofs"]
    keys = ["dofs", "cells", "steps", "iterations", "max_iterations_per_step", "wall_s", "solve_s",
            "us_per_dof_per_iteration", "peak_force_kN_per_mm", "u_at_peak_mm"]
    print(f"{'':28s}" + "".join(f"{r['code']:>22s}" for r in rows) + f"{'peer / ssbfrac':>18s}")
    for k in keys:
        a, b = rows[0][k], rows[1][k]
        print(f"{k:28s}{a:22.4g}{b:22.4g}{a / b if b else float('nan'):18.3g}")
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
