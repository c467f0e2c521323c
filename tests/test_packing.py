"""Random sequential addition: no overlaps, exact fraction, reproducible; measured on the mesh."""

import numpy as np
import pytest
from mpi4py import MPI

from meshes.packing import PackingError, check_packing, pack_2d, particle_distance, Particle, polygon_distance

CASES = [
    ("circle", 0.30, 0),
    ("circle", 0.40, 1),
    ("polygon", 0.40, 2),
    ("polygon", 0.38, 3),
]


@pytest.mark.parametrize("shape,fraction,seed", CASES)
def test_packing_valid_and_on_target(shape, fraction, seed):
    p = pack_2d((40.0, 40.0), shape=shape, radius=2.5, volume_fraction=fraction, min_gap=0.3,
                boundary_gap=0.3, sides=6, seed=seed)
    assert check_packing(p, 0.3, 0.3) == []
    assert p.fraction == pytest.approx(fraction, rel=1e-9)
    assert abs(p.radius_scale - 1.0) < 0.05


def test_same_seed_same_microstructure_and_different_seed_differs():
    kw = dict(shape="polygon", radius=2.0, volume_fraction=0.35, min_gap=0.2, boundary_gap=0.2, sides=5)
    a = pack_2d((30.0, 30.0), seed=7, **kw)
    b = pack_2d((30.0, 30.0), seed=7, **kw)
    c = pack_2d((30.0, 30.0), seed=8, **kw)
    assert [q.to_dict() for q in a.particles] == [q.to_dict() for q in b.particles]
    assert [q.to_dict() for q in a.particles] != [q.to_dict() for q in c.particles]


def test_unreachable_fraction_reports_reached():
    with pytest.raises(PackingError) as err:
        pack_2d((20.0, 20.0), shape="circle", radius=2.0, volume_fraction=0.75, min_gap=0.2, max_attempts=3000)
    assert 0 < err.value.reached < 0.75
    assert "reached fraction" in str(err.value)


def test_polygon_distance_exact():
    sq = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)
    assert polygon_distance(sq, sq + [3.0, 0.0]) == pytest.approx(2.0)
    assert polygon_distance(sq, sq + [1.5, 1.5]) == pytest.approx(np.sqrt(0.5))
    assert polygon_distance(sq, sq + [0.5, 0.5]) == 0.0
    c = Particle(0, (0.0, 0.0), 1.0, "circle")
    h = Particle(1, (3.0, 0.0), 1.0, "polygon", 6, 0.0)  # vertex pointing at the circle
    assert particle_distance(c, h) == pytest.approx(1.0)


def test_fraction_measured_on_mesh():
    """The AM area fraction of the mesh (sum of particle cell areas) is within 1 % of the target."""
    import ufl
    from dolfinx import fem

    from solver.config import validate_case
    from solver.mesh import build_mesh
    from solver.units import to_internal

    for shape in ("polygon", "circle"):
        case = to_internal(validate_case({
            "name": "vf",
            "geometry": {"size": [30e-6, 30e-6],
                         "particles": {"shape": shape, "radius": 2.5e-6, "volume_fraction": 0.35, "seed": 3},
                         "mesh": {"size": 1e-6, "interface_size": 0.25e-6}},
            "materials": {"active": {"E": 1e11, "nu": 0.3}, "electrolyte": {"E": 1e10, "nu": 0.3}},
        }))
        bundle = build_mesh(case, MPI.COMM_WORLD)
        dx = ufl.Measure("dx", domain=bundle.mesh, subdomain_data=bundle.cell_tags)
        ids = np.unique(bundle.cell_tags.values)
        am = sum(MPI.COMM_WORLD.allreduce(fem.assemble_scalar(fem.form(1.0 * dx(int(i)))), op=MPI.SUM)
                 for i in ids if i >= 1000)
        frac = am / (30.0 * 30.0)
        assert abs(frac - 0.35) / 0.35 < 0.01, (shape, frac)
        # every particle is tagged, and so is every particle's interface
        n = len(bundle.info["packing"]["particles"])
        cell_ids = set(sum(MPI.COMM_WORLD.allgather([int(i) for i in ids]), []))
        facet_ids = set(sum(MPI.COMM_WORLD.allgather([int(i) for i in np.unique(bundle.facet_tags.values)]), []))
        assert {1000 + i for i in range(n)} <= cell_ids
        assert {1000 + i for i in range(n)} <= facet_ids
        assert {1, 2, 3, 4} <= facet_ids
