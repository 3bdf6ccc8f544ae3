"""asv: region reads of mitk.open (SPEC 13) beside copies out of a NumPy memory map.

The volume and the regions come from mitk._bench.region_cases (the same as ``python -m mitk
bench``); 128^3 int16 raw files, and a 256^3 (16 MiB) .nii.gz, the smallest that carries a block
index, plus a single-stream copy of it as other tools write.
"""

import gzip
import os
import shutil
import tempfile
import zlib

import numpy as np

import mitk
from mitk._bench.region_cases import _regions, _volume

RAW_N = 128
#: The compressed volume's side: 256^3 int16 (16 MiB) is the smallest that carries a block index.
GZ_N = 256
#: The z-slice a fresh LazyImage reads: deep in the stream (a foreign one inflates most of it).
DEEP_Z = 200


class RawRegionSuite:
    """A z-slice, a y-plane and a 40^3 block of raw .nrrd/.nii/.mha, and the mmap reference."""

    params = [["raw.nrrd", "raw.nii", "raw.mha", "ref.npy"], ["zslice", "yplane", "block40"]]
    param_names = ["file", "region"]
    timeout = 300

    def setup(self, name, region):
        self.dir = tempfile.mkdtemp(prefix="mitk-asv-")
        arr = _volume(RAW_N)
        path = os.path.join(self.dir, name)
        self.key = _regions(RAW_N)[region]
        if name.endswith(".npy"):
            np.save(path, arr)
            mm = np.load(path, mmap_mode="r")
            self.read = lambda: np.array(mm[self.key])
        else:
            mitk.Image(arr).save(path)
            lz = mitk.open(path)
            self.read = lambda: lz[self.key]

    def teardown(self, name, region):
        shutil.rmtree(self.dir, ignore_errors=True)

    def time_region(self, name, region):
        self.read()

    def peakmem_region(self, name, region):
        self.read()


class CompressedRegionSuite:
    """A z-slice of our block-indexed .nii.gz and of a single-stream (foreign) one: first read
    (fresh open), and the same slice read again."""

    params = [["indexed.nii.gz", "foreign.nii.gz"]]
    param_names = ["file"]
    timeout = 300

    def setup(self, name):
        self.dir = tempfile.mkdtemp(prefix="mitk-asv-")
        self.path = os.path.join(self.dir, name)
        ours = os.path.join(self.dir, "indexed.nii.gz")
        mitk.Image(_volume(GZ_N)).save(ours)
        if name == "foreign.nii.gz":
            with gzip.open(ours, "rb") as src, open(self.path, "wb") as dst:
                dst.write(zlib.compress(src.read(), 6, wbits=31))
        # One LazyImage that has read the slice once: its block (ours) or checkpoint (foreign)
        # serves the same slice again.
        self.warm = mitk.open(self.path)
        self.warm[GZ_N // 2]

    def teardown(self, name):
        shutil.rmtree(self.dir, ignore_errors=True)

    def time_first_zslice(self, name):
        mitk.open(self.path)[DEEP_Z]

    def peakmem_first_zslice(self, name):
        mitk.open(self.path)[DEEP_Z]

    def time_zslice_again(self, name):
        self.warm[GZ_N // 2]

    def time_every_zslice_in_order(self, name):
        lz = mitk.open(self.path)
        for z in range(GZ_N):
            lz[z]
