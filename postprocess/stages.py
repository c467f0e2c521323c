"""Stages of crack growth on a crack-length curve.

Bucci, Swamy, Chiang and Carter (J. Mater. Chem. A 5 (2017) 19422) describe the crack
length against the state of charge (or the particles' volumetric strain) in three stages:

* stage I: no crack, up to the onset;
* stage II: growth at a near-constant rate;
* stage III: the growth slows down and the crack length saturates.

:func:`detect_stages` finds them on any crack curve against a loading coordinate ``s``
that increases along the loading; :func:`detect_stages_from_history` applies it to a
run's ``history.csv``. Each quantity has one explicit definition (also in
``docs/postprocessing.md``), applied in this order:

1. **Loading envelope.** Rows with a non-finite load or crack are dropped. A row is kept
   only if its load exceeds every earlier load (by more than 1e-12 of the load range):
   unloading, and reloading up to the previous maximum, are left out (the crack is
   constant there). All stage values refer to these envelope rows.
2. **Monotone fit.** A running median over ``median_rows`` consecutive envelope rows
   (removes isolated outliers, keeps steps), then the least-squares non-decreasing
   (isotonic) fit ``g`` of it (pool-adjacent-violators). Cracks do not heal, so ``g``
   is the crack curve without noise; brittle jumps remain jumps.
3. **Crack growth.** ``initial_crack = g[0]``, ``crack_growth = g[-1] - g[0]``. The run
   has **cracked** if ``crack_growth > min_crack`` (an absolute floor in crack units);
   otherwise the whole curve is stage I and nothing else is reported.
4. **Onset** (end of stage I). Threshold ``T = initial_crack + max(onset_fraction *
   crack_growth, min_crack)``. ``onset_index`` is the first envelope row with
   ``g >= T``; ``onset_load`` is the load where ``g`` reaches ``T``, interpolated
   linearly between that row and the one before. Stage I is **detected** when at least
   two envelope rows precede the onset (an uncracked interval was observed).
5. **Stage-II rate.** The fit points are the levels of ``g``: runs of rows with equal
   ``g`` (one row each on a smooth curve, one tread each on a staircase of brittle
   jumps), where consecutive runs closer than three noise scales are one level (their
   row-weighted mean; the noise scale is 1.4826 x the median absolute difference
   between the crack and its running median, zero without noise). Levels whose value
   lies between ``initial_crack + fit_band[0] * crack_growth`` and ``initial_crack +
   fit_band[1] * crack_growth`` (the central part of the rise) are used, each placed at
   the middle of the loads it spans. ``stage_II_rate`` is the Theil-Sen slope (median
   of pairwise slopes) through these points, in crack units per unit load, and
   ``stage_II_intercept`` its intercept. Stage II is **detected** with at least two
   levels and three rows in the band; otherwise the crack grew in one or two jumps and
   no rate is given. ``onset_load_extrapolated`` is where the stage-II line reaches
   ``initial_crack`` (the tangent construction).
6. **Stage III start.** With the window ``h = max(window_fraction * crack_growth /
   stage_II_rate, 2 * median load step)``, the local rate at each envelope row is the
   growth of ``g`` over the centred load window of width ``h`` (cut at the ends of the
   curve) divided by the window width. ``stage_III_start`` is the load after which the
   local rate stays below ``saturation_rate_fraction * stage_II_rate`` until the end
   (interpolated between the last row above and the first row below). Stage III is
   **detected** when this load exists after the onset and the curve continues at
   least one window ``h`` beyond it; otherwise the crack is still growing at the end
   (no saturation). With the default fraction 0.5 the start falls at the corner of
   the asymptotes for a sharp or symmetrically rounded transition.
7. **Saturation level.** The median of the crack over the envelope rows at or after
   ``stage_III_start`` (only when stage III is detected). ``final_crack`` is the crack
   of the last row given, whatever the stages.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

DEFAULTS = {
    "onset_fraction": 0.02,
    "min_crack": 0.01,
    "fit_band": (0.2, 0.8),
    "saturation_rate_fraction": 0.5,
    "window_fraction": 0.1,
    "median_rows": 5,
}

DEFINITIONS = {
    "envelope": "rows whose load exceeds every earlier load; unloading and reloading rows are left out",
    "monotone_fit": "isotonic (non-decreasing least-squares) fit g of the running median of the crack "
                    "over median_rows rows",
    "cracked": "crack_growth = g[-1] - g[0] > min_crack",
    "onset": "load where g first reaches initial_crack + max(onset_fraction * crack_growth, min_crack), "
             "interpolated between envelope rows",
    "onset_extrapolated": "load where the stage-II line reaches initial_crack",
    "stage_I_detected": "at least two envelope rows before the onset",
    "stage_II_rate": "Theil-Sen slope through the levels of g (runs of equal g, runs closer than 3 noise scales "
                     "merged) whose value lies in the fit_band fraction of the crack growth, each at the middle of "
                     "its loads; crack units per unit load",
    "stage_II_detected": "at least two levels and three rows in the fit band",
    "stage_III_start": "load after which the growth rate of g over a centred window of width h = "
                       "max(window_fraction * crack_growth / stage_II_rate, 2 * median load step) stays below "
                       "saturation_rate_fraction * stage_II_rate",
    "stage_III_detected": "stage_III_start exists after the onset and the curve extends at least h beyond it",
    "saturation_level": "median crack of the envelope rows at or after stage_III_start",
    "final_crack": "crack of the last row",
}


# --------------------------------------------------------------------------- building blocks
def loading_envelope(load) -> np.ndarray:
    """Indices of the rows whose load exceeds every earlier (finite) load.

    The tolerance is 1e-12 of the load range. Non-finite loads are skipped.
    """
    load = np.asarray(load, dtype=float)
    finite = np.flatnonzero(np.isfinite(load))
    if finite.size == 0:
        return finite
    tol = 1e-12 * max(1.0, float(np.ptp(load[finite])))
    keep = []
    highest = -math.inf
    for i in finite:
        if load[i] > highest + tol:
            keep.append(i)
            highest = load[i]
    return np.array(keep, dtype=int)


def running_median(values, rows: int) -> np.ndarray:
    """Median over ``rows`` consecutive values centred on each one (fewer at the ends)."""
    values = np.asarray(values, dtype=float)
    half = max(int(rows), 1) // 2
    if half == 0:
        return values.copy()
    return np.array([np.median(values[max(0, i - half): i + half + 1]) for i in range(values.size)])


def isotonic_fit(values) -> np.ndarray:
    """Least-squares non-decreasing fit (pool-adjacent-violators algorithm)."""
    means: list[float] = []
    counts: list[int] = []
    for v in np.asarray(values, dtype=float):
        means.append(float(v))
        counts.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            n = counts[-2] + counts[-1]
            merged = (means[-2] * counts[-2] + means[-1] * counts[-1]) / n
            means[-2:] = [merged]
            counts[-2:] = [n]
    return np.repeat(means, counts)


def theil_sen(x, y) -> tuple[float, float]:
    """Slope (median of pairwise slopes) and intercept (median of y - slope x)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    i, j = np.triu_indices(x.size, k=1)
    dx = x[j] - x[i]
    ok = dx != 0
    slope = float(np.median((y[j] - y[i])[ok] / dx[ok]))
    return slope, float(np.median(y - slope * x))


def noise_scale(crack: np.ndarray, smoothed: np.ndarray) -> float:
    """Robust noise scale: 1.4826 x the median absolute difference between the crack and
    its running median (zero for a smooth or a step-like curve without noise)."""
    return float(1.4826 * np.median(np.abs(crack - smoothed)))


def crack_levels(g: np.ndarray, tolerance: float) -> list[tuple[int, int, float]]:
    """(first row, last row, value) of the levels of the monotone fit g: runs of equal
    values, where consecutive runs closer than ``tolerance`` count as one level (their
    row-weighted mean). A tread between two brittle jumps is one level even when noise
    splits it into several runs."""
    breaks = np.flatnonzero(np.diff(g) != 0) + 1
    starts = np.concatenate([[0], breaks]).tolist()
    ends = np.concatenate([breaks - 1, [g.size - 1]]).tolist()
    levels: list[list] = []
    for a, b in zip(starts, ends):
        if levels and g[a] - levels[-1][2] < tolerance:
            first, _, value = levels[-1]
            rows_before, rows_new = a - first, b - a + 1
            levels[-1] = [first, b, (value * rows_before + g[a] * rows_new) / (rows_before + rows_new)]
        else:
            levels.append([a, b, float(g[a])])
    return [(a, b, v) for a, b, v in levels]


def _local_rates(s: np.ndarray, g: np.ndarray, width: float) -> np.ndarray:
    """Growth of g over the centred load window of ``width`` around each row, per unit load."""
    lo = np.maximum(s - width / 2, s[0])
    hi = np.minimum(s + width / 2, s[-1])
    span = hi - lo
    rates = np.zeros_like(s)
    ok = span > 0
    rates[ok] = (np.interp(hi[ok], s, g) - np.interp(lo[ok], s, g)) / span[ok]
    return rates


def _cross(s0: float, s1: float, v0: float, v1: float, level: float) -> float:
    """Load where the straight line from (s0, v0) to (s1, v1) reaches ``level``."""
    if v1 == v0:
        return s1
    return s0 + (level - v0) / (v1 - v0) * (s1 - s0)


# --------------------------------------------------------------------------- detection
def detect_stages(load, crack, *, onset_fraction: float = DEFAULTS["onset_fraction"],
                  min_crack: float = DEFAULTS["min_crack"], fit_band=DEFAULTS["fit_band"],
                  saturation_rate_fraction: float = DEFAULTS["saturation_rate_fraction"],
                  window_fraction: float = DEFAULTS["window_fraction"],
                  median_rows: int = DEFAULTS["median_rows"], load_name: str = "load") -> dict:
    """Stages I-III of a crack curve ``crack(load)``; see the module docstring.

    ``load`` must increase along the loading (e.g. the absolute particle volumetric
    strain); rows that do not exceed the largest earlier load are left out. ``crack``
    is a crack length (or area) in any unit; ``min_crack`` is in the same unit.

    Returns a JSON-serialisable dict: ``cracked``, ``stage_I_detected``,
    ``stage_II_detected``, ``stage_III_detected``, ``onset_index`` (index into the
    given arrays), ``onset_load``, ``onset_load_extrapolated``, ``onset_threshold``,
    ``stage_II_rate`` and ``stage_II_intercept`` (crack per unit load),
    ``stage_II_fit_points``, ``stage_II_fit_rows``, ``stage_II_fit_range``,
    ``stage_III_index``, ``stage_III_start``, ``saturation_level``, ``initial_crack``,
    ``crack_growth``, ``final_crack``, ``window`` (h), ``noise`` (the noise scale),
    row counts, a one-line ``note``,
    the ``parameters`` used and the ``definitions``. Values that do not apply are None.
    ``load_name`` only names the load in the note.
    """
    load = np.asarray(load, dtype=float)
    crack = np.asarray(crack, dtype=float)
    if load.ndim != 1 or load.shape != crack.shape:
        raise ValueError(f"load and crack must be 1D arrays of the same length, got {load.shape} and {crack.shape}")
    lo_frac, hi_frac = (float(v) for v in fit_band)
    if not 0 <= lo_frac < hi_frac <= 1:
        raise ValueError(f"fit_band must be two fractions 0 <= a < b <= 1, got {fit_band}")
    if not 0 < onset_fraction < 1 or not 0 < saturation_rate_fraction < 1:
        raise ValueError("onset_fraction and saturation_rate_fraction must lie strictly between 0 and 1")
    if min_crack < 0 or window_fraction <= 0:
        raise ValueError("min_crack must be >= 0 and window_fraction > 0")

    result = {
        "n_rows": int(load.size), "n_envelope_rows": 0, "n_off_envelope_rows": 0,
        "cracked": False, "stage_I_detected": False, "stage_II_detected": False, "stage_III_detected": False,
        "initial_crack": None, "crack_growth": None, "final_crack": None,
        "onset_threshold": None, "onset_index": None, "onset_load": None, "onset_load_extrapolated": None,
        "stage_II_rate": None, "stage_II_intercept": None, "stage_II_fit_points": 0, "stage_II_fit_rows": 0,
        "stage_II_fit_range": None, "stage_III_index": None, "stage_III_start": None, "saturation_level": None,
        "window": None, "noise": None, "note": "",
        "parameters": {"onset_fraction": onset_fraction, "min_crack": min_crack, "fit_band": [lo_frac, hi_frac],
                       "saturation_rate_fraction": saturation_rate_fraction, "window_fraction": window_fraction,
                       "median_rows": int(median_rows)},
        "definitions": dict(DEFINITIONS),
    }
    valid = np.isfinite(load) & np.isfinite(crack)
    if valid.any():
        result["final_crack"] = float(crack[np.flatnonzero(valid)[-1]])
    env = loading_envelope(np.where(valid, load, np.nan))
    result["n_envelope_rows"] = int(env.size)
    result["n_off_envelope_rows"] = int(valid.sum() - env.size)
    if env.size < 3:
        result["note"] = f"too few loading rows ({env.size}) to detect stages"
        return _plain(result)
    s = load[env]
    c = crack[env]
    smoothed = running_median(c, median_rows)
    g = isotonic_fit(smoothed)
    c0 = float(g[0])
    growth = float(g[-1] - g[0])
    result["initial_crack"] = c0
    result["crack_growth"] = growth
    if growth <= min_crack:
        result["stage_I_detected"] = True
        result["note"] = f"no crack: the crack grew by {growth:.4g} <= min_crack = {min_crack:g}"
        return _plain(result)
    result["cracked"] = True

    # stage I -> II: onset
    threshold = c0 + max(onset_fraction * growth, min_crack)
    k = int(np.argmax(g >= threshold))
    result["onset_threshold"] = threshold
    result["onset_index"] = int(env[k])
    result["onset_load"] = _cross(s[k - 1], s[k], g[k - 1], g[k], threshold)  # k >= 1: g[0] < threshold
    result["stage_I_detected"] = k >= 2

    # stage II: rate through the levels of g in the central band of the rise
    band_lo, band_hi = c0 + lo_frac * growth, c0 + hi_frac * growth
    noise = noise_scale(c, smoothed)
    result["noise"] = noise
    levels = [(a, b, v) for a, b, v in crack_levels(g, 3.0 * noise) if band_lo <= v <= band_hi]
    rows = sum(b - a + 1 for a, b, _ in levels)
    result["stage_II_fit_points"] = len(levels)
    result["stage_II_fit_rows"] = int(rows)
    if len(levels) < 2 or rows < 3:
        result["note"] = (f"cracked at {load_name} = {result['onset_load']:.4g}; the crack grew in too few steps "
                          f"({len(levels)} level(s) in the fit band) to measure a stage-II rate")
        return _plain(result)
    centres = np.array([0.5 * (s[a] + s[b]) for a, b, _ in levels])
    values = np.array([v for _, _, v in levels])
    rate, intercept = theil_sen(centres, values)
    if not rate > 0:
        result["note"] = "the crack curve has no increasing central part: no stage-II rate"
        return _plain(result)
    result["stage_II_detected"] = True
    result["stage_II_rate"] = rate
    result["stage_II_intercept"] = intercept
    result["stage_II_fit_range"] = [float(s[levels[0][0]]), float(s[levels[-1][1]])]
    result["onset_load_extrapolated"] = (c0 - intercept) / rate

    # stage II -> III: the local rate stays below a fraction of the stage-II rate
    steps = np.diff(s)
    width = max(window_fraction * growth / rate, 2.0 * float(np.median(steps)))
    result["window"] = width
    local = _local_rates(s, g, width)
    limit = saturation_rate_fraction * rate
    above = np.flatnonzero(local >= limit)
    last_above = max(int(above[-1]) if above.size else k, k)
    first_below = last_above + 1
    if first_below < s.size:
        start = _cross(s[last_above], s[first_below], local[last_above], local[first_below], limit)
        start = min(max(start, s[last_above]), s[first_below])
        if s[-1] - start >= width:
            result["stage_III_detected"] = True
            result["stage_III_start"] = start
            result["stage_III_index"] = int(env[first_below])
            result["saturation_level"] = float(np.median(c[s >= start]))
    if result["stage_III_detected"]:
        result["note"] = (f"onset at {load_name} = {result['onset_load']:.4g}, stage-II rate {rate:.4g}, "
                          f"saturation {result['saturation_level']:.4g} from {load_name} = "
                          f"{result['stage_III_start']:.4g}")
    else:
        result["note"] = (f"onset at {load_name} = {result['onset_load']:.4g}, stage-II rate {rate:.4g}; "
                          f"still growing at the end (no saturation)")
    return _plain(result)


def _plain(obj):
    """numpy scalars -> Python numbers (JSON)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


# --------------------------------------------------------------------------- from a run
#: abscissae offered for history.csv and how each becomes an increasing coordinate
ABSCISSAE = {
    "vol_strain": "abs(vol_strain): size of the particle volumetric strain",
    "soc": "abs(soc - soc_0): state of charge moved since the first row",
    "x": "abs(x - x_0): lithium fraction moved since the first row",
}


def loading_coordinate(values: np.ndarray, abscissa: str) -> tuple[np.ndarray, str]:
    """The increasing loading coordinate made of a history column, and its description.

    ``vol_strain`` is taken in absolute value (swelling and shrinking both load the
    electrolyte); any other column (``soc``, ``x``, ...) as the distance from its value
    in the first row, so that a decreasing state of charge (lithiation) also counts as
    loading.
    """
    values = np.asarray(values, dtype=float)
    if abscissa == "vol_strain":
        return np.abs(values), "abs(vol_strain)"
    finite = values[np.isfinite(values)]
    start = finite[0] if finite.size else 0.0
    return np.abs(values - start), f"abs({abscissa} - {abscissa}_0)"


def detect_stages_from_history(history_csv: str | Path, abscissa: str = "vol_strain",
                               crack_column: str = "crack_length", **options) -> dict:
    """Stages of the crack curve of a run's history.csv (accepted rows only).

    ``abscissa`` is a history column: ``vol_strain`` (default, absolute value), ``soc``
    or ``x`` (distance from the first row); see :func:`loading_coordinate`.
    ``options`` are passed to :func:`detect_stages`.

    Without a ``crack_column`` (fracture disabled) returns ``{"available": False,
    "reason": ...}``. Otherwise the result of :func:`detect_stages` plus ``available``,
    ``abscissa``, ``coordinate`` (the transform used), ``crack_column``, ``history``
    (the file), ``onset_value``, ``onset_extrapolated_value`` and
    ``stage_III_start_value`` (the abscissa column itself, e.g. the state of charge, at
    those loads; interpolated along the loading envelope and clamped to its range),
    ``onset_step`` / ``stage_III_step`` (the ``step`` column of those rows) and
    ``units``. Loads of the result (``onset_load``, ``stage_III_start``,
    ``stage_II_rate``, ...) are in the coordinate.
    """
    from postprocess.history import PostprocessError, read_accepted_history

    path = Path(history_csv)
    history = read_accepted_history(path)
    base = {"history": str(path), "abscissa": abscissa, "crack_column": crack_column}
    if crack_column not in history:
        return {"available": False, **base,
                "reason": f"{path}: no {crack_column} column (fracture was not enabled in this run)"}
    if abscissa not in history:
        raise PostprocessError(f"{path}: no column {abscissa!r} to use as the loading coordinate; "
                               f"columns are {sorted(history)}")
    values = history[abscissa]
    coord, description = loading_coordinate(values, abscissa)
    result = detect_stages(coord, history[crack_column], load_name=description, **options)
    result = {"available": True, **base, "coordinate": description, **result}

    env = loading_envelope(np.where(np.isfinite(history[crack_column]), coord, np.nan))
    steps = history.get("step")

    def value_at(load):
        if load is None or env.size == 0:
            return None
        return float(np.interp(load, coord[env], values[env]))

    def step_of(index):
        if index is None or steps is None or not np.isfinite(steps[index]):
            return None
        return int(steps[index])

    result["onset_value"] = value_at(result["onset_load"])
    result["onset_extrapolated_value"] = value_at(result["onset_load_extrapolated"])
    result["stage_III_start_value"] = value_at(result["stage_III_start"])
    result["onset_step"] = step_of(result["onset_index"])
    result["stage_III_step"] = step_of(result["stage_III_index"])
    crack_unit = "um (2D) or um^2 (3D)"
    result["units"] = {"load": description, "crack": crack_unit,
                       "stage_II_rate": f"{crack_unit} per unit {description}"}
    return _plain(result)


__all__ = ["detect_stages", "detect_stages_from_history", "loading_envelope", "loading_coordinate",
           "isotonic_fit", "running_median", "theil_sen", "DEFAULTS", "DEFINITIONS", "ABSCISSAE"]
