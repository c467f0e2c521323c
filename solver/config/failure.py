"""Checks that join the fracture model, the materials and the mesh (before meshing).

The model decides which failure data a cracking phase needs (AT1/AT2: two of toughness,
ell, strength; cohesive: all three), and the cohesive model's ell must lie below the
largest length its softening law can represent (set by Irwin's length) and be resolved
by the mesh where cracks run (ell >= 2 h, h the electrolyte's element size).
"""

from __future__ import annotations

from solver.config.base import FieldError
from solver.physics import cohesive as cz

#: smallest ell / h where cracks run (h the element size there)
MIN_ELL_OVER_H = 2.0


def check_failure(case) -> None:
    """Raise FieldError (path from the case's top level) on failure data that the chosen
    model cannot use."""
    fr = case.fracture
    if not fr.enabled:
        return
    h = case.geometry.mesh.size if case.geometry.mesh.file is None else None
    for phase in fr.phases:
        mat = case.materials.of(phase)
        if mat is None or mat.fracture is None:
            continue  # reported by the case's own check
        where = f"materials.{'electrolyte' if getattr(case.materials, phase) is None else phase}.fracture"
        spec = mat.fracture
        given = spec.given()
        if fr.model != "cohesive":
            if len(given) != 2:
                raise FieldError(where, {k: v for k, v in spec.model_dump().items() if v is not None},
                                 f"{fr.model} takes exactly two of a toughness, ell and a strength (the third "
                                 "follows from the homogeneous solution); got all three")
            continue
        missing = [k for k in ("toughness", "strength", "ell") if k not in given]
        if missing:
            names = {"toughness": "Gc or K_Ic", "strength": "strength or critical_strain", "ell": "ell"}
            raise FieldError(where, {k: v for k, v in spec.model_dump().items() if v is not None},
                             "the cohesive model takes a toughness, a strength and ell; missing: "
                             + ", ".join(names[k] for k in missing))
        r = cz.resolve_failure("cohesive", mat.E, mat.nu, spec, fr.softening)
        _check_ell(f"{where}.ell", spec.ell, r["ell_max"], r["l_ch"], fr.softening,
                   f"Gc = {r['Gc']:.3g} J/m^2, strength = {r['strength']:.3g} Pa, E_c = {r['E_c']:.3g} Pa")
        if h is not None and spec.ell < MIN_ELL_OVER_H * h:
            raise FieldError(f"{where}.ell", spec.ell,
                             f"ell must be at least {MIN_ELL_OVER_H:g} element sizes where cracks run: "
                             f"geometry.mesh.size = {h:g} m; lower geometry.mesh.size to at most {spec.ell / 2:g} m "
                             f"(ell / 4 for converged cracks) or raise ell")
        if phase == "electrolyte" and fr.interface is not None:
            f_t = fr.interface.strength if fr.interface.strength is not None else r["strength"]
            top = cz.ell_max(r["E_c"], fr.interface.Gc, f_t, fr.softening)
            _check_ell(f"{where}.ell", spec.ell, top, cz.irwin_length(r["E_c"], fr.interface.Gc, f_t), fr.softening,
                       f"the interface's Gc = {fr.interface.Gc:.3g} J/m^2, strength = {f_t:.3g} Pa "
                       "(fracture.interface)")


def _check_ell(path: str, ell: float, top: float, l_ch: float, softening: str, data: str) -> None:
    if ell > top * (1.0 + 1e-12):
        raise FieldError(path, ell,
                         f"above the largest ell the {softening} softening law can represent, {top:.4g} m "
                         f"(Irwin's length l_ch = E_c Gc / strength^2 = {l_ch:.4g} m with {data}); "
                         "lower ell (and the mesh size with it)")
