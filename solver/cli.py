"""The ``ssbfrac`` command (also ``python -m solver``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """\
examples:
  ssbfrac run cases/bucci2017.yaml
  ssbfrac run cases/bucci2017.yaml --out results/stiff --set materials.electrolyte.E=150e9
  mpiexec -n 2 ssbfrac run cases/bucci2017.yaml --out results/np2
  ssbfrac run cases/bucci2017.yaml --out results/np2 --restart   (continue from its checkpoint)
  ssbfrac mesh cases/bucci2017.yaml --out results/mesh --preview
  ssbfrac check cases/bucci2017.yaml --set geometry.particles.volume_fraction=0.5
  ssbfrac schema            (every case field, its unit and default)

Case values are SI units (m, Pa, J/m^2, s); see README.md, "Case files".
"""


def _add_case_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("case", help="case file (YAML)")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
        help="override a case field, e.g. --set materials.electrolyte.E=150e9 (repeatable; the value is YAML)",
    )
    p.add_argument("--allow-large", action="store_true",
                   help="run a case larger than its limits (particles, cells, DOFs, memory; see 'ssbfrac check')")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ssbfrac",
        description="Chemo-mechanical fracture of all-solid-state battery composite cathodes (DOLFINx).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from solver import __version__

    parser.add_argument("--version", action="version", version=f"ssbfrac {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "run", help="run a case (mesh, solve, write fields/history/summary)",
        description=(
            "Run a case into a run directory: case.yaml (resolved, SI), mesh.msh + mesh.json, "
            "fields.xdmf/.h5 (ParaView), history.csv (one row per step) and summary.json, written last "
            "as the completion marker. Runs under MPI: mpiexec -n N ssbfrac run CASE. On SIGTERM or SIGUSR1 "
            "the run writes checkpoint.h5 after its present step and exits with status 85; --restart continues it."
        ),
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_case_args(p)
    p.add_argument("--out", type=Path, help="run directory (default: results/<case name>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.add_argument("--restart", action="store_true",
                   help="continue the run in --out from its checkpoint.h5 (same case and --set options; "
                        "any number of MPI ranks)")
    p.add_argument("--progress", choices=["auto", "bar", "lines", "none"],
                   help="progress display (default: output.progress of the case, 'auto')")

    p = sub.add_parser("mesh", help="only build the microstructure mesh (mesh.msh, mesh.json)",
                       description="Pack the particles and mesh the microstructure with Gmsh; writes mesh.msh and mesh.json.")
    _add_case_args(p)
    p.add_argument("--out", type=Path, help="output directory (default: results/<case name>-mesh)")
    p.add_argument("--preview", action="store_true", help="also write preview.png (matplotlib) of the microstructure")
    p.add_argument("--convert", action="append", default=[], metavar="FORMAT",
                   help="also write the mesh in another format with meshio, e.g. vtu, xdmf, vtk, med, inp (repeatable)")
    p.add_argument("--verbose", action="store_true", help="show Gmsh's own messages")

    p = sub.add_parser("check", help="validate a case (and its packing) without running it")
    _add_case_args(p)

    sub.add_parser("schema", help="print every case field with its unit and default")

    # Sub-commands implemented in their own modules: each module provides
    # add_arguments(parser) and main(args, comm) -> int.
    for name, module, help_ in PLUGINS:
        mod = _plugin(module)
        if mod is None:
            continue
        p = sub.add_parser(name, help=help_, description=(mod.__doc__ or help_).strip().splitlines()[0],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
    return parser


#: (command, module, help) of sub-commands that live outside this file
PLUGINS = [
    ("sweep", "solver.hpc.sweep", "run a parameter sweep (local process pool or a Slurm job array)"),
    ("study", "solver.hpc.study", "run the sweeps of a model study, then post-process them"),
    ("materials", "solver.materials.cli", "the named material sets: values, ranges, methods, sources"),
    ("post", "postprocess.cli", "plots, stage detection and reports for a run or a sweep directory"),
    ("paraview", "postprocess.paraview_cli", "ParaView screenshots and a state file for a run (pvbatch)"),
]


def _plugin(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    import solver  # noqa: F401  (DOLFINx wheel import order)
    from mpi4py import MPI

    from solver.config.streams import BrokenPipe, quiet_broken_pipe

    quiet_broken_pipe()

    from solver.runs.checkpoint import EXIT_CHECKPOINTED
    from solver.config import CaseError
    from solver.runs.runner import RunCheckpointed, RunError

    comm = MPI.COMM_WORLD
    try:
        return _dispatch(args, comm)
    except RunCheckpointed as exc:
        if comm.rank == 0:
            print(str(exc), file=sys.stderr, flush=True)
        return EXIT_CHECKPOINTED
    except (CaseError, RunError) as exc:
        if comm.rank == 0:
            print(f"ssbfrac: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipe.errors:
        return BrokenPipe.exit()
    except Exception as exc:
        from solver.numerics.stepping import StepFailure

        if comm.rank == 0:
            kind = "solver failure" if isinstance(exc, StepFailure) else type(exc).__name__
            print(f"ssbfrac: {kind}: {exc}", file=sys.stderr, flush=True)
        if not isinstance(exc, StepFailure):
            import traceback

            traceback.print_exc()
        return 1


def _dispatch(args, comm) -> int:
    if args.command == "schema":
        from solver.config import schema_reference

        if comm.rank == 0:
            print(schema_reference())
        return 0
    if args.command == "check":
        from solver.config.estimate import report
        from solver.runs.runner import prepare_case

        case, _, packing = prepare_case(args.case, args.overrides, comm, args.allow_large)
        if comm.rank == 0:
            print(f"{args.case}: valid case '{case.name}'; {len(packing.particles)} particles, "
                  f"fraction {packing.fraction:.4f} (radius x {packing.radius_scale:.4f})")
            print(report(case, args.allow_large))
        return 0
    if args.command == "mesh":
        from meshes.preview import write_preview
        from solver.runs.mesh import build_mesh
        from solver.runs.rundir import RunError, make_marked_directory
        from solver.runs.runner import prepare_case

        if args.convert:
            from meshes.io import MicrostructureFileError, check_formats
            from solver.config import CaseError

            try:
                check_formats(args.convert)
            except MicrostructureFileError as exc:
                raise CaseError(f"--convert: {exc}") from None
        case, internal, packing = prepare_case(args.case, args.overrides, comm, args.allow_large)
        out = args.out or Path("results") / f"{case.name}-mesh"
        err = None
        if comm.rank == 0:
            try:
                make_marked_directory(out, "mesh")
            except RunError as exc:
                err = str(exc)
        err = comm.bcast(err, root=0)
        if err:
            raise RunError(err)
        bundle = build_mesh(internal, comm, out_dir=out, packing=packing, verbose=args.verbose)
        if comm.rank == 0:
            msg = f"{bundle.info['mesh']['cells_global']} cells -> {out / 'mesh.msh'}, {out / 'mesh.json'}"
            if args.preview:
                png = write_preview(bundle.info, out / "preview.png", title=case.name)
                msg += f", {png}"
            if args.convert:
                from meshes.io import convert_mesh

                msg += "".join(f", {f}" for f in convert_mesh(out / "mesh.msh", args.convert))
            print(msg)
        return 0
    if args.command == "run":
        from solver.runs.runner import run_case

        run_case(args.case, args.out, args.overrides, args.overwrite, args.progress, comm, restart=args.restart,
                 allow_large=args.allow_large)
        return 0
    for name, module, _ in PLUGINS:
        if args.command == name:
            return int(_plugin(module).main(args, comm) or 0)
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
