"""ParaView really opens the field files: pvbatch reads fields.xdmf of a small run, and
`ssbfrac paraview` renders screenshots and writes a state file that loads again."""

import json
import os
import shutil
import subprocess

import pytest

from conftest import ROOT, ssbfrac_cmd, subprocess_env

PVBATCH = shutil.which("pvbatch")
needs_pvbatch = pytest.mark.skipif(
    PVBATCH is None, reason="pvbatch (ParaView) is not installed; .ci/run installs Debian's paraview")
needs_rendering = pytest.mark.skipif(
    PVBATCH is None or not (os.environ.get("DISPLAY") or shutil.which("xvfb-run")),
    reason="rendering needs pvbatch and an X display or xvfb-run (.ci/run installs paraview and xvfb)")
FIELDS = ("displacement", "lithiation", "von_mises", "hydrostatic", "max_principal", "sigma_zz", "phase",
          "particle_id")


def ssbfrac(*args, env=None, timeout=300):
    return subprocess.run(ssbfrac_cmd() + [str(a) for a in args], capture_output=True, text=True,
                          env=env or subprocess_env(), timeout=timeout)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("paraview") / "run"
    r = ssbfrac("run", ROOT / "tests" / "data" / "small.yaml", "--out", out, "--progress", "none")
    assert r.returncode == 0, r.stderr
    return out


def assert_picture(path):
    """A PNG with something drawn on it: many colours, not a uniform frame."""
    import matplotlib.image
    import numpy as np

    assert path.is_file() and path.stat().st_size > 2000, path
    img = (matplotlib.image.imread(path)[..., :3] * 255).astype(np.int64)
    colours = np.unique((img[..., 0] << 16) | (img[..., 1] << 8) | img[..., 2])
    assert colours.size > 50, f"{path}: only {colours.size} colours"


@needs_pvbatch
def test_pvbatch_reads_fields(small_run):
    script = ROOT / "postprocess" / "paraview" / "inspect_fields.py"
    env = {k: v for k, v in subprocess_env().items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    p = subprocess.run([PVBATCH, "--force-offscreen-rendering", str(script), str(small_run / "fields.xdmf")],
                       capture_output=True, text=True, timeout=300, env=env)
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("SSBFRAC_JSON ")]
    assert p.returncode == 0 and line, p.stdout + p.stderr
    info = json.loads(line[0].split(" ", 1)[1])
    mesh = json.loads((small_run / "mesh.json").read_text())["mesh"]
    summary = json.loads((small_run / "summary.json").read_text())
    assert len(info["timesteps"]) == summary["field_outputs"] == 6
    arrays = {}
    for b in info["blocks"]:
        assert b["cells"] == mesh["cells_global"]
        assert b["points"] == mesh["vertices_global"]
        arrays.update(b["point_arrays"])
        arrays.update(b["cell_arrays"])
    for name in FIELDS:
        assert name in arrays, (name, sorted(arrays))
    assert arrays["displacement"] == 3


@needs_rendering
def test_ssbfrac_paraview_renders_and_writes_a_state(small_run, tmp_path):
    from postprocess.paraview_cli import pvbatch_command, run_pvbatch

    out = tmp_path / "pv"
    r = ssbfrac("paraview", small_run, "--steps", "0", "-1", "--out", out, "--size", "640", "480")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "damage: not in" in r.stderr  # an elastic run has no damage field: said, and skipped
    for field in ("max_principal", "von_mises"):
        assert_picture(out / f"{field}_0005.png")
        assert (out / f"{field}_0000.png").is_file()
    state = out / "fields.pvsm"
    assert state.is_file() and str((small_run / "fields.xdmf").resolve()) in state.read_text()

    # the state opens again, and its merge filter gives one dataset with every field
    script = tmp_path / "load_state.py"
    script.write_text(
        "import json, sys\n"
        "from paraview import simple as pv\n"
        "from paraview import servermanager as sm\n"
        "pv.LoadState(sys.argv[1])\n"
        "reader, merge = pv.FindSource('fields.xdmf'), pv.FindSource('merge fields')\n"
        "times = list(reader.TimestepValues)\n"
        "merge.UpdatePipeline(times[-1])\n"
        "d = sm.Fetch(merge)\n"
        "names = [d.GetPointData().GetArrayName(i) for i in range(d.GetPointData().GetNumberOfArrays())]\n"
        "names += [d.GetCellData().GetArrayName(i) for i in range(d.GetCellData().GetNumberOfArrays())]\n"
        "print('SSBFRAC_JSON ' + json.dumps({'times': times, 'points': d.GetNumberOfPoints(),\n"
        "                                    'cells': d.GetNumberOfCells(), 'arrays': names}))\n")
    loaded = run_pvbatch(pvbatch_command(PVBATCH, script, [str(state)]))
    mesh = json.loads((small_run / "mesh.json").read_text())["mesh"]
    assert len(loaded["times"]) == 6
    assert loaded["points"] == mesh["vertices_global"] and loaded["cells"] == mesh["cells_global"]
    assert set(FIELDS) <= set(loaded["arrays"])


@needs_rendering
def test_ssbfrac_paraview_colours_damage(tmp_path):
    from test_post import write_damage_fields

    run = tmp_path / "run"
    run.mkdir()
    info = write_damage_fields(run / "fields.xdmf")
    r = ssbfrac("paraview", run, "--steps", "all", "--fields", "damage", "max_principal", "--size", "640", "480")
    assert r.returncode == 0, r.stdout + r.stderr
    for k in range(len(info["times"])):
        for field in ("damage", "max_principal"):
            assert (run / "paraview" / f"{field}_{k:04d}.png").is_file()
    assert_picture(run / "paraview" / "damage_0002.png")
    r = ssbfrac("paraview", run, "--inspect")
    assert r.returncode == 0, r.stderr
    blocks = json.loads(r.stdout)["blocks"]
    assert {"damage"} <= {name for b in blocks for name in b["point_arrays"]}
    assert all(b["points"] == info["points"] and b["cells"] == info["cells"] for b in blocks)


def test_ssbfrac_paraview_without_pvbatch_says_so(tmp_path):
    """Runs everywhere: a PATH without ParaView, and a wrong --pvbatch."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "fields.xdmf").write_text("<Xdmf/>")
    (run / "fields.h5").write_bytes(b"")
    env = subprocess_env()
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                  if not (p and os.path.exists(os.path.join(p, "pvbatch"))))
    r = ssbfrac("paraview", run, env=env)
    assert r.returncode == 2
    assert "pvbatch (ParaView >= 5.11) was not found on PATH" in r.stderr and "Traceback" not in r.stderr
    r = ssbfrac("paraview", run, "--pvbatch", tmp_path / "no-such-pvbatch")
    assert r.returncode == 2 and "no-such-pvbatch: not found" in r.stderr
    r = ssbfrac("paraview", tmp_path / "elsewhere")
    assert r.returncode == 2 and "fields.xdmf: not found" in r.stderr


def test_vtx_series_next_to_xdmf(tmp_path, small_case):
    """output.vtx: the same fields as an ADIOS2 VTX series (fields.bp) with one step per
    field output; skipped where DOLFINx has no ADIOS2."""
    import solver  # noqa: F401
    from solver.runs.writers import vtx_available

    if not vtx_available():
        pytest.skip("this DOLFINx has no ADIOS2: no VTX output")
    out = tmp_path / "run"
    r = subprocess.run(ssbfrac_cmd() + ["run", str(small_case), "--out", str(out), "--progress", "none",
                                        "--set", "output.vtx=true", "--set", "loading.steps=2"],
                       capture_output=True, text=True, env=subprocess_env(), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    bp = out / "fields.bp"
    assert bp.is_dir() and (bp / "md.idx").is_file()
    assert sum(f.stat().st_size for f in bp.iterdir() if f.name.startswith("data.")) > 1000
    summary = json.loads((out / "summary.json").read_text())
    # one ADIOS2 step per field output: md.idx holds a header and one 64-byte record per step (BP4)
    steps = ((bp / "md.idx").stat().st_size - 64) // 64
    assert steps == summary["field_outputs"]
