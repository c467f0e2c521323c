"""Data safety of run directories: ssbfrac writes only into directories it made, deletes
only its own files, and two runs never share a directory."""

import multiprocessing as mp
import os
import signal

import pytest
from mpi4py import MPI

import rundir_workers

from conftest import run_ssbfrac as run
from solver.runs.rundir import (MARKER, RunError, claim_run_directory, in_use, make_marked_directory, own_files,
                           run_state)
from solver.hpc.spec import format_value

COMM = MPI.COMM_SELF


def _fake_run(d, extra=()):
    """A finished run directory as ssbfrac leaves it, plus the user's files ``extra``."""
    claim_run_directory(d, "new", COMM).release()
    for name in ("case.yaml", "mesh.msh", "mesh.json", "history.csv", "summary.json", "fields.xdmf", "fields.h5"):
        (d / name).write_text("ssbfrac\n")
    (d / "plots").mkdir()
    (d / "plots" / "crack.png").write_text("png")
    (d / "fields.bp").mkdir()
    (d / "fields.bp" / "data.0").write_text("adios")
    for name in extra:
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_text("the user's\n")


def test_overwrite_deletes_only_what_ssbfrac_wrote(tmp_path):
    d = tmp_path / "run"
    _fake_run(d, extra=("thesis.tex", "old/results.csv", "plots/my_notes.txt"))
    assert run_state(d) == "complete"
    with claim_run_directory(d, "overwrite", COMM):
        left = sorted(p.relative_to(d).as_posix() for p in d.rglob("*"))
    assert left == [MARKER, "old", "old/results.csv", "plots", "plots/my_notes.txt", "thesis.tex"]


def test_own_files_lists_no_user_file(tmp_path):
    d = tmp_path / "run"
    _fake_run(d, extra=("notes.md", "plots/sub/fig.png", "case.yaml.orig"))
    names = {p.relative_to(d).as_posix() for p in own_files(d)}
    assert "notes.md" not in names and "plots/sub/fig.png" not in names and "case.yaml.orig" not in names
    assert {"case.yaml", "summary.json", "fields.bp", "plots/crack.png", MARKER} <= names


@pytest.mark.parametrize("mode", ["new", "overwrite", "restart"])
def test_foreign_directory_is_never_claimed(tmp_path, mode):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "case.yaml").write_text("name: the user's own case\n")
    (d / "thesis.tex").write_text("precious")
    with pytest.raises(RunError, match="was not made by ssbfrac"):
        claim_run_directory(d, mode, COMM)
    assert sorted(p.name for p in d.iterdir()) == ["case.yaml", "thesis.tex"]


def test_new_and_empty_directories_are_claimed(tmp_path):
    with claim_run_directory(tmp_path / "a" / "b", "new", COMM):
        assert (tmp_path / "a" / "b" / MARKER).is_file()
    (tmp_path / "empty").mkdir()
    with claim_run_directory(tmp_path / "empty", "new", COMM):
        pass
    with pytest.raises(RunError, match="already exists"):
        _fake_run(tmp_path / "done")
        claim_run_directory(tmp_path / "done", "new", COMM)


def test_file_and_unusable_paths_are_messages(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    for bad, expected in ((f, "not a directory"), (f / "sub", "cannot create the run directory"),
                          (tmp_path / ("x" * 300), "file name too long"),
                          ("/proc/ssbfrac-test", "cannot create the run directory")):
        with pytest.raises(RunError, match=expected):
            claim_run_directory(bad, "new", COMM)


def test_a_held_directory_is_refused_and_freed_when_its_run_dies(tmp_path):
    d = tmp_path / "run"
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=rundir_workers.hold, args=(d, ready))
    holder.start()
    try:
        assert ready.wait(30)
        assert run_state(d) == "empty"  # nothing but the marker yet
        (d / "history.csv").write_text("step\n")  # the run has started writing
        assert run_state(d) == "running"
        assert in_use(d)["pid"] == holder.pid
        for mode in ("overwrite", "restart"):
            with pytest.raises(RunError, match=f"another ssbfrac run is using this directory \\(PID {holder.pid}"):
                claim_run_directory(d, mode, COMM)
        os.kill(holder.pid, signal.SIGKILL)  # no clean-up: the lock goes with the process
        holder.join(10)
        assert run_state(d) == "incomplete" and in_use(d) is None
        with claim_run_directory(d, "overwrite", COMM):
            assert not (d / "history.csv").exists()
    finally:
        if holder.is_alive():
            holder.kill()
        holder.join(10)


def test_runs_started_together_never_share_a_directory(tmp_path):
    ctx = mp.get_context("spawn")
    for trial in range(3):
        d = tmp_path / f"race{trial}"
        start, results = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=rundir_workers.race, args=(d, start, results)) for _ in range(3)]
        for p in procs:
            p.start()
        start.set()
        got = [results.get(timeout=30) for _ in procs]
        for p in procs:
            p.join(10)
        assert got.count("won") == 1, got
        assert all("another ssbfrac run" in g or "already exists" in g for g in got if g != "won"), got


def test_marked_directories_for_meshes_sweeps_and_studies(tmp_path):
    make_marked_directory(tmp_path / "sweep", "sweep")
    make_marked_directory(tmp_path / "sweep", "sweep")  # again: it is ssbfrac's
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "data.csv").write_text("1,2\n")
    with pytest.raises(RunError, match="was not made by ssbfrac"):
        make_marked_directory(tmp_path / "theirs", "mesh")


@pytest.mark.parametrize("value", ["../x", "a/../../b", "..", "/etc/passwd", ".hidden", "a b\\c"])
def test_sweep_values_make_plain_directory_names(value):
    text = format_value(value)
    assert "/" not in text and "\\" not in text and ".." not in text and not text.startswith(".")


# ----------------------------------------------------------------------------- the command line
@pytest.mark.parametrize("name", ["..", ".", "a/b", "x" * 101, ".hidden", "-dash", ""])
def test_unsafe_run_names_are_refused(tmp_path, small_case, name):
    r = run(["check", str(small_case), "--set", f"name={name!r}"])
    assert r.returncode == 2 and "name = " in r.stderr, r.stderr


def test_run_refuses_a_users_directory_and_keeps_its_files(tmp_path, small_case):
    d = tmp_path / "d"
    (d / "old").mkdir(parents=True)
    (d / "case.yaml").write_text(small_case.read_text())
    (d / "thesis.tex").write_text("precious")
    (d / "old" / "results.csv").write_text("1\n")
    for extra in ([], ["--overwrite"]):
        r = run(["run", str(d / "case.yaml"), "--out", str(d), "--progress", "none"] + extra)
        assert r.returncode == 2 and "was not made by ssbfrac" in r.stderr, r.stderr
    assert sorted(p.relative_to(d).as_posix() for p in d.rglob("*")) == ["case.yaml", "old", "old/results.csv",
                                                                       "thesis.tex"]
    # a results folder with other runs in it is not a run directory either
    results = tmp_path / "results"
    (results / "other_run").mkdir(parents=True)
    r = run(["run", str(small_case), "--out", str(results), "--overwrite", "--progress", "none"])
    assert r.returncode == 2 and (results / "other_run").is_dir()


def test_unwritable_out_is_a_message(tmp_path, small_case):
    f = tmp_path / "afile"
    f.write_text("x")
    r = run(["run", str(small_case), "--out", str(f / "sub"), "--progress", "none"])
    assert r.returncode == 2 and "cannot create the run directory" in r.stderr and "Traceback" not in r.stderr
