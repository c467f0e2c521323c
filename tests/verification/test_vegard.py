"""Chemical eigenstrain of the particles (Vegard's law): tabulated volumetric strain,
anisotropy turned by the particle orientation, schema errors, and the default law
unchanged.

Closed form (a block made only of active material, uniform lithium fraction x, supports
that leave it free): the eigenstrain eps* = (f(x) - f(x_ref)) A is uniform, so the
displacement is affine and the FE solution (P1) is exact.

* 3D: the strain equals eps* (every component, shear included) and the stress is 0.
* 2D plane strain: eps_zz(u) = 0 while eps*_zz != 0 (and eps*_xz = eps*_yz = 0, the
  particles turn about z). The in-plane stresses vanish if

      eps_ij(u) = eps*_ij + nu eps*_zz delta_ij   (i, j in plane),   sigma_zz = -E eps*_zz.

  Derivation: sigma_xy = 2 mu (eps_xy - eps*_xy) = 0 gives the shear. With the elastic
  strain e = eps(u) - eps*, e_zz = -eps*_zz and e_xx = e_yy = e (the in-plane normal stresses
  are equal and zero): sigma_xx = lambda (2 e - eps*_zz) + 2 mu e = 0, so
  e = lambda eps*_zz / (2 (lambda + mu)) = nu eps*_zz; then sigma_zz = lambda tr(e) + 2 mu
  e_zz = -E eps*_zz (a bar held at both ends). Isotropic case: eps_xx = (1 + nu) f / 3,
  the e_eff of the disc inclusion (tests/closed_forms.py).

Supports: with an isotropic eigenstrain (no shear), rollers on two adjacent sides (the
case's own boundary conditions). A rotated anisotropic eigenstrain has a shear part that
rollers on two adjacent sides forbid (u_x = 0 on x = 0 and u_y = 0 on y = 0 leave no
rotation that makes eps_xy != 0 compatible), so those cases use point supports that only
remove the rigid-body motions: u = 0 at the origin, u_y (and u_z) = 0 at (L, 0, 0) and,
in 3D, u_z = 0 at (0, L, 0).
"""

import copy

import numpy as np
import pytest
import ufl
from dolfinx import fem, mesh as dmesh
from mpi4py import MPI

from meshes import tags as mtags
from meshes.shapes import rotation_2d, rotation_from_angles
from solver.physics import elasticity as el
from solver.config import CaseError, apply_overrides, validate_case
from solver.physics.mechanics import MechanicsProblem as Simulation
from solver.physics.domain import MeshBundle
from solver.physics.tables import piecewise_linear, piecewise_linear_slope
from solver.config.units import to_internal

L = 2.0  # um, side of the block
E_AM, NU_AM = 140e9, 0.3  # SI
TABLE = {"x": [0.1, 0.4, 0.7, 0.9], "strain": [0.0, 0.02, 0.025, 0.06]}  # changing slopes
X_REF = 0.3


# ----------------------------------------------------------------------------- helpers
def block(dim: int, n: int = 3, tag: int = mtags.PARTICLE_BASE, particles=None) -> MeshBundle:
    """The cube [0, L]^dim, every cell tagged ``tag`` (one particle), sides tagged as in
    meshes/tags.py; ``particles``: the particle list of the mesh information."""
    comm = MPI.COMM_WORLD
    if dim == 2:
        domain = dmesh.create_rectangle(comm, [[0.0, 0.0], [L, L]], [n, n], dmesh.CellType.triangle)
    else:
        domain = dmesh.create_box(comm, [[0.0] * 3, [L] * 3], [n] * 3, dmesh.CellType.tetrahedron)
    tdim = domain.topology.dim
    domain.topology.create_connectivity(tdim - 1, tdim)
    ncells = domain.topology.index_map(tdim).size_local + domain.topology.index_map(tdim).num_ghosts
    cells = np.arange(ncells, dtype=np.int32)
    cell_tags = dmesh.meshtags(domain, tdim, cells, np.full(ncells, tag, dtype=np.int32))
    sides = {"left": (0, 0.0), "right": (0, L), "bottom": (1, 0.0), "top": (1, L), "back": (2, 0.0), "front": (2, L)}
    ent, val = [], []
    for name, (axis, c) in list(sides.items())[: 2 * dim]:
        f = dmesh.locate_entities_boundary(domain, tdim - 1, lambda X, a=axis, c=c: np.isclose(X[a], c))
        ent.append(f)
        val.append(np.full(len(f), mtags.SIDES[name], dtype=np.int32))
    ent, val = np.concatenate(ent), np.concatenate(val)
    order = np.argsort(ent)
    facet_tags = dmesh.meshtags(domain, tdim - 1, ent[order].astype(np.int32), val[order])
    info = {"packing": {"particles": particles or []}, "mesh": {}}
    return MeshBundle(domain, cell_tags, facet_tags, info)


def particle(dim: int, angle: float = 0.0, rotation=None, pid: int = 0, material: str = "active") -> dict:
    """A particle entry as in mesh.json (angle in radians in 2D, rotation rows in 3D)."""
    d = {"id": pid, "center": [L / 2] * dim, "radius": L, "shape": "circle" if dim == 2 else "sphere",
         "angle": angle, "material": material}
    if rotation is not None:
        d["rotation"] = np.asarray(rotation).tolist()
    return d


def make_case(dim: int, active: dict, active_b: dict | None = None, boundary: dict | None = None):
    materials = {"active": active, "electrolyte": {"E": 20e9, "nu": 0.3}}
    if active_b is not None:
        materials["active_b"] = active_b
    data = {"name": "vegard", "materials": materials,
            "mechanics": {"boundary": boundary or {}}}
    if dim == 3:
        data.update({"dimension": 3, "geometry": {"size": [8e-6] * 3, "particles": {"shape": "sphere",
                                                                                   "radius": 1e-6}}})
    return to_internal(validate_case(data))


ROLLERS_2D = {"left": "roller", "bottom": "roller", "right": "free", "top": "free"}


def free_supports(sim: Simulation) -> el.ElasticityProblem:
    """The elasticity problem of ``sim`` with point supports that only remove the rigid-body
    motions (see the module docstring), no pressure."""
    domain = sim.domain
    dim = sim.gdim
    V = sim.u.function_space
    domain.topology.create_connectivity(0, domain.topology.dim)

    def vertex(p):
        return dmesh.locate_entities(domain, 0, lambda X: np.all([np.isclose(X[k], p[k]) for k in range(dim)], axis=0))

    o, px, py = [0.0] * dim, [L] + [0.0] * (dim - 1), [0.0, L] + [0.0] * (dim - 2)
    fixed = [(o, range(dim)), (px, range(1, dim))] + ([(py, [2])] if dim == 3 else [])
    bcs = []
    for p, comps in fixed:
        v = vertex(p)
        for k in comps:
            dofs = fem.locate_dofs_topological(V.sub(k), 0, v)
            bcs.append(fem.dirichletbc(0.0, dofs, V.sub(k)))
    energy = el.energy_density(sim.eps_e, sim.mat.lmbda, sim.mat.mu) * sim.dxq
    return el.ElasticityProblem(sim.u, energy, bcs, [], sim.ds, True, {"ksp_type": "preonly", "pc_type": "lu"},
                                prefix=f"test_vegard_{id(sim)}_")


def cell_values(sim: Simulation, expr) -> np.ndarray:
    """A cell-wise constant 3x3 UFL tensor (or scalar) at the midpoint of every local cell."""
    tdim = sim.domain.topology.dim
    cells = np.arange(sim.domain.topology.index_map(tdim).size_local, dtype=np.int32)
    mid = np.full((1, tdim), 1.0 / (tdim + 1))
    return fem.Expression(expr, mid).eval(sim.domain, cells)[:, 0]


def free_strain_2d(eps_star: np.ndarray, nu: float) -> np.ndarray:
    """In-plane strain (2x2) of a free plane-strain body: eps*_ij + nu eps*_zz delta_ij."""
    return eps_star[:2, :2] + nu * eps_star[2, 2] * np.eye(2)


def check_free_block(sim: Simulation, eps_star: np.ndarray, E: float, nu: float) -> None:
    """Strain and stress of the free block against the closed form (E in GPa)."""
    gdim = sim.gdim
    strain = cell_values(sim, el.strain3(sim.u, gdim))
    sigma = cell_values(sim, sim.sigma)
    scale = np.abs(eps_star).max()
    assert scale > 1e-4
    if gdim == 3:
        np.testing.assert_allclose(strain, np.broadcast_to(eps_star, strain.shape), atol=1e-10 * scale, rtol=0)
        np.testing.assert_allclose(sigma, 0.0, atol=1e-9 * E * scale)
    else:
        expected = free_strain_2d(eps_star, nu)
        np.testing.assert_allclose(strain[:, :2, :2], np.broadcast_to(expected, (len(strain), 2, 2)),
                                   atol=1e-10 * scale, rtol=0)
        np.testing.assert_allclose(strain[:, 2, :], 0.0, atol=1e-14)
        np.testing.assert_allclose(sigma[:, :2, :2], 0.0, atol=1e-9 * E * scale)
        np.testing.assert_allclose(sigma[:, 2, 2], -E * eps_star[2, 2], rtol=1e-9)


def law(x) -> float:
    """The tabulated volumetric strain, independently of the code (np.interp is constant
    beyond the ends)."""
    return float(np.interp(x, TABLE["x"], TABLE["strain"]))


# ----------------------------------------------------------------------------- (a) closed forms
def test_table_law_free_block_several_lithiations():
    """Isotropic tabulated law, 2D, the case's rollers on left and bottom: eps_xx = eps_yy =
    (1 + nu) (f(x) - f(x_ref)) / 3, in-plane stresses 0, vol_strain = f(x) - f(x_ref); also
    below and beyond the table (constant there)."""
    case = make_case(2, {"E": E_AM, "nu": NU_AM, "expansion_table": TABLE}, boundary=ROLLERS_2D)
    sim = Simulation(case, block(2))
    E = E_AM * 1e-9
    for x in (0.0, 0.25, 0.55, 0.8, 0.95):
        sim.set_load(x, X_REF)
        assert sim.solve_step().converged
        dv = law(x) - law(X_REF)
        check_free_block(sim, dv / 3.0 * np.eye(3), E, NU_AM)
        sim.update_outputs()
        assert sim.measures()["vol_strain"] == pytest.approx(dv, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("material", ["active", "active_b"])
def test_rotated_anisotropy_2d(material):
    """Linear law with a = [1, 0.4, 0.1] in a particle turned by 35 degrees about z:
    eps* = expansion (x - x_ref) R diag(a) R^T / sum(a) (shear included), in-plane strains
    eps*_ij + nu eps*_zz delta_ij, no in-plane stress; for either active material (cell
    tags 1000 + i and 1000000 + i)."""
    angle, a, expansion, pid = np.radians(35.0), np.array([1.0, 0.4, 0.1]), 0.08, 3
    tag = mtags.particle(pid, material)
    mat = {"E": E_AM, "nu": NU_AM, "expansion": expansion, "anisotropy": a.tolist()}
    other = {"E": 100e9, "nu": 0.2, "expansion": -0.02}  # unused phase
    active, active_b = (mat, other) if material == "active" else (other, mat)
    bundle = block(2, tag=tag, particles=[particle(2, angle, pid=pid, material=material),
                                          particle(2, 0.0, pid=pid + 1)])
    sim = Simulation(make_case(2, active, active_b, ROLLERS_2D), bundle)
    R = np.eye(3)
    R[:2, :2] = rotation_2d(angle)
    shape = R @ np.diag(a / a.sum()) @ R.T
    assert abs(shape[0, 1]) > 0.1  # a real shear part
    A = sim.mat.A.x.array.reshape(-1, 3, 3)
    np.testing.assert_allclose(A, np.broadcast_to(shape, A.shape), atol=1e-15)
    np.testing.assert_allclose(np.trace(A, axis1=1, axis2=2), 1.0, atol=1e-15)
    problem = free_supports(sim)
    x = 0.9
    sim.set_load(x, X_REF)
    assert problem.solve()[0]
    check_free_block(sim, expansion * (x - X_REF) * shape, E_AM * 1e-9, NU_AM)
    sim.update_outputs()
    assert sim.measures()["vol_strain"] == pytest.approx(expansion * (x - X_REF), rel=1e-12)


def test_rotated_anisotropy_with_table_3d():
    """3D: tabulated law and a = [1, 0.5, 0.2] in a particle turned about x, y and z: the
    strain is eps* = (f(x) - f(x_ref)) R diag(a) R^T / sum(a) in every component and the
    stress vanishes."""
    R = rotation_from_angles((20.0, -35.0, 50.0))
    a = np.array([1.0, 0.5, 0.2])
    case = make_case(3, {"E": E_AM, "nu": NU_AM, "expansion_table": TABLE, "anisotropy": a.tolist()})
    sim = Simulation(case, block(3, n=2, particles=[particle(3, rotation=R)]))
    problem = free_supports(sim)
    shape = R @ np.diag(a / a.sum()) @ R.T
    for x in (0.6, 0.05):
        sim.set_load(x, X_REF)
        assert problem.solve()[0]
        dv = law(x) - law(X_REF)
        check_free_block(sim, dv * shape, E_AM * 1e-9, NU_AM)
        sim.update_outputs()
        assert sim.measures()["vol_strain"] == pytest.approx(dv, rel=1e-12)


def test_table_and_anisotropy_follow_a_lithium_field():
    """A P1 lithium field (electrochemistry) with a table and anisotropy: the eigenstrain at
    points where x(X) = X_0 / L is (f(x) - f(x_ref)) A, and the table's slope (the partial
    molar volume of the stress-assisted flux, times c_max) is the slope of the segment."""
    angle, a = np.radians(-20.0), [1.0, 1.0, 0.25]
    case = make_case(2, {"E": E_AM, "nu": NU_AM, "expansion_table": TABLE, "anisotropy": a}, boundary=ROLLERS_2D)
    bundle = block(2, n=7, particles=[particle(2, angle)])
    x = fem.Function(fem.functionspace(bundle.mesh, ("Lagrange", 1)))
    x.interpolate(lambda X: X[0] / L)
    sim = Simulation(case, bundle, lithium=x, x_ref=X_REF)
    tdim = 2
    cells = np.arange(sim.domain.topology.index_map(tdim).size_local, dtype=np.int32)
    mid = dmesh.compute_midpoints(sim.domain, tdim, cells)[:, 0] / L  # x at the cell midpoints
    R = np.eye(3)
    R[:2, :2] = rotation_2d(angle)
    shape = R @ np.diag(np.array(a) / sum(a)) @ R.T
    eps = cell_values(sim, sim.eps_ch)
    expected = np.array([(law(s) - law(X_REF)) * shape for s in mid])
    np.testing.assert_allclose(eps, expected, atol=1e-15)
    slope = cell_values(sim, case.materials.active.strain_slope(x, ufl))
    np.testing.assert_allclose(slope, piecewise_linear_slope(mid, TABLE["x"], TABLE["strain"]), atol=1e-14)
    # the slope of a table: segment by segment, 0 beyond the ends, the right-hand one at a point
    s = np.array([0.0, 0.1, 0.25, 0.4, 0.69, 0.7, 0.8, 0.9, 1.0])
    np.testing.assert_allclose(piecewise_linear_slope(s, TABLE["x"], TABLE["strain"]),
                               [0.0, 0.2 / 3, 0.2 / 3, 0.05 / 3, 0.05 / 3, 0.175, 0.175, 0.0, 0.0], rtol=1e-12)
    np.testing.assert_allclose(piecewise_linear(s, TABLE["x"], TABLE["strain"]), np.interp(s, TABLE["x"],
                                                                                            TABLE["strain"]))
    # the linear law: the number expansion, as before
    lin = make_case(2, {"E": E_AM, "nu": NU_AM, "expansion": 0.07}).materials.active
    assert lin.strain_slope(x, ufl) == 0.07 and lin.volumetric_strain(0.5) == pytest.approx(0.035)


def test_anisotropy_needs_particle_orientations():
    case = make_case(2, {"E": E_AM, "nu": NU_AM, "expansion": 0.05, "anisotropy": [1, 0.5, 0.5]},
                     boundary=ROLLERS_2D)
    with pytest.raises(ValueError, match="materials.active.anisotropy needs the orientation of particle 0"):
        Simulation(case, block(2))


# ----------------------------------------------------------------------------- (b) schema
BASE = {"name": "t", "materials": {"active": {"E": 140e9, "nu": 0.3},
                                   "electrolyte": {"E": 20e9, "nu": 0.3}}}

BAD = [
    # (override, field named in the message, fragment of the message)
    ("materials.active.expansion_table", "{x: [0, 0.5, 0.4], strain: [0, 0.01, 0.02]}",
     "materials.active.expansion_table", "must increase strictly"),
    ("materials.active.expansion_table", "{x: [0, 0.5, 1.2], strain: [0, 0.01, 0.02]}",
     "materials.active.expansion_table", "must lie in [0, 1]"),
    ("materials.active.expansion_table", "{x: [-0.1, 0.5], strain: [0, 0.01]}",
     "materials.active.expansion_table", "must lie in [0, 1]"),
    ("materials.active.expansion_table", "{x: [0, 0.5, 1], strain: [0, 0.01]}",
     "materials.active.expansion_table", "x has 3 values but strain has 2"),
    ("materials.active.expansion_table", "{x: [0, 0.5, 1], strain: [0, .nan, 0.02]}",
     "materials.active.expansion_table.strain.1", "finite number"),
    ("materials.active.expansion_table", "{x: [0, 1], strain: [0, .inf]}",
     "materials.active.expansion_table.strain.1", "finite number"),
    ("materials.active.expansion_table", "{x: [0.5], strain: [0.01]}",
     "materials.active.expansion_table.x", "at least 2"),
    ("materials.active.expansion_table", "{x: [0, 1], strain: [-2, 2]}",
     "materials.active.expansion_table", "span less than 3"),
    ("materials.active.expansion_table", "{x: [0, 1], strains: [0, 0.05]}",
     "materials.active.expansion_table.strains", "unknown key"),
    ("materials.active", "{E: 140e9, nu: 0.3, expansion: 0.05, expansion_table: {x: [0, 1], strain: [0, 0.05]}}",
     "materials.active", "give either expansion"),
    ("materials.active.anisotropy", "[1, 0.5]", "materials.active.anisotropy", "at least 3"),
    ("materials.active.anisotropy", "[1, 0.5, 0.2, 0.1]", "materials.active.anisotropy", "at most 3"),
    ("materials.active.anisotropy", "[1, -1, -0.5]", "materials.active.anisotropy", "positive sum"),
    ("materials.active.anisotropy", "[0, 0, 0]", "materials.active.anisotropy", "positive sum"),
    ("materials.active.anisotropy", "[1, .inf, 1]", "materials.active.anisotropy.1", "finite number"),
    ("materials.active_b", "{E: 140e9, nu: 0.3, expansion_table: {x: [0, 0.5, 1], strain: [0, 0.01]}}",
     "materials.active_b.expansion_table", "x has 3 values but strain has 2"),
]


@pytest.mark.parametrize("path,value,field,fragment", BAD, ids=[f"{b[0]}={b[1]}" for b in BAD])
def test_bad_vegard_input_names_field(path, value, field, fragment):
    data = apply_overrides(copy.deepcopy(BASE), [f"{path}={value}"])
    with pytest.raises(CaseError) as err:
        validate_case(data, "case.yaml")
    msg = str(err.value)
    assert msg.startswith("case.yaml: ") and field in msg and fragment in msg, msg


def test_good_vegard_input_and_round_trip():
    """A table with expansion left out or 0; the resolved case (every field written, as in
    case.yaml) validates again."""
    for active in ({"E": 140e9, "nu": 0.3, "expansion_table": TABLE, "anisotropy": [2, 1, 1]},
                   {"E": 140e9, "nu": 0.3, "expansion": 0.0, "expansion_table": TABLE}):
        data = copy.deepcopy(BASE)
        data["materials"]["active"] = active
        case = validate_case(data)
        again = validate_case(case.model_dump(mode="json"))
        assert again.materials.active.expansion_table.strain == TABLE["strain"]
    default = validate_case(copy.deepcopy(BASE)).materials.active
    assert default.expansion_table is None and default.anisotropy is None and default.isotropic
    data = apply_overrides(copy.deepcopy(BASE), ["materials.active.anisotropy=[2, 2, 2]"])
    assert validate_case(data).materials.active.isotropic


# ----------------------------------------------------------------------------- (c) the default law
def test_default_law_unchanged():
    """No table, isotropic: the eigenstrain and vol_strain are the expressions of earlier
    versions, (expansion / 3) (x - x_ref) I and 3 (expansion / 3) (x - x_ref) (same form
    signatures, so the same compiled kernels and bit-identical results), no anisotropy
    field is built, and a prescribed run gives vol_strain = expansion (x - x_ref)."""
    expansion = 0.06
    case = make_case(2, {"E": E_AM, "nu": NU_AM, "expansion": expansion}, boundary=ROLLERS_2D)
    sim = Simulation(case, block(2))
    assert sim.mat.A is None and sim.mat.tables == []
    b, x, xr = sim.mat.beta, sim.x_li, sim.x_ref
    old_eps = b * (x - xr) * ufl.Identity(3)
    old_vol = 3.0 * b * (x - xr)

    def signature(expr):
        return (ufl.inner(expr, expr) * ufl.dx(domain=sim.domain)).signature()

    assert signature(sim.eps_ch) == signature(old_eps)
    assert signature(sim._vol_strain) == signature(old_vol)
    np.testing.assert_array_equal(sim.mat.beta.x.array, expansion / 3.0)
    for xv in (0.3, 0.7, 1.0):
        sim.set_load(xv, 0.1)
        assert sim.solve_step().converged
        sim.update_outputs()
        meas = sim.measures()
        assert meas["vol_strain"] == pytest.approx(expansion * (xv - 0.1), rel=1e-13)
        check_free_block(sim, expansion / 3.0 * (xv - 0.1) * np.eye(3), E_AM * 1e-9, NU_AM)
