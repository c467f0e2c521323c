"""Checkpoint and restart: finite-element functions and run state in one HDF5 file.

A checkpoint holds, for every function, its owned values together with a key that
does not depend on the mesh partition, so that a run written on N MPI ranks can be
continued on M ranks (the mesh must be rebuilt identically, e.g. from the same Gmsh
model, but may be partitioned differently):

* continuous spaces (Lagrange of any degree, scalar or blocked/vector): the key of a
  DOF node is its coordinate (``V.tabulate_dof_coordinates()``);
* discontinuous spaces (DG0, DG1, ...): the node coordinate followed by the midpoint
  of the cell the node belongs to (nodes of neighbouring cells share coordinates).

Values are stored per node, ``bs`` numbers each (``bs`` = block size, 2 or 3 for a
vector space). On reading, the keys of the locally owned nodes are matched against the
stored keys with a KD-tree, to a tolerance of ``rtol`` times the smallest cell size;
a node without a match means a different mesh and is reported as such.

Writing is parallel: rank 0 creates ``<path>.tmp`` with h5py, with the state, the
attributes and every dataset laid out contiguously, and every rank then writes the rows
of its own nodes into it with MPI-IO (:mod:`solver.runs.parallel_io`), in rank order;
rank 0 renames the complete file over ``path`` (``os.replace``): a run killed while
writing leaves the previous checkpoint intact. Reading is parallel too: every rank reads
an even slice of the stored rows with serial h5py and sends each row to the ranks whose
bounding box holds its key. No rank holds the whole of a function. The file is an
ordinary HDF5 file (no parallel HDF5 needed to write or read it).

``method="gather"`` (or the environment variable ``SSBFRAC_CHECKPOINT_IO=gather``) writes
the same file the older way, by gathering everything on rank 0, which writes it alone,
and reads it on rank 0, which scatters the rows: for file systems whose MPI-IO does not
work. Both write and read the same layout. All functions here are collective: call
them on every rank of ``comm``.

File layout (``FORMAT``, version ``FORMAT_VERSION``)::

    /                        attrs: format, format_version, fingerprint, comm_size, created,
                             io ("parallel" or "gather": how it was written)
    /functions/<name>/keys   (N, k) float64, k = gdim (continuous) or 2 gdim (discontinuous)
    /functions/<name>/values (N, bs), the function's dtype
                             (rows in the order of the writing ranks, each rank's owned
                             nodes in its local order; contiguous storage when parallel)
                             attrs: element, bs, size_global, discontinuous, gdim
    /state/json              JSON text of the state, arrays replaced by references
    /state/arrays/<i>        the numpy arrays of the state

Stopping a batch job cleanly: :class:`solver.runs.stop.StopRequest` turns SIGTERM/SIGUSR1
into a flag that the step loop checks between steps; the run then writes a checkpoint and
exits with :data:`EXIT_CHECKPOINTED`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from dolfinx import fem
from dolfinx import mesh as dmesh
from mpi4py import MPI

from solver.runs.parallel_io import (block_start, create_contiguous, fsync, gather_rows, read_row_slices, route_to_boxes,
                                     write_rows)

#: value of the ``format`` attribute of a checkpoint file
FORMAT = "ssbfrac-checkpoint"
#: layout version; bumped when the layout changes incompatibly
FORMAT_VERSION = 2
#: exit code of a run that stopped on request after writing its checkpoint
EXIT_CHECKPOINTED = 85
#: default matching tolerance, relative to the smallest cell size of the mesh
MATCH_RTOL = 1e-6

#: how checkpoints are written and read (see :func:`checkpoint_method`)
METHODS = ("parallel", "gather")
#: environment variable that chooses the method when the caller does not
IO_ENV = "SSBFRAC_CHECKPOINT_IO"

_ARRAY_TAG = "__ndarray__"


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written or does not fit the run that reads it."""


# --------------------------------------------------------------------------- keys


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise CheckpointError(f"invalid function name {name!r}: use a non-empty name without '/'")


def _is_discontinuous(name: str, V: fem.FunctionSpace) -> bool:
    """Whether ``V`` is discontinuous; CheckpointError for spaces without a Basix
    element (mixed, quadrature), which are not supported."""
    try:
        return bool(V.element.basix_element.discontinuous)
    except RuntimeError as exc:
        raise CheckpointError(f"function '{name}': only Lagrange spaces (continuous or discontinuous, "
                              f"scalar or blocked) are supported, not {V.ufl_element()}") from exc


def _owned_keys(name: str, V: fem.FunctionSpace) -> np.ndarray:
    """Partition-independent keys of the owned DOF nodes of ``V``, shape (n_owned, k),
    in the mesh's length unit."""
    n_owned = V.dofmap.index_map.size_local
    gdim = V.mesh.geometry.dim
    discontinuous = _is_discontinuous(name, V)
    x = V.tabulate_dof_coordinates()[:n_owned, :gdim]
    if not discontinuous:
        return np.ascontiguousarray(x, dtype=np.float64)
    # a node of a discontinuous space belongs to exactly one cell: add that cell's midpoint
    dofs = V.dofmap.list
    cell_of_node = np.empty(V.dofmap.index_map.size_local + V.dofmap.index_map.num_ghosts, dtype=np.int32)
    cell_of_node[dofs.ravel()] = np.repeat(np.arange(dofs.shape[0], dtype=np.int32), dofs.shape[1])
    tdim = V.mesh.topology.dim
    mid = dmesh.compute_midpoints(V.mesh, tdim, cell_of_node[:n_owned])[:, :gdim]
    return np.ascontiguousarray(np.hstack([x, mid]), dtype=np.float64)


def _space_shape(name: str, V: fem.FunctionSpace) -> tuple[int, int, int]:
    """(global number of DOF nodes, block size, width of a key) of ``V``."""
    width = V.mesh.geometry.dim * (2 if _is_discontinuous(name, V) else 1)
    return int(V.dofmap.index_map.size_global), int(V.dofmap.index_map_bs), width


def _match_tolerance(domain: dmesh.Mesh, comm: MPI.Comm, rtol: float) -> float:
    """``rtol`` times the smallest cell size of ``domain`` (mesh length unit)."""
    tdim = domain.topology.dim
    n = domain.topology.index_map(tdim).size_local
    h = domain.h(tdim, np.arange(n, dtype=np.int32)) if n else np.array([np.inf])
    hmin = comm.allreduce(float(np.min(h)), op=MPI.MIN)
    return rtol * hmin


# --------------------------------------------------------------------------- state


def _encode_state(obj: Any, arrays: list[np.ndarray], where: str) -> Any:
    """Replace numpy arrays by references into ``arrays``; numpy scalars by Python ones."""
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise CheckpointError(f"state{where}: key {k!r} is not a string")
            out[k] = _encode_state(v, arrays, f"{where}[{k!r}]")
        return out
    if isinstance(obj, (list, tuple)):
        return [_encode_state(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        arrays.append(np.ascontiguousarray(obj))
        return {_ARRAY_TAG: len(arrays) - 1}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise CheckpointError(f"state{where}: {type(obj).__name__} is not JSON-serialisable")


def _decode_state(obj: Any, arrays: Mapping[int, np.ndarray]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {_ARRAY_TAG}:
            return arrays[obj[_ARRAY_TAG]]
        return {k: _decode_state(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode_state(v, arrays) for v in obj]
    return obj


def _fingerprint_text(fingerprint: str | Mapping[str, Any] | None) -> str:
    if fingerprint is None:
        return ""
    if isinstance(fingerprint, Mapping):
        return json.dumps({str(k): fingerprint[k] for k in fingerprint}, sort_keys=True)
    return str(fingerprint)


def _fingerprint_mismatch(stored: str, expected: str) -> str | None:
    """None if equal, else a sentence saying what differs."""
    if stored == expected:
        return None
    if not stored:
        return "the checkpoint has no fingerprint, this run expects one"
    try:
        a, b = json.loads(stored), json.loads(expected)
    except ValueError:
        a = b = None
    if isinstance(a, dict) and isinstance(b, dict):
        diff = [f"{k}: checkpoint {a.get(k, '<none>')!r}, this run {b.get(k, '<none>')!r}"
                for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        return "it was written for a different run (" + "; ".join(diff) + ")"
    return f"it was written for fingerprint {stored!r}, this run has {expected!r}"


# --------------------------------------------------------------------------- writing


def checkpoint_method(method: str | None = None) -> str:
    """How checkpoints are written and read: ``method`` if given, else the environment
    variable ``SSBFRAC_CHECKPOINT_IO``, else ``"parallel"``; ``"parallel"`` or ``"gather"``."""
    method = method or os.environ.get(IO_ENV, "").strip() or "parallel"
    if method not in METHODS:
        raise CheckpointError(f"checkpoint I/O {method!r} (from {IO_ENV} or the caller): use one of "
                              f"{', '.join(METHODS)}")
    return method


def _owned_block(name: str, f: fem.Function) -> dict:
    """The keys and values of the nodes that this rank owns, and the function's attributes."""
    V = f.function_space
    bs = V.dofmap.index_map_bs
    keys = _owned_keys(name, V)
    n_owned = keys.shape[0]
    return {
        "keys": keys,
        "values": f.x.array[: n_owned * bs].reshape(n_owned, bs),
        "attrs": {
            "element": str(V.ufl_element()),
            "bs": bs,
            "size_global": int(V.dofmap.index_map.size_global),
            "discontinuous": _is_discontinuous(name, V),
            "gdim": int(V.mesh.geometry.dim),
        },
    }


def _write_function(group: Any, name: str, block: dict, method: str) -> tuple[int | None, int | None]:
    """Rank 0: the group of one function, with all its rows (gather) or with its datasets
    allocated but not written (parallel: returns their byte offsets in the file)."""
    g = group.create_group(name)
    for key, value in block["attrs"].items():
        g.attrs[key] = value
    if method == "gather":
        g.create_dataset("keys", data=block["keys"])
        g.create_dataset("values", data=block["values"])
        return None, None
    n = block["attrs"]["size_global"]
    return (create_contiguous(g, "keys", (n, block["keys"].shape[1]), np.float64),
            create_contiguous(g, "values", (n, block["attrs"]["bs"]), block["values"].dtype))


def _write_file(tmp: Path, functions: Mapping[str, dict], state: Mapping[str, Any], fingerprint: str,
                comm_size: int, method: str) -> dict[str, tuple[int | None, int | None]]:
    """Rank 0: write the file ``tmp`` with the state and either the functions' data
    (``functions[name]`` with all rows: gather) or their allocated datasets (parallel);
    returns the byte offsets of those datasets (parallel)."""
    import h5py

    arrays: list[np.ndarray] = []
    encoded = json.dumps(_encode_state(state, arrays, ""))
    tmp.parent.mkdir(parents=True, exist_ok=True)
    offsets = {}
    with h5py.File(tmp, "w") as h5:
        h5.attrs["format"] = FORMAT
        h5.attrs["format_version"] = FORMAT_VERSION
        h5.attrs["fingerprint"] = fingerprint
        h5.attrs["comm_size"] = comm_size
        h5.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        h5.attrs["io"] = method
        group = h5.create_group("functions")
        for name, data in functions.items():
            offsets[name] = _write_function(group, name, data, method)
        st = h5.create_group("state")
        st.create_dataset("json", data=encoded)
        arr = st.create_group("arrays")
        for i, a in enumerate(arrays):
            arr.create_dataset(str(i), data=a)
    return offsets


def _message(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, CheckpointError) else f"{type(exc).__name__}: {exc}"


def write_checkpoint(path: str | os.PathLike, functions: Mapping[str, fem.Function],
                     state: Mapping[str, Any], comm: MPI.Comm,
                     fingerprint: str | Mapping[str, Any] | None = None, method: str | None = None) -> Path:
    """Write ``functions`` and ``state`` to the HDF5 file ``path``, atomically (collective).

    Args:
        path: the checkpoint file, e.g. ``<run dir>/checkpoint.h5``. It is written as
            ``<path>.tmp`` and renamed over ``path`` only once complete, so an existing
            checkpoint stays valid if the run dies while writing.
        functions: name -> function (Lagrange of any degree, scalar or vector, or a
            discontinuous Lagrange space such as DG0). Names must not contain '/'.
        state: the run state: time (s), step counters, position in the protocol, ...
            JSON types plus numpy arrays and scalars, nested in dicts and lists (tuples
            come back as lists). The state of rank 0 is written.
        comm: the communicator of the mesh.
        fingerprint: identifies the case and mesh; a string, or a mapping such as
            ``{"case": <hash>, "mesh": <cells, vertices>}`` so that a mismatch on
            reading names the part that differs.
        method: ``"parallel"`` (every rank writes its rows, MPI-IO) or ``"gather"``
            (rank 0 writes everything); default :func:`checkpoint_method`.

    Returns:
        ``path`` as a Path.

    Raises:
        CheckpointError: on every rank, if a function or the state cannot be stored or
            the file cannot be written (the previous checkpoint is then left untouched).
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    method = checkpoint_method(method)
    for name in functions:
        _check_name(name)
    blocks = {name: _owned_block(name, f) for name, f in functions.items()}
    text = _fingerprint_text(fingerprint)
    if method == "gather":
        for block in blocks.values():
            block["keys"], block["values"] = gather_rows(block["keys"], block["values"], comm)
    error, offsets = None, None
    if comm.rank == 0:
        try:
            offsets = _write_file(tmp, blocks, state, text, comm.size, method)
        except Exception as exc:
            error = _message(exc)
    error, offsets = comm.bcast((error, offsets), root=0)
    if error is None and method == "parallel":
        rows = []  # (byte offset of this rank's first row, its rows), rank after rank in the file
        for name, b in blocks.items():
            start = block_start(b["keys"].shape[0], comm)
            for data, offset in zip((b["keys"], b["values"]), offsets[name]):
                row_bytes = data.dtype.itemsize * data.shape[1]
                rows.append((None if offset is None else offset + start * row_bytes, data))
        try:
            write_rows(tmp, rows, comm)
        except Exception as exc:
            error = _message(exc)
        errors = [e for e in comm.allgather(error) if e is not None]
        error = errors[0] if errors else None
    if comm.rank == 0:
        try:
            if error is None:
                fsync(tmp)
                os.replace(tmp, path)
                fsync(path.parent)
        except OSError as exc:
            error = _message(exc)
        if error is not None:
            tmp.unlink(missing_ok=True)
    error = comm.bcast(error, root=0)
    if error is not None:
        raise CheckpointError(f"writing checkpoint {path} failed: {error}")
    return path


# --------------------------------------------------------------------------- reading


def _read_header(path: Path, requested: Mapping[str, tuple[int, int, int]], fingerprint: str | None) -> dict:
    """Rank 0: validate the file against the functions to fill and return its state.

    ``requested`` maps a name to (number of nodes, block size, key width) of the
    receiving function."""
    import h5py

    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise CheckpointError(f"{path} is not a readable HDF5 file ({exc})") from exc
    with h5:
        if h5.attrs.get("format") != FORMAT:
            raise CheckpointError(f"{path} is not an ssbfrac checkpoint")
        version = int(h5.attrs.get("format_version", -1))
        if version != FORMAT_VERSION:
            raise CheckpointError(f"{path}: format version {version}, this code reads version {FORMAT_VERSION}")
        if fingerprint is not None:
            stored = str(h5.attrs.get("fingerprint", ""))
            why = _fingerprint_mismatch(stored, fingerprint)
            if why is not None:
                raise CheckpointError(f"checkpoint {path} does not belong to this run: {why}")
        stored_names = sorted(h5["functions"].keys())
        missing = [n for n in requested if n not in h5["functions"]]
        if missing:
            raise CheckpointError(f"checkpoint {path} has no function {', '.join(map(repr, missing))} "
                                  f"(it holds: {', '.join(stored_names) or 'none'})")
        for name, (size_global, bs, width) in requested.items():
            g = h5["functions"][name]
            keys, values = g["keys"], g["values"]
            if values.shape != (size_global, bs) or keys.shape[0] != size_global:
                raise CheckpointError(
                    f"function '{name}': checkpoint {path} has {values.shape[0]} nodes x {values.shape[1]} "
                    f"values ({g.attrs.get('element', '?')}), this run has {size_global} x {bs} "
                    f"- a different mesh or element")
            if keys.shape[1] != width:
                raise CheckpointError(
                    f"function '{name}': checkpoint {path} stores it on {g.attrs.get('element', '?')}, "
                    f"which differs from this run's space in dimension or continuity")
        arrays = {int(k): v[...] for k, v in h5["state"]["arrays"].items()}
        return _decode_state(json.loads(h5["state"]["json"][()]), arrays)


def read_checkpoint(path: str | os.PathLike, functions: Mapping[str, fem.Function], comm: MPI.Comm,
                    fingerprint: str | Mapping[str, Any] | None = None,
                    rtol: float = MATCH_RTOL, method: str | None = None) -> dict:
    """Fill ``functions`` from the checkpoint ``path`` and return its state (collective).

    The number of ranks may differ from the writing run; the mesh must be the same
    (same node coordinates) but may be partitioned differently. Ghost values are
    updated as well.

    Args:
        path: the checkpoint file written by :func:`write_checkpoint`.
        functions: name -> function to fill, on the same kind of space as when written;
            names absent here but present in the file are ignored.
        comm: the communicator of the mesh.
        fingerprint: if given, must equal the fingerprint stored with the checkpoint.
        rtol: matching tolerance for the node keys, relative to the smallest cell size.
        method: ``"parallel"`` (every rank reads a slice) or ``"gather"`` (rank 0 reads
            everything); default :func:`checkpoint_method`. Either reads any checkpoint.

    Returns:
        The state dict as written (numpy arrays restored), the same on every rank.

    Raises:
        CheckpointError: on every rank: no file, not a checkpoint, fingerprint mismatch,
            function missing from the file, node count or block size differing, or a
            node that has no stored counterpart (different mesh).
    """
    path = Path(path)
    method = checkpoint_method(method)
    for name in functions:
        _check_name(name)
    requested = {name: _space_shape(name, f.function_space) for name, f in functions.items()}
    expected = None if fingerprint is None else _fingerprint_text(fingerprint)
    error: str | None = None
    state: dict | None = None
    if comm.rank == 0:
        try:
            state = _read_header(path, requested, expected)
        except CheckpointError as exc:
            error = str(exc)
        except Exception as exc:
            error = f"reading checkpoint {path} failed: {_message(exc)}"
    error, state = comm.bcast((error, state), root=0)
    if error is not None:
        raise CheckpointError(error)
    try:
        stored = read_row_slices(path, [f"functions/{name}" for name in functions], comm,
                                 on_root=method == "gather")
    except Exception as exc:
        error = f"reading checkpoint {path} failed: {_message(exc)}"
    errors = [e for e in comm.allgather(error) if e is not None]
    if errors:
        raise CheckpointError(errors[0])

    tolerances: dict[int, float] = {}
    for name, f in functions.items():
        V = f.function_space
        if id(V.mesh) not in tolerances:
            tolerances[id(V.mesh)] = _match_tolerance(V.mesh, comm, rtol)
        _fill_function(name, f, stored.pop(f"functions/{name}", None), comm, tolerances[id(V.mesh)], path)
    return state


def _fill_function(name: str, f: fem.Function, rows: tuple[np.ndarray, np.ndarray] | None,
                   comm: MPI.Comm, tol: float, path: Path) -> None:
    """Collective: route the stored rows that each rank read to the ranks whose bounding
    box holds their keys, match them to the owned nodes by key and set the values."""
    from scipy.spatial import cKDTree

    V = f.function_space
    bs = V.dofmap.index_map_bs
    keys = _owned_keys(name, V)
    n_owned = keys.shape[0]
    box = (keys.min(axis=0) - tol, keys.max(axis=0) + tol) if n_owned else None
    if rows is None:  # gather: the ranks other than 0 read nothing
        rows = (np.zeros((0, keys.shape[1])), np.zeros((0, bs), dtype=f.x.array.dtype))
    k_part, v_part = route_to_boxes(rows[0], rows[1], box, comm)
    del rows

    unmatched = np.ones(n_owned, dtype=bool)
    idx = np.zeros(n_owned, dtype=np.int64)
    if n_owned and k_part.shape[0]:
        dist, idx = cKDTree(k_part).query(keys, k=1, distance_upper_bound=tol)
        unmatched = ~np.isfinite(dist)
    n_missing = comm.allreduce(int(unmatched.sum()), op=MPI.SUM)
    if n_missing:
        example = keys[np.argmax(unmatched)].tolist() if unmatched.any() else None
        examples = [e for e in comm.allgather(example) if e is not None]
        raise CheckpointError(
            f"function '{name}': {n_missing} node(s) of this run have no counterpart in checkpoint {path} "
            f"(e.g. at {examples[0]}): the mesh differs from the one the checkpoint was written with")
    values = v_part[idx]
    f.x.array[: n_owned * bs] = values.reshape(-1).astype(f.x.array.dtype, copy=False)
    f.x.scatter_forward()
