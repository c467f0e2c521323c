"""pvbatch script: screenshots of a run's fields and a ParaView state file.

    pvbatch --force-offscreen-rendering render.py RUN_DIR/fields.xdmf --out DIR
            [--steps 0 -1 | all] [--fields damage max_principal von_mises] [--size 1200 900]

Run it through ``ssbfrac paraview RUN_DIR`` (which finds pvbatch, cleans the Python
environment and starts a virtual X server when there is no display).

Pipeline: ``Xdmf3ReaderS`` reads fields.xdmf. DOLFINx writes every function as its own
grid of the same mesh, so the reader delivers one piece per function, each carrying
one array; the "merge fields" filter (a Programmable Filter) copies the arrays of all
pieces onto one unstructured grid, so that a single dataset carries every field:

    displacement  point data, 3 components, um
    damage        point data, 0 (intact) .. 1 (broken), when fracture is enabled
    max_principal, von_mises, hydrostatic, sigma_zz   cell data, GPa
    lithiation    cell data, lithium fraction x (-)
    phase         cell data, 1 electrolyte, 2 active material
    particle_id   cell data, particle index (-1 in the electrolyte)
    time          s (the time values of the series)

For each requested output step (index into the time values, negative from the end) and
each requested field present in the file, a PNG ``<field>_<index>.png`` is written.
``fields.pvsm`` holds the pipeline (reader, merge filter, coloured display) for the
ParaView GUI (File > Load State). The last stdout line is ``SSBFRAC_JSON {...}`` with
what was written and what the merged dataset contains.
"""

import argparse
import builtins
import json
import os
import sys

from paraview import servermanager as sm
from paraview import simple as pv

# pvbatch puts VTK's array functions (max, abs, ...) in the script's namespace: use Python's own
_max, _abs = builtins.max, builtins.abs

#: the Programmable Filter script that merges the per-function pieces into one grid
MERGE_SCRIPT = """
inp = self.GetInputDataObject(0, 0)
out = self.GetOutputDataObject(0)
if inp.IsA("vtkCompositeDataSet"):
    it = inp.NewIterator()
    it.UnRegister(None)
    it.InitTraversal()
    pieces = []
    while not it.IsDoneWithTraversal():
        pieces.append(it.GetCurrentDataObject())
        it.GoToNextItem()
else:
    pieces = [inp]
pieces = [p for p in pieces if p is not None and p.GetNumberOfCells() > 0]
if pieces:
    out.ShallowCopy(pieces[0])
    for piece in pieces[1:]:
        for data, target in ((piece.GetPointData(), out.GetPointData()), (piece.GetCellData(), out.GetCellData())):
            for i in range(data.GetNumberOfArrays()):
                target.AddArray(data.GetArray(i))
"""

#: colouring of the fields: (association, unit, colour map, range rule). A colour map
#: name starting with "-" is used reversed; the range rules are "unit" (0..1),
#: "symmetric" (-a..a around zero) and "data" (the values at that time)
FIELD_STYLE = {
    "damage": ("POINTS", "-", "-Reds", "unit"),
    "displacement": ("POINTS", "um", "Viridis (matplotlib)", "data"),
    "max_principal": ("CELLS", "GPa", "Cool to Warm", "symmetric"),
    "von_mises": ("CELLS", "GPa", "Viridis (matplotlib)", "data"),
    "hydrostatic": ("CELLS", "GPa", "Cool to Warm", "symmetric"),
    "sigma_zz": ("CELLS", "GPa", "Cool to Warm", "symmetric"),
    "lithiation": ("CELLS", "-", "Viridis (matplotlib)", "data"),
    "phase": ("CELLS", "-", "Viridis (matplotlib)", "data"),
    "particle_id": ("CELLS", "-", "Viridis (matplotlib)", "data"),
}


def parse_args(argv):
    p = argparse.ArgumentParser(prog="render.py", description="screenshots and a state file of fields.xdmf")
    p.add_argument("xdmf", help="fields.xdmf of a run")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--steps", nargs="+", default=["-1"], help="output indices (negative from the end) or 'all'")
    p.add_argument("--fields", nargs="+", default=["damage", "max_principal", "von_mises"])
    p.add_argument("--size", nargs=2, type=int, default=[1200, 900], metavar=("WIDTH", "HEIGHT"))
    return p.parse_args(argv)


def select_steps(requested, count):
    """Indices into the time values: 'all', or integers (negative from the end)."""
    if any(r == "all" for r in requested):
        return list(range(count))
    chosen = []
    for r in requested:
        k = int(r)
        if not -count <= k < count:
            raise SystemExit(f"render.py: step {k} is out of range: the file has {count} output steps "
                             f"(0..{count - 1}, or negative from the end)")
        k = k % count
        if k not in chosen:
            chosen.append(k)
    return chosen


def merged_arrays(merge, time):
    """Points, cells, arrays (name -> components) and bounds of the merged dataset."""
    merge.UpdatePipeline(time)
    data = sm.Fetch(merge)

    def arrays(attributes):
        return {attributes.GetArrayName(i): attributes.GetArray(i).GetNumberOfComponents()
                for i in range(attributes.GetNumberOfArrays())}

    return {
        "points": data.GetNumberOfPoints(),
        "cells": data.GetNumberOfCells(),
        "point_arrays": arrays(data.GetPointData()),
        "cell_arrays": arrays(data.GetCellData()),
        "bounds": list(data.GetBounds()),
    }


def colour(display, view, field, info, value_range):
    """Colour the display by ``field`` (style of FIELD_STYLE) over ``value_range``, with
    a scalar bar titled with the field's unit."""
    _, unit, preset, rule = FIELD_STYLE.get(field, (None, "", "Viridis (matplotlib)", "data"))
    assoc = "POINTS" if field in info["point_arrays"] else "CELLS"
    if display.ColorArrayName[1]:
        display.SetScalarBarVisibility(view, False)  # the bar of the previous field
    pv.ColorBy(display, (assoc, field))
    lut = pv.GetColorTransferFunction(field)
    lut.ApplyPreset(preset.lstrip("-"), True)
    if preset.startswith("-"):
        reverse_colours(lut)
    lo, hi = value_range
    if rule == "unit":
        lo, hi = 0.0, 1.0
    elif rule == "symmetric":
        a = _max(_abs(lo), _abs(hi), 1e-6)  # a field that is zero everywhere shows as zero
        lo, hi = -a, a
    elif hi - lo < 1e-6 * _max(_abs(lo), _abs(hi), 1.0):
        lo, hi = lo - 0.5, hi + 0.5
    lut.RescaleTransferFunction(lo, hi)
    pv.GetOpacityTransferFunction(field).RescaleTransferFunction(lo, hi)
    display.SetScalarBarVisibility(view, True)
    bar = pv.GetScalarBar(lut, view)
    bar.Title = f"{field} ({unit})" if unit else field
    bar.ComponentTitle = ""
    bar.TitleColor = [0.0, 0.0, 0.0]
    bar.LabelColor = [0.0, 0.0, 0.0]
    bar.TitleFontSize = 18
    bar.LabelFontSize = 16
    bar.WindowLocation = "Any Location"
    bar.Orientation = "Vertical"
    bar.Position = [0.82, 0.25]
    bar.RangeLabelFormat = "%.3g"
    bar.ScalarBarLength = 0.5


def reverse_colours(lut):
    """Reverse a colour map in place (RGBPoints is a flat list of x, r, g, b)."""
    pts = list(lut.RGBPoints)
    xs, colours = pts[0::4], [pts[i + 1:i + 4] for i in range(0, len(pts), 4)]
    lo, hi = xs[0], xs[-1]
    reversed_pts = []
    for x, c in sorted(zip((lo + hi - x for x in xs), colours)):
        reversed_pts += [x, *c]
    lut.RGBPoints = reversed_pts


def array_range(merge, field, time):
    """(min, max) of a field at a time (of its magnitude for vectors)."""
    merge.UpdatePipeline(time)
    data = sm.Fetch(merge)
    arr = data.GetPointData().GetArray(field) or data.GetCellData().GetArray(field)
    lo, hi = arr.GetRange(-1 if arr.GetNumberOfComponents() > 1 else 0)  # -1: magnitude
    return float(lo), float(hi)


def setup_camera(view, info):
    """A plane seen from above, filling the left three quarters of the image (the scalar
    bar takes the right); a volume seen obliquely."""
    x0, x1, y0, y1, z0, z1 = info["bounds"]
    width, height = x1 - x0, y1 - y0
    if _abs(z1 - z0) > 1e-12 * _max(1.0, width, height):
        view.InteractionMode = "3D"
        view.ResetCamera()
        pv.GetActiveCamera().Elevation(25)
        pv.GetActiveCamera().Azimuth(30)
        view.ResetCamera()
        return
    aspect = view.ViewSize[0] / view.ViewSize[1]
    scale = 0.55 * _max(height, width / (0.75 * aspect))  # half the visible height
    shift = 0.5 * (2.0 * scale * aspect - width) - 0.05 * width  # data to the left
    centre = [0.5 * (x0 + x1) + shift, 0.5 * (y0 + y1)]
    view.InteractionMode = "2D"
    view.CameraParallelProjection = 1
    view.CameraPosition = [centre[0], centre[1], 10.0 * _max(width, height)]
    view.CameraFocalPoint = [centre[0], centre[1], 0.0]
    view.CameraViewUp = [0.0, 1.0, 0.0]
    view.CameraParallelScale = scale


def main(argv):
    args = parse_args(argv)
    xdmf = os.path.abspath(args.xdmf)
    if not os.path.isfile(xdmf):
        raise SystemExit(f"render.py: {xdmf}: file not found")
    os.makedirs(args.out, exist_ok=True)

    reader = pv.Xdmf3ReaderS(registrationName="fields.xdmf", FileName=[xdmf])
    reader.UpdatePipelineInformation()
    times = list(reader.TimestepValues) if reader.TimestepValues else [0.0]
    if not isinstance(times, list):
        times = [times]
    merge = pv.ProgrammableFilter(registrationName="merge fields", Input=reader)
    merge.OutputDataSetType = "vtkUnstructuredGrid"
    merge.Script = MERGE_SCRIPT
    steps = select_steps(args.steps, len(times))
    info = merged_arrays(merge, times[steps[-1]])
    available = set(info["point_arrays"]) | set(info["cell_arrays"])
    fields = [f for f in args.fields if f in available]
    missing = [f for f in args.fields if f not in available]

    view = pv.CreateView("RenderView")
    view.ViewSize = list(args.size)
    view.OrientationAxesVisibility = 0
    view.Background = [1.0, 1.0, 1.0]
    try:  # ParaView >= 5.10: the background follows the palette unless told otherwise
        view.UseColorPaletteForBackground = 0
    except AttributeError:
        pass
    display = pv.Show(merge, view)
    display.SetRepresentationType("Surface")
    label = pv.Text(registrationName="label")
    label_display = pv.Show(label, view)
    label_display.FontSize = 14
    label_display.Color = [0.0, 0.0, 0.0]
    label_display.WindowLocation = "Upper Left Corner"
    setup_camera(view, info)
    if view.InteractionMode == "2D":  # flat colours, no shading, for a plane
        display.Ambient = 1.0
        display.Diffuse = 0.0

    images = []
    for field in fields:
        for k in steps:
            t = times[k]
            view.ViewTime = t
            colour(display, view, field, info, array_range(merge, field, t))
            label.Text = f"{field}   output {k}   t = {t:g} s"
            path = os.path.join(os.path.abspath(args.out), f"{field}_{k:04d}.png")
            pv.SaveScreenshot(path, view, ImageResolution=list(args.size))
            images.append(path)

    # the state for the GUI: coloured by the first field, at the last requested step
    if fields:
        view.ViewTime = times[steps[-1]]
        colour(display, view, fields[0], info, array_range(merge, fields[0], times[steps[-1]]))
        label.Text = f"{fields[0]}   (change the colouring in the toolbar; time in s)"
    scene = pv.GetAnimationScene()
    scene.UpdateAnimationUsingDataTimeSteps()
    scene.AnimationTime = times[steps[-1]]
    state = os.path.join(os.path.abspath(args.out), "fields.pvsm")
    pv.SaveState(state)

    print("SSBFRAC_JSON " + json.dumps({
        "xdmf": xdmf, "timesteps": times, "steps": steps, "fields": fields, "missing_fields": missing,
        "images": images, "state": state, "merged": info,
    }))


if __name__ == "__main__":
    main(sys.argv[1:])
