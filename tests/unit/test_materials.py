"""The named material sets: every file loads with SI units and sources, ``ssbfrac
materials`` lists and shows them, and cases use them by name (missing values stop)."""

import json

import pytest
from conftest import ROOT, run_ssbfrac

from solver.config import Case, CaseError
from solver.materials import library, load, names
from solver.materials.library import CLASSES, UNITS, MaterialError

DEFAULT = ROOT / "cases" / "bucci2017.yaml"


def test_every_set_loads_with_units_and_sources():
    sets = library()
    assert len(sets) == len(names()) >= 14
    by_class = {c: [m.name for m in sets if m.class_ == c] for c in CLASSES}
    electrolytes = sum(len(by_class[c]) for c in ("sulfide", "oxide", "polymer", "halide"))
    assert electrolytes >= 8 and all(by_class[c] for c in ("sulfide", "oxide", "polymer", "halide", "coating"))
    assert len(by_class["active"]) >= 5
    for m in sets:
        assert m.path.name == f"{m.name}.yaml"
        for key, p in m.properties.items():
            assert p.unit == UNITS[key], (m.name, key)
            if p.value is not None:
                assert len(p.source) >= 20, (m.name, key)  # authors, journal or book, year
                if isinstance(p.value, float):
                    assert p.range is None or p.range[0] <= p.value <= p.range[1] * (1 + 1e-12), (m.name, key)
            else:
                assert p.note, f"{m.name}.{key}: a missing value says why"


def test_values_are_si():
    """Spot checks of the scale of SI values (a GPa or a MPa m^0.5 typed as a number would
    be off by 1e9 or 1e6)."""
    for m in library():
        E, kic, s = m.value("E"), m.value("K_Ic"), m.value("strength")
        assert E is None or 1e6 < E < 1e12, m.name
        assert kic is None or 1e4 < kic < 1e8, m.name
        assert s is None or 1e5 < s < 1e10, m.name


def test_unknown_and_malformed_names_are_refused():
    for bad in ("unobtainium", "../etc/passwd", "LI6PS5CL", ""):
        with pytest.raises(MaterialError, match="unknown material"):
            load(bad)


def test_a_case_uses_sets_by_name_and_overrides_fields():
    case = Case.from_yaml(DEFAULT)
    c = case.with_overrides({"materials.electrolyte": {"use": "llzo_al", "fracture": {"ell": 0.25e-6}},
                             "materials.active": {"use": "nmc811", "E": 180e9, "nu": 0.3},
                             "loading.active": {"use": "nmc811", "kinetics": {"k0": 5.0}},
                             "loading.electrolyte": "llzo_al"})
    el = c.materials.electrolyte
    assert (el.use, el.E, el.nu, el.fracture.K_Ic, el.fracture.strength, el.fracture.ell) == (
        "llzo_al", 149.8e9, 0.26, 1.25e6, 150e6, 0.25e-6)
    assert "llzo_al" in el.source and "doi:" in el.source
    am = c.materials.active
    assert (am.E, am.nu, am.expansion_table.x, am.expansion_table.strain) == (180e9, 0.3, [0.25, 1.0], [-0.0702, 0.0])
    assert "E:" not in am.source  # E and nu are the case's own, not the set's
    linear = case.with_overrides({"materials.active": {"use": "nmc811", "nu": 0.3, "expansion": 0.05}}).materials.active
    assert (linear.expansion, linear.expansion_table, linear.E) == (0.05, None, 138e9)  # the case's linear law wins
    assert "expansion:" not in linear.source
    tr = c.loading.active
    assert (tr.c_max, tr.diffusivity, tr.ocv, tr.kinetics.k0) == (63104.0, 4e-15, "nmc811_chen2020", 5.0)
    assert c.loading.electrolyte.kappa == pytest.approx(0.02)
    # a resolved case, saved and read again, stays the same
    again = Case.model_validate(json.loads(json.dumps(c.model_dump(mode="json"))))
    assert again == c and c.with_overrides({}) == c
    # without a loading.electrolyte of its own, the conductivity is that of the electrolyte's set
    latp = case.with_overrides({"materials.electrolyte": {"use": "latp", "fracture": {"ell": 0.25e-6}},
                                "loading.electrolyte": None})
    assert latp.loading.electrolyte.kappa == pytest.approx(0.07) and "latp" in latp.loading.electrolyte.source


def test_at1_takes_two_failure_properties_of_a_named_set():
    """AT1 with a strength (critical strain) and ell: the set's toughness, set to null, is
    not asked for."""
    c = Case.from_yaml(DEFAULT).with_overrides(
        {"fracture.model": "AT1",
         "materials.electrolyte.fracture": {"K_Ic": None, "critical_strain": 0.019, "ell": 0.25e-6}})
    f = c.materials.electrolyte.fracture
    assert (f.K_Ic, f.Gc, f.critical_strain, f.ell) == (None, None, 0.019, 0.25e-6)
    with pytest.raises(CaseError, match=r"materials\.electrolyte\.fracture: the material set lps7525_glass has no K_Ic"):
        Case.from_yaml(DEFAULT).with_overrides({"fracture.model": "AT1", "materials.electrolyte.fracture": {
            "K_Ic": None, "ell": 0.25e-6}})


@pytest.mark.parametrize("entry, field", [
    ({"materials.active": "nca"}, "materials.active.E"),
    ({"materials.active": "nmc811"}, "materials.active.nu"),
    ({"materials.electrolyte": "li6ps5cl"}, "materials.electrolyte.fracture"),
    ({"materials.electrolyte": "li3incl6"}, "materials.electrolyte.E"),
    ({"materials.electrolyte": {"use": 12}}, "materials.electrolyte.use"),
    ({"loading.active": "li6ps5cl"}, "loading.active"),
])
def test_missing_values_stop_with_material_and_field(entry, field):
    with pytest.raises(CaseError, match=field.replace(".", r"\.")) as err:
        Case.from_yaml(DEFAULT).with_overrides(entry)
    name = next(iter(entry.values()))
    if isinstance(name, str):
        assert name in str(err.value)


def test_the_materials_command():
    r = run_ssbfrac(["materials"])
    assert r.returncode == 0 and "li6ps5cl" in r.stdout and "missing" in r.stdout and "sulfide" in r.stdout
    r = run_ssbfrac(["materials", "latp"])
    assert r.returncode == 0 and "strength: 1.23e+08 Pa" in r.stdout and "Jackman" in r.stdout
    r = run_ssbfrac(["materials", "--json"])
    data = json.loads(r.stdout)
    assert {d["name"] for d in data} == set(names())
    d = next(d for d in data if d["name"] == "llzo_al")
    assert d["class"] == "oxide" and d["values"]["E"] == 149.8e9 and "doi:" in d["source"]["E"].lower()
    r = run_ssbfrac(["materials", "nope"])
    assert r.returncode == 2 and "unknown material 'nope'" in r.stderr
    r = run_ssbfrac(["run", str(DEFAULT), "--set", "materials.electrolyte=li6ps5cl", "--out", "/nonexistent/x"])
    assert r.returncode == 2 and "materials.electrolyte.fracture" in r.stderr
