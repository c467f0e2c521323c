"""Post-processing of ssbfrac runs and sweeps (``ssbfrac post``, ``ssbfrac paraview``).

stages        crack-growth stages I-III of a crack curve (onset, stage-II rate, saturation)
history       readers of history.csv, case.yaml and summary.json of a run directory
plots         figures of a run's history (matplotlib, Agg)
fields        fields.h5 read with h5py; the microstructure, damage and stress picture
report        every figure of a run and its report.md
sweep         summary.csv and trend plots of a sweep directory
cli           the ``ssbfrac post`` sub-command
paraview_cli  the ``ssbfrac paraview`` sub-command (runs pvbatch on paraview/render.py)

See docs/postprocessing.md.
"""
