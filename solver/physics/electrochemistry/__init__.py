"""Electrochemistry of a composite cathode cycled against a lithium-metal electrode:
lithium diffusion in the particles, ionic conduction in the electrolyte, Butler-Volmer
kinetics on the interfaces, the electronic network and the cycling protocol.

Modules: :mod:`.kinetics` (Butler-Volmer laws, exchange current), :mod:`.fields` (the
(x, phi_e) field problem and its Newton solver), :mod:`.circuit` (particle potentials,
resistance network, control equations, sensitivities), :mod:`.control` (the solution of a
time step: coupled Newton fast path, nested robust iteration), :mod:`.protocol` (segments,
position in the protocol, step results, cell state), :mod:`.homogenisation` (effective
ionic conductivity), :mod:`.ocv` (open-circuit voltage curves) and :mod:`.problem`
(:class:`ElectrochemistryProblem`, which composes them, and :func:`run_protocol`)."""

from solver.physics.electrochemistry.homogenisation import EffectiveConductivity
from solver.physics.electrochemistry.problem import ElectrochemistryProblem, run_protocol

__all__ = ["ElectrochemistryProblem", "EffectiveConductivity", "run_protocol"]
