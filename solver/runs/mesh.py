"""Microstructure -> distributed DOLFINx mesh with cell and facet tags (2D and 3D).

The particles come from the packing (:mod:`meshes.packing`), from a particle list file, or
the whole mesh from an existing ``.msh`` file. Gmsh runs on rank 0 only;
``dolfinx.io.gmsh.model_to_mesh`` distributes the mesh. The mesh files (``mesh.msh`` and
``mesh.json``: particle list, fractions and interface measures measured on the mesh,
mesh statistics, tags) are written by rank 0.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from mpi4py import MPI

from meshes import tags
from meshes.builder import MeshSizes, build, mesh_report, mesh_statistics
from meshes.io import open_mesh_file, read_particles, write_json
from meshes.packing import DEFAULT_ASPECT, Packing, PackingError, PackingSpec, pack as pack_particles
from meshes.packing import packing_from_particles
from solver.physics.domain import MeshBundle




def packing_spec(case_internal) -> PackingSpec:
    """The packing problem of a case (internal units)."""
    g = case_internal.geometry
    p = g.particles
    d = p.size_distribution
    dim = case_internal.dimension
    orientation = p.orientation if not isinstance(p.orientation, list) else tuple(p.orientation)
    return PackingSpec(
        box=tuple(g.size), volume_fraction=p.volume_fraction, shape=p.shape, radius=p.radius, sides=p.sides,
        irregularity=p.irregularity, corner_radius=p.corner_radius,
        aspect=tuple(p.aspect) if p.aspect is not None else DEFAULT_ASPECT[dim], polyhedron=p.polyhedron,
        vertices=p.vertices, distribution=None if d is None else d.type, std=0.0 if d is None or d.std is None else d.std,
        r_min=None if d is None else d.min, r_max=None if d is None else d.max,
        radii=tuple(d.radii) if d is not None and d.radii else (), orientation=orientation, min_gap=p.min_gap,
        boundary_gap=p.boundary_gap, overlap=p.overlap, coating=p.coating, periodic=p.periodic,
        separator=g.separator_thickness, collector_layer=g.collector_layer_thickness,
        active_b_share=p.active_b_share, seed=p.seed, max_iterations=p.max_attempts,
    )


def pack(case_internal) -> Packing:
    """The particles of a case (internal units): packed, or read from the particle list.
    Pure numpy: safe on every rank. For an imported mesh, the particle list is empty."""
    g = case_internal.geometry
    spec = packing_spec(case_internal)
    if g.mesh.file is not None:
        lo, hi = spec.region
        return Packing([], tuple(g.size), 0.0, 0.0, 1.0, 0, 0, (tuple(lo), tuple(hi)), spec.periodic_axes,
                       extra={"method": "mesh file", "file": g.mesh.file})
    if g.particles.file is not None:
        # lengths of the file are metres; 1e6 converts them like solver.config.units does
        defaults = particle_defaults(case_internal)
        return packing_from_particles(read_particles(g.particles.file, spec.dim, defaults, scale=1e6), spec)
    return pack_particles(spec)


def particle_defaults(case) -> dict:
    """Shape fields of a case for the particles of a file that does not give them (lengths
    in the units of ``case``)."""
    p = case.geometry.particles
    return {"shape": p.shape, "sides": p.sides, "aspect": p.aspect or DEFAULT_ASPECT[case.dimension],
            "polyhedron": p.polyhedron if p.polyhedron != "random" else "cube",
            "corner_radius": p.corner_radius, "coating": p.coating}


def build_mesh(case_internal, comm: MPI.Comm, out_dir: Path | None = None, packing: Packing | None = None,
               verbose: bool = False) -> MeshBundle:
    """Pack (or read), build the Gmsh model on rank 0 and distribute the mesh."""
    import gmsh

    import solver  # noqa: F401  (DOLFINx wheel import order)
    from dolfinx.io import gmsh as gmshio

    g = case_internal.geometry
    dim = case_internal.dimension
    sizes = MeshSizes(g.mesh.size, g.mesh.interface_size, g.mesh.transition, g.mesh.order, g.mesh.corner_size,
                      g.mesh.particle_size)
    info: dict = {}
    t0 = time.perf_counter()
    model = None
    error = None
    if comm.rank == 0:
        try:
            if packing is None:
                packing = pack(case_internal)
            t_pack = time.perf_counter() - t0
            if not gmsh.isInitialized():
                gmsh.initialize(interruptible=False)
            gmsh.option.setNumber("General.Terminal", 1 if verbose else 0)
            gmsh.option.setNumber("General.NumThreads", 1)
            if g.mesh.file is not None:
                open_mesh_file(gmsh, g.mesh.file, dim)
                facts = {"file": g.mesh.file}
                if g.mesh.order > 1:
                    gmsh.model.mesh.setOrder(g.mesh.order)
            else:
                gmsh.model.add(case_internal.name)
                facts = build(gmsh, packing, sizes)
            report = mesh_report(gmsh, dim)
            info = {
                "dimension": dim,
                "units": "um",
                "packing": packing.to_dict(),
                "mesh": mesh_statistics(gmsh, dim),
                "fractions": {**report["phase_fractions"],
                              "active_of_composite": report["am_fraction_of_composite"]},
                "interfaces": report["interfaces"],
                "measures": report["measures"],
                "groups": facts.get("groups", {}),
                "tags": tags.convention(),
                "time_pack_s": t_pack,
            }
            if g.mesh.file is not None:
                info["packing"]["fraction"] = report["am_fraction_of_composite"]
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
    data = gmshio.model_to_mesh(model, comm, 0, gdim=dim)
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
        write_json(Path(out_dir) / "mesh.json", info)
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






