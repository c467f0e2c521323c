"""The plain-text reference of every case field (``ssbfrac schema``)."""

from __future__ import annotations

from pydantic import BaseModel

from solver.config.case import Case
from solver.config.errors import first_model

def bounds(field) -> str:
    """``; 1e-08 <= x <= 0.001`` for a field with numeric bounds (also on list items)."""
    lo = hi = None
    metas = list(field.metadata)
    for arg in getattr(field.annotation, "__args__", ()) or ():  # list[Annotated[float, Field(...)]]
        metas += list(getattr(arg, "__metadata__", ()) or ())
        for sub in getattr(arg, "__args__", ()) or ():
            metas += list(getattr(sub, "__metadata__", ()) or ())
    for m in metas:
        for name in ("ge", "gt"):
            if getattr(m, name, None) is not None:
                lo = f"{getattr(m, name):g} {'<=' if name == 'ge' else '<'} "
        for name in ("le", "lt"):
            if getattr(m, name, None) is not None:
                hi = f" {'<=' if name == 'le' else '<'} {getattr(m, name):g}"
        for sub in getattr(m, "metadata", ()) or ():  # FieldInfo inside Annotated
            for name in ("ge", "gt"):
                if getattr(sub, name, None) is not None:
                    lo = f"{getattr(sub, name):g} {'<=' if name == 'ge' else '<'} "
            for name in ("le", "lt"):
                if getattr(sub, name, None) is not None:
                    hi = f" {'<=' if name == 'le' else '<'} {getattr(sub, name):g}"
    if lo is None and hi is None:
        return ""
    return f"; {lo or ''}value{hi or ''}"


def schema_reference() -> str:
    """A plain-text reference of every case field (``ssbfrac schema``)."""
    out: list[str] = []

    def walk(model: type[BaseModel], prefix: str):
        for name, f in model.model_fields.items():
            path = f"{prefix}{name}"
            sub = first_model(f.annotation)
            if sub is not None and sub is not model:
                out.append(f"{path}: ({sub.__name__}) {(sub.__doc__ or '').strip().splitlines()[0] if sub.__doc__ else ''}")
                walk(sub, path + ".")
            else:
                default = "required" if f.is_required() else f"default {f.get_default(call_default_factory=True)!r}"
                out.append(f"{path}: {f.description or ''} ({default}{bounds(f)})")

    walk(Case, "")
    return "\n".join(out)
