"""The field series of a run killed while writing: readable on disk after every output,
and its XDMF file put back from the checkpoint's copy on restart (solver.runs.restart)."""

from __future__ import annotations

import numpy as np

import solver  # noqa: F401


def _series(path, times=(0.0, 1.0, 2.0)):
    """fields.xdmf/.h5 with a P1 and a DG0 function at ``times``, written by FieldWriter
    and left open; returns the writer."""
    from dolfinx import fem, mesh
    from mpi4py import MPI

    from solver.runs.writers import FieldWriter

    domain = mesh.create_unit_square(MPI.COMM_SELF, 3, 3)
    f = fem.Function(fem.functionspace(domain, ("Lagrange", 1)), name="f")
    g = fem.Function(fem.functionspace(domain, ("DG", 0)), name="g")
    writer = FieldWriter(path, domain, [f, g])
    for t in times:
        f.x.array[:] = t
        writer.write(t)
    return writer


def _times(xdmf):
    import xml.etree.ElementTree as ET

    domain = ET.parse(xdmf).getroot().find("Domain")
    return {g.get("Name"): [float(s.find("Time").get("Value")) for s in g.findall("Grid")]
            for g in domain.findall("Grid") if g.get("CollectionType") == "Temporal"}


def test_the_field_file_is_complete_on_disk_after_every_output(tmp_path):
    """A run killed between two outputs leaves a readable HDF5 file with every output so far."""
    import h5py

    writer = _series(tmp_path / "fields.xdmf")
    try:  # the writer still holds the file open, as a running simulation does
        with h5py.File(tmp_path / "fields.h5", "r", locking=False) as h5:
            assert sorted(h5["Function/f"]) == ["0", "1", "2"] and sorted(h5["Function/g"]) == ["0", "1", "2"]
            assert np.all(h5["Function/f/2"][...] == 2.0)
    finally:
        writer.close()


def test_repair_series_puts_back_the_checkpoint_copy_of_a_cut_xdmf(tmp_path):
    from solver.runs.restart import cut_fields, repair_series

    path = tmp_path / "fields.xdmf"
    _series(path).close()
    saved = path.read_text()
    assert repair_series(path, 2, saved) is None  # a sound file is left alone
    assert path.read_text() == saved
    for cut in ("", saved[: len(saved) // 2]):  # emptied or cut short while DOLFINx rewrote it
        path.write_text(cut)
        why = repair_series(path, 2, saved)
        assert why is not None and "does not parse" in why
        assert cut_fields(path, 2) is None
        assert _times(path) == {"f": [0.0, 1.0], "g": [0.0, 1.0]}
        path.write_text(saved)
    path.write_text("")
    assert repair_series(path, 4, saved) is None  # the copy has too few steps: nothing to put back
    assert repair_series(path, 2, None) is None and repair_series(path, 0, saved) is None
    assert path.read_text() == ""
    path.unlink()
    assert "cannot be read" in repair_series(path, 1, saved) and cut_fields(path, 1) is None
