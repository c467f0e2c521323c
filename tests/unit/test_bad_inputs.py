"""Bad inputs: every one is refused with a message that names the field (or the file and
line), before any packing or meshing; nothing is read without a bound.

Most cases are checked in-process (``CaseError`` is what ``ssbfrac`` turns into exit
status 2); a handful run the command itself."""

import copy
import json
import subprocess
import time

import pytest

from conftest import ROOT, run_ssbfrac, ssbfrac_cmd, subprocess_env
from solver.config import CaseError, apply_overrides, load_case, read_yaml, validate_case
from solver.config.estimate import check_size
from solver.config.preflight import preflight

SMALL = ROOT / "tests" / "data" / "small.yaml"  # prescribed lithiation, no fracture
CYCLING = ROOT / "cases" / "bucci2017.yaml"  # galvanostatic, fracture
SMALL_DATA = read_yaml(SMALL)
CYCLING_DATA = read_yaml(CYCLING)


def refused(data: dict, sets, source: str = "case.yaml") -> str:
    """The message of the CaseError raised by validating ``data`` with ``sets`` (and by the
    checks before packing); fails if the case is accepted."""
    sets = [sets] if isinstance(sets, str) else list(sets)
    with pytest.raises(CaseError) as err:
        case = validate_case(apply_overrides(copy.deepcopy(data), sets), source)
        preflight(case, source)
    return str(err.value)


#: a cohesive fracture set-up of the small case (E_SE 20 GPa: Irwin's length 0.53 um, the
#: largest ell 0.34 um with linear softening, 0.21 um with exponential softening)
CZ = ["fracture.enabled=true", "fracture.model=cohesive", "geometry.mesh.size=0.1e-6",
      "geometry.mesh.interface_size=0.1e-6", "materials.electrolyte.fracture={K_Ic: 0.23e6, strength: 0.35e9, ell: 0.25e-6}"]


# ----------------------------------------------------------------------------- schema values
# (overrides, field named in the message, fragment of the message); on the small case
SCHEMA = [
    # top level and limits
    ("name=''", "name", "pattern"),
    ("name='../x'", "name", "pattern"),
    ("dimension=true", "dimension", "not true/false"),
    ("dimension=2.5", "dimension", "2 or 3"),
    ("description=[1, 2]", "description", "string"),
    ("solver={}", "solver", "unknown key"),
    ("limits.max_cells=-1", "limits.max_cells", "greater than or equal to 1"),
    ("limits.max_cells=true", "limits.max_cells", "true/false"),
    ("limits.max_memory_gb=0", "limits.max_memory_gb", "greater than 0"),
    ("limits.max_particles=1e7", "limits.max_particles", "less than or equal to 999000"),
    ("limits.max_dofs=.inf", "limits.max_dofs", "finite"),
    ("limits.foo=1", "limits.foo", "unknown key"),
    # geometry
    ("geometry.size=[1e-5, 1e-5, 1e-5]", "geometry.particles.shape", "geometry.size has 3 entries"),
    ("geometry.size=[0, 30e-6]", "geometry.size.0", "greater than or equal to 1e-07 m"),
    ("geometry.size=[.nan, 30e-6]", "geometry.size.0", "finite"),
    ("geometry.size=[30e-6, .inf]", "geometry.size.1", "finite"),
    ("geometry.size=[2, 2]", "geometry.size.0", "less than or equal to 0.01 m"),
    ("geometry.size=[true, 30e-6]", "geometry.size.0", "not true/false"),
    ("geometry.size=30e-6", "geometry.size", "valid list"),
    ("geometry.size=[a, b]", "geometry.size.0", "valid number"),
    ("geometry.separator_thickness=-1e-6", "geometry.separator_thickness", "greater than or equal to 0"),
    ("geometry.separator_thickness=1e-12", "geometry.separator_thickness", "at least 1e-09 m"),
    ("geometry.separator_thickness=30e-6", "separator_thickness", "leaves no room"),
    ("geometry.collector_layer_thickness=.nan", "geometry.collector_layer_thickness", "finite"),
    ("geometry.particles.radius=1e-9", "geometry.particles.radius", "greater than or equal to 1e-08 m"),
    ("geometry.particles.radius=1e-300", "geometry.particles.radius", "greater than or equal to 1e-08 m"),
    ("geometry.particles.radius=true", "geometry.particles.radius", "not true/false"),
    ("geometry.particles.radius='3e-6'", "geometry.particles.radius", "valid number"),
    ("geometry.particles.radius=2e-3", "geometry.particles.radius", "less than or equal to 0.001 m"),
    ("geometry.particles.sides=2", "geometry.particles.sides", "greater than or equal to 3"),
    ("geometry.particles.sides=4.5", "geometry.particles.sides", "valid integer"),
    ("geometry.particles.sides=100", "geometry.particles.sides", "less than or equal to 24"),
    ("geometry.particles.sides=true", "geometry.particles.sides", "not true/false"),
    ("geometry.particles.irregularity=1.0", "geometry.particles.irregularity", "less than 1"),
    (["geometry.particles.shape=circle", "geometry.particles.irregularity=0.3"], "geometry.particles.irregularity",
     "polygons only"),
    ("geometry.particles.corner_radius=1e-12", "geometry.particles.corner_radius", "at least 1e-09 m"),
    ("geometry.particles.corner_radius=2e-6", "geometry.particles.corner_radius", "too large"),
    (["geometry.particles.shape=ellipse", "geometry.particles.aspect=[0.001]"], "geometry.particles.aspect.0",
     "greater than or equal to 0.02"),
    ("geometry.particles.aspect=[0.5]", "geometry.particles.aspect", "ellipses and ellipsoids only"),
    ("geometry.particles.volume_fraction=0.95", "geometry.particles.volume_fraction", "less than 0.9"),
    (["geometry.particles.shape=circle", "geometry.particles.volume_fraction=0.89"],
     "geometry.particles.volume_fraction", "impossible"),
    ("geometry.particles.volume_fraction=1e-9", "geometry.particles.volume_fraction", "greater than or equal to 0.001"),
    ("geometry.particles.min_gap=0", "geometry.particles.min_gap", "greater than or equal to 1e-09 m"),
    ("geometry.particles.boundary_gap=.inf", "geometry.particles.boundary_gap", "finite"),
    ("geometry.particles.overlap=2e-6", "geometry.particles.overlap", "too deep"),
    ("geometry.particles.orientation=sideways", "geometry.particles.orientation", "random"),
    ("geometry.particles.orientation=[1, 2, 3]", "geometry.particles.orientation", "in 2D"),
    ("geometry.particles.orientation=.nan", "geometry.particles.orientation", "finite number of degrees"),
    ("geometry.particles.orientation=true", "geometry.particles.orientation", "finite number of degrees"),
    ("geometry.particles.coating=0.1e-6", "geometry.particles.coating", "needs materials.coating"),
    ("geometry.particles.active_b_share=0.5", "geometry.particles.active_b_share", "needs materials.active_b"),
    ("geometry.particles.periodic=1", "geometry.particles.periodic", "true or false"),
    ("geometry.particles.periodic=yes please", "geometry.particles.periodic", "true or false"),
    ("geometry.particles.seed=-1", "geometry.particles.seed", "greater than or equal to 0"),
    ("geometry.particles.seed=1.5", "geometry.particles.seed", "valid integer"),
    ("geometry.particles.max_attempts=1000000000", "geometry.particles.max_attempts", "less than or equal to 200000"),
    ("geometry.particles.max_attempts=10", "geometry.particles.max_attempts", "greater than or equal to 100"),
    ("geometry.particles.shape=sphere", "geometry.particles.shape", "3D shape"),
    ("geometry.particles.vertices=3", "geometry.particles.vertices", "greater than or equal to 6"),
    ("geometry.particles.polyhedron=prism", "geometry.particles.polyhedron", "cube"),
    ("geometry.particles.size_distribution={type: lognormal}", "geometry.particles.size_distribution", "needs std"),
    ("geometry.particles.size_distribution={type: list, radii: [1e-6, -1e-6]}",
     "geometry.particles.size_distribution.radii.1", "greater than or equal to 1e-08 m"),
    ("geometry.particles.size_distribution={type: normal, std: 0.5e-6, min: 3e-6, max: 1e-6}",
     "geometry.particles.size_distribution", "must be smaller than max"),
    ("geometry.particles.size_distribution={type: weibull, std: 1e-6}", "geometry.particles.size_distribution.type",
     "lognormal"),
    ("geometry.particles.file=nowhere.csv", "geometry.particles.file", "not found"),
    ("geometry.particles.file=particles.txt", "geometry.particles.file", ".csv or .json"),
    ("geometry.mesh.size=0", "geometry.mesh.size", "greater than or equal to 1e-09 m"),
    ("geometry.mesh.size=1.0", "geometry.mesh.size", "less than or equal to 0.01 m"),
    ("geometry.mesh.interface_size=2e-6", "geometry.mesh.interface_size", "must not exceed size"),
    (["geometry.mesh.size=3e-6", "geometry.mesh.interface_size=2.9e-6"], "geometry.mesh.interface_size",
     "larger than the particle radius"),
    ("geometry.mesh.transition=-1", "geometry.mesh.transition", "greater than or equal to 1e-09 m"),
    ("geometry.mesh.corner_size=0.5e-6", "geometry.mesh.corner_size", "must not exceed interface_size"),
    ("geometry.mesh.particle_size=.nan", "geometry.mesh.particle_size", "finite"),
    ("geometry.mesh.order=3", "geometry.mesh.order", "1 or 2"),
    ("geometry.mesh.order=true", "geometry.mesh.order", "not true/false"),
    ("geometry.mesh.file=mesh.vtk", "geometry.mesh.file", "Gmsh .msh"),
    ("geometry.mesh.file=nowhere.msh", "geometry.mesh.file", "not found"),
    ("geometry.mesh.colour=red", "geometry.mesh.colour", "unknown key"),
    # materials
    ("materials.electrolyte.E=1e-300", "materials.electrolyte.E", "greater than or equal to 1000 Pa"),
    ("materials.electrolyte.E=true", "materials.electrolyte.E", "not true/false"),
    ("materials.electrolyte.E=1e14", "materials.electrolyte.E", "less than or equal to 1e+13 Pa"),
    ("materials.electrolyte.E='20 GPa'", "materials.electrolyte.E", "valid number"),
    ("materials.electrolyte.E=.inf", "materials.electrolyte.E", "finite"),
    ("materials.electrolyte.E=.nan", "materials.electrolyte.E", "finite"),
    ("materials.active.nu=-1", "materials.active.nu", "greater than -1"),
    ("materials.active.nu=0.5", "materials.active.nu", "less than 0.5"),
    ("materials.active.nu=false", "materials.active.nu", "not true/false"),
    ("materials.active.expansion=5", "materials.active.expansion", "less than 3"),
    ("materials.active.expansion=-0.6", "materials.active.expansion", "greater than -0.5"),
    ("materials.active.expansion=true", "materials.active.expansion", "not true/false"),
    ("materials.active.anisotropy=[1, 1]", "materials.active.anisotropy", "at least 3"),
    ("materials.active.anisotropy=[1, -1, 0]", "materials.active.anisotropy", "positive sum"),
    ("materials.active.anisotropy=[1000, -1000, 0.1]", "materials.active.anisotropy", "100 times"),
    ("materials.active.anisotropy=[1, 1, .nan]", "materials.active.anisotropy.2", "finite"),
    ("materials.active.expansion_table={x: [0, 1], strain: [0, 0.1]}", "materials.active", "both given"),
    (["materials.active.expansion=0", "materials.active.expansion_table={x: [0, 0], strain: [0, 0.1]}"],
     "materials.active.expansion_table", "increase strictly"),
    (["materials.active.expansion=0", "materials.active.expansion_table={x: [0, 1], strain: [0, 10]}"],
     "materials.active.expansion_table.strain.1", "less than or equal to 3"),
    (["materials.active.expansion=0", "materials.active.expansion_table={x: [0, 2], strain: [0, 0.1]}"],
     "materials.active.expansion_table", "[0, 1]"),
    ("materials.electrolyte.fracture={Gc: 1e-9, ell: 0.5e-6}", "materials.electrolyte.fracture.Gc",
     "greater than or equal to 0.0001 J/m^2"),
    ("materials.electrolyte.fracture={K_Ic: 1e12, ell: 0.5e-6}", "materials.electrolyte.fracture.K_Ic",
     "less than or equal to 1e+09 Pa*m^0.5"),
    ("materials.electrolyte.fracture={Gc: 4, ell: 1e-12}", "materials.electrolyte.fracture.ell",
     "greater than or equal to 1e-09 m"),
    ("materials.electrolyte.fracture={strength: 1e15, ell: 0.5e-6}", "materials.electrolyte.fracture.strength",
     "less than or equal to 1e+11 Pa"),
    ("materials.electrolyte.fracture={critical_strain: 1.5, ell: 0.5e-6}",
     "materials.electrolyte.fracture.critical_strain", "less than 1"),
    ("materials.electrolyte.fracture={strength: 1e8, critical_strain: 0.01}", "materials.electrolyte.fracture",
     "say the same thing"),
    ("materials.electrolyte.fracture={Gc: true, ell: 0.5e-6}", "materials.electrolyte.fracture.Gc", "not true/false"),
    ("materials.coating={E: 1e9}", "materials.coating.nu", "required"),
    ("materials.separator={E: -1, nu: 0.3}", "materials.separator.E", "greater than or equal to 1000 Pa"),
    ("materials.collector_layer={E: 1e9, nu: 0.3, colour: red}", "materials.collector_layer.colour", "unknown key"),
    ("materials.active_b={E: 1e9, nu: 0.3, expansion: 4}", "materials.active_b.expansion", "less than 3"),
    ("materials.electrolyte.name=[1]", "materials.electrolyte.name", "string"),
    ("materials.metal={E: 1e9, nu: 0.3}", "materials.metal", "unknown key"),
    ("materials.active={nu: 0.3}", "materials.active.E", "required"),
    # mechanics
    ("mechanics.boundary.left=rolller", "mechanics.boundary.left.type", "roller"),
    ("mechanics.boundary.right={type: pressure, value: -5e6}", "mechanics.boundary.right.value",
     "greater than or equal to 0 Pa"),
    ("mechanics.boundary.right={type: pressure, value: 1e12}", "mechanics.boundary.right.value",
     "less than or equal to 1e+10 Pa"),
    ("mechanics.boundary.right={type: pressure, value: .nan}", "mechanics.boundary.right.value", "finite"),
    ("mechanics.boundary.right={type: pressure, value: true}", "mechanics.boundary.right.value", "not true/false"),
    ("mechanics.boundary.top={type: roller, value: 1e6}", "mechanics.boundary.top", "only used with type: pressure"),
    ("mechanics.boundary.front=free", "mechanics.boundary", "only in 3D"),
    ("mechanics.boundary={left: free, right: free}", "mechanics.boundary", "nothing holds the x direction"),
    ("mechanics.boundary.left={type: fixed}", "mechanics.boundary.left", "only with it"),
    ("mechanics.boundary.left={type: roller, components: [y]}", "mechanics.boundary.left", "only with it"),
    ("mechanics.boundary.left={type: fixed, components: [y, y]}", "mechanics.boundary.left", "each component once"),
    ("mechanics.boundary.left={type: fixed, components: [z]}", "mechanics.boundary.left.components", "only xy in 2D"),
    # u_y = 0 on x = 0 and u_x = 0 on y = 0 leave the rotation about the corner free
    ("mechanics.boundary={left: {type: fixed, components: [y]}, bottom: {type: fixed, components: [x]}, "
     "right: free, top: free}", "mechanics.boundary", "rigid motion"),
    ("mechanics.linear_solver=lu", "mechanics.linear_solver", "direct"),
    ("mechanics.petsc_options={-ksp_type: cg}", "mechanics.petsc_options.-ksp_type", "write 'ksp_type'"),
    ("mechanics.petsc_options={ksp_rtol: .inf}", "mechanics.petsc_options.ksp_rtol", "finite"),
    ("mechanics.petsc_options={help: null}", "mechanics.petsc_options.help", "PETSc as a whole"),
    ("mechanics.petsc_options={ksp_type: [cg]}", "mechanics.petsc_options.ksp_type", "a string, a number"),
    ("mechanics.petsc_options=[ksp_type]", "mechanics.petsc_options", "valid dictionary"),
    # prescribed loading
    ("loading.path=[0.0, 1.5]", "loading.path", "[0, 1]"),
    ("loading.path=[0.5]", "loading.path", "at least 2"),
    ("loading.path=[0.0, .nan]", "loading.path.1", "finite"),
    ("loading.path=[0.2, 0.2]", "loading.path", "every segment must change x"),
    ("loading.steps=0", "loading.steps", "greater than or equal to 1"),
    ("loading.steps=1e9", "loading.steps", "valid integer"),
    ("loading.steps=1000000", "loading.steps", "less than or equal to 100000"),
    ("loading.x_ref=1.5", "loading.x_ref", "less than or equal to 1"),
    ("loading.duration=0", "loading.duration", "greater than or equal to 1e-06 s"),
    ("loading.duration=1e20", "loading.duration", "less than or equal to 1e+10 s"),
    ("loading.type=sinusoidal", "loading", "does not match"),
    # fracture
    ("fracture.enabled=1", "fracture.enabled", "true or false"),
    ("fracture.enabled='true'", "fracture.enabled", "true or false"),
    ("fracture.model=AT3", "fracture.model", "AT1"),
    ("fracture.split=volumetric", "fracture.split", "spectral"),
    ("fracture.residual_stiffness=0.5", "fracture.residual_stiffness", "less than 0.1"),
    ("fracture.phases=[electrolyte, glue]", "fracture.phases.1", "electrolyte"),
    ("fracture.phases=[]", "fracture.phases", "at least 1"),
    ("fracture.interface={width: -1e-6, Gc: 1}", "fracture.interface.width", "greater than or equal to 1e-09 m"),
    ("fracture.interface={width: 0.1e-6, Gc: 1e9}", "fracture.interface.Gc", "less than or equal to 1e+06 J/m^2"),
    ("fracture.scheme.type=newton", "fracture.scheme.type", "accelerated"),
    ("fracture.scheme.tolerance=1e-20", "fracture.scheme.tolerance", "greater than or equal to 1e-12"),
    ("fracture.scheme.max_iterations=0", "fracture.scheme.max_iterations", "greater than or equal to 1"),
    ("fracture.scheme.relaxation=2.5", "fracture.scheme.relaxation", "less than 2"),
    ("fracture.scheme.depth=0", "fracture.scheme.depth", "greater than or equal to 1"),
    ("fracture.adaptive.min_step_fraction=0", "fracture.adaptive.min_step_fraction", "greater than or equal to 1e-09"),
    ("fracture.adaptive.cut_factor=1e-300", "fracture.adaptive.cut_factor", "greater than or equal to 0.01"),
    ("fracture.adaptive.growth_factor=10", "fracture.adaptive.growth_factor", "less than or equal to 4"),
    ("fracture.adaptive.max_crack_growth=-1", "fracture.adaptive.max_crack_growth", "greater than or equal to 1e-09 m"),
    ("fracture.adaptive.enabled=no thanks", "fracture.adaptive.enabled", "true or false"),
    (["fracture.enabled=true", "fracture.phases=[active]"], "fracture.phases", "materials.active.fracture is not given"),
    # the cohesive model: its failure data, its largest ell (Irwin's length) and the mesh
    (CZ + ["materials.electrolyte.fracture.ell=0.5e-6"], "materials.electrolyte.fracture.ell",
     "largest ell the linear softening law can represent"),
    (CZ + ["fracture.softening=exponential", "materials.electrolyte.fracture.ell=0.3e-6"],
     "materials.electrolyte.fracture.ell", "largest ell the exponential softening law"),
    (CZ + ["geometry.mesh.size=0.2e-6"], "materials.electrolyte.fracture.ell", "at least 2 element sizes"),
    (CZ + ["materials.electrolyte.fracture={K_Ic: 0.23e6, strength: 0.35e9}"], "materials.electrolyte.fracture",
     "missing: ell"),
    (CZ + ["materials.electrolyte.fracture={critical_strain: 0.019, ell: 0.25e-6}"],
     "materials.electrolyte.fracture", "missing: Gc or K_Ic"),
    (CZ + ["fracture.model=AT1"], "materials.electrolyte.fracture", "exactly two"),
    (CZ + ["fracture.interface={width: 0.1e-6, Gc: 1.0}"], "fracture.interface.width", "follows ell"),
    (CZ + ["fracture.model=AT2", "materials.electrolyte.fracture={Gc: 2.6, ell: 0.25e-6}",
           "fracture.interface={Gc: 1.0, strength: 0.1e9}"], "fracture.interface.strength", "only the cohesive"),
    (CZ + ["fracture.interface={Gc: 0.1, strength: 0.35e9}"], "materials.electrolyte.fracture.ell",
     "the interface's Gc"),
    (CZ + ["fracture.softening=bilinear"], "fracture.softening", "cornelissen"),
    # output
    ("output.fields_every=-1", "output.fields_every", "greater than or equal to 0"),
    ("output.progress=loud", "output.progress", "auto"),
    ("output.vtx=1", "output.vtx", "true or false"),
    ("output.profile_bins=1", "output.profile_bins", "greater than or equal to 2"),
    ("output.checkpoint_every=1.5", "output.checkpoint_every", "valid integer"),
    ("output.checkpoint_interval=-5", "output.checkpoint_interval", "greater than or equal to 0 s"),
    ("output.checkpoint_interval=1e12", "output.checkpoint_interval", "less than or equal to 1e+08 s"),
]

# on the galvanostatic default case: the electrochemistry
CYCLING_BAD = [
    ("loading.c_rate=0", "loading.c_rate", "greater than or equal to 0.0001"),
    ("loading.c_rate=1e6", "loading.c_rate", "less than or equal to 1000"),
    ("loading.current_density=-10", "loading.current_density", "greater than or equal to 1e-06 A/m^2"),
    ("loading.v_min=4.5", "loading", "v_min (4.5) must be below v_max"),
    ("loading.v_max=100", "loading.v_max", "less than or equal to 10 V"),
    ("loading.v_min=-1", "loading.v_min", "greater than or equal to 0 V"),
    ("loading.temperature=0", "loading.temperature", "greater than or equal to 100 K"),
    ("loading.temperature=5000", "loading.temperature", "less than or equal to 1000 K"),
    ("loading.temperature=.nan", "loading.temperature", "finite"),
    ("loading.time_step=0", "loading.time_step", "greater than or equal to 1e-06 s"),
    ("loading.time_step=1e12", "loading.time_step", "less than or equal to 1e+08 s"),
    ("loading.min_time_step=1e-15", "loading.min_time_step", "greater than or equal to 1e-09 s"),
    ("loading.max_time_step=1", "loading", "max_time_step (1.0) is below time_step"),
    ("loading.initial_lithiation=1.0", "loading.initial_lithiation", "less than 1"),
    ("loading.cycles=0", "loading.cycles", "greater than or equal to 1"),
    ("loading.cycles=true", "loading.cycles", "not true/false"),
    ("loading.on_cutoff=halt", "loading.on_cutoff", "next"),
    ("loading.x_ref=2", "loading.x_ref", "less than or equal to 1"),
    ("loading.active.c_max=0", "loading.active.c_max", "greater than or equal to 1 mol/m^3"),
    ("loading.active.c_max=1e9", "loading.active.c_max", "less than or equal to 1e+06 mol/m^3"),
    ("loading.active.diffusivity=1e-30", "loading.active.diffusivity", "greater than or equal to 1e-25 m^2/s"),
    ("loading.active.diffusivity=1.0", "loading.active.diffusivity", "less than or equal to 1e-05 m^2/s"),
    ("loading.active.diffusivity_table={x: [0, 1], D: [1e-15, 1e-15]}", "loading.active",
     "exactly one of diffusivity"),
    ("loading.active.ocv=nmc999", "loading.active", "unknown curve"),
    ("loading.active.ocv_table={x: [0, 1], U: [4, 3]}", "loading.active", "exactly one of ocv"),
    ("loading.active.kinetics.k0=-5", "loading.active.kinetics.k0", "greater than or equal to 1e-08 A/m^2"),
    ("loading.active.kinetics.alpha=1.0", "loading.active.kinetics.alpha", "less than 1"),
    ("loading.active.kinetics={i0: 1e9}", "loading.active.kinetics.i0", "less than or equal to 1e+06 A/m^2"),
    ("loading.electrolyte.kappa=0", "loading.electrolyte.kappa", "greater than or equal to 1e-12 S/m"),
    ("loading.electrolyte.kappa=1e10", "loading.electrolyte.kappa", "less than or equal to 1e+08 S/m"),
    ("loading.electrolyte.kappa=fast", "loading.electrolyte.kappa", "valid number"),
    ("loading.damage_feedback.exponent=20", "loading.damage_feedback.exponent", "less than or equal to 10"),
    ("loading.damage_feedback.residual=1.0", "loading.damage_feedback.residual", "less than 1"),
    ("loading.damage_feedback.interface=0", "loading.damage_feedback.interface", "true or false"),
    ("loading.anode.kinetics=slow", "loading.anode.kinetics", "fast"),
    ("loading.anode.i0=0", "loading.anode.i0", "greater than or equal to 1e-08 A/m^2"),
    ("loading.electronic.model=mixed", "loading.electronic.model", "uniform"),
    ("loading.electronic.contact_resistance=1e-3", "loading.electronic", "need model: per_particle"),
    ("loading.electronic={model: per_particle, contact_resistance: -1}", "loading.electronic.contact_resistance",
     "greater than or equal to 0 Ohm*m^2"),
    ("loading.electronic={model: per_particle, isolated: [-1]}", "loading.electronic.isolated.0",
     "greater than or equal to 0"),
    ("loading.electronic={model: per_particle, conductivity: 0}", "loading.electronic.conductivity",
     "greater than or equal to 1e-12 S/m"),
    ("loading.protocol=[]", "loading.protocol", "at least 1"),
    ("loading.protocol=[{mode: discharge, c_rate: -1}]", "loading.protocol.0.c_rate", "greater than or equal to 0.0001"),
    ("loading.protocol=[{mode: rest}]", "loading.protocol.0", "needs a duration"),
    ("loading.protocol=[{mode: hold}]", "loading.protocol.0", "needs the voltage"),
    ("loading.protocol=[{mode: charge, cutoff: 20}]", "loading.protocol.0.cutoff", "less than or equal to 10 V"),
    ("loading.protocol=[{mode: discharge, duration: 0}]", "loading.protocol.0.duration", "greater than or equal to 1e-06 s"),
    ("loading.protocol=[{mode: discharge, c_rate: 1, current_density: 10}]", "loading.protocol.0", "not both"),
    ("loading.protocol=[{mode: sleep}]", "loading.protocol.0.mode", "discharge"),
    ("loading.stress_assisted=maybe", "loading.stress_assisted", "true or false"),
    ("loading.separator={kappa: -1}", "loading.separator.kappa", "greater than or equal to 1e-12 S/m"),
    ("loading.petsc_options={snes_linesearch_type: l2}", "loading.petsc_options.snes_linesearch_type",
     "not a SNESLineSearch type"),
]

# PETSc options: names and values checked against the installed PETSc
PETSC = [
    ("mechanics.petsc_options={ksp_type: nonexistent_ksp}", "mechanics.petsc_options.ksp_type", "not a KSP type"),
    ("mechanics.petsc_options={ksp_type: cgg}", "mechanics.petsc_options.ksp_type", "did you mean 'cg'"),
    ("mechanics.petsc_options={pc_type: nonexistent_pc}", "mechanics.petsc_options.pc_type", "not a PC type"),
    ("mechanics.petsc_options={pc_type: hypre}", "mechanics.petsc_options.pc_type", "PETSc refuses it"),
    ("mechanics.petsc_options={snes_type: newtonn}", "mechanics.petsc_options.snes_type", "not a SNES type"),
    ("mechanics.petsc_options={pc_factor_mat_solver_type: nonexist}",
     "mechanics.petsc_options.pc_factor_mat_solver_type", "not a MatSolver type"),
    ("mechanics.petsc_options={ksp_rtoll: 1e-3}", "mechanics.petsc_options.ksp_rtoll", "not an option PETSc knows"),
    ("mechanics.petsc_options={ksp_rtol: abc}", "mechanics.petsc_options.ksp_rtol", "no numeric value"),
    ("mechanics.petsc_options={ksp_max_it: -5}", "mechanics.petsc_options.ksp_max_it", "must be non-negative"),
    ("mechanics.petsc_options={pc_type: gamg, mg_levels_ksp_type: chebyshevv}",
     "mechanics.petsc_options.mg_levels_ksp_type", "not a KSP type"),
    ("mechanics.petsc_options={pc_type: gamg, mg_levels_ksp_foo: 3}", "mechanics.petsc_options.mg_levels_ksp_foo",
     "not an option PETSc knows"),
    ("mechanics.petsc_options={mat_type: dense_no}", "mechanics.petsc_options.mat_type", "not a Mat type"),
    ("mechanics.petsc_options={pc_type: gamg, pc_gamg_type: magic}", "mechanics.petsc_options.pc_gamg_type",
     "not a GAMG type"),
    ("fracture.petsc_options={snes_type: 5}", "fracture.petsc_options.snes_type", "name of a SNES type"),
    ("fracture.petsc_options={snes_max_it: many}", "fracture.petsc_options.snes_max_it", "no integer value"),
    ("fracture.scheme.newton_petsc_options={snes_linesearch_type: l2}",
     "fracture.scheme.newton_petsc_options.snes_linesearch_type", "not a SNESLineSearch type"),
    ("fracture.scheme.newton_petsc_options={snes_rtoll: 1e-6}", "fracture.scheme.newton_petsc_options.snes_rtoll",
     "not an option PETSc knows"),
]

GOOD_PETSC = [
    "mechanics.petsc_options={ksp_rtol: 1e-3}",  # read by iterative solves only: a PETSc option all the same
    "mechanics.petsc_options={pc_type: gamg, mg_levels_ksp_type: chebyshev, mg_levels_pc_type: jacobi}",
    "mechanics.petsc_options={ksp_type: gmres, pc_type: bjacobi, sub_pc_type: ilu, sub_pc_factor_levels: 1}",
    "mechanics.petsc_options={mat_mumps_icntl_14: 100, snes_linesearch_type: bt, ksp_monitor: null}",
    "fracture.petsc_options={snes_vi_zero_tolerance: 1e-12}",
    "fracture.scheme.newton_petsc_options={snes_max_it: 20}",
]


def _ids(table):
    return [s if isinstance(s, str) else "+".join(s) for s, *_ in table]


@pytest.mark.parametrize("sets,field,fragment", SCHEMA, ids=_ids(SCHEMA))
def test_schema_refuses(sets, field, fragment):
    msg = refused(SMALL_DATA, sets)
    assert msg.startswith("case.yaml: "), msg
    assert field in msg, msg
    assert fragment in msg, msg


@pytest.mark.parametrize("sets,field,fragment", CYCLING_BAD, ids=_ids(CYCLING_BAD))
def test_electrochemistry_refuses(sets, field, fragment):
    msg = refused(CYCLING_DATA, sets)
    assert field in msg, msg
    assert fragment in msg, msg


@pytest.mark.parametrize("sets,field,fragment", PETSC, ids=_ids(PETSC))
def test_petsc_options_refused(sets, field, fragment):
    data = CYCLING_DATA if sets.startswith("loading") else SMALL_DATA
    msg = refused(data, sets)
    assert f"{field} = " in msg, msg
    assert fragment in msg, msg


@pytest.mark.parametrize("sets", GOOD_PETSC)
def test_petsc_options_accepted(sets):
    preflight(validate_case(apply_overrides(copy.deepcopy(SMALL_DATA), [sets]), "case.yaml"), "case.yaml")


# ----------------------------------------------------------------------------- size limits
SIZE = [
    # (overrides on the small case, limit named, a field to change named)
    (["geometry.mesh.size=3e-9", "geometry.mesh.interface_size=3e-9"], "limits.max_cells", "geometry.mesh.size"),
    (["geometry.mesh.size=1e-8", "geometry.mesh.interface_size=1e-8"], "limits.max_cells", "interface_size"),
    (["geometry.particles.radius=1e-8", "geometry.particles.min_gap=2e-9", "geometry.particles.boundary_gap=2e-9",
      "geometry.mesh.interface_size=5e-9"], "limits.max_particles", "geometry.particles.radius"),
    ("geometry.size=[1e-2, 1e-2]", "limits.max_particles", "geometry.particles.volume_fraction"),
    (["geometry.mesh.size=0.1e-6", "geometry.mesh.interface_size=0.1e-6", "limits.max_cells=5e4"], "limits.max_cells",
     "geometry.mesh.size"),
    (["geometry.mesh.size=0.2e-6", "geometry.mesh.interface_size=0.2e-6", "limits.max_dofs=1e4"], "limits.max_dofs",
     "geometry.mesh.order"),
    (["geometry.mesh.size=0.05e-6", "geometry.mesh.interface_size=0.05e-6", "limits.max_memory_gb=0.5"],
     "limits.max_memory_gb", "mechanics.linear_solver"),
    ("limits.max_particles=5", "limits.max_particles", "geometry.size"),
]


@pytest.mark.parametrize("sets,limit,change", SIZE, ids=_ids(SIZE))
def test_too_large_refused_before_packing(sets, limit, change):
    t = time.perf_counter()
    msg = refused(SMALL_DATA, sets)
    assert time.perf_counter() - t < 5.0
    assert limit in msg and change in msg, msg
    assert "estimate (packing):" in msg and "--allow-large" in msg, msg


def test_3d_case_too_fine_refused():
    data = read_yaml(ROOT / "cases" / "microstructures" / "spheres_3d.yaml")
    msg = refused(data, ["geometry.mesh.size=0.1e-6", "geometry.mesh.interface_size=0.05e-6"])
    assert "limits.max_cells" in msg and "limits.max_memory_gb" in msg, msg


def test_allow_large_and_raised_limits_accept():
    data = apply_overrides(copy.deepcopy(SMALL_DATA), ["geometry.mesh.size=0.1e-6", "geometry.mesh.interface_size=0.1e-6",
                                                       "limits.max_cells=5e4"])
    case = validate_case(data, "case.yaml")
    est = check_size(case, "case.yaml", allow_large=True)
    assert est.cells > 5e4
    raised = validate_case(apply_overrides(data, ["limits.max_cells=1e7"]), "case.yaml")
    assert check_size(raised, "case.yaml").cells == est.cells


# ----------------------------------------------------------------------------- YAML files
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi"))

YAML_FILES = [
    # (file content (bytes), fragment of the message)
    (b"name: x\n\x00\xff\xfe binary", "binary file"),
    ("name: caf\u00e9\n".encode("latin-1"), "not UTF-8 text (byte 0xe9 on line 1)"),
    (("a: " + "[" * 5000 + "]" * 5000 + "\n").encode(), "nested more than 32 levels deep"),
    (("a: " + "{b: " * 40 + "1" + "}" * 40 + "\n").encode(), "nested more than 32 levels deep"),
    (ALIAS_BOMB.encode(), "beyond the limits of a case file (line 4, column 4): aliases expand to more than"),
    (b"a: &a [1, *a]\n", "refers to the collection that contains it"),
    (b"name: x\nname: y\n", "duplicate key 'name' (first given on line 1)"),
    (b"name: x\nmaterials:\n  active: {E: 1, nu: 0.3}\n  active: {E: 2, nu: 0.3}\n", "line 4"),
    (b"name: x\nmaterials: {active: {E: 1, E: 2}}\n", "duplicate key 'E'"),
    (b"name: x\nloading:\n  protocol:\n    - {mode: rest, mode: charge}\n", "duplicate key 'mode'"),
    (("a: " + "1" * 5000 + "\n").encode(), "a value cannot be read"),
    (b"a: &a 1\n" + b"".join(f"k{i}: *a\n".encode() for i in range(150)), "more than 100 aliases"),
    (b"a: *nowhere\n", "undefined alias"),
    (b"name: x\n---\nname: y\n", "found another document"),
    (b"a: !!python/object:os.system ls\n", "could not determine a constructor"),
    (b"{[1, 2]: x}\n", "unhashable"),
    (b"name: [x\n", "malformed YAML (line 2"),
    (b"\tname: x\n", "malformed YAML"),
    (b"", "the file is empty"),
    (b"- a\n- b\n", "top level must be a mapping"),
    (b"42\n", "top level must be a mapping"),
]


@pytest.mark.parametrize("content,fragment", YAML_FILES, ids=[f[1][:40] for f in YAML_FILES])
def test_yaml_file_refused(tmp_path, content, fragment):
    p = tmp_path / "case.yaml"
    p.write_bytes(content)
    t = time.perf_counter()
    with pytest.raises(CaseError) as err:
        load_case(p)
    assert time.perf_counter() - t < 2.0
    msg = str(err.value)
    assert msg.startswith(f"{p}: "), msg
    assert fragment in msg, msg


def test_yaml_file_too_large_and_not_a_file(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * (5 * 1024 * 1024) + b"\n")
    with pytest.raises(CaseError, match=r"big\.yaml: \d+ bytes is too large for a case file"):
        load_case(big)
    with pytest.raises(CaseError, match=r"is a directory"):
        load_case(tmp_path)
    with pytest.raises(CaseError, match=r"/dev/zero: is not a regular file"):
        load_case("/dev/zero")


def test_merge_keys_and_small_aliases_still_work(tmp_path):
    text = SMALL.read_text().replace("materials:\n  active: {E: 140e9, nu: 0.3, expansion: 0.03}",
                                     "base: &elastic {E: 140e9, nu: 0.3}\nmaterials:\n"
                                     "  active: {<<: *elastic, expansion: 0.03}")
    p = tmp_path / "c.yaml"
    p.write_text(text)
    data = read_yaml(p)
    assert data["materials"]["active"] == {"E": 140e9, "nu": 0.3, "expansion": 0.03}


def test_override_values_are_bounded_too():
    with pytest.raises(CaseError, match=r"--set geometry.size: the value is longer than"):
        apply_overrides({}, ["geometry.size=[" + "1," * 60000 + "1]"])
    with pytest.raises(CaseError, match=r"nested more than 32 levels deep"):
        apply_overrides({}, ["a=" + "[" * 100 + "]" * 100])
    with pytest.raises(CaseError, match=r"duplicate key 'E'"):
        apply_overrides({}, ["materials.active={E: 1, E: 2}"])


# ----------------------------------------------------------------------------- particle files
PARTICLE_FILES = [
    # (file name, content, fragment)
    ("p.csv", b"x,y,radius\n\x00\x01\x02", "binary file"),
    ("p.csv", "x,y,radius\n5e-6,5e-6,1e-6\n# caf\u00e9\n".encode("latin-1"), "not UTF-8 text"),
    ("p.csv", b"x,y,radius,sides\n5e-6,5e-6,2e-6,2\n", "sides = '2': a polygon has a whole number of sides, at least 3"),
    ("p.csv", b"x,y,radius,sides\n5e-6,5e-6,2e-6,4.5\n", "whole number of sides"),
    ("p.csv", b"x,y,radius,sides\n5e-6,5e-6,2e-6,100\n", "sides = 100"),
    ("p.csv", b"x,y,radius\n5e-6,nan,2e-6\n", "y = 'nan' is not finite"),
    ("p.csv", b"x,y,radius\n5e-6,5e-6,abc\n", "radius = 'abc' is not a number"),
    ("p.csv", b"x,radius\n5e-6,2e-6\n", "column 'y' is missing"),
    ("p.csv", b"x,y,radius\n5e-6,5e-6,-2e-6\n", "must be positive"),
    ("p.csv", b"x,y,radius\n5e-6,5e-6,2e-6,7\n", "more values than columns"),
    ("p.csv", b"x,y,radius\n5e-6,5e-6,5e-9\n", "radius 5e-09 m is outside"),
    ("p.csv", b"x,y,radius,material\n5e-6,5e-6,2e-6,cheese\n", "material 'cheese'"),
    ("p.csv", b"x,y,radius\n", "the particle list is empty"),
    ("p.json", json.dumps([{"x": True, "y": 5e-6, "radius": 2e-6}]).encode(), "x = True is not a number"),
    ("p.json", b"[" * 5000 + b"]" * 5000, "cannot read the particle list"),
    ("p.json", b'{"units": "furlong", "particles": [{"x": 1, "y": 1, "radius": 1}]}', "units = 'furlong'"),
    ("p.json", b'{"particles": 5}', "expected a list of particles"),
    ("p.json", json.dumps([{"center": [5e-6, 5e-6], "radius": 2e-6, "shape": "polygon", "sides": 2,
                            "corners": [[1e-6, 0], [-1e-6, 0]]}]).encode(), "at least 3 corners"),
    ("p.json", json.dumps([{"center": [5e-6, 5e-6], "radius": "big"}]).encode(), "malformed particle record"),
    ("p.json", b'[{"center": [5e-6, 5e-6], "radius": NaN}]', "not a finite number"),
    ("p.json", json.dumps([{"x": 5e-6, "y": 5e-6, "z": 5e-6, "radius": 2e-6}]).encode(), "has a z coordinate"),
]


@pytest.mark.parametrize("name,content,fragment", PARTICLE_FILES, ids=[f[2][:40] for f in PARTICLE_FILES])
def test_particle_file_refused(tmp_path, name, content, fragment):
    f = tmp_path / name
    f.write_bytes(content)
    msg = refused(SMALL_DATA, [f"geometry.particles.file={f}", "geometry.particles.shape=polygon"])
    assert "geometry.particles.file = " in msg, msg
    assert fragment in msg, msg


def test_a_particle_file_beyond_the_particle_limit_is_refused_before_it_is_read(tmp_path):
    n = 400
    xs = [(i + 0.5) * 20e-6 / n for i in range(n)]
    f = tmp_path / "many.csv"
    f.write_text("x,y,radius\n" + "".join(f"{x},{y},15e-9\n" for x in xs for y in xs))
    t = time.perf_counter()
    msg = refused(SMALL_DATA, [f"geometry.particles.file={f}", "geometry.particles.shape=circle"])
    assert time.perf_counter() - t < 5.0
    assert "geometry.particles.file" in msg and "160000 particles, more than 2000 (limits.max_particles)" in msg, msg


# ----------------------------------------------------------------------------- mesh files
MINIMAL_MSH = """$MeshFormat
2.2 0 8
$EndMeshFormat
$PhysicalNames
1
2 1 "electrolyte"
$EndPhysicalNames
$Nodes
4
1 0 0 0
2 20 0 0
3 20 20 0
4 0 20 0
$EndNodes
$Elements
2
1 2 2 1 1 1 2 3
2 2 2 1 1 1 3 4
$EndElements
"""

MESH_FILES = [
    (b"\x00\x01garbage\xff" * 100, "not a Gmsh mesh file"),
    (b"solid cube\nfacet normal 0 0 1\n", "not a Gmsh mesh file"),
    (b"$MeshFormat\n4.1 0 8\n$EndMeshFormat\n$Nodes\ngarbage\n", "truncated"),
    (MINIMAL_MSH.replace("$Nodes\n4\n", "$Nodes\nfour\n").encode(), "cannot read the mesh"),
    (MINIMAL_MSH[: len(MINIMAL_MSH) // 2].encode(), "truncated"),
    (MINIMAL_MSH[:150].encode(), "truncated"),
    (MINIMAL_MSH.replace("$Nodes\n4\n", "$Nodes\n4000000000\n").encode(), "cannot read the mesh"),
    (MINIMAL_MSH.replace("1 2 2 1 1 1 2 3", "1 2 2 7 1 1 2 3").encode(), "not in the ssbfrac convention"),
    (MINIMAL_MSH.replace("20 20 0", "nan 20 0").encode(), "not finite"),
    (b"", "not a Gmsh mesh file"),
]


@pytest.mark.parametrize("content,fragment", MESH_FILES, ids=[f"mesh{i}" for i in range(len(MESH_FILES))])
def test_mesh_file_refused(tmp_path, content, fragment):
    f = tmp_path / "m.msh"
    f.write_bytes(content)
    msg = refused(SMALL_DATA, f"geometry.mesh.file={f}")
    assert "geometry.mesh.file = " in msg, msg
    assert fragment in msg, msg


def test_minimal_mesh_file_is_accepted(tmp_path):
    f = tmp_path / "m.msh"
    f.write_text(MINIMAL_MSH)
    case = validate_case(apply_overrides(copy.deepcopy(SMALL_DATA), [f"geometry.mesh.file={f}"]), "case.yaml")
    est = preflight(case, "case.yaml")
    assert (est.cells, est.vertices, est.particles, est.basis) == (2, 4, 0, "mesh file")


# ----------------------------------------------------------------------------- sweeps
def test_sweep_validation_checks_petsc_options_and_size(tmp_path):
    from solver.hpc.spec import load_sweep, validate_runs

    base = tmp_path / "base.yaml"
    base.write_text(SMALL.read_text())
    sweep = tmp_path / "s.yaml"
    sweep.write_text("name: s\nbase: base.yaml\nparameters:\n  mechanics.petsc_options.ksp_type: [cg, nonexistent_ksp]\n"
                     "  geometry.mesh.size: [1.0e-6, 3.0e-9]\nset: {geometry.mesh.interface_size: 3.0e-9}\n")
    with pytest.raises(CaseError) as err:
        validate_runs(load_sweep(sweep, tmp_path / "out"))
    msg = str(err.value)
    assert "mechanics.petsc_options.ksp_type = 'nonexistent_ksp': not a KSP type" in msg, msg
    assert "limits.max_cells" in msg, msg
    import re

    assert len(set(re.findall(r"\(run ([^)]+)\)", msg))) == 3, msg  # three of the four runs are refused, each named


# ----------------------------------------------------------------------------- the command
def test_cli_binary_and_deep_case_files_are_messages(tmp_path):
    for name, content, fragment in (("bin.yaml", b"name: x\n\x00\xff\xfe", "binary file"),
                                    ("deep.yaml", ("a: " + "[" * 5000 + "]" * 5000).encode(), "nested more than")):
        p = tmp_path / name
        p.write_bytes(content)
        r = run_ssbfrac(["check", str(p)], timeout=120)
        assert r.returncode == 2, r.stderr
        assert fragment in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_cli_garbage_mesh_file_is_a_message(tmp_path):
    f = tmp_path / "m.msh"
    f.write_bytes(MINIMAL_MSH[:150].encode())
    r = run_ssbfrac(["check", str(SMALL), "--set", f"geometry.mesh.file={f}"], timeout=120)
    assert r.returncode == 2, r.stderr
    assert "geometry.mesh.file = " in r.stderr and "truncated" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_cli_refuses_unknown_petsc_type_before_meshing(tmp_path):
    out = tmp_path / "run"
    r = run_ssbfrac(["run", str(SMALL), "--out", str(out), "--set",
                     "mechanics.petsc_options={ksp_type: nonexistent_ksp}"], timeout=120)
    assert r.returncode == 2, r.stderr
    assert "mechanics.petsc_options.ksp_type = 'nonexistent_ksp'" in r.stderr, r.stderr
    assert not out.exists()


def test_cli_refuses_a_too_fine_mesh_at_once_and_allow_large_passes_the_limits(tmp_path):
    t = time.perf_counter()
    r = run_ssbfrac(["mesh", str(SMALL), "--out", str(tmp_path / "m"), "--set", "geometry.mesh.size=3e-9",
                     "--set", "geometry.mesh.interface_size=3e-9"], timeout=120)
    assert r.returncode == 2, r.stderr
    assert "limits.max_cells" in r.stderr and "geometry.mesh.size" in r.stderr, r.stderr
    assert time.perf_counter() - t < 60
    # with --allow-large the limits are not applied (a case small enough to mesh at once)
    r = run_ssbfrac(["check", str(SMALL), "--set", "limits.max_cells=100", "--allow-large"], timeout=120)
    assert r.returncode == 0, r.stderr
    assert "estimate: 9 particles" in r.stdout and "not applied: --allow-large" in r.stdout, r.stdout


def test_cli_check_prints_the_estimate():
    r = run_ssbfrac(["check", str(SMALL)], timeout=120)
    assert r.returncode == 0, r.stderr
    assert "estimate: 9 particles" in r.stdout and "cells" in r.stdout and "peak memory" in r.stdout, r.stdout


def test_cli_schema_into_a_closed_pipe_is_quiet():
    # the reader goes away at once: no PETSc signal message, no MPI abort, no traceback
    p = subprocess.Popen(ssbfrac_cmd() + ["schema"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=subprocess_env())
    p.stdout.close()
    err = p.stderr.read().decode()
    status = p.wait(timeout=120)
    assert status in (0, 141), (status, err)
    assert "PETSC ERROR" not in err and "MPI_Abort" not in err and "Traceback" not in err, err
    r = subprocess.run(f"{' '.join(ssbfrac_cmd())} schema | head -n 2", shell=True, capture_output=True, text=True,
                       env=subprocess_env(), timeout=120)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2 and r.stderr == "", r.stderr


# ----------------------------------------------------------------------------- results
def test_non_finite_history_row_and_field_stop_the_run():
    import numpy as np
    from mpi4py import MPI

    from solver.numerics.finite import NonFiniteResult, check_fields, check_row

    check_row({"step": 1, "accepted": 1, "time": 1.0, "elastic_energy": 2.0, "mode": "discharge"})
    check_row({"step": 2, "accepted": 0, "voltage": float("nan")})  # a rejected step is retried
    with pytest.raises(NonFiniteResult, match=r"step 3 \(time 7 s\): mean_strain = -inf, elastic_energy = inf"):
        check_row({"step": 3, "accepted": 1, "time": 7.0, "mean_strain": -np.inf, "elastic_energy": np.inf})

    class F:
        def __init__(self, name, values):
            self.name, self.x = name, type("X", (), {"array": np.asarray(values)})()

    check_fields([F("damage", [0.0, 1.0])], MPI.COMM_WORLD, 1.0)
    with pytest.raises(NonFiniteResult, match=r"step 4, time 2 s: displacement not finite"):
        check_fields([F("damage", [0.0]), F("displacement", [np.nan])], MPI.COMM_WORLD, 2.0, 4)


def test_a_run_with_a_non_finite_result_fails_with_error_txt(tmp_path, monkeypatch):
    from mpi4py import MPI

    from solver.physics import mechanics as coupling
    from solver.numerics.finite import NonFiniteResult
    from solver.runs.runner import run_case

    real = coupling.MechanicsProblem.measures
    calls = {"n": 0}

    def measures(self):
        out = real(self)
        calls["n"] += 1
        if calls["n"] == 3:  # the second load step
            out["elastic_energy"] = float("inf")
        return out

    monkeypatch.setattr(coupling.MechanicsProblem, "measures", measures)
    out = tmp_path / "run"
    with pytest.raises(NonFiniteResult):
        run_case(SMALL, out, ["loading.steps=3"], progress_mode="none", comm=MPI.COMM_WORLD)
    text = (out / "error.txt").read_text()
    assert "NonFiniteResult: step 2" in text and "elastic_energy = inf" in text, text
    assert not (out / "summary.json").exists()


def test_at_least_150_bad_inputs():
    n = len(SCHEMA) + len(CYCLING_BAD) + len(PETSC) + len(SIZE) + len(YAML_FILES) + len(PARTICLE_FILES) + len(MESH_FILES)
    assert n >= 150, n
    sections = {s.split(".")[0].split("=")[0] for table in (SCHEMA, CYCLING_BAD, PETSC, SIZE)
                for sets, *_ in table for s in ([sets] if isinstance(sets, str) else sets)}
    assert {"name", "dimension", "description", "geometry", "materials", "mechanics", "loading", "fracture",
            "output", "limits"} <= sections, sections
