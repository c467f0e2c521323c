"""Reading a run directory for post-processing: history.csv, case.yaml, summary.json.

Every reader names the file in its error message when the file is missing or malformed
(:class:`PostprocessError`, shown by ``ssbfrac post`` as ``ssbfrac: error: <file>: ...``).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

#: the file whose presence marks a complete run (written last by ``ssbfrac run``)
COMPLETION_MARKER = "summary.json"
#: history columns that hold text (the protocol segment's mode of a cycling run)
TEXT_COLUMNS = ("mode",)


class PostprocessError(Exception):
    """An input of the post-processing is missing or malformed (message for the user)."""


def read_history(path: str | Path) -> dict[str, np.ndarray]:
    """Read a history.csv into one float array per column (empty cells are NaN), except
    the text columns of :data:`TEXT_COLUMNS` (string arrays).

    The header line names the columns (documented in ``solver/runs/writers.py``,
    ``HISTORY_UNITS``). A last line with fewer values than columns is ignored: it is
    what a run killed while writing a row leaves behind. Any other malformed line is
    an error that names the file and the line.
    """
    path = Path(path)
    if not path.is_file():
        raise PostprocessError(f"{path}: history file not found")
    with open(path, newline="") as fh:
        lines = list(csv.reader(fh))
    if not lines or not lines[0]:
        raise PostprocessError(f"{path}: empty file, expected a header line of column names")
    columns = [c.strip() for c in lines[0]]
    if len(set(columns)) != len(columns):
        raise PostprocessError(f"{path}: repeated column names in the header: {columns}")
    rows = lines[1:]
    while rows and not any(v.strip() for v in rows[-1]):
        rows.pop()
    if rows and len(rows[-1]) < len(columns):
        rows.pop()  # interrupted while writing the last row
    values = {c: [] for c in columns}
    for lineno, row in enumerate(rows, start=2):
        if not any(v.strip() for v in row):
            continue
        if len(row) != len(columns):
            raise PostprocessError(f"{path}: line {lineno}: {len(row)} values for {len(columns)} columns")
        for name, text in zip(columns, row):
            text = text.strip()
            if name in TEXT_COLUMNS:
                values[name].append(text)
                continue
            if text == "":
                values[name].append(math.nan)
                continue
            try:
                values[name].append(float(text))
            except ValueError:
                raise PostprocessError(f"{path}: line {lineno}: column {name}: {text!r} is not a number") from None
    return {name: np.array(v, dtype=str if name in TEXT_COLUMNS else float) for name, v in values.items()}


def accepted_rows(history: dict[str, np.ndarray], path: str | Path) -> dict[str, np.ndarray]:
    """The rows of accepted steps (``accepted == 1``); rejected (cut) steps are dropped."""
    if "accepted" not in history:
        raise PostprocessError(f"{path}: no 'accepted' column; columns are {sorted(history)}")
    keep = history["accepted"] == 1
    return {name: col[keep] for name, col in history.items()}


def read_accepted_history(path: str | Path) -> dict[str, np.ndarray]:
    """:func:`read_history` followed by :func:`accepted_rows`."""
    return accepted_rows(read_history(path), path)


def read_summary(run_dir: str | Path) -> dict | None:
    """summary.json of a run directory, or None when the run is not complete."""
    path = Path(run_dir) / COMPLETION_MARKER
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PostprocessError(f"{path}: malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PostprocessError(f"{path}: expected a JSON object at the top level")
    return data


def read_case(run_dir: str | Path) -> dict:
    """The resolved case (case.yaml, SI units) of a run directory, as plain data."""
    from solver.config import yaml_load

    path = Path(run_dir) / "case.yaml"
    if not path.is_file():
        raise PostprocessError(f"{path}: not found: {run_dir} is not an ssbfrac run directory")
    try:
        data = yaml_load(path.read_text())
    except Exception as exc:  # yaml.YAMLError and its relatives
        raise PostprocessError(f"{path}: malformed YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PostprocessError(f"{path}: the top level must be a mapping of sections")
    return data


def run_status(run_dir: str | Path) -> str:
    """'complete' (summary.json), 'checkpointed' (stopped on request with a checkpoint:
    ``ssbfrac run ... --restart`` continues it), 'failed' (error.txt) or 'incomplete'
    (running or killed)."""
    run_dir = Path(run_dir)
    if (run_dir / COMPLETION_MARKER).exists():
        return "complete"
    if (run_dir / "stopped.json").exists() and (run_dir / "checkpoint.h5").exists():
        return "checkpointed"
    if (run_dir / "error.txt").exists():
        return "failed"
    return "incomplete"


def error_message(run_dir: str | Path) -> str:
    """First line of error.txt of a failed run ('' if there is none)."""
    path = Path(run_dir) / "error.txt"
    if not path.exists():
        return ""
    text = path.read_text(errors="replace").strip()
    return text.splitlines()[0] if text else ""


def get_path(data: dict, dotted: str, default=None):
    """``data['a']['b']['c']`` for ``dotted = 'a.b.c'`` (list items by integer index)."""
    node = data
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return default
    return node


def flatten(data, prefix: str = "") -> dict:
    """Nested mappings as ``{'a.b.c': value}``; lists are kept as values."""
    out = {}
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict) and value:
                out.update(flatten(value, path + "."))
            else:
                out[path] = value
    return out
