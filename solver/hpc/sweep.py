"""``ssbfrac sweep``: run a parameter sweep, on this machine or as a Slurm job array
(the sweep file: :mod:`solver.hpc.spec`; run states: :mod:`solver.hpc.status`; the
backends: :mod:`solver.hpc.local`, :mod:`solver.hpc.slurm`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import ValidationError

from solver.config import CaseError
from solver.hpc.local import run_local
from solver.hpc.spec import Sweep, SweepSpec, check_complete_runs, load_sweep, validate_runs
from solver.hpc.status import print_status, sweep_status
from solver.runs.rundir import RunError


# --------------------------------------------------------------------------- command line
def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n} must be at least 1")
    return n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "examples:\n"
        "  ssbfrac sweep cases/sweeps/quick.yaml --parallel 2\n"
        "  ssbfrac sweep cases/sweeps/se_stiffness.yaml --status\n"
        "  ssbfrac sweep cases/sweeps/se_stiffness.yaml --backend slurm --partition short --time 02:00:00 --dry-run\n"
        "\nSee README.md, 'HPC and sweeps', and docs/hpc.md."
    )
    parser.add_argument("sweep", help="sweep file (YAML)")
    parser.add_argument("--out", type=Path, help="sweep directory (default: output of the sweep file, else results/<name>)")
    add_launch_arguments(parser)


def add_launch_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``ssbfrac sweep`` that say where and how runs start (shared with ``ssbfrac study``)."""
    parser.add_argument("--backend", choices=["local", "slurm"], help="where to run (default: backend of the sweep file)")
    parser.add_argument("--parallel", type=_positive_int, metavar="N",
                        help="runs at the same time (local: local.parallel; slurm: slurm.max_parallel)")
    parser.add_argument("--ranks-per-run", type=_positive_int, metavar="M",
                        help="MPI ranks per run (local: local.ranks_per_run; slurm: slurm.ntasks_per_run)")
    parser.add_argument("--partition", help="Slurm partition (slurm.partition)")
    parser.add_argument("--time", help="Slurm time limit per run, e.g. 02:00:00 (slurm.time)")
    parser.add_argument("--account", help="Slurm account (slurm.account)")
    parser.add_argument("--mem", help="Slurm memory per run, e.g. 4G (slurm.mem)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print what would be run (local: the commands; slurm: the batch script and sbatch command)")
    parser.add_argument("--status", action="store_true", help="show done / running / failed / pending runs and exit")
    parser.add_argument("--rerun-failed", action="store_true", help="also rerun failed runs (done runs are always kept)")
    parser.add_argument("--wait", action="store_true", help="slurm: wait until the job array has finished (local always waits)")
    parser.add_argument("--poll", type=float, default=10.0, metavar="SECONDS", help="slurm --wait: seconds between queue checks")


def apply_command_line(spec: SweepSpec, args) -> None:
    """Backend settings given on the command line replace those of the sweep file."""
    if args.backend:
        spec.backend = args.backend
    if spec.backend == "local":
        for option in ("partition", "time", "account", "mem"):
            if getattr(args, option) is not None:
                raise CaseError(f"command line: --{option} is a Slurm setting; add --backend slurm")
        updates = [("parallel", spec.local, "parallel"), ("ranks_per_run", spec.local, "ranks_per_run")]
    else:
        updates = [("parallel", spec.slurm, "max_parallel"), ("ranks_per_run", spec.slurm, "ntasks_per_run"),
                   ("partition", spec.slurm, "partition"), ("time", spec.slurm, "time"),
                   ("account", spec.slurm, "account"), ("mem", spec.slurm, "mem")]
    for option, model, field in updates:
        value = getattr(args, option)
        if value is None:
            continue
        try:
            setattr(model, field, value)
        except ValidationError as err:
            msg = err.errors()[0]["msg"].removeprefix("Value error, ")
            raise CaseError(f"command line: --{option.replace('_', '-')} = {value!r}: {msg}") from None


def main(args, comm) -> int:

    if comm.size > 1:
        raise RunError("run `ssbfrac sweep` as a single process (not under mpiexec); "
                       "give the MPI ranks of each run with --ranks-per-run")
    sweep = load_sweep(args.sweep, args.out)
    apply_command_line(sweep.spec, args)
    if args.status:
        statuses = sweep_status(sweep)
        print_status(sweep, statuses)
        return 1 if any(st.state == "failed" for st in statuses) else 0
    cases = validate_runs(sweep)
    check_complete_runs(sweep, cases)
    return launch(sweep, args)


def launch(sweep: Sweep, args) -> int:
    """Start the runs of a checked sweep (validate_runs, check_complete_runs) that are not
    done, with the backend options of ``args`` (see add_launch_arguments)."""
    statuses = sweep_status(sweep)
    if sweep.spec.backend == "slurm":
        from solver.hpc.slurm import run_slurm

        return run_slurm(sweep, statuses, args.rerun_failed, args.dry_run, args.wait, args.poll)
    return run_local(sweep, statuses, args.rerun_failed, args.dry_run)
