"""A local sweep whose runs are killed at random moments, relaunched until it is done.

Two short fracture runs (tests/data/fracture_small.yaml, coarsened; fields at every
accepted step, a checkpoint every second one) run as a local sweep. While the sweep
runs, a watcher kills each run with SIGKILL or SIGTERM at a moment drawn from a seeded
random generator: after a delay, at a history row, while the checkpoint is being written
(``checkpoint.h5.tmp`` exists) or while the field file grows. The sweep is launched again
until it reports every run done. Then:

* every run is complete and its history equals that of the uninterrupted run (every
  column but the wall time), its field series holds the same time steps;
* a copy of a run killed by SIGKILL while writing its fields, not restarted, is read by
  ``ssbfrac post`` up to its last complete field output, without a traceback.

SSBFRAC_CHAOS_SEED chooses another seed (the default one is fixed, so that a failure
can be replayed).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from conftest import ROOT, ssbfrac_cmd, subprocess_env

FRACTURE = ROOT / "tests" / "data" / "fracture_small.yaml"
RUNS = ["seed=4", "seed=5"]
SETTINGS = ["loading.steps: 6", "loading.path: [0.0, 0.6]", "geometry.mesh.size: 0.3e-6",
            "geometry.mesh.interface_size: 0.2e-6", "output.fields_every: 1", "output.checkpoint_every: 2"]
#: launches with kills; the sweep is then launched in peace until it is done
CHAOS_LAUNCHES = 3
#: (trigger, signal) of the kills, one per run and launch: the first, then the others in an
#: order the seed shuffles
KILLS = [("fields", signal.SIGKILL), ("checkpoint", signal.SIGKILL), ("rows", signal.SIGTERM),
         ("time", signal.SIGKILL), ("fields", signal.SIGTERM), ("rows", signal.SIGKILL)]


def write_sweep(tmp: Path) -> Path:
    path = tmp / "chaos.yaml"
    path.write_text(f"name: chaos\nbase: {FRACTURE}\nparameters: {{geometry.particles.seed: [4, 5]}}\n"
                    f"set: {{{', '.join(SETTINGS)}}}\nlocal: {{parallel: 2, checkpoint_interval: 0}}\n")
    return path


def sweep(path: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(ssbfrac_cmd() + ["sweep", str(path), "--out", str(out), *extra], capture_output=True,
                          text=True, env=subprocess_env(), timeout=300, check=False)


def running_pid(out: Path, name: str) -> int | None:
    """The PID of the run's ``ssbfrac run`` process while the sweep records it as running."""
    try:
        words = (out / "logs" / f"{name}.state").read_text().split()
    except OSError:
        return None
    return int(words[2]) if words[:1] == ["running"] and len(words) > 2 else None


def rows(path: Path) -> int:
    try:
        return len(path.read_text().splitlines()) - 1
    except OSError:
        return 0


class Killer(threading.Thread):
    """Kills the run ``name`` of the sweep in ``out`` with ``sig`` when its trigger fires:
    ``("time", s)`` after s seconds, ``("rows", n)`` at n history rows, ``("checkpoint",)``
    while checkpoint.h5.tmp exists, ``("fields",)`` when fields.h5 grows after the first
    accepted step."""

    def __init__(self, out: Path, name: str, trigger: tuple, sig: int, done: threading.Event):
        super().__init__(daemon=True)
        self.run_dir, self.out, self.name, self.trigger, self.sig, self.done = out / name, out, name, trigger, sig, done
        self.fired: str | None = None

    def fires(self, started: float, size: list) -> bool:
        kind = self.trigger[0]
        if kind == "time":
            return time.monotonic() - started >= self.trigger[1]
        if kind == "rows":
            return rows(self.run_dir / "history.csv") >= self.trigger[1]
        if kind == "checkpoint":
            return (self.run_dir / "checkpoint.h5.tmp").exists()
        try:  # a field output after the first one (not the mesh, not a file deleted by --overwrite)
            now = (self.run_dir / "fields.h5").stat().st_size if rows(self.run_dir / "history.csv") >= 2 else None
        except OSError:
            now = None
        changed = None not in (now, size[0]) and now != size[0]
        size[0] = now
        return changed

    def run(self) -> None:
        pid = None
        while pid is None and not self.done.is_set():
            pid = running_pid(self.out, self.name)
            time.sleep(0.002)
        started, size = time.monotonic(), [None]
        while not self.done.is_set():
            if self.fires(started, size):
                try:
                    os.kill(pid, self.sig)
                    self.fired = f"{self.name}: {signal.Signals(self.sig).name} on {self.trigger}"
                except ProcessLookupError:
                    pass
                return
            time.sleep(0.001)


def history_difference(ref: Path, run: Path) -> list[str]:
    """Columns (all but the wall time) where two histories differ beyond solver tolerance."""
    from solver.runs.writers import read_history

    a, b = read_history(ref / "history.csv"), read_history(run / "history.csv")
    if list(a) != list(b) or len(a["step"]) != len(b["step"]):
        return [f"columns or rows differ: {len(a['step'])} rows, {len(b['step'])} rows"]
    bad = []
    for col in a:
        x, y = a[col], b[col]
        if col == "wall":
            continue
        if x.dtype.kind not in "fi":
            same = list(x) == list(y)
        else:
            scale = max(float(np.nanmax(np.abs(x))), 1e-30)
            same = np.allclose(x, y, rtol=1e-6, atol=1e-6 * scale, equal_nan=True)
        if not same:
            bad.append(col)
    return bad


def series_times(xdmf: Path) -> dict[str, list[float]]:
    """Time steps of every function's series in an XDMF file of DOLFINx."""
    domain = ET.parse(xdmf).getroot().find("Domain")
    return {g.get("Name"): [float(s.find("Time").get("Value")) for s in g.findall("Grid")]
            for g in domain.findall("Grid") if g.get("CollectionType") == "Temporal"}


def test_a_sweep_killed_at_random_moments_ends_as_if_never_interrupted(tmp_path):
    from postprocess.fields import read_field_file
    from solver.runs.writers import read_history

    seed = int(os.environ.get("SSBFRAC_CHAOS_SEED", "2026"))
    rng = random.Random(seed)
    path = write_sweep(tmp_path)
    ref, out, incomplete = tmp_path / "ref", tmp_path / "out", tmp_path / "incomplete"
    r = sweep(path, ref)
    assert r.returncode == 0, r.stdout + r.stderr

    kills = KILLS[:1] + rng.sample(KILLS[1:], len(KILLS) - 1)  # the first: a run killed while writing fields
    fired, launches, killed_name, r = [], 0, None, None
    while True:
        chaos = launches < CHAOS_LAUNCHES
        assert launches < CHAOS_LAUNCHES + 3, f"not done after {launches} launches (seed {seed}): {r.stdout}"
        done, killers = threading.Event(), []
        if chaos:
            for name in RUNS:
                if not (out / name / "summary.json").exists():
                    kind, sig = kills.pop(0) if kills else (rng.choice(["time", "rows", "fields"]), signal.SIGKILL)
                    trigger = {"time": (kind, rng.uniform(0.5, 6.0)), "rows": (kind, rng.randint(1, 9))}.get(kind, (kind,))
                    killers.append(Killer(out, name, trigger, sig, done))
        for k in killers:
            k.start()
        r = sweep(path, out)
        done.set()
        for k in killers:
            k.join()
            if k.fired:
                fired.append(k.fired)
                if k.sig == signal.SIGKILL and k.trigger[0] == "fields" and not incomplete.exists():
                    shutil.copytree(out / k.name, incomplete, symlinks=True)
                    killed_name = k.name
        launches += 1
        if r.returncode == 0:
            break
        assert "failed:" not in r.stdout, r.stdout + f"seed {seed}, kills: {fired}"
    context = f"seed {seed}, {launches} launches, kills: {fired}"
    assert len(fired) >= 3, context

    status = sweep(path, out, "--status")
    assert "2 done, 0 running, 0 failed, 0 pending" in status.stdout, status.stdout + context
    for name in RUNS:
        run, base = out / name, ref / name
        assert not history_difference(base, run), (name, history_difference(base, run), context)
        summary = json.loads((run / "summary.json").read_text())
        assert summary["field_files"] == ["fields.xdmf"], (name, summary["field_files"], context)
        assert series_times(run / "fields.xdmf") == series_times(base / "fields.xdmf"), (name, context)
        assert not (run / "checkpoint.h5").exists() and not (run / "fault.log").exists(), (name, context)

    # a run killed while writing its fields, not restarted: read up to its last complete output
    assert incomplete.exists(), context
    accepted = int(read_history(incomplete / "history.csv")["accepted"].sum())
    ff = read_field_file(incomplete / "fields.h5")
    # every output before the one cut (a kill during a restart's cut-back may leave more outputs than rows)
    assert len(ff.times) >= accepted - 1, (accepted, ff.times, ff.incomplete, context)
    reference = series_times(ref / killed_name / "fields.xdmf")["damage"]
    assert np.allclose(ff.times, reference[:len(ff.times)], rtol=1e-9), (ff.times, reference, context)
    r = subprocess.run(ssbfrac_cmd() + ["post", str(incomplete), "--steps", "-1", "--formats", "png"],
                       capture_output=True, text=True, env=subprocess_env(), timeout=120, check=False)
    assert r.returncode == 0 and "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr + context
    assert (incomplete / "plots" / f"fields_{len(ff.times) - 1:04d}.png").exists(), r.stdout + context
    if ff.incomplete:
        assert "incomplete in fields.h5" in r.stdout, r.stdout
