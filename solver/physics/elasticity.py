"""Small-strain elasticity with a chemical eigenstrain, energy splits and stresses.

Strains and stresses are always 3x3 tensors. In 2D (plane strain) the out-of-plane
strain of the displacement is zero and the eigenstrain keeps its out-of-plane
component, so a particle that swells isotropically also pushes out of plane
(sigma_zz is reported). This is the "true isotropic swelling" case of
docs/verification.md: the in-plane interface pressure of a disc is
p = 2 mu2 k1 (1 + nu1) e* / (k1 + mu2).

Units: um, GPa (energies GPa*um^3, i.e. nJ; per um of thickness in 2D).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import ufl
from dolfinx import fem, la, mesh as dmesh
from mpi4py import MPI
from petsc4py import PETSc

from solver.numerics.petsc import set_petsc_options


# ----------------------------------------------------------------------------- kinematics
def strain3(u, gdim: int):
    """Symmetric gradient of u as a 3x3 tensor (zero out-of-plane part in 2D)."""
    e = ufl.sym(ufl.grad(u))
    if gdim == 3:
        return e
    return ufl.as_matrix([[e[0, 0], e[0, 1], 0.0], [e[1, 0], e[1, 1], 0.0], [0.0, 0.0, 0.0]])


def stress3(eps, lmbda, mu):
    """Isotropic Hooke's law on a 3x3 strain."""
    return lmbda * ufl.tr(eps) * ufl.Identity(3) + 2.0 * mu * eps


def energy_density(eps, lmbda, mu):
    return 0.5 * lmbda * ufl.tr(eps) ** 2 + mu * ufl.inner(eps, eps)


def _pos(x):
    return 0.5 * (x + abs(x))


def _neg(x):
    return 0.5 * (x - abs(x))


def principal_values(A, gdim: int, eps: float = 1e-14):
    """Eigenvalues (l1 >= l2 >= l3 up to ordering of the out-of-plane one in 2D) of a
    symmetric 3x3 UFL tensor. In 2D the tensor is block-diagonal (in-plane 2x2 and zz)
    and the in-plane pair is computed in closed form; in 3D the trigonometric formula
    (Smith 1961) is used. ``eps`` regularises the square roots at repeated eigenvalues
    so the expressions stay differentiable."""
    if gdim == 2:
        m = 0.5 * (A[0, 0] + A[1, 1])
        r = ufl.sqrt(0.25 * (A[0, 0] - A[1, 1]) ** 2 + A[0, 1] ** 2 + eps**2)
        return m + r, m - r, A[2, 2]
    q = ufl.tr(A) / 3.0
    p1 = A[0, 1] ** 2 + A[0, 2] ** 2 + A[1, 2] ** 2
    p2 = (A[0, 0] - q) ** 2 + (A[1, 1] - q) ** 2 + (A[2, 2] - q) ** 2 + 2.0 * p1
    p = ufl.sqrt(p2 / 6.0 + eps**2)
    B = (A - q * ufl.Identity(3)) / p
    r = ufl.det(B) / 2.0
    r = ufl.max_value(ufl.min_value(r, 1.0 - 1e-12), -1.0 + 1e-12)
    phi = ufl.acos(r) / 3.0
    l1 = q + 2.0 * p * ufl.cos(phi)
    l3 = q + 2.0 * p * ufl.cos(phi + 2.0 * np.pi / 3.0)
    l2 = 3.0 * q - l1 - l3
    return l1, l2, l3


def max_principal(A, gdim: int):
    l1, l2, l3 = principal_values(A, gdim)
    if gdim == 2:
        return ufl.max_value(l1, l3)
    return ufl.max_value(ufl.max_value(l1, l2), l3)


def split_energy(eps, lmbda, mu, kind: str, gdim: int):
    """(psi_plus, psi_minus) of the elastic energy density for a split.

    none: all energy is degradable; amor: volumetric-deviatoric (Amor, Marigo,
    Maurini 2009); spectral: positive principal strains (Miehe, Welschinger,
    Hofacker 2010)."""
    if kind == "none":
        return energy_density(eps, lmbda, mu), 0.0
    tr = ufl.tr(eps)
    if kind == "amor":
        K = lmbda + 2.0 * mu / 3.0
        dev = ufl.dev(eps)
        return 0.5 * K * _pos(tr) ** 2 + mu * ufl.inner(dev, dev), 0.5 * K * _neg(tr) ** 2
    if kind == "spectral":
        l1, l2, l3 = principal_values(eps, gdim)
        plus = 0.5 * lmbda * _pos(tr) ** 2 + mu * (_pos(l1) ** 2 + _pos(l2) ** 2 + _pos(l3) ** 2)
        minus = 0.5 * lmbda * _neg(tr) ** 2 + mu * (_neg(l1) ** 2 + _neg(l2) ** 2 + _neg(l3) ** 2)
        return plus, minus
    raise ValueError(f"unknown split {kind!r}; allowed: none, amor, spectral")


def von_mises(s):
    d = ufl.dev(s)
    return ufl.sqrt(1.5 * ufl.inner(d, d))


# ----------------------------------------------------------------------------- materials
@dataclass
class ElasticFields:
    """Cell-wise (DG0) material data on the mesh, in internal units, and the chemical
    strain law of the active materials (see :func:`chemical_eigenstrain`)."""

    lmbda: fem.Function
    mu: fem.Function
    E: fem.Function
    beta: fem.Function  # linear eigenstrain per unit lithium fraction (expansion / 3; 0 with a table)
    #: (indicator DG0 field, f(x, lib)) of each phase with a tabulated volumetric strain f
    tables: list = field(default_factory=list)
    #: DG0 3x3 shape of the eigenstrain (trace 1, R diag(a) R^T / sum(a) per particle);
    #: None when every active material is isotropic (A = I/3)
    A: fem.Function | None = None

    @staticmethod
    def from_phases(domain: dmesh.Mesh, cell_tags, phase_of_tag: Callable[[np.ndarray], np.ndarray],
                    props: dict[str, dict], particles: list[dict] | None = None) -> "ElasticFields":
        """props[phase] = {"E": .., "nu": .., "expansion": .., and optionally "strain_law":
        f(x, lib) and "anisotropy": [a1, a2, a3]} (:func:`phase_properties`);
        phase_of_tag maps cell tag values to phase names. ``particles``: the particle list of
        the mesh (``info["packing"]["particles"]``, dicts of meshes.geometry.Particle), whose
        orientations turn an anisotropic expansion; cells tagged 1000 + i or 1000000 + i
        belong to the particle with id i."""
        Q = fem.functionspace(domain, ("DG", 0))
        out = {k: fem.Function(Q, name=k) for k in ("lmbda", "mu", "E", "beta")}
        phases = phase_of_tag(cell_tags.values)
        tables = []
        for phase, p in props.items():
            cells = cell_tags.indices[phases == phase]
            E, nu = p["E"], p["nu"]
            out["lmbda"].x.array[cells] = E * nu / ((1 + nu) * (1 - 2 * nu))
            out["mu"].x.array[cells] = E / (2 * (1 + nu))
            out["E"].x.array[cells] = E
            law = p.get("strain_law")
            if law is None:
                out["beta"].x.array[cells] = p.get("expansion", 0.0) / 3.0
            else:
                chi = fem.Function(Q, name=f"chi_{phase}")
                chi.x.array[cells] = 1.0
                chi.x.scatter_forward()
                tables.append((chi, law))
        for f in out.values():
            f.x.scatter_forward()
        A = None
        if any(p.get("anisotropy") is not None for p in props.values()):
            A = _anisotropy_field(domain, cell_tags, phases, props, particles or [])
        return ElasticFields(**out, tables=tables, A=A)


def _anisotropy_field(domain, cell_tags, phases, props: dict[str, dict], particles: list[dict]) -> fem.Function:
    """The DG0 3x3 field A = R diag(a) R^T / (a1 + a2 + a3) in the cells of each particle
    of an anisotropic phase (R: the particle's orientation, about z in 2D), I/3 in the
    cells of isotropic active phases, 0 elsewhere."""
    from meshes import tags as mtags
    from meshes.geometry import Particle

    T = fem.functionspace(domain, ("DG", 0, (3, 3)))
    A = fem.Function(T, name="eigenstrain_shape")
    vals = A.x.array.reshape(-1, 9)
    dof = T.dofmap.list[:, 0]
    by_id = {int(d["id"]): d for d in particles}
    for phase, p in props.items():
        if "strain_law" not in p:  # not an active material
            continue
        sel = phases == phase
        cells = cell_tags.indices[sel]
        a = p.get("anisotropy")
        if a is None:
            vals[dof[cells]] = (np.eye(3) / 3.0).ravel()
            continue
        shape = np.diag(np.asarray(a, dtype=float) / float(np.sum(a)))
        ids = cell_tags.values[sel] - (mtags.PARTICLE_B_BASE if phase == "active_b" else mtags.PARTICLE_BASE)
        for i in np.unique(ids):
            if int(i) not in by_id:
                raise ValueError(
                    f"materials.{phase}.anisotropy needs the orientation of particle {int(i)}, which the mesh "
                    "information does not list (a mesh read from a file has no particle list): use an isotropic "
                    "expansion there")
            R = Particle.from_dict(by_id[int(i)]).rotation3()
            vals[dof[cells[ids == i]]] = (R @ shape @ R.T).ravel()
    A.x.scatter_forward()
    return A


def chemical_eigenstrain(mat: ElasticFields, x, x_ref):
    """The chemical eigenstrain of the particles (3x3, UFL) and its trace.

        eps_ch = (f(x) - f(x_ref)) A,   trace(eps_ch) = f(x) - f(x_ref)   (trace A = 1)

    with f the volumetric strain law of each active material (``expansion`` x, or the
    table) and A its normalised anisotropy turned into each particle's frame (I/3 if
    isotropic). ``x``: the lithium fraction (a ``fem.Constant`` or a P1 field), ``x_ref``
    the stress-free one. With linear isotropic laws only, this is the expression
    (expansion / 3) (x - x_ref) I of earlier versions, term for term."""
    if not mat.tables and mat.A is None:
        return mat.beta * (x - x_ref) * ufl.Identity(3), 3.0 * mat.beta * (x - x_ref)
    vol = 3.0 * mat.beta * (x - x_ref)
    for chi, f in mat.tables:
        vol = vol + chi * (f(x, ufl) - f(x_ref, ufl))
    eps = (vol / 3.0) * ufl.Identity(3) if mat.A is None else vol * mat.A
    return eps, ufl.tr(eps)


def phase_properties(materials) -> dict[str, dict]:
    """Elastic properties {"E", "nu", "expansion"} of every phase of a case (internal units):
    the separator and the collector-side layer default to the electrolyte; coating and
    active_b are present when the case gives them. The active materials also have
    "strain_law" (None for the linear law ``expansion`` x, else ``f(x, lib)``, the tabulated
    volumetric strain) and "anisotropy" (relative principal strains, or None if isotropic)."""
    def props(m):
        return {"E": m.E, "nu": m.nu, "expansion": 0.0}

    def active(m):
        return {"E": m.E, "nu": m.nu, "expansion": m.expansion,
                "strain_law": None if m.expansion_table is None else m.volumetric_strain,
                "anisotropy": None if m.isotropic else list(m.anisotropy)}

    out = {
        "electrolyte": props(materials.electrolyte),
        "separator": props(materials.separator or materials.electrolyte),
        "collector_layer": props(materials.collector_layer or materials.electrolyte),
    }
    if materials.active is not None:
        out["active"] = active(materials.active)
    if materials.coating is not None:
        out["coating"] = props(materials.coating)
    if materials.active_b is not None:
        out["active_b"] = active(materials.active_b)
    return out


# ----------------------------------------------------------------------------- boundary conditions
def boundary_conditions(V: fem.FunctionSpace, facet_tags, side_tags: dict[str, int], sides: dict[str, object]):
    """Dirichlet conditions and Neumann pressure terms for per-side mechanical BCs.

    ``sides[name]`` has ``.type`` in free|roller|clamped|fixed|pressure, ``.value`` (GPa) and
    ``.components`` (fixed: the components held at zero).
    Returns (bcs, pressure list of (tag, value))."""
    domain = V.mesh
    fdim = domain.topology.dim - 1
    gdim = domain.geometry.dim
    normal_axis = {"left": 0, "right": 0, "bottom": 1, "top": 1, "back": 2, "front": 2}
    bcs, pressures = [], []
    for name, bc in sides.items():
        facets = facet_tags.find(side_tags[name])
        if bc.type == "roller":
            axis = normal_axis[name]
            dofs = fem.locate_dofs_topological(V.sub(axis), fdim, facets)
            bcs.append(fem.dirichletbc(PETSc.ScalarType(0), dofs, V.sub(axis)))
        elif bc.type == "clamped":
            dofs = fem.locate_dofs_topological(V, fdim, facets)
            bcs.append(fem.dirichletbc(np.zeros(gdim, dtype=PETSc.ScalarType), dofs, V))
        elif bc.type == "fixed":
            for axis in sorted(bc.component_axes):
                dofs = fem.locate_dofs_topological(V.sub(axis), fdim, facets)
                bcs.append(fem.dirichletbc(PETSc.ScalarType(0), dofs, V.sub(axis)))
        elif bc.type == "pressure":
            pressures.append((side_tags[name], float(bc.value)))
    return bcs, pressures


class ImposedDisplacement:
    """Facets moved rigidly along a direction: u_i = U n_i there for the prescribed
    components i (the others are free). :meth:`set` moves them to U; :meth:`reaction`
    is the force the facets carry along n, sum_i n_i sum_(dofs of i) r, from the internal
    force vector r = dPsi/du (assembled without boundary conditions).

    Args:
        V: the displacement space; facet_tags: the mesh's facet tags; tag: the loaded ones.
        direction: unit vector n (gdim components); axes: the prescribed components.
    """

    def __init__(self, V: fem.FunctionSpace, facet_tags, tag: int, direction, axes: list[int]):
        domain = V.mesh
        facets = facet_tags.find(tag)
        if domain.comm.allreduce(len(facets), op=MPI.SUM) == 0:
            raise ValueError(f"loading.boundary: no facet of the mesh has tag {tag}")
        self.comm = domain.comm
        self.direction = np.asarray(direction, dtype=float)
        self.axes = list(axes)
        n_owned = V.dofmap.index_map.size_local * V.dofmap.index_map_bs
        self.values, self.bcs, self.owned = [], [], []
        for i in self.axes:
            dofs = fem.locate_dofs_topological(V.sub(i), domain.topology.dim - 1, facets)
            value = fem.Constant(domain, PETSc.ScalarType(0.0))
            self.values.append(value)
            self.bcs.append(fem.dirichletbc(value, dofs, V.sub(i)))
            self.owned.append(dofs[dofs < n_owned])

    def set(self, U: float) -> None:
        for i, value in zip(self.axes, self.values):
            value.value = U * self.direction[i]

    def reaction(self, residual_form) -> float:
        """The reaction along the direction (collective; force per unit thickness in 2D)."""
        b = fem.assemble_vector(residual_form)
        b.scatter_reverse(la.InsertMode.add)
        local = sum(self.direction[i] * float(b.array[dofs].sum()) for i, dofs in zip(self.axes, self.owned))
        return self.comm.allreduce(local, op=MPI.SUM)


def rigid_body_modes(V: fem.FunctionSpace) -> PETSc.NullSpace:
    """Near-nullspace (translations and rotations) for smoothed-aggregation AMG."""
    domain = V.mesh
    gdim = domain.geometry.dim
    x = V.tabulate_dof_coordinates()
    bs = V.dofmap.index_map_bs
    nmodes = 3 if gdim == 2 else 6
    basis = [fem.Function(V) for _ in range(nmodes)]
    arrs = [b.x.array.reshape(-1, bs) for b in basis]
    for i in range(gdim):
        arrs[i][:, i] = 1.0
    if gdim == 2:
        arrs[2][:, 0] = -x[:, 1]
        arrs[2][:, 1] = x[:, 0]
    else:
        arrs[3][:, 0] = -x[:, 1]
        arrs[3][:, 1] = x[:, 0]
        arrs[4][:, 0] = x[:, 2]
        arrs[4][:, 2] = -x[:, 0]
        arrs[5][:, 2] = x[:, 1]
        arrs[5][:, 1] = -x[:, 2]
    from dolfinx import la

    la.orthonormalize([b.x for b in basis])  # PETSc wants an orthonormal basis
    return PETSc.NullSpace().create(vectors=[b.x.petsc_vec for b in basis], comm=domain.comm)


# ----------------------------------------------------------------------------- the problem
class ElasticityProblem:
    """Quasi-static equilibrium div(sigma) = 0 for a given eigenstrain and degradation.

    The forms are built once; :meth:`solve` reassembles with the current coefficient
    values (lithiation, damage) and solves with PETSc SNES (``ksponly`` when the
    problem is linear, Newton when a split makes it piecewise nonlinear).

    Args:
        u: displacement function (vector P1 or P2).
        eps_e: the elastic strain (3x3 UFL expression of u and the eigenstrain).
        energy: total stored energy density (UFL, may involve the damage).
        bcs, pressures: from :func:`boundary_conditions`.
        ds: boundary measure with the side tags.
        linear: True when ``energy`` is quadratic in u.
    """

    def __init__(self, u: fem.Function, energy_form, bcs, pressures, ds, linear: bool,
                 petsc_options: dict, prefix: str = "ssbfrac_elasticity_"):
        from dolfinx.fem.petsc import NonlinearProblem

        V = u.function_space
        v = ufl.TestFunction(V)
        n = ufl.FacetNormal(V.mesh)
        F = ufl.derivative(energy_form, u, v)
        for tag, p in pressures:
            F += p * ufl.inner(n, v) * ds(tag)
        opts = dict(petsc_options)
        opts.setdefault("snes_type", "ksponly" if linear else "newtonls")
        if opts["snes_type"] != "ksponly":
            opts.setdefault("snes_linesearch_type", "basic")
            opts.setdefault("snes_rtol", 1e-9)
            opts.setdefault("snes_atol", 1e-12)
            opts.setdefault("snes_max_it", 30)
        self.u = u
        self.problem = NonlinearProblem(F, u, bcs=bcs, petsc_options_prefix=prefix)
        self.snes = self.problem.solver
        set_petsc_options(self.snes, prefix, opts)
        if opts.get("pc_type") == "gamg":
            self.problem.A.setNearNullSpace(rigid_body_modes(V))
        self.linear_iterations = 0
        self.solves = 0
        self.linear = opts["snes_type"] == "ksponly"
        self.iterative = opts.get("ksp_type", "gmres") != "preonly"
        self.inexact = False
        self._max_it = int(opts.get("snes_max_it", 30))
        self._refresh = True
        self._frozen = self._preconditioner_matrix() if self.iterative else None

    def _preconditioner_matrix(self):
        """A matrix of its own for the preconditioner of an iterative solve, a copy of the
        Jacobian taken only while ``_refresh`` is set. SNES sets its KSP's reuse flag itself
        at every Jacobian evaluation, so that flag alone cannot keep a preconditioner;
        PETSc sets one up again only when its matrix has changed, so this one is kept for
        as long as the copy is not taken."""
        import dolfinx.fem.petsc as fpetsc

        A, _, (assemble, args, kwargs) = self.snes.getJacobian()
        fpetsc.assign(self.u, self.problem.x)  # the assembly reads u from x
        assemble(self.snes, self.problem.x, A, A, *args, **(kwargs or {}))  # the sparsity of A
        P = A.duplicate(copy=True)
        nullspace = A.getNearNullSpace()
        if nullspace is not None and nullspace.handle:
            P.setNearNullSpace(nullspace)

        def jacobian(snes, x, J, P):
            assemble(snes, x, J, J, *args, **(kwargs or {}))
            if self._refresh:
                J.copy(P, structure=PETSc.Mat.Structure.SAME_NONZERO_PATTERN)

        self.snes.setJacobian(jacobian, A, P)
        return P

    def set_inexact(self, inexact: bool) -> None:
        """Inexact mode: at most one Newton step per solve (for schemes that iterate
        anyway); a no-op for linear problems."""
        if self.linear:
            return
        self.inexact = inexact
        self.snes.setTolerances(max_it=1 if inexact else self._max_it)

    def reuse_preconditioner(self, reuse: bool) -> None:
        """Keep the preconditioner of an earlier solve (the operator changes little
        between the iterations of a coupled scheme; AMG set-up is the costly part).
        Iterative solves only: a direct solve factorises the operator every time (its
        stale factors applied once would make the solve inexact)."""
        if self._frozen is not None:
            self._refresh = not reuse

    def solve(self) -> tuple[bool, int]:
        """Solve; returns (converged, linear iterations of this solve). Each Newton
        iteration counts as one elasticity solve."""
        self.problem.solve()
        reason = self.snes.getConvergedReason()
        its = self.snes.getLinearSolveIterations()
        self.linear_iterations += its
        self.solves += max(1, self.snes.getIterationNumber())
        self.u.x.scatter_forward()
        return reason > 0, its


def stress_output_expressions(sigma, gdim: int) -> dict:
    """UFL expressions of derived stress measures, keyed by output name."""
    out = {
        "von_mises": von_mises(sigma),
        "hydrostatic": ufl.tr(sigma) / 3.0,
        "max_principal": max_principal(sigma, gdim),
    }
    if gdim == 2:
        out["sigma_zz"] = sigma[2, 2]
    return out


__all__ = [
    "strain3",
    "stress3",
    "energy_density",
    "principal_values",
    "max_principal",
    "split_energy",
    "von_mises",
    "ElasticFields",
    "chemical_eigenstrain",
    "boundary_conditions",
    "rigid_body_modes",
    "ElasticityProblem",
    "stress_output_expressions",
]
