"""Checkpoints of a sweep's runs: the interval passed to each run, from the time limit of
its Slurm task or the local setting."""

from __future__ import annotations

from solver.config import CaseError
from solver.hpc.spec import Sweep, format_value


def time_limit_seconds(text: str | None) -> float | None:
    """A Slurm time limit (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS) in seconds."""
    if not text:
        return None
    days, _, rest = text.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    if days:
        parts += [0] * (3 - len(parts))
        h, m, sec = parts
        return float(((int(days) * 24 + h) * 60 + m) * 60 + sec)
    if len(parts) == 1:
        return 60.0 * parts[0]
    if len(parts) == 2:
        return 60.0 * parts[0] + parts[1]
    return 3600.0 * parts[0] + 60.0 * parts[1] + parts[2]


def checkpoint_override(sweep: Sweep, seconds: float) -> list[str]:
    """``output.checkpoint_interval=<seconds>`` for the runs' command line, unless it is off
    (0) or the sweep (set, parameters) or its base case gives the interval itself."""
    key = "output.checkpoint_interval"
    if not seconds or seconds <= 0 or key in sweep.spec.set or key in sweep.spec.parameters:
        return []
    from solver.config import read_yaml

    try:
        output = read_yaml(sweep.base).get("output")
    except (CaseError, OSError):
        output = None
    if isinstance(output, dict) and "checkpoint_interval" in output:
        return []
    return [f"{key}={format_value(float(round(seconds)))}"]
