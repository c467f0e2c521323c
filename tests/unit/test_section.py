"""Plane sections of 3D microstructures (meshes/section.py) against closed forms."""

import json

import numpy as np
import pytest

from meshes.geometry import Particle
from meshes.section import main, section, section_polygon

A = 1.0  # half the side of the cube
CUBE = tuple((sx * A, sy * A, sz * A) for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1))


def cube(center=(0.0, 0.0, 0.0), rotation=None) -> Particle:
    return Particle(id=0, center=center, radius=float(np.sqrt(3) * A), shape="polyhedron", corners=CUBE,
                    rotation=rotation)


def test_a_cube_cut_through_its_centre_along_an_axis_is_its_square_face():
    p = section(([cube()]), (10.0, 10.0, 10.0), (False, False, False), axis=2, position=0.3)
    assert len(p) == 1 and p[0].sides == 4
    assert p[0].measure() == pytest.approx(4 * A ** 2, rel=1e-12)
    assert np.allclose(p[0].center, (0.0, 0.0), atol=1e-12)


def test_a_cube_cut_normal_to_a_body_diagonal_through_its_centre_is_a_regular_hexagon():
    """Area 3 sqrt(3) a^2 for a cube of side 2a, six corners at distance a sqrt(2)."""
    d = np.array([1.0, 1.0, 1.0]) / np.sqrt(3)  # the body diagonal, turned onto z
    e1 = np.array([1.0, -1.0, 0.0]) / np.sqrt(2)
    e2 = np.cross(d, e1)
    R = np.array([e1, e2, d])  # rows: global axes in the cube's frame -> local to global is R
    corners = section_polygon(cube(rotation=tuple(map(tuple, R))), 2, 0.0)
    assert len(corners) == 6
    q = section([cube(rotation=tuple(map(tuple, R)))], (10.0,) * 3, (False,) * 3, 2, 0.0)[0]
    assert q.measure() == pytest.approx(3 * np.sqrt(3) * A ** 2, rel=1e-12)
    assert np.allclose(np.linalg.norm(np.asarray(q.corners), axis=1), A * np.sqrt(2), rtol=1e-12)


def test_periodic_images_across_the_cut_axis_are_cut_too():
    """A cube centred at z = 9.5 in a periodic box of side 10 reaches z = 0.5 through its
    image: the plane z = 0.25 cuts the image; without periodicity nothing is cut."""
    p = cube(center=(5.0, 5.0, 9.5))
    assert len(section([p], (10.0,) * 3, (False, True, True), 2, 0.25)) == 1
    assert section([p], (10.0,) * 3, (False, False, False), 2, 0.25) == []


def test_grazing_sections_are_left_out_and_a_miss_gives_nothing():
    p = cube()
    assert section([p], (10.0,) * 3, (False,) * 3, 2, 0.999, min_width=0.2)[0].measure() == \
        pytest.approx(4 * A ** 2)
    # turned about x, the cube's top is an edge along x at z = 1.4: a plane just below cuts a
    # 2 x 0.03 sliver (circumradius about 1)
    tilted = cube(rotation=((1, 0, 0), (0, 0.6, 0.8), (0, -0.8, 0.6)))
    assert len(section([tilted], (10.0,) * 3, (False,) * 3, 2, 1.39, min_width=0.0)) == 1
    assert section([tilted], (10.0,) * 3, (False,) * 3, 2, 1.39, min_width=0.2) == []
    assert section_polygon(p, 2, 1.5) is None


def test_the_command_writes_particle_lists_and_never_replaces_one(tmp_path, capsys):
    from conftest import ROOT

    out = tmp_path / "sections"
    assert main([str(ROOT / "tests" / "data" / "cycling_3d_small.yaml"), "--at", "0.5", "--out", str(out)]) == 0
    f = out / "cycling_3d_small_z50.json"
    data = json.loads(f.read_text())
    assert data["units"] == "um" and len(data["particles"]) >= 2
    assert all(p["shape"] == "polygon" and len(p["center"]) == 2 for p in data["particles"])
    f.write_text("mine")
    main([str(ROOT / "tests" / "data" / "cycling_3d_small.yaml"), "--at", "0.5", "--out", str(out)])
    assert f.read_text() == "mine" and "not replaced" in capsys.readouterr().out
