# Convenience: ``cimport mitk._core`` makes the public API available as mitk._core.buffer.*.
from mitk._core cimport buffer
