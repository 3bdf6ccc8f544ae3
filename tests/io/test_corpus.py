"""Real files written by other software, checked against independent readers.

The files ship inside pinned packages of the test extra: NRRD files written by 3D Slicer
(slicerio), NIfTI-1/NIfTI-2/Analyze files (nibabel's test data), and MetaImage/NRRD/NIfTI files
that SimpleITK writes during the test.  Pixels must match bit for bit and geometry in LPS.
"""

import glob
import os

import numpy as np
import pytest

import mitk

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _package_files(package, pattern):
    mod = pytest.importorskip(package)
    root = os.path.dirname(mod.__file__)
    files = sorted(glob.glob(os.path.join(root, pattern), recursive=True))
    assert files, f"{package} ships no files matching {pattern}"
    return files


# -- NRRD written by 3D Slicer (slicerio) -----------------------------------------------------

SLICER_FILES = ["CTChest4.nrrd", "Segmentation.seg.nrrd", "SegmentationOverlapping.seg.nrrd"]


@pytest.mark.parametrize("name", SLICER_FILES)
def test_slicer_nrrd_matches_pynrrd(name):
    nrrd = pytest.importorskip("nrrd")
    path = [f for f in _package_files("slicerio", "data/*.nrrd") if f.endswith(name)][0]
    data, header = nrrd.read(path, index_order="C")
    img = mitk.Image(path)
    kinds = [k.lower() for k in header.get("kinds", ["domain"] * data.ndim)]
    expected = data
    if len(kinds) == 4 and kinds[0] not in ("domain", "space"):
        # A list/vector axis (first in the file, last in C order from pynrrd) is our last axis.
        assert img.channels == data.shape[-1]
    assert img.shape == expected.shape
    np.testing.assert_array_equal(img.array, expected)
    # Geometry: columns of space directions over the spatial axes, converted to LPS.
    dirs = np.array([d for d in header["space directions"] if d is not None and
                     not np.all(np.isnan(np.asarray(d, dtype=float)))], dtype=float).T
    space = header["space"].lower()
    flip = np.diag([-1.0, -1.0, 1.0]) if space in ("right-anterior-superior", "ras") else \
        np.diag([1.0, -1.0, 1.0]) if space in ("left-anterior-superior", "las") else np.eye(3)
    world_axes = flip @ dirs
    np.testing.assert_allclose(img.direction * np.asarray(img.spacing), world_axes, atol=1e-6)
    np.testing.assert_allclose(img.origin, flip @ np.asarray(header["space origin"]), atol=1e-6)


def test_slicer_key_values_become_properties():
    path = [f for f in _package_files("slicerio", "data/*.nrrd")
            if f.endswith("Segmentation.seg.nrrd")][0]
    img = mitk.Image(path)
    keys = img.property_keys
    assert any(k.startswith("Segment0_") for k in keys)
    assert all(isinstance(img.properties[k], str) for k in keys if not k.startswith("nrrd."))


@pytest.mark.parametrize("name", SLICER_FILES)
def test_slicer_nrrd_round_trips_through_our_writer(tmp_path, name):
    nrrd = pytest.importorskip("nrrd")
    path = [f for f in _package_files("slicerio", "data/*.nrrd") if f.endswith(name)][0]
    img = mitk.Image(path)
    out = tmp_path / "ct.nrrd"
    img.save(out, compression="gzip")
    data, header = nrrd.read(str(out), index_order="C")
    np.testing.assert_array_equal(data, img.array)
    back = mitk.Image(out)
    np.testing.assert_array_equal(back.array, img.array)
    np.testing.assert_allclose(back.affine, img.affine, atol=1e-9)
    plain = {k: v for k, v in img.properties.items() if not k.startswith("nrrd.")}
    assert {k: back.properties[k] for k in plain} == plain
    if name.endswith(".seg.nrrd"):
        assert len(plain) > 5  # Slicer's segment metadata came through


# -- NIfTI written by other software (nibabel's test data) -------------------------------------


def _nibabel_images():
    return [f for f in _package_files("nibabel", "tests/data/*.nii*")]


@pytest.mark.parametrize("path", _nibabel_images() if __import__("importlib").util.find_spec(
    "nibabel") else [], ids=os.path.basename)
def test_nibabel_files_match_nibabel(path):
    nib = pytest.importorskip("nibabel")
    ref = nib.load(path)
    img = mitk.Image(path)
    stored = np.asanyarray(ref.dataobj)
    if stored.ndim > 4:
        pytest.skip(f"{os.path.basename(path)} has {stored.ndim} axes (a CIFTI matrix)")
    expected = stored.transpose(tuple(range(stored.ndim))[::-1]) if stored.ndim > 1 else \
        stored[None]
    expected = expected.reshape(img.shape)
    if expected.dtype.newbyteorder("=") == img.dtype:  # nibabel keeps the file's byte order
        np.testing.assert_array_equal(img.array, expected)  # stored values: bit-exact
    else:
        # Scaled data: nibabel computes in float64, mitk in float32 for 16-bit stored types.
        assert img.dtype == np.float32
        np.testing.assert_allclose(img.array, expected, rtol=2e-7 * 4)
    if hasattr(ref, "affine") and ref.affine is not None:  # CIFTI files have no affine
        np.testing.assert_allclose(img.affine, RAS_TO_LPS @ ref.affine, atol=1e-4)


def test_nibabel_scaled_file_matches_get_fdata():
    nib = pytest.importorskip("nibabel")
    path = [f for f in _nibabel_images() if f.endswith("example4d.nii.gz")][0]
    ref = nib.load(path)
    scaled = mitk.Image(path)
    raw = mitk.Image.load(path, apply_scaling=False)
    slope, inter = ref.dataobj.slope, ref.dataobj.inter
    data = ref.get_fdata()
    np.testing.assert_allclose(scaled.array, data.transpose(3, 2, 1, 0), rtol=1e-6)
    np.testing.assert_array_equal(raw.array,
                                  np.asanyarray(ref.dataobj.get_unscaled()).transpose(3, 2, 1, 0))
    if slope != 1 or inter != 0:
        assert raw.properties["nifti.scl_slope"] == pytest.approx(slope)
    assert scaled.ndim == 4 and scaled.time_steps == data.shape[3]


def test_nifti2_file():
    nib = pytest.importorskip("nibabel")
    path = [f for f in _nibabel_images() if f.endswith("example_nifti2.nii.gz")][0]
    img = mitk.Image(path)
    assert img.properties["nifti.version"] == 2
    ref = nib.load(path)
    np.testing.assert_allclose(img.affine, RAS_TO_LPS @ ref.affine, atol=1e-5)


# -- files written by SimpleITK during the test ------------------------------------------------


@pytest.mark.parametrize("ext", [".mha", ".mhd", ".nrrd", ".nii.gz", ".nii"])
@pytest.mark.parametrize("pixel", ["int16", "float32", "uint8x3"])
def test_simpleitk_writes_we_read(tmp_path, ext, pixel):
    sitk = pytest.importorskip("SimpleITK")
    rng = np.random.default_rng(7)
    if pixel == "uint8x3":
        arr = rng.integers(0, 255, (4, 5, 6, 3)).astype(np.uint8)
        image = sitk.GetImageFromArray(arr, isVector=True)
    else:
        arr = (rng.standard_normal((4, 5, 6)) * 100).astype(pixel)
        image = sitk.GetImageFromArray(arr)
    image.SetSpacing((0.4, 0.5, 0.6))
    image.SetOrigin((-10.0, 20.0, 30.5))
    c, s = np.cos(0.3), np.sin(0.3)
    direction = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    image.SetDirection(tuple(direction.ravel()))
    path = str(tmp_path / f"sitk{ext}")
    sitk.WriteImage(image, path, ext in (".mha", ".nrrd", ".nii.gz"))
    img = mitk.Image(path)
    np.testing.assert_array_equal(img.array, arr)
    np.testing.assert_allclose(img.spacing, (0.4, 0.5, 0.6), rtol=1e-6)
    np.testing.assert_allclose(img.origin, (-10.0, 20.0, 30.5), atol=1e-5)
    np.testing.assert_allclose(img.direction, direction, atol=1e-6)


@pytest.mark.parametrize("ext", [".mha", ".mhd", ".nrrd", ".nhdr", ".nii.gz", ".nii"])
def test_simpleitk_reads_what_we_write(tmp_path, ext):
    sitk = pytest.importorskip("SimpleITK")
    arr = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    c, s = np.cos(0.2), np.sin(0.2)
    direction = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    img = mitk.Image(arr, spacing=(0.7, 0.8, 1.9), origin=(5.0, -6.0, 7.0), direction=direction)
    path = str(tmp_path / f"ours{ext}")
    img.save(path)
    ref = sitk.ReadImage(path)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ref), arr)
    np.testing.assert_allclose(ref.GetSpacing(), (0.7, 0.8, 1.9), rtol=1e-6)
    np.testing.assert_allclose(ref.GetOrigin(), (5.0, -6.0, 7.0), atol=1e-5)
    np.testing.assert_allclose(np.reshape(ref.GetDirection(), (3, 3)), direction, atol=1e-6)


def test_nibabel_reads_what_we_write(tmp_path):
    nib = pytest.importorskip("nibabel")
    arr = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    shear = np.array([[1.0, 0.2, 0.0], [0.0, 1.0, 0.1], [0.0, 0.0, 1.0]])
    img = mitk.Image(arr, spacing=(1.5, 2.0, 2.5), origin=(1, 2, 3), direction=shear)
    for ext in (".nii", ".nii.gz", ".hdr"):
        path = tmp_path / f"x{ext}"
        img.save(path)
        ref = nib.load(str(path))
        np.testing.assert_array_equal(np.asanyarray(ref.dataobj).transpose(2, 1, 0), arr)
        np.testing.assert_allclose(RAS_TO_LPS @ ref.affine, img.affine, atol=1e-5)


def test_pynrrd_reads_what_we_write(tmp_path):
    nrrd = pytest.importorskip("nrrd")
    arr = np.arange(2 * 3 * 4 * 3, dtype=np.uint8).reshape(2, 3, 4, 3)
    img = mitk.Image(arr, channels=3, spacing=(0.5, 0.5, 2.0))
    img.properties["note"] = "line one\nline two"
    for ext, comp in ((".nrrd", "bzip2"), (".nhdr", "gzip")):
        path = tmp_path / f"x{ext}"
        img.save(path, compression=comp)
        data, header = nrrd.read(str(path), index_order="C")
        np.testing.assert_array_equal(data, arr)
        assert header["kinds"][0] == "RGB-color"
        assert header["space"] == "left-posterior-superior"
