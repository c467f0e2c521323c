"""The galvanostatic loading: transport, kinetics, conduction, the electronic network and the cycling protocol."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from solver.config.base import PetscOptions, Schema, check_table, quantity

#: bounds of the physical quantities of the electrochemistry (SI units)
DIFFUSIVITY = {"ge": 1e-25, "le": 1e-5}        # m^2/s: the slowest solids to liquids
CURRENT = {"ge": 1e-8, "le": 1e6}              # A/m^2: exchange current densities
CURRENT_DENSITY = {"ge": 1e-6, "le": 1e5}      # A/m^2: cell current per collector-side area
C_RATE = {"ge": 1e-4, "le": 1e3}               # 1/h
VOLTAGE = {"ge": 0.0, "le": 10.0}              # V against lithium metal
CONDUCTIVITY = {"ge": 1e-12, "le": 1e8}        # S/m
TIME = {"ge": 1e-6, "le": 1e10}                # s
MAX_TABLE = 10_000

class DiffusivityTable(Schema):
    """Lithium diffusivity of an active material against the lithium fraction (linear in
    between, constant beyond the ends)."""

    x: list[float] = Field(..., min_length=2, max_length=MAX_TABLE,
                           description="lithium fractions, strictly increasing, in [0, 1] [-]")
    D: list[Annotated[float, Field(**DIFFUSIVITY)]] = quantity(..., unit="m^2/s", description="diffusivity at each x",
                                                              min_length=2, max_length=MAX_TABLE)

    @model_validator(mode="after")
    def _table(self):
        check_table(self.x, self.D, "D")
        if any(not d > 0 for d in self.D):
            raise ValueError(f"D = {self.D}: diffusivities must be positive")
        return self


class OCVTable(Schema):
    """A tabulated open-circuit voltage U(x) against Li/Li+ (linear in between, constant
    beyond the ends)."""

    x: list[float] = Field(..., min_length=2, max_length=MAX_TABLE,
                           description="lithium fractions, strictly increasing, in [0, 1] [-]")
    U: list[Annotated[float, Field(**VOLTAGE)]] = quantity(..., unit="V", description="open-circuit voltage at each x",
                                                          min_length=2, max_length=MAX_TABLE)
    source: str = Field("", max_length=100_000, description="citation of the data")

    @model_validator(mode="after")
    def _table(self):
        check_table(self.x, self.U, "U")
        return self


class Kinetics(Schema):
    """Butler-Volmer kinetics of the active material / solid electrolyte interface:
    i = i0 [exp(alpha F eta / RT) - exp(-(1 - alpha) F eta / RT)]. Give k0 (the default)
    or a constant i0."""

    k0: float = quantity(1.0, unit="A/m^2", description="rate constant: i0 = k0 sqrt(x (1 - x))", **CURRENT)
    i0: float | None = quantity(None, unit="A/m^2", description="constant exchange current density (replaces k0)", **CURRENT)
    alpha: float = Field(0.5, gt=0, lt=1, description="anodic charge-transfer coefficient [-]")

    @model_validator(mode="after")
    def _one_law(self):
        if self.i0 is not None and "k0" in self.model_fields_set:
            raise ValueError("give either k0 (i0 = k0 sqrt(x (1 - x))) or a constant i0, not both")
        return self


class ActiveTransport(Schema):
    """Lithium storage, transport and interface kinetics of an active material."""

    c_max: float = quantity(..., unit="mol/m^3", description="lithium concentration at x = 1", ge=1.0, le=1e6)
    diffusivity: float | None = quantity(None, unit="m^2/s", description="constant lithium diffusivity", **DIFFUSIVITY)
    diffusivity_table: DiffusivityTable | None = Field(None, description="diffusivity against x (instead of diffusivity)")
    ocv: str | None = Field(
        None, max_length=100, description="open-circuit voltage curve of solver/physics/electrochemistry/ocv.py: lco_doyle1995 or nmc811_chen2020"
    )
    ocv_table: OCVTable | None = Field(None, description="tabulated open-circuit voltage (instead of ocv)")
    kinetics: Kinetics = Field(default_factory=Kinetics, description="Butler-Volmer kinetics at the interface")
    use: str | None = Field(
        None, description="a named material set (ssbfrac materials) whose values fill the fields not given here"
    )
    source: str = Field("", description="citation of the values")

    @model_validator(mode="after")
    def _complete(self):
        if (self.diffusivity is None) == (self.diffusivity_table is None):
            raise ValueError("give exactly one of diffusivity (m^2/s) and diffusivity_table")
        if (self.ocv is None) == (self.ocv_table is None):
            raise ValueError("give exactly one of ocv (a curve name) and ocv_table")
        if self.ocv is not None:
            from solver.physics.electrochemistry.ocv import CURVES

            if self.ocv not in CURVES:
                raise ValueError(f"ocv = {self.ocv!r}: unknown curve; known: {', '.join(sorted(CURVES))} (or give ocv_table)")
        return self


class IonicConductor(Schema):
    """A single-ion conductor (transference number 1)."""

    kappa: float = quantity(..., unit="S/m", description="ionic conductivity", **CONDUCTIVITY)
    use: str | None = Field(
        None, max_length=100, description="a named material set (ssbfrac materials) whose values fill the fields not given here"
    )
    source: str = Field("", max_length=10000, description="citation of the value")


class DamageFeedback(Schema):
    """How phase-field damage blocks ionic transport: kappa_eff = kappa ((1 - d)^p + residual)."""

    exponent: float = Field(2.0, ge=0, le=10, description="exponent p [-]")
    residual: float = Field(1e-4, ge=0, lt=1, description="conductivity left in fully broken electrolyte, relative [-]")
    interface: bool = Field(
        False, description="damage at an interface also lowers its reaction rate by the same factor"
    )


class AnodeSpec(Schema):
    """The lithium-metal electrode at x = 0 (the potential reference, 0 V)."""

    kinetics: Literal["fast", "butler_volmer"] = Field(
        "fast", description="fast: phi_e = 0 on the x = 0 side; butler_volmer: Li/Li+ kinetics there with i0"
    )
    i0: float = quantity(10.0, unit="A/m^2", description="exchange current density of Li/Li+ (butler_volmer)", **CURRENT)
    alpha: float = Field(0.5, gt=0, lt=1, description="anodic charge-transfer coefficient of Li/Li+ [-]")


class ElectronicSpec(Schema):
    """Electronic potential of the particles."""

    model: Literal["uniform", "per_particle"] = Field(
        "uniform",
        description=(
            "uniform: every particle at the cell voltage (well connected); per_particle: one potential per "
            "particle, connected to the collector through contact_resistance"
        ),
    )
    contact_resistance: float = quantity(
        0.0, unit="Ohm*m^2",
        description="per_particle: area-specific resistance between a particle and the collector (R = r / particle surface)",
        ge=0, le=1e3,
    )
    isolated: list[Annotated[int, Field(ge=0, le=999_000)]] = Field(
        default_factory=list, max_length=MAX_TABLE, description="per_particle: indices of electronically disconnected particles (no net current)"
    )
    conductivity: float | None = quantity(
        None, unit="S/m",
        description=(
            "per_particle: effective electronic conductivity of the composite's conducting network (carbon, "
            "particle contacts) between the collector side and the particles; none: no network resistance"
        ),
        **CONDUCTIVITY,
    )

    @model_validator(mode="after")
    def _per_particle(self):
        if self.model == "uniform" and (self.contact_resistance > 0 or self.isolated or self.conductivity is not None):
            raise ValueError("contact_resistance, conductivity and isolated need model: per_particle")
        if any(i < 0 for i in self.isolated):
            raise ValueError(f"isolated = {self.isolated}: particle indices are >= 0")
        return self


class CyclingStep(Schema):
    """One segment of the cycling protocol. discharge (lithiates the cathode) and charge run
    at a constant current until a cut-off voltage or a duration; rest holds zero current for
    a duration; hold keeps a voltage until the current falls below until_c_rate or for a
    duration."""

    mode: Literal["discharge", "charge", "rest", "hold"] = Field(..., description="discharge, charge, rest or hold")
    c_rate: float | None = Field(None, **C_RATE, description="current as a C-rate (default: loading.c_rate) [1/h]")
    current_density: float | None = quantity(
        None, unit="A/m^2", description="current per collector-side area (instead of c_rate)", **CURRENT_DENSITY
    )
    cutoff: float | None = quantity(
        None, unit="V", description="cut-off voltage (default: v_min on discharge, v_max on charge)", **VOLTAGE
    )
    voltage: float | None = quantity(None, unit="V", description="hold: the held cell voltage", **VOLTAGE)
    until_c_rate: float | None = Field(None, ge=1e-8, le=1e3,
                                       description="hold: end when |current| falls below this C-rate [1/h]")
    duration: float | None = quantity(None, unit="s", description="end after this time", **TIME)

    @model_validator(mode="after")
    def _consistent(self):
        if self.c_rate is not None and self.current_density is not None:
            raise ValueError("give either c_rate or current_density, not both")
        if self.mode in ("rest", "hold") and (self.c_rate is not None or self.current_density is not None):
            raise ValueError(f"mode {self.mode} sets no current (c_rate/current_density are for discharge and charge)")
        if self.mode != "hold" and (self.voltage is not None or self.until_c_rate is not None):
            raise ValueError("voltage and until_c_rate are for mode: hold")
        if self.mode in ("rest", "hold") and self.cutoff is not None:
            raise ValueError(f"cutoff is for discharge and charge (mode is {self.mode})")
        if self.mode == "rest" and self.duration is None:
            raise ValueError("mode rest needs a duration (s)")
        if self.mode == "hold":
            if self.voltage is None:
                raise ValueError("mode hold needs the voltage (V)")
            if self.duration is None and self.until_c_rate is None:
                raise ValueError("mode hold needs until_c_rate or a duration (or both)")
        return self


class GalvanostaticLoading(Schema):
    """Electrochemical cycling against a lithium-metal electrode at x = 0: lithium diffuses
    in the particles, ions move through the electrolyte, Butler-Volmer kinetics at the
    interfaces, a constant current (or held voltage) per protocol segment
    (docs/electrochemistry.md)."""

    type: Literal["galvanostatic"] = "galvanostatic"
    c_rate: float = Field(1.0, **C_RATE, description="current of the segments that give none, as a C-rate [1/h]")
    current_density: float | None = quantity(
        None, unit="A/m^2", description="current per collector-side area of the segments that give none (instead of c_rate)",
        **CURRENT_DENSITY,
    )
    v_min: float = quantity(3.0, unit="V", description="discharge cut-off voltage (default of discharge segments)", **VOLTAGE)
    v_max: float = quantity(4.3, unit="V", description="charge cut-off voltage (default of charge segments)", **VOLTAGE)
    protocol: list[CyclingStep] = Field(
        default_factory=lambda: [CyclingStep(mode="discharge")], min_length=1, max_length=1000,
        description="segments of one cycle, in order",
    )
    cycles: int = Field(1, ge=1, le=100000, description="how many times the protocol is run")
    on_cutoff: Literal["next", "stop"] = Field(
        "next", description="at a cut-off voltage: go to the next segment, or end the loading"
    )
    initial_lithiation: float = Field(0.3, gt=0, lt=1, description="uniform lithium fraction at the start [-]")
    x_ref: float | None = Field(None, ge=0, le=1, description="stress-free lithium fraction [-] (default: initial_lithiation)")
    temperature: float = quantity(298.15, unit="K", description="temperature, 100 K to 1000 K", ge=100.0, le=1000.0)
    time_step: float = quantity(10.0, unit="s", description="initial time step", ge=1e-6, le=1e8)
    min_time_step: float = quantity(1e-3, unit="s", description="smallest time step", ge=1e-9, le=1e8)
    max_time_step: float | None = quantity(None, unit="s", description="largest time step (default 10 time_step)",
                                           ge=1e-6, le=1e9)
    active: ActiveTransport = Field(..., description="transport and kinetics of materials.active")
    active_b: ActiveTransport | None = Field(None, description="transport and kinetics of materials.active_b")
    electrolyte: IonicConductor = Field(..., description="ionic conductivity of the electrolyte")
    separator: IonicConductor | None = Field(None, description="of the separator layer (default: the electrolyte)")
    collector_layer: IonicConductor | None = Field(None, description="of the collector-side layer (default: the electrolyte)")
    coating: IonicConductor | None = Field(None, description="of the particle coatings (default: the electrolyte)")
    damage_feedback: DamageFeedback = Field(default_factory=DamageFeedback, description="cracks block ionic transport")
    anode: AnodeSpec = Field(default_factory=AnodeSpec, description="the lithium-metal electrode at x = 0")
    electronic: ElectronicSpec = Field(default_factory=ElectronicSpec, description="electronic potential of the particles")
    stress_assisted: bool = Field(
        False, description="add the flux up the hydrostatic-stress gradient, D x (1 - x) Omega / (R T) grad sigma_h"
    )
    linear_solver: Literal["auto", "direct", "iterative"] = Field(
        "auto",
        description=(
            "linear solve of the (x, phi_e) Newton step: direct (MUMPS LU), iterative (GMRES with block "
            "Gauss-Seidel, AMG on each field), or auto: direct up to 1M DOFs in 2D and 200k in 3D"
        ),
    )
    petsc_options: PetscOptions = Field(
        default_factory=dict, description="PETSc options of the (x, phi_e) Newton solve (merged with the defaults)"
    )

    @model_validator(mode="after")
    def _consistent(self):
        if self.v_min >= self.v_max:
            raise ValueError(f"v_min ({self.v_min}) must be below v_max ({self.v_max})")
        if self.min_time_step > self.time_step:
            raise ValueError(f"min_time_step ({self.min_time_step}) exceeds time_step ({self.time_step})")
        if self.max_time_step is not None and self.max_time_step < self.time_step:
            raise ValueError(f"max_time_step ({self.max_time_step}) is below time_step ({self.time_step})")
        for i, seg in enumerate(self.protocol):
            if seg.mode in ("discharge", "charge"):
                cut = seg.cutoff if seg.cutoff is not None else (self.v_min if seg.mode == "discharge" else self.v_max)
                if seg.mode == "discharge" and cut >= self.v_max or seg.mode == "charge" and cut <= self.v_min:
                    raise ValueError(f"protocol[{i}]: cutoff {cut} V is outside [v_min, v_max]")
        return self
