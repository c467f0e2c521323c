"""Composite-cathode microstructures: packing (numpy), Gmsh models, mesh files."""
