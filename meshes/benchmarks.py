"""Geometries of the verification problems (closed-form solutions in docs/verification.md).

They use the same tag convention as composite cathodes (meshes.tags): the inclusion is
particle 0, the matrix is the electrolyte, and the symmetry planes are 'left' (x = 0),
'bottom' (y = 0) and, in 3D, 'back' (z = 0); the outer arc (sphere) is tagged 'right'
(traction-free).
"""

from __future__ import annotations

from meshes import tags


def quarter_inclusion_2d(gmsh, a: float, b: float, h_in: float, h_out: float) -> None:
    """Quarter of a disc inclusion (radius a) in a matrix ring (outer radius b).

    Element size h_in on the interface, growing linearly to h_out at the outer arc."""
    occ = gmsh.model.occ
    outer = occ.addDisk(0, 0, 0, b, b)
    inner = occ.addDisk(0, 0, 0, a, a)
    box = occ.addRectangle(0, 0, 0, b, b)
    q_out, _ = occ.intersect([(2, outer)], [(2, box)], removeObject=True, removeTool=False)
    q_in, _ = occ.intersect([(2, inner)], [(2, box)], removeObject=True, removeTool=True)
    out, out_map = occ.fragment(q_out, q_in)
    occ.synchronize()
    inc = [t for d, t in out_map[1] if d == 2]
    mat = [t for d, t in out if d == 2 and t not in inc]
    gmsh.model.addPhysicalGroup(2, mat, tags.ELECTROLYTE, name="electrolyte")
    gmsh.model.addPhysicalGroup(2, inc, tags.particle(0), name="particle_0")
    eps = 1e-6 * b
    left = [t for d, t in gmsh.model.getEntitiesInBoundingBox(-eps, -eps, -eps, eps, b + eps, eps, 1)]
    bottom = [t for d, t in gmsh.model.getEntitiesInBoundingBox(-eps, -eps, -eps, b + eps, eps, eps, 1)]
    bnd_in = {abs(t) for d, t in gmsh.model.getBoundary([(2, t) for t in inc], oriented=False)}
    iface = sorted(bnd_in - set(left) - set(bottom))
    bnd_all = {abs(t) for d, t in gmsh.model.getBoundary([(2, t) for t in mat], oriented=False)}
    arc = sorted(bnd_all - set(left) - set(bottom) - set(iface))
    gmsh.model.addPhysicalGroup(1, left, tags.SIDES["left"], name="left")
    gmsh.model.addPhysicalGroup(1, bottom, tags.SIDES["bottom"], name="bottom")
    gmsh.model.addPhysicalGroup(1, arc, tags.SIDES["right"], name="right")
    gmsh.model.addPhysicalGroup(1, iface, tags.interface(0), name="interface_0")
    f = gmsh.model.mesh.field
    dist = f.add("Distance")
    f.setNumbers(dist, "CurvesList", iface)
    thr = f.add("Threshold")
    f.setNumber(thr, "InField", dist)
    f.setNumber(thr, "SizeMin", h_in)
    f.setNumber(thr, "SizeMax", h_out)
    f.setNumber(thr, "DistMin", 0.0)
    f.setNumber(thr, "DistMax", b - a)
    f.setAsBackgroundMesh(thr)
    gmsh.option.setNumber("Mesh.MeshSizeExtendFromBoundary", 0)
    gmsh.option.setNumber("Mesh.MeshSizeFromPoints", 0)
    gmsh.option.setNumber("Mesh.MeshSizeFromCurvature", 0)
    gmsh.option.setNumber("Mesh.Algorithm", 6)
    gmsh.model.mesh.generate(2)


def eighth_inclusion_3d(gmsh, a: float, b: float, h_in: float, h_out: float, order: int = 1) -> None:
    """An eighth of a sphere inclusion (radius a) in an eighth of a matrix shell (outer
    radius b): symmetry planes 'left' (x = 0), 'bottom' (y = 0) and 'back' (z = 0); the outer
    sphere is tagged 'right' (traction-free). Element size h_in on the interface, growing
    linearly to h_out at the outer sphere."""
    occ = gmsh.model.occ
    outer = occ.intersect([(3, occ.addSphere(0, 0, 0, b))], [(3, occ.addBox(0, 0, 0, b, b, b))])[0]
    inner = occ.intersect([(3, occ.addSphere(0, 0, 0, a))], [(3, occ.addBox(0, 0, 0, b, b, b))])[0]
    out, out_map = occ.fragment(outer, inner)
    occ.synchronize()
    inc = [t for d, t in out_map[1] if d == 3]
    mat = [t for d, t in out if d == 3 and t not in inc]
    gmsh.model.addPhysicalGroup(3, mat, tags.ELECTROLYTE, name="electrolyte")
    gmsh.model.addPhysicalGroup(3, inc, tags.particle(0), name="particle_0")
    eps = 1e-6 * b
    planes = {}
    for name, k in (("left", 0), ("bottom", 1), ("back", 2)):
        lo, hi = [-eps] * 3, [b + eps] * 3
        hi[k] = eps
        planes[name] = [t for d, t in gmsh.model.getEntitiesInBoundingBox(*lo, *hi, 2)]
        gmsh.model.addPhysicalGroup(2, planes[name], tags.SIDES[name], name=name)
    flat = {t for ts in planes.values() for t in ts}
    iface = sorted({abs(t) for d, t in gmsh.model.getBoundary([(3, t) for t in inc], oriented=False)} - flat)
    arc = sorted({abs(t) for d, t in gmsh.model.getBoundary([(3, t) for t in mat], oriented=False)} - flat - set(iface))
    gmsh.model.addPhysicalGroup(2, arc, tags.SIDES["right"], name="right")
    gmsh.model.addPhysicalGroup(2, iface, tags.interface(0), name="interface_0")
    f = gmsh.model.mesh.field
    dist = f.add("Distance")
    f.setNumbers(dist, "SurfacesList", iface)
    f.setNumber(dist, "Sampling", 60)
    thr = f.add("Threshold")
    f.setNumber(thr, "InField", dist)
    f.setNumber(thr, "SizeMin", h_in)
    f.setNumber(thr, "SizeMax", h_out)
    f.setNumber(thr, "DistMin", 0.0)
    f.setNumber(thr, "DistMax", b - a)
    f.setAsBackgroundMesh(thr)
    gmsh.option.setNumber("Mesh.MeshSizeExtendFromBoundary", 0)
    gmsh.option.setNumber("Mesh.MeshSizeFromPoints", 0)
    gmsh.option.setNumber("Mesh.MeshSizeFromCurvature", 0)
    gmsh.model.mesh.generate(3)
    if order > 1:
        gmsh.model.mesh.setOrder(order)
