"""What a run records, and when: one history row per step, the field series every
``output.fields_every`` accepted steps and at the end, and (with electrochemistry) the
depth profiles at every field output.

The :class:`Recorder` also keeps the bookkeeping that a checkpoint must hold to continue
the outputs exactly (:meth:`Recorder.book`): rows written, field outputs, accepted steps,
the last accepted row and the field files of the run.
"""

from __future__ import annotations

import time
from pathlib import Path

from mpi4py import MPI

from solver.numerics.finite import check_fields, check_row
from solver.runs.writers import FieldWriter, History, ProfileWriter

#: the solver effort of a step
SOLVER_COLUMNS = ["iterations", "elastic_solves", "damage_solves", "newton_iterations", "linear_iterations"]


def history_columns(stepper, mech) -> list[str]:
    """The columns of history.csv: the stepper's first ones, the mechanics' (``mech``: the
    MechanicsProblem), the solver's, the stepper's extra ones, the wall time."""
    first = list(stepper.columns)
    return first + [c for c in mech.columns() if c not in first] + SOLVER_COLUMNS + \
        list(getattr(stepper, "extra_columns", [])) + ["wall"]


def new_book() -> dict:
    """The bookkeeping of a run that starts (see :meth:`Recorder.book`)."""
    return {"history_rows": 0, "field_outputs": 0, "file_outputs": 0, "accepted": 0, "last": {}, "timings": {},
            "ranks": [], "checkpoints": 0, "field_files": ["fields.xdmf"]}


class Recorder:
    """history.csv, the field series and profiles.csv of a run (collective).

    Args:
        out: the run directory.
        comm: the communicator of the run.
        columns: the history columns (:func:`history_columns`).
        mesh, fields: the mesh and the functions of the field series.
        output: the case's ``output`` section.
        book: the bookkeeping so far (:func:`new_book`, or that of a checkpoint).
        restart: continue the files of an earlier attempt.
        profiles: with electrochemistry, ``profiles(bins) -> dict`` of the depth profiles.
        at_end: ``() -> bool``, whether the loading has ended (the last step's fields are
            always written).
    """

    def __init__(self, out: Path, comm: MPI.Comm, columns: list[str], mesh, fields: list, output, book: dict,
                 restart: bool, profiles=None, at_end=None):
        self.out, self.comm, self.columns, self.output = Path(out), comm, columns, output
        self.history = History(self.out / "history.csv", comm, columns, append=restart)
        attempt = len(book["ranks"]) - 1  # 0 for a first run, k for the k-th restart
        vtx = None
        if output.vtx:
            vtx = self.out / ("fields.bp" if attempt == 0 else f"fields_restart{attempt}.bp")
        self.writer = FieldWriter(self.out / book["field_files"][-1], mesh, fields,
                                  append=restart and book["file_outputs"] > 0, vtx_path=vtx)
        self._profiles = profiles
        self.profile_writer = ProfileWriter(self.out / "profiles.csv", comm, append=restart) if profiles else None
        self._at_end = at_end or (lambda: False)
        self.rows = book["history_rows"]
        self.field_outputs = book["field_outputs"]
        self.file_outputs = book["file_outputs"]
        self.accepted = book["accepted"]
        self.last = dict(book["last"])
        self._book = book
        self.io_time = 0.0  # s spent writing fields and profiles

    def add_row(self, row: dict) -> None:
        check_row(row)  # no inf or nan in the results
        self.history.add(row)
        self.rows += 1

    def write_fields(self, t: float) -> None:
        t0 = time.perf_counter()
        check_fields(self.writer.functions, self.comm, t, self.accepted)
        self.writer.write(t)
        if self.profile_writer is not None:
            self.profile_writer.add(self.accepted, t, self._profiles(self.output.profile_bins))
        self.io_time += time.perf_counter() - t0
        self.field_outputs += 1
        self.file_outputs += 1

    def first(self, row: dict) -> None:
        """The starting state: its row and its fields."""
        self.add_row({"step": 0, "accepted": 1, **{k: 0 for k in SOLVER_COLUMNS}, **row, "wall": 0.0})
        self.write_fields(0.0)

    def on_step(self, rec) -> None:
        """Record a step (:class:`solver.numerics.stepping.StepRecord`)."""
        row = {"step": rec.step, "accepted": int(rec.accepted)}
        row.update({k: getattr(rec.result, k) for k in SOLVER_COLUMNS})
        row.update(rec.extra)
        row.update(rec.measures)
        self.add_row(row)
        if rec.accepted:
            self.accepted += 1
            self.last.update(row)
            every = self.output.fields_every
            if (every and self.accepted % every == 0) or self._at_end():
                self.write_fields(row["time"])

    def book(self) -> dict:
        """The bookkeeping for a checkpoint, with the text of the field series' XDMF file
        (``field_xml``, rank 0): a restart puts it back if a kill cut the file short. The
        field files are consistent on disk after every output (:class:`FieldWriter`)."""
        xml = None
        if self.comm.rank == 0 and self.writer.path.is_file():
            xml = self.writer.path.read_text(errors="replace")
        self._book.update(history_rows=self.rows, field_outputs=self.field_outputs, file_outputs=self.file_outputs,
                          accepted=self.accepted, last=dict(self.last), field_xml=xml)
        return self._book

    def close(self) -> None:
        self.writer.close()
        self.history.close()
        if self.profile_writer is not None:
            self.profile_writer.close()
