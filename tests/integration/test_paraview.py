"""ParaView really opens the field files: pvbatch reads fields.xdmf of a small run, and
`ssbfrac paraview` renders screenshots and writes a state file that loads again."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, ssbfrac_cmd, subprocess_env

sys.path.insert(0, str(ROOT / "tests" / "unit"))  # test_post's fabricated fields, also when run alone

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


@needs_pvbatch
def test_pvbatch_reads_the_merged_series_as_one_dataset(small_run):
    """fields_merged.xdmf: ParaView 5.11 reads one dataset holding every field, with the
    values of fields.h5, at every time step."""
    import numpy as np

    from postprocess.fields import read_field_file

    script = small_run.parent / "read_merged.py"
    script.write_text(
        "import json, sys\n"
        "from paraview import simple as pv\n"
        "from paraview import servermanager as sm\n"
        "reader = pv.Xdmf3ReaderS(FileName=[sys.argv[1]])\n"
        "reader.UpdatePipelineInformation()\n"
        "times = list(reader.TimestepValues)\n"
        "out = {'times': times, 'steps': []}\n"
        "for t in times:\n"
        "    reader.UpdatePipeline(t)\n"
        "    d = sm.Fetch(reader)\n"
        "    pd, cd = d.GetPointData(), d.GetCellData()\n"
        "    arrays = {pd.GetArrayName(i): list(pd.GetArray(i).GetRange(-1)) for i in range(pd.GetNumberOfArrays())}\n"
        "    arrays.update({cd.GetArrayName(i): list(cd.GetArray(i).GetRange(0)) for i in range(cd.GetNumberOfArrays())})\n"
        "    out['steps'].append({'class': d.GetClassName(), 'points': d.GetNumberOfPoints(),\n"
        "                         'cells': d.GetNumberOfCells(), 'arrays': arrays})\n"
        "print('SSBFRAC_JSON ' + json.dumps(out))\n")
    env = {k: v for k, v in subprocess_env().items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    p = subprocess.run([PVBATCH, "--force-offscreen-rendering", str(script), str(small_run / "fields_merged.xdmf")],
                       capture_output=True, text=True, timeout=300, env=env)
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("SSBFRAC_JSON ")]
    assert p.returncode == 0 and line, p.stdout + p.stderr
    info = json.loads(line[0].split(" ", 1)[1])
    ff = read_field_file(small_run / "fields.h5")
    mesh = json.loads((small_run / "mesh.json").read_text())["mesh"]
    assert info["times"] == pytest.approx(ff.times) and len(info["times"]) == 6
    for t, step in zip(ff.times, info["steps"]):
        assert step["class"] == "vtkUnstructuredGrid"  # one dataset, not a block per function
        assert step["points"] == mesh["vertices_global"] and step["cells"] == mesh["cells_global"]
        assert set(FIELDS) <= set(step["arrays"]) and set(step["arrays"]) == set(ff.keys)
        for name in ("max_principal", "von_mises", "lithiation"):
            values, _ = ff.values(name, t)
            assert step["arrays"][name] == pytest.approx([values.min(), values.max()], rel=1e-6, abs=1e-12)
        u, _ = ff.values("displacement", t)
        assert step["arrays"]["displacement"][1] == pytest.approx(np.linalg.norm(u, axis=1).max(), rel=1e-6)


LOAD_STATE = (
    "import json, os, sys\n"
    "from paraview import simple as pv\n"
    "from paraview import servermanager as sm\n"
    "state, mode = sys.argv[1], sys.argv[2]\n"
    "if mode == 'from its folder':\n"
    "    os.chdir(os.path.dirname(state))\n"
    "    pv.LoadState(state)\n"
    "else:  # the GUI's 'Search files under specified directory', the state's folder\n"
    "    pv.LoadState(state, data_directory=os.path.dirname(state))\n"
    "reader = pv.FindSource('fields_merged.xdmf')\n"
    "times = list(reader.TimestepValues)\n"
    "names = []\n"
    "for name in ('fields_merged.xdmf', 'max_principal in MPa', 'von_mises in MPa', 'hydrostatic in MPa',\n"
    "             'sigma_zz in MPa'):\n"
    "    source = pv.FindSource(name)\n"
    "    if source is not None:\n"
    "        last = source\n"
    "last.UpdatePipeline(times[-1])\n"
    "d = sm.Fetch(last)\n"
    "names = [d.GetPointData().GetArrayName(i) for i in range(d.GetPointData().GetNumberOfArrays())]\n"
    "names += [d.GetCellData().GetArrayName(i) for i in range(d.GetCellData().GetNumberOfArrays())]\n"
    "print('SSBFRAC_JSON ' + json.dumps({'file': list(reader.FileName), 'times': times, 'class': d.GetClassName(),\n"
    "                                    'points': d.GetNumberOfPoints(), 'cells': d.GetNumberOfCells(),\n"
    "                                    'arrays': names}))\n")


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
    assert state.is_file()
    text = state.read_text()
    relative = os.path.relpath(small_run / "fields_merged.xdmf", out)
    assert f'value="{relative}"' in text and str(small_run.resolve()) not in text

    # a state written into the run directory opens from a copy of it, the original gone
    r = ssbfrac("paraview", small_run, "--steps", "-1", "--fields", "max_principal", "--size", "640", "480")
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'value="../fields_merged.xdmf"' in (small_run / "paraview" / "fields.pvsm").read_text()
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(small_run, copy)
    hidden = small_run.with_name(small_run.name + "_hidden")
    small_run.rename(hidden)
    try:
        script = tmp_path / "load_state.py"
        script.write_text(LOAD_STATE)
        mesh = json.loads((copy / "mesh.json").read_text())["mesh"]
        for mode in ("from its folder", "search the state's folder"):
            loaded = run_pvbatch(pvbatch_command(PVBATCH, script, [str(copy / "paraview" / "fields.pvsm"), mode]))
            assert len(loaded["times"]) == 6, mode
            assert loaded["class"] == "vtkUnstructuredGrid", mode
            assert loaded["points"] == mesh["vertices_global"] and loaded["cells"] == mesh["cells_global"], mode
            assert set(FIELDS) <= set(loaded["arrays"]), mode
            assert {"max_principal_MPa", "von_mises_MPa"} <= set(loaded["arrays"]), mode
    finally:
        hidden.rename(small_run)


def crop(path, box):
    """A region (x0, y0, x1, y1 as fractions of the width and height) of a PNG, as RGB."""
    import matplotlib.image

    img = matplotlib.image.imread(path)[..., :3]
    h, w = img.shape[:2]
    x0, y0, x1, y1 = box
    return img[int(y0 * h):int(y1 * h), int(x0 * w):int(x1 * w)]


@needs_rendering
def test_ssbfrac_paraview_colours_damage(tmp_path):
    import numpy as np

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
    # the colour bar (limits and labels) is the same at every output step of a field,
    # although the stresses at output 1 are half those at output 2
    bar = (0.78, 0.15, 1.0, 0.85)
    for field in ("damage", "max_principal"):
        assert np.array_equal(crop(run / "paraview" / f"{field}_0001.png", bar),
                              crop(run / "paraview" / f"{field}_0002.png", bar)), field
    assert not np.array_equal(crop(run / "paraview" / "max_principal_0001.png", (0.1, 0.1, 0.7, 0.9)),
                              crop(run / "paraview" / "max_principal_0002.png", (0.1, 0.1, 0.7, 0.9)))
    r = ssbfrac("paraview", run, "--inspect")
    assert r.returncode == 0, r.stderr
    blocks = json.loads(r.stdout)["blocks"]
    assert len(blocks) == 1  # fields_merged.xdmf: one dataset with every field
    assert {"damage", "displacement"} <= set(blocks[0]["point_arrays"])
    assert {"phase", "max_principal", "von_mises"} <= set(blocks[0]["cell_arrays"])
    assert blocks[0]["points"] == info["points"] and blocks[0]["cells"] == info["cells"]


@needs_rendering
def test_paraview_damage_picture_masks_the_particles(tmp_path):
    """The damage band runs into the particle (phase 2): ParaView draws the particle flat
    grey and the damage only on the electrolyte; the caption names the time."""
    import numpy as np

    from test_post import write_damage_fields

    run = tmp_path / "run"
    run.mkdir()
    write_damage_fields(run / "fields.xdmf")
    (run / "history.csv").write_text("step,accepted,time,soc,vol_strain\n0,1,0,1,0\n1,1,1800,0.5,0.02\n"
                                     "2,1,3600,0.25,0.04\n")
    from postprocess.paraview_cli import render

    report = render(run, steps=["-1"], fields=["damage"], size=(800, 600))
    assert report["captions"] == {"2": "output 2 (of 0..2), t = 3600 s, step 2, SOC 0.250, particle vol. strain 0.0400"}
    assert report["ranges"] == {"damage": [0.0, 1.0]}
    img = crop(run / "paraview" / "damage_0002.png", (0, 0, 1, 1))
    # find the domain (the non-white region left of the colour bar) and sample inside the particle
    body = img[:, : int(0.75 * img.shape[1])]
    grey = np.all(np.abs(body - body[..., :1]) < 0.02, axis=-1) & (np.abs(body[..., 0] - 0.72) < 0.03)
    red = (body[..., 0] > 0.35) & (body[..., 1] < 0.15) & (body[..., 2] < 0.15)
    assert grey.sum() > 2000 and red.sum() > 200  # a grey particle and a dark-red band
    rows, _ = np.nonzero(grey)
    centre = int(np.median(rows))  # the middle of the particle: the height of the band
    for row in range(centre - 3, centre + 4):
        particle, band = np.flatnonzero(grey[row]), np.flatnonzero(red[row])
        assert particle.size > 50 and band.size > 10, row  # the particle, and the band in the electrolyte
        assert band.min() > particle.max(), row  # no damage drawn on the particle: red only to its right


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
