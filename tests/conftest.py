"""Shared fixtures. Importing ``solver`` first keeps the DOLFINx wheel's import order."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _pin_blas_kernels() -> None:
    """OpenBLAS chooses its kernels by CPU (AVX2 or AVX-512 on x86), and they round
    differently. Through the damage iteration, which stops at a tolerance, that moves its
    counts by a few (measured on the default case, AVX-512 against AVX2 kernels: up to 4
    iterations in a step, 0.4 % in all; physical columns within 1e-5). The stored
    references were written with the AVX2 ("Haswell") kernels, so the tests use them on
    every CPU that has AVX2 and FMA, in this process and in the runs it starts."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return
    if "avx2" in flags and "fma" in flags:
        os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")


_pin_blas_kernels()

import solver  # noqa: E402, F401

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))


def venv_bin() -> Path:
    return Path(sys.executable).parent


def mpiexec() -> str | None:
    """The mpiexec that matches this Python's MPI (the wheel ships one in the venv)."""
    cand = venv_bin() / "mpiexec"
    if cand.exists():
        return str(cand)
    return shutil.which("mpiexec")


def ssbfrac_cmd() -> list[str]:
    exe = venv_bin() / "ssbfrac"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "solver"]


@pytest.fixture
def small_case(tmp_path) -> Path:
    """A small, fast elastic case file."""
    text = (ROOT / "tests" / "data" / "small.yaml").read_text()
    p = tmp_path / "small.yaml"
    p.write_text(text)
    return p


@pytest.fixture(scope="session")
def small_run(tmp_path_factory) -> Path:
    """The run directory of ``ssbfrac run tests/data/small.yaml``, once per session. Tests
    read it and may add files of their own (plots/, paraview/); they change nothing it holds."""
    out = tmp_path_factory.mktemp("small_run") / "run"
    r = run_ssbfrac(["run", str(ROOT / "tests" / "data" / "small.yaml"), "--out", str(out), "--progress", "none"])
    assert r.returncode == 0, r.stderr
    return out


def subprocess_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def run_ssbfrac(args: list[str], ranks: int = 1, timeout: float = 300) -> subprocess.CompletedProcess:
    """``ssbfrac ARGS`` in a subprocess (under ``mpiexec -n ranks`` when ranks > 1; the test
    is skipped when there is no mpiexec)."""
    cmd = ssbfrac_cmd() + list(args)
    if ranks > 1:
        exe = mpiexec()
        if exe is None:
            pytest.skip("mpiexec not found")
        cmd = [exe, "-n", str(ranks)] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=timeout)


def run_to_completion(case, out, *sets, ranks: int = 1, timeout: float = 900):
    """``ssbfrac run CASE --out OUT --set ...`` that must succeed; returns (summary, the
    accepted rows of history.csv as column arrays)."""
    from solver.runs.writers import read_history

    args = ["run", str(case), "--out", str(out), "--progress", "none"]
    for s in sets:
        args += ["--set", s]
    r = run_ssbfrac(args, ranks=ranks, timeout=timeout)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    summary = json.loads((Path(out) / "summary.json").read_text())
    h = read_history(Path(out) / "history.csv")
    acc = h["accepted"] == 1
    return summary, {k: v[acc] for k, v in h.items()}


def module_run(tmp_path_factory, name: str, case, *sets, timeout: float = 900):
    """``run_to_completion`` into a fresh directory for a module-scoped fixture; returns
    (summary, accepted history rows, run directory)."""
    out = tmp_path_factory.mktemp(name) / "run"
    return run_to_completion(case, out, *sets, timeout=timeout) + (out,)


def runs_to_completion(runs, timeout: float = 900) -> list:
    """``run_to_completion`` of several single-rank runs, ``(case, out, *sets)`` each, two at
    a time where there are two cores (independent runs: the results are those of running
    them one after another); returns their results in order."""
    from concurrent.futures import ThreadPoolExecutor

    workers = max(1, min(2, len(os.sched_getaffinity(0)), len(runs)))
    with ThreadPoolExecutor(workers) as pool:
        jobs = [pool.submit(run_to_completion, case, out, *sets, timeout=timeout) for case, out, *sets in runs]
        return [job.result() for job in jobs]
