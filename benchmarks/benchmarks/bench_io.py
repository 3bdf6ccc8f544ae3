"""asv: read and write of every format x encoding, with np.fromfile/tofile, zlib and bz2 references.

The file list and the volume come from mitk._bench.io_cases (the same as ``python -m mitk
bench``), at 16 MiB so that a full asv run stays short; bzip2 files use 4 MiB.
"""

import bz2
import os
import shutil
import tempfile
import zlib

import numpy as np

import mitk
from mitk._bench.io_cases import BZIP2, GZIP, RAW, _volume

#: label -> (file name, save options, MiB) for every format x encoding.
FILES = {f"{enc} {label}": (name, opts, 4 if enc == "bzip2" else 16)
         for enc, specs in (("raw", RAW), ("gzip", GZIP), ("bzip2", BZIP2))
         for label, name, opts in specs}


class _Files:
    """Writes the volume once per parameter in a private directory."""

    params = [list(FILES)]
    param_names = ["file"]
    timeout = 300

    def setup(self, key):
        name, self.opts, mib = FILES[key]
        self.dir = tempfile.mkdtemp(prefix="mitk-asv-")
        self.arr = _volume(mib)
        self.img = mitk.Image(self.arr)
        self.path = os.path.join(self.dir, name)
        self.out = os.path.join(self.dir, "out-" + name)
        self.img.save(self.path, **self.opts)

    def teardown(self, key):
        shutil.rmtree(self.dir, ignore_errors=True)


class ReadSuite(_Files):
    def time_read(self, key):
        mitk.Image(self.path)

    def peakmem_read(self, key):
        mitk.Image(self.path)


class WriteSuite(_Files):
    def time_write(self, key):
        self.img.save(self.out, **self.opts)

    def time_write_no_fsync(self, key):
        self.img.save(self.out, fsync=False, **self.opts)

    def peakmem_write(self, key):
        self.img.save(self.out, **self.opts)


class ReferenceSuite:
    """The references of the I/O rows, on the same 16 MiB volume."""

    timeout = 300

    def setup(self):
        self.dir = tempfile.mkdtemp(prefix="mitk-asv-")
        self.arr = _volume(16)
        self.raw = os.path.join(self.dir, "ref.bin")
        self.arr.tofile(self.raw)
        self.gz = zlib.compress(self.arr.tobytes(), 1)
        self.small = _volume(4)
        self.bz = bz2.compress(self.small.tobytes(), 1)

    def teardown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def time_np_fromfile(self):
        np.fromfile(self.raw, dtype=np.int16)

    def time_ndarray_tofile(self):
        self.arr.tofile(self.raw)

    def time_ndarray_tofile_fsync(self):
        with open(self.raw, "wb") as f:
            self.arr.tofile(f)
            f.flush()
            os.fsync(f.fileno())

    def time_zlib_decompress(self):
        zlib.decompress(self.gz)

    def time_zlib_compress_level1(self):
        zlib.compress(self.arr, 1)

    def time_bz2_decompress_4mib(self):
        bz2.decompress(self.bz)

    def time_bz2_compress_level1_4mib(self):
        bz2.compress(self.small, 1)

    def peakmem_np_fromfile(self):
        np.fromfile(self.raw, dtype=np.int16)
