"""Plots, crack-growth stages and a report for a run directory, or a summary of a sweep directory.

    ssbfrac post RUN_DIR   [--steps -1 | K ... | all | none] [--abscissa vol_strain|soc|x] [--out DIR]
    ssbfrac post SWEEP_DIR [--x materials.electrolyte.E] [--seed-param geometry.particles.seed] [--each]

RUN_DIR (a directory with case.yaml and history.csv): writes RUN_DIR/plots/ with crack
length against state of charge and against particle volumetric strain (stages shaded),
energies, electrolyte tension and solver effort against the load, voltage against
capacity when the history has them, pictures of the damage and stress fields at the
chosen field outputs, and report.md.

SWEEP_DIR (a directory of run directories): writes SWEEP_DIR/summary.csv (one row per
run) and SWEEP_DIR/plots/ (trends against a varied parameter, every crack curve).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from postprocess.history import PostprocessError


def add_arguments(parser) -> None:
    parser.add_argument("directory", type=Path, help="a run directory, or a sweep directory of run directories")
    parser.add_argument("--steps", nargs="+", default=["-1"], metavar="K",
                        help="run: field outputs to draw (indices, negative from the end), 'all' or 'none' "
                             "(default: -1, the last)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="run: output directory (default: RUN_DIR/plots)")
    parser.add_argument("--abscissa", default="vol_strain", choices=["vol_strain", "soc", "x", "load", "time"],
                        help="run: x axis of the energy and stress plots (default: vol_strain)")
    parser.add_argument("--formats", nargs="+", default=["png", "pdf"], choices=["png", "pdf", "svg"],
                        help="figure formats (default: png pdf)")
    parser.add_argument("--x", dest="x_param", metavar="PARAM",
                        help="sweep: parameter (dotted case path) on the x axis of the trends "
                             "(default: materials.electrolyte.E if varied)")
    parser.add_argument("--seed-param", default="geometry.particles.seed", metavar="PARAM",
                        help="sweep: parameter averaged over in the trends (default: geometry.particles.seed)")
    parser.add_argument("--each", action="store_true", help="sweep: also post-process every run directory")
    parser.add_argument("--min-crack", type=float, metavar="LENGTH",
                        help="stage detection: smallest crack growth that counts as cracking, um (default 0.01)")
    parser.add_argument("--onset-fraction", type=float, metavar="F",
                        help="stage detection: onset threshold as a fraction of the crack growth (default 0.02)")


def stage_options(args) -> dict:
    options = {}
    if args.min_crack is not None:
        options["min_crack"] = args.min_crack
    if args.onset_fraction is not None:
        options["onset_fraction"] = args.onset_fraction
    return options


def kind_of(directory: Path) -> str:
    """'run' (has case.yaml), 'sweep' (run directories below it); else a PostprocessError."""
    from postprocess.sweep import find_runs

    if not directory.is_dir():
        raise PostprocessError(f"{directory}: no such directory")
    if (directory / "case.yaml").is_file():
        return "run"
    if find_runs(directory) or (directory / "runs.json").is_file():
        return "sweep"
    raise PostprocessError(f"{directory}: neither a run directory (no case.yaml) nor a sweep directory "
                           f"(no run directories with a case.yaml below it)")


def post_one_run(directory: Path, args) -> None:
    from postprocess.report import post_run

    result = post_run(directory, out_dir=getattr(args, "out", None), steps=args.steps, abscissa=args.abscissa,
                      formats=tuple(args.formats), stage_options=stage_options(args))
    print(f"ssbfrac post: {len(result['figures'])} figure(s) and {result['report']}")
    for name, reason in result["skipped"].items():
        print(f"  not drawn: {name}: {reason}")


def post_sweep_dir(directory: Path, args) -> None:
    from postprocess.sweep import post_sweep

    result = post_sweep(directory, x_param=args.x_param, seed_param=args.seed_param,
                        formats=tuple(args.formats), stage_options=stage_options(args))
    counts = {}
    for row in result["rows"]:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    print(f"ssbfrac post: {len(result['rows'])} runs ("
          + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + f") -> {result['summary']}")
    print(f"  varied parameters (from {result['source']}): {', '.join(result['parameters']) or 'none'}")
    for name, paths in result["figures"].items():
        print(f"  {name}: {', '.join(str(p) for p in paths)}")
    for name, reason in result["skipped"].items():
        print(f"  not drawn: {name}: {reason}")
    if args.each:
        for run_dir in result["run_dirs"]:
            if not (run_dir / "history.csv").is_file():
                print(f"  {run_dir}: no history.csv, skipped")
                continue
            try:
                post_one_run(run_dir, argparse.Namespace(**{**vars(args), "out": None}))
            except PostprocessError as exc:
                print(f"  {run_dir}: {exc}", file=sys.stderr)


def main(args, comm) -> int:
    status = 0
    if comm.rank == 0:
        try:
            if kind_of(args.directory) == "run":
                post_one_run(args.directory, args)
            else:
                post_sweep_dir(args.directory, args)
        except PostprocessError as exc:
            print(f"ssbfrac: error: {exc}", file=sys.stderr, flush=True)
            status = 2
    return comm.bcast(status, root=0)
