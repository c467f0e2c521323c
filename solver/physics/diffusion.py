"""Lithium transport in the active-material particles.

The lithium fraction x = c / c_max (0..1) obeys, in every particle,

    c_max dx/dt = div( c_max D(x) grad x  [ - c_max D x (1 - x) Omega / (R T) grad sigma_h ] )
    -c_max D grad x . n = -N        on the particle surface (N: molar influx, mol per area and time)

with the optional stress-assisted term in brackets (sigma_h the hydrostatic stress, tension
positive, Omega the partial molar volume: lithium moves toward tension). Implicit Euler in
time; the residual is written per reference concentration c_ref (so that the unknown and
the residual are of order one):

    F(x; v) = sum_m int_m (c_max,m / c_ref) [ (x - x_n)/dt v + D_m(x) grad x . grad v
                                              - D_m x (1 - x) Omega_m / (R T) grad sigma_h . grad v ] dx
              - int_Gamma (N / c_ref) v ds

x is a P1 function on the whole mesh; only the particle cells carry the equation and the
DOFs that no particle cell touches are held at zero (:func:`dofs_outside`). Testing with
v = 1 on the particles shows that the discrete lithium balance is exact:
d/dt int c_max x dx = int_Gamma N ds, to the tolerance of the nonlinear solve.

The particle surfaces are integrated from the particle side only ("one-sided" facet
integrals, :func:`one_sided_facets`): the surface of particle i (facet tag 1000 + i) is an
interior facet when electrolyte surrounds it and an exterior one in a particle-only mesh.

:class:`ParticleDiffusion` solves the transport alone under a prescribed surface influx
(verification against Crank's series, tests/test_diffusion.py); :mod:`solver.physics.electrochemistry`
uses the same forms with the Butler-Volmer flux.

Units (internal): um, s, mol; D in um^2/s, c in mol/um^3, N in mol/(um^2 s).
"""

from __future__ import annotations

import numpy as np
import ufl
from dolfinx import fem, la
from mpi4py import MPI
from petsc4py import PETSc

from meshes import tags as mtags
from solver.physics.tables import piecewise_linear


# ----------------------------------------------------------------------------- mesh helpers
def active_cells(cell_tags) -> np.ndarray:
    """Local cells (owned and ghost) of every particle (cell tag >= 1000)."""
    return cell_tags.indices[cell_tags.values >= mtags.PARTICLE_BASE].astype(np.int32)


def dofs_outside(V: fem.FunctionSpace, cells: np.ndarray) -> np.ndarray:
    """Local DOFs of the scalar space V that no cell of ``cells`` touches (on any rank).

    A ghost DOF may be touched by a cell of its owner only: the ranks agree through a
    reverse (add) and a forward scatter."""
    tdim = V.mesh.topology.dim
    V.mesh.topology.create_connectivity(tdim, tdim)
    touched = fem.Function(V)
    touched.x.array[fem.locate_dofs_topological(V, tdim, cells)] = 1.0
    touched.x.scatter_reverse(la.InsertMode.add)
    touched.x.scatter_forward()
    return np.flatnonzero(touched.x.array < 0.5).astype(np.int32)


def one_sided_facets(domain, cell_tags, facet_tags, facet_values, side_cells: np.ndarray) -> np.ndarray:
    """(cell, local facet) pairs, flattened, of the facets tagged with any of
    ``facet_values``, each integrated from its cell in ``side_cells`` (owned cells only, so
    that every facet is counted once over all ranks).

    A facet without a neighbour in ``side_cells`` on this rank is skipped: the rank that
    owns that neighbour integrates it."""
    tdim = domain.topology.dim
    domain.topology.create_connectivity(tdim - 1, tdim)
    domain.topology.create_connectivity(tdim, tdim - 1)
    f_to_c = domain.topology.connectivity(tdim - 1, tdim)
    c_to_f = domain.topology.connectivity(tdim, tdim - 1)
    n_owned = domain.topology.index_map(tdim).size_local
    is_side = np.zeros(domain.topology.index_map(tdim).size_local + domain.topology.index_map(tdim).num_ghosts,
                       dtype=bool)
    is_side[side_cells] = True
    facets = facet_tags.indices[np.isin(facet_tags.values, np.asarray(list(facet_values)))]
    out = []
    for f in facets:
        for c in f_to_c.links(f):
            if c < n_owned and is_side[c]:
                local = int(np.flatnonzero(c_to_f.links(c) == f)[0])
                out.extend((int(c), local))
                break
    return np.asarray(out, dtype=np.int32)


def facet_measure(domain, entities: dict[int, np.ndarray], degree: int) -> ufl.Measure:
    """A ``ds`` measure over explicit one-sided facet lists ({id: (cell, local facet) pairs})."""
    data = [(k, np.asarray(v, dtype=np.int32)) for k, v in sorted(entities.items())]
    return ufl.Measure("ds", domain=domain, subdomain_data=data, metadata={"quadrature_degree": degree})


def global_sum(comm, value: float) -> float:
    return comm.allreduce(float(value), op=MPI.SUM)


def assemble(comm, form) -> float:
    """A scalar form summed over the ranks."""
    return global_sum(comm, fem.assemble_scalar(form))


# ----------------------------------------------------------------------------- material laws
def diffusivity(spec, x):
    """D(x) of an active material (internal units): ``spec.diffusivity`` (constant) or
    ``spec.diffusivity_table`` (linear in x between its points, constant beyond)."""
    if getattr(spec, "diffusivity", None) is not None:
        return spec.diffusivity
    t = spec.diffusivity_table
    return piecewise_linear(x, t.x, t.D, lib=ufl)


def clamp01(x, eps: float):
    """x clipped to [eps, 1 - eps] (UFL)."""
    return ufl.min_value(ufl.max_value(x, eps), 1.0 - eps)


def transport_residual(x, x_old, v, dt, materials, dx, stress=None):
    """The bulk part of the residual (no surface flux), per reference concentration.

    Args:
        x, x_old: lithium fraction now and at the start of the step (P1 functions).
        v: test function.
        dt: time step (a ``fem.Constant``).
        materials: list of (indicator, capacity, D, coupling) per active material:
            indicator a DG0 field (1 in its cells), capacity = c_max / c_ref, D the UFL
            diffusivity, coupling = Omega / (R T) (1/GPa, internal) or 0.
        dx: cell measure.
        stress: hydrostatic stress (P1 function, GPa) for the stress-assisted flux, or None.
    """
    F = 0
    for chi, capacity, D, coupling in materials:
        flux = D * ufl.grad(x)
        if stress is not None and coupling:
            flux = flux - D * coupling * x * (1.0 - x) * ufl.grad(stress)
        F += chi * capacity * ((x - x_old) / dt * v + ufl.inner(flux, ufl.grad(v))) * dx
    return F


def lithiation_profile(x: fem.Function, cell_tags, bins: int, weight=None, axis: int = 0,
                       bounds: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean lithium fraction of the particles in ``bins`` slabs along ``axis`` (0: x, the
    depth from the separator side), weighted by volume (or by ``weight``, e.g. c_max).

    Returns (slab centres, mean x per slab); a slab without particle volume gives NaN.
    Every rank gets the same arrays."""
    return slab_profile(x, active_cells(cell_tags), bins, weight, axis, bounds)


def slab_profile(f: fem.Function, cells: np.ndarray, bins: int, weight=None, axis: int = 0,
                 bounds: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``f`` over the local ``cells`` in ``bins`` slabs along
    ``axis``, weighted by volume (or by ``weight``). Returns (slab centres, means; NaN in a
    slab without such cells), the same on every rank (collective)."""
    from dolfinx.mesh import compute_midpoints

    domain = f.function_space.mesh
    comm = domain.comm
    tdim = domain.topology.dim
    n_owned = domain.topology.index_map(tdim).size_local
    Q = fem.functionspace(domain, ("DG", 0))
    w = ufl.TestFunction(Q)
    chi = fem.Function(Q)
    chi.x.array[cells] = 1.0
    wt = chi if weight is None else chi * weight
    num = fem.assemble_vector(fem.form(wt * f * w * ufl.dx)).array[:n_owned]
    den = fem.assemble_vector(fem.form(wt * w * ufl.dx)).array[:n_owned]
    coords = domain.geometry.x[:, axis]
    if bounds is None:
        bounds = (comm.allreduce(float(coords.min()), op=MPI.MIN), comm.allreduce(float(coords.max()), op=MPI.MAX))
    lo, hi = bounds
    mid = compute_midpoints(domain, tdim, np.arange(n_owned, dtype=np.int32))[:, axis]
    k = np.clip(((mid - lo) / (hi - lo) * bins).astype(int), 0, bins - 1)
    num_b = comm.allreduce(np.bincount(k, weights=num, minlength=bins), op=MPI.SUM)
    den_b = comm.allreduce(np.bincount(k, weights=den, minlength=bins), op=MPI.SUM)
    centres = lo + (np.arange(bins) + 0.5) * (hi - lo) / bins
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(den_b > 0, num_b / np.where(den_b > 0, den_b, 1.0), np.nan)
    return centres, mean


# ----------------------------------------------------------------------------- standalone problem
DEFAULT_PETSC_DIFFUSION = {
    "snes_type": "newtonls",
    "snes_linesearch_type": "basic",
    "snes_rtol": 1e-10,
    "snes_atol": 1e-14,
    "snes_stol": 0.0,
    "snes_max_it": 25,
    "ksp_type": "preonly",
    "pc_type": "lu",
    "pc_factor_mat_solver_type": "mumps",
}


class ParticleDiffusion:
    """Lithium transport in the particles of a mesh under a prescribed surface influx.

    Args:
        domain, cell_tags, facet_tags: mesh and tags (meshes/tags.py).
        D: diffusivity (um^2/s): a number or a UFL expression of the solution (``lambda x: ...``).
        influx: molar influx N into the particles through their surfaces
            (mol/(um^2 s)), a number or UFL expression; the concentration is c_max x.
        c_max: lithium concentration at x = 1 (mol/um^3).
        x0: initial lithium fraction.
        order: polynomial degree of x (1 by default, as in the coupled problem).
    """

    def __init__(self, domain, cell_tags, facet_tags, D, influx, c_max: float, x0: float, order: int = 1,
                 petsc_options: dict | None = None, prefix: str = "ssbfrac_diffusion_"):
        from dolfinx.fem.petsc import NonlinearProblem

        from solver.numerics.petsc import set_petsc_options

        self.domain = domain
        self.comm = domain.comm
        V = fem.functionspace(domain, ("Lagrange", order))
        self.x = fem.Function(V, name="lithiation")
        self.x_old = fem.Function(V)
        self.dt = fem.Constant(domain, 1.0)
        self.time = 0.0
        am = active_cells(cell_tags)
        outside = dofs_outside(V, am)
        self.x.x.array[:] = x0
        self.x.x.array[outside] = 0.0
        self.x_old.x.array[:] = self.x.x.array
        Q = fem.functionspace(domain, ("DG", 0))
        chi = fem.Function(Q)
        chi.x.array[am] = 1.0
        self.chi = chi
        surface_tags = sorted({int(t) for t in np.unique(facet_tags.values) if t >= mtags.PARTICLE_BASE})
        surface_tags = sorted(set().union(*self.comm.allgather(set(surface_tags))))
        qdeg = 2 * order + 2
        self.ds = facet_measure(domain, {1: one_sided_facets(domain, cell_tags, facet_tags, surface_tags, am)}, qdeg)
        self.dx = ufl.Measure("dx", domain=domain, metadata={"quadrature_degree": qdeg})
        Dx = D(self.x) if callable(D) else D
        v = ufl.TestFunction(V)
        self.c_max = c_max
        N = influx
        F = transport_residual(self.x, self.x_old, v, self.dt, [(chi, 1.0, Dx, 0.0)], self.dx)
        F -= (N / c_max) * v * self.ds(1)
        bc = fem.dirichletbc(PETSc.ScalarType(0.0), outside, V)
        self.problem = NonlinearProblem(F, self.x, bcs=[bc], petsc_options_prefix=prefix)
        opts = dict(DEFAULT_PETSC_DIFFUSION)
        opts.update(petsc_options or {})
        set_petsc_options(self.problem.solver, prefix, opts)
        self._f_lithium = fem.form(c_max * chi * self.x * self.dx)
        self._f_volume = fem.form(chi * self.dx)
        self._f_surface = fem.form(1.0 * self.ds(1))
        self._f_influx = fem.form(N * self.ds(1))

    def step(self, dt: float) -> int:
        """One implicit Euler step; returns the Newton iterations (raises if it fails)."""
        self.dt.value = dt
        self.problem.solve()
        snes = self.problem.solver
        if snes.getConvergedReason() <= 0:
            raise RuntimeError(f"diffusion step did not converge (reason {snes.getConvergedReason()})")
        self.x.x.scatter_forward()
        self.x_old.x.array[:] = self.x.x.array
        self.time += dt
        return snes.getIterationNumber()

    def total_lithium(self) -> float:
        """int c_max x over the particles (mol; per um of thickness in 2D)."""
        return assemble(self.comm, self._f_lithium)

    def volume(self) -> float:
        return assemble(self.comm, self._f_volume)

    def surface(self) -> float:
        """Measure of the particle surfaces that carry the influx (um, or um^2 in 3D)."""
        return assemble(self.comm, self._f_surface)

    def influx_rate(self) -> float:
        """int N over the particle surfaces (mol/s)."""
        return assemble(self.comm, self._f_influx)
