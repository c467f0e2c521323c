"""Restart of a run from its checkpoint: what must match, the stop record, and cutting
the outputs (history.csv, profiles.csv, the field series) back to the checkpointed step.

The checkpoint file itself is :mod:`solver.runs.checkpoint`; the run loop that writes and
reads it is :mod:`solver.runs.runner`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import signal
import time
from pathlib import Path

import yaml
from mpi4py import MPI

from solver.config import Case, case_to_dict
from solver.runs.rundir import (CHECKPOINT_FILE, COMPLETION_MARKER, STOP_MARKER, RunCheckpointed, RunError,
                           run_state)


def restart_command(out: Path, allow_large: bool = False) -> str:
    """The command line that continues the run in ``out`` from its checkpoint, with the
    run's own resolved case (prefix it with ``mpiexec -n N`` or ``srun`` for several ranks)."""
    words = ["ssbfrac", "run", str(Path(out) / "case.yaml"), "--out", str(out), "--restart"]
    return shlex.join(words + (["--allow-large"] if allow_large else []))


def case_fingerprint(case: Case, mesh_info: dict) -> dict:
    """What a checkpoint must match to be continued: a hash of the resolved case without
    its output settings (and free-text description), and the global mesh size."""
    physics = _physical_case(case_to_dict(case))
    digest = hashlib.sha256(json.dumps(physics, sort_keys=True).encode()).hexdigest()[:20]
    return {"case": digest,
            "mesh": f"{mesh_info['cells_global']} cells, {mesh_info['vertices_global']} vertices"}


def _physical_case(data: dict) -> dict:
    """A case as plain data without the fields that do not change the results."""
    return {k: v for k, v in data.items() if k not in ("output", "description", "limits")}


def _differences(a, b, prefix: str = "") -> list[str]:
    """Dotted paths where two plain-data cases differ, with both values."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            out += _differences(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [f"{prefix[:-1]}: run {a!r}, now {b!r}"]


def check_restart(out: Path, case: Case, comm: MPI.Comm) -> None:
    """Raise RunError unless ``out`` holds a run of ``case`` that can be continued: not
    complete, with a checkpoint, and the same case (output settings aside)."""
    err = None
    if comm.rank == 0:
        state = run_state(out)
        if state in ("missing", "empty", "not-a-directory"):
            err = f"{out}: no run to restart ({state.replace('-', ' ')}); start it without --restart"
        elif state == "running":
            err = f"{out}: the run is still going (another ssbfrac process holds the directory): nothing to restart"
        elif state == "complete":
            err = f"{out}: the run is already complete ({COMPLETION_MARKER}): nothing to restart"
        elif not (out / CHECKPOINT_FILE).is_file():
            err = (f"{out}: no {CHECKPOINT_FILE} to restart from (the run is {state} and wrote no checkpoint); "
                   f"start it again with --overwrite")
        else:
            try:
                stored = yaml.safe_load((out / "case.yaml").read_text())
            except (OSError, yaml.YAMLError) as exc:
                stored = None
                err = f"{out}: cannot read the case of the run (case.yaml: {exc})"
            if stored is not None:
                diff = _differences(_physical_case(stored), _physical_case(case_to_dict(case)))
                if diff:
                    more = f" (and {len(diff) - 5} more)" if len(diff) > 5 else ""
                    err = (f"{out}: cannot restart: the case differs from the one of the run in "
                           f"{'; '.join(diff[:5])}{more}. Give the same case file and --set options as the run, "
                           f"or its resolved case: ssbfrac run {out / 'case.yaml'} --out {out} --restart")
    err = comm.bcast(err, root=0)
    if err:
        raise RunError(err)


def record_stop(out: Path, case: Case, loop_state: dict, accepted: int, where: str, comm: MPI.Comm,
                allow_large: bool = False) -> RunCheckpointed:
    """Write stopped.json for a run that stopped on request after its checkpoint; returns
    the exception to raise. ``where``: the point reached (e.g. "t = 1200 s")."""
    from solver.runs.writers import write_json

    command = restart_command(out, allow_large)
    signum = loop_state.get("signal", -1)
    reason = signal.Signals(signum).name if signum > 0 else loop_state.get("reason") or "stop requested"
    info = {
        "status": "checkpointed",
        "reason": reason,
        "checkpoint": CHECKPOINT_FILE,
        "step": loop_state["step"],
        "accepted_steps": accepted,
        "where": where,
        "ranks": comm.size,
        "restart_command": command,
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_json(out / STOP_MARKER, info, comm)
    message = (f"[{case.name}] stopped ({reason}) after step {loop_state['step']} ({accepted} accepted, {where}); "
               f"checkpoint: {out / CHECKPOINT_FILE}. Continue with (any number of ranks): {command}")
    return RunCheckpointed(message, out, command)


def cut_back_outputs(out: Path, book: dict, cycling: bool, comm: MPI.Comm) -> None:
    """Before a restart (updates ``book``): cut history.csv, profiles.csv and the field
    series back to the checkpointed step (a run killed after its last checkpoint wrote
    more), or, when the field files cannot be continued, start a new series
    ``fields_restart<k>.xdmf`` (``book["field_files"]``)."""
    err, files, in_file = None, list(book["field_files"]), book["file_outputs"]
    if comm.rank == 0:
        try:
            _cut_csv(out / "history.csv", book["history_rows"])
            if cycling:
                _cut_profiles(out / "profiles.csv", book["accepted"])
            repaired = repair_series(out / files[-1], in_file, book.get("field_xml"))
            if repaired is not None:
                print(f"[restart] {out / files[-1]}: {repaired} (the run was stopped while writing it): "
                      f"put back as it was at the checkpoint", flush=True)
            why = cut_fields(out / files[-1], in_file)
            if why is not None:
                files.append(f"fields_restart{len(files)}.xdmf")
                in_file = 0
                print(f"[restart] {out / book['field_files'][-1]} cannot be continued ({why}): the time steps "
                      f"from here on go to {out / files[-1]}", flush=True)
        except (OSError, ValueError) as exc:
            err = f"{out}: cannot restart: the outputs of the run cannot be cut back to the checkpoint ({exc})"
    err, files, in_file = comm.bcast((err, files, in_file), root=0)
    if err:
        raise RunError(err)
    book["field_files"], book["file_outputs"] = files, in_file


def _replace_lines(path: Path, lines: list[str]) -> None:
    from solver.runs.writers import write_text_atomic

    write_text_atomic(path, "".join(lines))


def _cut_csv(path: Path, rows: int) -> None:
    """Keep the header and the first ``rows`` rows of a CSV file."""
    lines = path.read_text().splitlines(keepends=True)
    if len(lines) - 1 < rows:
        raise ValueError(f"{path.name} has {len(lines) - 1} rows, the checkpoint was written after row {rows}")
    if len(lines) - 1 > rows:
        _replace_lines(path, lines[: rows + 1])


def _cut_profiles(path: Path, accepted: int) -> None:
    """Keep the header and the blocks of profiles.csv written up to ``accepted`` accepted steps."""
    if not path.exists():
        raise ValueError(f"{path.name} is missing")
    lines = path.read_text().splitlines(keepends=True)
    keep = lines[:1] + [ln for ln in lines[1:] if int(ln.split(",", 1)[0]) <= accepted]
    if len(keep) < len(lines):
        _replace_lines(path, keep)


_XINCLUDE = "https://www.w3.org/2001/XInclude"


def _temporal_series(text: str, name: str, keep: int):
    """(XML tree, its temporal collections) of the XDMF ``text`` when every collection has
    at least ``keep`` time steps, else (None, why not)."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        return None, f"{name} does not parse: {exc}"
    domain = root.find("Domain")
    series = [g for g in (domain.findall("Grid") if domain is not None else [])
              if g.get("CollectionType") == "Temporal"]
    if not series:
        return None, f"{name} holds no time series"
    for collection in series:
        steps = len(collection.findall("Grid"))
        if steps < keep:
            return None, f"{steps} time steps of '{collection.get('Name')}', the checkpoint expects {keep}"
    return ET.ElementTree(root), series


def _write_tree(tree, path: Path) -> None:
    import xml.etree.ElementTree as ET

    ET.register_namespace("xi", _XINCLUDE)
    tmp = path.with_name(path.name + ".tmp")
    tree.write(tmp, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, path)


def repair_series(xdmf: Path, keep: int, saved: str | None) -> str | None:
    """Put back the XDMF text of a field series as it was at the checkpoint (``saved``)
    when the file on disk cannot continue it: DOLFINx rewrites the file at every output,
    and a run killed meanwhile leaves it cut short or empty. Returns what was wrong with
    the file (it is then replaced), or None (nothing done: the file is fine, or there is
    no usable saved text)."""
    if not saved or keep == 0:
        return None
    try:
        text = xdmf.read_text(errors="replace")
    except OSError as exc:
        text, why = None, f"{xdmf.name} cannot be read ({exc.strerror or exc})"
    if text is not None:
        tree, why = _temporal_series(text, xdmf.name, keep)
        if tree is not None:
            return None
    tree, _ = _temporal_series(saved, xdmf.name, keep)
    if tree is None:
        return None
    _write_tree(tree, xdmf)
    return why


def cut_fields(xdmf: Path, keep: int) -> str | None:
    """Cut an XDMF time series (DOLFINx layout: one temporal collection per function) back
    to its first ``keep`` time steps and delete the HDF5 datasets of the others. Returns
    None, or why the series cannot be continued (then nothing is changed)."""
    import h5py

    h5 = xdmf.with_suffix(".h5")
    if keep == 0:
        return "no time step in it yet"
    if not xdmf.is_file() or not h5.is_file():
        return f"{xdmf.name} or {h5.name} is missing"
    tree, series = _temporal_series(xdmf.read_text(errors="replace"), xdmf.name, keep)
    if tree is None:
        return series

    def datasets(grid) -> list[str]:
        return ["/" + item.text.strip().split(":/", 1)[1] for item in grid.iter("DataItem")
                if item.get("Format") == "HDF" and item.text and ":/" in item.text]

    kept, dropped = [], []
    for collection in series:
        steps = collection.findall("Grid")
        for g in steps[:keep]:
            kept += datasets(g)
        for g in steps[keep:]:
            dropped += datasets(g)
            collection.remove(g)
    try:
        with h5py.File(h5, "a") as f:
            missing = [p for p in kept if p not in f]
            if missing:
                return f"{h5.name} lacks {missing[0]}"
            for p in dropped:
                if p in f and p not in kept:
                    del f[p]
    except OSError as exc:
        return f"{h5.name} cannot be opened ({exc})"
    if dropped:
        _write_tree(tree, xdmf)
    return None
