"""dcm2niix (the reference DICOM-to-NIfTI converter, from PyPI) as an oracle on written series.

Compared through world coordinates: every voxel of dcm2niix's NIfTI (RAS) must land on the voxel
of ours with the same value.
"""

import glob
import os

import numpy as np
import pytest

import mitk


def _dcm2niix(folder, out):
    dcm2niix = pytest.importorskip("dcm2niix")
    os.makedirs(out, exist_ok=True)
    result = dcm2niix.main(["-z", "n", "-b", "n", "-f", "%s_%e", "-o", str(out), str(folder)],
                           capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return sorted(glob.glob(os.path.join(out, "*.nii")))


def _assert_same_world(img, nii_path, volume_axis=None):
    nib = pytest.importorskip("nibabel")
    ref = nib.load(nii_path)
    data = np.asarray(ref.dataobj.get_unscaled())
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ ref.affine
    ijk = np.array(np.meshgrid(*[np.arange(s) for s in data.shape[:3]], indexing="ij"))
    ijk = ijk.reshape(3, -1)
    world = affine[:3, :3] @ ijk + affine[:3, 3:4]
    inv = np.linalg.inv(img.affine)
    index = inv[:3, :3] @ world + inv[:3, 3:4]
    rounded = np.rint(index).astype(int)
    assert np.abs(index - rounded).max() < 1e-3
    ours = np.asarray(img.array)[..., rounded[2], rounded[1], rounded[0]]
    theirs = data[ijk[0], ijk[1], ijk[2]]
    if data.ndim == 4:
        theirs = np.moveaxis(theirs, -1, 0)
    np.testing.assert_array_equal(ours, theirs)


def test_oblique_series_matches_dcm2niix(tmp_path, dcm):
    angle = np.radians(20.0)
    row = (np.cos(angle), np.sin(angle), 0.0)
    col = (0.0, 0.0, -1.0)  # a tilted coronal stack
    normal = np.cross(row, col)
    vol = np.random.default_rng(3).integers(0, 3000, size=(6, 7, 9)).astype(np.int16)
    dcm.series(tmp_path / "in", vol, orientation=row + col, step=tuple(-2.5 * normal),
               origin=(12.0, -30.0, 44.0), spacing=(0.8, 0.6))
    (nii,) = _dcm2niix(tmp_path / "in", tmp_path / "out")
    img = mitk.Image(tmp_path / "in")
    _assert_same_world(img, nii)
    np.testing.assert_allclose(img.direction[:, 2], normal, atol=1e-9)


def test_4d_series_matches_dcm2niix(tmp_path, dcm):
    vol = np.random.default_rng(4).integers(0, 3000, size=(3, 4, 6, 5)).astype(np.int16)
    times = ["101500.000", "101502.000", "101504.000"]
    (tmp_path / "in").mkdir()
    for t, frame in enumerate(vol):
        for k, plane in enumerate(frame):
            dcm.slice(tmp_path / "in" / f"{t}_{k}.dcm", plane, position=(0, 0, 2.0 * k),
                      instance=t * 4 + k + 1, extra={"AcquisitionNumber": t + 1,
                                                     "AcquisitionTime": times[t],
                                                     "RepetitionTime": 2000})
    (nii,) = _dcm2niix(tmp_path / "in", tmp_path / "out")
    img = mitk.Image(tmp_path / "in")
    assert img.shape == (3, 4, 6, 5)
    _assert_same_world(img, nii)
    assert img.time_geometry.step_duration == pytest.approx(2000.0)


def test_ct_series_matches_dcm2niix(tmp_path, pydicom_files):
    folder = os.path.join(pydicom_files, "dicomdirtests", "98892001", "CT5N")
    (nii,) = _dcm2niix(folder, tmp_path / "out")
    img = mitk.Image.load(folder, rescale=False)
    _assert_same_world(img, nii)
