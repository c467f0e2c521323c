"""Run every benchmark of this folder in turn and print their figures (`make bench`).

    python benchmarks/run_all.py [--quick]

--quick skips the long ones (3D meshing, the fracture-scheme comparison on the default
case, the peer code's benchmark, checkpoint I/O at 2.4M DOFs). Each benchmark prints its own targets; nothing is asserted here.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    ("mesh_2d.py", [], False),
    ("scaling.py", [], False),
    ("cycling.py", [], False),
    ("fracture_scheme.py", [], True),
    ("profile_fracture.py", [], False),
    ("peers.py", [], True),
    ("mesh_3d.py", [], True),
    ("checkpoint_io.py", [], True),
]


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    failed = []
    for script, args, long_ in BENCHMARKS:
        if quick and long_:
            print(f"== {script}: skipped (--quick)")
            continue
        print(f"== {script}", flush=True)
        t = time.perf_counter()
        r = subprocess.run([sys.executable, str(HERE / script), *args])
        print(f"== {script}: {'ok' if r.returncode == 0 else 'FAILED'} in {time.perf_counter() - t:.0f} s", flush=True)
        if r.returncode != 0:
            failed.append(script)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
