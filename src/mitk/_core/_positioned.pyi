"""Type stub of the compiled ``mitk._core._positioned`` (see ``_positioned.pyx``)."""

from typing_extensions import Buffer

HAVE_PREAD: bool

def read_runs(fd: int, offsets: Buffer, lengths: Buffer, dests: Buffer,
              out: Buffer) -> tuple[int, int] | None: ...
