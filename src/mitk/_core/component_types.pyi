"""Type stub of the compiled ``mitk._core.component_types`` (see ``component_types.pyx``)."""

from typing import Any

import numpy as np

SUPPORTED: tuple[np.dtype[Any], ...]
SUPPORTED_NAMES: tuple[str, ...]

def check_dtype(dtype: object, argument: str = "dtype") -> np.dtype[Any]: ...
def pep3118_format(dtype: object) -> str: ...
