"""Post-processing of a study: every sweep (``ssbfrac post SWEEP_DIR``) and a cost table.

:func:`post_study` writes ``STUDY_DIR/study.csv``: one row per sweep (runs done, failed,
not finished, CPU time of the done runs = wall time x MPI ranks, in s and h) and a last
row ``total``.
"""

from __future__ import annotations

import csv
from pathlib import Path

from postprocess.history import PostprocessError, read_summary
from postprocess.sweep import post_sweep

COLUMNS = ["sweep", "runs", "done", "failed", "unfinished", "cpu_time_s", "cpu_time_h"]


def cpu_time(run_dir: Path) -> float:
    """CPU time of a complete run: wall time x ranks (of each attempt, for restarted runs)."""
    summary = read_summary(run_dir) or {}
    wall = float(summary.get("wall_time_s") or 0.0)
    ranks = summary.get("ranks_per_attempt") or [summary.get("ranks") or 1]
    return wall * max(int(r) for r in ranks)


def post_study(study_dir: str | Path, sweep_dirs: list[Path], formats=("png", "pdf")) -> dict:
    """Post-process each sweep directory and write study.csv. Returns
    ``{"path": study.csv, "rows": [...], "total": {...}, "sweeps": {name: post_sweep result}}``."""
    study_dir = Path(study_dir)
    rows, results = [], {}
    for d in sweep_dirs:
        d = Path(d)
        row = {"sweep": d.name, "runs": 0, "done": 0, "failed": 0, "unfinished": 0, "cpu_time_s": 0.0}
        if d.is_dir():
            try:
                result = post_sweep(d, formats=formats)
            except PostprocessError as exc:
                print(f"  {d}: {exc}")
                result = None
            if result is not None:
                results[d.name] = result
                for r, run_dir in zip(result["rows"], result["run_dirs"]):
                    row["runs"] += 1
                    key = {"complete": "done", "failed": "failed"}.get(r["status"], "unfinished")
                    row[key] += 1
                    if r["status"] == "complete":
                        row["cpu_time_s"] += cpu_time(run_dir)
        rows.append(row)
    total = {"sweep": "total", **{c: sum(r[c] for r in rows) for c in COLUMNS[1:6]}}
    for r in rows + [total]:
        r["cpu_time_h"] = r["cpu_time_s"] / 3600.0
    study_dir.mkdir(parents=True, exist_ok=True)
    path = study_dir / "study.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for r in rows + [total]:
            writer.writerow({c: (f"{r[c]:.6g}" if isinstance(r[c], float) else r[c]) for c in COLUMNS})
    return {"path": path, "rows": rows, "total": total, "sweeps": results}
