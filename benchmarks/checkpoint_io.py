"""Checkpoint and field I/O of a 3D mesh with >= 1M DOFs, on 1 and 2 MPI ranks.

    python benchmarks/checkpoint_io.py [--n 60] [--ranks 1 2] [--repeat 3] [--out DIR]

The fields are those a fracture run checkpoints: the displacement (P1 vector), the
damage and its last accepted value (P1) and the history field (DG0), on a box of n^3
cubes of 6 tetrahedra each (n = 60: 1.1M P1 DOFs and 1.3M DG0 DOFs). Each rank count
runs in its own ``mpiexec`` and writes every file; then each rank count reads back the
files of every rank count (N-to-M) and checks the values node by node. Methods:

* ``gather``: ``solver.runs.checkpoint`` with ``method="gather"``: the rows gathered on
  rank 0, which writes the HDF5 file alone and, on reading, reads it alone and scatters
  the rows (the checkpoint of ssbfrac before parallel I/O: the baseline);
* ``parallel``: ``solver.runs.checkpoint`` with ``method="parallel"``: every rank writes its
  rows into the one HDF5 file with MPI-IO and reads a slice of it (the default);
* ``per-rank files``: a sketch of the other way without parallel HDF5: every rank writes
  its rows to a file of its own with serial h5py; reading ranks share the files out and
  route the rows as ``parallel`` does;
* ``io4dolfinx``: io4dolfinx's N-to-M checkpoint (``write_function_on_input_mesh``,
  ``read_function``) with its ``h5py`` backend, when io4dolfinx is importable (it is not a
  dependency: ``pip install --no-deps io4dolfinx fenicsx-compat``); its other backends
  need parallel h5py, an MPI build of the adios2 Python module, pyvista or netCDF4, or
  cannot write functions at all;
* ``fields XDMF`` / ``fields VTX``: one field output of the same functions with the run's
  own writer (``solver.runs.writers.FieldWriter``: XDMF + HDF5, the merged XDMF) and with
  DOLFINx's ``VTXWriter`` (ADIOS2); write only.

Printed per method: wall time of the collective write and read (slowest rank, best of
``--repeat``), its ratio to ``gather`` in the same call, and the peak memory that the
operation adds on rank 0 and on the most loaded rank (VmHWM, reset before each
operation, after freed memory is handed back to the system). Nothing is asserted; a
method that fails says why. The values read back are compared node by node with the
fields interpolated on the reading partition ("exact", or the largest difference: the
interpolation itself differs in the last bits between partitions).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT_METHODS = ("gather", "parallel", "per-rank files", "io4dolfinx")
FIELD_METHODS = ("fields XDMF", "fields VTX")


# --------------------------------------------------------------------------- worker (under mpiexec)


def _status(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def _measure(comm, op) -> tuple[float, list[float], str | None]:
    """(wall time of the slowest rank, peak MB added on each rank, error or None). Freed
    memory is handed back to the system first (glibc's malloc_trim), so that the resident
    size before the operation is what is in use."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the present resident size
    except OSError:
        pass
    base = _status("VmRSS:")
    comm.Barrier()
    t0 = time.perf_counter()
    error = None
    try:
        op()
    except Exception as exc:  # a method that does not work here is reported, not fatal
        error = f"{type(exc).__name__}: {exc}".splitlines()[0][:160]
    comm.Barrier()
    elapsed = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
    peaks = comm.gather((_status("VmHWM:") - base) / 1024.0, root=0)
    errors = [e for e in comm.allgather(error) if e]
    return elapsed, peaks, errors[0] if errors else None


def make_functions(domain, fill: bool) -> dict:
    from dolfinx import fem

    spaces = {"displacement": ("Lagrange", 1, (3,)), "damage": ("Lagrange", 1),
              "damage_accepted": ("Lagrange", 1), "H_history": ("DG", 0)}
    fs = {name: fem.Function(fem.functionspace(domain, el), name=name) for name, el in spaces.items()}
    if fill:
        fs["displacement"].interpolate(lambda x: np.vstack([x[0] * x[1], np.sin(3 * x[2]), x[0] - x[2] ** 2]))
        fs["damage"].interpolate(lambda x: 0.5 * (1 + np.cos(4 * x[0]) * x[1]))
        fs["damage_accepted"].interpolate(lambda x: 0.25 * x[2] + x[0] * x[1])
        fs["H_history"].interpolate(lambda x: 1.0 + x[0] + 10 * x[1] + 100 * x[2])
    return fs


def _write_per_rank(path: Path, fs: dict, comm) -> None:
    import h5py

    from solver.runs.checkpoint import _owned_keys

    if comm.rank == 0:
        path.mkdir(parents=True, exist_ok=True)
    comm.Barrier()
    with h5py.File(path / f"part-{comm.rank:05d}.h5", "w") as h5:
        h5.attrs["parts"] = comm.size
        for name, f in fs.items():
            V = f.function_space
            keys = _owned_keys(name, V)
            bs = V.dofmap.index_map_bs
            g = h5.create_group(name)
            g.create_dataset("keys", data=keys)
            g.create_dataset("values", data=f.x.array[: keys.shape[0] * bs].reshape(-1, bs))


def _read_per_rank(path: Path, fs: dict, comm) -> None:
    import h5py

    from solver.runs.checkpoint import _fill_function, _match_tolerance, _space_shape

    parts = sorted(path.glob("part-*.h5"))
    mine = parts[comm.rank::comm.size]
    tol = _match_tolerance(next(iter(fs.values())).function_space.mesh, comm, 1e-6)
    for name, f in fs.items():
        keys, values = [], []
        for p in mine:
            with h5py.File(p, "r") as h5:
                keys.append(h5[name]["keys"][...])
                values.append(h5[name]["values"][...])
        _, bs, width = _space_shape(name, f.function_space)
        rows = (np.concatenate(keys) if keys else np.zeros((0, width)),
                np.concatenate(values) if values else np.zeros((0, bs)))
        _fill_function(name, f, rows, comm, tol, path)


def _file_size(path: Path) -> float:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20
    return path.stat().st_size / 2**20 if path.exists() else 0.0


def _checkpoint_path(out: Path, ranks: int, method: str) -> Path:
    return out / f"np{ranks}" / {"gather": "gather.h5", "parallel": "parallel.h5", "per-rank files": "per_rank",
                                 "io4dolfinx": "io4dolfinx.h5"}[method]


def _max_error(fs: dict, ref: dict, comm) -> float:
    local = max(float(np.max(np.abs(fs[k].x.array - ref[k].x.array), initial=0.0)) for k in fs)
    return comm.allreduce(local, op=MPI.MAX)


def worker(args) -> None:
    import shutil

    from dolfinx import mesh as dmesh

    from solver.runs.checkpoint import read_checkpoint, write_checkpoint
    from solver.runs.writers import FieldWriter

    comm = MPI.COMM_WORLD
    domain = dmesh.create_box(comm, [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], [args.n] * 3, dmesh.CellType.tetrahedron)
    src = make_functions(domain, fill=True)
    warm = make_functions(dmesh.create_unit_cube(comm, 3, 3, 3), fill=True)  # imports and first calls untimed
    for method in ("gather", "parallel"):
        write_checkpoint(args.out / f"np{comm.size}" / "warm-up.h5", warm, {}, comm, method=method)
        read_checkpoint(args.out / f"np{comm.size}" / "warm-up.h5", warm, comm, method=method)
    dofs = sum(f.function_space.dofmap.index_map.size_global * f.function_space.dofmap.index_map_bs
               for f in src.values())
    try:
        import io4dolfinx
    except ImportError:
        io4dolfinx = None
    rows = []

    def record(method, op, written_on, read_on, t, peaks, error, size=0.0, max_error=None):
        rows.append({"method": method, "op": op, "written_on": written_on, "read_on": read_on, "time": t,
                     "peak_mb": peaks, "error": error, "size_mb": size, "max_error": max_error})

    if args.phase == "write":
        for method in CHECKPOINT_METHODS + FIELD_METHODS:
            if method == "io4dolfinx" and io4dolfinx is None:
                record(method, "write", comm.size, None, None, None, "io4dolfinx is not installed")
                continue
            path = _checkpoint_path(args.out, comm.size, method) if method in CHECKPOINT_METHODS else \
                args.out / f"np{comm.size}" / method.split()[-1].lower()

            def clean():
                if comm.rank == 0:
                    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
                    path.parent.mkdir(parents=True, exist_ok=True)
                comm.Barrier()

            def op():
                if method in ("gather", "parallel"):
                    write_checkpoint(path, src, {"step": 1}, comm, method=method)
                elif method == "per-rank files":
                    _write_per_rank(path, src, comm)
                elif method == "io4dolfinx":
                    io4dolfinx.write_mesh_input_order(path, domain, backend="h5py")
                    for f in src.values():
                        io4dolfinx.write_function_on_input_mesh(path, f, backend="h5py")
                elif method == "fields XDMF":
                    writer = FieldWriter(path.with_suffix(".xdmf"), domain, list(src.values()))
                    writer.write(0.0)
                    writer.close()
                else:
                    from dolfinx.io import VTXWriter

                    with VTXWriter(comm, str(path.with_suffix(".bp")), [src[k] for k in ("displacement", "damage",
                                   "damage_accepted")], engine="BP4") as vtx:
                        vtx.write(0.0)
            best = None
            for _ in range(args.repeat):
                clean()
                t, peaks, error = _measure(comm, op)
                if best is None or (error is None and t < best[0]):
                    best = (t, peaks, error)
                if error:
                    break
            size = 0.0
            if comm.rank == 0:
                size = sum(_file_size(p) for p in path.parent.glob(path.name + "*"))
            record(method, "write", comm.size, None, *best, size=size)
    readers = [r for r in args.ranks] if args.phase == "read" else []
    for written_on in readers:
        for method in CHECKPOINT_METHODS:
            path = _checkpoint_path(args.out, written_on, method)
            if not path.exists():
                record(method, "read", written_on, comm.size, None, None, "not written")
                continue
            dst = make_functions(domain, fill=False)

            def op():
                if method in ("gather", "parallel"):
                    read_checkpoint(path, dst, comm, method=method)
                elif method == "per-rank files":
                    _read_per_rank(path, dst, comm)
                else:
                    for f in dst.values():
                        io4dolfinx.read_function(path, f, backend="h5py")
            best = None
            for _ in range(args.repeat):
                t, peaks, error = _measure(comm, op)
                if best is None or (error is None and t < best[0]):
                    best = (t, peaks, error)
                if error:
                    break
            err = None if best[2] else _max_error(dst, src, comm)
            record(method, "read", written_on, comm.size, *best, max_error=err)
    if comm.rank == 0:
        with open(args.out / f"results_{args.phase}_np{comm.size}.json", "w") as fh:
            json.dump({"dofs": dofs, "rows": rows}, fh)


# --------------------------------------------------------------------------- driver


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=60, help="cubes per side of the box (6 tetrahedra each)")
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "bench_checkpoint_io")
    ap.add_argument("--worker", choices=("write", "read"), dest="phase", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        worker(args)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    mpiexec = Path(sys.executable).parent / "mpiexec"
    mpiexec = str(mpiexec) if mpiexec.exists() else "mpiexec"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    results = {}
    for phase in ("write", "read"):
        for n in args.ranks:
            cmd = [mpiexec, "-n", str(n), sys.executable, str(Path(__file__).resolve()), "--worker", phase,
                   "--n", str(args.n), "--repeat", str(args.repeat), "--out", str(args.out),
                   "--ranks", *map(str, args.ranks)]
            t = time.perf_counter()
            r = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if r.returncode != 0:
                raise SystemExit(f"{phase} on {n} rank(s) failed:\n{r.stdout[-2000:]}{r.stderr[-3000:]}")
            print(f"# {phase} phase on {n} rank(s): {time.perf_counter() - t:.0f} s", flush=True)
            results[(phase, n)] = json.loads((args.out / f"results_{phase}_np{n}.json").read_text())
    report(args, results)
    return 0


def report(args, results) -> None:
    rows = [row for res in results.values() for row in res["rows"]]
    dofs = next(iter(results.values()))["dofs"]
    print(f"box of {args.n}^3 x 6 tetrahedra: {dofs} DOFs (P1 vector, 2 P1 scalars, DG0); best of {args.repeat}")
    base = {(r["op"], r["written_on"], r["read_on"]): r for r in rows if r["method"] == "gather" and not r["error"]}
    print(f"{'method':<15s} {'op':<5s} {'ranks':>6s} {'time s':>8s} {'x gather':>9s} {'peak MB r0':>11s} "
          f"{'peak MB max':>12s} {'x gather':>9s} {'file MB':>8s}  values / error")
    for r in rows:
        ranks = f"{r['written_on']}" if r["op"] == "write" else f"{r['written_on']}->{r['read_on']}"
        if r["error"]:
            print(f"{r['method']:<15s} {r['op']:<5s} {ranks:>6s} {'-':>8s} {'':>9s} {'':>11s} {'':>12s} {'':>9s} "
                  f"{'':>8s}  FAILED: {r['error']}")
            continue
        b = base.get((r["op"], r["written_on"], r["read_on"]))
        ratio_t = f"{r['time'] / b['time']:9.2f}" if b else f"{'':>9s}"
        ratio_m = f"{max(r['peak_mb']) / max(max(b['peak_mb']), 1e-9):9.2f}" if b else f"{'':>9s}"
        values = "" if r["max_error"] is None else ("exact" if r["max_error"] == 0.0 else f"max error {r['max_error']:.1e}")
        size = f"{r['size_mb']:8.1f}" if r["op"] == "write" else f"{'':>8s}"
        print(f"{r['method']:<15s} {r['op']:<5s} {ranks:>6s} {r['time']:8.2f} {ratio_t} {r['peak_mb'][0]:11.0f} "
              f"{max(r['peak_mb']):12.0f} {ratio_m} {size}  {values}")


if __name__ == "__main__":
    if "--worker" in sys.argv:  # MPI only in the workers, not in the driver that starts mpiexec
        import solver  # noqa: F401  (the DOLFINx wheel's import order)
        import numpy as np
        from mpi4py import MPI
    sys.exit(main())
