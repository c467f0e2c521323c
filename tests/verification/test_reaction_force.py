"""The reaction force of a displacement loading (history.csv `reaction_force`) against closed
forms: its unit (N per m of thickness in 2D, N in 3D), its sign (the force along
`loading.direction` that the loaded facets carry: positive when the body resists the motion),
plane strain, and the width and length of the specimen.

A block of one isotropic material (E, nu) with rollers on some sides and one side moved
along its normal: the displacement is affine, so the P1 solution is exact and the reaction
is the closed form to solver precision.

* 2D, rollers on the bottom and left, the top moved by U (only u_y prescribed): uniaxial
  stress in plane strain, sigma_yy = E / (1 - nu^2) U / L_y, force per unit thickness
  F = sigma_yy L_x.
* 2D, rollers on the left, right and bottom, the top moved by U (all components):
  uniaxial strain, sigma_yy = (lambda + 2 mu) U / L_y, F = sigma_yy L_x.
* 2D, rollers on the left and bottom, the right side moved by U along (-1, 0): a
  compression, and the force along the direction is again E / (1 - nu^2) U L_y / L_x > 0.
* 3D, rollers on the bottom, left and back, the top moved by U down (direction (0, -1, 0)):
  uniaxial stress, F = E U L_x L_z / L_y (N).
* 2D simple shear: the bottom clamped, the top moved by U along x (u_y held at 0), u_y held
  at 0 on the left and right sides (`type: fixed, components: [y]`, the sides of the
  single-edge-notched shear test of Miehe et al. 2010): u = (U y / L_y, 0) is exact (sigma_xx
  = 0, so the sides carry no normal traction), and F = mu U / L_y L_x.
"""

import pytest

import solver
from closed_forms import lame

E, NU = 210e9, 0.3  # SI
LX, LY, LZ = 60e-6, 100e-6, 40e-6  # m
U = 1e-7  # m

GEO_2D = """SetFactory("Built-in");
Point(1) = {0, 0, 0, 20}; Point(2) = {LX, 0, 0, 20}; Point(3) = {LX, LY, 0, 20}; Point(4) = {0, LY, 0, 20};
Line(1) = {1, 2}; Line(2) = {2, 3}; Line(3) = {3, 4}; Line(4) = {4, 1};
Curve Loop(1) = {1, 2, 3, 4}; Plane Surface(1) = {1};
Physical Surface("electrolyte") = {1};
Physical Curve("bottom") = {1}; Physical Curve("right") = {2}; Physical Curve("top") = {3}; Physical Curve("left") = {4};
"""

GEO_3D = """SetFactory("OpenCASCADE");
Box(1) = {0, 0, 0, LX, LY, LZ};
Mesh.MeshSizeMax = 20;
Physical Volume("electrolyte") = {1};
Physical Surface("left") = {1}; Physical Surface("right") = {2}; Physical Surface("bottom") = {3};
Physical Surface("top") = {4}; Physical Surface("back") = {5}; Physical Surface("front") = {6};
"""


def reaction(tmp_path, name: str, dim: int, boundary: dict, loading: dict) -> float:
    """The reaction force of the last step of a one-step run of the block."""
    um = {"LX": f"{LX * 1e6:g}", "LY": f"{LY * 1e6:g}", "LZ": f"{LZ * 1e6:g}"}  # .geo files are in um
    geo = GEO_2D if dim == 2 else GEO_3D
    for k, v in um.items():
        geo = geo.replace(k, v)
    (tmp_path / f"{name}.geo").write_text(geo)
    size = [LX, LY] if dim == 2 else [LX, LY, LZ]
    particles = "" if dim == 2 else "\n  particles: {shape: sphere}"
    sides = ", ".join(f"{k}: {v}" for k, v in boundary.items())
    load = ", ".join(f"{k}: {v}" for k, v in loading.items())
    (tmp_path / f"{name}.yaml").write_text(
        f"name: {name}\ndimension: {dim}\n"
        f"geometry:\n  size: {size}\n  mesh: {{file: {name}.geo}}{particles}\n"
        f"materials:\n  electrolyte: {{E: {E}, nu: {NU}}}\n"
        f"mechanics:\n  boundary: {{{sides}}}\n"
        f"loading: {{type: displacement, {load}, path: [0.0, {U}], steps: 1}}\n")
    result = solver.run(solver.Case.from_yaml(tmp_path / f"{name}.yaml"), out=tmp_path / name)
    assert result.summary["history_units"]["reaction_force"].startswith("N/m" if dim == 2 else "N")
    return float(result.history["reaction_force"][-1])


def test_plane_strain_uniaxial_stress(tmp_path):
    F = reaction(tmp_path, "stress", 2, {"bottom": "roller", "left": "roller", "right": "free"},
                 {"boundary": "top", "direction": [0.0, 1.0], "components": ["y"]})
    assert F == pytest.approx(E / (1 - NU**2) * U / LY * LX, rel=1e-8)  # N/m


def test_plane_strain_uniaxial_strain(tmp_path):
    lam, mu = lame(E, NU)
    F = reaction(tmp_path, "strain", 2, {"bottom": "roller", "left": "roller", "right": "roller"},
                 {"boundary": "top", "direction": [0.0, 1.0]})
    assert F == pytest.approx((lam + 2 * mu) * U / LY * LX, rel=1e-8)


def test_force_along_the_direction_of_motion(tmp_path):
    F = reaction(tmp_path, "push", 2, {"bottom": "roller", "left": "roller", "top": "free"},
                 {"boundary": "right", "direction": [-1.0, 0.0], "components": ["x"]})
    assert F == pytest.approx(E / (1 - NU**2) * U / LX * LY, rel=1e-8)  # compression, > 0 along (-1, 0)


def test_3d_uniaxial_stress(tmp_path):
    F = reaction(tmp_path, "box", 3,
                 {"bottom": "roller", "left": "roller", "right": "free", "back": "roller", "front": "free"},
                 {"boundary": "top", "direction": [0.0, -1.0, 0.0], "components": ["y"]})
    assert F == pytest.approx(E * U / LY * LX * LZ, rel=1e-8)  # N


def test_simple_shear_with_fixed_components(tmp_path):
    _, mu = lame(E, NU)
    fixed = "{type: fixed, components: [y]}"
    F = reaction(tmp_path, "shear", 2, {"bottom": "clamped", "left": fixed, "right": fixed},
                 {"boundary": "top", "direction": [1.0, 0.0]})
    assert F == pytest.approx(mu * U / LY * LX, rel=1e-8)
