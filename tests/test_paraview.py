"""ParaView really opens the field files: pvbatch reads fields.xdmf of a small run."""

import json
import shutil
import subprocess

import pytest

from conftest import ROOT, ssbfrac_cmd, subprocess_env

PVBATCH = shutil.which("pvbatch")


@pytest.mark.skipif(PVBATCH is None, reason="pvbatch (ParaView) is not installed; .ci/run installs Debian's paraview")
def test_pvbatch_reads_fields(tmp_path, small_case):
    out = tmp_path / "run"
    r = subprocess.run(ssbfrac_cmd() + ["run", str(small_case), "--out", str(out), "--progress", "none"],
                       capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert r.returncode == 0, r.stderr
    script = ROOT / "postprocess" / "paraview" / "inspect_fields.py"
    env = {k: v for k, v in subprocess_env().items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    p = subprocess.run([PVBATCH, "--force-offscreen-rendering", str(script), str(out / "fields.xdmf")],
                       capture_output=True, text=True, timeout=300, env=env)
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("SSBFRAC_JSON ")]
    assert p.returncode == 0 and line, p.stdout + p.stderr
    info = json.loads(line[0].split(" ", 1)[1])
    mesh = json.loads((out / "mesh.json").read_text())["mesh"]
    summary = json.loads((out / "summary.json").read_text())
    assert len(info["timesteps"]) == summary["field_outputs"] == 6
    arrays = {}
    for b in info["blocks"]:
        assert b["cells"] == mesh["cells_global"]
        assert b["points"] == mesh["vertices_global"]
        arrays.update(b["point_arrays"])
        arrays.update(b["cell_arrays"])
    for name in ("displacement", "lithiation", "von_mises", "hydrostatic", "max_principal", "sigma_zz", "phase"):
        assert name in arrays, (name, sorted(arrays))
    assert arrays["displacement"] == 3
