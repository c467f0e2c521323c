"""Electrochemistry: OCV curves, the galvanostatic schema, and verification of the coupled
lithium transport / ionic conduction / Butler-Volmer problem.

* Ohmic check: an electrolyte slab in front of an active-material strip with a flat OCV
  and a constant exchange current: V = U + eta_c(I) - eta_a(I) - I R, exactly.
* Effective conductivity: layers of damage along the slab (parallel paths, exact) and a
  partial crack across it (between the series/parallel bounds).
* A small composite from the microstructure builder: lithium conservation, charge
  conservation every step, the rate trend, the depth profile under ionic limitation,
  particle potentials, save/restore, 1 and 2 MPI ranks.
* The stress-assisted flux: the equilibrium x / (1 - x) = C exp(Omega sigma_h / RT).
"""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import ufl
from dolfinx import fem, mesh
from dolfinx.mesh import compute_midpoints, locate_entities, locate_entities_boundary, meshtags
from mpi4py import MPI

from conftest import ROOT, mpiexec, subprocess_env
from solver.config import CaseError, validate_case
from solver.physics.constants import FARADAY, R_GAS
from solver.physics.electrochemistry import ElectrochemistryProblem, EffectiveConductivity, run_protocol
from solver.physics.electrochemistry.ocv import CLAMP, CURVES, get_ocv, lco_doyle1995, nmc811_chen2020
from solver.config.units import GPA_UM3_TO_J, to_internal

COMPOSITE = ROOT / "tests" / "data" / "electrochem_small.yaml"
#: a small 3D composite: random convex polyhedra behind a separator layer
COMPOSITE_3D = ROOT / "tests" / "data" / "cycling_3d_small.yaml"
MATERIALS = {"active": {"E": 140e9, "nu": 0.3, "expansion": 0.05}, "electrolyte": {"E": 20e9, "nu": 0.3}}


# ----------------------------------------------------------------------------- OCV curves
def test_ocv_curves_values_monotone_and_clamped():
    # values of the published fits (docstrings of solver/physics/electrochemistry/ocv.py)
    assert lco_doyle1995(0.5) == pytest.approx(4.186, abs=1e-3)
    assert lco_doyle1995(0.9) == pytest.approx(3.906, abs=1e-3)
    assert nmc811_chen2020(0.27) == pytest.approx(4.273, abs=1e-3)
    assert nmc811_chen2020(0.9) == pytest.approx(3.568, abs=1e-3)
    for name, U in CURVES.items():
        lo, hi = CLAMP[name]
        x = np.linspace(lo, hi, 2001)
        assert np.all(np.diff(U(x)) < 0), f"{name} must decrease with x"
        # clamped: constant outside the valid range, never the collapse of the LCO fit
        assert U(hi + 0.02) == pytest.approx(U(hi)) and U(lo - 0.1) == pytest.approx(U(lo))
        assert U(1.2) > 2.5
    # tables: linear in between, constant beyond
    T = get_ocv({"x": [0.2, 0.8], "U": [4.2, 3.6]})
    assert T(0.5) == pytest.approx(3.9) and T(0.0) == pytest.approx(4.2) and T(1.0) == pytest.approx(3.6)
    with pytest.raises(ValueError, match="unknown"):
        get_ocv("lfp")


def test_ocv_ufl_matches_numpy():
    """The UFL form of each curve (used in the residual) equals the NumPy one."""
    dom = mesh.create_interval(MPI.COMM_SELF, 200, [0.0, 1.1])
    V = fem.functionspace(dom, ("Lagrange", 1))
    x = fem.Function(V)
    x.interpolate(lambda p: p[0])
    Q = fem.functionspace(dom, ("DG", 0))
    for name, U in CURVES.items():
        u = fem.Function(Q)
        u.interpolate(fem.Expression(U(x, ufl), Q.element.interpolation_points))
        mid = compute_midpoints(dom, 1, np.arange(200, dtype=np.int32))[:, 0]
        assert np.allclose(u.x.array[Q.dofmap.list[:, 0]], U(mid), atol=1e-12), name


# ----------------------------------------------------------------------------- schema
def galvanostatic(**over):
    ld = {
        "type": "galvanostatic",
        "active": {"c_max": 63104.0, "diffusivity": 4e-15, "ocv": "nmc811_chen2020"},
        "electrolyte": {"kappa": 0.1},
    }
    ld.update(over)
    return {"name": "t", "materials": MATERIALS, "loading": ld}


def test_schema_galvanostatic_units_and_defaults():
    case = validate_case(galvanostatic(protocol=[{"mode": "discharge", "current_density": 20.0},
                                                 {"mode": "rest", "duration": 600},
                                                 {"mode": "charge", "c_rate": 0.5, "cutoff": 4.2},
                                                 {"mode": "hold", "voltage": 4.2, "until_c_rate": 0.05}]))
    ld = to_internal(case).loading
    assert ld.electrolyte.kappa == pytest.approx(0.1e-6)  # S/m -> S/um
    assert ld.active.c_max == pytest.approx(63104e-18)  # mol/m^3 -> mol/um^3
    assert ld.active.diffusivity == pytest.approx(4e-3)  # m^2/s -> um^2/s
    assert ld.active.kinetics.k0 == pytest.approx(1e-12)  # A/m^2 -> A/um^2 (default k0 = 1 A/m^2)
    assert ld.protocol[0].current_density == pytest.approx(20e-12)
    assert ld.temperature == 298.15 and ld.v_min == 3.0 and ld.protocol[2].cutoff == 4.2
    # the prescribed loading stays the default
    assert validate_case({"name": "t", "materials": MATERIALS}).loading.type == "prescribed"


BAD = [
    ({"electrolyte": {"kappa": -1.0}}, "loading.electrolyte.kappa", "greater than or equal to 1e-12 S/m"),
    ({"colour": 1}, "loading.colour", "allowed here: active, active_b"),
    ({"active": {"c_max": 1e4, "ocv": "nmc811_chen2020"}}, "loading.active", "exactly one of diffusivity"),
    ({"active": {"c_max": 1e4, "diffusivity": 1e-14, "ocv": "lfp"}}, "loading.active", "unknown curve"),
    ({"active": {"c_max": 1e4, "diffusivity": 1e-14, "ocv_table": {"x": [0.1, 0.1], "U": [4, 3]}}},
     "loading.active.ocv_table", "increase strictly"),
    ({"active": {"c_max": 1e4, "diffusivity": 1e-14, "ocv": "lco_doyle1995", "kinetics": {"k0": 1, "i0": 2}}},
     "loading.active.kinetics", "either k0"),
    ({"protocol": [{"mode": "rest"}]}, "loading.protocol.0", "needs a duration"),
    ({"protocol": [{"mode": "hold", "voltage": 4.1}]}, "loading.protocol.0", "until_c_rate or a duration"),
    ({"protocol": [{"mode": "discharge", "voltage": 4.1}]}, "loading.protocol.0", "for mode: hold"),
    ({"protocol": [{"mode": "charge", "cutoff": 2.0}]}, "loading", "outside [v_min, v_max]"),
    ({"v_min": 4.5}, "loading", "v_min (4.5) must be below"),
    ({"electronic": {"isolated": [1]}}, "loading.electronic", "need model: per_particle"),
]


@pytest.mark.parametrize("over,field,fragment", BAD, ids=[b[1] + ":" + b[2] for b in BAD])
def test_schema_errors_name_the_field(over, field, fragment):
    with pytest.raises(CaseError) as err:
        validate_case(galvanostatic(**over), "x.yaml")
    msg = str(err.value)
    assert f"x.yaml: {field}" in msg and fragment in msg, msg


# ----------------------------------------------------------------------------- slabs
def slab(L: float, H: float, nx: int, ny: int, am_from: float | None = None, cross: bool = False):
    """Structured rectangle [0, L] x [0, H] (um) with the ssbfrac tags: cells with x > am_from
    are particle 0 (tag 1000), the rest electrolyte; facet tags left 1, right 2, bottom 3,
    top 4 and the interface x = am_from 1000."""
    comm = MPI.COMM_WORLD
    diag = mesh.DiagonalType.crossed if cross else mesh.DiagonalType.right
    dom = mesh.create_rectangle(comm, [[0.0, 0.0], [L, H]], [nx, ny], diagonal=diag)
    tdim = 2
    dom.topology.create_connectivity(1, 2)
    n = dom.topology.index_map(tdim).size_local + dom.topology.index_map(tdim).num_ghosts
    cells = np.arange(n, dtype=np.int32)
    mid = compute_midpoints(dom, tdim, cells)
    values = np.ones(n, dtype=np.int32)
    if am_from is not None:
        values[mid[:, 0] > am_from] = 1000
    cell_tags = meshtags(dom, tdim, cells, values)
    found = {}
    for tag, where in ((1, lambda p: np.isclose(p[0], 0.0)), (2, lambda p: np.isclose(p[0], L)),
                       (3, lambda p: np.isclose(p[1], 0.0)), (4, lambda p: np.isclose(p[1], H))):
        for f in locate_entities_boundary(dom, 1, where):
            found.setdefault(int(f), tag)
    if am_from is not None:
        for f in locate_entities(dom, 1, lambda p: np.isclose(p[0], am_from)):
            found[int(f)] = 1000
    idx = np.array(sorted(found), dtype=np.int32)
    facet_tags = meshtags(dom, 1, idx, np.array([found[i] for i in idx], dtype=np.int32))
    return dom, cell_tags, facet_tags


def slab_case(**over):
    ld = {
        "type": "galvanostatic", "initial_lithiation": 0.5, "v_min": 3.0, "v_max": 5.0,
        "time_step": 2.5, "max_time_step": 2.5,
        "active": {"c_max": 5.0e4, "diffusivity": 1e-12, "ocv_table": {"x": [0.0, 1.0], "U": [4.0, 4.0]},
                   "kinetics": {"i0": 1.0}},
        "electrolyte": {"kappa": 1e-5},
        "protocol": [{"mode": "discharge", "current_density": 0.1, "duration": 10.0},
                     {"mode": "charge", "current_density": 0.1, "duration": 10.0}],
    }
    ld.update(over)
    return to_internal(validate_case({"name": "slab", "materials": MATERIALS, "loading": ld}))


@pytest.mark.parametrize("anode", ["fast", "butler_volmer"])
def test_ohmic_slab(anode):
    """V = U + eta_c - eta_a - I R with R = L_SE / (kappa_eff H) and the Butler-Volmer
    overpotentials of the uniform current densities (alpha = 1/2: eta = 2 RT/F asinh(i / 2 i0)).
    Undamaged, kappa_eff = kappa (1 + k_res) (the damage law kappa ((1 - d)^p + k_res))."""
    L_se, L_am, H = 10.0, 2.0, 4.0
    dom, ct, ft = slab(L_se + L_am, H, 24, 4, am_from=L_se)
    case = slab_case(anode={"kinetics": anode, "i0": 2.0})
    ec = ElectrochemistryProblem(dom, ct, ft, case)
    ld = case.loading
    i = ld.protocol[0].current_density  # A/um^2, per collector area = per interface area here
    R = L_se / (ld.electrolyte.kappa * (1 + ld.damage_feedback.residual) * H)
    f = FARADAY / (R_GAS * ld.temperature)
    eta_c = 2 / f * math.asinh(i / (2 * ld.active.kinetics.i0))
    eta_a = 2 / f * math.asinh(i / (2 * ld.anode.i0)) if anode == "butler_volmer" else 0.0
    seen = set()
    while not ec.done:
        res = ec.step(2.5)
        assert res.converged, res.reason
        s = ec.state
        sign = 1.0 if s.mode == "discharge" else -1.0
        assert s.current == pytest.approx(sign * i * H, rel=1e-9)
        ohmic = 4.0 - sign * (eta_c + eta_a) - s.voltage  # = I R
        assert ohmic == pytest.approx(sign * i * H * R, rel=5e-3), (s.mode, ohmic, i * H * R)
        assert abs(ohmic - sign * i * H * R) < 1e-9  # P1 is exact for the linear potential
        assert ec.anode_current() == pytest.approx(s.current, rel=1e-8)
        seen.add(s.mode)
    assert seen == {"discharge", "charge"}
    assert [e["event"] for e in ec.segment_log] == ["duration", "duration"]
    assert ec.time == pytest.approx(20.0)


def test_electronic_network_ohmic_slab():
    """One particle (the slab's active block) connected through a network of conductivity
    sigma: for the same current the particle and the fields are those of the uniform model,
    and the cell voltage is lower (discharge) or higher (charge) by I (x_max - x_c) / (sigma H),
    x_c the block's centroid."""
    L_se, L_am, H = 10.0, 2.0, 4.0
    dom, ct, ft = slab(L_se + L_am, H, 24, 4, am_from=L_se)
    uni = ElectrochemistryProblem(dom, ct, ft, slab_case())
    sigma = 10.0  # S/m
    net = ElectrochemistryProblem(dom, ct, ft, slab_case(electronic={"model": "per_particle", "conductivity": sigma}))
    assert net.particle_depth[0] == pytest.approx(L_se + L_am / 2, rel=1e-12)
    R = (L_am / 2) / (sigma * 1e-6 * H)  # Ohm um
    while not uni.done:
        assert uni.step(2.5).converged and net.step(2.5).converged
        s = net.state
        assert s.current == pytest.approx(uni.state.current, rel=1e-9)
        assert uni.voltage - s.voltage == pytest.approx(s.current * R, rel=1e-6)
        assert net.u[0] == pytest.approx(uni.voltage, abs=1e-8)  # the particle's own potential


def test_electronic_limitation_lithiates_the_collector_side_first():
    """With a poor electronic network (and a good ionic conductor) the particles near the
    collector react first: x rises with depth, the opposite of the ionic limitation."""
    _, slope, x, ec = discharge("loading.electronic.model=per_particle", "loading.electronic.conductivity=2e-4",
                                "loading.electrolyte.kappa=0.1", "loading.c_rate=1")
    assert slope > 0 and x[-1] - x[0] > 0.05, x
    # the network resistance is symmetric, positive, and largest for the deepest particle
    R = ec.resistance
    assert np.allclose(R, R.T) and np.all(np.linalg.eigvalsh(R) > 0)
    k = int(np.argmin(ec.particle_depth))
    assert R[k, k] == R.max()


def kappa_of(d: fem.Function, p: float, k_res: float):
    return (1.0 - d) ** p + k_res


def test_effective_conductivity_parallel_crack_layer():
    """Damage d = 1 in a layer y <= a along the whole slab: the paths are in parallel and
    kappa_hom / kappa = (1/H) int ((1 - d)^p + k_res) dy, exact for the P1 damage profile
    (d falls linearly from 1 to 0 over one cell row: that row contributes h / (p + 1))."""
    L, H, nx, ny = 10.0, 4.0, 30, 20
    h = H / ny
    dom, ct, ft = slab(L, H, nx, ny)
    V = fem.functionspace(dom, ("Lagrange", 1))
    d = fem.Function(V)
    a = 1.6
    d.interpolate(lambda q: np.where(q[1] <= a + 1e-9, 1.0, 0.0))
    p, k_res = 2.0, 1e-4
    ionic = ct.indices[ct.values == 1]
    hom = EffectiveConductivity(dom, ct, ft, kappa_of(d, p, k_res), ionic)
    k = hom.solve()
    expected = (a * k_res + h * (1.0 / (p + 1) + k_res) + (H - a - h) * (1.0 + k_res)) / H
    assert k == pytest.approx(expected, rel=1e-8)
    d.x.array[:] = 0.0
    assert hom.solve() == pytest.approx(1.0 + k_res, rel=1e-10)
    # a crack across the whole height: only the residual conductivity is left
    d.interpolate(lambda q: np.where(np.abs(q[0] - 5.0) <= 1.0 + 1e-9, 1.0, 0.0))
    k_cut = hom.solve()
    assert k_cut < 20 * k_res


def test_effective_conductivity_partial_crack_between_bounds():
    """A band crack (d = 1 for |x - L/2| <= w/2, y <= a) across part of the height. The
    exact conductivity lies between the parallel-of-series bound (current kept in horizontal
    lines) and the series-of-parallel one (potential uniform on vertical lines), both
    computed here by quadrature of the same P1 damage; for a long band the second is the
    parallel-paths estimate: conductivity (1 - a/H) kappa over the band, in series with the
    rest."""
    L, H, nx, ny = 20.0, 2.0, 100, 20
    dom, ct, ft = slab(L, H, nx, ny, cross=True)
    V = fem.functionspace(dom, ("Lagrange", 1))
    d = fem.Function(V)
    w, a = 10.0, 1.0
    inside = lambda q: (np.abs(q[0] - L / 2) <= w / 2 + 1e-9) & (q[1] <= a + 1e-9)  # noqa: E731
    d.interpolate(lambda q: np.where(inside(q), 1.0, 0.0))
    p, k_res = 2.0, 1e-4
    k = EffectiveConductivity(dom, ct, ft, kappa_of(d, p, k_res), ct.indices).solve()

    # the P1 damage on the structured mesh: bilinear interpolation of the nodal 0/1 pattern
    xs = np.linspace(0, L, 4001)
    ys = np.linspace(0, H, 801)
    hx, hy = L / nx, H / ny
    fx = np.clip(1 - np.maximum(np.abs(xs - L / 2) - w / 2, 0) / hx, 0, 1)
    fy = np.clip(1 - np.maximum(ys - a, 0) / hy, 0, 1)
    D2 = np.outer(fy, fx)  # d(y, x), exact on the cells away from the band corners
    kap = (1 - D2) ** p + k_res
    upper = L / np.trapezoid(1.0 / np.trapezoid(kap, ys, axis=0), xs) / H  # series of parallel
    lower = np.trapezoid(1.0 / np.trapezoid(1.0 / kap, xs, axis=1), ys) * L / H  # parallel of series
    # by hand: parallel paths (intact ligament H - a, broken part ~ 0) over the band, in
    # series with the intact slab; the P1 damage blocks a further p/(p + 1) of the cell row
    # above the band (its conductance there is int (y/h)^p dy = h/(p + 1))
    a_eff = a + hy * p / (p + 1)
    estimate = L / ((L - w) + w / (1 - a_eff / H))
    assert lower * (1 - 1e-3) <= k <= upper * (1 + 1e-3), (lower, k, upper)
    assert k == pytest.approx(upper, rel=0.03)  # the current spreads over lengths ~ H << w
    assert k == pytest.approx(estimate, rel=0.03)
    assert k < 0.65  # the crack takes away more than a third of the conduction


# ----------------------------------------------------------------------------- composite
def composite(*overrides, case=COMPOSITE):
    from solver.runs.mesh import build_mesh
    from solver.runs.runner import prepare_case

    comm = MPI.COMM_WORLD
    _, internal, packing = prepare_case(case, list(overrides), comm)
    bundle = build_mesh(internal, comm, packing=packing)
    return ElectrochemistryProblem(bundle.mesh, bundle.cell_tags, bundle.facet_tags, internal)


#: the 3D composite without fracture, meshed coarser (the damage needs ell / 2, the transport does not)
COARSE_3D = ("fracture.enabled=false", "geometry.mesh.size=0.4e-6", "geometry.mesh.interface_size=0.3e-6")


@pytest.mark.parametrize("case, coarse, v_min", [(COMPOSITE, (), 3.6), (COMPOSITE_3D, COARSE_3D, 3.5),
                                                  (COMPOSITE_3D, COARSE_3D + ("loading.linear_solver=iterative",), 3.5)],
                         ids=["2d", "3d", "3d_iterative"])
def test_composite_conservation_over_a_cycle(case, coarse, v_min):
    """Discharge to the cut-off, rest, charge, hold to C/20, in 2D and in 3D (faceted
    particles), in 3D also with the iterative (x, phi_e) solve (GMRES with block
    Gauss-Seidel, solver.numerics.blocks): the lithium gained equals the charge passed over
    F, and every galvanostatic step carries exactly the applied current (through the
    particle surfaces and through the lithium side)."""
    ec = composite("loading.protocol=[{mode: discharge}, {mode: rest, duration: 300}, {mode: charge, c_rate: 2},"
                   " {mode: hold, voltage: 4.2, until_c_rate: 0.05}]", *coarse, case=case)
    li0 = ec.total_lithium()
    worst = {"interface": 0.0, "anode": 0.0}

    def check(p, res):
        s = p.state
        seg = p.segments_per_cycle[s.segment % len(p.segments_per_cycle)]
        if seg.mode != "hold":
            worst["interface"] = max(worst["interface"], abs(p.interface_current_total() - seg.current) / p.one_c)
        worst["anode"] = max(worst["anode"], abs(p.anode_current() - s.current) / p.one_c)

    counters = run_protocol(ec, check)
    s = ec.state
    assert [e["event"] for e in ec.segment_log] == ["cutoff", "duration", "cutoff", "current"]
    assert [e["mode"] for e in ec.segment_log] == ["discharge", "rest", "charge", "hold"]
    assert ec.segment_log[0]["voltage"] == pytest.approx(v_min, abs=1e-3)
    assert ec.segment_log[2]["voltage"] == pytest.approx(4.3, abs=1e-3)
    assert abs(s.current) < 0.05 * ec.one_c
    passed = sum(e["charge"] for e in ec.segment_log)
    assert s.charge == pytest.approx(passed, rel=1e-12)
    dli = ec.total_lithium() - li0
    scale = ec.segment_log[0]["capacity"] / FARADAY  # lithium moved in the discharge
    assert abs(dli - s.charge / FARADAY) < 1e-6 * scale, (dli, s.charge / FARADAY)
    assert worst["interface"] < 1e-9 and worst["anode"] < 1e-8, worst
    assert counters["steps"] > 20


def discharge(*overrides, duration: float | None = None):
    """Discharge to the cut-off (or for ``duration`` s); returns the capacity (C per um),
    the slope of the lithiation profile across the thickness (1/um), the profile and the
    problem."""
    seg = "{mode: discharge}" if duration is None else f"{{mode: discharge, duration: {duration}}}"
    ec = composite(f"loading.protocol=[{seg}]", *overrides)
    run_protocol(ec)
    centres, x = ec.lithiation_profile(6)
    ok = ~np.isnan(x)
    slope = np.polyfit(centres[ok], x[ok], 1)[0]
    return ec.segment_log[0]["capacity"], slope, x[ok], ec


def test_rate_and_depth_under_ionic_limitation():
    """With a poor ionic conductor, lithiation concentrates near the separator (x falls with
    depth). A higher rate reaches the cut-off with less capacity, and its gradient across the
    thickness is steeper than that of the lower rate after the same charge. A good conductor
    lithiates the thickness evenly."""
    poor = "loading.electrolyte.kappa=5e-4"
    slow_cap, slow_slope, slow_x, ec = discharge(poor, "loading.c_rate=0.5")
    fast_cap, fast_slope, fast_x, _ = discharge(poor, "loading.c_rate=3")
    same_cap, same_slope, _, _ = discharge(poor, "loading.c_rate=0.5", duration=fast_cap / (0.5 * ec.one_c))
    good_cap, good_slope, good_x, _ = discharge("loading.electrolyte.kappa=0.1", "loading.c_rate=0.5")
    assert same_cap == pytest.approx(fast_cap, rel=1e-9)
    assert slow_slope < 0 and fast_slope < 0 and same_slope < 0  # the separator side is fuller
    assert fast_cap < 0.5 * slow_cap < 0.5 * good_cap
    assert fast_slope < 1.5 * same_slope  # steeper at the same state of charge (by a factor ~1.9)
    assert slow_x[0] - slow_x[-1] > 0.05
    assert np.ptp(good_x) < 0.1 * np.ptp(slow_x)
    assert abs(good_slope) < 0.05 * abs(slow_slope)


def test_particle_potentials():
    """One potential per particle: with no contact resistance it is the uniform model; an
    isolated particle keeps its lithium and carries no net current; a contact resistance
    raises the particle potentials above the cell voltage on discharge."""
    steps = [20.0, 40.0, 60.0]
    base = ["loading.protocol=[{mode: discharge, duration: 120}]"]
    uni = composite(*base)
    per = composite(*base, "loading.electronic.model=per_particle")
    for dt in steps:
        assert uni.step(dt).converged and per.step(dt).converged
        assert per.voltage == pytest.approx(uni.voltage, abs=1e-8)
    assert per.m > 2
    iso = composite(*base, "loading.electronic.model=per_particle", "loading.electronic.contact_resistance=1e-2",
                    "loading.electronic.isolated=[1]")
    k = iso.groups.index(1)
    li0 = iso.particle_lithium()
    for dt in steps:
        assert iso.step(dt).converged
        I = iso.particle_currents()
        assert abs(I[k]) < 1e-9 * iso.one_c
        assert I.sum() == pytest.approx(iso.one_c, rel=1e-9)
    li = iso.particle_lithium()
    assert li[k] == pytest.approx(li0[k], rel=1e-9)
    assert np.all(np.delete(li - li0, k) > 0)
    q = iso.u[: iso.m]
    others = np.delete(np.arange(iso.m), k)
    drop = (iso.resistance @ iso.particle_currents())[others]
    assert np.allclose(q[others] - iso.voltage, drop, atol=1e-8)
    assert np.all(drop > 1e-3)


def test_save_restore_and_rejected_step():
    ec = composite("loading.protocol=[{mode: discharge, duration: 200}]")
    assert ec.step(20.0).converged
    ec.save_state()
    x_saved, v_saved = ec.x.x.array.copy(), ec.voltage
    r1 = ec.step(40.0)
    v1, x1 = ec.voltage, ec.x.x.array.copy()
    ec.restore_state()
    assert ec.voltage == v_saved and ec.time == pytest.approx(20.0)
    assert np.array_equal(ec.x.x.array, x_saved)
    r2 = ec.step(40.0)
    assert r1.converged and r2.converged
    assert ec.voltage == pytest.approx(v1, abs=1e-10)
    assert np.allclose(ec.x.x.array, x1, atol=1e-12)
    # the end of a duration is never stepped over
    res = ec.step(500.0)
    assert res.dt == pytest.approx(140.0) and res.event == "duration" and ec.done
    with pytest.raises(RuntimeError, match="complete"):
        ec.step(1.0)


@pytest.mark.parametrize("model", ["uniform", "per_particle"])
def test_coupled_newton_matches_the_nested_iteration(monkeypatch, model):
    """The fast path of a step (Newton on the fields and the potentials together) gives the
    steps of the nested iteration (fields converged for every control update) to the
    solver tolerance, galvanostatic and potentiostatic, and takes most steps."""
    import solver.physics.electrochemistry.control as ecm

    over = ["loading.protocol=[{mode: discharge, duration: 400}, {mode: hold, voltage: 3.9, duration: 120}]",
            f"loading.electronic.model={model}"]
    if model == "per_particle":
        over.append("loading.electronic.contact_resistance=1e-2")

    def run():
        ec = composite(*over)
        out = []
        while not ec.done:
            r = ec.step(40.0)
            assert r.converged, r.reason
            out.append((ec.voltage, ec.current, ec.u.copy(), ec.x.x.array.copy(), ec.phi_e.x.array.copy(), r.coupled))
        return out

    fast = run()
    monkeypatch.setattr(ecm, "FAST_NEWTON_ITERATIONS", 0)
    nested = run()
    assert len(fast) == len(nested) == 13
    for a, b in zip(fast, nested):
        assert a[0] == pytest.approx(b[0], abs=1e-8) and a[1] == pytest.approx(b[1], rel=1e-8)
        assert np.allclose(a[2], b[2], atol=1e-8)
        assert np.allclose(a[3], b[3], atol=1e-8) and np.allclose(a[4], b[4], atol=1e-8)
    assert sum(a[-1] for a in fast) >= 11 and not any(b[-1] for b in nested)


def test_current_too_large_ends_the_segment_at_once():
    """A current the electrolyte cannot carry (the cut-off would be passed at once) ends the
    discharge without a step instead of failing."""
    ec = composite("loading.electrolyte.kappa=1e-6", "loading.c_rate=2", "loading.protocol=[{mode: discharge}]")
    res = ec.step(20.0)
    assert res.converged and res.event == "cutoff" and res.dt == 0.0 and ec.done
    assert ec.state.charge == 0.0


# ----------------------------------------------------------------------------- stress-assisted flux
def test_stress_assisted_flux_equilibrium():
    """At rest, with sigma_h = s (x - x_se) in an active strip, the stress-assisted flux
    D x (1 - x) Omega / (RT) grad sigma_h balances diffusion when
    ln(x / (1 - x)) - Omega sigma_h / (R T) is uniform (Omega = expansion / c_max)."""
    L_se, L_am, H = 2.0, 4.0, 1.0
    dom, ct, ft = slab(L_se + L_am, H, 60, 6, am_from=L_se)
    case = slab_case(stress_assisted=True, time_step=5.0, max_time_step=40.0,
                     protocol=[{"mode": "rest", "duration": 200.0}])
    X = ufl.SpatialCoordinate(dom)
    s = 0.5  # GPa per um
    ec = ElectrochemistryProblem(dom, ct, ft, case, hydrostatic_stress=s * (X[0] - L_se))
    li0 = ec.total_lithium()
    run_protocol(ec)
    assert ec.total_lithium() == pytest.approx(li0, rel=1e-9)
    omega = case.materials.active.expansion / case.loading.active.c_max  # um^3/mol
    c = omega * GPA_UM3_TO_J / (R_GAS * case.loading.temperature)  # 1/GPa
    V = ec.x.function_space
    n = V.dofmap.index_map.size_local
    xy = V.tabulate_dof_coordinates()[:n]
    am = xy[:, 0] >= L_se - 1e-9
    x = ec.x.x.array[:n][am]
    g = np.log(x / (1 - x)) - c * s * (xy[am, 0] - L_se)
    spread = MPI.COMM_WORLD.allreduce(float(np.ptp(g)) if len(g) else 0.0, op=MPI.MAX)
    xr = (MPI.COMM_WORLD.allreduce(float(x.max()) if len(x) else 0.0, op=MPI.MAX),
          MPI.COMM_WORLD.allreduce(float(x.min()) if len(x) else 1.0, op=MPI.MIN))
    assert c * s * L_am > 0.5  # a strong effect: the tensile end is much fuller
    assert xr[0] - xr[1] > 0.1
    assert spread < 1e-3 * c * s * L_am, spread


# ----------------------------------------------------------------------------- MPI
MPI_SCRIPT = """
import json, sys
import solver
from mpi4py import MPI
from solver.runs.mesh import build_mesh
from solver.runs.runner import prepare_case
from solver.physics.electrochemistry import ElectrochemistryProblem
comm = MPI.COMM_WORLD
_, internal, packing = prepare_case(sys.argv[1], ["loading.protocol=[{mode: discharge}]"], comm)
b = build_mesh(internal, comm, packing=packing)
ec = ElectrochemistryProblem(b.mesh, b.cell_tags, b.facet_tags, internal)
li0 = ec.total_lithium()
volts = []
while not ec.done:
    assert ec.step(100.0).converged
    volts.append(ec.voltage)
out = {"volts": volts, "capacity": ec.segment_log[0]["capacity"], "dli": ec.total_lithium() - li0,
       "charge": ec.state.charge, "kappa": ec.effective_conductivity(relative=True)}
if comm.rank == 0:
    print("RESULT " + json.dumps(out))
"""


@pytest.mark.mpi
def test_two_ranks_match_one(tmp_path):
    exe = mpiexec()
    if exe is None:
        pytest.skip("mpiexec not found")
    script = tmp_path / "ec_mpi.py"
    script.write_text(MPI_SCRIPT)
    results = {}
    for n in (1, 2):
        cmd = [exe, "-n", str(n), sys.executable, str(script), str(COMPOSITE)]
        r = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=600, cwd=ROOT)
        assert r.returncode == 0, r.stdout + r.stderr
        line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")][-1]
        results[n] = json.loads(line[len("RESULT "):])
    one, two = results[1], results[2]
    assert len(one["volts"]) == len(two["volts"]) > 5
    assert np.allclose(one["volts"], two["volts"], atol=1e-8)
    assert two["capacity"] == pytest.approx(one["capacity"], rel=1e-8)
    assert two["kappa"] == pytest.approx(one["kappa"], rel=1e-8)
    for res in (one, two):
        assert res["dli"] == pytest.approx(res["charge"] / FARADAY, rel=1e-8)
