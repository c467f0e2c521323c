"""Run a model study: several sweeps, then their post-processing, from one command.

A study file (YAML) lists sweep files (relative to the study file)::

    name: bucci2017
    description: free text
    sweeps: [stiffness.yaml, fracture_map.yaml]
    output: results/bucci2017        # optional; default results/<name>

``ssbfrac study FILE`` checks every sweep and every run's case first (nothing starts if one
is wrong), runs the sweeps one after the other in ``<output>/<sweep name>/`` (each with the
usual resume: done runs are kept), then runs ``ssbfrac post`` on each sweep directory and
writes ``<output>/study.csv``: per sweep, the runs done / failed / not finished and the
CPU time of the done runs (wall time x MPI ranks), with the study total in the last row.

With the Slurm backend the sweeps are submitted as job arrays (``--wait`` waits for them);
``ssbfrac study FILE --post-only`` post-processes whatever has finished.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from pydantic import Field, ValidationError

from solver.config import NAME_PATTERN, CaseError
from solver.config import format_validation_error
from solver.hpc.spec import SweepSchema


class StudySpec(SweepSchema):
    """A study file."""

    name: str = Field(..., pattern=NAME_PATTERN, description="study name (a plain file name: letters, digits, '_', '.', '+', '-')")
    description: str = Field("", description="free text")
    sweeps: list[str] = Field(..., min_length=1, description="sweep files, relative to the study file")
    output: str | None = Field(None, description="study directory (default results/<name>), relative to the current directory")


def load_study(path: str | Path, out: str | Path | None = None):
    """(spec, study directory, [Sweep]) of a study file; CaseError naming the file otherwise."""
    from solver.config import read_yaml
    from solver.hpc.spec import load_sweep

    path = Path(path)
    try:
        spec = StudySpec.model_validate(read_yaml(path, kind="study", sections="(name, sweeps, ...)"))
    except ValidationError as err:
        raise CaseError(format_validation_error(err, str(path), StudySpec)) from None
    out = Path(out) if out is not None else Path(spec.output) if spec.output else Path("results") / spec.name
    out = Path(os.path.abspath(out))
    sweeps, names = [], {}
    for i, entry in enumerate(spec.sweeps):
        file = Path(entry) if Path(entry).is_absolute() else path.parent / entry
        if not file.is_file():
            raise CaseError(f"{path}: sweeps[{i}] = {entry!r}: sweep file not found ({file})")
        sweep = load_sweep(file)
        if sweep.spec.name in names:
            raise CaseError(f"{path}: sweeps[{i}] = {entry!r}: a second sweep named {sweep.spec.name!r} "
                            f"(also {names[sweep.spec.name]!r}); sweep names must differ")
        names[sweep.spec.name] = entry
        sweeps.append(dataclasses.replace(sweep, out=out / sweep.spec.name))
    return spec, out, sweeps


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from solver.hpc.sweep import add_launch_arguments

    parser.epilog = (
        "examples:\n"
        "  ssbfrac study cases/studies/bucci2017/study.yaml --parallel 2\n"
        "  ssbfrac study cases/studies/bucci2017/study.yaml --status\n"
        "  ssbfrac study cases/studies/bucci2017/study.yaml --backend slurm --time 00:30:00 --wait\n"
        "\nSee README.md, 'Model study: Bucci et al. (2017)', and docs/bucci2017.md."
    )
    parser.add_argument("study", help="study file (YAML)")
    parser.add_argument("--out", type=Path, help="study directory (default: output of the study file, else results/<name>)")
    parser.add_argument("--post-only", action="store_true", help="start nothing: post-process the sweeps as they are")
    add_launch_arguments(parser)


def main(args, comm) -> int:
    from solver.runs.rundir import RunError, make_marked_directory
    from solver.hpc.spec import check_complete_runs, validate_runs
    from solver.hpc.status import print_status, sweep_status
    from solver.hpc.sweep import apply_command_line, launch

    if comm.size > 1:
        raise RunError("run `ssbfrac study` as a single process (not under mpiexec); "
                       "give the MPI ranks of each run with --ranks-per-run")
    spec, out, sweeps = load_study(args.study, args.out)
    for sweep in sweeps:
        apply_command_line(sweep.spec, args)
    if args.status:
        failed = False
        for sweep in sweeps:
            statuses = sweep_status(sweep)
            print_status(sweep, statuses)
            failed |= any(st.state == "failed" for st in statuses)
        return 1 if failed else 0
    status = 0
    if not args.post_only:
        for sweep in sweeps:  # every case is checked before anything starts
            check_complete_runs(sweep, validate_runs(sweep))
        n = sum(len(s.runs) for s in sweeps)
        if not args.dry_run:
            make_marked_directory(out, "study")
        print(f"study {spec.name}: {len(sweeps)} sweeps, {n} runs -> {out}", flush=True)
        for sweep in sweeps:
            rc = launch(sweep, args)
            if rc == 130:
                return rc
            status = max(status, rc)
        if args.dry_run:
            return 0
        if any(s.spec.backend == "slurm" for s in sweeps) and not args.wait:
            print(f"study {spec.name}: submitted; when the job arrays have finished: "
                  f"ssbfrac study {args.study} --post-only" + (f" --out {args.out}" if args.out else ""))
            return status
    from postprocess.study import post_study

    table = post_study(out, [s.out for s in sweeps])
    print(f"study {spec.name}: {table['total']['done']} runs done, {table['total']['failed']} failed, "
          f"{table['total']['unfinished']} not finished; CPU time of the done runs "
          f"{table['total']['cpu_time_s'] / 3600:.2f} h -> {table['path']}")
    return status


__all__ = ["StudySpec", "load_study", "add_arguments", "main"]
