"""Type stub of the compiled ``mitk._core._run_plan`` (see ``_run_plan.pyx``)."""

import numpy as np
import numpy.typing as npt

def spans(starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64], gap: int,
          most: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
def regular(los: npt.NDArray[np.int64], his: npt.NDArray[np.int64],
            starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64],
            dests: npt.NDArray[np.int64]) -> tuple[int, int, int] | None: ...
