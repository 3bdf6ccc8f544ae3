"""Type stub of the compiled ``mitk._core._owner``: it has no Python-level names (its API is
``cdef`` only, for the other extensions)."""
