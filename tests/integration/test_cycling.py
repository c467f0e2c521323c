"""Galvanostatic cycling coupled to mechanics and fracture, through `ssbfrac run`.

The electrochemistry alone is verified in test_electrochemistry.py and test_diffusion.py
(Crank's series, Ohm's law, conservation, homogenisation bounds); these tests check the
coupled time loop: the eigenstrain follows the lithium field, lithium is conserved through
accepted and rejected steps, the protocol runs in order, damage lowers the effective
conductivity, and the outputs (history, profiles, fields, summary) are complete.
"""

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from conftest import ROOT, module_run, run_to_completion

EC_CASE = ROOT / "tests" / "data" / "electrochem_small.yaml"
FRACTURE_CASE = ROOT / "tests" / "data" / "cycling_fracture_small.yaml"
CYCLE = "loading.protocol=[{mode: discharge}, {mode: rest, duration: 300.0}, {mode: charge}]"


def run(case, out, *sets, ranks=1, timeout=900):
    return run_to_completion(case, out, *sets, ranks=ranks, timeout=timeout)


def read_profiles(path):
    data = np.genfromtxt(path, delimiter=",", names=True)
    return {k: data[k] for k in data.dtype.names}


@pytest.fixture(scope="module")
def cycle(tmp_path_factory):
    return module_run(tmp_path_factory, "cycle", EC_CASE, CYCLE, "output.fields_every=3")


def test_protocol_runs_in_order_to_the_cutoffs(cycle):
    summary, h, _ = cycle
    segs = summary["cell"]["segments"]
    assert [s["mode"] for s in segs] == ["discharge", "rest", "charge"]
    assert [s["event"] for s in segs] == ["cutoff", "duration", "cutoff"]
    assert segs[0]["voltage_V"] == pytest.approx(3.6, abs=2e-3)
    assert segs[1]["duration_s"] == pytest.approx(300.0, rel=1e-9)
    assert segs[2]["voltage_V"] == pytest.approx(4.3, abs=2e-3)
    modes = list(h["mode"][1:])
    first = {m: modes.index(m) for m in ("discharge", "rest", "charge")}
    last = {m: len(modes) - 1 - modes[::-1].index(m) for m in ("discharge", "rest", "charge")}
    assert last["discharge"] < first["rest"] <= last["rest"] < first["charge"]
    # the overpotential relaxes during the rest: the voltage rises after the discharge
    assert h["voltage"][1:][first["rest"]] > h["voltage"][1:][last["discharge"]] + 1e-3
    # the sign of the current: discharge > 0, rest 0, charge < 0
    cd = h["current_density"][1:]
    assert np.all(cd[: last["discharge"] + 1] > 0) and np.all(cd[first["charge"]:] < 0)
    assert np.all(np.abs(cd[first["rest"]: last["rest"] + 1]) < 1e-9 * cd[0])


def test_lithium_follows_the_passed_charge(cycle):
    """Uniform c_max: the change of the mean lithium fraction equals the passed charge over
    the theoretical capacity, through the whole protocol (conservation to solver tolerance)."""
    summary, h, _ = cycle
    x0 = h["x"][0]
    seg, frac, x = h["segment"], h["capacity_fraction"], h["x"]
    sign = {"discharge": 1.0, "rest": 0.0, "charge": -1.0}
    done = 0.0  # net fraction of the finished segments
    for i in range(1, len(x)):
        if seg[i] != seg[i - 1]:
            k = i - 1  # last row of the previous segment
            done += sign[h["mode"][k]] * frac[k]
        expected = x0 + done + sign[h["mode"][i]] * frac[i]
        assert x[i] == pytest.approx(expected, abs=1e-7), i
    discharged = summary["cell"]["segments"][0]["capacity_fraction"]
    assert 0.2 < discharged < 0.7


def test_eigenstrain_follows_the_lithium_field(cycle):
    summary, h, _ = cycle
    expansion = summary["case"]["materials"]["active"]["expansion"]
    x_ref = summary["case"]["loading"]["initial_lithiation"]
    np.testing.assert_allclose(h["vol_strain"], expansion * (h["x"] - x_ref), atol=1e-9)
    # shrinking particles (expansion < 0 on lithiation) bonded to the electrolyte: both in
    # tension, the particles hydrostatically (even their most compressed point)
    k = int(np.argmax(h["x"]))
    assert h["sigma1_max_SE"][k] > 50.0 and h["sigma_h_min_AM"][k] > 0.0


def test_outputs_are_complete(cycle):
    summary, h, out = cycle
    for col in ("voltage", "current_density", "capacity", "kappa_eff_rel", "c_rate"):
        assert summary["history_units"][col], col
        assert np.all(np.isfinite(h[col])), col
    assert np.allclose(h["kappa_eff_rel"], h["kappa_eff_rel"][0])  # no damage here
    assert 0.0 < h["kappa_eff_rel"][0] < 1.0  # tortuous electrolyte
    names = {a.get("Name") for a in ET.parse(out / "fields.xdmf").getroot().iter("Attribute")}
    assert {"displacement", "lithiation", "ionic_potential", "particle_potential", "interface_current"} <= names
    prof = read_profiles(out / "profiles.csv")
    assert len(np.unique(prof["output"])) == summary["field_outputs"]
    assert np.all((prof["depth"] > 0) & (prof["depth"] < summary["case"]["geometry"]["size"][0]))
    xs = prof["x"][np.isfinite(prof["x"])]
    assert np.all((xs > 0) & (xs < 1))
    # the separator (the first 2 um) holds no particles
    assert np.all(np.isnan(prof["x"][prof["depth"] < 1.9e-6]))
    cell = summary["cell"]
    assert cell["theoretical_capacity_mAh_cm2"] > 0 and cell["one_c_current_A"] > 0
    assert summary["timings_s"]["solve_electrochemistry"] > 0


def test_ionic_limitation_lithiates_the_separator_side_first(tmp_path):
    _, _ = run(EC_CASE, tmp_path / "run", "loading.electrolyte.kappa=0.003", "loading.c_rate=3.0",
               "output.fields_every=0", "output.profile_bins=6")
    prof = read_profiles(tmp_path / "run" / "profiles.csv")
    last = prof["output"] == prof["output"].max()
    x = prof["x"][last]
    x = x[np.isfinite(x)]
    assert x[0] > x[-1] + 0.05, x
    assert np.all(np.diff(x) < 1e-3), x  # decreasing with depth


def test_two_ranks_match_one(cycle, tmp_path):
    s1, h1, _ = cycle
    s2, h2 = run(EC_CASE, tmp_path / "run2", CYCLE, "output.fields_every=3", ranks=2)
    assert len(h1["time"]) == len(h2["time"])
    np.testing.assert_allclose(h2["voltage"], h1["voltage"], atol=1e-6)
    np.testing.assert_allclose(h2["x"], h1["x"], atol=1e-8)
    np.testing.assert_allclose(h2["sigma1_max_SE"], h1["sigma1_max_SE"], rtol=1e-5, atol=1e-3)


@pytest.mark.slow
def test_cracks_grow_on_discharge_and_cut_the_ionic_paths(tmp_path):
    summary, h = run(FRACTURE_CASE, tmp_path / "run")
    dis = h["mode"] == "discharge"
    crack = h["crack_length"]
    assert crack[dis][-1] > 2.0  # um: the swelling particles crack the electrolyte
    assert np.all(np.diff(crack) > -1e-2)  # irreversible, also while the particles shrink back
    # damage feeds back: the effective conductivity falls as the cracks grow
    k = h["kappa_eff_rel"]
    assert np.all(np.diff(k) < 1e-6)
    assert k[-1] < 0.5 * k[0]
    before = crack < 1e-3
    assert np.allclose(k[before], k[0], rtol=1e-3)
    prof = read_profiles(tmp_path / "run" / "profiles.csv")
    assert "damage" in prof and np.nanmax(prof["damage"]) > 0.1
    assert summary["stages"]["stage_I_detected"]
    assert [s["mode"] for s in summary["cell"]["segments"]] == ["discharge", "charge"]


def test_shipped_depth_cases_lithiate_from_opposite_sides(tmp_path):
    """cases/depth: ionic limitation fills the separator side first, electronic limitation
    the collector side (last profile of a 2C discharge)."""
    slopes = {}
    for kind in ("ionic", "electronic"):
        out = tmp_path / kind
        summary, _ = run(ROOT / "cases" / "depth" / f"{kind}_limited.yaml", out, "output.fields_every=0")
        prof = read_profiles(out / "profiles.csv")
        last = prof["output"] == prof["output"].max()
        ok = last & np.isfinite(prof["x"])
        slopes[kind] = np.polyfit(prof["depth"][ok] * 1e6, prof["x"][ok], 1)[0]
        assert summary["cell"]["segments"][0]["capacity_fraction"] > 0.2
    assert slopes["ionic"] < -0.01 and slopes["electronic"] > 0.005, slopes
