"""Benchmark: pack and mesh a 2D composite cathode of about 100 particles into about
200 000 triangles on one core; prints the time of each stage and the peak memory.

    python benchmarks/mesh_2d.py [--shape polygon|circle] [--fraction 0.6]

Target: under 20 s in total.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="polygon", choices=["polygon", "circle", "ellipse"])
    ap.add_argument("--fraction", type=float, default=0.6)
    ap.add_argument("--particles", type=int, default=100)
    ap.add_argument("--cells", type=float, default=2e5, help="target number of triangles")
    args = ap.parse_args(argv)

    import gmsh

    from meshes.builder import MeshSizes, build, mesh_report, mesh_statistics
    from meshes.packing import PackingSpec, pack

    radius = 1.5  # um
    area_particle = {"polygon": 0.5 * 6 * radius**2 * np.sin(2 * np.pi / 6), "circle": np.pi * radius**2,
                     "ellipse": np.pi * radius**2 * 0.6}[args.shape]
    L = float(np.sqrt(args.particles * area_particle / args.fraction))
    # sizes so that the mesh has about args.cells triangles: half of them near the interfaces
    h = float(np.sqrt(2.1 * L * L / args.cells))
    sizes = MeshSizes(size=1.6 * h, interface_size=0.6 * h, transition=3 * h)
    spec = PackingSpec(box=(L, L), volume_fraction=args.fraction, shape=args.shape, radius=radius, sides=6,
                       min_gap=0.2, boundary_gap=0.2, seed=1)
    t0 = time.perf_counter()
    packing = pack(spec)
    t1 = time.perf_counter()
    gmsh.initialize(interruptible=False)
    gmsh.option.setNumber("General.Terminal", 0)
    gmsh.option.setNumber("General.NumThreads", 1)
    gmsh.model.add("bench2d")
    build(gmsh, packing, sizes)
    t2 = time.perf_counter()
    stats = mesh_statistics(gmsh, 2)
    report = mesh_report(gmsh, 2)
    gmsh.finalize()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    out = {"particles": len(packing.particles), "box_um": L, "target_fraction": args.fraction,
           "mesh_fraction": report["am_fraction_of_composite"], "cells": stats["cells"],
           "quality_min": stats["quality_min"], "time_pack_s": t1 - t0, "time_mesh_s": t2 - t1,
           "time_total_s": t2 - t0, "peak_rss_MB": peak}
    print(f"2D {args.shape}: {out['particles']} particles at fraction {args.fraction} (mesh: "
          f"{out['mesh_fraction']:.4f}), {out['cells']} triangles (min quality {out['quality_min']:.2f})")
    print(f"  pack {out['time_pack_s']:.2f} s + model and mesh {out['time_mesh_s']:.2f} s = "
          f"{out['time_total_s']:.2f} s (target < 20 s); peak RSS {peak:.0f} MB")
    return out


if __name__ == "__main__":
    main()
