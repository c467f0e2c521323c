"""Benchmark: pack and mesh a 3D composite cathode of about 50 particles into about one
million tetrahedra on one core; prints the time of each stage and the peak memory.

    python benchmarks/mesh_3d.py [--shape sphere|ellipsoid|polyhedron] [--fraction 0.5] [--walls]

Target: under 5 minutes and 8 GB. By default the lateral sides are periodic (a cathode
slab): four hard walls 3.7 particle diameters apart cannot hold spheres at 0.5 with a
gap; ``--walls`` packs between walls instead.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="sphere", choices=["sphere", "ellipsoid", "polyhedron"])
    ap.add_argument("--fraction", type=float, default=0.5)
    ap.add_argument("--particles", type=int, default=50)
    ap.add_argument("--cells", type=float, default=1e6, help="target number of tetrahedra")
    ap.add_argument("--walls", action="store_true", help="hard lateral walls instead of periodic sides")
    args = ap.parse_args(argv)

    import gmsh

    from meshes.builder import MeshSizes, build, mesh_report, mesh_statistics
    from meshes.packing import PackingSpec, pack

    radius = 2.5  # um
    volume = {"sphere": 4 / 3 * np.pi * radius**3, "ellipsoid": 4 / 3 * np.pi * radius**3 * 0.8 * 0.6,
              "polyhedron": (2 * radius / np.sqrt(3)) ** 3}[args.shape]
    L = float((args.particles * volume / args.fraction) ** (1 / 3))
    h = float((3.8 * L**3 / args.cells) ** (1 / 3))
    sizes = MeshSizes(size=1.5 * h, interface_size=0.7 * h, transition=2 * h)
    spec = PackingSpec(box=(L, L, L), volume_fraction=args.fraction, shape=args.shape, radius=radius,
                       polyhedron="cube", min_gap=0.15, boundary_gap=0.15, periodic=not args.walls, seed=1,
                       max_iterations=40000)
    t0 = time.perf_counter()
    packing = pack(spec)
    t1 = time.perf_counter()
    gmsh.initialize(interruptible=False)
    gmsh.option.setNumber("General.Terminal", 0)
    gmsh.option.setNumber("General.NumThreads", 1)
    gmsh.model.add("bench3d")
    build(gmsh, packing, sizes)
    t2 = time.perf_counter()
    stats = mesh_statistics(gmsh, 3)
    report = mesh_report(gmsh, 3)
    gmsh.finalize()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    out = {"particles": len(packing.particles), "box_um": L, "target_fraction": args.fraction,
           "mesh_fraction": report["am_fraction_of_composite"], "cells": stats["cells"],
           "quality_min": stats["quality_min"], "time_pack_s": t1 - t0, "time_mesh_s": t2 - t1,
           "time_total_s": t2 - t0, "peak_rss_MB": peak}
    print(f"3D {args.shape} ({'walls' if args.walls else 'periodic sides'}): {out['particles']} particles at fraction "
          f"{args.fraction} (mesh: {out['mesh_fraction']:.4f}), {out['cells']} tetrahedra "
          f"(min quality {out['quality_min']:.2f})")
    print(f"  pack {out['time_pack_s']:.1f} s + model and mesh {out['time_mesh_s']:.1f} s = {out['time_total_s']:.1f} s "
          f"(target < 300 s); peak RSS {peak / 1024:.2f} GB (target < 8 GB)")
    return out


if __name__ == "__main__":
    main()
