"""Case-file validation: every bad input is rejected with a message that names the field."""

import copy
import subprocess
import sys

import pytest

from conftest import ROOT, ssbfrac_cmd, subprocess_env
from solver.config import CaseError, apply_overrides, load_case, validate_case, yaml_load
from solver.config.units import SCALE, is_internal, to_internal

BASE = {
    "name": "t",
    "materials": {
        "active": {"E": 140e9, "nu": 0.3, "expansion": 0.05},
        "electrolyte": {"E": 20e9, "nu": 0.3, "fracture": {"Gc": 4.0, "ell": 0.5e-6}},
    },
}


def with_(path: str, value):
    data = copy.deepcopy(BASE)
    return apply_overrides(data, [f"{path}={value}"])


BAD = [
    # (override, field named in the message, fragment of the message)
    ("materials.electrolyte.E", "-20e9", "materials.electrolyte.E", "greater than or equal to 1000 Pa"),
    ("materials.active.E", "0", "materials.active.E", "greater than or equal to 1000 Pa"),
    ("materials.active.nu", "0.5", "materials.active.nu", "less than 0.5"),
    ("materials.electrolyte.nu", "0.7", "materials.electrolyte.nu", "less than 0.5"),
    ("materials.active.nu", "abc", "materials.active.nu", "valid number"),
    ("materials.active.colour", "red", "materials.active.colour", "unknown key"),
    ("geometrie", "{}", "geometrie", "unknown key"),
    ("geometry.particles.shape", "hexagon", "geometry.particles.shape", "circle"),
    ("geometry.particles.volume_fraction", "0.95", "geometry.particles.volume_fraction", "less than 0.9"),
    ("geometry.particles.volume_fraction", "-0.1", "geometry.particles.volume_fraction", "greater than or equal to 0.001"),
    ("geometry.particles.radius", "-1e-6", "geometry.particles.radius", "greater than or equal to 1e-08 m"),
    ("geometry.particles.sides", "2", "geometry.particles.sides", "greater than or equal to 3"),
    ("geometry.size", "[30e-6]", "geometry.size", "at least 2"),
    ("geometry.size", "[1e-6, 1e-6]", "geometry", "needs sides of at least"),
    ("geometry.mesh.interface_size", "2e-6", "geometry.mesh", "must not exceed size"),
    ("mechanics.boundary.left", "rolller", "mechanics.boundary.left.type", "roller"),
    ("mechanics.boundary.middle", "free", "mechanics", "unknown side"),
    ("mechanics.boundary", "{left: free, right: free}", "(top level)", "nothing holds the x direction"),
    ("loading.path", "[0.0, 1.5]", "loading.path", "path[1] = 1.5"),
    ("loading.steps", "0", "loading.steps", "greater than or equal to 1"),
    ("loading.type", "sinusoidal", "loading", "does not match"),
    ("dimension", "4", "dimension", "2 or 3"),
    ("name", "'has spaces'", "name", "pattern"),
    ("fracture.model", "AT3", "fracture.model", "AT1"),
    ("fracture.scheme.tolerance", "0", "fracture.scheme.tolerance", "greater than or equal to 1e-12"),
    ("materials.electrolyte.fracture", "{Gc: 4.0}", "materials.electrolyte.fracture", "give two of"),
    ("materials.electrolyte.fracture", "{Gc: 4.0, K_Ic: 1e6}", "materials.electrolyte.fracture", "either Gc or K_Ic"),
    ("fracture.phases", "[active]", "(top level)", "materials.active.fracture is not given"),
]


@pytest.mark.parametrize("path,value,field,fragment", BAD, ids=[f"{b[0]}={b[1]}" for b in BAD])
def test_bad_input_names_field(path, value, field, fragment):
    data = with_(path, value)
    if path == "fracture.phases":
        data["fracture"]["enabled"] = True
    with pytest.raises(CaseError) as err:
        validate_case(data, "case.yaml")
    msg = str(err.value)
    assert msg.startswith("case.yaml: ")
    assert field in msg, msg
    assert fragment in msg, msg


def test_at_least_fifteen_distinct_bad_inputs():
    assert len({(b[0], b[1]) for b in BAD}) >= 15


def test_message_shows_bad_value():
    with pytest.raises(CaseError) as err:
        validate_case(with_("materials.electrolyte.nu", "0.6"), "x.yaml")
    assert "materials.electrolyte.nu = 0.6" in str(err.value)


def test_missing_required_field():
    data = copy.deepcopy(BASE)
    del data["materials"]["active"]["E"]
    with pytest.raises(CaseError, match=r"materials\.active\.E: required field is missing"):
        validate_case(data, "x.yaml")


def test_malformed_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmaterials: [1, 2\n")
    with pytest.raises(CaseError, match=r"bad\.yaml: malformed YAML \(line"):
        load_case(bad)
    with pytest.raises(CaseError, match="case file not found"):
        load_case(tmp_path / "nope.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(CaseError, match="empty"):
        load_case(empty)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(CaseError, match="mapping"):
        load_case(scalar)


def test_yaml_reads_exponent_floats():
    assert yaml_load("a: 150e9\nb: -2.5e-6\nc: 1.0e-3\nd: 7\n") == {"a": 150e9, "b": -2.5e-6, "c": 1e-3, "d": 7}


def test_overrides_create_and_replace():
    data = apply_overrides(BASE, ["materials.electrolyte.E=150e9", "loading.steps=3",
                                  "mechanics.boundary.right.value=1e6"])
    assert data["materials"]["electrolyte"]["E"] == 150e9
    case = validate_case(apply_overrides(data, ["mechanics.boundary.right.type=pressure"]))
    assert case.mechanics.boundary["right"].value == 1e6
    assert case.loading.steps == 3
    with pytest.raises(CaseError, match="not a list"):
        apply_overrides(BASE, ["geometry.size.1=40e-6"])
    with pytest.raises(CaseError, match="expected key.path=value"):
        apply_overrides(BASE, ["materials.active.E"])


def test_units_converted_in_one_place():
    case = validate_case(copy.deepcopy(BASE))
    internal = to_internal(case)
    assert is_internal(internal) and not is_internal(case)
    assert internal.materials.electrolyte.E == pytest.approx(20.0)  # GPa
    assert internal.geometry.size == pytest.approx([30.0, 30.0])  # um
    assert internal.materials.electrolyte.fracture.Gc == pytest.approx(4e-3)  # GPa*um
    assert internal.materials.electrolyte.fracture.ell == pytest.approx(0.5)
    assert internal.materials.active.nu == 0.3  # dimensionless: untouched
    assert internal.mechanics.side("right").value == pytest.approx(5e6 * SCALE["Pa"])
    # the SI case is unchanged
    assert case.materials.electrolyte.E == 20e9


def test_shipped_cases_are_valid():
    for path in sorted((ROOT / "cases").rglob("*.yaml")):
        if "sweeps" in path.parts or "studies" in path.parts:
            continue
        load_case(path)


def test_cli_rejects_before_meshing(tmp_path):
    case = tmp_path / "bad.yaml"
    case.write_text((ROOT / "tests" / "data" / "small.yaml").read_text())
    out = tmp_path / "run"
    r = subprocess.run(ssbfrac_cmd() + ["run", str(case), "--out", str(out), "--set", "materials.electrolyte.nu=0.55"],
                       capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert r.returncode == 2
    assert "materials.electrolyte.nu = 0.55" in r.stderr
    assert not out.exists(), "no output directory for a rejected case"


def test_cli_rejects_unpackable_fraction(tmp_path):
    case = tmp_path / "c.yaml"
    case.write_text((ROOT / "tests" / "data" / "small.yaml").read_text())
    r = subprocess.run(ssbfrac_cmd() + ["check", str(case), "--set", "geometry.particles.volume_fraction=0.7",
                                        "--set", "geometry.particles.max_attempts=2000"],
                       capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert r.returncode == 2
    assert "geometry.particles.volume_fraction = 0.7" in r.stderr
    assert "reached fraction" in r.stderr


def test_schema_reference_lists_units():
    r = subprocess.run([sys.executable, "-m", "solver", "schema"], capture_output=True, text=True,
                       env=subprocess_env(), timeout=60)
    assert r.returncode == 0
    assert "materials.electrolyte.E: Young's modulus [Pa]" in r.stdout
    assert "geometry.particles.radius" in r.stdout
