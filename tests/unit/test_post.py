"""`ssbfrac post`: plots and report of a run, summary and trends of a sweep.

A real small elastic run provides case.yaml, fields and history; runs with cracks are
fabricated (history.csv with crack columns, a fields.xdmf with a damage field written
with DOLFINx), so these tests do not depend on the fracture solver.
"""

import csv
import json
import math
import shutil
import subprocess

import numpy as np
import pytest
import yaml

from conftest import ROOT, ssbfrac_cmd, subprocess_env

HISTORY_COLUMNS = ["step", "accepted", "time", "load", "x", "soc", "vol_strain", "mean_strain", "sigma1_max_SE",
                   "sigma_h_min_AM", "elastic_energy", "fracture_energy", "crack_length", "crack_length_sharp",
                   "damaged_fraction", "crack_segments", "d_max", "iterations", "elastic_solves", "damage_solves",
                   "linear_iterations", "wall"]


def ssbfrac(*args, timeout=300):
    return subprocess.run(ssbfrac_cmd() + [str(a) for a in args], capture_output=True, text=True,
                          env=subprocess_env(), timeout=timeout)


# --------------------------------------------------------------------------- fabricated data
def crack_curve(vol_strain, onset=0.02, end=0.05, plateau=12.0, jump=0.8):
    """Crack length (um) growing linearly from `onset` to `end` in jumps of `jump` um."""
    grown = plateau * np.clip((np.abs(vol_strain) - onset) / (end - onset), 0.0, 1.0)
    return jump * np.round(grown / jump)


def write_history(path, n=61, expansion=0.075, upto=None, extra=None, crack=True):
    """A lithiation x: 0 -> 1 in n accepted rows (plus one rejected row), optionally
    stopped after `upto` rows; `extra` adds columns (name -> function of x)."""
    x = np.linspace(0.0, 1.0, n)[: upto or n]
    vs = expansion * x
    c = crack_curve(vs)
    columns = [h for h in HISTORY_COLUMNS if crack or h not in
               ("fracture_energy", "crack_length", "crack_length_sharp", "damaged_fraction", "crack_segments",
                "d_max")] + list(extra or {})
    rows, step = [], 0
    for i in range(x.size):
        base = {"step": step, "accepted": 1, "time": 3600 * x[i], "load": x[i], "x": x[i], "soc": 1 - x[i],
                "vol_strain": vs[i], "mean_strain": vs[i] / 4, "sigma1_max_SE": min(1e4 * vs[i], 300.0),
                "sigma_h_min_AM": -2e4 * vs[i], "elastic_energy": 1e3 * vs[i] ** 2, "fracture_energy": 2.6e-3 * c[i],
                "crack_length": c[i], "crack_length_sharp": 0.8 * c[i], "damaged_fraction": c[i] / 400,
                "crack_segments": int(c[i] // 3), "d_max": min(1.0, c[i]), "iterations": 3 + i % 4,
                "elastic_solves": 4 + i % 4, "damage_solves": 3 + i % 4, "linear_iterations": 40 + i, "wall": 0.5 * i}
        for name, fn in (extra or {}).items():
            base[name] = fn(x[i])
        if i == n // 2:  # a rejected (cut) step with nonsense measures
            rows.append({**base, "accepted": 0, "crack_length": 999.0})
            step += 1
            base["step"] = step
        rows.append(base)
        step += 1
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_damage_fields(path, times=(0.0, 1800.0, 3600.0)):
    """fields.xdmf/.h5 as the solver writes them, with a damage band (P1) at y = 5 um from
    x = 6 um to the right side, a disc of active material (phase 2, centre (5, 5) um,
    radius 3 um: the band runs into it, where the damage must not be drawn) and DG0
    stresses."""
    from dolfinx import fem, mesh
    from dolfinx.io import XDMFFile
    from mpi4py import MPI

    domain = mesh.create_rectangle(MPI.COMM_SELF, [[0.0, 0.0], [10.0, 10.0]], [16, 16], mesh.CellType.triangle)
    P1 = fem.functionspace(domain, ("Lagrange", 1))
    DG0 = fem.functionspace(domain, ("DG", 0))
    u = fem.Function(fem.functionspace(domain, ("Lagrange", 1, (2,))), name="displacement")
    d = fem.Function(P1, name="damage")
    phase = fem.Function(DG0, name="phase")
    s1 = fem.Function(DG0, name="max_principal")
    vm = fem.Function(DG0, name="von_mises")
    inside = lambda x: (x[0] - 5.0) ** 2 + (x[1] - 5.0) ** 2 < 9.0  # noqa: E731
    phase.interpolate(lambda x: np.where(inside(x), 2.0, 1.0))
    with XDMFFile(MPI.COMM_SELF, str(path), "w") as f:
        f.write_mesh(domain)
        for k, t in enumerate(times):
            a = k / (len(times) - 1)
            d.interpolate(lambda x: a * np.exp(-np.abs(x[1] - 5.0) / 0.5) * (x[0] > 6.0))
            s1.interpolate(lambda x: a * np.where(inside(x), -0.3, 0.1 + 0.05 * x[0]))
            vm.interpolate(lambda x: a * (0.2 + 0.01 * x[1]))
            u.interpolate(lambda x: np.vstack([a * 0.01 * x[0], a * 0.01 * x[1]]))
            for fn in (u, d, phase, s1, vm):
                f.write_function(fn, t)
    return {"points": domain.geometry.x.shape[0], "cells": domain.topology.index_map(2).size_local,
            "times": list(times)}


def fabricate_run(run_dir, template, status="complete", set_=None, **history_args):
    """A run directory made of a real run's case.yaml and a fabricated history."""
    run_dir.mkdir(parents=True)
    case = yaml.safe_load((template / "case.yaml").read_text())
    for path, value in (set_ or {}).items():
        node = case
        *parents, last = path.split(".")
        for p in parents:
            node = node[p]
        node[last] = value
    case["fracture"]["enabled"] = True
    case["materials"]["electrolyte"]["fracture"] = {"Gc": 2.6, "ell": 0.15e-6}
    (run_dir / "case.yaml").write_text(yaml.safe_dump(case, sort_keys=False))
    write_history(run_dir / "history.csv", **history_args)
    if status == "complete":
        summary = {"status": "complete", "case": case, "wall_time_s": 12.5,
                   "failure_properties": {"electrolyte": {"Gc_J_m2": 2.6, "ell_m": 0.15e-6, "strength_Pa": 250e6}},
                   "history_units": {"voltage": "V (cell voltage)", "capacity": "mAh/g (specific capacity)"}}
        (run_dir / "summary.json").write_text(json.dumps(summary))
    elif status == "failed":
        (run_dir / "error.txt").write_text("StepFailure: damage solve diverged at step 20\n\nTraceback ...\n")
    return run_dir


def assert_image(path, min_bytes=2000):
    """A non-empty picture with something drawn on it (not a single colour)."""
    import matplotlib.image

    assert path.is_file() and path.stat().st_size > min_bytes, path
    if path.suffix == ".png":
        img = matplotlib.image.imread(path)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
        rgb = (np.asarray(img[..., :3]) * 255).astype(np.int64)
        colours = np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2])
        assert colours.size > 20, f"{path} is (nearly) uniform"
    else:
        assert path.read_bytes()[:5] == b"%PDF-"


# --------------------------------------------------------------------------- one run
def test_post_of_a_small_run(small_run):
    r = ssbfrac("post", small_run, "--steps", "0", "-1")
    assert r.returncode == 0, r.stdout + r.stderr
    plots = small_run / "plots"
    for name in ("energies", "stress", "solver", "fields_0000", "fields_0005"):
        for ext in ("png", "pdf"):
            assert_image(plots / f"{name}.{ext}")
    # an elastic run has no crack measures and no voltage: said, not drawn
    for name in ("crack_vs_soc", "crack_vs_strain", "voltage"):
        assert not (plots / f"{name}.png").exists()
        assert f"not drawn: {name}" in r.stdout
    report = (plots / "report.md").read_text()
    assert "status: **complete**" in report
    assert "No crack measures" in report and "fracture was not enabled" in report
    assert "E = 20 GPa" in report and "E = 140 GPa" in report and "expansion = 3 %" in report
    links = [ln.split("](")[1].rstrip(")") for ln in report.splitlines() if ln.startswith("![")]
    assert len(links) == 5 and all((plots / link).is_file() for link in links)


def test_post_of_a_fractured_run(small_run, tmp_path):
    from postprocess.report import post_run
    from postprocess.stages import detect_stages_from_history

    run = fabricate_run(tmp_path / "cracked", small_run,
                        extra={"voltage": lambda x: 4.2 - 0.8 * x, "capacity": lambda x: 150.0 * x})
    write_damage_fields(run / "fields.xdmf")
    result = post_run(run, steps=["all"])
    expected = {"crack_vs_soc", "crack_vs_strain", "energies", "stress", "solver", "voltage",
                "fields_0000", "fields_0001", "fields_0002"}
    assert set(result["figures"]) == expected and not result["skipped"]
    for paths in result["figures"].values():
        for p in paths:
            assert_image(p)
    stages = detect_stages_from_history(run / "history.csv")
    assert stages["stage_I_detected"] and stages["stage_II_detected"] and stages["stage_III_detected"]
    # the fabricated curve: onset at vol_strain 0.02, 12 um at 0.05, in jumps of 0.8 um
    assert stages["onset_extrapolated_value"] == pytest.approx(0.02, rel=0.05)
    assert stages["stage_II_rate"] == pytest.approx(12.0 / 0.03, rel=0.05)
    assert stages["saturation_level"] == pytest.approx(12.0)
    report = (run / "plots" / "report.md").read_text()
    assert f"vol_strain = {stages['onset_value']:.4g} (step {stages['onset_step']})" in report
    assert f"| {stages['stage_II_rate']:.4g} um per unit volumetric strain |" in report
    soc = detect_stages_from_history(run / "history.csv", abscissa="soc")
    assert f"| {soc['stage_II_rate']:.4g} um per unit of SOC |" in report
    assert "strength = 250 MPa" in report and "Gc = 2.6 J/m^2" in report
    assert "| capacity passed in the last protocol segment | 150 | mAh/g |" in report
    assert_every_number_has_a_unit(report)


def test_field_picture_shows_damage(tmp_path):
    from postprocess.fields import field_figure, read_field_file

    info = write_damage_fields(tmp_path / "fields.xdmf")
    ff = read_field_file(tmp_path / "fields.h5")
    assert ff.times == info["times"]
    assert ff.points.shape[0] == info["points"] and ff.cells.shape[0] == info["cells"]
    d, where = ff.values("damage", 3600.0)
    assert where == "point" and d.max() == pytest.approx(1.0, abs=0.05)
    s1, where = ff.values("max_principal", 3600.0)
    assert where == "cell" and s1.min() == pytest.approx(-0.3)
    titles = [ax.get_title() for ax in field_figure(ff, 3600.0).axes]
    assert any("damage (max 1.00)" in t for t in titles)
    titles = [ax.get_title() for ax in field_figure(ff, 0.0).axes]
    assert any("damage (max 0.00)" in t for t in titles)


def assert_every_number_has_a_unit(report):
    """The tables of a report.md: no empty or '-' cells, no '-' standing for a missing value
    ('path -'), and every value of the final-value table with its unit."""
    rows = [ln for ln in report.splitlines() if ln.startswith("|") and not ln.startswith("|---")]
    assert rows
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert all(cells) and "-" not in cells, line
        parts = [p.strip() for c in cells for p in c.split(",")]
        assert not any(p == "-" or p.endswith(" -") or p.startswith("- ") for p in parts), line
    finals = [ln for ln in rows if ln.count("|") == 4 and "final value" not in ln]
    for line in finals:
        label, value, unit = (c.strip() for c in line.strip("|").split("|"))
        if value.replace(".", "").replace("-", "").replace("e", "").isdigit():
            assert unit, line


def test_crack_labels_say_what_the_sharp_length_is(small_run, tmp_path):
    """The dashed curve and the report's row are half the d = 0.5 iso-line, not a d >= 0.9 band."""
    from postprocess import plots
    from postprocess.history import read_accepted_history
    from postprocess.report import post_run
    from postprocess.stages import detect_stages_from_history
    from solver.runs.writers import HISTORY_UNITS

    expected = "sharp crack length: half the length of the d = 0.5 iso-line"
    run = fabricate_run(tmp_path / "cracked", small_run)
    history = read_accepted_history(run / "history.csv")
    fig = plots.crack_figure(history, detect_stages_from_history(run / "history.csv"), "vol_strain")
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert expected in labels and not any("0.9" in label for label in labels)
    post_run(run, steps=["none"])
    report = (run / "plots" / "report.md").read_text()
    assert f"| {expected} (2D) | 9.6 | um |" in report
    assert "crack length, d >= 0.9" not in report and "(d >= 0.9)" not in report
    assert "half the length of the d = 0.5 iso-line" in HISTORY_UNITS["crack_length_sharp"]
    assert "0.9" not in HISTORY_UNITS["crack_length_sharp"]
    docs = (ROOT / "docs" / "postprocessing.md").read_text()
    assert "d >= 0.9` band" not in docs and "half the length of the d = 0.5 iso-line" in docs


def test_stress_figure_says_the_peak_is_a_corner_singularity():
    from postprocess import plots

    x = np.linspace(0.0, 0.05, 11)
    fig = plots.stress_figure({"vol_strain": x, "sigma1_max_SE": 2e4 * x}, "vol_strain", strength_mpa=350.0)
    ax = fig.axes[0]
    title = ax.get_title().replace("\n", " ")
    assert "sharp particle corner" in title and "singularity" in title and "depends on the mesh" in title
    assert "The strength is a material value" in title
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("mesh-dependent" in label for label in labels)
    assert any("350 MPa (material value)" in label for label in labels)
    assert ax.get_ylabel() == "largest principal stress in the electrolyte (MPa)"
    # particles without corners: the peak is a mesh-dependent cell value, not a corner singularity
    assert plots.sharp_corners({"geometry": {"particles": {"shape": "polygon"}}})
    assert not plots.sharp_corners({"geometry": {"particles": {"shape": "polygon", "corner_radius": 1e-7}}})
    assert not plots.sharp_corners({"geometry": {"particles": {"shape": "sphere"}}})
    fig = plots.stress_figure({"vol_strain": x, "sigma1_max_SE": 2e4 * x}, "vol_strain", 350.0, sharp=False)
    title = fig.axes[0].get_title().replace("\n", " ")
    assert "corner" not in title and "largest cell value" in title and "depends on the mesh" in title


def test_report_of_a_galvanostatic_run_has_units_and_no_placeholders(small_run, tmp_path):
    from postprocess.report import post_run

    run = fabricate_run(tmp_path / "cycled", small_run,
                        extra={"voltage": lambda x: 4.2 - 0.8 * x, "capacity": lambda x: 1.5 * x,
                               "kappa_eff_rel": lambda x: 1.0 - 0.5 * x})
    case = yaml.safe_load((run / "case.yaml").read_text())
    case["loading"] = {"type": "galvanostatic", "c_rate": 1.0, "current_density": None, "v_min": 3.5, "v_max": 4.3,
                       "protocol": [{"mode": "discharge", "duration": None}, {"mode": "rest", "duration": 600.0},
                                    {"mode": "charge", "c_rate": 0.5}],
                       "cycles": 1, "initial_lithiation": 0.27}
    (run / "case.yaml").write_text(yaml.safe_dump(case, sort_keys=False))
    (run / "summary.json").unlink()  # an incomplete run: the units come from the solver's table
    post_run(run, steps=["none"])
    report = (run / "plots" / "report.md").read_text()
    assert_every_number_has_a_unit(report)
    assert "path" not in report and "steps per segment" not in report
    assert ("| loading | galvanostatic, current 1C, cut-offs 3.5 V (discharge) and 4.3 V (charge), initial "
            "lithium fraction x = 0.27, protocol: discharge; rest for 600 s; charge at 0.5C |") in report
    assert "| capacity passed in the last protocol segment | 1.5 | mAh/cm^2 |" in report
    assert "| voltage | 3.4 | V |" in report
    assert "um per unit volumetric strain" in report


def test_damage_is_drawn_on_the_damageable_phases_only(tmp_path):
    """Particle cells show their flat colour even where their nodes carry damage (no
    saw-tooth of cell-averaged nodal damage along the particle edges)."""
    from matplotlib.colors import to_rgb

    from postprocess.fields import PARTICLE_COLOUR, field_figure, phase_masks, read_field_file

    write_damage_fields(tmp_path / "fields.xdmf")
    ff = read_field_file(tmp_path / "fields.h5")
    phase, _ = ff.values("phase", 3600.0)
    masks = phase_masks(phase, damageable=[1])
    assert masks["damageable"].sum() + masks["particles"].sum() == phase.size
    assert np.array_equal(masks["damageable"], phase == 1) and np.array_equal(masks["particles"], phase == 2)
    d, _ = ff.values("damage", 3600.0)
    in_particles = np.unique(ff.cells[masks["particles"]][:, :3])
    assert d[in_particles].max() > 0.9  # the fabricated band runs into the particle

    fig = field_figure(ff, 3600.0, damageable=[1])
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3] / 255.0
    ax = fig.axes[0]

    def pixel(x, y):
        px, py = ax.transData.transform((x, y))
        return image[int(round(image.shape[0] - py)), int(round(px))]

    grey = np.array(to_rgb(PARTICLE_COLOUR))
    for point in ((7.0, 5.0), (7.6, 5.0), (6.4, 5.0), (5.0, 5.0)):  # inside the particle, in and off the band
        assert np.abs(pixel(*point) - grey).max() < 0.02, point
    r, g, b = pixel(9.1, 5.0)  # the band in the electrolyte: dark red
    assert r > 0.35 and g < 0.15 and b < 0.15
    assert np.all(pixel(9.1, 1.5) > 0.9)  # intact electrolyte: (nearly) white


def test_stress_colour_scale_is_fixed_over_the_series(tmp_path):
    from postprocess.fields import field_figure, read_field_file, series_limits

    write_damage_fields(tmp_path / "fields.xdmf")
    ff = read_field_file(tmp_path / "fields.h5")
    limits = series_limits(ff, "max_principal")
    assert limits["range"][0] == pytest.approx(-limits["range"][1])
    assert limits["extremes"] == pytest.approx((-300.0, 600.0), rel=0.05)  # MPa, at the last output
    norms = []
    for t in ff.times[1:]:
        mesh = [c for c in field_figure(ff, t).axes[1].collections if c.get_array() is not None][0]
        norms.append((mesh.norm.vmin, mesh.norm.vmax))
    assert norms[0] == norms[1] == pytest.approx(limits["range"])
    assert series_limits(ff, "damage")["range"] == (0.0, 1.0)


def test_merged_xdmf_holds_every_field_at_every_step(tmp_path):
    """fields_merged.xdmf: one temporal collection whose every time step is one grid with
    all the attributes, pointing at the HDF5 datasets of fields.xdmf."""
    import xml.etree.ElementTree as ET

    from solver.runs.writers import merge_xdmf

    info = write_damage_fields(tmp_path / "fields.xdmf")
    merged = merge_xdmf(tmp_path / "fields.xdmf")
    assert merged == tmp_path / "fields_merged.xdmf"
    original = ET.parse(tmp_path / "fields.xdmf").getroot().find("Domain")
    sources = {}
    for collection in original.findall("Grid[@CollectionType='Temporal']"):
        for grid in collection.findall("Grid"):
            t = float(grid.find("Time").get("Value"))
            for attribute in grid.findall("Attribute"):
                sources[(t, attribute.get("Name"))] = attribute.find("DataItem").text.strip()
    names = {"displacement", "damage", "phase", "max_principal", "von_mises"}
    assert {n for _, n in sources} == names

    domain = ET.parse(merged).getroot().find("Domain")
    (series,) = domain.findall("Grid")
    assert series.get("CollectionType") == "Temporal"
    steps = series.findall("Grid")
    assert [float(g.find("Time").get("Value")) for g in steps] == info["times"]
    for grid in steps:
        t = float(grid.find("Time").get("Value"))
        assert grid.find("Topology/DataItem").text.strip() == "fields.h5:/Mesh/mesh/topology"
        assert grid.find("Geometry/DataItem").text.strip() == "fields.h5:/Mesh/mesh/geometry"
        attributes = {a.get("Name"): a.find("DataItem").text.strip() for a in grid.findall("Attribute")}
        assert set(attributes) == names
        assert all(attributes[n] == sources[(t, n)] for n in names)


def test_a_run_writes_the_merged_xdmf(small_run):
    import xml.etree.ElementTree as ET

    merged = small_run / "fields_merged.xdmf"
    steps = ET.parse(merged).getroot().findall("Domain/Grid/Grid")
    assert len(steps) == 6
    for grid in steps:
        names = {a.get("Name") for a in grid.findall("Attribute")}
        assert {"displacement", "max_principal", "von_mises", "hydrostatic", "sigma_zz", "phase",
                "particle_id", "lithiation"} <= names


def test_post_errors_name_the_input(small_run, tmp_path):
    r = ssbfrac("post", tmp_path / "nothing")
    assert r.returncode == 2 and "nothing: no such directory" in r.stderr
    (tmp_path / "empty").mkdir()
    r = ssbfrac("post", tmp_path / "empty")
    assert r.returncode == 2 and "neither a run directory (no case.yaml) nor a sweep directory" in r.stderr
    broken = tmp_path / "broken"
    shutil.copytree(small_run, broken, ignore=shutil.ignore_patterns("plots"))
    (broken / "history.csv").write_text("step,accepted,load\n0,1,0\n1,1,zero\n2,1,0.5\n")
    r = ssbfrac("post", broken, "--steps", "none")
    assert r.returncode == 2
    assert f"{broken / 'history.csv'}: line 3: column load: 'zero' is not a number" in r.stderr
    r = ssbfrac("post", small_run, "--steps", "9")
    assert r.returncode == 2 and "--steps 9" in r.stderr and "6 output steps" in r.stderr


# --------------------------------------------------------------------------- a sweep
@pytest.fixture
def sweep(small_run, tmp_path):
    """Four runs of a 2 x 2 sweep (E_SE x seed): two complete, one failed, one incomplete."""
    root = tmp_path / "sweep"
    E = "materials.electrolyte.E"
    seed = "geometry.particles.seed"
    fabricate_run(root / "E15_s1", small_run, set_={E: 15e9, seed: 1})
    fabricate_run(root / "E150_s1", small_run, set_={E: 150e9, seed: 1}, expansion=0.05)
    fabricate_run(root / "E15_s2", small_run, "failed", set_={E: 15e9, seed: 2}, upto=20)
    fabricate_run(root / "E150_s2", small_run, "incomplete", set_={E: 150e9, seed: 2}, upto=40)
    return root


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_sweep_summary_from_case_files(sweep):
    from postprocess.sweep import RESULT_COLUMNS

    r = ssbfrac("post", sweep)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "4 runs (2 complete, 1 failed, 1 incomplete)" in r.stdout
    rows = {row["run"]: row for row in read_csv(sweep / "summary.csv")}
    header = list(read_csv(sweep / "summary.csv")[0])
    assert header == ["run", "geometry.particles.seed", "materials.electrolyte.E", *RESULT_COLUMNS]
    assert set(rows) == {"E15_s1", "E150_s1", "E15_s2", "E150_s2"}
    assert [rows[n]["status"] for n in ("E15_s1", "E150_s1", "E15_s2", "E150_s2")] == \
        ["complete", "complete", "failed", "incomplete"]
    assert float(rows["E150_s1"]["materials.electrolyte.E"]) == 150e9
    assert rows["E15_s1"]["geometry.particles.seed"] == "1"
    # complete runs: the fabricated curve (onset at |vol_strain| 0.02, 12 um at 0.05)
    assert float(rows["E15_s1"]["final_crack_length"]) == pytest.approx(12.0)
    assert float(rows["E15_s1"]["final_crack_length_sharp"]) == pytest.approx(9.6)
    assert float(rows["E15_s1"]["damaged_fraction"]) == pytest.approx(0.03)
    assert float(rows["E15_s1"]["onset_vol_strain"]) == pytest.approx(0.02, abs=0.0015)
    assert float(rows["E15_s1"]["onset_soc"]) == pytest.approx(1 - 0.02 / 0.075, abs=0.02)
    assert float(rows["E15_s1"]["stage_II_rate"]) == pytest.approx(400.0, rel=0.05)
    assert float(rows["E15_s1"]["wall_time_s"]) == 12.5
    # a smaller expansion reaches less of the curve (|vol_strain| up to 0.05)
    assert float(rows["E150_s1"]["final_crack_length"]) == pytest.approx(12.0)
    assert rows["E150_s1"]["saturation_crack_length"] == ""
    # failed and incomplete runs: what the history holds so far, and why
    assert "damage solve diverged" in rows["E15_s2"]["note"]
    assert rows["E15_s2"]["accepted_rows"] == "20"
    assert float(rows["E15_s2"]["final_crack_length"]) == pytest.approx(crack_at_row(19))
    assert rows["E150_s2"]["accepted_rows"] == "40"
    assert rows["E15_s1"]["capacity"] == ""
    for name in ("trends", "crack_curves"):
        for ext in ("png", "pdf"):
            assert_image(sweep / "plots" / f"{name}.{ext}")


def crack_at_row(i, n=61, expansion=0.075):
    return float(crack_curve(np.array([expansion * i / (n - 1)]))[0])


def test_sweep_parameters_from_sweep_yaml(sweep):
    from postprocess.sweep import post_sweep

    (sweep / "sweep.yaml").write_text(
        "base: cases/bucci2017.yaml\n"
        "parameters:\n"
        "  materials.electrolyte.E: [15e9, 150e9]\n"
        "  geometry.particles.seed: [1, 2]\n"
        "  materials.active.expansion: [0.075]\n")
    result = post_sweep(sweep)
    assert result["source"] == "sweep.yaml"
    assert result["parameters"] == ["materials.electrolyte.E", "geometry.particles.seed",
                                    "materials.active.expansion"]
    assert result["x"] == "materials.electrolyte.E"
    rows = read_csv(sweep / "summary.csv")
    assert len(rows) == 4 and all(float(r["materials.active.expansion"]) == 0.03 for r in rows)


def test_sweep_trends_average_over_seeds():
    from postprocess.sweep import trend_figure

    rows = [
        {"run": f"r{i}", "materials.electrolyte.E": E, "geometry.particles.seed": s, "status": "complete",
         "onset_vol_strain": 0.01 * k, "stage_II_rate": 100.0 * k, "final_crack_length": 10.0 * k + s,
         "final_crack_length_sharp": 8.0 * k}
        for i, (k, E, s) in enumerate([(1, 15e9, 1), (1, 15e9, 3), (2, 150e9, 1), (2, 150e9, 3)])
    ]
    fig = trend_figure(rows, ["materials.electrolyte.E", "geometry.particles.seed"], "materials.electrolyte.E")
    ax = fig.axes[2]  # final crack length
    assert ax.get_xscale() == "log"
    mean_line = [ln for ln in ax.get_lines() if ln.get_marker() == "o"][0]
    assert mean_line.get_xdata() == pytest.approx([15.0, 150.0])  # GPa
    assert mean_line.get_ydata() == pytest.approx([12.0, 22.0])  # mean over seeds 1 and 3
    spread = np.std([11.0, 13.0], ddof=1)  # error bars: sample standard deviation over the seeds
    low, high = mean_line.get_ydata() - spread, mean_line.get_ydata() + spread
    bars = [c for c in ax.collections if len(c.get_segments()) == 2][0].get_segments()
    ends = [y for seg in bars for y in seg[:, 1]]
    assert ends == pytest.approx([low[0], high[0], low[1], high[1]])


def test_fracture_map_means_over_seeds_and_counts_cracked_runs():
    from postprocess.sweep import MAP_CRACK_THRESHOLD, map_figure

    rows = []
    for e in (0.025, 0.075):
        for gc in (2.0, 8.0):
            for s, crack in ((1, 0.0 if e < 0.05 else 4.0), (2, 0.5 if e < 0.05 else 2.0 if gc > 4 else 6.0)):
                rows.append({"materials.active.expansion": e, "materials.electrolyte.fracture.Gc": gc,
                             "geometry.particles.seed": s, "status": "complete", "final_crack_length_sharp": crack})
    rows.append({"materials.active.expansion": 0.075, "materials.electrolyte.fracture.Gc": 2.0,
                 "geometry.particles.seed": 3, "status": "failed", "final_crack_length_sharp": 99.0})
    fig = map_figure(rows, "materials.active.expansion", "materials.electrolyte.fracture.Gc")
    ax = fig.axes[0]
    mean = np.asarray(ax.get_images()[0].get_array())
    assert mean.shape == (2, 2)  # rows: Gc, columns: expansion
    assert mean[0].tolist() == pytest.approx([0.25, 5.0]) and mean[1].tolist() == pytest.approx([0.25, 3.0])
    labels = sorted(t.get_text() for t in ax.texts)
    assert labels == sorted(["0.2\n0/2", "0.2\n0/2", "5.0\n2/2", "3.0\n2/2"])
    assert MAP_CRACK_THRESHOLD <= 2.0
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2.5", "7.5"]  # %
    assert ax.get_xlabel() == "materials.active.expansion (%)"


def test_field_outputs_cut_by_a_kill_are_left_out(tmp_path):
    """An output that not every function reached (a run killed while writing it) is left
    out and named; a file that HDF5 cannot open is an error that names it."""
    import h5py

    from postprocess.fields import read_field_file
    from postprocess.history import PostprocessError

    info = write_damage_fields(tmp_path / "fields.xdmf")
    with h5py.File(tmp_path / "fields.h5", "a") as h5:
        del h5["Function/von_mises/3600"]
    ff = read_field_file(tmp_path / "fields.h5")
    assert ff.times == [0.0, 1800.0] and ff.incomplete == [3600.0]
    assert all(3600.0 not in per for per in ff.keys.values())
    assert ff.values("damage", 1800.0)[0].shape == (info["points"],)
    broken = tmp_path / "broken.h5"
    broken.write_bytes((tmp_path / "fields.h5").read_bytes()[:2000])
    with pytest.raises(PostprocessError, match="broken.h5: not a readable HDF5 file"):
        read_field_file(broken)


def test_study_mean_and_95_percent_interval():
    """postprocess.bucci2017.mean_ci: Student-t interval of the finite values (closed form for
    1..5: mean 3, s = sqrt(2.5), t(0.975, 4) = 2.7764)."""
    from postprocess.bucci2017 import fmt, mean_ci

    m, ci, n = mean_ci([1.0, 2.0, 3.0, 4.0, 5.0, float("nan")])
    assert (m, n) == (3.0, 5) and ci == pytest.approx(2.7764451 * np.sqrt(2.5) / np.sqrt(5), rel=1e-6)
    assert mean_ci([2.0])[:2] == (2.0, pytest.approx(np.nan, nan_ok=True)) and mean_ci([])[2] == 0
    assert fmt(3.0, 1.96) == "3.00 +/- 1.96" and fmt(float("nan"), 0.1) == "-"


def test_benchmark_curves_peak_units_and_published_difference(tmp_path):
    """postprocess.benchmarks: a run's reaction force (N/m) becomes kN for the 1 mm thick
    specimen, its peak is compared with the published one, a rejected step is left out of
    the curve but its iterations are counted, and a run without summary.json is marked
    not complete."""
    from postprocess import benchmarks as bm

    run = tmp_path / "sent_like"
    run.mkdir()
    (run / "case.yaml").write_text("loading: {type: displacement, direction: [0.0, 1.0]}\n"
                                   "fracture: {model: AT2, split: none}\n")
    rows = ["step,accepted,displacement,reaction_force,crack_length,crack_length_sharp,iterations,newton_iterations,wall",
            "0,1,0,0,0,0,0,0,0",
            "1,1,2.0,300000,1,0,1,2,1",
            "2,1,4.0,600000,2,0,1,2,2",
            "3,0,5.0,,,,2000,3,9",          # rejected: not on the curve
            "4,1,4.5,650000,5,3,7,1,10",
            "5,1,5.0,1000,400,390,250,0,20"]
    (run / "history.csv").write_text("\n".join(rows) + "\n")
    r = bm.run_record(run)
    assert r["test"] == "tension" and r["model"] == "AT2, no split" and not r["complete"]
    assert r["peak_kN"] == pytest.approx(0.65) and r["peak_at_mm"] == pytest.approx(4.5e-3)
    assert r["difference"] == pytest.approx(0.65 / bm.PUBLISHED["tension"]["peak_kN"] - 1)
    assert r["iterations"] == 2259 and r["newton"] == 8 and r["rejected"] == 1
    assert r["median_growth_iterations"] == pytest.approx(128.5) and r["max_iterations"] == 250
    assert bm.main([str(run), "--out", str(tmp_path / "fig")]) == 0
    assert (tmp_path / "fig.png").stat().st_size > 0
    assert "not complete" in (tmp_path / "fig.md").read_text()


def test_dimension_comparison_stereology_and_energy_density(tmp_path):
    """postprocess.dimension: a 3D crack area S in a volume V is compared as the trace
    length per area of a plane section, (pi / 4) S / V, with a 2D run's crack length per
    area; energies per volume in J/m^3 in both (nJ/um^3 = 1e9 J/m^3); the last discharge row
    is the end of the discharge; a run without summary.json is marked not complete."""
    from postprocess import dimension as dm

    def run(name, size, rows):
        d = tmp_path / name
        d.mkdir()
        (d / "case.yaml").write_text(f"geometry: {{size: {size}}}\n")
        head = "step,accepted,time,x,mode,capacity_fraction,voltage,kappa_eff_rel,crack_length,fracture_energy," \
               "damaged_fraction,d_max,wall"
        (d / "history.csv").write_text("\n".join([head] + rows) + "\n")
        return d

    r3 = run("three", "[2.0e-6, 2.0e-6, 2.0e-6]", [
        "0,1,0,0.3,discharge,0,4.2,0.5,0,0,0,0,0",
        "1,1,10,0.6,discharge,0.3,3.8,0.45,8.0,4.0,0.01,1.0,5",
        "2,1,20,0.5,charge,0.2,4.0,0.44,8.0,4.0,0.01,1.0,9"])
    r2 = run("two", "[2.0e-6, 4.0e-6]", [
        "0,1,0,0.3,discharge,0,4.2,0.5,0,0,0,0,0",
        "1,0,10,0.6,discharge,0.3,3.8,0.45,99,99,0,0,5",  # rejected
        "2,1,10,0.6,discharge,0.3,3.8,0.40,4.0,2.0,0.0,0.5,6"])
    a, b = dm.run_record(r3), dm.run_record(r2)
    assert a["dim"] == 3 and a["end_discharge"] == 1 and not a["complete"]
    assert a["trace"][1] == pytest.approx(math.pi / 4 * 8.0 / 8.0)
    assert a["energy"][1] == pytest.approx(4.0 / 8.0 * 1e9)
    assert b["trace"][1] == pytest.approx(4.0 / 8.0) and b["energy"][1] == pytest.approx(2.0 / 8.0 * 1e9)
    assert a["onset_x"] == pytest.approx(0.6) and math.isnan(b["onset_x"])
    assert dm.main([str(r3), str(r2), "--out", str(tmp_path / "dim")]) == 0
    text = (tmp_path / "dim.md").read_text()
    assert f"| {0.5 / (math.pi / 4):.2f} |" in text and "not complete" in text
    assert (tmp_path / "dim.png").stat().st_size > 0
