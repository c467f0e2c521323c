"""The cohesive model in whole runs (tests/data/cohesive_small.yaml): irreversibility to
the solver's tolerance, the accelerated scheme against plain alternate minimisation on
the same fixed steps, and the localisation measures.

The particles swell to 10 % and shrink back to 3 %; six fixed steps per way.
"""

import numpy as np
import pytest

from conftest import ROOT, run_to_completion

CASE = ROOT / "tests" / "data" / "cohesive_small.yaml"
SETS = ("loading.path=[0.0, 1.0, 0.3]", "loading.steps=6", "fracture.adaptive.enabled=false")


@pytest.fixture(scope="module")
def schemes(tmp_path_factory):
    base = tmp_path_factory.mktemp("cohesive")
    return {s: run_to_completion(CASE, base / s, *SETS, f"fracture.scheme.type={s}") + (base / s,)
            for s in ("accelerated", "staggered")}


@pytest.mark.slow
def test_damage_never_decreases_anywhere(schemes):
    """Bounds irreversibility: at every node, the damage of an output is at least that of
    the output before, to round-off (the active-set Newton method holds d = d_previous
    exactly where the bound is active), also while the particles shrink back."""
    from postprocess.fields import read_field_file

    _, h, run_dir = schemes["accelerated"]
    assert h["crack_length"][-1] > 1.0, "the case must crack"
    ff = read_field_file(run_dir / "fields.h5")
    assert len(ff.times) == len(h["step"])
    previous = None
    for t in ff.times:
        d, _ = ff.values("damage", t)
        if previous is not None:
            assert np.min(d - previous) >= -1e-12, (t, np.min(d - previous))
        previous = d
    unloading = np.flatnonzero(np.diff(h["x"]) < 0) + 1
    assert len(unloading) >= 5
    assert np.all(np.diff(h["crack_length"]) >= -1e-12 * h["crack_length"].max())


@pytest.mark.slow
def test_accelerated_and_staggered_schemes_agree(schemes):
    """The accelerated scheme (over-relaxed alternate minimisation finished by Newton)
    converges to the same step solutions as plain alternate minimisation."""
    _, a, _ = schemes["accelerated"]
    _, s, _ = schemes["staggered"]
    assert np.array_equal(a["load"], s["load"])
    for col in ("crack_length", "fracture_energy", "elastic_energy"):
        scale = np.abs(s[col]).max()
        assert np.allclose(a[col], s[col], rtol=0, atol=TOL * scale), (col, np.abs(a[col] - s[col]).max() / scale)
    assert a["iterations"].sum() < s["iterations"].sum()


@pytest.mark.slow
def test_localisation_is_reported(schemes):
    summary, h, _ = schemes["accelerated"]
    loc = summary["localisation"]
    assert loc["available"] and loc["band_width_ratio_max"] == pytest.approx(h["band_width_ratio"].max())
    cracked = h["band_width_ratio"] > 0
    assert cracked.any() and np.all(h["band_width_ratio"][cracked] < 2.0)
    assert summary["failure_properties"]["model"] == "cohesive"
    assert summary["failure_properties"]["electrolyte"]["a1"] > 0


#: largest relative difference of the crack curves between the schemes (the damage
#: iteration stops at max |d_k - d_(k-1)| < 1e-4; measured: see the commit)
TOL = 1e-2
