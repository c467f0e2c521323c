"""Stage detection on synthetic crack curves with known onset, stage-II rate and saturation.

The reference curve rises from 0 at s0 with the rate r up to the plateau C = r (s1 - s0)
reached at s1. Its smooth version is r w [softplus((s - s0)/w) - softplus((s - s1)/w)]:
piecewise linear with rounded corners of width w for small w, and an S-curve (the
integral of a difference of two logistic functions) for larger w. Its asymptotes give
the exact onset (s0), rate (r), saturation (C) and start of stage III (s1).
"""

import csv

import numpy as np
import pytest
from scipy.optimize import brentq

from postprocess.history import PostprocessError
from postprocess.stages import (detect_stages, detect_stages_from_history, isotonic_fit, loading_envelope,
                                running_median)

S0, S1, RATE = 0.3, 0.7, 25.0
PLATEAU = RATE * (S1 - S0)
TOL = 0.02  # relative


def softplus(z):
    return np.logaddexp(0.0, z)


def smooth(s, w):
    return RATE * w * (softplus((s - S0) / w) - softplus((s - S1) / w))


def grid(n=201, shift=0.0013):
    """Load points on [0, 1], not aligned with the corners of the curve."""
    s = np.concatenate([[0.0], np.arange(shift, 1.0, 1.0 / (n - 1))])
    return s


def threshold_crossing(curve, s, fraction=0.02):
    """The onset of the definition, on the exact curve: where it first reaches
    c0 + fraction * (c_end - c0)."""
    c0, c_end = curve(s[0]), curve(s[-1])
    level = c0 + fraction * (c_end - c0)
    return brentq(lambda x: curve(x) - level, s[0], S1)


def assert_known(res, onset=None, saturation=True):
    assert res["cracked"] and res["stage_I_detected"] and res["stage_II_detected"]
    assert res["onset_load_extrapolated"] == pytest.approx(S0, rel=TOL)
    assert res["stage_II_rate"] == pytest.approx(RATE, rel=TOL)
    if onset is not None:
        assert res["onset_load"] == pytest.approx(onset, rel=TOL)
    if saturation:
        assert res["stage_III_detected"]
        assert res["saturation_level"] == pytest.approx(PLATEAU, rel=TOL)
        assert res["stage_III_start"] == pytest.approx(S1, rel=TOL)
    else:
        assert not res["stage_III_detected"]
        assert res["saturation_level"] is None and res["stage_III_start"] is None


@pytest.mark.parametrize("w", [0.002, 0.01, 0.02])
def test_piecewise_linear_with_smooth_corners_and_s_curve(w):
    s = grid()
    res = detect_stages(s, smooth(s, w))
    assert_known(res, onset=threshold_crossing(lambda x: smooth(x, w), s))
    # the onset lies between the corner's start and the threshold of a sharp corner
    assert S0 - 3 * w <= res["onset_load"] <= S0 + 0.02 * (S1 - S0) + 1e-9
    assert res["final_crack"] == pytest.approx(PLATEAU, rel=1e-3)
    assert s[res["onset_index"] - 1] < res["onset_load"] <= s[res["onset_index"]]


def test_logistic_curve():
    k, mid = 20.0, 0.5
    s = grid()
    curve = lambda x: PLATEAU / (1.0 + np.exp(-k * (x - mid)))  # noqa: E731
    res = detect_stages(s, curve(s))
    assert res["cracked"] and res["stage_II_detected"] and res["stage_III_detected"]
    assert res["onset_load"] == pytest.approx(threshold_crossing(curve, s), rel=TOL)
    assert res["saturation_level"] == pytest.approx(PLATEAU, rel=TOL)
    # a line through the central part of a logistic lies between its 20-80 % secant and its steepest slope
    secant = 0.6 * PLATEAU / (2 * np.log(4.0) / k)
    assert secant * (1 - TOL) <= res["stage_II_rate"] <= PLATEAU * k / 4


def test_noisy_curve():
    rng = np.random.default_rng(7)
    s = grid()
    noisy = smooth(s, 0.01) + 0.005 * PLATEAU * rng.standard_normal(s.size)
    noisy[::37] += 0.2 * PLATEAU  # isolated outliers
    res = detect_stages(s, noisy)
    assert_known(res)
    assert res["onset_load"] == pytest.approx(threshold_crossing(lambda x: smooth(x, 0.01), s), rel=0.05)


def test_step_like_curve_of_brittle_jumps():
    """The crack grows in 12 jumps (the smooth curve rounded to steps of C/12), with noise."""
    rng = np.random.default_rng(3)
    s = grid(shift=0.0021)
    jump = PLATEAU / 12
    stairs = jump * np.round(smooth(s, 0.002) / jump) + 0.002 * PLATEAU * rng.standard_normal(s.size)
    res = detect_stages(s, stairs)
    assert res["cracked"] and res["stage_II_detected"] and res["stage_III_detected"]
    assert res["onset_load_extrapolated"] == pytest.approx(S0, rel=TOL)
    assert res["stage_II_rate"] == pytest.approx(RATE, rel=TOL)
    assert res["saturation_level"] == pytest.approx(PLATEAU, rel=TOL)
    tread = jump / RATE
    assert abs(res["stage_III_start"] - S1) <= tread
    # the first crack is the first jump, where the smooth curve passes half a step
    first_jump = brentq(lambda x: smooth(x, 0.002) - jump / 2, 0.0, S1)
    assert abs(res["onset_load"] - first_jump) <= 0.006


def test_never_saturates():
    s = grid()
    res = detect_stages(s, RATE * 0.01 * softplus((s - S0) / 0.01))
    assert_known(res, saturation=False)
    assert "still growing" in res["note"]


def test_never_cracks():
    rng = np.random.default_rng(1)
    s = grid()
    for crack in (np.zeros_like(s), 1e-4 * np.abs(rng.standard_normal(s.size))):
        res = detect_stages(s, crack)
        assert not res["cracked"]
        assert res["stage_I_detected"] and not res["stage_II_detected"] and not res["stage_III_detected"]
        assert res["onset_load"] is None and res["stage_II_rate"] is None and res["saturation_level"] is None
        assert "no crack" in res["note"]


def test_single_brittle_jump_has_onset_but_no_rate():
    s = grid()
    crack = np.where(s > 0.4, 5.0, 0.0)
    res = detect_stages(s, crack)
    assert res["cracked"] and res["stage_I_detected"]
    assert not res["stage_II_detected"] and not res["stage_III_detected"]
    assert res["stage_II_rate"] is None
    assert s[res["onset_index"] - 1] <= 0.4 < s[res["onset_index"]]
    assert 0.395 <= res["onset_load"] <= 0.405


def test_unloading_segments_do_not_change_the_stages():
    """Load up to 0.55 (mid stage II), unload to 0.2, reload to 1: the crack is constant
    while the load is below its earlier maximum."""
    up = np.linspace(0.0, 0.55, 111)
    down = np.linspace(0.55, 0.2, 71)[1:]
    again = np.linspace(0.2, 1.0, 161)[1:]
    load = np.concatenate([up, down, again])
    crack = smooth(np.maximum.accumulate(load), 0.01)
    res = detect_stages(load, crack)
    reference = detect_stages(np.concatenate([up, again[again > 0.55]]),
                              smooth(np.concatenate([up, again[again > 0.55]]), 0.01))
    assert res["n_off_envelope_rows"] == len(down) + int(np.sum(again <= 0.55))
    for key in ("onset_load", "stage_II_rate", "stage_III_start", "saturation_level"):
        assert res[key] == pytest.approx(reference[key], rel=1e-12), key
    assert_known(res)


def test_building_blocks():
    assert loading_envelope([0.0, 0.1, 0.2, 0.1, 0.15, 0.2, 0.3, np.nan, 0.4]).tolist() == [0, 1, 2, 6, 8]
    assert isotonic_fit([1.0, 3.0, 2.0, 4.0]).tolist() == [1.0, 2.5, 2.5, 4.0]
    assert running_median([0.0, 0.0, 9.0, 0.0, 0.0], 3).tolist() == [0.0, 0.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="same length"):
        detect_stages([0.0, 1.0], [0.0])


# --------------------------------------------------------------------------- from history.csv
def write_history(path, rows, columns):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


def lithiation_history(path, expansion=0.075, with_crack=True):
    """x: 0 -> 1 (soc 1 -> 0), vol_strain = expansion x; a rejected step with a wrong crack value."""
    x = np.linspace(0.0, 1.0, 201)
    crack = smooth(x, 0.01)
    columns = ["step", "accepted", "time", "load", "x", "soc", "vol_strain"] + (["crack_length"] if with_crack else [])
    rows, step = [], 0
    for i in range(x.size):
        if i == 100:
            rows.append([step, 0, 0, x[i], x[i], 1 - x[i], expansion * x[i]] + ([999.0] if with_crack else []))
            step += 1
        rows.append([step, 1, 0, x[i], x[i], 1 - x[i], expansion * x[i]] + ([crack[i]] if with_crack else []))
        step += 1
    return write_history(path, rows, columns)


def test_from_history_in_strain_and_soc(tmp_path):
    path = lithiation_history(tmp_path / "history.csv")
    by_strain = detect_stages_from_history(path)
    by_soc = detect_stages_from_history(path, abscissa="soc")
    assert by_strain["available"] and by_strain["coordinate"] == "abs(vol_strain)"
    # the rejected row (crack 999) is ignored: the plateau is the curve's
    assert by_strain["saturation_level"] == pytest.approx(PLATEAU, rel=TOL)
    assert by_strain["stage_II_rate"] == pytest.approx(RATE / 0.075, rel=TOL)
    assert by_strain["onset_extrapolated_value"] == pytest.approx(0.075 * S0, rel=TOL)
    assert by_strain["stage_III_start_value"] == pytest.approx(0.075 * S1, rel=TOL)
    # against the state of charge, which decreases: values in SOC, rate per unit of SOC moved
    assert by_soc["onset_extrapolated_value"] == pytest.approx(1 - S0, rel=TOL)
    assert by_soc["stage_III_start_value"] == pytest.approx(1 - S1, rel=TOL)
    assert by_soc["stage_II_rate"] == pytest.approx(RATE, rel=TOL)
    assert by_soc["onset_value"] == pytest.approx(1 - by_strain["onset_value"] / 0.075, rel=1e-9)
    # the step column of the onset row counts the rejected step too
    assert by_strain["onset_step"] == by_strain["onset_index"] + (1 if by_strain["onset_index"] >= 100 else 0)


def test_from_history_without_crack_column(tmp_path):
    res = detect_stages_from_history(lithiation_history(tmp_path / "history.csv", with_crack=False))
    assert res["available"] is False
    assert "no crack_length column" in res["reason"] and "history.csv" in res["reason"]


def test_from_history_errors_name_the_file(tmp_path):
    with pytest.raises(PostprocessError, match="missing.csv: history file not found"):
        detect_stages_from_history(tmp_path / "missing.csv")
    bad = write_history(tmp_path / "bad.csv", [[0, 1, 0.0], [1, 1, "abc"]], ["step", "accepted", "crack_length"])
    with pytest.raises(PostprocessError, match=r"bad.csv: line 3: column crack_length: 'abc' is not a number"):
        detect_stages_from_history(bad)
    no_acc = write_history(tmp_path / "noacc.csv", [[0, 0.0]], ["step", "crack_length"])
    with pytest.raises(PostprocessError, match="noacc.csv: no 'accepted' column"):
        detect_stages_from_history(no_acc)
    path = lithiation_history(tmp_path / "history.csv")
    with pytest.raises(PostprocessError, match="no column 'voltage'"):
        detect_stages_from_history(path, abscissa="voltage")
