"""ssbfrac: chemo-mechanical fracture of all-solid-state battery composite cathodes.

Python interface (:mod:`solver.api`)::

    import solver
    case = solver.Case.from_yaml("cases/bucci2017.yaml").with_overrides({"materials.electrolyte.E": 150e9})
    result = solver.run(case, out="results/stiff")
    result.history["crack_length"], result.summary, result.fields(-1), result.plot()
    solver.sweep("cases/sweeps/quick.yaml", parallel=2).table

Importing this package makes sure that, in the pip environment, the binary DOLFINx
wheel (``dolfinx_solver``) is imported before ``dolfinx`` or ``petsc4py``: it orders
MPI ahead of the compiled bindings. Under conda-forge DOLFINx the module does not
exist and nothing needs doing. The interface itself is imported on first use.
"""

try:  # pip route: the wheel must come first
    import dolfinx_solver  # noqa: F401
except ImportError:  # conda-forge route
    pass


def _petsc_without_signal_handler() -> None:
    """Ask PETSc (initialised later, by petsc4py) not to install its signal handler:
    ``-no_signal_handler`` in PETSC_OPTIONS, which this process's MPI ranks and
    subprocesses inherit. PETSc's handler catches SIGTERM, SIGSEGV, SIGFPE, SIGBUS, ...
    and calls MPI_Abort: a SIGTERM to a run before its own stop handler is in place, or
    to ``ssbfrac sweep``, would abort the process instead of stopping it (and its runs)
    cleanly, and a crash would leave no Python stack (faulthandler, see
    solver.runs.rundir). Python's own handling (SIGPIPE ignored, SIGINT as
    KeyboardInterrupt) stays."""
    import os
    import sys

    if "petsc4py.PETSc" in sys.modules:  # too late once PETSc is initialised
        return
    options = os.environ.get("PETSC_OPTIONS", "")
    if "-no_signal_handler" not in options.split():
        os.environ["PETSC_OPTIONS"] = f"{options} -no_signal_handler".strip()


_petsc_without_signal_handler()

__version__ = "0.1.0"

#: name -> module of the public interface, imported on first use
_API = {
    "Case": "solver.config", "CaseError": "solver.config", "load_case": "solver.config",
    "run": "solver.api", "sweep": "solver.api", "RunResult": "solver.api", "SweepResult": "solver.api",
    "RunError": "solver.runs.rundir", "RunCheckpointed": "solver.runs.rundir",
}

__all__ = list(_API) + ["__version__"]


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'solver' has no attribute {name!r}")
