"""Type stub of the compiled ``mitk._core._check``: it has no Python-level names (its API is
``cdef`` only, for the other extensions)."""
