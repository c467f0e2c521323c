"""Many runs: parameter sweeps and model studies, on this machine or on Slurm.

Nothing below ``solver.hpc`` imports it: it only composes runs."""
