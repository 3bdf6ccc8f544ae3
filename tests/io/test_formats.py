"""The file formats against SPEC.md section 6: round trips, variants, options, hostile files."""

import bz2
import gzip
import os
import re
import struct
import zlib

import numpy as np
import pytest

import mitk
from mitk.io._replace import TEMP_PREFIX
from mitk_testing import PIXEL_TYPES, sample_array

EXTS = [".nrrd", ".nhdr", ".nii", ".nii.gz", ".hdr", ".mha", ".mhd"]
STORES = {  # which pixel types each format can hold (SPEC.md section 5)
    ".nrrd": set(PIXEL_TYPES) - {"float16"},
    ".nhdr": set(PIXEL_TYPES) - {"float16"},
    ".nii": set(PIXEL_TYPES) - {"float16"},
    ".nii.gz": set(PIXEL_TYPES) - {"float16"},
    ".hdr": set(PIXEL_TYPES) - {"float16"},
    ".mha": set(PIXEL_TYPES) - {"float16", "complex64", "complex128"},
    ".mhd": set(PIXEL_TYPES) - {"float16", "complex64", "complex128"},
}
SHAPES = {(2, 1): (5, 7), (3, 1): (3, 5, 7), (4, 1): (4, 3, 5, 7),
          (2, 3): (5, 7, 3), (3, 3): (3, 5, 7, 3), (4, 3): (2, 3, 5, 7, 3)}


def _geometry(ndim):
    if ndim == 2:
        return {"spacing": (0.5, 0.75), "origin": (1.0, -2.0)}
    c, s = np.cos(0.4), np.sin(0.4)
    return {"spacing": (0.5, 0.75, 1.25), "origin": (1.0, -2.0, 3.5),
            "direction": np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])}


@pytest.mark.parametrize("ext", EXTS)
@pytest.mark.parametrize("name", PIXEL_TYPES)
@pytest.mark.parametrize("ndim,channels", sorted(SHAPES))
def test_round_trip(tmp_path, ext, name, ndim, channels):
    arr = sample_array(name, SHAPES[ndim, channels], seed=ndim * 10 + channels)
    img = mitk.Image(arr, channels=channels if channels > 1 else None, **_geometry(ndim))
    img.properties["study"] = "round trip"
    path = tmp_path / f"img{ext}"
    # NRRD holds complex pixels (a complex axis) or components, not both.
    both = name.startswith("complex") and channels > 1 and ext in (".nrrd", ".nhdr")
    if name not in STORES[ext] or both:
        with pytest.raises(mitk.UnsupportedFormatError, match="complex" if both else name):
            img.save(path)
        assert os.listdir(tmp_path) == []
        return
    if ndim == 4:
        img.time_geometry.first_time_point = 10.0
        img.time_geometry.step_duration = 2.5
    img.save(path)
    back = mitk.Image(path)
    expected = arr.astype(np.uint8) if name == "bool" else arr
    assert back.dtype == expected.dtype and back.shape == img.shape
    assert back.channels == channels and back.ndim == ndim
    np.testing.assert_array_equal(back.array, expected)
    np.testing.assert_allclose(back.spacing, img.spacing, rtol=1e-6)
    np.testing.assert_allclose(back.origin, img.origin, atol=1e-6)
    np.testing.assert_allclose(back.direction, img.direction, atol=1e-6)
    if ndim == 4:
        assert back.time_geometry.first_time_point == pytest.approx(10.0)
        assert back.time_geometry.step_duration == pytest.approx(2.5)
    if ext not in (".nii", ".nii.gz", ".hdr"):  # NIfTI skips plain keys (SPEC 6.4)
        assert back.properties["study"] == "round trip"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(TEMP_PREFIX)]


@pytest.mark.parametrize("ext", EXTS)
def test_nan_and_inf_survive(tmp_path, ext):
    arr = np.array([[np.nan, np.inf, -np.inf], [0.0, -0.0, 1e-45]], np.float32)
    mitk.Image(arr).save(tmp_path / f"x{ext}")
    back = mitk.Image(tmp_path / f"x{ext}").array
    assert back.tobytes() == arr.tobytes()


@pytest.mark.parametrize("ext,comp", [(".nrrd", "gzip"), (".nrrd", "bzip2"), (".nhdr", "gzip"),
                                      (".nhdr", "bzip2"), (".mha", "gzip"), (".mhd", "gzip"),
                                      (".nii.gz", None), (".nii.gz", "gzip")])
@pytest.mark.parametrize("level", [None, 1, 9])
def test_compressed_round_trip(tmp_path, ext, comp, level):
    arr = np.tile(np.arange(100, dtype=np.int16), (20, 10, 1))
    kwargs = {"compression": comp} if comp else {}
    if level is not None:
        kwargs["compression_level"] = level
    mitk.Image(arr).save(tmp_path / f"x{ext}", **kwargs)
    np.testing.assert_array_equal(mitk.Image(tmp_path / f"x{ext}").array, arr)
    total = sum(os.path.getsize(tmp_path / p) for p in os.listdir(tmp_path))
    assert total < arr.nbytes / 4  # really compressed


@pytest.mark.parametrize("ext,kwargs,exc", [
    (".nrrd", {"compression": "lz4"}, mitk.ArgumentError),
    (".nrrd", {"compression": 5}, TypeError),
    (".nrrd", {"compression_level": 3}, mitk.ArgumentError),  # a level with raw data
    (".nrrd", {"compression": "gzip", "compression_level": 10}, mitk.ArgumentError),
    (".mha", {"compression": "bzip2"}, mitk.ArgumentError),
    (".nii", {"compression": "gzip"}, mitk.ArgumentError),
    (".nii", {"nifti_version": 3}, mitk.ArgumentError),
    (".nrrd", {"nifti_version": 2}, TypeError),
    (".nrrd", {"colour": "blue"}, TypeError),
])
def test_bad_save_options(tmp_path, ext, kwargs, exc):
    with pytest.raises(exc):
        mitk.Image(np.zeros((3, 3), np.int16)).save(tmp_path / f"x{ext}", **kwargs)
    assert os.listdir(tmp_path) == []


def test_bad_load_options(tmp_path):
    mitk.Image(np.zeros((3, 3), np.int16)).save(tmp_path / "x.nrrd")
    with pytest.raises(TypeError, match="apply_scaling"):
        mitk.Image.load(tmp_path / "x.nrrd", apply_scaling=False)
    with pytest.raises(TypeError):
        mitk.IOUtil.load(tmp_path / "x.nrrd", colour="blue")


def test_nifti2_is_written_when_needed(tmp_path):
    img = mitk.Image(np.zeros((1, 40000), np.uint8))
    img.save(tmp_path / "wide.nii")
    assert (tmp_path / "wide.nii").read_bytes()[:4] == struct.pack("<i", 540)
    assert mitk.Image(tmp_path / "wide.nii").shape == (1, 40000)
    mitk.Image(np.zeros((2, 2), np.uint8)).save(tmp_path / "v2.nii", nifti_version=2)
    assert mitk.Image(tmp_path / "v2.nii").properties["nifti.version"] == 2
    with pytest.raises(mitk.UnsupportedFormatError, match="NIfTI-2"):
        img.save(tmp_path / "v1.nii", nifti_version=1)


def test_sheared_nifti_sform_is_kept_exactly(tmp_path):
    shear = np.array([[1.0, 0.25, 0.0], [0.0, 1.0, 0.0], [0.0, 0.1, 1.0]])
    img = mitk.Image(np.zeros((2, 3, 4), np.float32), direction=shear, spacing=(1, 2, 3))
    img.save(tmp_path / "s.nii")
    back = mitk.Image(tmp_path / "s.nii")
    np.testing.assert_allclose(back.affine, img.affine, atol=1e-6)
    assert back.properties["nifti.qform_code"] == 0  # not orthonormal: no qform


def test_nifti_scaling_options(tmp_path):
    img = mitk.Image(np.arange(12, dtype=np.int16).reshape(3, 4))
    img.properties["nifti.scl_slope"] = 0.5
    img.properties["nifti.scl_inter"] = 10.0
    img.save(tmp_path / "s.nii")
    scaled = mitk.Image(tmp_path / "s.nii")
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled.array, np.arange(12).reshape(3, 4) * 0.5 + 10)
    raw = mitk.Image.load(tmp_path / "s.nii", apply_scaling=False)
    assert raw.dtype == np.int16
    assert raw.properties["nifti.scl_slope"] == 0.5 and raw.properties["nifti.scl_inter"] == 10
    with pytest.raises(TypeError):
        mitk.Image.load(tmp_path / "s.nii", apply_scaling="yes")


def _nifti1_header(**fields):
    """A hand-made NIfTI-1 header for variant and hostile tests (little-endian unless given)."""
    from mitk.io.nifti._header import _N1

    order = fields.pop("_order", "<")
    h = np.zeros((), dtype=_N1.newbyteorder(order))
    h["sizeof_hdr"] = 348
    h["magic"] = b"n+1"
    h["dim"] = [3, 4, 3, 2, 1, 1, 1, 1]
    h["datatype"] = 4
    h["bitpix"] = 16
    h["pixdim"] = [1, 1, 1, 1, 0, 0, 0, 0]
    h["vox_offset"] = 352
    for k, v in fields.items():
        h[k] = v
    return h.tobytes() + b"\0\0\0\0"


@pytest.mark.parametrize("order", ["<", ">"])
def test_nifti_byte_orders(tmp_path, order):
    data = np.arange(24, dtype=order + "i2")
    (tmp_path / "b.nii").write_bytes(_nifti1_header(_order=order) + data.tobytes())
    back = mitk.Image(tmp_path / "b.nii")
    np.testing.assert_array_equal(back.array.ravel(), np.arange(24))
    assert back.dtype == np.int16 and back.dtype.isnative


def test_nifti_qform_and_analyze_fallbacks(tmp_path):
    data = np.zeros(24, np.int16).tobytes()
    # qform only: a 90 degree rotation about z (quaternion (0, 0, sin 45, cos 45)).
    q = _nifti1_header(qform_code=1, quatern_d=np.sqrt(0.5), qoffset_x=5.0, qoffset_y=6.0,
                       qoffset_z=7.0, pixdim=[1, 2, 3, 4, 0, 0, 0, 0])
    (tmp_path / "q.nii").write_bytes(q + data)
    img = mitk.Image(tmp_path / "q.nii")
    np.testing.assert_allclose(img.spacing, (2, 3, 4), atol=1e-6)
    np.testing.assert_allclose(img.origin, (-5, -6, 7), atol=1e-6)
    # RAS rotation of 90 degrees about z, seen in LPS.
    np.testing.assert_allclose(img.direction, [[0, 1, 0], [-1, 0, 0], [0, 0, 1]], atol=1e-6)
    # Neither: Analyze convention, centred, x flipped (RAS diag(-px, py, pz)).
    (tmp_path / "a.nii").write_bytes(_nifti1_header(pixdim=[1, 2, 2, 2, 0, 0, 0, 0]) + data)
    img = mitk.Image(tmp_path / "a.nii")
    np.testing.assert_allclose(img.direction, np.diag([1.0, -1.0, 1.0]), atol=1e-9)
    # A singular sform with a qform falls back to the qform; without, it is corrupt.
    bad_s = dict(sform_code=1, srow_x=[0, 0, 0, 0], srow_y=[0, 0, 0, 0], srow_z=[0, 0, 0, 0])
    (tmp_path / "s1.nii").write_bytes(_nifti1_header(qform_code=1, **bad_s) + data)
    assert mitk.Image(tmp_path / "s1.nii").spacing == (1.0, 1.0, 1.0)
    (tmp_path / "s2.nii").write_bytes(_nifti1_header(**bad_s) + data)
    with pytest.raises(mitk.CorruptFileError, match="sform"):
        mitk.Image(tmp_path / "s2.nii")


def test_nifti_units_convert_to_mm_and_ms(tmp_path):
    h = _nifti1_header(dim=[4, 2, 2, 2, 3, 1, 1, 1], xyzt_units=1 | 8,
                       pixdim=[1, 0.001, 0.002, 0.003, 0.5, 0, 0, 0])
    (tmp_path / "u.nii").write_bytes(h + bytes(2 * 24))
    img = mitk.Image(tmp_path / "u.nii")
    np.testing.assert_allclose(img.spacing, (1.0, 2.0, 3.0), rtol=1e-6)
    assert img.time_geometry.step_duration == pytest.approx(500.0)


# -- NRRD variants ----------------------------------------------------------------------------


def _nrrd(tmp_path, name, header, data=b""):
    path = tmp_path / name
    path.write_bytes(("NRRD0004\n" + header + "\n").encode() + data)
    return path


def test_nrrd_variants(tmp_path):
    a = np.arange(24, dtype=">i2")
    base = "type: short\ndimension: 3\nsizes: 4 3 2\nendian: big\n"
    p = _nrrd(tmp_path, "raw.nrrd", base + "encoding: raw\n", a.tobytes())
    np.testing.assert_array_equal(mitk.Image(p).array.ravel(), np.arange(24))
    p = _nrrd(tmp_path, "txt.nrrd", "type: short\ndimension: 3\nsizes: 4 3 2\nencoding: ASCII\n",
              " ".join(map(str, range(24))).encode())
    np.testing.assert_array_equal(mitk.Image(p).array.ravel(), np.arange(24))
    p = _nrrd(tmp_path, "bz.nrrd", base + "encoding: bz2\n", bz2.compress(a.tobytes()))
    np.testing.assert_array_equal(mitk.Image(p).array.ravel(), np.arange(24))
    # byte skip -1: the data are the last bytes of the file
    p = _nrrd(tmp_path, "skip.nrrd", base + "encoding: raw\nbyte skip: -1\n",
              b"junk before" + a.tobytes())
    np.testing.assert_array_equal(mitk.Image(p).array.ravel(), np.arange(24))
    # detached with line skip and byte skip
    (tmp_path / "d.raw").write_bytes(b"line one\nline two\nXXXX" + a.tobytes())
    p = _nrrd(tmp_path, "d.nhdr", base + "encoding: raw\nline skip: 2\nbyte skip: 4\n"
              "data file: d.raw\n")
    np.testing.assert_array_equal(mitk.Image(p).array.ravel(), np.arange(24))
    # LIST and pattern data files: one slice each
    for k in range(2):
        (tmp_path / f"s{k:02d}.raw").write_bytes(a[k * 12:(k + 1) * 12].tobytes())
    p = _nrrd(tmp_path, "l.nhdr", base + "encoding: raw\ndata file: LIST\ns00.raw\ns01.raw\n")
    np.testing.assert_array_equal(mitk.Image(p).array.ravel(), np.arange(24))
    p = _nrrd(tmp_path, "pat.nhdr", base + "encoding: raw\ndata file: s%02d.raw 0 1 1\n")
    np.testing.assert_array_equal(mitk.Image(p).array.ravel(), np.arange(24))


@pytest.mark.parametrize("space,flip", [("right-anterior-superior", (-1, -1, 1)),
                                        ("left-anterior-superior", (1, -1, 1)),
                                        ("left-posterior-superior", (1, 1, 1)),
                                        ("scanner-xyz", (1, 1, 1)),
                                        ("3D-right-handed", (1, 1, 1))])
def test_nrrd_spaces_become_lps(tmp_path, space, flip):
    header = (f"type: uchar\ndimension: 3\nsizes: 2 2 2\nencoding: raw\nspace: {space}\n"
              "space directions: (0.5,0,0) (0,0.6,0) (0,0,0.7)\nspace origin: (10,20,30)\n")
    img = mitk.Image(_nrrd(tmp_path, "s.nrrd", header, bytes(8)))
    np.testing.assert_allclose(img.origin, np.multiply((10, 20, 30), flip))
    np.testing.assert_allclose(img.direction, np.diag(flip))
    np.testing.assert_allclose(img.spacing, (0.5, 0.6, 0.7))


def test_nrrd_components_time_and_1d(tmp_path):
    rgb = np.arange(3 * 4 * 5, dtype=np.uint8)
    header = "type: uchar\ndimension: 3\nsizes: 3 4 5\nkinds: RGB-color domain domain\nencoding: raw\n"
    img = mitk.Image(_nrrd(tmp_path, "rgb.nrrd", header, rgb.tobytes()))
    assert img.shape == (5, 4, 3) and img.channels == 3
    # components stored last in the file (slowest) move to the trailing axis
    header = "type: uchar\ndimension: 3\nsizes: 4 5 3\nkinds: domain domain vector\nencoding: raw\n"
    img = mitk.Image(_nrrd(tmp_path, "v.nrrd", header, rgb.tobytes()))
    assert img.shape == (5, 4, 3)
    np.testing.assert_array_equal(img.array, rgb.reshape(3, 5, 4).transpose(1, 2, 0))
    header = "type: uchar\ndimension: 4\nsizes: 2 2 2 3\nkinds: domain domain domain time\n" \
             "spacings: 1 1 1 4\nencoding: raw\n"
    img = mitk.Image(_nrrd(tmp_path, "t.nrrd", header, bytes(24)))
    assert img.ndim == 4 and img.time_steps == 3
    assert img.time_geometry.step_duration == 4
    img = mitk.Image(_nrrd(tmp_path, "one.nrrd", "type: uchar\ndimension: 1\nsizes: 7\n"
                           "encoding: raw\n", bytes(range(7))))
    assert img.shape == (1, 7) and img.ndim == 2
    header = "type: uchar\ndimension: 5\nsizes: 2 2 2 2 2\nencoding: raw\n"
    with pytest.raises(mitk.UnsupportedFormatError):
        mitk.Image(_nrrd(tmp_path, "five.nrrd", header, bytes(32)))
    header = "type: uchar\ndimension: 4\nsizes: 2 2 2 2\nkinds: vector list domain domain\n" \
             "encoding: raw\n"
    with pytest.raises(mitk.UnsupportedFormatError, match="non-spatial"):
        mitk.Image(_nrrd(tmp_path, "two.nrrd", header, bytes(16)))


# -- MetaImage variants -----------------------------------------------------------------------


def test_metaimage_variants(tmp_path):
    a = np.arange(24, dtype=">f4")
    header = ("ObjectType = Image\nNDims = 3\nDimSize = 4 3 2\nElementType = MET_FLOAT\n"
              "ElementByteOrderMSB = True\nElementSize = 2 2 2\nPosition = 1 2 3\n"
              "Orientation = 0 1 0 1 0 0 0 0 1\nPatientName = anonymous\n")
    (tmp_path / "a.mha").write_bytes((header + "ElementDataFile = LOCAL\n").encode() + a.tobytes())
    img = mitk.Image(tmp_path / "a.mha")
    np.testing.assert_array_equal(img.array.ravel(), np.arange(24))
    assert img.spacing == (2.0, 2.0, 2.0) and img.origin == (1.0, 2.0, 3.0)
    np.testing.assert_array_equal(img.direction, [[0, 1, 0], [1, 0, 0], [0, 0, 1]])
    assert img.properties["PatientName"] == "anonymous"
    # HeaderSize -1: the data are the last bytes of the data file
    (tmp_path / "d.raw").write_bytes(b"prefix" + a.tobytes())
    (tmp_path / "d.mhd").write_text(header + "HeaderSize = -1\nElementDataFile = d.raw\n")
    np.testing.assert_array_equal(mitk.Image(tmp_path / "d.mhd").array.ravel(), np.arange(24))
    # LIST of slices
    for k in range(2):
        (tmp_path / f"s{k}.raw").write_bytes(a[k * 12:(k + 1) * 12].tobytes())
    (tmp_path / "l.mhd").write_text(header + "ElementDataFile = LIST\ns0.raw\ns1.raw\n")
    np.testing.assert_array_equal(mitk.Image(tmp_path / "l.mhd").array.ravel(), np.arange(24))
    # zlib data
    z = zlib.compress(a.tobytes())
    (tmp_path / "z.mha").write_bytes((header + f"CompressedData = True\nCompressedDataSize = "
                                      f"{len(z)}\nElementDataFile = LOCAL\n").encode() + z)
    np.testing.assert_array_equal(mitk.Image(tmp_path / "z.mha").array.ravel(), np.arange(24))


def test_metaimage_2d_out_of_plane_is_refused(tmp_path):
    img = mitk.Image(np.zeros((3, 3), np.uint8), origin=(0, 0))
    img.set_origin((1.0, 2.0, 5.0))
    with pytest.raises(mitk.UnsupportedFormatError, match="plane"):
        img.save(tmp_path / "x.mha")


# -- entry points and errors ------------------------------------------------------------------


def test_load_checks_in_order(tmp_path):
    with pytest.raises(FileNotFoundError):
        mitk.Image(tmp_path / "missing.nrrd")
    (tmp_path / "dir.nrrd").mkdir()  # a directory is read as DICOM (SPEC 6.1)
    with pytest.raises(mitk.UnsupportedFormatError, match="no DICOM image files"):
        mitk.Image(tmp_path / "dir.nrrd")
    (tmp_path / "x.xyz").write_bytes(b"NRRD0004\n")
    with pytest.raises(mitk.UnsupportedFormatError, match=r"\.nrrd"):
        mitk.Image(tmp_path / "x.xyz")
    (tmp_path / "noext").write_bytes(b"NRRD0004\n")
    with pytest.raises(mitk.UnsupportedFormatError):
        mitk.Image(str(tmp_path / "noext"))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")
@pytest.mark.parametrize("name", ["pipe.nrrd", "pipe.mha", "pipe.nii"])
def test_a_pipe_is_refused_without_opening_it(tmp_path, name):
    # Opening a FIFO for reading blocks until a writer appears: it must not be opened at all.
    os.mkfifo(tmp_path / name)
    with pytest.raises(mitk.UnsupportedFormatError, match="regular file") as err:
        mitk.Image(tmp_path / name)
    assert name in str(err.value)


def test_paths_of_every_kind(tmp_path):
    img = mitk.Image(np.ones((2, 2), np.uint8))
    target = tmp_path / "ünïcode dir"
    target.mkdir()
    for path in (str(target / "a.nrrd"), target / "b.nrrd", os.fsencode(target / "c.nrrd")):
        img.save(path)
        assert mitk.Image(path).array.sum() == 4
        assert len(mitk.IOUtil.load(path)) == 1
    mitk.IOUtil.save(img, target / "d.MHA")
    assert mitk.Image.load(target / "d.MHA").shape == (2, 2)


def test_save_errors(tmp_path):
    img = mitk.Image(np.ones((2, 2), np.uint8))
    with pytest.raises(mitk.UnsupportedFormatError):
        img.save(tmp_path / "x.h5")
    with pytest.raises(FileNotFoundError):
        img.save(tmp_path / "missing" / "x.nrrd")
    with pytest.raises(TypeError):
        mitk.IOUtil.save(np.ones((2, 2)), tmp_path / "x.nrrd")
    for key in ("", "a:=b", "a=b", "a\nb"):
        bad = img.copy()
        bad.properties[key] = "v"
        with pytest.raises(mitk.UnsupportedFormatError):
            bad.save(tmp_path / "p.nrrd")
    assert sorted(os.listdir(tmp_path)) == []
    four = mitk.Image(np.zeros((2, 2, 2, 2)))
    four.set_spacing((2, 2, 2), time_step=1)
    with pytest.raises(mitk.UnsupportedFormatError, match="step 1"):
        four.save(tmp_path / "t.nrrd")


def test_failed_save_keeps_the_old_file(tmp_path):
    path = tmp_path / "x.nrrd"
    mitk.Image(np.ones((3, 3), np.uint8)).save(path)
    before = path.read_bytes()
    bad = mitk.Image(np.zeros((3, 3), np.float16))
    with pytest.raises(mitk.UnsupportedFormatError):
        bad.save(path)
    assert path.read_bytes() == before


def test_save_waits_for_the_read_lock(tmp_path):
    img = mitk.Image(np.ones((3, 3), np.uint8))
    writer = img.write()
    import threading

    result = []
    t = threading.Thread(target=lambda: result.append(
        pytest.raises(mitk.LockTimeout, img.save, tmp_path / "x.nrrd", timeout=0.1)))
    t.start()
    t.join(10)
    writer.release()
    assert result and not (tmp_path / "x.nrrd").exists()


# -- hostile files ----------------------------------------------------------------------------


def _hostile(tmp_path):
    good = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    files = {}
    for ext in (".nrrd", ".nii", ".nii.gz", ".mha"):
        mitk.Image(good).save(tmp_path / f"good{ext}")
        files[ext] = (tmp_path / f"good{ext}").read_bytes()
    return files


@pytest.mark.parametrize("ext", [".nrrd", ".nii", ".nii.gz", ".mha"])
def test_truncated_files(tmp_path, ext):
    data = _hostile(tmp_path)[ext]
    for cut in sorted({c for c in (0, 1, 4, 10, 100, 300, len(data) // 2, len(data) - 1)
                       if c < len(data)}):
        p = tmp_path / f"cut{cut}{ext}"
        p.write_bytes(data[:cut])
        with pytest.raises((mitk.CorruptFileError, mitk.UnsupportedFormatError)) as info:
            mitk.Image(p)
        assert str(p.name) in str(info.value)


@pytest.mark.parametrize("header", [
    "type: float\ndimension: 3\nsizes: 100000 100000 100000\nencoding: raw\nendian: little\n",
    "type: float\ndimension: 3\nsizes: 10 -10 10\nencoding: raw\nendian: little\n",
    "type: float\ndimension: 3\nsizes: 10 10\nencoding: raw\nendian: little\n",
    "type: float\ndimension: 3\nsizes: 99999999999999999999 2 2\nencoding: raw\nendian: little\n",
    "type: float\ndimension: 2\nsizes: 2 2\nencoding: zstd\nendian: little\n",
    "type: quaternion\ndimension: 2\nsizes: 2 2\nencoding: raw\n",
    "type: float\ntype: float\ndimension: 2\nsizes: 2 2\nencoding: raw\nendian: little\n",
    "type: float\ndimension: 2\nsizes: 2 2\nencoding: raw\n",
    "dimension: 2\nsizes: 2 2\nencoding: raw\n",
    "type: float\ndimension: 2\nsizes: 2 2\nencoding: raw\nendian: little\ndata file: ../x.raw\n",
    "type: float\ndimension: 2\nsizes: 2 2\nencoding: raw\nendian: little\ndata file: /etc/x\n",
    "type: float\ndimension: 3\nsizes: 2 2 2\nencoding: gzip\nendian: little\nspace: RAS\n"
    "space directions: (1,0,0) (0,nan,0) (0,0,1)\n",
    "type: float\ndimension: 3\nsizes: 2 2 2\nencoding: raw\nendian: little\nspace: LPS\n"
    "space directions: (1,0,0) (2,0,0) (0,0,1)\n",
    "this is not a header\n",
])
def test_hostile_nrrd_headers(tmp_path, header):
    p = tmp_path / "h.nrrd"
    p.write_bytes(b"NRRD0004\n" + header.encode() + b"\n" + bytes(64))
    with pytest.raises((mitk.CorruptFileError, mitk.UnsupportedFormatError)) as info:
        mitk.Image(p)
    assert "h.nrrd" in str(info.value)


def test_gzip_bomb_is_refused_before_allocating(tmp_path):
    header = "type: double\ndimension: 3\nsizes: 4096 4096 4096\nencoding: gzip\nendian: little\n"
    p = tmp_path / "bomb.nrrd"
    p.write_bytes(b"NRRD0004\n" + header.encode() + b"\n" + gzip.compress(bytes(1000)))
    with pytest.raises(mitk.CorruptFileError, match="1032"):
        mitk.Image(p)


def test_gzip_stream_longer_than_declared_is_read_to_the_payload(tmp_path):
    # SPEC 6.2: what follows the declared payload is ignored (teem reads such files).
    header = "type: uchar\ndimension: 2\nsizes: 4 4\nencoding: gzip\n"
    p = tmp_path / "long.nrrd"
    p.write_bytes(b"NRRD0004\n" + header.encode() + b"\n"
                  + gzip.compress(bytes(range(16)) + b"x"))
    np.testing.assert_array_equal(np.asarray(mitk.Image(p)).ravel(), np.arange(16))


@pytest.mark.parametrize("ext", [".nrrd", ".nhdr", ".nii.gz", ".mha", ".mhd"])
@pytest.mark.parametrize("extra", ["newline after the member", "bytes inside the stream"])
def test_bytes_after_the_compressed_payload_are_ignored_in_every_format(tmp_path, ext, extra):
    # Real files carry them: a newline after the gzip member of NRRD files pynrrd wrote in
    # 2017, extra bytes inside the gzip stream of .nii.gz files in a released package.
    # teem, nifti_clib, SimpleITK, nibabel and pynrrd read them, and so do we.
    arr = sample_array("int16", (3, 4, 5), seed=4)
    path = tmp_path / f"x{ext}"
    mitk.Image(arr).save(path, compression="gzip" if ext != ".nii.gz" else None)
    data = {".nhdr": tmp_path / "x.raw.gz", ".mhd": tmp_path / "x.zraw"}.get(ext, path)
    blob = data.read_bytes()
    if ext == ".nii.gz":
        blob = gzip.compress(gzip.decompress(blob) + (b"\n" if "inside" in extra else b""))
        blob += b"" if "inside" in extra else b"\n"
    elif ext in (".mha", ".mhd"):
        if "inside" in extra:  # a zlib stream of the payload plus 3 bytes, sized in the header
            head, stream = (blob.split(b"ElementDataFile = LOCAL\n", 1) if ext == ".mha"
                            else (None, blob))
            longer = zlib.compress(zlib.decompress(stream) + b"abc")
            if ext == ".mha":
                head = re.sub(rb"CompressedDataSize = *\d+",
                              f"CompressedDataSize = {len(longer)}".encode(), head)
                blob = head + b"ElementDataFile = LOCAL\n" + longer
            else:
                blob = longer
                header = (tmp_path / "x.mhd").read_text().replace(
                    f"CompressedDataSize = {len(stream)}", f"CompressedDataSize = {len(longer)}")
                (tmp_path / "x.mhd").write_text(header)
        else:
            blob += b"\n"
    else:
        if "inside" in extra:
            head, _, stream = blob.partition(b"\n\n") if ext == ".nrrd" else (None, b"", blob)
            longer = gzip.compress(gzip.decompress(stream) + b"\0\0")
            blob = head + b"\n\n" + longer if ext == ".nrrd" else longer
        else:
            blob += b"\n"
    data.write_bytes(blob)
    np.testing.assert_array_equal(np.asarray(mitk.Image(path)), arr)


@pytest.mark.parametrize("fields", [
    {"dim": [9, 1, 1, 1, 1, 1, 1, 1]}, {"dim": [0, 1, 1, 1, 1, 1, 1, 1]},
    {"dim": [3, -4, 3, 2, 1, 1, 1, 1]}, {"dim": [3, 32767, 32767, 32767, 1, 1, 1, 1]},
    {"datatype": 1536}, {"datatype": 99}, {"magic": b"n+9"}, {"sizeof_hdr": 349},
    {"vox_offset": -5.0},
])
def test_hostile_nifti_headers(tmp_path, fields):
    p = tmp_path / "h.nii"
    p.write_bytes(_nifti1_header(**fields) + bytes(48))
    with pytest.raises((mitk.CorruptFileError, mitk.UnsupportedFormatError)) as info:
        mitk.Image(p)
    assert "h.nii" in str(info.value)


@pytest.mark.parametrize("header", [
    "NDims = 3\nDimSize = 100000 100000 100000\nElementType = MET_FLOAT\n",
    "NDims = 3\nDimSize = 4 -3 2\nElementType = MET_FLOAT\n",
    "NDims = 3\nDimSize = 4 3\nElementType = MET_FLOAT\n",
    "NDims = 5\nDimSize = 2 2 2 2 2\nElementType = MET_FLOAT\n",
    "NDims = 3\nDimSize = 2 2 2\nElementType = MET_STRING\n",
    "NDims = 3\nNDims = 3\nDimSize = 2 2 2\nElementType = MET_FLOAT\n",
    "NDims = 3\nDimSize = 2 2 2\nElementType = MET_FLOAT\nElementSpacing = 1 0 1\n",
    "NDims = 3\nDimSize = 2 2 2\nElementType = MET_FLOAT\nCompressedData = True\n",
    "garbage without equals\n",
])
def test_hostile_metaimage_headers(tmp_path, header):
    p = tmp_path / "h.mha"
    p.write_bytes(("ObjectType = Image\n" + header + "ElementDataFile = LOCAL\n").encode()
                  + bytes(16))
    with pytest.raises((mitk.CorruptFileError, mitk.UnsupportedFormatError)) as info:
        mitk.Image(p)
    assert "h.mha" in str(info.value)


def test_missing_detached_data_file(tmp_path):
    (tmp_path / "x.nhdr").write_text("NRRD0004\ntype: uchar\ndimension: 2\nsizes: 2 2\n"
                                     "encoding: raw\ndata file: gone.raw\n")
    with pytest.raises(FileNotFoundError, match="x.nhdr"):
        mitk.Image(tmp_path / "x.nhdr")
    (tmp_path / "y.mhd").write_text("NDims = 2\nDimSize = 2 2\nElementType = MET_UCHAR\n"
                                    "ElementDataFile = gone.raw\n")
    with pytest.raises(FileNotFoundError, match="y.mhd"):
        mitk.Image(tmp_path / "y.mhd")
    mitk.Image(np.zeros((2, 2), np.uint8)).save(tmp_path / "p.hdr")
    os.unlink(tmp_path / "p.img")
    with pytest.raises(FileNotFoundError):
        mitk.Image(tmp_path / "p.hdr")


def test_external_data_needs_permission(tmp_path):
    inner = tmp_path / "inner"
    inner.mkdir()
    (tmp_path / "data.raw").write_bytes(bytes(4))
    (inner / "x.nhdr").write_text("NRRD0004\ntype: uchar\ndimension: 2\nsizes: 2 2\n"
                                  "encoding: raw\ndata file: ../data.raw\n")
    with pytest.raises(mitk.CorruptFileError, match="allow_external_data"):
        mitk.Image(inner / "x.nhdr")
    assert mitk.Image.load(inner / "x.nhdr", allow_external_data=True).shape == (2, 2)


@pytest.mark.parametrize("tilt, origin_z, in_plane", [
    (1e-11, 0.0, True),      # rounding noise of a rotated direction
    (0.0, 1e-10, True),      # relative to an origin 1000 mm out
    (1e-6, 0.0, False),
    (0.0, 1e-3, False),
])
def test_one_rule_decides_whether_a_2d_image_lies_in_the_xy_plane(tmp_path, tilt, origin_z,
                                                                   in_plane):
    # NRRD (absolute 1e-12) and MetaImage (relative 1e-9) once used different rules: NRRD wrote
    # a 3D space for geometry MetaImage stored as 2D.  One rule now decides for both
    # (mitk._geometry_rules.lies_in_xy_plane).
    direction = np.eye(3)
    direction[2, 0] = tilt
    img = mitk.Image(np.zeros((3, 4), np.uint8), origin=(1000.0, 20.0, origin_z),
                     direction=direction)
    img.save(tmp_path / "a.nrrd")
    header = (tmp_path / "a.nrrd").read_bytes().split(b"\n\n")[0].decode()
    assert ("space dimension: 2" in header) == in_plane
    if in_plane:
        img.save(tmp_path / "a.mha")
        assert mitk.Image(tmp_path / "a.mha").shape == (3, 4)
    else:
        with pytest.raises(mitk.UnsupportedFormatError, match="plane"):
            img.save(tmp_path / "a.mha")


@pytest.mark.parametrize("ext", [".nrrd", ".nhdr", ".mha", ".mhd"])
def test_what_a_writer_writes_its_reader_reads(tmp_path, ext):
    # 110 properties of 10 KB saved to .mha without error, and the reader's 1 MiB header limit
    # refused the file; every text header now has the same limits on both sides.
    img = mitk.Image(np.arange(12, dtype=np.int16).reshape(3, 4))
    for k in range(110):
        img.properties[f"note{k}"] = "x" * 10_000
    img.save(tmp_path / f"a{ext}")
    back = mitk.Image(tmp_path / f"a{ext}")
    assert back.properties["note109"] == "x" * 10_000
    # A property too long for any header line is refused before a file is written.
    img.properties["huge"] = "y" * (5 << 20)
    with pytest.raises(mitk.UnsupportedFormatError, match="header"):
        img.save(tmp_path / f"b{ext}")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("b")) == []
