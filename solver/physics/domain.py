"""The domain every problem is built on: the distributed mesh with its cell and facet
tags (meshes/tags.py) and the mesh information (particle list, statistics)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class MeshBundle:
    """The distributed mesh (``dolfinx.mesh.Mesh``), its cell and facet tags
    (``MeshTags``) and ``info``, the contents of ``mesh.json`` (the same on every rank)."""

    mesh: object
    cell_tags: object
    facet_tags: object
    info: dict = field(default_factory=dict)  # metadata (same on every rank)

    @property
    def gdim(self) -> int:
        return self.mesh.geometry.dim
