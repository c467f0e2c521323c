"""ssbfrac: chemo-mechanical fracture of all-solid-state battery composite cathodes.

Importing this package makes sure that, in the pip environment, the binary DOLFINx
wheel (``dolfinx_solver``) is imported before ``dolfinx`` or ``petsc4py``: it orders
MPI ahead of the compiled bindings. Under conda-forge DOLFINx the module does not
exist and nothing needs doing.
"""

try:  # pip route: the wheel must come first
    import dolfinx_solver  # noqa: F401
except ImportError:  # conda-forge route
    pass

__version__ = "0.1.0"
