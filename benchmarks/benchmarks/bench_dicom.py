"""asv: reading a DICOM CT series, scanning a folder of series, and the read's peak memory.

The series are written with pydicom by mitk._bench.dicom_cases (the same as ``python -m mitk
bench``), smaller here so that a full asv run stays short.  Needs the ``dicom`` extra.
"""

import os
import shutil
import tempfile

import mitk
from mitk._bench.dicom_cases import write_ct, write_series_folder


class DicomSuite:
    """A 60-slice 256x256 int16 CT series and a folder of 20 series x 20 files."""

    timeout = 300

    def setup(self):
        self.dir = tempfile.mkdtemp(prefix="mitk-asv-dicom-")
        self.ct = os.path.join(self.dir, "ct")
        self.expected = write_ct(self.ct, slices=60, size=256)
        self.folder = os.path.join(self.dir, "series")
        write_series_folder(self.folder, series=20, files=20, size=64)

    def teardown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def time_read_ct(self):
        mitk.Image(self.ct)

    def time_scan(self):
        mitk.dicom.scan(self.folder)

    def peakmem_read_ct(self):
        mitk.Image(self.ct)
