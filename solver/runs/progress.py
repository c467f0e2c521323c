"""Progress of a run on rank 0: a tqdm bar on a terminal, plain lines in batch jobs."""

from __future__ import annotations

import sys
import time

from mpi4py import MPI


class Progress:
    """Progress on rank 0: a tqdm bar on a terminal, plain lines in batch jobs."""

    def __init__(self, comm: MPI.Comm, total: float, mode: str = "auto", label: str = "ssbfrac"):
        self.active = comm.rank == 0 and mode != "none"
        self.bar = None
        self.total = total
        self.label = label
        self._last_line = 0.0
        self._t0 = time.perf_counter()
        if not self.active:
            return
        use_bar = mode == "bar" or (mode == "auto" and sys.stderr.isatty())
        if use_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=label, unit="load", bar_format="{l_bar}{bar}| {n:.3f}/{total:.3f} [{elapsed}<{remaining}] {postfix}")

    def set_total(self, total: float) -> None:
        self.total = total
        if self.bar is not None:
            self.bar.total = total
            self.bar.refresh()

    def update(self, position: float, info: str) -> None:
        if not self.active:
            return
        if self.bar is not None:
            self.bar.n = min(position, self.total)
            self.bar.set_postfix_str(info, refresh=True)
        else:
            now = time.perf_counter()
            if now - self._last_line >= 2.0 or position >= self.total:
                self._last_line = now
                pct = 100.0 * position / self.total if self.total else 100.0
                print(f"[{self.label}] {pct:5.1f}% {info} ({now - self._t0:.1f} s)", flush=True)

    def message(self, text: str) -> None:
        if not self.active:
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(f"[{self.label}] {text}", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
