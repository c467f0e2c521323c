"""The field series of a run killed while writing: readable on disk after every output."""

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
