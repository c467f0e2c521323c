"""Microstructure meshes measured on the mesh: fractions, coatings, layers, tags, periodic
sides, contacts, imports and conversion; bad inputs rejected before Gmsh runs."""

import copy
import json
import math

import numpy as np
import pytest
from mpi4py import MPI

from meshes import tags
from meshes.builder import MeshSizes, build, mesh_report
from meshes.packing import PackingSpec, pack
from solver.config import CaseError, validate_case
from meshes.tags import phase_of_tags
from solver.runs.mesh import build_mesh
from solver.config.units import to_internal

MATERIALS = {"active": {"E": 140e9, "nu": 0.3, "expansion": 0.05}, "electrolyte": {"E": 20e9, "nu": 0.3}}


def gmsh_mesh(spec: PackingSpec, sizes: MeshSizes):
    """Pack and mesh with Gmsh; returns (packing, report, gmsh module) with gmsh still open."""
    import gmsh

    packing = pack(spec)
    if gmsh.isInitialized():
        gmsh.finalize()
    gmsh.initialize(interruptible=False)
    gmsh.option.setNumber("General.Terminal", 0)
    gmsh.model.add("t")
    build(gmsh, packing, sizes)
    return packing, mesh_report(gmsh, spec.dim), gmsh


def group_nodes(gmsh, dim, tag):
    ents = gmsh.model.getEntitiesForPhysicalGroup(dim, tag)
    pts = [gmsh.model.mesh.getNodes(dim, int(e), includeBoundary=True)[1].reshape(-1, 3) for e in ents]
    return np.vstack(pts)


def check_groups(gmsh, packing, dim):
    """Every particle has its cell group (right material range) and its interface group;
    every cell is in exactly one group; the outer sides are tagged."""
    groups = {(d, t): gmsh.model.getPhysicalName(d, t) for d, t in gmsh.model.getPhysicalGroups()}
    cell_groups = {t for d, t in gmsh.model.getPhysicalGroups(dim)}
    for p in packing.particles:
        assert groups[(dim, tags.particle(p.id, p.material))] == f"particle_{p.id}"
        assert groups[(dim - 1, tags.interface(p.id))] == f"interface_{p.id}"
    sides = {t for d, t in gmsh.model.getPhysicalGroups(dim - 1) if t <= 6}
    assert sides == set(range(1, 2 * dim + 1))
    in_groups = sum(len(gmsh.model.getEntitiesForPhysicalGroup(dim, t)) for t in cell_groups)
    assert in_groups == len(gmsh.model.getEntities(dim))


@pytest.mark.parametrize("kw", [
    dict(shape="polygon", sides=5, irregularity=0.5, radius=1.6),
    dict(shape="circle", radius=1.4, distribution="lognormal", std=0.4),
    dict(shape="ellipse", radius=1.8, aspect=(0.6,)),
], ids=["random-polygons", "lognormal-circles", "ellipses"])
def test_2d_fraction_on_mesh_within_1_percent(kw):
    spec = PackingSpec(box=(18.0, 18.0), volume_fraction=0.55, min_gap=0.2, boundary_gap=0.2, seed=2, **kw)
    packing, rep, gmsh = gmsh_mesh(spec, MeshSizes(0.6, 0.15, 1.0))
    try:
        assert abs(rep["am_fraction_of_composite"] - 0.55) / 0.55 < 0.01
        check_groups(gmsh, packing, 2)
        # no two particles closer than the gap on the mesh either
        nodes = [group_nodes(gmsh, 1, tags.interface(p.id))[:, :2] for p in packing.particles]
        from scipy.spatial import cKDTree

        for i in range(len(nodes)):
            tree = cKDTree(nodes[i])
            for j in range(i + 1, len(nodes)):
                assert tree.query(nodes[j])[0].min() >= 0.2 - 1e-9
    finally:
        gmsh.finalize()


@pytest.mark.parametrize("kw", [
    dict(shape="sphere", radius=2.0, periodic=True),
    dict(shape="polyhedron", polyhedron="octahedron", radius=2.2),
], ids=["periodic-spheres", "octahedra"])
def test_3d_fraction_on_mesh_within_2_percent(kw):
    spec = PackingSpec(box=(10.0, 10.0, 10.0), volume_fraction=0.3, min_gap=0.25, boundary_gap=0.25, seed=1, **kw)
    packing, rep, gmsh = gmsh_mesh(spec, MeshSizes(1.0, 0.3, 1.0))
    try:
        assert abs(rep["am_fraction_of_composite"] - 0.3) / 0.3 < 0.02
        check_groups(gmsh, packing, 3)
    finally:
        gmsh.finalize()


def test_coating_thickness_measured_on_mesh():
    t = 0.2
    spec = PackingSpec(box=(16.0, 16.0), shape="circle", radius=1.5, volume_fraction=0.35, min_gap=0.6,
                       boundary_gap=0.4, coating=t, seed=1)
    packing, rep, gmsh = gmsh_mesh(spec, MeshSizes(0.5, 0.1, 0.8))
    gmsh.finalize()
    # coating area = sum pi ((r + t)^2 - r^2) -> solve for t
    r = np.array([p.radius for p in packing.particles])
    area = rep["phase_measures"]["coating"]
    n, s1 = len(r), r.sum()
    t_mesh = (-2 * math.pi * s1 + math.sqrt((2 * math.pi * s1) ** 2 + 4 * math.pi * n * area)) / (2 * math.pi * n)
    assert t_mesh == pytest.approx(t, rel=0.02)
    assert rep["interfaces"]["coating_interface"] == pytest.approx(2 * math.pi * (r + t).sum(), rel=0.01)
    # 3D: the coating of a polyhedron is its parallel body (Steiner's formula)
    spec = PackingSpec(box=(8.0, 8.0, 8.0), shape="polyhedron", polyhedron="cube", radius=1.8, volume_fraction=0.12,
                       min_gap=0.8, boundary_gap=0.5, coating=0.3, seed=1)
    packing, rep, gmsh = gmsh_mesh(spec, MeshSizes(1.0, 0.3, 1.0))
    gmsh.finalize()
    expected = sum(p.outer_measure() - p.measure() for p in packing.particles)
    assert rep["phase_measures"]["coating"] == pytest.approx(expected, rel=0.03)


def test_layers_blend_contacts_and_phase_tags():
    spec = PackingSpec(box=(20.0, 15.0), shape="circle", radius=1.5, volume_fraction=0.5, min_gap=0.2,
                       boundary_gap=0.2, overlap=0.3, separator=3.0, collector_layer=1.0, active_b_share=0.5, seed=3)
    packing, rep, gmsh = gmsh_mesh(spec, MeshSizes(0.6, 0.15, 1.0))
    try:
        assert rep["phase_fractions"]["separator"] == pytest.approx(3.0 / 20.0, rel=1e-9)
        assert rep["phase_fractions"]["collector_layer"] == pytest.approx(1.0 / 20.0, rel=1e-9)
        assert rep["interfaces"]["separator_interface"] == pytest.approx(15.0)
        assert rep["interfaces"]["collector_interface"] == pytest.approx(15.0)
        assert rep["interfaces"].get("contact", 0.0) > 0  # touching particles share facets
        cell_tags = [t for _, t in gmsh.model.getPhysicalGroups(2)]
        phases = phase_of_tags(np.array(cell_tags))
        assert {"electrolyte", "separator", "collector_layer", "active", "active_b"} == set(phases)
        for t, ph in zip(cell_tags, phases):
            assert tags.phase_of_tag(t) == ph
        check_groups(gmsh, packing, 2)
    finally:
        gmsh.finalize()
    with pytest.raises(ValueError, match="not in the ssbfrac convention"):
        phase_of_tags(np.array([1, 7]))


def test_periodic_mesh_matches_across_sides():
    spec = PackingSpec(box=(14.0, 14.0), shape="polygon", sides=6, radius=1.5, volume_fraction=0.5, min_gap=0.2,
                       boundary_gap=0.2, periodic=True, seed=6)
    packing, rep, gmsh = gmsh_mesh(spec, MeshSizes(0.6, 0.2, 1.0))
    try:
        assert abs(rep["am_fraction_of_composite"] - 0.5) < 1e-9  # the cut pieces add up to whole particles
        bottom = group_nodes(gmsh, 1, tags.SIDES["bottom"])
        top = group_nodes(gmsh, 1, tags.SIDES["top"])
        assert np.allclose(np.sort(np.unique(np.round(bottom[:, 0], 9))), np.sort(np.unique(np.round(top[:, 0], 9))))
        cut = [p.id for p in packing.particles
               if p.boundary_points(360)[:, 1].min() < 0 or p.boundary_points(360)[:, 1].max() > 14.0]
        assert cut, "no particle crosses the periodic sides"
        check_groups(gmsh, packing, 2)
    finally:
        gmsh.finalize()


def base_case(**geometry):
    return {"name": "t", "geometry": {"size": [16e-6, 16e-6], **geometry}, "materials": copy.deepcopy(MATERIALS),
            "loading": {"steps": 1}}


def test_distributed_mesh_tags_and_mesh_json(tmp_path):
    """DOLFINx sees every particle and interface tag; mesh.json holds the measured data."""
    case = to_internal(validate_case(base_case(
        particles={"shape": "polygon", "sides": 4, "radius": 1.5e-6, "volume_fraction": 0.45, "min_gap": 0.2e-6,
                   "boundary_gap": 0.2e-6, "seed": 3},
        mesh={"size": 0.6e-6, "interface_size": 0.2e-6})))
    bundle = build_mesh(case, MPI.COMM_WORLD, out_dir=tmp_path)
    comm = MPI.COMM_WORLD
    cell_ids = set(sum(comm.allgather([int(i) for i in np.unique(bundle.cell_tags.values)]), []))
    facet_ids = set(sum(comm.allgather([int(i) for i in np.unique(bundle.facet_tags.values)]), []))
    n = len(bundle.info["packing"]["particles"])
    assert {1000 + i for i in range(n)} | {1} == cell_ids
    assert {1000 + i for i in range(n)} | {1, 2, 3, 4} == facet_ids
    info = json.loads((tmp_path / "mesh.json").read_text())
    assert info["fractions"]["active_of_composite"] == pytest.approx(0.45, rel=0.01)
    assert info["interfaces"]["particle_surfaces"] > 0
    assert info["mesh"]["quality_min"] > 0.2 and info["mesh"]["cells"] == bundle.info["mesh"]["cells_global"]
    assert len(info["packing"]["particles"][0]["rotation"]) == 3


def test_particle_list_and_mesh_import(tmp_path):
    # a CSV particle list (metres)
    csv = tmp_path / "particles.csv"
    csv.write_text("x,y,radius,shape,sides,angle,material\n"
                   "4e-6,4e-6,1.5e-6,polygon,4,10,active\n12e-6,5e-6,2e-6,circle,,,active\n8e-6,12e-6,1.8e-6,,,,active\n")
    case = validate_case(base_case(particles={"shape": "circle", "file": str(csv)},
                                   mesh={"size": 0.8e-6, "interface_size": 0.2e-6}))
    out = tmp_path / "a"
    out.mkdir()
    bundle = build_mesh(to_internal(case), MPI.COMM_WORLD, out_dir=out)
    ps = bundle.info["packing"]["particles"]
    assert [p["shape"] for p in ps] == ["polygon", "circle", "circle"]
    expected = (2 * 1.5**2 + math.pi * (4 + 1.8**2)) / 16**2
    assert bundle.info["fractions"]["active_of_composite"] == pytest.approx(expected, rel=0.01)
    # mesh.json as particle list reproduces the same microstructure
    again = validate_case(base_case(particles={"shape": "circle", "file": str(out / "mesh.json")},
                                    mesh={"size": 0.8e-6, "interface_size": 0.2e-6}))
    b2 = build_mesh(to_internal(again), MPI.COMM_WORLD)
    assert b2.info["fractions"] == pytest.approx(bundle.info["fractions"], rel=1e-9)
    # the .msh itself
    imported = validate_case(base_case(mesh={"file": str(out / "mesh.msh")}))
    b3 = build_mesh(to_internal(imported), MPI.COMM_WORLD)
    assert b3.info["mesh"]["cells_global"] == bundle.info["mesh"]["cells_global"]
    assert b3.info["fractions"]["active_of_composite"] == pytest.approx(expected, rel=0.01)
    # meshio conversion keeps the tags
    import meshio

    from meshes.io import convert_mesh

    (vtu,) = convert_mesh(out / "mesh.msh", ["vtu"])
    m = meshio.read(vtu)
    assert {1, 1000, 1001, 1002} <= set(np.unique(np.concatenate(m.cell_data["tag"])).tolist())


BAD = [
    # (geometry, field named in the message, fragment of the message)
    ({"particles": {"volume_fraction": 0.85, "shape": "circle", "radius": 1e-6, "min_gap": 0.2e-6}},
     "volume_fraction", "impossible"),
    ({"particles": {"radius": -1e-6}}, "geometry.particles.radius", "greater than or equal to 1e-08 m"),
    ({"size": [16e-6, -16e-6]}, "geometry.size.1", "greater than or equal to 1e-07 m"),
    ({"particles": {"coating": 0.2e-6, "min_gap": 0.3e-6}}, "coating", "too thick for min_gap"),
    ({"particles": {"coating": 0.2e-6, "min_gap": 0.5e-6, "boundary_gap": 0.2e-6}}, "coating", "boundary_gap"),
    ({"particles": {"shape": "cylinder"}}, "geometry.particles.shape", "circle"),
    ({"particles": {"shape": "sphere"}}, "particles.shape", "use 'circle'"),
    ({"particles": {"shape": "ellipse", "aspect": [0.5, 0.5]}}, "particles.aspect", "give 1 ratio"),
    ({"particles": {"shape": "polygon", "corner_radius": 1e-6, "radius": 1.5e-6}}, "corner_radius", "too large"),
    ({"particles": {"size_distribution": {"type": "lognormal"}}}, "size_distribution", "needs std"),
    ({"particles": {"size_distribution": {"type": "normal", "std": 1e-7, "min": 2e-6, "max": 1e-6}}},
     "size_distribution", "smaller than max"),
    ({"particles": {"min_gap": 0.0}}, "geometry.particles.min_gap", "greater than or equal to 1e-09 m"),
    ({"particles": {"file": "nowhere.csv"}}, "file", "not found"),
    ({"separator_thickness": 20e-6}, "separator_thickness", "no room"),
    ({"particles": {"periodic": True, "radius": 4e-6}}, "particles.periodic", "lateral sides"),
]


@pytest.mark.parametrize("geometry,field,fragment", BAD, ids=[f"{b[1]}:{b[2]}" for b in BAD])
def test_bad_geometry_names_field(geometry, field, fragment):
    data = base_case()
    for k, v in geometry.items():
        if isinstance(v, dict):
            data["geometry"].setdefault(k, {}).update(v)
        else:
            data["geometry"][k] = v
    with pytest.raises(CaseError) as err:
        validate_case(data, "case.yaml")
    assert field in str(err.value) and fragment in str(err.value), str(err.value)


def test_bad_particle_file_and_missing_materials(tmp_path):
    bad = tmp_path / "p.csv"
    bad.write_text("x,y,radius\n5e-6,5e-6,2e-6\n8e-6,5e-6,2e-6\n")  # overlapping
    with pytest.raises(CaseError, match=r"particles.file = .*particles 0 and 1 are"):
        validate_case(base_case(particles={"shape": "circle", "file": str(bad)}))
    bad.write_text("x,y,r\n5e-6,5e-6,2e-6\n")
    with pytest.raises(CaseError, match="column 'radius' is missing"):
        validate_case(base_case(particles={"shape": "circle", "file": str(bad)}))
    with pytest.raises(CaseError, match="needs materials.coating"):
        validate_case(base_case(particles={"coating": 0.1e-6}))
    with pytest.raises(CaseError, match="needs materials.active_b"):
        validate_case(base_case(particles={"active_b_share": 0.3}))
