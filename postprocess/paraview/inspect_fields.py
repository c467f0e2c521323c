"""pvbatch script: open an XDMF file of a run and print what ParaView reads, as JSON.

    pvbatch --force-offscreen-rendering inspect_fields.py RUN_DIR/fields_merged.xdmf

Prints {"timesteps": [...], "blocks": [{"name", "points", "cells", "point_arrays",
"cell_arrays"}, ...]} for the last time step: one block with every field for
fields_merged.xdmf, one block per function for fields.xdmf (as DOLFINx writes it).
Used by the tests and by `ssbfrac paraview --inspect` (on fields_merged.xdmf).
"""

import json
import sys

from paraview import simple as pv
from paraview import servermanager as sm


def describe(path):
    reader = pv.Xdmf3ReaderS(FileName=[path])
    reader.UpdatePipelineInformation()
    times = list(reader.TimestepValues) if reader.TimestepValues else []
    if not isinstance(times, list):
        times = [times]
    reader.UpdatePipeline(times[-1] if times else 0.0)
    data = sm.Fetch(reader)
    blocks = []

    def visit(obj, name):
        if obj is None:
            return
        if obj.IsA("vtkMultiPieceDataSet"):
            for i in range(obj.GetNumberOfPieces()):
                visit(obj.GetPiece(i), name)
            return
        if obj.IsA("vtkMultiBlockDataSet"):
            for i in range(obj.GetNumberOfBlocks()):
                meta = obj.GetMetaData(i)
                bname = meta.Get(obj.NAME()) if meta is not None and meta.Has(obj.NAME()) else f"{name}/{i}"
                visit(obj.GetBlock(i), bname)
            return
        pd, cd = obj.GetPointData(), obj.GetCellData()
        blocks.append({
            "name": name,
            "points": obj.GetNumberOfPoints(),
            "cells": obj.GetNumberOfCells(),
            "point_arrays": {pd.GetArrayName(i): pd.GetArray(i).GetNumberOfComponents() for i in range(pd.GetNumberOfArrays())},
            "cell_arrays": {cd.GetArrayName(i): cd.GetArray(i).GetNumberOfComponents() for i in range(cd.GetNumberOfArrays())},
        })

    visit(data, "root")
    return {"timesteps": times, "blocks": blocks}


if __name__ == "__main__":
    print("SSBFRAC_JSON " + json.dumps(describe(sys.argv[1])))
