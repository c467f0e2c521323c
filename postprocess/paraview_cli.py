"""ParaView screenshots and a ParaView state file of a run's fields (runs pvbatch).

    ssbfrac paraview RUN_DIR [--steps 0 -1 | all] [--fields damage max_principal von_mises]
                     [--out DIR] [--size 1200 900] [--pvbatch PATH] [--inspect]

pvbatch (ParaView >= 5.11) runs ``postprocess/paraview/render.py`` on
RUN_DIR/fields_merged.xdmf, the run's series as one dataset with every field (written by
the run next to fields.xdmf; made here for runs that lack it). It writes
``<field>_<output index>.png`` for each requested field and output step, and
``fields.pvsm`` (File > Load State in the ParaView GUI), into RUN_DIR/paraview/ unless
``--out`` is given. The colour limits of a field are the same for every output of the
series; stresses are in MPa; the captions give the time and the state of charge of
history.csv. ``--inspect`` only prints what ParaView reads from the file (time steps,
points, cells and arrays).

pvbatch runs with its own Python: PYTHONPATH, PYTHONHOME and VIRTUAL_ENV are removed
from its environment. When there is no X display (no DISPLAY) and ``xvfb-run`` is
installed, pvbatch runs inside a virtual X server, since ParaView builds without EGL or
OSMesa (such as Debian's) need one even for off-screen rendering.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from postprocess.history import PostprocessError

SCRIPTS = Path(__file__).resolve().parent / "paraview"
RENDER_SCRIPT = SCRIPTS / "render.py"
INSPECT_SCRIPT = SCRIPTS / "inspect_fields.py"
DEFAULT_FIELDS = ["damage", "max_principal", "von_mises"]
JSON_PREFIX = "SSBFRAC_JSON "


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", type=Path, help="run directory (with fields.xdmf and fields.h5)")
    parser.add_argument("--steps", nargs="+", default=["-1"], metavar="K",
                        help="field output steps: indices in the time series, negative from the end, "
                             "or 'all' (default: -1, the last)")
    parser.add_argument("--fields", nargs="+", default=DEFAULT_FIELDS, metavar="NAME",
                        help="fields to colour (default: damage max_principal von_mises; absent ones are skipped)")
    parser.add_argument("--out", type=Path, help="output directory (default: RUN_DIR/paraview)")
    parser.add_argument("--size", nargs=2, type=int, default=[1200, 900], metavar=("WIDTH", "HEIGHT"),
                        help="image size in pixels (default: 1200 900)")
    parser.add_argument("--pvbatch", help="pvbatch executable (default: pvbatch on PATH)")
    parser.add_argument("--inspect", action="store_true",
                        help="only print what ParaView reads from fields.xdmf (time steps, blocks, arrays)")
    parser.epilog = ("Fields: displacement (point data, um), damage (point data, 0..1), max_principal, von_mises, "
                     "hydrostatic, sigma_zz (cell data, GPa in the file, drawn in MPa), lithiation, phase, "
                     "particle_id (cell data); time in s.")


def find_pvbatch(explicit: str | None = None) -> str:
    """The pvbatch executable, or a PostprocessError saying how to get one."""
    if explicit:
        path = shutil.which(explicit)
        if path is None:
            raise PostprocessError(f"--pvbatch {explicit}: not found or not executable")
        return path
    path = shutil.which("pvbatch")
    if path is None:
        raise PostprocessError(
            "pvbatch (ParaView >= 5.11) was not found on PATH: install ParaView (e.g. `apt-get install paraview`, "
            "or the binaries of paraview.org) or pass --pvbatch /path/to/pvbatch. The matplotlib pictures of "
            "`ssbfrac post RUN_DIR` need no ParaView.")
    return path


def pvbatch_environment() -> dict:
    """The current environment without the variables that would point pvbatch's own
    Python at this project's virtual environment."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def pvbatch_command(pvbatch: str, script: Path, script_args: list[str]) -> list[str]:
    """pvbatch with off-screen rendering, inside xvfb-run when there is no X display."""
    cmd = [pvbatch, "--force-offscreen-rendering", str(script), *script_args]
    if not os.environ.get("DISPLAY") and shutil.which("xvfb-run"):
        # -a searches for a free display from -n on: a start that depends on the process
        # keeps simultaneous renderings (parallel tests, sweeps) off each other's display
        cmd = [shutil.which("xvfb-run"), "-a", "-n", str(100 + os.getpid() % 30000), *cmd]
    return cmd


#: what pvbatch prints when it could not open (or create a window on) the X display
DISPLAY_FAILURES = ("X server", "CreateAWindow", "DISPLAY")


def run_pvbatch(cmd: list[str], timeout: float = 600.0) -> dict:
    """Run a pvbatch script and return the JSON it prints on its ``SSBFRAC_JSON`` line.

    Under xvfb-run, a failure to open the virtual display or a window on it (two servers
    started at once can race for the same display number; a loaded machine can be slow to
    start one) is retried twice."""
    attempts = 3 if Path(cmd[0]).name == "xvfb-run" else 1
    for attempt in range(attempts):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=pvbatch_environment(), timeout=timeout)
        except subprocess.TimeoutExpired:
            raise PostprocessError(f"pvbatch did not finish within {timeout:.0f} s: {' '.join(cmd)}") from None
        if proc.returncode == 0 or not any(sign in proc.stderr for sign in DISPLAY_FAILURES):
            break
        time.sleep(2.0 * (attempt + 1))  # a virtual display still starting on a loaded machine
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(JSON_PREFIX)]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stderr.strip() or proc.stdout.strip()).splitlines()[-15:])
        hint = ""
        if "X server" in proc.stderr or "DISPLAY" in proc.stderr:
            hint = ("\nThis ParaView needs an X display to render: set DISPLAY, or install xvfb "
                    "(xvfb-run) so that ssbfrac can start a virtual one.")
        raise PostprocessError(f"pvbatch failed (exit status {proc.returncode}): {' '.join(cmd)}\n{tail}{hint}")
    return json.loads(lines[-1][len(JSON_PREFIX):])


def fields_file(run_dir: Path) -> Path:
    xdmf = Path(run_dir) / "fields.xdmf"
    if not xdmf.is_file():
        raise PostprocessError(f"{xdmf}: not found: {run_dir} has no field output (is it an ssbfrac run directory?)")
    if not xdmf.with_suffix(".h5").is_file():
        raise PostprocessError(f"{xdmf.with_suffix('.h5')}: not found: fields.xdmf needs its HDF5 data file")
    return xdmf


def merged_file(xdmf: Path) -> Path:
    """fields_merged.xdmf next to ``xdmf``: written again when it is missing or older than
    ``xdmf`` (a run of an earlier ssbfrac, or one still writing)."""
    import solver  # noqa: F401  (DOLFINx's import order)
    from solver.runs.writers import merge_xdmf, merged_xdmf_path

    merged = merged_xdmf_path(xdmf)
    if merged.is_file() and merged.stat().st_mtime >= xdmf.stat().st_mtime:
        return merged
    try:
        return merge_xdmf(xdmf)
    except (OSError, ValueError) as exc:
        raise PostprocessError(f"{merged}: cannot write the merged series of {xdmf}: {exc}") from None


#: ParaView colour maps of the fields (a leading "-": reversed, white at 0 for damage)
COLOUR_MAPS = {"damage": "-Reds", "max_principal": "Cool to Warm", "hydrostatic": "Cool to Warm",
               "sigma_zz": "Cool to Warm"}
#: units of fields that postprocess.fields.field_unit does not know
OTHER_UNITS = {"ionic_potential": "V", "particle_potential": "V", "interface_current": "A/um^2"}


def render_plan(run_dir: Path, merged: Path, out: Path, steps: list[str] | None, fields: list[str] | None,
                size: tuple[int, int]) -> dict:
    """What render.py draws: the fields with their colour limits (fixed over the series,
    :func:`postprocess.fields.series_limits`), the captions of the output steps, the
    phases present and which carry damage."""
    import numpy as np

    from postprocess.fields import (FIELD_TITLES, PARTICLE_PHASES, PHASE_CODES, STRESS_FIELDS, damageable_phases,
                                    field_unit, read_field_file, select_outputs, series_limits, stress_note)
    from postprocess.history import read_case
    from postprocess.plots import sharp_corners
    from postprocess.report import state_text

    ff = read_field_file(Path(run_dir) / "fields.h5")
    if not ff.times:
        raise PostprocessError(f"{ff.path}: no field output yet")
    chosen = select_outputs(steps, len(ff.times), ff.path)
    case = read_case(run_dir) if (Path(run_dir) / "case.yaml").is_file() else {}
    history = _history(run_dir)
    names = {code: name for name, code in PHASE_CODES.items()}
    damageable = damageable_phases(case)
    damage_note = (f"Damage is drawn on the cells of the damageable phases "
                   f"({', '.join(names.get(c, str(c)) for c in damageable)}) only; the particles are flat grey, "
                   f"other phases flat light blue.")
    specs, missing = [], []
    for name in fields or DEFAULT_FIELDS:
        if not ff.has(name):
            missing.append(name)
            continue
        unit, _ = field_unit(name)
        limits = series_limits(ff, name)
        values, _ = ff.values(name, ff.times[-1])
        specs.append({
            "name": name, "array": f"{name}_MPa" if name in STRESS_FIELDS else name,
            "title": FIELD_TITLES.get(name, name.replace("_", " ")), "unit": unit or OTHER_UNITS.get(name, ""),
            "colormap": COLOUR_MAPS.get(name, "Viridis (matplotlib)"), "range": list(limits["range"]),
            "clipped": limits["clipped"], "extremes": list(limits["extremes"]), "components": int(values.shape[1]) if values.ndim == 2 else 1,
            "mask_by_phase": name == "damage",
            "note": (stress_note(limits, sharp=sharp_corners(case)) if name in STRESS_FIELDS else
                     damage_note if name == "damage" else ""),
        })
    phases = []
    if ff.has("phase"):
        codes = np.unique(np.rint(ff.values("phase", ff.times[-1])[0]).astype(int))
        phases = [[int(c), names.get(int(c), str(c))] for c in codes]
    captions = {}
    for k in chosen:
        t = ff.times[k]
        state = state_text(history, t)
        captions[str(k)] = f"output {k} (of 0..{len(ff.times) - 1}), t = {t:.6g} s" + (f", {state}" if state else "")
    rel = os.path.relpath(merged.resolve(), out.resolve())
    return {
        "data": rel if os.sep in rel else os.path.join(".", rel),  # Xdmf3 needs a directory part
        "out": str(out.resolve()), "times": ff.times, "steps": chosen, "size": list(size), "dimension": ff.gdim,
        "fields": specs, "missing_fields": missing, "captions": captions, "phases": phases,
        "damageable": damageable, "particle_phases": list(PARTICLE_PHASES),
        "stress_fields": list(STRESS_FIELDS),
    }


def _history(run_dir: Path) -> dict:
    from postprocess.history import read_accepted_history

    try:
        return read_accepted_history(Path(run_dir) / "history.csv")
    except PostprocessError:
        return {}  # no captions of the state of charge


def render(run_dir: Path, out: Path | None = None, steps: list[str] | None = None, fields: list[str] | None = None,
           size: tuple[int, int] = (1200, 900), pvbatch: str | None = None) -> dict:
    """Screenshots and fields.pvsm of a run (see the module docstring); returns the
    JSON report of render.py (images, state, fields drawn and missing, the dataset)."""
    xdmf = fields_file(run_dir)
    exe = find_pvbatch(pvbatch)
    merged = merged_file(xdmf)
    out = Path(out) if out is not None else Path(run_dir) / "paraview"
    out.mkdir(parents=True, exist_ok=True)
    plan = render_plan(Path(run_dir), merged, out, steps, fields, size)
    with tempfile.TemporaryDirectory(prefix="ssbfrac-paraview-") as tmp:
        plan_file = Path(tmp) / "plan.json"
        plan_file.write_text(json.dumps(plan))
        report = run_pvbatch(pvbatch_command(exe, RENDER_SCRIPT, [str(plan_file)]))
    report.update(missing_fields=plan["missing_fields"], xdmf=str(merged))
    return report


def inspect(run_dir: Path, pvbatch: str | None = None) -> dict:
    """What ParaView reads from fields_merged.xdmf: time steps and, per block, points,
    cells, arrays (one block with every field)."""
    xdmf = fields_file(run_dir)
    exe = find_pvbatch(pvbatch)
    return run_pvbatch(pvbatch_command(exe, INSPECT_SCRIPT, [str(merged_file(xdmf).resolve())]))


def main(args, comm) -> int:
    status = 0
    if comm.rank == 0:
        try:
            if args.inspect:
                print(json.dumps(inspect(args.run_dir, args.pvbatch), indent=1))
            else:
                report = render(args.run_dir, args.out, args.steps, args.fields, tuple(args.size), args.pvbatch)
                for name in report["missing_fields"]:
                    print(f"ssbfrac paraview: {name}: not in {report['xdmf']}, skipped", file=sys.stderr)
                print(f"ssbfrac paraview: {len(report['images'])} image(s) and {report['state']} "
                      f"({len(report['timesteps'])} time steps, fields {', '.join(report['fields']) or 'none'})")
                for path in report["images"]:
                    print(f"  {path}")
        except PostprocessError as exc:
            print(f"ssbfrac: error: {exc}", file=sys.stderr, flush=True)
            status = 2
    return comm.bcast(status, root=0)
