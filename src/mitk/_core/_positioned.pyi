"""Type stub of the compiled ``mitk._core._positioned`` (see ``_positioned.pyx``)."""

from typing import Any, final

import numpy as np
import numpy.typing as npt
from typing_extensions import Self

HAVE_PREAD: bool

def read_runs(fd: int, offsets: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64],
              dests: npt.NDArray[np.int64], out: npt.NDArray[Any]) -> tuple[int, int] | None: ...
def read_rows(fd: int, planes: npt.NDArray[np.int64], k: int, step: int, length: int,
              joined: bool, out: npt.NDArray[Any]) -> tuple[int, int] | None: ...

WHOLE: int
GONE: int
CHANGED: int

def read_file_run(path: bytes, size: int, mtime_ns: int, ino: int, dev: int, offset: int,
                  out: npt.NDArray[Any]) -> int: ...
def read_file_rows(path: bytes, size: int, mtime_ns: int, ino: int, dev: int,
                   planes: npt.NDArray[np.int64], base: int, k: int, step: int, length: int,
                   joined: bool, out: npt.NDArray[Any]) -> int | tuple[int, int]: ...

@final
class FileRun:
    def __new__(cls, path: bytes, size: int, mtime_ns: int, ino: int, dev: int, offset: int,
                shape: tuple[int, ...], dtype: np.dtype[Any]) -> Self: ...
    @property
    def path(self) -> bytes: ...
    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def dtype(self) -> np.dtype[Any]: ...
    def read(self) -> npt.NDArray[Any] | None: ...
