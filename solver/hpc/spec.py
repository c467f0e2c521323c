"""A sweep file and its runs: the schema, the expansion of the parameters into runs and
their directory names, the checks of every generated case, and the sweep directory's
manifest.

Run a parameter sweep: many runs of one case, on this machine or as a Slurm job array.

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

import itertools
import json
import math
import os
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from solver.config import NAME_PATTERN, CaseError, apply_overrides, format_validation_error, validate_case, yaml_load
from solver.hpc.queue import queued_tasks
from solver.runs.rundir import RunError, make_marked_directory


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
    checkpoint_interval: float = Field(
        600.0, ge=0.0,
        description="s of wall-clock time between checkpoints of each run (output.checkpoint_interval; 0: off)",
    )


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
    checkpoint_fraction: float = Field(
        0.1, ge=0.0, lt=1.0,
        description="each run writes a checkpoint every this fraction of the time limit (output.checkpoint_interval; "
                    "0: off), so that a run killed at the limit loses at most this much of it",
    )
    signal_lead: int | None = Field(
        None, ge=0,
        description="s before the time limit at which Slurm sends the backstop SIGUSR1 (default: 120, at most a quarter "
                    "of the limit; 0: none). Slurm may send it up to 60 s earlier",
    )
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


class Variant(SweepSchema):
    """A named group of case values that change together (e.g. a mitigation: another active
    material and the lithium range that goes with it)."""

    name: str = Field(..., pattern=NAME_PATTERN, description="the variant's name in run names (variant=NAME)")
    set: dict[str, Any] = Field(..., min_length=1, description="case path -> value")


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
    variants: list[Variant] = Field(
        [], description="named groups of case values; every variant is combined with every combination of the parameters"
    )
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
    variants = spec.variants or [None]
    runs, seen = [], {}
    for i, (variant, combo) in enumerate(itertools.product(variants, combos)):  # the variant varies slowest
        params = dict(zip(paths, combo))
        grouped = variant.set if variant else {}
        overrides = [override_text(p, v) for p, v in {**grouped, **params}.items()] + fixed
        if variant:
            params = {"variant": variant.name, **params}
        name = run_name(params, {"variant": "variant", **keys})
        if name in seen:
            raise CaseError(
                f"{source}: runs {seen[name]} and {i} would both be named {name!r}: "
                "every combination of parameter values must differ"
            )
        seen[name] = i
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
    for i, variant in enumerate(spec.variants):
        for key in variant.set:
            where = f"{source}: variants[{i}] ({variant.name}): {key!r}"
            if not DOTTED_PATH.match(key):
                raise CaseError(f"{where} is not a dotted case path such as materials.electrolyte.E")
            if key in spec.parameters or key in spec.set:
                raise CaseError(f"{where} is also in {'parameters' if key in spec.parameters else 'set'}: give it in one place only")
    if "variant" in spec.parameters and spec.variants:
        raise CaseError(f"{source}: parameters: 'variant' is the name of the variants' column: rename the parameter")
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
        # output settings (fields_every, checkpoint_interval, ...) do not change the results
        diff = [k for k in new if k in old and old[k] != new[k] and not k.startswith("output.")]
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
