"""The Python interface of ssbfrac, for notebooks and scripts (the ``ssbfrac`` command is a
thin layer over the same functions)::

    import solver

    case = solver.Case.from_yaml("cases/bucci2017.yaml")
    stiff = case.with_overrides({"materials.electrolyte.E": 150e9})   # the paths of --set
    result = solver.run(stiff, out="results/stiff", progress="none")
    result.history["crack_length"]     # numpy arrays by column (accepted steps)
    result.summary["final"]            # summary.json as a dict
    result.fields(-1)["damage"]        # the last field output, numpy arrays
    result.plot()                      # plots/ and report.md, as ``ssbfrac post``

    sweep = solver.sweep("cases/sweeps/quick.yaml", parallel=2)
    sweep.table                        # one row per run (summary.csv), sweep.runs: results

Under MPI (``mpiexec -n N python script.py``) :func:`run` is collective; :func:`sweep`
starts its runs as separate processes and must be called from one process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mpi4py import MPI

from solver.config import Case


@dataclass
class RunResult:
    """The outputs of a run directory (complete, or still going: what is written so far)."""

    path: Path

    @property
    def complete(self) -> bool:
        return (self.path / "summary.json").is_file()

    @property
    def summary(self) -> dict:
        """summary.json (only for a complete run)."""
        path = self.path / "summary.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the run is not complete (no summary.json)")
        return json.loads(path.read_text())

    @property
    def history(self) -> dict[str, np.ndarray]:
        """history.csv, accepted steps only, as numpy arrays by column."""
        h = self.history_all
        keep = h["accepted"] == 1
        return {k: v[keep] for k, v in h.items()}

    @property
    def history_all(self) -> dict[str, np.ndarray]:
        """history.csv with the rejected steps too (``accepted`` = 0)."""
        from solver.runs.writers import read_history

        return read_history(self.path / "history.csv")

    @property
    def output_times(self) -> list[float]:
        """The times (s) of the field outputs."""
        from postprocess.fields import read_field_file

        return read_field_file(self.path / "fields.h5").times

    def fields(self, output: int = -1) -> dict[str, np.ndarray]:
        """Every scalar field of one field output (index into :attr:`output_times`,
        negative from the end) as numpy arrays, with ``points`` (um), ``cells`` (node
        indices) and ``time`` (s). Point fields have one value per point, cell fields one
        per cell; the displacement has one row of gdim components per point."""
        import h5py

        from postprocess.fields import read_field_file

        ff = read_field_file(self.path / "fields.h5")
        time = ff.times[output]
        out: dict[str, np.ndarray] = {"points": ff.points, "cells": ff.cells, "time": np.asarray(time)}
        with h5py.File(ff.path, "r", locking=False) as h5:
            for name, keys in ff.keys.items():
                if time in keys:
                    data = np.asarray(h5[f"Function/{name}/{keys[time]}"][...], dtype=float)
                    if data.ndim == 2 and data.shape[1] == 1:
                        data = data[:, 0]
                    elif data.ndim == 2 and data.shape[1] == 3 and ff.gdim == 2:
                        data = data[:, :2]  # XDMF pads 2D vectors with a zero third component
                    out[name] = data
        return out

    def plot(self, steps: list[str] | None = None, abscissa: str = "vol_strain") -> dict:
        """The plots and report.md of ``ssbfrac post`` (in ``plots/``); returns their paths."""
        from postprocess.report import post_run

        return post_run(self.path, steps=steps, abscissa=abscissa)


@dataclass
class SweepResult:
    """A sweep directory: its runs and the table of ``ssbfrac post`` (summary.csv)."""

    path: Path
    runs: dict[str, RunResult]
    status: int  # 0 when every run is done

    @property
    def table(self) -> list[dict]:
        """One row per run: the varied parameters, status, stages, final values."""
        from postprocess.sweep import post_sweep

        return post_sweep(self.path, formats=("png",))["rows"]


def run(case: Case, out: str | Path | None = None, overwrite: bool = False, restart: bool = False,
        progress: str | None = "none", comm: MPI.Comm = MPI.COMM_WORLD) -> RunResult:
    """Run a case (see :class:`solver.config.Case`) into ``out`` (default
    ``results/<name>``) and return its :class:`RunResult`. ``progress``: auto, bar, lines
    or none. Raises RunError, CaseError or RunCheckpointed like ``ssbfrac run``."""
    from solver.runs.runner import run as run_case

    return RunResult(run_case(case, out, overwrite=overwrite, restart=restart, progress=progress, comm=comm))


def sweep(path: str | Path, out: str | Path | None = None, parallel: int | None = None,
          ranks_per_run: int | None = None, backend: str | None = None, rerun_failed: bool = False,
          wait: bool = True) -> SweepResult:
    """Run (or resume) the sweep of a sweep file, as ``ssbfrac sweep`` does, and return its
    :class:`SweepResult`. ``parallel``, ``ranks_per_run`` and ``backend`` override the
    sweep file's settings; with the Slurm backend ``wait`` waits for the job array."""
    from argparse import Namespace

    from solver.hpc.spec import check_complete_runs, load_sweep, validate_runs
    from solver.hpc.sweep import apply_command_line, launch

    s = load_sweep(path, out)
    args = Namespace(backend=backend, parallel=parallel, ranks_per_run=ranks_per_run, partition=None, time=None,
                     account=None, mem=None, rerun_failed=rerun_failed, dry_run=False, wait=wait, poll=30.0)
    apply_command_line(s.spec, args)
    check_complete_runs(s, validate_runs(s))
    status = launch(s, args)
    return SweepResult(s.out, {r.name: RunResult(s.out / r.name) for r in s.runs}, status)
