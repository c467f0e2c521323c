"""Named material sets in a case: ``use:`` entries expanded into the values of the set.

In a case file (or with ``--set``, or ``Case.with_overrides``)::

    materials:
      electrolyte: li6ps5cl                       # the set as it is
      active: {use: nmc811, E: 180e9, nu: 0.3}    # the set, with fields of its own
    loading:
      active: {use: nmc811, kinetics: {k0: 5}}    # transport of the set: c_max, D, OCV
      electrolyte: {use: li6ps5cl}                # its ionic conductivity

A galvanostatic case whose ``loading.electrolyte`` is absent (or null) while
``materials.electrolyte`` names a set takes the conductivity of that same set, so that
one name (``--set materials.electrolyte=llzo_al``) swaps the whole electrolyte.

The entry then holds the set's values (SI) under the schema's field names: E, nu, the
failure properties (``fracture``: K_Ic or Gc, and strength) and, for active materials,
the chemical strain (``expansion_table`` from the set's table, or its total ``expansion``
over the set's lithium range); ``loading.*``: c_max, diffusivity, ocv (a named curve when
the set has one, else its table), kappa. Fields given in the case win over the set's;
a field set to null removes the set's (e.g. ``fracture: {strength: null, ell: 2e-7}``
for a model that takes only two failure properties). ``name`` becomes the set's name and
``source`` lists the sources of every value taken from it, followed by the case's own
``source`` (which says where the values given in the case come from), so that
summary.json and report.md say where each number came from.

A value that the set does not have (missing in the literature read for it) is not
invented: a case that needs it must give it, and otherwise stops with a message naming
the material and the field.
"""

from __future__ import annotations

import copy
from typing import Any

from solver.materials.library import MaterialError, MaterialSet, load

#: sections of a case whose entries may name a set, and the phases among them
MATERIAL_PHASES = ("active", "active_b", "electrolyte", "separator", "collector_layer", "coating")
TRANSPORT_ENTRIES = ("active", "active_b", "electrolyte", "separator", "collector_layer", "coating")


class UseError(ValueError):
    """A ``use:`` entry cannot be expanded; ``path`` is the case field, the text says why."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path = path


def _merge(base: dict, own: dict) -> dict:
    """``own`` over ``base``, recursively; a None in ``own`` removes the key."""
    out = copy.deepcopy(base)
    for k, v in own.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _set_mark(name: str) -> str:
    """How a resolved ``source`` begins: it names the set it was taken from."""
    return f"material set {name} ("


def _sources(mat: MaterialSet, keys: list[str]) -> str:
    parts = [f"{k}: {mat.properties[k].source}" for k in keys if k in mat.properties and mat.value(k) is not None]
    return f"{_set_mark(mat.name)}{mat.description}); " + "; ".join(parts)


def material_values(mat: MaterialSet, phase: str) -> tuple[dict, list[str]]:
    """The ``materials.<phase>`` entry of a set (SI) and the properties it used."""
    out: dict[str, Any] = {"name": mat.name}
    used = []
    for key in ("E", "nu"):
        if mat.value(key) is not None:
            out[key] = float(mat.value(key))
            used.append(key)
    if phase in ("active", "active_b"):
        if mat.expansion_table is not None:
            out["expansion_table"] = {"x": list(mat.expansion_table.x), "strain": list(mat.expansion_table.strain),
                                      "source": mat.properties["expansion"].source}
            used.append("expansion")
        elif mat.value("expansion") is not None:
            xr = mat.properties["expansion"].x_range or [0.0, 1.0]
            strain = float(mat.value("expansion"))
            out["expansion_table"] = {"x": [float(xr[0]), float(xr[1])], "strain": [0.0, strain],
                                      "source": mat.properties["expansion"].source}
            used.append("expansion")
    fracture = {}
    if mat.value("K_Ic") is not None:
        fracture["K_Ic"] = float(mat.value("K_Ic"))
        used.append("K_Ic")
    elif mat.value("Gc") is not None:
        fracture["Gc"] = float(mat.value("Gc"))
        used.append("Gc")
    if mat.value("strength") is not None:
        fracture["strength"] = float(mat.value("strength"))
        used.append("strength")
    if fracture:
        out["fracture"] = fracture
    return out, used


def transport_values(mat: MaterialSet, entry: str) -> tuple[dict, list[str]]:
    """The ``loading.<entry>`` entry of a set: an active material's c_max, diffusivity and
    OCV, or an ionic conductor's kappa (SI)."""
    out: dict[str, Any] = {}
    used = []
    if entry in ("active", "active_b"):
        if mat.class_ != "active":
            raise UseError(f"loading.{entry}", f"{mat.name} is a {mat.class_}, not an active material")
        if mat.value("c_max") is not None:
            out["c_max"] = float(mat.value("c_max"))
            used.append("c_max")
        if mat.value("D") is not None:
            out["diffusivity"] = float(mat.value("D"))
            used.append("D")
        ocv = mat.properties.get("ocv")
        if ocv is not None and ocv.curve:
            out["ocv"] = ocv.curve
            used.append("ocv")
        elif ocv is not None and ocv.x is not None:
            out["ocv_table"] = {"x": list(ocv.x), "U": list(ocv.U), "source": ocv.source}
            used.append("ocv")
    else:
        if mat.class_ == "active":
            raise UseError(f"loading.{entry}", f"{mat.name} is an active material, not an ionic conductor")
        if mat.value("kappa") is not None:
            out["kappa"] = float(mat.value("kappa"))
            used.append("kappa")
    return out, used


def _entry(value: Any, path: str) -> tuple[str | None, dict]:
    """(set name or None, the case's own fields) of an entry."""
    if isinstance(value, str):
        return value, {}
    if isinstance(value, dict) and value.get("use") is not None:
        own = {k: v for k, v in value.items() if k != "use"}
        if not isinstance(value["use"], str):
            raise UseError(f"{path}.use", f"use = {value['use']!r}: the name of a material set (ssbfrac materials)")
        return value["use"], own
    return None, {}


def _expand(value: Any, path: str, values_of) -> Any:
    name, own = _entry(value, path)
    if name is None:
        return value
    try:
        mat = load(name)
    except MaterialError as exc:
        raise UseError(path, str(exc)) from None
    base, used = values_of(mat)
    merged = _merge(base, own)
    if own.get("expansion") is not None and "expansion_table" not in own:  # the case's linear law wins
        merged.pop("expansion_table", None)
    taken = [k for k in used if not _overridden(k, own)]
    generated = _sources(mat, taken)
    own_source = own.get("source")
    if not own_source:
        merged["source"] = generated
    elif _set_mark(name) not in own_source:  # not yet resolved: the set's sources, then the case's
        merged["source"] = f"{generated}; values of the case: {' '.join(str(own_source).split())}"
    merged["use"] = name
    return merged


def _overridden(prop: str, own: dict) -> bool:
    field = {"D": "diffusivity", "expansion": "expansion_table"}.get(prop, prop)
    if prop in ("K_Ic", "Gc", "strength"):
        return field in (own.get("fracture") or {})
    if prop == "expansion" and own.get("expansion") is not None:
        return True
    return field in own


def expand_named_materials(data: dict) -> dict:
    """A copy of a raw case dict with every ``use:`` entry of ``materials`` and ``loading``
    expanded (see the module docstring); UseError names the field."""
    data = copy.deepcopy(data)
    mats = data.get("materials")
    if isinstance(mats, dict):
        for phase in MATERIAL_PHASES:
            if phase in mats:
                mats[phase] = _expand(mats[phase], f"materials.{phase}", lambda m, p=phase: material_values(m, p))
    ld = data.get("loading")
    if isinstance(ld, dict) and ld.get("type") == "galvanostatic":
        name = _entry(mats.get("electrolyte"), "materials.electrolyte")[0] if isinstance(mats, dict) else None
        if ld.get("electrolyte") is None and name is not None:
            ld["electrolyte"] = {"use": name}
        for entry in TRANSPORT_ENTRIES:
            if entry in ld:
                ld[entry] = _expand(ld[entry], f"loading.{entry}", lambda m, e=entry: transport_values(m, e))
    return data


def _default_model() -> str:
    from solver.config.fracture import Fracture

    return Fracture.model_fields["model"].default


def missing_for(data: dict) -> list[tuple[str, str, str]]:
    """(field path, material set, property) of values that an expanded case needs but
    neither its set nor the case gives: E and nu of every phase; the failure properties
    of the phases that may crack; the transport of a galvanostatic loading."""
    out = []
    mats = data.get("materials") or {}
    frac = data.get("fracture") or {}
    cracking = frac.get("phases", ["electrolyte"]) if frac.get("enabled") else []
    cohesive = frac.get("model", _default_model()) == "cohesive"
    for phase, entry in mats.items() if isinstance(mats, dict) else ():
        if not isinstance(entry, dict) or entry.get("use") is None:
            continue
        for key in ("E", "nu"):
            if key not in entry:
                out.append((f"materials.{phase}.{key}", entry["use"], key))
        if phase in cracking:
            f = entry.get("fracture") or {}
            tough, strength, ell = "Gc" in f or "K_Ic" in f, "strength" in f or "critical_strain" in f, "ell" in f
            # the cohesive model takes a toughness, a strength and ell; AT1/AT2 any two of them
            if not tough and (cohesive or not (strength and ell)):
                out.append((f"materials.{phase}.fracture", entry["use"], "K_Ic or Gc (fracture toughness)"))
            if cohesive and not strength:
                out.append((f"materials.{phase}.fracture.strength", entry["use"], "strength (tensile strength)"))
            elif not cohesive and not strength and not ell:
                out.append((f"materials.{phase}.fracture.strength", entry["use"], "strength"))
        if phase in ("active", "active_b") and "expansion_table" not in entry and "expansion" not in entry:
            out.append((f"materials.{phase}.expansion", entry["use"], "expansion (chemical strain)"))
    ld = data.get("loading") or {}
    if isinstance(ld, dict) and ld.get("type") == "galvanostatic":
        for name, entry in ld.items():
            if not isinstance(entry, dict) or entry.get("use") is None:
                continue
            if name in ("active", "active_b"):
                for key, prop in (("c_max", "c_max"), ("diffusivity", "D")):
                    if key not in entry and key + "_table" not in entry:
                        out.append((f"loading.{name}.{key}", entry["use"], prop))
                if "ocv" not in entry and "ocv_table" not in entry:
                    out.append((f"loading.{name}.ocv", entry["use"], "ocv"))
            elif "kappa" not in entry:
                out.append((f"loading.{name}.kappa", entry["use"], "kappa"))
    return out
