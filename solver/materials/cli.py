"""``ssbfrac materials``: the named material sets, their values and sources.

    ssbfrac materials              a table: name, class, key values, number of sources
    ssbfrac materials NAME         every property of one set, with range, method and source
    ssbfrac materials --json       every set as JSON (name, class, values, units, source, ...)
"""

from __future__ import annotations

import json

from solver.materials.library import MaterialError, load, names

#: columns of the table: (property, header, factor from SI, format)
COLUMNS = [("E", "E GPa", 1e-9, "{:.4g}"), ("nu", "nu", 1.0, "{:.3g}"), ("K_Ic", "K_Ic MPa m^0.5", 1e-6, "{:.3g}"),
           ("strength", "strength MPa", 1e-6, "{:.4g}"), ("kappa", "kappa mS/cm", 10.0, "{:.3g}"),
           ("D", "D m^2/s", 1.0, "{:.2g}"), ("expansion", "dV/V", 1.0, "{:+.3f}")]


def add_arguments(parser) -> None:
    parser.add_argument("name", nargs="?", help="show one material set")
    parser.add_argument("--json", action="store_true", help="print the sets (or the one named) as JSON")


def _cell(mat, key: str, factor: float, fmt: str) -> str:
    v = mat.value(key)
    if key not in mat.properties:
        return ""
    if v is None:
        return "missing"
    return fmt.format(float(v) * factor) if not isinstance(v, str) else v


def table() -> str:
    mats = [load(n) for n in names()]
    rows = [["name", "class"] + [c[1] for c in COLUMNS] + ["sources"]]
    for m in mats:
        sources = {p.source for p in m.properties.values() if p.value is not None}
        rows.append([m.name, m.class_] + [_cell(m, key, f, fmt) for key, _, f, fmt in COLUMNS] + [str(len(sources))])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + ("\n\n'missing': no measurement in the literature read for the set; a case that needs the "
                               "value gives it itself. ssbfrac materials NAME shows the sources.")


def details(name: str) -> str:
    m = load(name)
    out = [f"{m.name} ({m.class_}): {m.description}", f"file: {m.path}", ""]
    for key, p in m.properties.items():
        if p.value is None:
            out.append(f"{key}: missing ({p.unit}){': ' + p.note if p.note else ''}")
            continue
        rng = f" (range {p.range[0]:.4g} to {p.range[1]:.4g})" if p.range else ""
        val = f"{p.value:.6g}" if isinstance(p.value, float) else str(p.value)
        out.append(f"{key}: {val} {p.unit}{rng}")
        for label, text in (("method", p.method), ("source", p.source), ("note", p.note)):
            if text:
                out.append(f"    {label}: {' '.join(text.split())}")
    if m.expansion_table is not None:
        out.append(f"expansion_table: x {m.expansion_table.x}, volumetric strain {m.expansion_table.strain}")
    return "\n".join(out)


def main(args, comm) -> int:
    try:
        if args.json:
            data = [load(args.name).as_json()] if args.name else [load(n).as_json() for n in names()]
            text = json.dumps(data, indent=1)
        else:
            text = details(args.name) if args.name else table()
    except MaterialError as exc:
        from solver.config import CaseError

        raise CaseError(f"ssbfrac materials: {exc}") from None
    if comm.rank == 0:
        print(text)
    return 0
