"""How localised the cracks of a run are, from its history (2D runs).

* ``band_width_ratio``: (area of d >= 0.9) / (sharp crack length) / (width of d >= 0.9 in
  the optimal 1D profile), each row (history.csv). 1 means as thin as a 1D crack; a band
  much wider than the profile is damage spreading sideways, not a crack growing.
* ``length_ratio``: sharp over regularised crack length. A localised crack has both equal
  (up to the mesh); bands that merge shorten the sharp length while the regularised one
  still grows.
"""

from __future__ import annotations

import numpy as np


def localisation(history: dict) -> dict:
    """{available, band_width_ratio_max, band_width_ratio_final, length_ratio_final,
    length_ratio_min} over the accepted rows with a crack (sharp length > 0)."""
    need = ("band_width_ratio", "crack_length_sharp", "crack_length")
    if any(k not in history for k in need):
        return {"available": False, "reason": "no band-width column (3D run, or fracture not enabled)"}
    bw = np.asarray(history["band_width_ratio"], dtype=float)
    sharp = np.asarray(history["crack_length_sharp"], dtype=float)
    reg = np.asarray(history["crack_length"], dtype=float)
    cracked = (bw > 0) & (sharp > 0) & (reg > 0)
    if not cracked.any():
        return {"available": False, "reason": "no crack in the run (no row with d >= 0.9)"}
    lr = sharp[cracked] / reg[cracked]
    return {"available": True, "rows": int(cracked.sum()),
            "band_width_ratio_max": float(bw[cracked].max()), "band_width_ratio_final": float(bw[cracked][-1]),
            "length_ratio_final": float(lr[-1]), "length_ratio_min": float(lr.min())}
