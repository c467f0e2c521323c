"""Named material sets through whole runs (tests/data/cohesive_small.yaml): a sulfide
(li6ps5cl) and an oxide (llzo_al) electrolyte given by name end up in summary.json value
for value as the library holds them, with the set's name and the sources of its values;
report.md lists them. A set without the strength that the cohesive model needs stops the
run before meshing, with the material and the field named.

The loading is one small step (0.2 % particle volume strain): the values, not the cracks,
are tested here.
"""

import pytest
from conftest import ROOT, run_ssbfrac, run_to_completion

from solver.materials import load

CASE = ROOT / "tests" / "data" / "cohesive_small.yaml"
SHORT = ("loading.path=[0.0, 0.02]", "loading.steps=1", "output.fields_every=0")
#: the strength li6ps5cl lacks (no measurement read), given by the case as an override
OWN_STRENGTH = 85.0e6
OWN_SOURCE = "strength 85 MPa: an assumption of this test"

RUNS = {
    "li6ps5cl": f"materials.electrolyte={{use: li6ps5cl, fracture: {{strength: {OWN_STRENGTH:g}, ell: 0.3e-6}}, "
                f"source: '{OWN_SOURCE}'}}",
    "llzo_al": "materials.electrolyte={use: llzo_al, fracture: {ell: 0.3e-6}}",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("named")
    return {name: run_to_completion(CASE, base / name, entry, *SHORT) + (base / name,)
            for name, entry in RUNS.items()}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_the_resolved_values_are_the_library_values(runs, name):
    summary, history, _ = runs[name]
    mat = load(name)
    assert mat.class_ in ("sulfide", "oxide")
    el = summary["case"]["materials"]["electrolyte"]
    assert el["use"] == name and el["name"] == name
    assert (el["E"], el["nu"], el["fracture"]["K_Ic"]) == (mat.value("E"), mat.value("nu"), mat.value("K_Ic"))
    strength = mat.value("strength")
    assert el["fracture"]["strength"] == (OWN_STRENGTH if strength is None else strength)
    resolved = summary["failure_properties"]["electrolyte"]
    E, nu, K = mat.value("E"), mat.value("nu"), mat.value("K_Ic")
    assert resolved["Gc_J_m2"] == pytest.approx(K**2 * (1 - nu**2) / E, rel=1e-12)
    assert resolved["strength_Pa"] == pytest.approx(el["fracture"]["strength"], rel=1e-12)  # via internal units
    assert history["step"].size == 2  # the start and the one step: the run went through


@pytest.mark.parametrize("name", sorted(RUNS))
def test_the_summary_records_the_set_and_its_sources(runs, name):
    summary, _, _ = runs[name]
    mat = load(name)
    source = summary["case"]["materials"]["electrolyte"]["source"]
    assert source.startswith(f"material set {name} (")
    taken = ["E", "nu", "K_Ic"] + (["strength"] if mat.value("strength") is not None else [])
    for key in taken:
        assert f"{key}: {mat.properties[key].source}" in source, key
    if mat.value("strength") is None:  # the case's own value: its own source follows the set's
        assert "strength:" not in source.split("values of the case:")[0]
        assert source.endswith(f"values of the case: {OWN_SOURCE}")


def test_the_report_lists_the_materials(runs):
    _, _, out = runs["li6ps5cl"]
    r = run_ssbfrac(["post", str(out), "--steps", "none"])
    assert r.returncode == 0, r.stderr
    report = (out / "plots" / "report.md").read_text()
    section = report.split("## Materials", 1)[1].split("\n## ", 1)[0]
    row = next(line for line in section.splitlines() if line.startswith("| electrolyte |"))
    assert "| li6ps5cl | li6ps5cl |" in row and load("li6ps5cl").properties["E"].doi in row and OWN_SOURCE in row


@pytest.mark.parametrize("name, fields", [
    ("li6ps5cl", ["materials.electrolyte.fracture.strength"]),
    ("llzto", ["materials.electrolyte.nu", "materials.electrolyte.fracture.strength"]),
])
def test_a_set_without_the_strength_stops_the_run(tmp_path, name, fields):
    """The cohesive model needs a strength; the set has none and the case gives none."""
    mat = load(name)
    assert mat.value("strength") is None
    out = tmp_path / "run"
    r = run_ssbfrac(["run", str(CASE), "--out", str(out), "--set", f"materials.electrolyte={name}"])
    assert r.returncode == 2, r.stderr
    for field in fields:
        assert field in r.stderr and name in r.stderr, r.stderr
    assert not (out / "mesh.msh").exists()
