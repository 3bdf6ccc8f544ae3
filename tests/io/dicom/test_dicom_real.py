"""DICOM written by other software, checked against independent readers.

dcm2niix's reference NIfTI files (compared through world coordinates, since dcm2niix may flip
rows), nibabel's ``nicom`` (mosaics) and pydicom (pixel values, frame order).
"""

import glob
import gzip
import os
import shutil

import numpy as np
import pytest

import mitk


def _world_compare(img, data, affine_lps, atol=1e-6):
    """Every voxel of ``data`` (indexed i, j, k by ``affine_lps``) equals ours at that point."""
    ijk = np.array(np.meshgrid(*[np.arange(s) for s in data.shape[:3]], indexing="ij"))
    ijk = ijk.reshape(3, -1)
    world = affine_lps[:3, :3] @ ijk + affine_lps[:3, 3:4]
    inv = np.linalg.inv(img.affine)
    index = inv[:3, :3] @ world + inv[:3, 3:4]
    rounded = np.rint(index).astype(int)
    assert np.abs(index - rounded).max() < 1e-3, "voxel centres do not coincide"
    for axis, size in enumerate(reversed(img.shape[-3:])):
        assert rounded[axis].min() >= 0 and rounded[axis].max() < size
    ours = np.asarray(img.array)[..., rounded[2], rounded[1], rounded[0]]
    theirs = data[ijk[0], ijk[1], ijk[2]]
    if data.ndim == 4:
        theirs = np.moveaxis(data[ijk[0], ijk[1], ijk[2]], -1, 0)
    np.testing.assert_allclose(ours, theirs, atol=atol, rtol=1e-6)


def _nifti_lps(path):
    nib = pytest.importorskip("nibabel")
    image = nib.load(path)
    return np.asarray(image.get_fdata()), np.diag([-1.0, -1.0, 1.0, 1.0]) @ image.affine


# -- dcm2niix: one mosaic in nine transfer syntaxes --------------------------------------------


@pytest.mark.parametrize("number", range(1, 10))
def test_transfer_syntaxes_match_dcm2niix(shared, number):
    pytest.importorskip("imagecodecs")
    img = mitk.Image(shared("dcm_qa_ts", "In", f"{number}.dcm"))
    data, affine = _nifti_lps(shared("dcm_qa_ts", "Ref", f"{number}.nii"))
    assert img.shape == (35, 64, 64)
    _world_compare(img, data, affine)
    # The oblique acquisition: the slice step is the third column, along the normal.
    d = img.direction
    np.testing.assert_allclose(d[:, 2], np.cross(d[:, 0], d[:, 1]), atol=1e-6)


def test_transfer_syntaxes_agree_bit_for_bit(shared):
    pytest.importorskip("imagecodecs")
    first = mitk.Image(shared("dcm_qa_ts", "In", "1.dcm"))
    for number in range(2, 10):
        other = mitk.Image(shared("dcm_qa_ts", "In", f"{number}.dcm"))
        assert other.dtype == first.dtype
        np.testing.assert_array_equal(other.array, first.array)


# -- dcm2niix: enhanced and classic XA10 -------------------------------------------------------


def test_siemens_xa10_directory_is_4d_like_dcm2niix(shared):
    img = mitk.Image(shared("dcm_qa_enh", "In", "Siemens", "XA10"))
    data, affine = _nifti_lps(shared("dcm_qa_enh", "Ref", "Siemens_REST1_w_SMS_PF7-8_6.nii"))
    assert img.shape == (4, 6, 64, 64)
    _world_compare(img, data, affine)
    tg = img.time_geometry
    starts = [tg.get_time_bounds(t)[0] for t in range(4)]
    assert starts[0] == 0.0 and all(b > a for a, b in zip(starts, starts[1:]))


def test_philips_enhanced_field_map_gives_both_volumes(shared):
    nib = pytest.importorskip("nibabel")
    path = shared("dcm_qa_enh", "In", "Philips", "IM_0027_fMAP.dcm")
    magnitude, field = mitk.IOUtil.load(path)
    # dcm2niix keeps the magnitude's stored values (its scl_slope is NaN) ...
    stored = mitk.IOUtil.load(path, rescale=False)[0]
    ref = nib.load(shared("dcm_qa_enh", "Ref", "Philips_WIP_B0_NS_801_e1.nii"))
    _world_compare(stored, np.asarray(ref.dataobj.get_unscaled()),
                   np.diag([-1.0, -1.0, 1.0, 1.0]) @ ref.affine)
    np.testing.assert_allclose(magnitude.array,
                               np.asarray(stored.array) * stored.properties["dicom.RescaleSlope"],
                               rtol=1e-6)
    # ... and scales the field map to Hz with RescaleSlope/Intercept, as we do.
    data, affine = _nifti_lps(shared("dcm_qa_enh", "Ref",
                                     "Philips_WIP_B0_NS_801_e2_fieldmaphz.nii"))
    _world_compare(field, data, affine, atol=0.5)
    assert magnitude.dtype == field.dtype == np.float32


def test_enhanced_file_with_several_volumes_is_refused_by_image(shared):
    path = shared("dcm_qa_enh", "In", "Philips", "IM_0027_fMAP.dcm")
    with pytest.raises(mitk.ArgumentError) as info:
        mitk.Image(path)
    message = str(info.value)
    assert "IOUtil.load" in message and "mitk.dicom.scan" in message
    assert message.count("shape (32, 64, 64)") == 2


# -- pydicom's dicomdirtests -------------------------------------------------------------------


def test_even_ct_matches_pydicom(pydicom_files):
    pydicom = pytest.importorskip("pydicom")
    folder = os.path.join(pydicom_files, "dicomdirtests", "98892001", "CT5N")
    img = mitk.Image(folder)
    datasets = [pydicom.dcmread(f) for f in glob.glob(os.path.join(folder, "*"))]
    datasets.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    expected = np.stack([d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept)
                         for d in datasets])
    assert img.shape == (5, 16, 16)
    np.testing.assert_array_equal(img.array, expected)
    assert img.spacing[2] == pytest.approx(2.5)
    assert img.origin == pytest.approx([float(v) for v in datasets[0].ImagePositionPatient])
    assert img.properties["dicom.Modality"] == "CT"


def test_uneven_ct_is_refused_then_split(pydicom_files):
    folder = os.path.join(pydicom_files, "dicomdirtests", "77654033", "CT2")
    with pytest.raises(mitk.CorruptFileError, match=r"uneven slice spacing 1\.25-202\.5 mm"):
        mitk.Image(folder)
    images = mitk.IOUtil.load(folder, uneven="split")
    assert [im.shape for im in images] == [(16, 16), (3, 16, 16)]
    assert images[1].spacing[2] == pytest.approx(1.25)


def test_mr_slices_at_several_angles_do_not_stack(pydicom_files):
    folder = os.path.join(pydicom_files, "dicomdirtests", "98892003", "MR700")
    images = mitk.IOUtil.load(folder)
    assert len(images) == 7
    assert all(im.shape == (16, 16) for im in images)
    directions = {tuple(np.round(im.direction[:, 0], 3)) for im in images}
    assert len(directions) == 7


def test_localizers_in_three_orientations_split(pydicom_files):
    folder = os.path.join(pydicom_files, "dicomdirtests", "98892003", "MR2")
    images = mitk.IOUtil.load(folder)
    normals = {tuple(np.round(im.direction[:, 2], 3)) for im in images}
    assert len(normals) == 3
    assert all(im.ndim == 2 for im in images)
    ct = mitk.IOUtil.load(os.path.join(pydicom_files, "dicomdirtests", "98892001", "CT2N"))
    assert len(ct) == 2


def test_dicomdir_lists_the_same_volumes_as_the_tree(pydicom_files):
    root = os.path.join(pydicom_files, "dicomdirtests")
    via_dicomdir = mitk.dicom.scan(os.path.join(root, "DICOMDIR"))
    via_walk = mitk.dicom.scan(root)
    key = [(s.uid, s.shape) for s in via_walk]
    assert [(s.uid, s.shape) for s in via_dicomdir] == key
    uneven = [s for s in via_walk if any("uneven" in p for p in s.problems)]
    assert len(uneven) == 1 and "uneven slice spacing 1.25-202.5 mm" in uneven[0].problems[0]


# -- nibabel: enhanced 4D whose pixel values are their frame index ------------------------------


def test_enhanced_4d_orders_every_frame(nibabel_dicom):
    pydicom = pytest.importorskip("pydicom")
    path = os.path.join(nibabel_dicom, "4d_multiframe_test.dcm")
    img = mitk.Image(path)
    assert img.shape == (2, 56, 512, 512)
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    per = ds.PerFrameFunctionalGroupsSequence
    normal = np.cross(*np.reshape(
        [float(v) for v in ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0]
         .ImageOrientationPatient], (2, 3)))
    # Dimension index values are (stack, in-stack position, temporal position).
    keys = [(int(f.FrameContentSequence[0].DimensionIndexValues[2]),
             float(np.dot([float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient],
                          normal)), i) for i, f in enumerate(per)]
    keys.sort()
    expected = np.array([k[2] for k in keys]).reshape(2, 56)
    np.testing.assert_array_equal(np.asarray(img.array)[:, :, 0, 0], expected)
    assert (np.asarray(img.array) == expected[:, :, None, None]).all()
    assert img.time_geometry.get_time_bounds(1)[0] > img.time_geometry.get_time_bounds(0)[0]


# -- Siemens mosaics against nibabel -----------------------------------------------------------


def _mosaic_cases(heudiconv_data, nibabel_dicom, tmp_path):
    cases = [os.path.join(heudiconv_data, "axasc35.dcm"),
             os.path.join(heudiconv_data, "b0dwiForFmap", "b0dwi_for_fmap+00001.dcm")]
    for name in ("siemens_dwi_0.dcm.gz", "siemens_dwi_1000.dcm.gz"):
        target = tmp_path / name[:-3]
        with gzip.open(os.path.join(nibabel_dicom, name)) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
        cases.append(str(target))
    return cases


def test_mosaics_match_nibabel(heudiconv_data, nibabel_dicom, tmp_path):
    wrappers = pytest.importorskip("nibabel.nicom.dicomwrappers")
    for path in _mosaic_cases(heudiconv_data, nibabel_dicom, tmp_path):
        img = mitk.Image(path)
        wrapper = wrappers.wrapper_from_file(path)
        _world_compare(img, wrapper.get_data(), wrapper.affine)


def test_mosaic_series_splits_by_b_value_into_4d(heudiconv_data):
    # Three mosaics: b = 5 twice (AcquisitionNumber 1, 2) and b = 1500 (Siemens' private tag).
    folder = os.path.join(heudiconv_data, "b0dwiForFmap")
    images = mitk.IOUtil.load(folder)
    assert [im.shape for im in images] == [(2, 81, 152, 150), (81, 152, 150)]
    for t in range(2):
        single = mitk.Image(os.path.join(folder, f"b0dwi_for_fmap+0000{t + 1}.dcm"))
        np.testing.assert_array_equal(images[0].as_numpy(time_step=t), single.array)
    acquired = [images[0].time_geometry.get_time_bounds(t)[0] for t in range(2)]
    assert acquired == [0.0, pytest.approx(4150.0)]


# -- pydicom-data: compressed and enhanced multi-frame -----------------------------------------


@pytest.mark.parametrize("name", ["emri_small_RLE.dcm", "emri_small_big_endian.dcm",
                                  "emri_small_jpeg_2k_lossless.dcm",
                                  "emri_small_jpeg_ls_lossless.dcm"])
def test_compressed_enhanced_mr_equals_uncompressed(pydicom_data, name):
    pytest.importorskip("imagecodecs")
    plain = mitk.Image(os.path.join(pydicom_data, "emri_small.dcm"))
    other = mitk.Image(os.path.join(pydicom_data, name))
    assert other.shape == plain.shape == (10, 64, 64)
    np.testing.assert_array_equal(other.array, plain.array)
    np.testing.assert_allclose(other.affine, plain.affine)


def test_enhanced_ct_per_frame_scaling(pydicom_data):
    pydicom = pytest.importorskip("pydicom")
    path = os.path.join(pydicom_data, "eCT_Supplemental.dcm")
    stored = mitk.Image.load(path, rescale=False)
    ds = pydicom.dcmread(path)
    per = ds.PerFrameFunctionalGroupsSequence
    shared_groups = ds.SharedFunctionalGroupsSequence[0]
    normal = np.cross(*np.reshape([float(v) for v in shared_groups.PlaneOrientationSequence[0]
                                   .ImageOrientationPatient], (2, 3)))
    order = np.argsort([np.dot([float(v) for v in f.PlanePositionSequence[0]
                                .ImagePositionPatient], normal) for f in per])
    np.testing.assert_array_equal(stored.array, ds.pixel_array[order])
    scaled = mitk.Image.load(path)
    slope = stored.properties["dicom.RescaleSlope"]
    intercept = stored.properties["dicom.RescaleIntercept"]
    np.testing.assert_array_equal(scaled.array, np.asarray(stored.array) * slope + intercept)
    assert scaled.dtype.kind == "i"


def test_deflated_transfer_syntax_matches_pydicom(pydicom_files):
    pydicom = pytest.importorskip("pydicom")
    path = os.path.join(pydicom_files, "image_dfl.dcm")
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1.99"
    img = mitk.Image(path)
    np.testing.assert_array_equal(img.array, ds.pixel_array)


@pytest.mark.parametrize("name", ["SC_rgb_small_odd_big_endian.dcm", "SC_rgb_rle_16bit_2frame.dcm",
                                  "SC_rgb_rle_2frame.dcm", "MR_small_bigendian.dcm",
                                  "JPEG2000.dcm", "MR_small_RLE.dcm"])
def test_pydicom_test_files_match_pydicom(pydicom_files, name):
    # Big-endian 8-bit samples in an OW element have the bytes of each word swapped.
    pydicom = pytest.importorskip("pydicom")
    pytest.importorskip("imagecodecs")
    path = os.path.join(pydicom_files, name)
    ds = pydicom.dcmread(path)
    img = mitk.Image.load(path, rescale=False)
    np.testing.assert_array_equal(img.array, ds.pixel_array)


def test_radiograph_with_zero_pixel_spacing_loads(pydicom_data):
    # A projection image without geometry: a PixelSpacing of 0 is ignored (nothing is stacked).
    pydicom = pytest.importorskip("pydicom")
    path = os.path.join(pydicom_data, "RG1_UNCR.dcm")
    img = mitk.Image.load(path, rescale=False)
    np.testing.assert_array_equal(img.array, pydicom.dcmread(path).pixel_array)
    assert img.spacing == (1.0, 1.0, 1.0)
