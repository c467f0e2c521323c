"""The plain-text reference of every case field (``ssbfrac schema``)."""

from __future__ import annotations

from pydantic import BaseModel

from solver.config.case import Case
from solver.config.errors import first_model

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
                out.append(f"{path}: {f.description or ''} ({default})")

    walk(Case, "")
    return "\n".join(out)
