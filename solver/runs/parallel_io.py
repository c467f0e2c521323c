"""Row blocks of HDF5 datasets written and read by every MPI rank at once.

Writing: rank 0 creates the file with h5py and lays out each dataset contiguously with its
storage allocated at creation (:func:`create_contiguous`); every rank then writes its own
block of rows straight into that storage with MPI-IO (:func:`write_rows`, collective
``MPI_File_write_at_all``). The result is an ordinary HDF5 file, readable by serial h5py
on any number of ranks; no parallel HDF5 (h5py's ``mpio`` driver) is needed, only the
MPI-IO of the MPI library that mpi4py uses.

Reading: every rank opens the file read-only with serial h5py and reads one contiguous
slice of the rows (:func:`row_range`, :func:`read_rows`); :func:`route_to_boxes` then sends
each row to the ranks whose bounding box contains its key (``MPI_Alltoallv``). No rank
holds more than its slice and the rows near its own nodes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from mpi4py import MPI


def create_contiguous(group: Any, name: str, shape: tuple[int, ...], dtype: np.dtype) -> int | None:
    """Create the dataset ``group[name]`` with contiguous storage allocated at once and
    no fill value written; return its byte offset in the file (None when it is empty)."""
    import h5py

    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.CONTIGUOUS)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    ds = group.create_dataset(name, shape=shape, dtype=np.dtype(dtype).newbyteorder("="), dcpl=dcpl)
    offset = ds.id.get_offset()
    return None if offset is None else int(offset)


def block_start(n_local: int, comm: MPI.Comm) -> int:
    """First global row of this rank's block when the blocks follow in rank order."""
    start = comm.exscan(int(n_local), op=MPI.SUM)
    return 0 if comm.rank == 0 or start is None else int(start)


def write_rows(path: str | Path, blocks: Sequence[tuple[int | None, np.ndarray]], comm: MPI.Comm) -> None:
    """Write each rank's ``(byte offset, array)`` blocks into the existing file ``path``
    (collective; every rank passes the same number of blocks, empty ones included) and
    flush them to disk. Raises where the file cannot be opened or written (MPI returns
    file errors to the caller): the caller tells the other ranks."""
    fh = MPI.File.Open(comm, str(path), MPI.MODE_WRONLY)
    try:
        for offset, data in blocks:
            flat = np.ascontiguousarray(data).reshape(-1)
            fh.Write_at_all(0 if offset is None else offset, flat if offset is not None else flat[:0])
        fh.Sync()
    finally:
        fh.Close()


def fsync(path: str | Path) -> None:
    """Flush a file or directory to disk, as far as the file system allows."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def gather_rows(keys: np.ndarray, values: np.ndarray, comm: MPI.Comm) -> tuple[np.ndarray, np.ndarray]:
    """All ranks' rows on rank 0, in rank order (the others keep their own)."""
    parts = comm.gather((keys, values), root=0)
    if comm.rank != 0:
        return keys, values
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def row_range(n_rows: int, comm: MPI.Comm) -> tuple[int, int]:
    """This rank's share [lo, hi) of ``n_rows`` rows split evenly in rank order."""
    base, extra = divmod(int(n_rows), comm.size)
    lo = comm.rank * base + min(comm.rank, extra)
    return lo, lo + base + (1 if comm.rank < extra else 0)


def read_row_slices(path: str | Path, groups: Sequence[str], comm: MPI.Comm,
                    on_root: bool = False) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The ``keys`` and ``values`` rows of each HDF5 group in ``groups`` that this rank
    reads (serial h5py, read-only): an even slice of each (:func:`row_range`), or, with
    ``on_root``, all of them on rank 0 and none elsewhere."""
    import h5py

    out = {}
    if on_root and comm.rank != 0:
        return out
    with h5py.File(path, "r") as h5:
        for name in groups:
            keys, values = h5[name]["keys"], h5[name]["values"]
            lo, hi = (0, values.shape[0]) if on_root else row_range(values.shape[0], comm)
            out[name] = (keys[lo:hi], values[lo:hi])
    return out


def route_to_boxes(keys: np.ndarray, values: np.ndarray, box: tuple[np.ndarray, np.ndarray] | None,
                   comm: MPI.Comm) -> tuple[np.ndarray, np.ndarray]:
    """Send every row (``keys[i]``, ``values[i]``) to each rank whose ``box`` (lower and
    upper corner of its keys, None for a rank without any) contains ``keys[i]``; return the
    rows this rank receives, in rank order of their senders (collective)."""
    if comm.size == 1:
        return keys, values
    width, bs = keys.shape[1], values.shape[1]
    boxes = comm.allgather(box)
    keys = np.ascontiguousarray(keys, dtype=np.float64)
    order, counts = [], np.zeros(comm.size, dtype=np.int64)
    for r, b in enumerate(boxes):
        if b is None or keys.shape[0] == 0:
            continue
        inside = np.flatnonzero(np.all((keys >= b[0]) & (keys <= b[1]), axis=1))
        order.append(inside)
        counts[r] = inside.size
    order = np.concatenate(order) if order else np.zeros(0, dtype=np.int64)
    recv_counts = np.asarray(comm.alltoall(counts.tolist()), dtype=np.int64)
    send_k, send_v = keys[order], np.ascontiguousarray(values[order])
    recv_k = np.empty((int(recv_counts.sum()), width), dtype=np.float64)
    recv_v = np.empty((int(recv_counts.sum()), bs), dtype=values.dtype)
    for send, recv, w in ((send_k, recv_k, width), (send_v, recv_v, bs)):
        sc, rc = counts * w, recv_counts * w
        sd = np.concatenate([[0], np.cumsum(sc)[:-1]])
        rd = np.concatenate([[0], np.cumsum(rc)[:-1]])
        comm.Alltoallv([send.reshape(-1), (sc, sd)], [recv.reshape(-1), (rc, rd)])
    return recv_k, recv_v
