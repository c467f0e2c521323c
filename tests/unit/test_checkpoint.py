"""Checkpoint/restart (solver/runs/checkpoint.py): round trips of P1, P2-vector, DG0 and DG1
functions with the run state, written and read in parallel (MPI-IO) or through rank 0
(gather), restart on a different number of ranks, atomic writes, error messages and the
stop-request signal handler.

The helpers below are also imported by the two-rank script that the MPI test launches.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import basix.ufl
import numpy as np
import pytest
from mpi4py import MPI

from conftest import ROOT, mpiexec, subprocess_env
from dolfinx import fem
from dolfinx import mesh as dmesh
from solver.runs import checkpoint as ckpt
from solver.runs.checkpoint import EXIT_CHECKPOINTED, CheckpointError, read_checkpoint, write_checkpoint
from solver.runs.stop import StopRequest

FINGERPRINT = {"case": "case-hash-1", "mesh": "cells=...,vertices=..."}
MESHES = ("square", "gmsh")


def build_mesh(kind: str, comm: MPI.Comm) -> dmesh.Mesh:
    """A small 2D triangle mesh, identical for any number of ranks (partition aside)."""
    if kind == "square":
        return dmesh.create_unit_square(comm, 6, 5)
    import gmsh
    from dolfinx.io import gmsh as gmshio

    model = None
    if comm.rank == 0:
        gmsh.initialize(interruptible=False)
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add("plate with hole")
        rect = gmsh.model.occ.addRectangle(0.0, 0.0, 0.0, 2.0, 1.0)
        hole = gmsh.model.occ.addDisk(0.8, 0.5, 0.0, 0.25, 0.25)
        gmsh.model.occ.cut([(2, rect)], [(2, hole)])
        gmsh.model.occ.synchronize()
        surfaces = [tag for _, tag in gmsh.model.getEntities(2)]
        gmsh.model.addPhysicalGroup(2, surfaces, 1)
        gmsh.option.setNumber("Mesh.CharacteristicLengthMax", 0.2)
        gmsh.model.mesh.generate(2)
        model = gmsh.model
    domain = gmshio.model_to_mesh(model, comm, 0, gdim=2).mesh
    if comm.rank == 0:
        gmsh.finalize()
    return domain


def _dg1_values(V: fem.FunctionSpace, scale: float) -> np.ndarray:
    """Values of a DG1 field that jump between cells: node x + 10 * cell midpoint y."""
    x = V.tabulate_dof_coordinates()
    dofs = V.dofmap.list
    mid = dmesh.compute_midpoints(V.mesh, 2, np.arange(dofs.shape[0], dtype=np.int32))
    out = np.zeros(x.shape[0])
    for c in range(dofs.shape[0]):
        out[dofs[c]] = scale * (x[dofs[c], 0] + 10.0 * mid[c, 1])
    return out


def make_functions(domain: dmesh.Mesh, scale: float | None = None) -> dict[str, fem.Function]:
    """P1 scalar, P2 vector, DG0 and DG1 functions; filled with x-dependent values
    (multiplied by ``scale``) unless ``scale`` is None."""
    gdim = domain.geometry.dim
    spaces = {
        "damage": fem.functionspace(domain, ("Lagrange", 1)),
        "displacement": fem.functionspace(domain, ("Lagrange", 2, (gdim,))),
        "H_history": fem.functionspace(domain, ("DG", 0)),
        "flux_dg1": fem.functionspace(domain, ("DG", 1)),
    }
    fs = {name: fem.Function(V, name=name) for name, V in spaces.items()}
    if scale is not None:
        fs["damage"].interpolate(lambda x: scale * (1.0 + x[0] + 2.0 * x[1] ** 2))
        fs["displacement"].interpolate(lambda x: scale * np.vstack([np.sin(3.0 * x[0]) * x[1],
                                                                     x[0] ** 2 - x[1]]))
        fs["H_history"].interpolate(lambda x: scale * (np.cos(2.0 * x[0]) + 5.0 * x[1]))
        fs["flux_dg1"].x.array[:] = _dg1_values(spaces["flux_dg1"], scale)
    return fs


def make_state(scale: float = 1.0) -> dict:
    return {
        "time": 12.5 * scale,  # s
        "step": 7,
        "accepted": np.int64(6),
        "protocol": {"segment": 2, "fraction": 0.375, "label": "charge", "done": False, "note": None},
        "history_x": np.linspace(0.0, 1.0, 5) * scale,
        "cuts": np.array([[1, 2], [3, 4]], dtype=np.int32),
        "pair": (1.0, "a"),
    }


def check_state(state: dict, scale: float = 1.0) -> None:
    ref = make_state(scale)
    assert state["time"] == ref["time"] and state["step"] == 7 and state["accepted"] == 6
    assert state["protocol"] == ref["protocol"]
    np.testing.assert_array_equal(state["history_x"], ref["history_x"])
    assert state["cuts"].dtype == np.int32
    np.testing.assert_array_equal(state["cuts"], ref["cuts"])
    assert state["pair"] == [1.0, "a"]


def max_difference(a: dict[str, fem.Function], b: dict[str, fem.Function], comm: MPI.Comm) -> float:
    """Largest difference of all local values (owned and ghost) over all ranks."""
    local = max(float(np.max(np.abs(a[k].x.array - b[k].x.array), initial=0.0)) for k in a)
    return comm.allreduce(local, op=MPI.MAX)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("kind", MESHES)
@pytest.mark.parametrize("write, read", [("parallel", "parallel"), ("gather", "gather"), ("gather", "parallel"),
                                         ("parallel", "gather")])
def test_round_trip(tmp_path, kind, write, read):
    """Both methods write the same layout: either reads what the other wrote."""
    import h5py

    comm = MPI.COMM_WORLD
    domain = build_mesh(kind, comm)
    src = make_functions(domain, scale=1.0)
    path = write_checkpoint(tmp_path / "checkpoint.h5", src, make_state(), comm, fingerprint=FINGERPRINT,
                            method=write)
    assert path.is_file() and not (tmp_path / "checkpoint.h5.tmp").exists()
    with h5py.File(path) as h5:
        assert h5.attrs["io"] == write
    dst = make_functions(domain)
    state = read_checkpoint(path, dst, comm, fingerprint=FINGERPRINT, method=read)
    for name in src:
        assert np.max(np.abs(src[name].x.array)) > 0.1
    assert max_difference(src, dst, comm) == 0.0
    check_state(state)


def test_read_subset_and_string_fingerprint(tmp_path):
    comm = MPI.COMM_WORLD
    domain = build_mesh("square", comm)
    src = make_functions(domain, scale=3.0)
    write_checkpoint(tmp_path / "c.h5", src, {"t": 1.0}, comm, fingerprint="abc123")
    dst = make_functions(domain)
    state = read_checkpoint(tmp_path / "c.h5", {"damage": dst["damage"]}, comm, fingerprint="abc123")
    assert state == {"t": 1.0}
    np.testing.assert_array_equal(dst["damage"].x.array, src["damage"].x.array)
    assert np.all(dst["displacement"].x.array == 0.0)


# --------------------------------------------------------------------------- other rank count


SCRIPT = """
import sys
sys.path[:0] = [{tests!r}, {root_tests!r}]
import solver
import os, signal
import numpy as np
from mpi4py import MPI
import test_checkpoint as t
from solver.runs.checkpoint import read_checkpoint, write_checkpoint
from solver.runs.stop import StopRequest

comm = MPI.COMM_WORLD
assert comm.size == 2
src, out = sys.argv[1], sys.argv[2]
for kind in t.MESHES:
    domain = t.build_mesh(kind, comm)
    nloc = domain.topology.index_map(2).size_local
    nglob = domain.topology.index_map(2).size_global
    assert 0 < nloc < nglob, "the mesh should be split between the ranks"
    for method in ("parallel", "gather"):
        fs = t.make_functions(domain)
        state = read_checkpoint(os.path.join(src, kind + ".h5"), fs, comm, fingerprint=t.FINGERPRINT,
                                method=method)
        t.check_state(state)
        diff = t.max_difference(fs, t.make_functions(domain, scale=1.0), comm)
        assert diff < 1e-12, (kind, method, diff)
    for method in ("parallel", "gather"):
        write_checkpoint(os.path.join(out, f"{{kind}}-{{method}}.h5"), t.make_functions(domain, scale=2.0),
                         t.make_state(2.0), comm, fingerprint=t.FINGERPRINT, method=method)
# errors are raised on every rank (no rank is left waiting)
for path, fingerprint in ((os.path.join(src, "gmsh.h5"), {{"case": "other"}}),
                          (os.path.join(src, "none.h5"), None)):
    try:
        read_checkpoint(path, fs, comm, fingerprint=fingerprint)
    except t.CheckpointError:
        pass
    else:
        raise AssertionError("no CheckpointError on rank %d" % comm.rank)
with StopRequest() as stop:
    assert not stop.requested(comm)
    if comm.rank == 0:
        os.kill(os.getpid(), signal.SIGUSR1)
    assert stop.requested(comm)
if comm.rank == 0:
    print("OK")
"""


@pytest.mark.mpi
def test_restart_on_other_rank_count(tmp_path):
    """Written on 1 rank, read on 2 (and the other way round, in parallel or through rank
    0): values at the same nodes."""
    exe = mpiexec()
    if exe is None:
        pytest.skip("mpiexec not found")
    comm = MPI.COMM_SELF
    one, two = tmp_path / "np1", tmp_path / "np2"
    for kind in MESHES:
        write_checkpoint(one / f"{kind}.h5", make_functions(build_mesh(kind, comm), scale=1.0),
                         make_state(), comm, fingerprint=FINGERPRINT)
    script = tmp_path / "restart_np2.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent), root_tests=str(Path(__file__).parents[1])))
    r = subprocess.run([exe, "-n", "2", sys.executable, str(script), str(one), str(two)],
                       capture_output=True, text=True, env=subprocess_env(), cwd=ROOT, timeout=300)
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout[-2000:] + r.stderr[-4000:]
    import h5py

    for kind in MESHES:
        domain = build_mesh(kind, comm)
        for method in ("parallel", "gather"):
            fs = make_functions(domain)
            check_state(read_checkpoint(two / f"{kind}-{method}.h5", fs, comm, fingerprint=FINGERPRINT), 2.0)
            assert max_difference(fs, make_functions(domain, scale=2.0), comm) < 1e-12
            with h5py.File(one / f"{kind}.h5") as a, h5py.File(two / f"{kind}-{method}.h5") as b:
                assert int(a.attrs["comm_size"]) == 1 and int(b.attrs["comm_size"]) == 2
                assert b.attrs["io"] == method
                for name in fs:
                    assert a["functions"][name]["keys"].shape == b["functions"][name]["keys"].shape


def test_method_from_the_environment(tmp_path, monkeypatch):
    """SSBFRAC_CHECKPOINT_IO chooses the method when the caller does not; a wrong value is
    an error before anything is written."""
    import h5py

    comm = MPI.COMM_WORLD
    fs = make_functions(build_mesh("square", comm), scale=1.0)
    monkeypatch.setenv(ckpt.IO_ENV, "gather")
    write_checkpoint(tmp_path / "g.h5", fs, {}, comm)
    monkeypatch.delenv(ckpt.IO_ENV)
    write_checkpoint(tmp_path / "p.h5", fs, {}, comm)
    with h5py.File(tmp_path / "g.h5") as g, h5py.File(tmp_path / "p.h5") as p:
        assert g.attrs["io"] == "gather" and p.attrs["io"] == "parallel"
    monkeypatch.setenv(ckpt.IO_ENV, "posix")
    with pytest.raises(CheckpointError, match="checkpoint I/O 'posix'.*parallel, gather"):
        write_checkpoint(tmp_path / "x.h5", fs, {}, comm)
    assert not (tmp_path / "x.h5").exists() and not (tmp_path / "x.h5.tmp").exists()


# --------------------------------------------------------------------------- atomicity


@pytest.mark.parametrize("method", ckpt.METHODS)
def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch, method):
    """A write that fails half-way (rank 0's HDF5 writing, or the ranks' MPI-IO) leaves
    the previous checkpoint as it was and no temporary file."""
    comm = MPI.COMM_WORLD
    domain = build_mesh("square", comm)
    path = tmp_path / "checkpoint.h5"
    first = make_functions(domain, scale=1.0)
    write_checkpoint(path, first, make_state(1.0), comm, method=method)

    calls = []
    if method == "gather":
        original = ckpt._write_function

        def failing(group, name, *args):
            calls.append(name)
            if len(calls) == 2:
                raise OSError("disk full (simulated)")
            return original(group, name, *args)

        monkeypatch.setattr(ckpt, "_write_function", failing)
    else:
        original = ckpt.write_rows

        def failing(file, rows, comm):
            calls.extend(rows[:3])
            original(file, rows[:3], comm)  # the first function and a part of the second
            raise OSError("disk full (simulated)")

        monkeypatch.setattr(ckpt, "write_rows", failing)
    with pytest.raises(CheckpointError, match="disk full"):
        write_checkpoint(path, make_functions(domain, scale=5.0), make_state(5.0), comm, method=method)
    assert len(calls) == (2 if method == "gather" else 3)
    assert not path.with_name(path.name + ".tmp").exists()
    monkeypatch.undo()

    back = make_functions(domain)
    check_state(read_checkpoint(path, back, comm), 1.0)
    assert max_difference(first, back, comm) == 0.0


def test_stale_temporary_file_is_ignored_and_replaced(tmp_path):
    """What a run killed while writing leaves behind does not disturb reading or writing."""
    comm = MPI.COMM_WORLD
    domain = build_mesh("square", comm)
    path = tmp_path / "checkpoint.h5"
    write_checkpoint(path, make_functions(domain, scale=1.0), make_state(1.0), comm)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(b"\x89HDF\r\n\x1a\n truncated")
    check_state(read_checkpoint(path, make_functions(domain), comm), 1.0)
    write_checkpoint(path, make_functions(domain, scale=2.0), make_state(2.0), comm)
    assert not tmp.exists()
    back = make_functions(domain)
    check_state(read_checkpoint(path, back, comm), 2.0)
    assert max_difference(back, make_functions(domain, scale=2.0), comm) == 0.0


# --------------------------------------------------------------------------- errors


@pytest.fixture
def written(tmp_path):
    comm = MPI.COMM_WORLD
    domain = build_mesh("square", comm)
    path = write_checkpoint(tmp_path / "checkpoint.h5", make_functions(domain, scale=1.0),
                            make_state(), comm, fingerprint=FINGERPRINT)
    return path, domain


def test_fingerprint_mismatch(written):
    path, domain = written
    comm = MPI.COMM_WORLD
    other = dict(FINGERPRINT, mesh="cells=1,vertices=2")
    with pytest.raises(CheckpointError, match=r"mesh: checkpoint 'cells=\.\.\.,vertices=\.\.\.', this run "
                                              r"'cells=1,vertices=2'") as info:
        read_checkpoint(path, make_functions(domain), comm, fingerprint=other)
    assert "case" not in str(info.value)
    with pytest.raises(CheckpointError, match="different run"):
        read_checkpoint(path, make_functions(domain), comm, fingerprint=dict(FINGERPRINT, case="x"))
    with pytest.raises(CheckpointError, match="fingerprint"):
        read_checkpoint(path, make_functions(domain), comm, fingerprint="plain string")
    # without a fingerprint to check, it is not checked
    read_checkpoint(path, make_functions(domain), comm)


def test_missing_file_and_function(written, tmp_path):
    path, domain = written
    comm = MPI.COMM_WORLD
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        read_checkpoint(tmp_path / "nothing.h5", make_functions(domain), comm)
    fs = make_functions(domain)
    fs["concentration"] = fem.Function(fs["damage"].function_space)
    with pytest.raises(CheckpointError, match="no function 'concentration'.*holds: H_history, damage"):
        read_checkpoint(path, fs, comm)
    (tmp_path / "garbage.h5").write_text("not hdf5")
    with pytest.raises(CheckpointError, match="not a readable HDF5 file"):
        read_checkpoint(tmp_path / "garbage.h5", fs, comm)


def test_different_mesh_or_element(written):
    path, domain = written
    comm = MPI.COMM_WORLD
    finer = dmesh.create_unit_square(comm, 7, 5)
    with pytest.raises(CheckpointError, match="function 'damage'.*has 42 nodes x 1 values.*this run has 48 x 1"):
        read_checkpoint(path, {"damage": fem.Function(fem.functionspace(finer, ("Lagrange", 1)))}, comm)
    with pytest.raises(CheckpointError, match="function 'H_history'"):
        read_checkpoint(path, {"H_history": fem.Function(fem.functionspace(domain, ("Lagrange", 1)))}, comm)
    # same number of nodes, but moved: no node matches
    moved = dmesh.create_unit_square(comm, 6, 5)
    moved.geometry.x[:, 0] += 0.01
    with pytest.raises(CheckpointError, match="function 'damage': 42 node.*no counterpart.*mesh differs"):
        read_checkpoint(path, {"damage": fem.Function(fem.functionspace(moved, ("Lagrange", 1)))}, comm)


def test_bad_state_or_name(tmp_path):
    comm = MPI.COMM_WORLD
    fs = make_functions(build_mesh("square", comm), scale=1.0)
    with pytest.raises(CheckpointError, match=r"state\['out'\]: PosixPath is not JSON-serialisable"):
        write_checkpoint(tmp_path / "c.h5", fs, {"out": tmp_path}, comm)
    with pytest.raises(CheckpointError, match="invalid function name"):
        write_checkpoint(tmp_path / "c.h5", {"a/b": fs["damage"]}, {}, comm)
    domain = fs["damage"].function_space.mesh
    mixed = basix.ufl.mixed_element([basix.ufl.element("Lagrange", domain.basix_cell(), 1)] * 2)
    with pytest.raises(CheckpointError, match="function 'mixed': only Lagrange spaces"):
        write_checkpoint(tmp_path / "c.h5", {"mixed": fem.Function(fem.functionspace(domain, mixed))}, {}, comm)
    assert not (tmp_path / "c.h5").exists() and not (tmp_path / "c.h5.tmp").exists()


# --------------------------------------------------------------------------- stop request


def _wait_for(stop: StopRequest, timeout: float = 2.0) -> None:
    end = time.monotonic() + timeout
    while stop.signum is None and time.monotonic() < end:
        time.sleep(0.001)


def test_stop_request_on_sigterm():
    def sentinel(signum, frame):  # pragma: no cover - must not be called
        raise AssertionError("the previous handler was called")

    before = signal.signal(signal.SIGTERM, sentinel)
    try:
        stop = StopRequest()
        assert stop.installed and not stop.requested() and not stop.requested(MPI.COMM_WORLD)
        os.kill(os.getpid(), signal.SIGTERM)
        _wait_for(stop)
        assert stop.signum == signal.SIGTERM
        assert stop.requested() and stop.requested(MPI.COMM_WORLD)
        stop.restore()
        assert signal.getsignal(signal.SIGTERM) is sentinel
        stop.restore()  # idempotent
        assert signal.getsignal(signal.SIGTERM) is sentinel
    finally:
        signal.signal(signal.SIGTERM, before)


def test_stop_request_context_manager_and_usr1():
    before = signal.getsignal(signal.SIGUSR1)
    with StopRequest() as stop:
        assert signal.getsignal(signal.SIGUSR1) is not before
        os.kill(os.getpid(), signal.SIGUSR1)
        _wait_for(stop)
        assert stop.signum == signal.SIGUSR1 and stop.requested(MPI.COMM_WORLD)
    assert signal.getsignal(signal.SIGUSR1) is before
    assert EXIT_CHECKPOINTED == 85


def test_stop_request_outside_main_thread():
    result = {}

    def worker():
        stop = StopRequest()
        result["installed"] = stop.installed
        stop.request()
        result["requested"] = stop.requested()
        stop.restore()

    before = signal.getsignal(signal.SIGTERM)
    th = threading.Thread(target=worker)
    th.start()
    th.join()
    assert result == {"installed": False, "requested": True}
    assert signal.getsignal(signal.SIGTERM) is before
