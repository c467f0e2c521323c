"""Microstructure -> distributed DOLFINx mesh with cell and facet tags.

Gmsh runs on rank 0 only; ``dolfinx.io.gmsh.model_to_mesh`` distributes the mesh.
The mesh files (``mesh.msh`` and ``mesh.json``) are written by rank 0.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mpi4py import MPI

from meshes import tags
from meshes.builder import MeshSizes, build_2d, mesh_statistics
from meshes.packing import Packing, PackingError, pack_2d


@dataclass
class MeshBundle:
    mesh: object
    cell_tags: object
    facet_tags: object
    info: dict = field(default_factory=dict)  # metadata (same on every rank)

    @property
    def gdim(self) -> int:
        return self.mesh.geometry.dim


def pack(case_internal) -> Packing:
    """Pack the particles of a case (internal units). Pure numpy: safe on every rank."""
    g = case_internal.geometry
    p = g.particles
    if case_internal.dimension != 2:
        raise NotImplementedError("3D microstructures are not available yet")
    return pack_2d(
        tuple(g.size),
        shape=p.shape,
        radius=p.radius,
        volume_fraction=p.volume_fraction,
        min_gap=p.min_gap,
        boundary_gap=p.boundary_gap,
        sides=p.sides,
        orientation=p.orientation,
        seed=p.seed,
        max_attempts=p.max_attempts,
    )


def build_mesh(case_internal, comm: MPI.Comm, out_dir: Path | None = None, packing: Packing | None = None,
               verbose: bool = False) -> MeshBundle:
    """Pack, build the Gmsh model on rank 0 and distribute the mesh."""
    import gmsh

    import solver  # noqa: F401  (DOLFINx wheel import order)
    from dolfinx.io import gmsh as gmshio

    g = case_internal.geometry
    sizes = MeshSizes(g.mesh.size, g.mesh.interface_size, g.mesh.transition, g.mesh.order)
    info: dict = {}
    t0 = time.perf_counter()
    model = None
    error = None
    if comm.rank == 0:
        try:
            if packing is None:
                packing = pack(case_internal)
            if not gmsh.isInitialized():
                gmsh.initialize(interruptible=False)
            gmsh.option.setNumber("General.Terminal", 1 if verbose else 0)
            gmsh.model.add(case_internal.name)
            build_2d(gmsh, packing, sizes)
            info = {
                "dimension": case_internal.dimension,
                "units": "um",
                "packing": packing.to_dict(),
                "mesh": mesh_statistics(gmsh, case_internal.dimension),
                "tags": {
                    "cells": {"electrolyte": tags.ELECTROLYTE, "particle_i": f"{tags.PARTICLE_BASE} + i"},
                    "facets": {**tags.SIDES, "interface_i": f"{tags.PARTICLE_BASE} + i"},
                },
            }
            model = gmsh.model
        except PackingError as exc:
            error = ("packing", str(exc), exc.reached)
        except Exception as exc:  # report on every rank instead of hanging
            error = ("gmsh", f"{type(exc).__name__}: {exc}", None)
    error = comm.bcast(error, root=0)
    if error is not None:
        if comm.rank == 0 and gmsh.isInitialized():
            gmsh.finalize()
        if error[0] == "packing":
            raise PackingError(error[1], error[2])
        raise RuntimeError(f"mesh generation failed: {error[1]}")
    t_gmsh = time.perf_counter() - t0
    data = gmshio.model_to_mesh(model, comm, 0, gdim=case_internal.dimension)
    if comm.rank == 0:
        if out_dir is not None:
            gmsh.write(str(Path(out_dir) / "mesh.msh"))
        gmsh.finalize()
    info = comm.bcast(info, root=0)
    info["time_gmsh_s"] = t_gmsh
    info["time_distribute_s"] = time.perf_counter() - t0 - t_gmsh
    domain = data.mesh
    domain.topology.create_connectivity(domain.topology.dim - 1, domain.topology.dim)
    ncells = domain.topology.index_map(domain.topology.dim).size_global
    info["mesh"]["cells_global"] = int(ncells)
    info["mesh"]["vertices_global"] = int(domain.topology.index_map(0).size_global)
    info["mesh"]["h_min"], info["mesh"]["h_max"] = _cell_sizes(domain, comm)
    if out_dir is not None and comm.rank == 0:
        (Path(out_dir) / "mesh.json").write_text(json.dumps(info, indent=1))
    return MeshBundle(domain, data.cell_tags, data.facet_tags, info)


def bundle_from_gmsh(build, comm: MPI.Comm, gdim: int, info: dict | None = None) -> MeshBundle:
    """Run ``build(gmsh)`` on rank 0 (it must create physical groups and mesh the
    model) and distribute the mesh. Used for verification geometries."""
    import gmsh

    import solver  # noqa: F401
    from dolfinx.io import gmsh as gmshio

    model = None
    if comm.rank == 0:
        gmsh.initialize(interruptible=False)
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add("benchmark")
        build(gmsh)
        model = gmsh.model
    data = gmshio.model_to_mesh(model, comm, 0, gdim=gdim)
    if comm.rank == 0:
        gmsh.finalize()
    domain = data.mesh
    domain.topology.create_connectivity(domain.topology.dim - 1, domain.topology.dim)
    info = dict(info or {})
    info.setdefault("packing", {"particles": []})
    info.setdefault("mesh", {})
    info["mesh"]["cells_global"] = int(domain.topology.index_map(domain.topology.dim).size_global)
    return MeshBundle(domain, data.cell_tags, data.facet_tags, info)


def _cell_sizes(domain, comm) -> tuple[float, float]:
    tdim = domain.topology.dim
    n = domain.topology.index_map(tdim).size_local
    h = domain.h(tdim, np.arange(n, dtype=np.int32))
    hmin = comm.allreduce(float(h.min()) if n else np.inf, op=MPI.MIN)
    hmax = comm.allreduce(float(h.max()) if n else 0.0, op=MPI.MAX)
    return hmin, hmax


def phase_of_tags(values: np.ndarray) -> np.ndarray:
    """Phase name of each cell tag value ('active' or 'electrolyte')."""
    values = np.asarray(values)
    return np.where(values >= tags.PARTICLE_BASE, "active", "electrolyte")
