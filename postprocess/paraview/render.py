"""pvbatch script: screenshots of a run's fields and a ParaView state file.

    pvbatch --force-offscreen-rendering render.py PLAN.json

Run it through ``ssbfrac paraview RUN_DIR``, which writes the plan (what to draw, with
colour limits fixed over the whole series, the captions and the phases), finds pvbatch,
cleans the Python environment and starts a virtual X server when there is no display.

Pipeline (the state file ``fields.pvsm`` holds the same, for the ParaView GUI):

* ``fields_merged.xdmf``: *Xdmf3ReaderS* on the merged series of the run, one dataset
  carrying every field at every time step (no merge filter). The reader refers to it by
  a path relative to the output directory (``../fields_merged.xdmf`` in
  RUN_DIR/paraview/), so that a moved or copied run directory still opens.
* ``<stress> in MPa``: one *Calculator* per stress field, ``<stress>_MPa = 1000 <stress>``
  (the file holds GPa; the plots and pictures use MPa).
* ``phase <code> (<name>)``: a *Threshold* per phase. Damage is drawn on the cells of
  the damageable phases only; the particles are flat grey, other phases flat light blue.
* ``particle outlines``: the boundary edges of the particle cells (2D), drawn black.

Each picture ``<field>_<output index>.png`` has axes in um, the particle outlines, a
caption (field and unit, output, time, state of charge) and a colour scale whose limits
are the same for every output of that field. The last stdout line is
``SSBFRAC_JSON {...}`` with what was written and what the dataset contains.
"""

import builtins
import json
import os
import sys
import textwrap

from paraview import servermanager as sm
from paraview import simple as pv

# pvbatch puts VTK's array functions (max, abs, ...) in the script's namespace: use Python's own
_max, _abs = builtins.max, builtins.abs

#: flat colours of the phases that carry no damage (the same as the matplotlib pictures)
PARTICLE_COLOUR = [0.72, 0.72, 0.72]
OTHER_PHASE_COLOUR = [0.86, 0.91, 0.96]
#: colours beyond a clipped colour scale
ABOVE_COLOUR = [0.30, 0.0, 0.30]
BELOW_COLOUR = [0.0, 0.13, 0.28]
BLACK = [0.0, 0.0, 0.0]


def dataset_info(source, time):
    """Points, cells, arrays (name -> components) and bounds of a source's output."""
    source.UpdatePipeline(time)
    data = sm.Fetch(source)

    def arrays(attributes):
        return {attributes.GetArrayName(i): attributes.GetArray(i).GetNumberOfComponents()
                for i in range(attributes.GetNumberOfArrays())}

    return {
        "class": data.GetClassName(),
        "points": data.GetNumberOfPoints(),
        "cells": data.GetNumberOfCells(),
        "point_arrays": arrays(data.GetPointData()),
        "cell_arrays": arrays(data.GetCellData()),
        "bounds": list(data.GetBounds()),
    }


def reverse_colours(lut):
    """Reverse a colour map in place (RGBPoints is a flat list of x, r, g, b)."""
    pts = list(lut.RGBPoints)
    xs, colours = pts[0::4], [pts[i + 1:i + 4] for i in range(0, len(pts), 4)]
    lo, hi = xs[0], xs[-1]
    reversed_pts = []
    for x, c in sorted(zip((lo + hi - x for x in xs), colours)):
        reversed_pts += [x, *c]
    lut.RGBPoints = reversed_pts


def lookup_table(spec, view):
    """The colour map of a field: preset, limits fixed for the whole series (never
    rescaled with time), colours beyond clipped limits, and its scalar bar."""
    lut = pv.GetColorTransferFunction(spec["array"])
    lut.ApplyPreset(spec["colormap"].lstrip("-"), True)
    if spec["colormap"].startswith("-"):
        reverse_colours(lut)
    lo, hi = spec["range"]
    lut.AutomaticRescaleRangeMode = "Never"
    lut.RescaleTransferFunction(lo, hi)
    pv.GetOpacityTransferFunction(spec["array"]).RescaleTransferFunction(lo, hi)
    xlo, xhi = spec["extremes"]
    lut.UseAboveRangeColor = int(xhi > hi)  # values beyond a clipped scale get their own colour
    lut.AboveRangeColor = ABOVE_COLOUR
    lut.UseBelowRangeColor = int(xlo < lo)
    lut.BelowRangeColor = BELOW_COLOUR
    bar = pv.GetScalarBar(lut, view)
    bar.Title = f"{spec['title']} ({spec['unit']})" if spec["unit"] else spec["title"]
    bar.ComponentTitle = ""
    bar.TitleColor = BLACK
    bar.LabelColor = BLACK
    bar.TitleFontSize = 16
    bar.LabelFontSize = 14
    bar.WindowLocation = "Any Location"
    bar.Orientation = "Vertical"
    bar.Position = [0.80, 0.2]
    bar.ScalarBarLength = 0.6
    bar.RangeLabelFormat = "%.4g"
    bar.AddRangeLabels = 1
    return lut


def setup_camera(view, bounds, dimension):
    """A plane seen from above, the domain on the left with room for the axes titles and
    labels, the scalar bar on the right; a volume seen obliquely."""
    x0, x1, y0, y1, _, _ = bounds
    width, height = x1 - x0, y1 - y0
    if dimension == 3:
        view.InteractionMode = "3D"
        view.ResetCamera()
        pv.GetActiveCamera().Elevation(25)
        pv.GetActiveCamera().Azimuth(30)
        view.ResetCamera()
        return
    aspect = view.ViewSize[0] / view.ViewSize[1]
    # the domain takes 62 % of the width and 75 % of the height of the picture
    scale = 0.5 * _max(height / 0.75, width / (0.62 * aspect))  # half the visible height
    visible_width = 2.0 * scale * aspect
    left = x0 - 0.11 * visible_width  # room for the y axis title and labels
    centre = [left + 0.5 * visible_width, 0.5 * (y0 + y1) - 0.02 * 2.0 * scale]
    view.InteractionMode = "2D"
    view.CameraParallelProjection = 1
    view.CameraPosition = [centre[0], centre[1], 10.0 * _max(width, height)]
    view.CameraFocalPoint = [centre[0], centre[1], 0.0]
    view.CameraViewUp = [0.0, 1.0, 0.0]
    view.CameraParallelScale = scale


def axes_in_um(view, dimension):
    """Axes around the data, titled in um (the mesh coordinates are in um)."""
    grid = view.AxesGrid
    grid.Visibility = 1
    grid.XTitle, grid.YTitle, grid.ZTitle = "x (um): separator -> collector", "y (um)", "z (um)"
    for axis in "XYZ":
        setattr(grid, f"{axis}TitleColor", BLACK)
        setattr(grid, f"{axis}LabelColor", BLACK)
        setattr(grid, f"{axis}TitleFontSize", 15)
        setattr(grid, f"{axis}LabelFontSize", 13)
    grid.GridColor = BLACK
    grid.ShowGrid = 0
    grid.ShowEdges = 1
    grid.ShowTicks = 1
    if dimension == 2:  # one face (the plane), labelled at the bottom and on the left
        grid.FacesToRender = 4  # min-XY
        grid.AxesToLabel = 1 | 2  # min-X, min-Y


def text(name, location, size, view):
    source = pv.Text(registrationName=name)
    display = pv.Show(source, view)
    display.FontSize = size
    display.Color = BLACK
    display.WindowLocation = location
    display.Justification = "Left"
    return source, display


def main(argv):
    with open(argv[0]) as fh:
        plan = json.load(fh)
    out = plan["out"]
    os.makedirs(out, exist_ok=True)
    os.chdir(out)  # the state refers to the data by a path relative to the output directory

    reader = pv.Xdmf3ReaderS(registrationName="fields_merged.xdmf", FileName=[plan["data"]])
    reader.UpdatePipelineInformation()
    times = list(reader.TimestepValues) if reader.TimestepValues else [0.0]
    if not isinstance(times, list):
        times = [times]
    if len(times) != len(plan["times"]):
        raise SystemExit(f"render.py: ParaView reads {len(times)} time steps from {plan['data']}, "
                         f"the HDF5 file has {len(plan['times'])}")
    steps = plan["steps"]
    last = times[steps[-1]]

    # the stresses in MPa, as in the plots
    fields = reader
    first = dataset_info(reader, last)
    for name in plan["stress_fields"]:
        if name in first["cell_arrays"] or name in first["point_arrays"]:
            fields = pv.Calculator(registrationName=f"{name} in MPa", Input=fields)
            fields.AttributeType = "Cell Data" if name in first["cell_arrays"] else "Point Data"
            fields.ResultArrayName = f"{name}_MPa"
            fields.Function = f"{name}*1000"
    info = dataset_info(fields, last)
    arrays = set(info["point_arrays"]) | set(info["cell_arrays"])
    specs = [s for s in plan["fields"] if s["array"] in arrays]

    view = pv.CreateView("RenderView")
    view.ViewSize = list(plan["size"])
    view.OrientationAxesVisibility = 0
    view.Background = [1.0, 1.0, 1.0]
    try:  # ParaView >= 5.10: the background follows the palette unless told otherwise
        view.UseColorPaletteForBackground = 0
    except AttributeError:
        pass
    dimension = plan["dimension"]

    def flat(display):
        display.SetRepresentationType("Surface")
        if dimension == 2:  # flat colours, no shading, for a plane
            display.Ambient = 1.0
            display.Diffuse = 0.0

    whole = pv.Show(fields, view)
    flat(whole)
    phase_displays = []  # (display, damageable)
    for code, name in plan["phases"]:
        part = pv.Threshold(registrationName=f"phase {code} ({name})", Input=fields)
        part.Scalars = ["CELLS", "phase"]
        part.LowerThreshold, part.UpperThreshold = code - 0.5, code + 0.5
        part.ThresholdMethod = "Between"
        display = pv.Show(part, view)
        flat(display)
        damageable = code in plan["damageable"]
        pv.ColorBy(display, None)
        display.AmbientColor = display.DiffuseColor = (
            PARTICLE_COLOUR if code in plan["particle_phases"] else OTHER_PHASE_COLOUR)
        phase_displays.append((display, damageable))
    outline_display = None
    particle_codes = [c for c, _ in plan["phases"] if c in plan["particle_phases"]]
    if dimension == 2 and particle_codes:
        particles = pv.Threshold(registrationName="particles", Input=fields)
        particles.Scalars = ["CELLS", "phase"]
        particles.LowerThreshold, particles.UpperThreshold = min(particle_codes) - 0.5, max(particle_codes) + 0.5
        particles.ThresholdMethod = "Between"
        surface = pv.ExtractSurface(registrationName="particle surfaces", Input=particles)
        edges = pv.FeatureEdges(registrationName="particle outlines", Input=surface)
        edges.BoundaryEdges, edges.FeatureEdges, edges.NonManifoldEdges, edges.ManifoldEdges = 1, 0, 0, 0
        outline_display = pv.Show(edges, view)
        pv.ColorBy(outline_display, None)
        outline_display.AmbientColor = outline_display.DiffuseColor = BLACK
        outline_display.LineWidth = 1.5
        outline_display.Ambient, outline_display.Diffuse = 1.0, 0.0

    title, _ = text("caption", "Upper Left Corner", 15, view)
    note, note_display = text("note", "Lower Left Corner", 12, view)
    setup_camera(view, info["bounds"], dimension)
    axes_in_um(view, dimension)

    def show(spec):
        """Colour by one field: damage on the damageable phases only, the rest on the whole mesh."""
        masked = spec["mask_by_phase"] and phase_displays
        assoc = "POINTS" if spec["array"] in info["point_arrays"] else "CELLS"
        for display in [whole] + [d for d, _ in phase_displays]:
            display.SetScalarBarVisibility(view, False)
        whole.Visibility = 0 if masked else 1
        for display, damageable in phase_displays:
            display.Visibility = 1 if masked else 0
            pv.ColorBy(display, (assoc, spec["array"]) if masked and damageable else None)
        if not masked:
            pv.ColorBy(whole, (assoc, spec["array"]))
        lut = lookup_table(spec, view)  # after ColorBy, which rescales to the data at hand
        if spec["components"] > 1:
            lut.VectorMode = "Magnitude"
        target = next((d for d, dmg in phase_displays if dmg), whole) if masked else whole
        target.SetScalarBarVisibility(view, True)
        note.Text = "\n".join(textwrap.wrap(spec["note"], 150))
        note_display.Visibility = 1 if spec["note"] else 0

    images = []
    for spec in specs:
        show(spec)
        for k in steps:
            view.ViewTime = times[k]
            title.Text = f"{spec['title']} ({spec['unit']})\n{plan['captions'][str(k)]}" if spec["unit"] else \
                f"{spec['title']}\n{plan['captions'][str(k)]}"
            path = os.path.join(out, f"{spec['name']}_{k:04d}.png")
            pv.SaveScreenshot(path, view, ImageResolution=list(plan["size"]))
            images.append(path)

    # the state for the GUI: the first field at the last requested output
    if specs:
        show(specs[0])
        title.Text = (f"{specs[0]['title']} ({specs[0]['unit']}): colour another field in the toolbar; "
                      "damage is drawn on the 'phase' thresholds")
    scene = pv.GetAnimationScene()
    scene.UpdateAnimationUsingDataTimeSteps()
    scene.AnimationTime = last
    view.ViewTime = last
    state = os.path.join(out, "fields.pvsm")
    pv.SaveState(state)

    print("SSBFRAC_JSON " + json.dumps({
        "data": plan["data"], "timesteps": times, "steps": steps, "fields": [s["name"] for s in specs],
        "images": images, "state": state, "dataset": first, "dataset_mpa": info,
        "captions": {str(k): plan["captions"][str(k)] for k in steps},
        "ranges": {s["name"]: s["range"] for s in specs},
    }))


if __name__ == "__main__":
    main(sys.argv[1:])
