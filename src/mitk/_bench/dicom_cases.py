"""DICOM benchmarks: reading a CT series and scanning many series, beside same-run references.

The data are written with pydicom into a temporary directory (uncompressed Explicit VR Little
Endian, int16, RescaleSlope 1 / RescaleIntercept 0, files named in random order) and read
warm (the page cache holds them after the first pass).  References, all in the same run:

- read: pydicom's ``dcmread`` of every file, a sort by ImagePositionPatient and ``np.stack`` of
  the ``pixel_array``\\ s (the plain-pydicom way); SimpleITK's ``ImageSeriesReader`` with
  ``GetGDCMSeriesFileNames`` as a second reference when it is installed;
- scan: pydicom's ``dcmread(stop_before_pixels=True)`` of every file (per-file time);
- peak memory: the volume's size (growth of the resident high-water mark in a fresh process).

Without pydicom (the ``dicom`` extra) the cases report that and measure nothing.
"""

from __future__ import annotations

import os

import numpy as np

from .results import Result
from .timing import best_time, peak_growth

__all__ = ["CASES", "write_ct", "write_series_folder"]


def _pydicom():
    try:
        import pydicom
    except ImportError:
        return None
    return pydicom


def _dataset(pydicom, pixels: np.ndarray, position, series_uid: str, number: int, index: int):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.PatientName = "Bench^Phantom"
    ds.PatientID = "bench"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.2.1125.1.1"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = number
    ds.SeriesDescription = f"bench series {number}"
    ds.InstanceNumber = index + 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ImagePositionPatient = [-250.0, -250.0, float(position)]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.9765625, 0.9765625]
    ds.SliceThickness = 1.25
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleSlope = 1
    ds.RescaleIntercept = 0
    ds.PixelData = pixels.astype("<i2").tobytes()
    return ds


def write_ct(folder: str, slices: int = 140, size: int = 512) -> np.ndarray:
    """Write a ``slices`` x ``size`` x ``size`` int16 CT series; returns the volume (z order)."""
    pydicom = _pydicom()
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    volume = rng.integers(-1024, 3072, size=(slices, size, size), dtype=np.int16)
    order = rng.permutation(slices)
    uid = pydicom.uid.generate_uid()
    for k in range(slices):
        ds = _dataset(pydicom, volume[k], 1.25 * k, uid, 1, k)
        ds.save_as(os.path.join(folder, f"IM{order[k]:05d}.dcm"), enforce_file_format=True)
    return volume


def write_series_folder(folder: str, series: int = 80, files: int = 50, size: int = 64) -> int:
    """Write ``series`` small series of ``files`` slices each; returns the number of files."""
    pydicom = _pydicom()
    plane = np.zeros((size, size), np.int16)
    for s in range(series):
        sub = os.path.join(folder, f"S{s:03d}")
        os.makedirs(sub, exist_ok=True)
        uid = pydicom.uid.generate_uid()
        for k in range(files):
            ds = _dataset(pydicom, plane, 2.0 * k, uid, s + 1, k)
            ds.save_as(os.path.join(sub, f"IM{k:05d}.dcm"), enforce_file_format=True)
    return series * files


def _pydicom_stack(folder: str) -> np.ndarray:
    pydicom = _pydicom()
    datasets = [pydicom.dcmread(os.path.join(folder, name)) for name in os.listdir(folder)]
    datasets.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    return np.stack([d.pixel_array for d in datasets])


def _simpleitk_series(folder: str):
    try:
        import SimpleITK as sitk
    except ImportError:
        return None, None

    def read():
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder))
        return sitk.GetArrayViewFromImage(reader.Execute())

    return sitk, read


def _workspace() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="mitk-bench-dicom-")


def _unavailable(case: str) -> list:
    return [Result(case, "dicom", "needs pydicom (the dicom extra)", float("nan"), "")]


def read_ct(quick: bool, peers: bool = False) -> list:
    """Read a 140-slice 512 x 512 int16 CT series (40 slices with ``--quick``)."""
    import shutil

    import mitk

    if _pydicom() is None:
        return _unavailable("dicom.read_ct")
    slices = 40 if quick else 140
    repeat = 3 if quick else 5
    tmp = _workspace()
    try:
        folder = os.path.join(tmp, "ct")
        volume = write_ct(folder, slices)
        ours = best_time(lambda: mitk.Image(folder), repeat=repeat)
        image = mitk.Image(folder)
        if not np.array_equal(image.array, volume):
            raise AssertionError("the DICOM read does not match the written volume")
        stack = best_time(lambda: _pydicom_stack(folder), repeat=repeat)
        label = f"{slices} x 512 x 512 int16"
        out = [Result("dicom.read_ct", "dicom", f"Image(dir) of a {label} CT series",
                      ours * 1e3, "ms", "pydicom dcmread + sort + np.stack", stack * 1e3, "ms",
                      "<= 0.5x")]
        sitk, read = _simpleitk_series(folder)
        if read is not None:
            reference = best_time(read, repeat=repeat)
            out.append(Result("dicom.read_ct_simpleitk", "dicom",
                              f"Image(dir) of the same {label} CT series",
                              ours * 1e3, "ms", "SimpleITK ImageSeriesReader (GDCM file names)",
                              reference * 1e3, "ms", "<= 0.25x"))
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def scan_series(quick: bool) -> list:
    """``mitk.dicom.scan`` of 80 series x 50 files (20 x 25 with ``--quick``), per file."""
    import shutil

    import mitk

    pydicom = _pydicom()
    if pydicom is None:
        return _unavailable("dicom.scan")
    series, files = (20, 25) if quick else (80, 50)
    tmp = _workspace()
    try:
        count = write_series_folder(tmp, series, files)
        found = mitk.dicom.scan(tmp)
        if len(found) != series:
            raise AssertionError(f"scan found {len(found)} series, wrote {series}")
        ours = best_time(lambda: mitk.dicom.scan(tmp), repeat=3)
        names = [os.path.join(root, f) for root, _, fs in os.walk(tmp) for f in fs]
        reference = best_time(lambda: [pydicom.dcmread(p, stop_before_pixels=True)
                                       for p in names], repeat=3)
        return [Result("dicom.scan", "dicom",
                       f"mitk.dicom.scan of {series} series x {files} files, per file "
                       f"({count / ours:.0f} files/s)",
                       ours / count * 1e6, "us", "pydicom dcmread(stop_before_pixels), per file",
                       reference / count * 1e6, "us", "<= 200 us")]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def peak_memory(quick: bool) -> list:
    """Peak resident memory growth of reading the CT series, over the volume's size."""
    import shutil

    if _pydicom() is None or not os.path.exists("/proc/self/status"):
        return _unavailable("dicom.peak_memory")
    slices = 40 if quick else 140
    tmp = _workspace()
    try:
        folder = os.path.join(tmp, "ct")
        volume = write_ct(folder, slices)
        grown, = peak_growth("import mitk, mitk.dicom, mitk.io.dicom, pydicom",
                             f"img = mitk.Image({folder!r})")
        return [Result("dicom.peak_memory", "dicom",
                       f"peak memory growth of Image(dir), {slices}-slice CT",
                       grown / 1e6, "MB", "the volume", volume.nbytes / 1e6, "MB", "<= 1.1x")]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


#: (name, function) of every DICOM case, in table order.
CASES = [
    ("dicom.read_ct", read_ct),
    ("dicom.scan", scan_series),
    ("dicom.peak_memory", peak_memory),
]
