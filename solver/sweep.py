"""Run a parameter sweep: many runs of one case, on this machine or as a Slurm job array.

A sweep file (YAML) names a base case, the case fields to vary (the same dotted paths as
``--set``) and how to combine them; every combination becomes one run of ``ssbfrac run``
in ``<output>/<run name>/``, named after its parameter values (``E_SE=1e9_seed=2``).

The sweep directory holds, besides the run directories:

* ``sweep.yaml``: the resolved sweep (parameter lists expanded, absolute paths);
* ``runs.json``: ``{run name: {"index", "parameters", "overrides"}}`` in launch order;
* ``logs/<run>.log``: everything the run printed (one attempt; a new attempt replaces it);
* ``logs/<run>.state``: ``running <host> <pid> [<slurm job>_<task>]`` while it runs,
  then ``exit <status>``; this records runs that fail before their directory exists
  (for example a case that validates but cannot be packed);
* ``slurm/``: the batch script, ``jobs.json`` (one entry per submission) and Slurm's own
  output (Slurm backend only).

A run is *done* when its directory is complete (``summary.json``), *failed* when its last
attempt exited with an error, *running* while its process or Slurm task is alive, and
*pending* otherwise (not started, queued, or interrupted). Launching a sweep again skips
done and running runs, reruns pending ones and, with ``--rerun-failed``, failed ones.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from solver.config import NAME_PATTERN, CaseError, apply_overrides, format_validation_error, validate_case, yaml_load

# --------------------------------------------------------------------------- sweep file schema

#: short names of common case paths in run directory names
ALIASES: dict[str, str] = {
    "materials.electrolyte.E": "E_SE",
    "materials.electrolyte.nu": "nu_SE",
    "materials.active.E": "E_AM",
    "materials.active.nu": "nu_AM",
    "materials.active.expansion": "expansion",
    "materials.electrolyte.fracture.Gc": "Gc_SE",
    "materials.electrolyte.fracture.K_Ic": "KIc_SE",
    "materials.electrolyte.fracture.ell": "ell_SE",
    "materials.electrolyte.fracture.strength": "strength_SE",
    "materials.active.fracture.Gc": "Gc_AM",
    "materials.active.fracture.K_Ic": "KIc_AM",
    "materials.active.fracture.ell": "ell_AM",
    "materials.active.fracture.strength": "strength_AM",
    "geometry.particles.seed": "seed",
    "geometry.particles.volume_fraction": "phi",
    "geometry.particles.radius": "radius",
    "geometry.particles.sides": "sides",
    "geometry.particles.shape": "shape",
    "geometry.particles.min_gap": "gap",
    "geometry.mesh.size": "h",
    "geometry.mesh.interface_size": "h_int",
    "mechanics.boundary.right.value": "p_stack",
    "loading.steps": "steps",
    "fracture.enabled": "fracture",
    "fracture.model": "model",
    "fracture.split": "split",
    "fracture.scheme.type": "scheme",
}

DOTTED_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.([A-Za-z_][A-Za-z0-9_]*|[0-9]+))*$")
#: a run directory name longer than this is shortened (and made unique by a hash)
MAX_NAME = 120


def _round_significant(x: float, digits: int) -> float:
    return float(f"{x:.{digits}g}")


def _range_values(kind: str, args: Any) -> list:
    """``range``: n linearly spaced values, ``logrange``: n log-spaced values, both from
    start to stop inclusive. A linear range of integers stays integer; log-spaced values are
    rounded to 3 significant digits (more where needed to keep them distinct)."""
    if not (isinstance(args, list) and len(args) == 3):
        raise ValueError(f"{kind} needs a list [start, stop, n]")
    start, stop, n = args
    for what, v in (("start", start), ("stop", stop)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{kind}: {what} = {v!r} is not a finite number")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{kind}: n = {n!r} must be an integer >= 1 (the number of values)")
    if n == 1:
        return [start]
    if kind == "range":
        if isinstance(start, int) and isinstance(stop, int) and (stop - start) % (n - 1) == 0:
            step = (stop - start) // (n - 1)
            return [start + i * step for i in range(n)]
        values = [start + i * (stop - start) / (n - 1) for i in range(n)]
        return [_round_significant(v, 12) for v in values]
    if start <= 0 or stop <= 0:
        raise ValueError(f"logrange: start and stop must be positive, got {start!r} and {stop!r}")
    a, b = math.log10(start), math.log10(stop)
    exact = [10.0 ** (a + i * (b - a) / (n - 1)) for i in range(n)]
    for digits in range(3, 16):
        values = [float(start)] + [_round_significant(v, digits) for v in exact[1:-1]] + [float(stop)]
        if len(set(values)) == n:
            return values
    raise ValueError(f"logrange: start and stop are equal: {n} values would all be {start!r}")


def _parameter_values(value: Any) -> list:
    if isinstance(value, list):
        if not value:
            raise ValueError("an empty list: give at least one value")
        return value
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("range", "logrange"):
        kind, args = next(iter(value.items()))
        return _range_values(kind, args)
    raise ValueError(
        "expected a list of values, {range: [start, stop, n]} or {logrange: [start, stop, n]} "
        "(a single fixed value goes under set:)"
    )


ParameterValues = Annotated[list[Any], BeforeValidator(_parameter_values)]


class SweepSchema(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LocalSettings(SweepSchema):
    """Local backend: a pool of ``ssbfrac run`` processes on this machine."""

    parallel: int = Field(1, ge=1, description="runs at the same time")
    ranks_per_run: int = Field(1, ge=1, description="MPI ranks of each run (mpiexec -n)")


class SlurmSettings(SweepSchema):
    """Slurm backend: one job array, one array task per run."""

    partition: str | None = Field(None, pattern=r"^\S+$", description="--partition")
    time: str | None = Field(
        None, pattern=r"^([0-9]+-)?[0-9]+(:[0-9]+){0,2}$",
        description="--time per run: minutes, MM:SS, HH:MM:SS or D-HH:MM:SS (quoted in YAML)",
    )
    ntasks_per_run: int = Field(1, ge=1, description="MPI ranks of each run (--ntasks)")
    cpus_per_task: int = Field(1, ge=1, description="--cpus-per-task (threads per rank)")
    mem: str | None = Field(None, pattern=r"^[0-9]+[KMGT]?$", description="--mem per run, e.g. 4G")
    account: str | None = Field(None, pattern=r"^\S+$", description="--account")
    extra_sbatch: list[str] = Field([], description="further sbatch options, e.g. ['--qos=short']")
    max_parallel: int | None = Field(None, ge=1, description="array tasks running at once (--array=...%N)")
    launcher: str = Field(
        "mpiexec",
        description="how a run with several ranks starts: 'mpiexec' (the one next to the Python) or an srun "
                    "command line such as 'srun --mpi=pmi2'",
    )

    @field_validator("time", mode="before")
    @classmethod
    def _time_text(cls, v):
        if isinstance(v, int) and not isinstance(v, bool):
            raise ValueError(
                'write the time limit as a quoted string, e.g. time: "12:00:00" or "90" (minutes); '
                "unquoted, YAML reads 12:00:00 as the number 43200"
            )
        return v

    @field_validator("mem", mode="before")
    @classmethod
    def _mem_text(cls, v):
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("extra_sbatch")
    @classmethod
    def _options(cls, v: list[str]) -> list[str]:
        for opt in v:
            if not opt.startswith("-") or "\n" in opt:
                raise ValueError(f"{opt!r}: each entry is one sbatch option, e.g. '--qos=short'")
        return v

    @field_validator("launcher")
    @classmethod
    def _launcher(cls, v: str) -> str:
        if v != "mpiexec" and not (v == "srun" or v.startswith("srun ")):
            raise ValueError("'mpiexec' or an srun command line, e.g. 'srun' or 'srun --mpi=pmi2'")
        return v


class SweepSpec(SweepSchema):
    """A sweep file."""

    name: str = Field(..., pattern=NAME_PATTERN, description="sweep name (a plain file name: letters, digits, '_', '.', '+', '-')")
    description: str = Field("", description="free text")
    base: str = Field(..., min_length=1, description="base case file, relative to the sweep file")
    parameters: dict[str, ParameterValues] = Field(
        ..., min_length=1, description="case path -> list, {range: [start, stop, n]} or {logrange: [...]}"
    )
    combine: Literal["product", "zip"] = Field("product", description="every combination, or the i-th of each")
    set: dict[str, Any] = Field({}, description="case path -> value applied to every run")
    output: str | None = Field(None, description="sweep directory (default results/<name>), relative to the current directory")
    backend: Literal["local", "slurm"] = Field("local", description="where the runs are started")
    local: LocalSettings = LocalSettings()
    slurm: SlurmSettings = SlurmSettings()


# --------------------------------------------------------------------------- runs
@dataclass
class Run:
    index: int
    name: str
    parameters: dict[str, Any]
    overrides: list[str]


@dataclass
class Sweep:
    path: Path          # the sweep file
    spec: SweepSpec
    base: Path          # the base case file (absolute)
    out: Path           # the sweep directory
    runs: list[Run]


def format_value(v: Any) -> str:
    """A short, exact, filesystem-safe text for a parameter value: 1.5e10, 0.35, 2, true."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        d = Decimal(repr(v)).normalize()
        fixed = format(d, "f")
        mantissa, _, exponent = format(d, "e").partition("e")
        scientific = f"{mantissa}e{int(exponent)}"
        return fixed if len(fixed) <= len(scientific) else scientific
    if isinstance(v, (list, tuple)):
        return "x".join(format_value(x) for x in v)
    if isinstance(v, dict):
        return "+".join(f"{k}-{format_value(x)}" for k, x in v.items())
    # a plain file-name part: no separators, no '..', no leading dot
    text = re.sub(r"\.{2,}", "-", re.sub(r"[^A-Za-z0-9._+-]", "-", str(v))).lstrip(".")
    return text or "empty"


def short_keys(paths: list[str]) -> dict[str, str]:
    """The key of each parameter in run names: its alias, else the last part of the path;
    the full path where two parameters would get the same key."""
    keys = {p: ALIASES.get(p, p.rsplit(".", 1)[-1]) for p in paths}
    counts: dict[str, int] = {}
    for k in keys.values():
        counts[k] = counts.get(k, 0) + 1
    return {p: (k if counts[k] == 1 else p) for p, k in keys.items()}


def run_name(parameters: dict[str, Any], keys: dict[str, str]) -> str:
    name = "_".join(f"{keys[p]}={format_value(v)}" for p, v in parameters.items())
    if len(name) > MAX_NAME:
        import hashlib

        name = name[: MAX_NAME - 9] + "_" + hashlib.sha1(name.encode()).hexdigest()[:8]
    return name


def override_text(path: str, value: Any) -> str:
    """``path=value`` for ``ssbfrac run --set``: the value as JSON, which is also YAML."""
    def finite(x):
        if isinstance(x, float) and not math.isfinite(x):
            raise CaseError(f"{path} = {x!r}: only finite numbers can be swept")
        for y in (x.values() if isinstance(x, dict) else x if isinstance(x, list) else ()):
            finite(y)

    finite(value)
    return f"{path}={json.dumps(value)}"


def expand(spec: SweepSpec, source: str = "<sweep>") -> list[Run]:
    """Every run of the sweep, in a fixed order (the first parameter varies slowest)."""
    paths = list(spec.parameters)
    lists = [spec.parameters[p] for p in paths]
    if spec.combine == "zip":
        lengths = {p: len(v) for p, v in zip(paths, lists)}
        if len(set(lengths.values())) > 1:
            detail = ", ".join(f"{p}: {n}" for p, n in lengths.items())
            raise CaseError(f"{source}: combine = 'zip': every parameter needs the same number of values; got {detail}")
        combos = list(zip(*lists))
    else:
        combos = list(itertools.product(*lists))
    keys = short_keys(paths)
    fixed = [override_text(p, v) for p, v in spec.set.items()]
    runs, seen = [], {}
    for i, combo in enumerate(combos):
        params = dict(zip(paths, combo))
        name = run_name(params, keys)
        if name in seen:
            raise CaseError(
                f"{source}: runs {seen[name]} and {i} would both be named {name!r}: "
                "every combination of parameter values must differ"
            )
        seen[name] = i
        overrides = [override_text(p, v) for p, v in params.items()] + fixed
        runs.append(Run(i, name, params, overrides))
    return runs


# --------------------------------------------------------------------------- loading and checking
def read_sweep_file(path: Path) -> dict:
    from solver.config import read_yaml

    return read_yaml(path, kind="sweep", sections="(name, base, parameters, ...)")


def load_sweep(path: str | Path, out: str | Path | None = None) -> Sweep:
    """Read and check a sweep file and expand its runs (cases are checked by validate_runs)."""
    path = Path(path)
    source = str(path)
    try:
        spec = SweepSpec.model_validate(read_sweep_file(path))
    except ValidationError as err:
        raise CaseError(format_validation_error(err, source, SweepSpec)) from None
    for section in ("parameters", "set"):
        for key in getattr(spec, section):
            if not DOTTED_PATH.match(key):
                raise CaseError(f"{source}: {section}: {key!r} is not a dotted case path such as materials.electrolyte.E")
    both = sorted(set(spec.parameters) & set(spec.set))
    if both:
        raise CaseError(f"{source}: set: {', '.join(both)} is also a swept parameter: give it in one place only")
    base = Path(spec.base) if Path(spec.base).is_absolute() else path.parent / spec.base
    if not base.is_file():
        raise CaseError(f"{source}: base = {spec.base!r}: case file not found ({base})")
    out = Path(out) if out is not None else Path(spec.output) if spec.output else Path("results") / spec.name
    return Sweep(path=path, spec=spec, base=Path(os.path.abspath(base)), out=Path(os.path.abspath(out)),
                 runs=expand(spec, source))


def validate_runs(sweep: Sweep) -> dict[str, dict]:
    """Apply each run's overrides to the base case and validate it; every error names the
    run and the field. Returns {run name: resolved case as plain data}."""
    from solver.config import case_to_dict, read_yaml
    from solver.config.preflight import preflight

    base = read_yaml(sweep.base)
    cases, errors = {}, []
    for run in sweep.runs:
        source = f"{sweep.path} (run {run.name})"
        try:
            case = validate_case(apply_overrides(base, run.overrides), source)
            preflight(case, source)  # size limits and PETSc options, as `ssbfrac run` checks them
            cases[run.name] = case_to_dict(case)
        except CaseError as exc:
            text = str(exc)
            errors.append(text if text.startswith(source) else f"{source}: {text}")
    if errors:
        shown = errors[:20] + ([f"... and {len(errors) - 20} more runs with errors"] if len(errors) > 20 else [])
        raise CaseError("\n".join(shown))
    return cases


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: data}


def check_complete_runs(sweep: Sweep, cases: dict[str, dict]) -> None:
    """A complete run is only skipped if it was made with the case the sweep asks for now
    (the base case or the sweep file may have been edited since)."""
    errors = []
    for run in sweep.runs:
        d = sweep.out / run.name
        if not (d / "summary.json").exists() or not (d / "case.yaml").exists():
            continue
        try:
            old = _flatten(yaml_load((d / "case.yaml").read_text()))
        except (OSError, yaml.YAMLError) as exc:
            errors.append(f"{d}: a complete run whose case.yaml cannot be read: {exc}")
            continue
        new = _flatten(cases[run.name])
        diff = [k for k in new if k in old and old[k] != new[k]]
        if diff:
            k = diff[0]
            errors.append(f"{d}: a complete run made with a different case ({k} = {old[k]!r} there, "
                          f"{new[k]!r} now{f', and {len(diff) - 1} more fields' if len(diff) > 1 else ''})")
    if errors:
        shown = errors[:10] + ([f"... and {len(errors) - 10} more"] if len(errors) > 10 else [])
        raise CaseError("\n".join(shown) + "\nDelete these runs or give the sweep another output directory (--out).")


def resolved_spec(sweep: Sweep) -> dict:
    data = sweep.spec.model_dump(mode="json")
    data["base"] = str(sweep.base)
    data["output"] = str(sweep.out)
    return data


def write_manifest(sweep: Sweep) -> None:
    """sweep.yaml (the resolved sweep) and runs.json (run name -> index, parameters, overrides).
    Slurm array tasks find their run by index in runs.json: it is not changed while tasks of
    an earlier submission are still queued or running."""
    from solver.rundir import RunError, make_marked_directory
    from solver.slurm import queued_tasks

    runs = {r.name: {"index": r.index, "parameters": r.parameters, "overrides": r.overrides} for r in sweep.runs}
    old_file = sweep.out / "runs.json"
    if old_file.exists():
        try:
            old = json.loads(old_file.read_text())
        except ValueError:
            old = None
        if old != json.loads(json.dumps(runs)):
            queue, _ = queued_tasks(sweep.out)
            if queue:
                raise RunError(
                    f"{sweep.out}: the runs of the sweep changed but Slurm tasks of an earlier submission are still "
                    f"queued or running ({', '.join(sorted(queue)[:5])}{', ...' if len(queue) > 5 else ''}): "
                    "wait for them (or scancel them), or use another output directory (--out)"
                )
    make_marked_directory(sweep.out, "sweep")
    (sweep.out / "logs").mkdir(parents=True, exist_ok=True)
    header = f"# resolved by ssbfrac sweep from {sweep.path.absolute()}\n"
    (sweep.out / "sweep.yaml").write_text(header + yaml.safe_dump(resolved_spec(sweep), sort_keys=False))
    (sweep.out / "runs.json").write_text(json.dumps(runs, indent=1) + "\n")


# --------------------------------------------------------------------------- run states
#: exit statuses of runs that were stopped rather than failed (Ctrl-C, SIGTERM, SIGKILL)
INTERRUPTED = {130, 143, 137, -2, -15, -9}
#: exit status of a run that stopped on request after writing its checkpoint (continued with --restart)
CHECKPOINTED = 85


@dataclass
class RunStatus:
    run: Run
    state: str            # done | running | failed | pending
    detail: str
    active: bool = False  # running, or queued in Slurm: do not launch again


def log_path(sweep: Sweep, run: Run) -> Path:
    return sweep.out / "logs" / f"{run.name}.log"


def state_path(sweep: Sweep, run: Run) -> Path:
    return sweep.out / "logs" / f"{run.name}.state"


def read_state(path: Path) -> list[str] | None:
    try:
        words = path.read_text().split()
    except FileNotFoundError:
        return None
    return words or None


def _process_alive(host: str, pid: str) -> bool:
    if host != socket.gethostname():
        return True  # another machine: cannot tell, assume it runs
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def run_status(sweep: Sweep, run: Run, queue: dict[str, str] | None, queued: dict[str, str]) -> RunStatus:
    """``queue``: Slurm array tasks of this sweep still in the queue ({'12_3': 'PENDING'}),
    None where Slurm cannot be asked; ``queued``: run name -> task of its latest submission."""
    from solver.rundir import in_use, run_state

    d = sweep.out / run.name
    state = run_state(d)
    if state == "running":  # a live ssbfrac process holds the directory
        owner = in_use(d) or {}
        return RunStatus(run, "running", f"PID {owner.get('pid', '?')} on {owner.get('host', '?')}", active=True)
    if state == "complete":
        try:
            wall = json.loads((d / "summary.json").read_text()).get("wall_time_s")
        except (OSError, ValueError):
            wall = None
        return RunStatus(run, "done", f"{wall:.1f} s" if isinstance(wall, (int, float)) else "complete")
    record = read_state(state_path(sweep, run))
    if record and record[0] == "running":
        host, pid = (record[1:3] + ["", ""])[:2]
        job = record[3] if len(record) > 3 else None
        if job is not None:
            alive = queue is None or job in queue
            where = f"Slurm task {job}"
        else:
            alive = _process_alive(host, pid)
            where = f"PID {pid} on {host}"
        if alive:
            return RunStatus(run, "running", where, active=True)
        return RunStatus(run, "pending", f"interrupted ({where} ended without an exit status)")
    if record and record[0] == "exit":
        code = int(record[1]) if len(record) > 1 and re.fullmatch(r"-?[0-9]+", record[1]) else None
        if code in INTERRUPTED:
            return RunStatus(run, "pending", f"interrupted (exit status {code})")
        if code == CHECKPOINTED:
            return RunStatus(run, "pending", "stopped with a checkpoint (continued with --restart)")
        if code == 0:  # finished, then its directory (or summary.json) was removed: run it again
            return RunStatus(run, "pending", "results removed after the run")
        return RunStatus(run, "failed", f"exit status {code}")
    task = queued.get(run.name)
    if task is not None and queue is not None and task in queue:
        return RunStatus(run, "pending", f"queued (Slurm task {task}, {queue[task].lower()})", active=True)
    if state == "failed":
        return RunStatus(run, "failed", "error.txt")
    if state == "checkpointed":
        return RunStatus(run, "pending", "stopped with a checkpoint (continued with --restart)")
    if state == "incomplete":
        return RunStatus(run, "pending", "incomplete directory (interrupted)")
    return RunStatus(run, "pending", "not started")


def sweep_status(sweep: Sweep) -> list[RunStatus]:
    from solver.slurm import queued_tasks

    queue, queued = queued_tasks(sweep.out)
    return [run_status(sweep, run, queue, queued) for run in sweep.runs]


def failure_text(sweep: Sweep, run: Run, lines: int = 5) -> list[str]:
    """The last lines of the run's error.txt, else of its log. ``ssbfrac run`` exits with
    status 2 when it stops before running (invalid case, packing, directory): it writes no
    error.txt then, and an error.txt in the directory is from an earlier attempt."""
    sources = [sweep.out / run.name / "error.txt", log_path(sweep, run)]
    if read_state(state_path(sweep, run)) == ["exit", "2"]:
        sources = sources[1:]
    for path in sources:
        try:
            text = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            continue
        if text:
            return text[-lines:]
    return []


def counts(statuses: list[RunStatus]) -> str:
    n = {s: 0 for s in ("done", "running", "failed", "pending")}
    for st in statuses:
        n[st.state] += 1
    return ", ".join(f"{v} {k}" for k, v in n.items())


def print_status(sweep: Sweep, statuses: list[RunStatus], details: bool = True) -> None:
    print(f"sweep {sweep.spec.name}: {len(statuses)} runs in {sweep.out}: {counts(statuses)}")
    if not details:
        return
    width = max(len(st.run.name) for st in statuses)
    for st in statuses:
        print(f"  {st.state:<8} {st.run.name:<{width}}  {st.detail}")
        if st.state == "failed":
            for line in failure_text(sweep, st.run):
                print(f"      | {line}")
            print(f"      log: {log_path(sweep, st.run)}")


def runs_to_launch(statuses: list[RunStatus], rerun_failed: bool) -> list[RunStatus]:
    return [st for st in statuses
            if not st.active and (st.state == "pending" or (st.state == "failed" and rerun_failed))]


# --------------------------------------------------------------------------- local backend
def ssbfrac_command() -> list[str]:
    """The ssbfrac of the running Python (absolute), for subprocesses and batch scripts."""
    exe = Path(sys.executable).absolute().parent / "ssbfrac"
    return [str(exe)] if exe.exists() else [str(Path(sys.executable).absolute()), "-m", "solver"]


def find_mpiexec() -> str:
    """The mpiexec next to the running Python (the MPI it was built with), else the one on PATH."""
    exe = Path(sys.executable).absolute().parent / "mpiexec"
    if exe.exists():
        return str(exe)
    found = shutil.which("mpiexec")
    if found is None:
        from solver.runner import RunError

        raise RunError("mpiexec not found next to the Python nor on PATH: needed for more than one rank per run")
    return found


def run_command(sweep: Sweep, run: Run, ranks: int) -> list[str]:
    cmd = ([find_mpiexec(), "-n", str(ranks)] if ranks > 1 else []) + ssbfrac_command()
    from solver.rundir import CHECKPOINT_FILE, run_state

    d = sweep.out / run.name
    cmd += ["run", str(sweep.base), "--out", str(d)]
    if run_state(d) in ("checkpointed", "incomplete") and (d / CHECKPOINT_FILE).is_file():
        cmd.append("--restart")  # continue from the checkpoint
    elif d.exists():
        cmd.append("--overwrite")
    for o in run.overrides:
        cmd += ["--set", o]
    return cmd


class LocalPool:
    """Runs ``ssbfrac run`` subprocesses, ``parallel`` at a time; one failure stops nothing."""

    def __init__(self, sweep: Sweep, parallel: int, ranks: int):
        self.sweep, self.parallel, self.ranks = sweep, parallel, ranks
        self.procs: dict[str, subprocess.Popen] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.env = dict(os.environ)
        self.env.setdefault("OMP_NUM_THREADS", "1")

    def launch(self, run: Run) -> tuple[int, float]:
        cmd = run_command(self.sweep, run, self.ranks)
        log, state = log_path(self.sweep, run), state_path(self.sweep, run)
        t0 = time.perf_counter()
        with open(log, "w") as fh:
            fh.write(f"# ssbfrac sweep {self.sweep.spec.name}: run {run.name} on {socket.gethostname()}, "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n# {shlex.join(cmd)}\n")
            fh.flush()
            with self.lock:
                if self.stopping.is_set():
                    return 130, 0.0
                try:
                    proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=self.env)
                except OSError as exc:
                    fh.write(f"ssbfrac sweep: cannot start the run: {exc}\n")
                    state.write_text("exit 127\n")
                    return 127, 0.0
                self.procs[run.name] = proc
                state.write_text(f"running {socket.gethostname()} {proc.pid}\n")
            rc = proc.wait()
        with self.lock:
            del self.procs[run.name]
        state.write_text(f"exit {rc}\n")
        return rc, time.perf_counter() - t0

    def run_all(self, runs: list[Run]) -> bool:
        """Launch every run; False if interrupted (Ctrl-C)."""
        n = len(runs)
        pool = ThreadPoolExecutor(max_workers=self.parallel)
        futures = {pool.submit(self.launch, run): run for run in runs}
        try:
            for k, fut in enumerate(as_completed(futures), 1):
                run = futures[fut]
                rc, seconds = fut.result()
                if rc == 0:
                    print(f"[{k}/{n}] done    {run.name} ({seconds:.1f} s)", flush=True)
                else:
                    last = failure_text(self.sweep, run, lines=1)
                    print(f"[{k}/{n}] FAILED  {run.name} (exit status {rc}): {last[0] if last else ''}", flush=True)
        except KeyboardInterrupt:
            self.stopping.set()
            with self.lock:
                for proc in self.procs.values():
                    proc.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            print("ssbfrac sweep: interrupted; the stopped runs are pending and rerun next time", flush=True)
            return False
        pool.shutdown(wait=True)
        return True


def run_local(sweep: Sweep, statuses: list[RunStatus], rerun_failed: bool, dry_run: bool) -> int:
    settings = sweep.spec.local
    todo = runs_to_launch(statuses, rerun_failed)
    print(f"sweep {sweep.spec.name}: {len(statuses)} runs ({counts(statuses)}); "
          f"{len(todo)} to run, {settings.parallel} at a time, {settings.ranks_per_run} rank(s) each -> {sweep.out}",
          flush=True)
    skipped = [st for st in statuses if st.state == "failed" and not rerun_failed]
    if skipped:
        print(f"  {len(skipped)} failed run(s) not rerun (use --rerun-failed): "
              + ", ".join(st.run.name for st in skipped), flush=True)
    if settings.ranks_per_run > 1:
        find_mpiexec()  # before anything starts
    if dry_run:
        for st in todo:
            print(shlex.join(run_command(sweep, st.run, settings.ranks_per_run)))
        return 0
    write_manifest(sweep)
    if todo:
        pool = LocalPool(sweep, settings.parallel, settings.ranks_per_run)
        if not pool.run_all([st.run for st in todo]):
            return 130
    final = sweep_status(sweep)
    print_status(sweep, final, details=False)
    for st in final:
        if st.state == "failed":
            print(f"  failed: {st.run.name}: {st.detail}; log: {log_path(sweep, st.run)}")
    if all(st.state == "done" for st in final):
        return 0
    print(f"  details: {status_command(sweep)}")
    return 1


def status_command(sweep: Sweep) -> str:
    """The command that shows this sweep's status (with --out when it is not the default)."""
    default = Path(sweep.spec.output) if sweep.spec.output else Path("results") / sweep.spec.name
    out = [] if Path(os.path.abspath(default)) == sweep.out else ["--out", str(sweep.out)]
    return shlex.join(["ssbfrac", "sweep", str(sweep.path), "--status", *out])


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
    from solver.runner import RunError

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
        from solver.slurm import run_slurm

        return run_slurm(sweep, statuses, args.rerun_failed, args.dry_run, args.wait, args.poll)
    return run_local(sweep, statuses, args.rerun_failed, args.dry_run)


__all__ = ["load_sweep", "expand", "validate_runs", "sweep_status", "format_value", "run_name", "short_keys",
           "add_arguments", "add_launch_arguments", "apply_command_line", "check_complete_runs", "launch",
           "main", "SweepSpec", "Sweep", "Run", "RunStatus"]
