"""Electrochemistry of a composite cathode cycled against a lithium-metal electrode:
lithium diffusion in the particles, ionic conduction in the electrolyte, Butler-Volmer
kinetics on the interfaces, the electronic network and the cycling protocol."""

from solver.physics.electrochemistry.problem import EffectiveConductivity, ElectrochemistryProblem, run_protocol

__all__ = ["ElectrochemistryProblem", "EffectiveConductivity", "run_protocol"]
