"""Shared fixtures. Importing ``solver`` first keeps the DOLFINx wheel's import order."""

import os
import shutil
import sys
from pathlib import Path

import pytest

import solver  # noqa: F401

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


def subprocess_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env
