"""ParaView screenshots and a ParaView state file of a run's fields (runs pvbatch).

    ssbfrac paraview RUN_DIR [--steps 0 -1 | all] [--fields damage max_principal von_mises]
                     [--out DIR] [--size 1200 900] [--pvbatch PATH] [--inspect]

pvbatch (ParaView >= 5.11) runs ``postprocess/paraview/render.py`` on RUN_DIR/fields.xdmf.
It writes ``<field>_<output index>.png`` for each requested field and output step, and
``fields.pvsm`` (File > Load State in the ParaView GUI), into RUN_DIR/paraview/ unless
``--out`` is given. ``--inspect`` only prints what ParaView reads from the file
(time steps, points, cells and arrays of each block).

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
                     "hydrostatic, sigma_zz (cell data, GPa), lithiation, phase, particle_id (cell data); time in s.")


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
        cmd = [shutil.which("xvfb-run"), "-a", *cmd]
    return cmd


def run_pvbatch(cmd: list[str], timeout: float = 600.0) -> dict:
    """Run a pvbatch script and return the JSON it prints on its ``SSBFRAC_JSON`` line.

    Under xvfb-run, a failure to open the virtual display (two servers started at once
    can race for the same display number) is retried once."""
    attempts = 2 if Path(cmd[0]).name == "xvfb-run" else 1
    for attempt in range(attempts):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=pvbatch_environment(), timeout=timeout)
        except subprocess.TimeoutExpired:
            raise PostprocessError(f"pvbatch did not finish within {timeout:.0f} s: {' '.join(cmd)}") from None
        if proc.returncode == 0 or "X server" not in proc.stderr:
            break
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


def render(run_dir: Path, out: Path | None = None, steps: list[str] | None = None, fields: list[str] | None = None,
           size: tuple[int, int] = (1200, 900), pvbatch: str | None = None) -> dict:
    """Screenshots and fields.pvsm of a run (see the module docstring); returns the
    JSON report of render.py (images, state, fields found, merged dataset)."""
    xdmf = fields_file(run_dir)
    exe = find_pvbatch(pvbatch)
    out = Path(out) if out is not None else Path(run_dir) / "paraview"
    out.mkdir(parents=True, exist_ok=True)
    args = [str(xdmf.resolve()), "--out", str(out.resolve()), "--steps", *(steps or ["-1"]),
            "--fields", *(fields or DEFAULT_FIELDS), "--size", str(size[0]), str(size[1])]
    return run_pvbatch(pvbatch_command(exe, RENDER_SCRIPT, args))


def inspect(run_dir: Path, pvbatch: str | None = None) -> dict:
    """What ParaView reads from fields.xdmf: time steps and, per block, points, cells, arrays."""
    xdmf = fields_file(run_dir)
    exe = find_pvbatch(pvbatch)
    return run_pvbatch(pvbatch_command(exe, INSPECT_SCRIPT, [str(xdmf.resolve())]))


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
