"""NIfTI-1/NIfTI-2/Analyze (mitk.io.nifti) against SPEC.md sections 5, 6 and 9.13.

The module is exercised directly with NumPy arrays (``numpy_allocator``), so these tests need no
compiled core.  Hand-made headers cover the variants and hostile files; nibabel's own test data
and files written by nibabel and SimpleITK are the independent references.
"""

from __future__ import annotations

import glob
import gzip
import importlib.util
import os
import shutil
import struct
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mitk.errors import ArgumentError, CorruptFileError, UnsupportedFormatError
from mitk.io import _streams, nifti
from mitk.io.nifti import _header as nifti_header
from mitk.io._info import ImageInfo
from mitk_testing import numpy_allocator, temporaries
from mitk_testing import sample_array as sample

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])
STORABLE = ("bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
            "float32", "float64", "complex64", "complex128")
CODES = {"uint8": 2, "int16": 4, "int32": 8, "float32": 16, "complex64": 32, "float64": 64,
         "int8": 256, "uint16": 512, "uint32": 768, "int64": 1024, "uint64": 1280,
         "complex128": 1792}
SHAPES = {(2, 1): (5, 7), (3, 1): (3, 5, 7), (4, 1): (4, 3, 5, 7),
          (2, 3): (5, 7, 3), (3, 3): (3, 5, 7, 3), (4, 3): (2, 3, 5, 7, 3)}
EXTS = (".nii", ".nii.gz", ".hdr")


# -- helpers ----------------------------------------------------------------------------------


class Recorder:
    """An allocator that remembers its calls (hostile files must fail before any)."""

    def __init__(self):
        self.calls = []

    def __call__(self, dtype, shape):
        self.calls.append((np.dtype(dtype), tuple(shape)))
        return numpy_allocator(dtype, shape)


def load(path, **options):
    """(pixels, info) read by the module; checks the allocator contract on the way."""
    rec = Recorder()
    arrays = []

    def allocate(dtype, shape):
        arr = rec(dtype, shape)
        arrays.append(arr)
        return arr

    info = nifti.read(str(path), allocate, **options)
    assert len(rec.calls) == 1, "allocate must be called exactly once"
    assert rec.calls[0] == (np.dtype(info.dtype), info.full_shape)
    assert info.dtype.isnative
    return arrays[0], info


def save(path, arr, channels=1, **kwargs):
    """Write ``arr`` (NumPy order, components last when channels > 1) with geometry kwargs."""
    options = {k: kwargs.pop(k) for k in ("compression", "compression_level", "nifti_version")
               if k in kwargs}
    arr = np.ascontiguousarray(arr)
    arr.setflags(write=False)
    shape = arr.shape[:-1] if channels > 1 else arr.shape
    info = ImageInfo(dtype=arr.dtype, shape=tuple(shape), channels=channels, **kwargs)
    nifti.write(str(path), arr, info, **options)
    return info


def rotation(angle, axis=2):
    c, s = np.cos(angle), np.sin(angle)
    m = np.eye(3)
    i, j = [k for k in range(3) if k != axis]
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


def header(version=1, order="<", **fields):
    """A hand-made NIfTI-1 (348) or NIfTI-2 (540) header plus the 4-byte extension flag."""
    h = np.zeros((), dtype=(nifti_header._N1 if version == 1 else nifti_header._N2).newbyteorder(order))
    h["sizeof_hdr"] = h.dtype.itemsize
    h["magic"] = b"n+1" if version == 1 else b"n+2\0\r\n\x1a\n"
    h["dim"] = [3, 4, 3, 2, 1, 1, 1, 1]
    h["datatype"] = 4
    h["bitpix"] = 16
    h["pixdim"] = [1, 1, 1, 1, 0, 0, 0, 0]
    h["vox_offset"] = h.dtype.itemsize + 4
    for key, value in fields.items():
        h[key] = value
    return h.tobytes() + b"\0\0\0\0"


def nifti_file(path, data, version=1, order="<", gz=False, **fields):
    """Write ``header(...) + data`` (data: an array written in the header's byte order)."""
    blob = header(version, order, **fields) + np.asarray(data).astype(
        np.asarray(data).dtype.newbyteorder(order)).tobytes()
    path.write_bytes(gzip.compress(blob) if gz else blob)
    return path


def read_header(path):
    with (gzip.open(path) if str(path).endswith(".gz") else open(path, "rb")) as f:
        raw = f.read(544)
    hdr, version, order = nifti_header._parse_header(raw, str(path))
    return hdr, version, raw


def no_temporaries(directory):
    return not temporaries(directory)


def assert_geometry(info, spacing, origin, direction, atol=1e-6):
    np.testing.assert_allclose(info.spacing, spacing, rtol=1e-6)
    np.testing.assert_allclose(info.origin, origin, atol=atol)
    np.testing.assert_allclose(info.direction, direction, atol=atol)


# -- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", EXTS)
@pytest.mark.parametrize("name", STORABLE)
@pytest.mark.parametrize("ndim,channels", sorted(SHAPES))
def test_round_trip_every_type_and_shape(tmp_path, ext, name, ndim, channels):
    arr = sample(name, SHAPES[ndim, channels], seed=ndim * 10 + channels)
    direction = rotation(0.4) if ndim > 2 else np.eye(3)
    path = tmp_path / f"img{ext}"
    save(path, arr, channels, spacing=(0.5, 0.75, 1.25), origin=(1.0, -2.0, 3.5),
         direction=direction, time_origin=10.0, time_spacing=2.5)
    back, info = load(path)
    expected = arr.astype(np.uint8) if name == "bool" else arr
    assert back.dtype == expected.dtype and back.shape == expected.shape
    assert info.ndim == ndim and info.channels == channels
    assert back.tobytes() == expected.tobytes()
    assert_geometry(info, (0.5, 0.75, 1.25), (1.0, -2.0, 3.5), direction)
    if ndim == 4:
        assert info.time_origin == pytest.approx(10.0) and info.time_spacing == pytest.approx(2.5)
    assert no_temporaries(tmp_path)
    hdr, version, _ = read_header(tmp_path / f"img{'.hdr' if ext == '.hdr' else ext}")
    code = 128 if (name in ("uint8", "bool") and channels == 3) else CODES.get(name, 2)
    assert version == 1 and int(hdr["datatype"]) == code


@pytest.mark.parametrize("channels,code", [(3, 128), (4, 2304)])
def test_rgb_and_rgba_are_written_as_rgb_types(tmp_path, channels, code):
    arr = sample("uint8", (3, 4, 5, channels), seed=channels)
    save(tmp_path / "c.nii", arr, channels)
    hdr, _, _ = read_header(tmp_path / "c.nii")
    assert int(hdr["datatype"]) == code and int(hdr["bitpix"]) == 8 * channels
    assert list(hdr["dim"][:4]) == [3, 5, 4, 3]
    # RGB is interleaved per voxel in the file, exactly as in memory.
    assert (tmp_path / "c.nii").read_bytes()[352:] == arr.tobytes()
    back, info = load(tmp_path / "c.nii")
    assert info.channels == channels and back.tobytes() == arr.tobytes()


@pytest.mark.parametrize("ext", EXTS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64"])
def test_nan_and_inf_survive_bit_exactly(tmp_path, ext, dtype):
    arr = np.array([[np.nan, np.inf, -np.inf], [0.0, -0.0, 1e-45]]).astype(dtype)
    if dtype == "float32":  # a NaN with a payload and the sign bit set
        arr.view(np.uint32)[0, 0] = 0xFFC01234
    save(tmp_path / f"x{ext}", arr)
    back, _ = load(tmp_path / f"x{ext}")
    assert back.tobytes() == arr.tobytes()


def test_vector_images_store_whole_component_volumes(tmp_path):
    arr = sample("int16", (3, 4, 5, 2), seed=4)
    save(tmp_path / "v.nii", arr, 2)
    hdr, _, raw = read_header(tmp_path / "v.nii")
    assert list(hdr["dim"]) == [5, 5, 4, 3, 1, 2, 1, 1]
    assert int(hdr["intent_code"]) == 1007  # NIFTI_INTENT_VECTOR
    data = (tmp_path / "v.nii").read_bytes()[352:]
    assert data == arr[..., 0].tobytes() + arr[..., 1].tobytes()


def test_writer_header_layout(tmp_path):
    arr = sample("float32", (2, 3, 4, 5))
    save(tmp_path / "t.nii", arr, spacing=(1.0, 2.0, 3.0), time_spacing=40.0, time_origin=5.0)
    raw = (tmp_path / "t.nii").read_bytes()
    assert len(raw) == 352 + arr.nbytes
    hdr, version, _ = read_header(tmp_path / "t.nii")
    assert version == 1 and bytes(hdr["magic"]) == b"n+1"
    assert float(hdr["vox_offset"]) == 352 and raw[348:352] == b"\0\0\0\0"
    assert list(hdr["dim"]) == [4, 5, 4, 3, 2, 1, 1, 1]
    assert int(hdr["xyzt_units"]) == 2 | 16  # mm and ms
    assert float(hdr["pixdim"][4]) == 40.0 and float(hdr["toffset"]) == 5.0
    assert int(hdr["sform_code"]) == 1 and int(hdr["qform_code"]) == 1
    assert (float(hdr["scl_slope"]), float(hdr["scl_inter"])) == (1.0, 0.0)
    save(tmp_path / "p.hdr", arr[0])
    hdr, version, raw = read_header(tmp_path / "p.hdr")
    assert bytes(hdr["magic"]) == b"ni1" and float(hdr["vox_offset"]) == 0
    assert list(hdr["dim"][:4]) == [3, 5, 4, 3]
    assert (tmp_path / "p.img").read_bytes() == arr[0].tobytes()
    save(tmp_path / "flat.nii", arr[0, 0])
    assert list(read_header(tmp_path / "flat.nii")[0]["dim"][:3]) == [2, 5, 4]


def test_pair_is_found_from_either_name(tmp_path):
    arr = sample("int16", (3, 4, 5))
    save(tmp_path / "p.img", arr)  # saving by the data name writes the pair too
    assert sorted(os.listdir(tmp_path)) == ["p.hdr", "p.img"]
    for name in ("p.hdr", "p.img"):
        back, _ = load(tmp_path / name)
        np.testing.assert_array_equal(back, arr)
    save(tmp_path / "UP.HDR", arr)
    assert sorted(p for p in os.listdir(tmp_path) if p.startswith("UP")) == ["UP.HDR", "UP.IMG"]
    np.testing.assert_array_equal(load(tmp_path / "UP.IMG")[0], arr)


# -- geometry ---------------------------------------------------------------------------------


ROTATIONS = [np.eye(3), rotation(0.4), rotation(np.pi), rotation(np.pi, 0), rotation(np.pi, 1),
             rotation(2.5, 0) @ rotation(-1.2, 1), rotation(3.1, 1) @ rotation(0.7),
             np.diag([1.0, 1.0, -1.0]), rotation(0.3) @ np.diag([-1.0, 1.0, 1.0]),
             np.diag([-1.0, -1.0, -1.0])]


@pytest.mark.parametrize("index", range(len(ROTATIONS)))
def test_qform_matches_the_exact_direction(tmp_path, index):
    direction = ROTATIONS[index]
    save(tmp_path / "q.nii", np.zeros((2, 3, 4), np.uint8), spacing=(0.7, 1.1, 2.3),
         origin=(-10.5, 20.25, 7.0), direction=direction)
    _, info = load(tmp_path / "q.nii")
    assert_geometry(info, (0.7, 1.1, 2.3), (-10.5, 20.25, 7.0), direction)
    # The qform alone (sform code cleared) must give the same geometry.
    raw = bytearray((tmp_path / "q.nii").read_bytes())
    hdr = np.frombuffer(bytes(raw[:348]), dtype=nifti_header._N1).copy()
    assert int(hdr["qform_code"][0]) == 1
    assert float(hdr["pixdim"][0, 0]) == (-1.0 if np.linalg.det(direction) < 0 else 1.0)
    hdr["sform_code"] = 0
    raw[:348] = hdr.tobytes()
    (tmp_path / "qonly.nii").write_bytes(bytes(raw))
    _, qinfo = load(tmp_path / "qonly.nii")
    assert_geometry(qinfo, (0.7, 1.1, 2.3), (-10.5, 20.25, 7.0), direction, atol=2e-6)
    assert qinfo.properties["nifti.sform_code"] == 0


def test_sheared_sform_is_kept_exactly(tmp_path):
    shear = np.array([[1.0, 0.25, 0.0], [0.0, 1.0, 0.0], [0.0, 0.1, 1.0]])
    unit = shear / np.linalg.norm(shear, axis=0)
    save(tmp_path / "s.nii", np.zeros((2, 3, 4), np.float32), spacing=(1.0, 2.0, 3.0),
         origin=(4.0, 5.0, 6.0), direction=unit)
    hdr, _, _ = read_header(tmp_path / "s.nii")
    assert int(hdr["qform_code"]) == 0 and int(hdr["sform_code"]) == 1
    _, info = load(tmp_path / "s.nii")
    assert_geometry(info, (1.0, 2.0, 3.0), (4.0, 5.0, 6.0), unit)
    assert info.properties["nifti.qform_code"] == 0
    # Read side: a sheared sform in a foreign file is not orthonormalised either.
    affine = np.array([[2.0, 0.5, 0.0, 1.0], [0.0, 3.0, 0.2, 2.0], [0.1, 0.0, 4.0, 3.0]])
    nifti_file(tmp_path / "f.nii", np.zeros(24, np.int16), sform_code=1, srow_x=affine[0],
               srow_y=affine[1], srow_z=affine[2])
    _, info = load(tmp_path / "f.nii")
    lps = RAS_TO_LPS @ affine[:, :3]
    np.testing.assert_allclose(info.direction * info.spacing, lps, atol=1e-7)
    np.testing.assert_allclose(info.origin, RAS_TO_LPS @ affine[:, 3], atol=1e-7)


def test_nifti2_keeps_double_precision_geometry(tmp_path):
    origin = (123.456789012345, -98.7654321098, 0.000123456789)
    spacing = (0.123456789012, 1.0000000001, 2.5)
    save(tmp_path / "d.nii", np.zeros((2, 3, 4), np.int8), spacing=spacing, origin=origin,
         direction=rotation(0.123456789), nifti_version=2)
    _, info = load(tmp_path / "d.nii")
    assert info.properties["nifti.version"] == 2
    assert_geometry(info, spacing, origin, rotation(0.123456789), atol=1e-12)
    np.testing.assert_allclose(info.spacing, spacing, rtol=1e-12)


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(quat=st.tuples(*[st.floats(-1, 1)] * 4).filter(lambda q: sum(v * v for v in q) > 0.01),
       flip=st.booleans(), spacing=st.tuples(*[st.floats(0.01, 100)] * 3),
       origin=st.tuples(*[st.floats(-1000, 1000)] * 3), version=st.sampled_from([1, 2]))
def test_geometry_round_trip_property(tmp_path, quat, flip, spacing, origin, version):
    w, x, y, z = np.array(quat) / np.linalg.norm(quat)
    direction = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    if flip:
        direction[:, 1] *= -1
    path = tmp_path / f"g{version}.nii"
    save(path, np.zeros((2, 2, 2), np.uint8), spacing=spacing, origin=origin,
         direction=direction, nifti_version=version)
    _, info = load(path)
    tol = 1e-6 if version == 1 else 1e-12  # NIfTI-1 holds float32
    np.testing.assert_allclose(info.spacing, spacing, rtol=tol)
    np.testing.assert_allclose(info.direction, direction, atol=tol)
    np.testing.assert_allclose(info.origin, origin, rtol=tol, atol=tol)
    # The qform written beside the sform describes the same grid, up to what a quaternion can
    # hold: near 180 degree rotations its first component is recomputed as sqrt(1 - |bcd|^2),
    # which nifti1_io sets to 0 below 1e-7 and float32 keeps to about 3e-4 anyway.  The sform,
    # which every reader here prefers, is exact.
    hdr, _, _ = read_header(path)
    assert int(hdr["qform_code"]) == 1
    import nibabel  # an independent reading of the quaternion

    qform = RAS_TO_LPS @ nibabel.load(str(path)).header.get_qform()[:3, :3]
    np.testing.assert_allclose(qform, direction * spacing, atol=1e-3 * max(spacing))


def test_precedence_sform_then_qform_then_analyze(tmp_path):
    data = np.zeros(24, np.int16)
    sform = dict(sform_code=2, srow_x=[2, 0, 0, 10], srow_y=[0, 3, 0, 20], srow_z=[0, 0, 4, 30])
    qform = dict(qform_code=1, quatern_d=np.sqrt(0.5), qoffset_x=5.0, qoffset_y=6.0,
                 qoffset_z=7.0, pixdim=[1, 2, 3, 4, 0, 0, 0, 0])
    _, info = load(nifti_file(tmp_path / "both.nii", data, **sform, **qform))
    assert_geometry(info, (2, 3, 4), (-10, -20, 30), np.diag([-1.0, -1.0, 1.0]))
    _, info = load(nifti_file(tmp_path / "q.nii", data, **qform))
    # A 90 degree RAS rotation about z, seen in LPS.
    assert_geometry(info, (2, 3, 4), (-5, -6, 7), [[0, 1, 0], [-1, 0, 0], [0, 0, 1]])
    for bad in ([np.nan, 0, 0, 0], [0, 0, 0, 0], [np.inf, 1, 0, 0]):
        _, info = load(nifti_file(tmp_path / "fallback.nii", data, **qform,
                                  **{**sform, "srow_x": bad}))
        assert_geometry(info, (2, 3, 4), (-5, -6, 7), [[0, 1, 0], [-1, 0, 0], [0, 0, 1]])
        nifti_file(tmp_path / "nothing.nii", data, **{**sform, "srow_x": bad})
        with pytest.raises(CorruptFileError, match="sform") as err:
            load(tmp_path / "nothing.nii")
        assert "nothing.nii" in str(err.value)
    # Neither: nibabel's Analyze convention, x flipped and centred.
    _, info = load(nifti_file(tmp_path / "a.nii", data, pixdim=[1, 2, 2, 2, 0, 0, 0, 0]))
    assert_geometry(info, (2, 2, 2), (-3.0, 2.0, -1.0), np.diag([1.0, -1.0, 1.0]))


def test_qform_details_follow_nifti1_io(tmp_path):
    data = np.zeros(24, np.int16)
    # qfac = -1 flips the third axis; zero or NaN pixdims count as 1, negative ones as their
    # absolute value (as nibabel and ITK read them; nifti1_io would make them 1).
    _, info = load(nifti_file(tmp_path / "q.nii", data, qform_code=1,
                              pixdim=[-1, 0, -2, np.nan, 0, 0, 0, 0]))
    assert_geometry(info, (1, 2, 1), (0, 0, 0), np.diag([-1.0, -1.0, -1.0]))
    # (b, c, d) of length 1 is a 180 degree rotation (a = 0) about that axis.
    _, info = load(nifti_file(tmp_path / "r.nii", data, qform_code=1, quatern_b=1.0))
    assert_geometry(info, (1, 1, 1), (0, 0, 0), np.diag([-1.0, 1.0, -1.0]))
    nifti_file(tmp_path / "nan.nii", data, qform_code=1, quatern_c=np.nan)
    with pytest.raises(CorruptFileError, match="qform"):
        load(tmp_path / "nan.nii")
    nifti_file(tmp_path / "off.nii", data, qform_code=1, qoffset_y=np.inf)
    with pytest.raises(CorruptFileError, match="qoffset"):
        load(tmp_path / "off.nii")


def test_units_convert_to_mm_and_ms(tmp_path):
    def info_for(units, pixdim, toffset=0.0):
        nifti_file(tmp_path / "u.nii", np.zeros(48, np.int16), dim=[4, 2, 2, 2, 3, 1, 1, 1],
                   xyzt_units=units, pixdim=pixdim, toffset=toffset)
        return load(tmp_path / "u.nii")[1]

    info = info_for(1 | 8, [1, 0.001, 0.002, 0.003, 0.5, 0, 0, 0], toffset=2.0)  # m and s
    np.testing.assert_allclose(info.spacing, (1.0, 2.0, 3.0), rtol=1e-6)
    assert info.time_spacing == pytest.approx(500.0) and info.time_origin == pytest.approx(2000)
    assert "nifti.xyzt_units" not in info.properties
    info = info_for(3 | 24, [1, 1000, 2000, 3000, 4000, 0, 0, 0])  # micron and microseconds
    np.testing.assert_allclose(info.spacing, (1.0, 2.0, 3.0), rtol=1e-6)
    assert info.time_spacing == pytest.approx(4.0)
    info = info_for(2 | 16, [1, 1, 2, 3, 7, 0, 0, 0])
    assert info.time_spacing == 7.0 and "nifti.xyzt_units" not in info.properties
    # Hz is not a time unit mitk converts: values as they are, the code kept for writing back.
    info = info_for(2 | 32, [1, 1, 1, 1, 7, 0, 0, 0])
    assert info.time_spacing == 7.0 and info.properties["nifti.xyzt_units"] == 34
    arr = np.zeros((3, 2, 2, 2), np.int16)
    save(tmp_path / "hz.nii", arr, time_spacing=7.0, properties=info.properties)
    assert int(read_header(tmp_path / "hz.nii")[0]["xyzt_units"]) == 34
    # A zero, negative or non-finite duration.
    assert info_for(0, [1, 1, 1, 1, 0, 0, 0, 0]).time_spacing == 1.0
    assert info_for(0, [1, 1, 1, 1, np.nan, 0, 0, 0]).time_spacing == 1.0
    assert info_for(0, [1, 1, 1, 1, -3, 0, 0, 0]).time_spacing == 3.0


def test_geometry_beyond_float32_needs_nifti2(tmp_path):
    arr = np.zeros((2, 2, 2), np.uint8)
    with pytest.raises(UnsupportedFormatError, match="nifti_version=2"):
        save(tmp_path / "g.nii", arr, origin=(1e39, 0.0, 0.0))
    # Too small for float32 too: stored as 0 or a subnormal, a spacing would read back as 1.
    for spacing in (1e-46, 3e-39):
        with pytest.raises(UnsupportedFormatError, match="nifti_version=2"):
            save(tmp_path / "g.nii", arr, spacing=(spacing, 1.0, 1.0))
    assert os.listdir(tmp_path) == []
    save(tmp_path / "t.nii", arr, spacing=(1e-46, 1.0, 1.0), nifti_version=2)
    assert load(tmp_path / "t.nii")[1].spacing[0] == 1e-46
    os.remove(tmp_path / "t.nii")
    save(tmp_path / "g.nii", arr, origin=(1e39, 0.0, 0.0), nifti_version=2)
    assert load(tmp_path / "g.nii")[1].origin[0] == 1e39


# -- header variants --------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("name", sorted(CODES))
def test_every_datatype_in_both_byte_orders(tmp_path, version, order, name):
    data = sample(name, (2, 3, 4), seed=len(name))
    nifti_file(tmp_path / "b.nii", data, version, order, datatype=CODES[name],
               bitpix=8 * data.dtype.itemsize)
    back, info = load(tmp_path / "b.nii")
    assert back.dtype == np.dtype(name) and back.dtype.isnative
    assert back.tobytes() == data.reshape(back.shape).tobytes()
    assert info.properties["nifti.version"] == version


@pytest.mark.parametrize("order", ["<", ">"])
def test_rgb_files_become_uint8_channels(tmp_path, order):
    rgb = sample("uint8", (2, 3, 4, 3))
    nifti_file(tmp_path / "rgb.nii", rgb, order=order, datatype=128, bitpix=24)
    back, info = load(tmp_path / "rgb.nii")
    assert info.channels == 3 and back.shape == (2, 3, 4, 3)
    np.testing.assert_array_equal(back, rgb)
    rgba = sample("uint8", (2, 3, 4, 4))
    nifti_file(tmp_path / "rgba.nii", rgba, order=order, datatype=2304, bitpix=32,
               scl_slope=2.0)  # RGB is never scaled
    back, info = load(tmp_path / "rgba.nii")
    assert info.channels == 4 and back.dtype == np.uint8
    np.testing.assert_array_equal(back, rgba)
    nifti_file(tmp_path / "bad.nii", np.zeros(2 * 24 * 3, np.uint8),
               dim=[5, 4, 3, 2, 1, 2, 1, 1], datatype=128)
    with pytest.raises(UnsupportedFormatError, match="dim"):
        load(tmp_path / "bad.nii")


@pytest.mark.parametrize("code,what", [(1536, "float128"), (2048, "complex256"),
                                       (1, "binary"), (0, "0"), (99, "99")])
def test_types_mitk_cannot_hold(tmp_path, code, what):
    nifti_file(tmp_path / "t.nii", np.zeros(64, np.uint8), datatype=code)
    with pytest.raises(UnsupportedFormatError, match=what) as err:
        load(tmp_path / "t.nii")
    assert "t.nii" in str(err.value) and "datatype" in str(err.value)


@pytest.mark.parametrize("dim,shape,channels", [
    ([1, 6, 0, -3, 9, 9, 9, 9], (1, 6), 1),        # 1-D loads as (1, N); later entries ignored
    ([2, 4, 3, 0, 0, 0, 0, 0], (3, 4), 1),
    ([3, 4, 3, 2, -1, 7, 7, 7], (2, 3, 4), 1),
    ([4, 4, 3, 2, 1, 1, 1, 1], (1, 2, 3, 4), 1),   # the declared 4D is kept with one step
    ([4, 2, 2, 2, 3, 1, 1, 1], (3, 2, 2, 2), 1),
    ([5, 4, 3, 2, 1, 3, 1, 1], (2, 3, 4), 3),      # one time step with components: 3D
    ([5, 4, 3, 1, 1, 2, 1, 1], (3, 4), 2),         # ... and one slice: 2D (ITK's 2D vectors)
    ([5, 4, 3, 2, 2, 3, 1, 1], (2, 2, 3, 4), 3),   # time and components
    ([6, 2, 2, 2, 1, 2, 3, 0], (2, 2, 2), 6),      # dim[5] * dim[6] components
    ([7, 2, 2, 1, 1, 2, 2, 2], (2, 2), 8),
])
def test_dimensions(tmp_path, dim, shape, channels):
    comps_shape = shape + ((channels,) if channels > 1 else ())
    volumes = sample("int16", (channels,) + shape, seed=len(shape))
    nifti_file(tmp_path / "d.nii", volumes, dim=dim)
    back, info = load(tmp_path / "d.nii")
    assert back.shape == comps_shape and info.shape == shape and info.channels == channels
    # Component k is volume k of the file (dim[5] fastest), moved to the trailing axis.
    expected = np.moveaxis(volumes, 0, -1) if channels > 1 else volumes[0]
    np.testing.assert_array_equal(back, expected)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("scaled", [False, True])
def test_component_volumes_are_interleaved(tmp_path, gz, order, scaled):
    volumes = sample("uint16", (4, 2, 3, 5, 6), seed=3)  # 4 components of a 4D image
    fields = {"scl_slope": 0.5, "scl_inter": -3.0} if scaled else {}
    nifti_file(tmp_path / "c.nii", volumes, order=order, gz=gz, datatype=512,
               dim=[5, 6, 5, 3, 2, 4, 1, 1], **fields)
    if gz:
        os.rename(tmp_path / "c.nii", tmp_path / "c.nii.gz")
    back, info = load(tmp_path / ("c.nii.gz" if gz else "c.nii"))
    expected = np.moveaxis(volumes, 0, -1)
    if scaled:
        expected = (expected * 0.5 - 3.0).astype(np.float32)
    assert back.dtype == expected.dtype and info.channels == 4 and info.ndim == 4
    assert back.tobytes() == expected.tobytes()


def test_nifti2_magic_and_signature(tmp_path):
    data = np.arange(24, dtype=np.int16)
    for tail in (b"\r\n\x1a\n", b"\0\0\0\0"):
        nifti_file(tmp_path / "ok.nii", data, 2, magic=b"n+2\0" + tail)
        np.testing.assert_array_equal(load(tmp_path / "ok.nii")[0].ravel(), data)
    nifti_file(tmp_path / "text.nii", data, 2, magic=b"n+2\0\n\x1a\n\0")
    with pytest.raises(CorruptFileError, match="text-mode"):
        load(tmp_path / "text.nii")
    nifti_file(tmp_path / "n1.nii", data, 2, magic=b"n+1\0\r\n\x1a\n")
    with pytest.raises(CorruptFileError, match="magic"):
        load(tmp_path / "n1.nii")
    save(tmp_path / "w.nii", np.zeros((2, 2), np.uint8), nifti_version=2)
    raw = (tmp_path / "w.nii").read_bytes()
    assert raw[:4] == struct.pack("=i", 540) and raw[4:12] == b"n+2\0\r\n\x1a\n"
    assert struct.unpack("=q", raw[168:176])[0] == 544 and raw[540:544] == b"\0\0\0\0"
    save(tmp_path / "w2.hdr", np.zeros((2, 2), np.uint8), nifti_version=2)
    assert (tmp_path / "w2.hdr").read_bytes()[4:12] == b"ni2\0\r\n\x1a\n"
    np.testing.assert_array_equal(load(tmp_path / "w2.img")[0], np.zeros((2, 2)))


def test_extensions_are_skipped(tmp_path):
    data = np.arange(24, dtype=np.int16)
    # An extension flag, one extension (esize 32, ecode 6) of garbage, then the data at 384.
    ext = b"\1\0\0\0" + struct.pack("<ii", 32, 6) + os.urandom(24)
    blob = header(vox_offset=384)[:348] + ext + data.tobytes()
    (tmp_path / "e.nii").write_bytes(blob)
    np.testing.assert_array_equal(load(tmp_path / "e.nii")[0].ravel(), data)
    (tmp_path / "e.nii.gz").write_bytes(gzip.compress(blob))
    np.testing.assert_array_equal(load(tmp_path / "e.nii.gz")[0].ravel(), data)
    # A lying extension size is never followed: vox_offset alone bounds the skip.
    blob = header(vox_offset=368)[:348] + b"\1\0\0\0" + struct.pack("<ii", 10**9, 6) \
        + bytes(8) + data.tobytes()
    (tmp_path / "l.nii").write_bytes(blob)
    np.testing.assert_array_equal(load(tmp_path / "l.nii")[0].ravel(), data)
    # Trailing bytes after raw data are accepted (SPEC 11.9).
    (tmp_path / "t.nii").write_bytes(header() + data.tobytes() + b"trailing")
    np.testing.assert_array_equal(load(tmp_path / "t.nii")[0].ravel(), data)


def test_vox_offset_rules(tmp_path):
    data = np.arange(24, dtype=np.int16)
    for value in (0.0, 100.0, 347.0):  # a single file's data cannot overlap its header
        (tmp_path / "o.nii").write_bytes(header(vox_offset=value) + data.tobytes())
        with pytest.raises(CorruptFileError, match="vox_offset") as err:
            load(tmp_path / "o.nii")
        assert "o.nii" in str(err.value)
    (tmp_path / "o.nii").write_bytes(header(vox_offset=348.0)[:348] + data.tobytes())
    np.testing.assert_array_equal(load(tmp_path / "o.nii")[0].ravel(), data)
    # A pair's vox_offset is an offset into the .img.
    (tmp_path / "p.hdr").write_bytes(header(magic=b"ni1", vox_offset=16.0))
    (tmp_path / "p.img").write_bytes(bytes(16) + data.tobytes())
    np.testing.assert_array_equal(load(tmp_path / "p.hdr")[0].ravel(), data)
    for value in (-1.0, np.nan, np.inf, 1e30):
        (tmp_path / "p.hdr").write_bytes(header(magic=b"ni1", vox_offset=value))
        with pytest.raises(CorruptFileError, match="vox_offset"):
            load(tmp_path / "p.hdr")


def test_magic_must_fit_the_file_kind(tmp_path):
    data = np.arange(24, dtype=np.int16)
    (tmp_path / "pair.nii").write_bytes(header(magic=b"ni1") + data.tobytes())
    with pytest.raises(CorruptFileError, match="pair"):
        load(tmp_path / "pair.nii")
    (tmp_path / "none.nii").write_bytes(header(magic=b"") + data.tobytes())
    with pytest.raises(CorruptFileError, match="Analyze"):
        load(tmp_path / "none.nii")
    # A single-file header under a .hdr name holds its own data (as nifti1_io reads it).
    (tmp_path / "single.hdr").write_bytes(header() + data.tobytes())
    np.testing.assert_array_equal(load(tmp_path / "single.hdr")[0].ravel(), data)


def test_analyze_75(tmp_path):
    data = sample("int16", (2, 3, 4), seed=9)
    h = np.frombuffer(header(order=">", magic=b"", pixdim=[0, 2, 3, 4, 9, 0, 0, 0],
                             vox_offset=0.0, scl_slope=5.0, qform_code=1, sform_code=1,
                             xyzt_units=1, descrip=b"analyze")[:348],
                      dtype=nifti_header._N1.newbyteorder(">"))
    (tmp_path / "a.hdr").write_bytes(h.tobytes())
    (tmp_path / "a.img").write_bytes(data.astype(">i2").tobytes())
    back, info = load(tmp_path / "a.hdr")
    # No scaling, no units, no qform/sform: those bytes mean something else in Analyze.
    assert back.dtype == np.int16
    np.testing.assert_array_equal(back, data)
    assert_geometry(info, (2, 3, 4), (-3.0, 3.0, -2.0), np.diag([1.0, -1.0, 1.0]))
    assert info.properties == {"nifti.descrip": "analyze", "nifti.version": 0}
    # Negative pixdims count as their absolute value, as nibabel loads them (it warns and
    # takes |pixdim|).
    h2 = h.copy()
    h2["pixdim"] = [0, -2, 3, 4, 0, 0, 0, 0]
    (tmp_path / "a.hdr").write_bytes(h2.tobytes())
    assert_geometry(load(tmp_path / "a.img")[1], (2, 3, 4), (-3.0, 3.0, -2.0), np.diag(
        [1.0, -1.0, 1.0]))
    # Analyze keeps hist.smin where NIfTI has its magic: smin = 110 starts with b"n".
    h3 = h.copy()
    h3["magic"] = struct.pack(">i", 110)[::-1]  # the bytes 6E 00 00 00 of a little-endian smin
    (tmp_path / "a.hdr").write_bytes(h3.tobytes())
    back, info = load(tmp_path / "a.hdr")
    np.testing.assert_array_equal(back, data)
    assert info.properties["nifti.version"] == 0


# -- scaling ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name,result", [
    ("int8", "float32"), ("uint8", "float32"), ("int16", "float32"), ("uint16", "float32"),
    ("float32", "float32"), ("int32", "float64"), ("uint32", "float64"), ("int64", "float64"),
    ("uint64", "float64"), ("float64", "float64"), ("complex64", "complex64"),
    ("complex128", "complex128"),
])
@pytest.mark.parametrize("order", ["<", ">"])
def test_scaling_types_and_values(tmp_path, name, result, order):
    data = sample(name, (2, 3, 4), seed=11)
    nifti_file(tmp_path / "s.nii", data, order=order, datatype=CODES[name], scl_slope=0.3,
               scl_inter=-7.25)
    back, info = load(tmp_path / "s.nii")
    assert back.dtype == np.dtype(result) and "nifti.scl_slope" not in info.properties
    work = np.complex128 if np.dtype(name).kind == "c" else np.float64
    expected = (data.astype(work) * float(np.float32(0.3)) - 7.25).astype(result)
    assert back.tobytes() == expected.tobytes()  # computed in float64, rounded once
    raw, info = load(tmp_path / "s.nii", apply_scaling=False)
    assert raw.dtype == np.dtype(name) and raw.tobytes() == data.tobytes()
    assert info.properties["nifti.scl_slope"] == float(np.float32(0.3))
    assert info.properties["nifti.scl_inter"] == -7.25


@pytest.mark.parametrize("slope,inter,scaled", [
    (0.0, 5.0, False), (np.nan, 5.0, False), (np.inf, 0.0, False), (1.0, 0.0, False),
    (1.0, 5.0, True), (2.0, np.nan, True), (-1.0, 0.0, True),
])
def test_when_scaling_applies(tmp_path, slope, inter, scaled):
    data = np.arange(-12, 12, dtype=np.int16)
    nifti_file(tmp_path / "s.nii", data, scl_slope=slope, scl_inter=inter)
    back, _ = load(tmp_path / "s.nii")
    if not scaled:
        assert back.dtype == np.int16
        np.testing.assert_array_equal(back.ravel(), data)
    else:
        offset = 0.0 if np.isnan(inter) else inter  # a non-finite intercept counts as 0
        assert back.dtype == np.float32
        np.testing.assert_array_equal(back.ravel(), data * slope + offset)
    _, info = load(tmp_path / "s.nii", apply_scaling=False)
    assert ("nifti.scl_slope" in info.properties) == scaled


def test_scaling_in_place_across_chunks(tmp_path, monkeypatch):
    # Small chunks make many output chunks overlap the stored values still to be read.
    monkeypatch.setattr(nifti._data, "_SCALE_CHUNK", 7)
    for name in ("uint8", "int16", "int32", "float32", "float64"):
        data = sample(name, (3, 5, 11), seed=5)
        for gz in (False, True):
            path = tmp_path / f"s{name}.nii{'.gz' if gz else ''}"
            blob = header(datatype=CODES[name], dim=[3, 11, 5, 3, 1, 1, 1, 1], scl_slope=3.0,
                          scl_inter=1.0) + data.tobytes()
            path.write_bytes(gzip.compress(blob) if gz else blob)
            back, _ = load(path)
            np.testing.assert_array_equal(back, (data.astype(np.float64) * 3 + 1).astype(
                back.dtype))


def _peak_memory(fn):
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_scaled_read_needs_no_second_buffer(tmp_path, monkeypatch):
    monkeypatch.setattr(nifti._data, "_SCALE_CHUNK", 1 << 16)
    data = np.random.default_rng(0).integers(0, 4000, (32, 256, 256), dtype=np.int16)
    nifti_file(tmp_path / "big.nii", data, dim=[3, 256, 256, 32, 1, 1, 1, 1], scl_slope=2.0)
    (back, _), peak = _peak_memory(lambda: load(tmp_path / "big.nii"))
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, data * 2.0)
    # The 8 MiB float32 output plus a 512 KiB float64 work chunk; an int16 copy would add 4 MiB.
    assert peak < back.nbytes + (1 << 20)


def test_component_read_holds_one_extra_volume(tmp_path, monkeypatch):
    monkeypatch.setattr(nifti._data, "_GROUP_ELEMENTS", 1)  # one volume per step
    volumes = np.random.default_rng(0).integers(0, 4000, (4, 16, 128, 128), dtype=np.int16)
    nifti_file(tmp_path / "v.nii", volumes, dim=[5, 128, 128, 16, 1, 4, 1, 1])
    (back, _), peak = _peak_memory(lambda: load(tmp_path / "v.nii"))
    assert back.shape == (16, 128, 128, 4)
    np.testing.assert_array_equal(back, np.moveaxis(volumes, 0, -1))
    # One 512 KiB volume beside the 2 MiB image; the whole payload would add 2 MiB.
    assert peak < back.nbytes + (1 << 20)


def test_many_small_components_are_read_in_groups(tmp_path):
    volumes = np.arange(3000 * 6, dtype=np.float32).reshape(3000, 1, 2, 3)
    nifti_file(tmp_path / "m.nii", volumes, dim=[6, 3, 2, 1, 1, 30, 100, 1], datatype=16)
    back, info = load(tmp_path / "m.nii")
    assert info.shape == (2, 3) and info.channels == 3000
    np.testing.assert_array_equal(back, np.moveaxis(volumes[:, 0], 0, -1))


def test_scaling_properties_are_written_back(tmp_path):
    arr = np.arange(12, dtype=np.int16).reshape(3, 4)
    save(tmp_path / "s.nii", arr, properties={"nifti.scl_slope": 0.5, "nifti.scl_inter": 10.0})
    scaled, _ = load(tmp_path / "s.nii")
    np.testing.assert_array_equal(scaled, arr * 0.5 + 10)
    raw, info = load(tmp_path / "s.nii", apply_scaling=False)
    save(tmp_path / "again.nii", raw, properties=info.properties)
    np.testing.assert_array_equal(load(tmp_path / "again.nii")[0], scaled)
    with pytest.raises(TypeError, match="apply_scaling"):
        load(tmp_path / "s.nii", apply_scaling="yes")
    with pytest.raises(TypeError, match="colour"):
        nifti.read(str(tmp_path / "s.nii"), numpy_allocator, colour="blue")


# -- properties -------------------------------------------------------------------------------


def test_header_fields_round_trip_as_properties(tmp_path):
    props = {"nifti.descrip": "scan \u00e9t\u00e9 3T", "nifti.aux_file": "aux.txt",
             "nifti.intent_name": "zstat", "nifti.intent_code": 5, "nifti.intent_p1": 1.5,
             "nifti.intent_p2": -2.0, "nifti.intent_p3": 3.25, "nifti.cal_min": -10.0,
             "nifti.cal_max": 250.0, "nifti.slice_code": 3, "nifti.slice_start": 1,
             "nifti.slice_end": 9, "nifti.slice_duration": 0.0625, "nifti.dim_info": 57,
             "nifti.qform_code": 2, "nifti.sform_code": 4,
             "study": "plain keys are skipped", "nrrd.space": "other formats' keys too"}
    for version in (1, 2):
        save(tmp_path / "p.nii", np.zeros((2, 3, 4), np.float32), properties=props,
             nifti_version=version)
        _, info = load(tmp_path / "p.nii")
        expected = {k: v for k, v in props.items() if k.startswith("nifti.")}
        assert info.properties == {**expected, "nifti.version": version}


def test_full_width_text_fields_load_and_save_back(tmp_path):
    # No NUL at all (as nibabel writes a full field), and bytes that are not UTF-8 (latin-1).
    fields = {"descrip": b"x" * 80, "aux_file": b"y" * 24, "intent_name": b"z" * 16}
    latin = "caf\u00e9 " * 15  # 75 characters, 90 UTF-8 bytes, 75 latin-1 bytes
    for extra in ({}, {"descrip": latin.encode("latin-1")}):
        nifti_file(tmp_path / "t.nii", np.zeros(24, np.int16), **{**fields, **extra})
        _, info = load(tmp_path / "t.nii")
        assert info.properties["nifti.descrip"] == (latin if extra else "x" * 80)
        assert info.properties["nifti.intent_name"] == "z" * 16
        save(tmp_path / "u.nii", np.zeros((2, 3, 4), np.int16), properties=info.properties)
        hdr, _, _ = read_header(tmp_path / "u.nii")
        assert bytes(hdr["descrip"]) == (extra or fields)["descrip"]
        back = load(tmp_path / "u.nii")[1].properties
        for key in fields:
            assert back[f"nifti.{key}"] == info.properties[f"nifti.{key}"]


def test_slice_duration_is_in_the_units_of_the_time_step(tmp_path):
    # The standard compares slice_duration with pixdim[4]: a file in seconds gives both in ms,
    # and the saved file (which declares ms) keeps the slice timing.
    nifti_file(tmp_path / "s.nii", np.zeros(48, np.int16), dim=[4, 2, 2, 2, 3, 1, 1, 1],
               xyzt_units=2 | 8, pixdim=[1, 1, 1, 1, 2.0, 0, 0, 0], slice_duration=0.05,
               slice_code=1, dim_info=3 << 4)
    arr, info = load(tmp_path / "s.nii")
    assert info.time_spacing == pytest.approx(2000.0)
    assert info.properties["nifti.slice_duration"] == pytest.approx(50.0)
    save(tmp_path / "t.nii", arr, time_spacing=info.time_spacing, properties=info.properties)
    hdr, _, _ = read_header(tmp_path / "t.nii")
    assert int(hdr["xyzt_units"]) & 0x38 == 16
    assert float(hdr["slice_duration"]) == pytest.approx(50.0)
    assert float(hdr["pixdim"][4]) == pytest.approx(2000.0)


def test_codes_from_properties(tmp_path):
    arr = np.zeros((2, 3, 4), np.uint8)
    save(tmp_path / "z.nii", arr, properties={"nifti.sform_code": 0, "nifti.qform_code": "0"})
    hdr, _, _ = read_header(tmp_path / "z.nii")
    assert int(hdr["sform_code"]) == 1 and int(hdr["qform_code"]) == 1  # the affine is kept
    save(tmp_path / "s.nii", arr, properties={"nifti.sform_code": "3", "nifti.qform_code": 2.0})
    hdr, _, _ = read_header(tmp_path / "s.nii")
    assert int(hdr["sform_code"]) == 3 and int(hdr["qform_code"]) == 2


@pytest.mark.parametrize("props,match", [
    ({"nifti.descrip": "x" * 81}, "descrip"),
    ({"nifti.descrip": "\u20ac" * 27}, "descrip"),  # 81 UTF-8 bytes, and no latin-1
    ({"nifti.descrip": "bad \udcff"}, "descrip"),  # a lone surrogate: no encoding at all
    ({"nifti.aux_file": "a" * 25}, "aux_file"),
    ({"nifti.cal_max": 10 ** 400}, "cal_max"),  # an int beyond any float
    ({"nifti.scl_slope": 10 ** 400}, "scl_slope"),
    ({"nifti.intent_name": "a\0b"}, "intent_name"),
    ({"nifti.intent_code": 40000}, "intent_code"),
    ({"nifti.sform_code": "mni"}, "sform_code"),
    ({"nifti.slice_code": 1.5}, "slice_code"),
    ({"nifti.dim_info": True}, "dim_info"),
    ({"nifti.cal_max": 1e39}, "cal_max"),
    ({"nifti.scl_slope": "steep"}, "scl_slope"),
    ({"nifti.xyzt_units": 300}, "xyzt_units"),
])
def test_unwritable_properties_fail_before_writing(tmp_path, props, match):
    (tmp_path / "old.nii").write_bytes(b"old")
    with pytest.raises(UnsupportedFormatError, match=match) as err:
        save(tmp_path / "old.nii", np.zeros((2, 2), np.uint8), properties=props)
    assert "old.nii" in str(err.value)
    assert (tmp_path / "old.nii").read_bytes() == b"old" and os.listdir(tmp_path) == ["old.nii"]


# -- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize("ext,kwargs,exc,match", [
    (".nii", {"compression": "gzip"}, ArgumentError, r"\.nii\.gz"),
    (".hdr", {"compression": "gzip"}, ArgumentError, r"\.nii\.gz"),
    (".nii.gz", {"compression": "raw"}, ArgumentError, "always gzip"),
    (".nii", {"compression": "bzip2"}, ArgumentError, "bzip2"),
    (".nii", {"compression": "lz4"}, ArgumentError, "lz4"),
    (".nii", {"compression": 5}, TypeError, "compression"),
    (".nii", {"compression_level": 3}, ArgumentError, "compression_level"),
    (".nii.gz", {"compression_level": 0}, ArgumentError, "1 to 9"),
    (".nii.gz", {"compression_level": 10}, ArgumentError, "1 to 9"),
    (".nii.gz", {"compression_level": "9"}, TypeError, "compression_level"),
    (".nii", {"nifti_version": 3}, ArgumentError, "nifti_version"),
    (".nii", {"nifti_version": 0}, ArgumentError, "nifti_version"),
    (".nii", {"nifti_version": "2"}, TypeError, "nifti_version"),
    (".nii", {"nifti_version": True}, TypeError, "nifti_version"),
    (".nii", {"colour": "blue"}, TypeError, "colour"),
])
def test_bad_write_options(tmp_path, ext, kwargs, exc, match):
    arr = np.zeros((3, 3), np.int16)
    info = ImageInfo(dtype=arr.dtype, shape=arr.shape)
    with pytest.raises(exc, match=match):
        nifti.write(str(tmp_path / f"x{ext}"), arr, info, **kwargs)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("ext,kwargs", [
    (".nii", {}), (".nii", {"compression": None}), (".nii", {"compression": "raw"}),
    (".hdr", {"compression": "raw"}), (".nii.gz", {}), (".nii.gz", {"compression": "gzip"}),
    (".nii.gz", {"compression_level": 9}), (".nii", {"nifti_version": 1}),
    (".nii.gz", {"nifti_version": 2, "compression_level": 4}),
])
def test_good_write_options(tmp_path, ext, kwargs):
    arr = np.tile(np.arange(100, dtype=np.int16), (20, 10, 1))
    save(tmp_path / f"x{ext}", arr, **kwargs)
    back, info = load(tmp_path / f"x{ext}")
    np.testing.assert_array_equal(back, arr)
    assert info.properties["nifti.version"] == kwargs.get("nifti_version", 1)
    data = (tmp_path / f"x{ext}").read_bytes()
    assert (data[:2] == b"\x1f\x8b") == (ext == ".nii.gz")
    if ext == ".nii.gz":
        assert len(data) < arr.nbytes / 4


def test_compression_level_is_used(tmp_path):
    arr = np.random.default_rng(1).integers(0, 50, (40, 64, 64)).astype(np.int16)
    save(tmp_path / "fast.nii.gz", arr)
    save(tmp_path / "small.nii.gz", arr, compression_level=9)
    assert os.path.getsize(tmp_path / "small.nii.gz") < os.path.getsize(tmp_path / "fast.nii.gz")
    np.testing.assert_array_equal(load(tmp_path / "small.nii.gz")[0], arr)


def test_nifti2_when_a_size_needs_it(tmp_path):
    save(tmp_path / "wide.nii", np.zeros((1, 40000), np.uint8))
    hdr, version, _ = read_header(tmp_path / "wide.nii")
    assert version == 2 and list(hdr["dim"][:3]) == [2, 40000, 1]
    back, info = load(tmp_path / "wide.nii")
    assert back.shape == (1, 40000) and info.properties["nifti.version"] == 2
    with pytest.raises(UnsupportedFormatError, match="NIfTI-2") as err:
        save(tmp_path / "v1.nii", np.zeros((1, 40000), np.uint8), nifti_version=1)
    assert "32767" in str(err.value) and not (tmp_path / "v1.nii").exists()
    # Components count as a size too.
    save(tmp_path / "many.nii", np.zeros((1, 1, 33000), np.uint8), channels=33000)
    assert read_header(tmp_path / "many.nii")[1] == 2
    assert load(tmp_path / "many.nii")[1].channels == 33000


@pytest.mark.parametrize("dtype,hint", [("float16", "float32"), ("longdouble", "float64"),
                                        ("clongdouble", "complex128")])
def test_types_nifti_cannot_store(tmp_path, dtype, hint):
    arr = np.zeros((2, 2), dtype)
    with pytest.raises(UnsupportedFormatError, match=hint) as err:
        save(tmp_path / "x.nii", arr)
    assert "NIfTI" in str(err.value) and np.dtype(dtype).name in str(err.value)
    assert os.listdir(tmp_path) == []


# -- atomic save ------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", EXTS)
def test_failed_write_keeps_the_old_files(tmp_path, ext, monkeypatch):
    old = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    save(tmp_path / f"x{ext}", old)
    before = {p: (tmp_path / p).read_bytes() for p in os.listdir(tmp_path)}

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_streams, "write_from", fail)
    monkeypatch.setattr(_streams, "compress_from", fail)
    with pytest.raises(OSError, match="No space"):
        save(tmp_path / f"x{ext}", np.zeros((5, 5, 5), np.float64))
    assert {p: (tmp_path / p).read_bytes() for p in os.listdir(tmp_path)} == before
    monkeypatch.undo()
    np.testing.assert_array_equal(load(tmp_path / f"x{ext}")[0], old)


def test_vector_gzip_write_streams_volumes(tmp_path):
    arr = sample("float32", (2, 3, 4, 5, 3), seed=2)
    save(tmp_path / "v.nii.gz", arr, 3, compression_level=6)
    with gzip.open(tmp_path / "v.nii.gz") as f:
        raw = f.read()
    assert raw[352:] == b"".join(arr[..., k].tobytes() for k in range(3))
    back, info = load(tmp_path / "v.nii.gz")
    assert info.channels == 3 and back.tobytes() == arr.tobytes()


def test_missing_directory_raises_the_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        save(tmp_path / "nope" / "x.nii", np.zeros((2, 2), np.uint8))
    with pytest.raises(FileNotFoundError):
        save(tmp_path / "nope" / "x.hdr", np.zeros((2, 2), np.uint8))


# -- hostile files ----------------------------------------------------------------------------


def _hostile(path, exc=(CorruptFileError, UnsupportedFormatError), match=None, stream=False):
    """Read a bad file: the error names it, and nothing is allocated unless only decompressing
    the data (``stream=True``) can tell that a gzip stream is short, long or damaged."""
    rec = Recorder()
    with pytest.raises(exc, match=match) as err:
        nifti.read(str(path), rec)
    assert len(rec.calls) <= (1 if stream else 0), "nothing may be allocated for a bad header"
    assert os.path.basename(str(path)) in str(err.value)
    return str(err.value)


@pytest.mark.parametrize("ext", [".nii", ".nii.gz"])
def test_truncated_files(tmp_path, ext):
    save(tmp_path / f"good{ext}", sample("int16", (3, 4, 5)))
    data = (tmp_path / f"good{ext}").read_bytes()
    if ext == ".nii.gz":
        data = gzip.decompress(data)
    for cut in (0, 1, 3, 4, 40, 100, 200, 347, 350, 351, 352, 400, len(data) - 1):
        p = tmp_path / f"cut{ext}"
        p.write_bytes(gzip.compress(data[:cut]) if ext == ".nii.gz" else data[:cut])
        message = _hostile(p, CorruptFileError, stream=ext == ".nii.gz" and cut >= 348)
        assert any(w in message for w in ("truncated", "ends after")), message
    if ext == ".nii.gz":  # a gzip stream cut short (no end marker)
        blob = (tmp_path / "good.nii.gz").read_bytes()
        for cut in (5, 30, len(blob) // 2, len(blob) - 4):
            (tmp_path / "short.nii.gz").write_bytes(blob[:cut])
            _hostile(tmp_path / "short.nii.gz", CorruptFileError, stream=True)


def test_truncated_pairs(tmp_path):
    save(tmp_path / "good.hdr", sample("int16", (3, 4, 5)))
    head, data = (tmp_path / "good.hdr").read_bytes(), (tmp_path / "good.img").read_bytes()
    (tmp_path / "cut.img").write_bytes(data)
    for cut in (0, 2, 4, 100, 347):
        (tmp_path / "cut.hdr").write_bytes(head[:cut])
        assert "truncated" in _hostile(tmp_path / "cut.hdr", CorruptFileError)
    (tmp_path / "cut.hdr").write_bytes(head[:348])  # the extension flag is optional in a pair
    np.testing.assert_array_equal(load(tmp_path / "cut.hdr")[0], load(tmp_path / "good.hdr")[0])
    for cut in (0, 1, len(data) // 2, len(data) - 1):
        (tmp_path / "cut.img").write_bytes(data[:cut])
        message = _hostile(tmp_path / "cut.hdr", CorruptFileError, "truncated")
        assert "cut.img" in message and "header" in message


HOSTILE = [
    ({"dim": [0, 1, 1, 1, 1, 1, 1, 1]}, r"dim\[0\]"),
    ({"dim": [8, 1, 1, 1, 1, 1, 1, 1]}, r"dim\[0\]"),
    ({"dim": [-3, 1, 1, 1, 1, 1, 1, 1]}, r"dim\[0\]"),
    ({"dim": [3, -4, 3, 2, 1, 1, 1, 1]}, r"dim\[1\]"),
    ({"dim": [3, 4, 0, 2, 1, 1, 1, 1]}, r"dim\[2\]"),
    ({"dim": [5, 4, 3, 2, 1, -2, 1, 1]}, r"dim\[5\]"),
    ({"dim": [3, 32767, 32767, 32767, 1, 1, 1, 1]}, "truncated"),
    ({"dim": [7, 32767, 32767, 32767, 32767, 32767, 32767, 32767]}, "more than any file"),
    ({"sizeof_hdr": 349}, "sizeof_hdr"),
    ({"sizeof_hdr": 0}, "sizeof_hdr"),
    ({"magic": b"n+9"}, "magic"),
    ({"magic": b"nx1"}, "magic"),
    ({"vox_offset": -5}, "vox_offset"),
    ({"datatype": 1536}, "float128"),
    ({"datatype": 2048}, "complex256"),
    ({"sform_code": 1, "srow_x": [np.nan, 0, 0, 0]}, "sform"),
    ({"sform_code": 1, "srow_x": [1, 0, 0, 0], "srow_y": [2, 0, 0, 0]}, "sform"),
    ({"qform_code": 1, "quatern_b": np.inf}, "qform"),
]
HOSTILE_V1 = [({"vox_offset": np.nan}, "vox_offset"), ({"vox_offset": 3e38}, "vox_offset")]
HOSTILE_V2 = [  # NIfTI-2 only: 64-bit sizes and doubles whose products overflow
    ({"vox_offset": 2**62 + 5}, "vox_offset"),
    ({"dim": [3, 2**40, 2**40, 2**40, 1, 1, 1, 1]}, "dim"),
    ({"qform_code": 1, "pixdim": [1, 1e308, 1, 1, 0, 0, 0, 0], "xyzt_units": 1}, "not finite"),
]


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("version,fields,match",
                         [(1, f, m) for f, m in HOSTILE + HOSTILE_V1]
                         + [(2, f, m) for f, m in HOSTILE + HOSTILE_V2])
def test_hostile_headers(tmp_path, version, fields, match, order):
    p = tmp_path / "h.nii"
    p.write_bytes(header(version, order, **fields) + bytes(48))
    _hostile(p, match=match)


def test_huge_sizes_fail_before_allocating(tmp_path):
    dims = [4, 10**4, 10**4, 10**4, 10**4, 1, 1, 1]
    p = tmp_path / "huge.nii"
    p.write_bytes(header(2, dim=dims, datatype=64) + bytes(1000))
    assert "truncated" in _hostile(p)
    # The same in a gzip stream: refused by the deflate ratio bound, before decompressing.
    g = tmp_path / "huge.nii.gz"
    g.write_bytes(gzip.compress(header(2, dim=dims, datatype=64) + bytes(1000)))
    assert "1032" in _hostile(g, CorruptFileError)
    # A gzip bomb within a plausible size: 1 GB of zeros declared, a tiny stream.
    b = tmp_path / "bomb.nii.gz"
    b.write_bytes(gzip.compress(header(dim=[3, 1024, 1024, 1024, 1, 1, 1, 1], datatype=2)
                                + bytes(4096)))
    assert "1032" in _hostile(b, CorruptFileError)


def test_gzip_streams_longer_or_broken(tmp_path):
    data = np.arange(24, dtype=np.int16).tobytes()
    # What follows the declared payload is ignored (SPEC 6.2), inside the stream or after it.
    (tmp_path / "long.nii.gz").write_bytes(gzip.compress(header() + data + b"extra") + b"\n")
    np.testing.assert_array_equal(load(tmp_path / "long.nii.gz")[0].ravel(), np.arange(24))
    (tmp_path / "raw.nii.gz").write_bytes(header() + data)
    _hostile(tmp_path / "raw.nii.gz", CorruptFileError, "gzip")
    (tmp_path / "zipped.nii").write_bytes(gzip.compress(header() + data))
    _hostile(tmp_path / "zipped.nii", CorruptFileError, r"\.nii\.gz")
    blob = bytearray(gzip.compress(header() + data))
    blob[len(blob) // 2] ^= 0xFF
    (tmp_path / "flip.nii.gz").write_bytes(bytes(blob))
    _hostile(tmp_path / "flip.nii.gz", CorruptFileError, stream=True)


def test_garbage_files(tmp_path):
    rng = np.random.default_rng(42)
    for i in range(40):
        blob = rng.integers(0, 256, int(rng.integers(0, 1200)), dtype=np.uint8).tobytes()
        (tmp_path / f"g{i}.nii").write_bytes(blob)
        _hostile(tmp_path / f"g{i}.nii")
    # Random bytes behind a valid sizeof_hdr and magic: every outcome is a clean error or data.
    for i in range(150):
        raw = bytearray(rng.integers(0, 256, 352 + 64, dtype=np.uint8).tobytes())
        raw[0:4] = struct.pack("<i", 348)
        raw[344:348] = b"n+1\0"
        (tmp_path / "m.nii").write_bytes(bytes(raw))
        try:
            arr, info = load(tmp_path / "m.nii")
        except (CorruptFileError, UnsupportedFormatError) as exc:
            assert "m.nii" in str(exc)
        else:
            assert arr.size <= 68 and np.all(np.isfinite(info.spacing))


@pytest.mark.parametrize("version", [1, 2])
def test_mutated_headers_fail_cleanly(tmp_path, version):
    # Flip bytes of a valid header: each outcome is a clean error or a plausible image.
    save(tmp_path / "good.nii", sample("float32", (2, 3, 4), seed=8), direction=rotation(0.2),
         nifti_version=version, properties={"nifti.scl_slope": 2.0})
    good = (tmp_path / "good.nii").read_bytes()
    size = 348 if version == 1 else 540
    rng = np.random.default_rng(version)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(300):
        raw = bytearray(good)
        for pos in rng.integers(0, size, int(rng.integers(1, 5))):
            raw[pos] = int(rng.integers(0, 256))
        (tmp_path / "m.nii").write_bytes(bytes(raw))
        try:
            arr, info = load(tmp_path / "m.nii")
        except (CorruptFileError, UnsupportedFormatError) as exc:
            assert "m.nii" in str(exc)
            outcomes["error"] += 1
        else:
            assert arr.nbytes <= 8 * 24 * 2 and info.ndim in (2, 3, 4)
            assert np.all(np.isfinite(info.direction)) and min(info.spacing) > 0
            outcomes["ok"] += 1
    assert outcomes["ok"] > 50 and outcomes["error"] > 20  # both paths were exercised


def test_missing_pair_files(tmp_path):
    save(tmp_path / "p.hdr", np.zeros((2, 2), np.uint8))
    os.unlink(tmp_path / "p.img")
    with pytest.raises(FileNotFoundError) as err:
        nifti.read(str(tmp_path / "p.hdr"), numpy_allocator)
    assert "p.hdr" in str(err.value) and err.value.filename.endswith("p.img")
    (tmp_path / "q.img").write_bytes(bytes(4))
    with pytest.raises(FileNotFoundError) as err:
        nifti.read(str(tmp_path / "q.img"), numpy_allocator)
    assert "q.img" in str(err.value) and err.value.filename.endswith("q.hdr")


# -- independent readers and writers ----------------------------------------------------------


def _nibabel_data():
    nib = pytest.importorskip("nibabel")
    return os.path.join(os.path.dirname(nib.__file__), "tests", "data")


def _nibabel_files():
    # Collected without importing nibabel; without it the tests below skip (importorskip).
    spec = importlib.util.find_spec("nibabel")
    if spec is None:
        return []
    root = os.path.join(os.path.dirname(spec.origin), "tests", "data")
    return sorted(glob.glob(os.path.join(root, "*.nii*")))


def _c_order(data, info):
    """nibabel's (x, y, z, t, c5, c6, ...) array in mitk's (t, z, y, x, c) order."""
    if data.ndim > 4:  # dims 5-7 flattened with dim[5] fastest: Fortran order
        data = data.reshape(data.shape[:4] + (-1,), order="F")
        return np.moveaxis(data, [0, 1, 2, 3], [3, 2, 1, 0]).reshape(info.full_shape)
    return data.T.reshape(info.full_shape)


@pytest.mark.parametrize("path", _nibabel_files(), ids=os.path.basename)
def test_nibabel_test_data(path):
    nib = pytest.importorskip("nibabel")
    ref = nib.load(path)
    nhdr = getattr(ref, "nifti_header", ref.header)  # CIFTI images wrap a NIfTI-2 header
    stored, info = load(path, apply_scaling=False)
    raw = np.asanyarray(ref.dataobj.get_unscaled()) if hasattr(ref.dataobj, "get_unscaled") \
        else np.asanyarray(ref.dataobj)
    expected = _c_order(raw, info)
    assert stored.dtype == expected.dtype.newbyteorder("=")
    assert stored.tobytes() == expected.astype(stored.dtype).tobytes()  # bit-exact
    scaled, sinfo = load(path)
    slope, inter = getattr(ref.dataobj, "slope", 1.0), getattr(ref.dataobj, "inter", 0.0)
    if slope != 1 or inter != 0:
        fdata = _c_order(np.asanyarray(ref.get_fdata()), info)
        assert scaled.dtype == np.float32
        np.testing.assert_allclose(scaled, fdata, rtol=6e-8, atol=0)
        assert info.properties["nifti.scl_slope"] == pytest.approx(slope)
    else:
        assert scaled.tobytes() == stored.tobytes()
    affine = getattr(ref, "affine", None)
    if affine is not None:
        np.testing.assert_allclose(sinfo.direction * sinfo.spacing,
                                   RAS_TO_LPS @ affine[:3, :3], atol=1e-5)
        np.testing.assert_allclose(sinfo.origin, RAS_TO_LPS @ affine[:3, 3], atol=1e-4)
    version = 2 if isinstance(nhdr, nib.Nifti2Header) else 1
    assert info.properties["nifti.version"] == version
    descrip = nhdr["descrip"].item().split(b"\0")[0].decode()  # C text ends at a NUL
    assert info.properties.get("nifti.descrip", "") == descrip
    assert info.properties["nifti.sform_code"] == int(nhdr["sform_code"])


@pytest.mark.parametrize("name,cls", [("nifti1.hdr", "Nifti1Pair"), ("nifti2.hdr", "Nifti2Pair"),
                                      ("analyze.hdr", "AnalyzeImage")])
def test_nibabel_pair_headers(tmp_path, name, cls):
    nib = pytest.importorskip("nibabel")
    shutil.copy(os.path.join(_nibabel_data(), name), tmp_path / name)
    klass = getattr(nib, cls)
    with open(tmp_path / name, "rb") as f:
        hdr = klass.header_class.from_fileobj(f)
    offset = int(hdr.get_data_offset())
    size = int(np.prod(hdr.get_data_shape())) * hdr.get_data_dtype().itemsize
    (tmp_path / name.replace(".hdr", ".img")).write_bytes(
        bytes(offset) + np.random.default_rng(0).integers(0, 256, size, np.uint8).tobytes())
    ref = klass.load(str(tmp_path / name))
    arr, info = load(tmp_path / name)
    expected = _c_order(np.asanyarray(ref.dataobj.get_unscaled()), info)
    assert arr.tobytes() == expected.astype(arr.dtype).tobytes()
    np.testing.assert_allclose(info.direction * info.spacing, RAS_TO_LPS @ ref.affine[:3, :3],
                               atol=1e-6)
    np.testing.assert_allclose(info.origin, RAS_TO_LPS @ ref.affine[:3, 3], atol=1e-5)
    assert info.properties["nifti.version"] == {"Nifti1Pair": 1, "Nifti2Pair": 2}.get(cls, 0)


@pytest.mark.parametrize("cls,ext", [("Nifti1Image", ".nii"), ("Nifti1Image", ".nii.gz"),
                                     ("Nifti2Image", ".nii"), ("Nifti1Pair", ".hdr"),
                                     ("Nifti2Pair", ".img")])
@pytest.mark.parametrize("name", ["uint8", "int16", "uint16", "int32", "int64", "float32",
                                  "float64", "complex64", "complex128"])
@pytest.mark.parametrize("order", ["<", ">"])
def test_nibabel_writes_we_read(tmp_path, cls, ext, name, order):
    nib = pytest.importorskip("nibabel")
    klass = getattr(nib, cls)
    data = sample(name, (6, 5, 4, 3), seed=1)  # nibabel's (x, y, z, t)
    affine = np.array([[0.0, -2.0, 0.5, 10.0], [1.5, 0.0, 0.0, -20.0],
                       [0.0, 0.3, 2.5, 30.0], [0, 0, 0, 1]])
    hdr = klass.header_class(endianness=order)
    hdr.set_data_dtype(np.dtype(name).newbyteorder(order))
    hdr.set_xyzt_units("mm", "sec")
    hdr["pixdim"][4] = 0.75
    ref = klass(data, affine, hdr)
    path = tmp_path / f"n{ext}"
    nib.save(ref, str(path))
    arr, info = load(path)
    assert arr.tobytes() == data.T.astype(arr.dtype).tobytes()
    np.testing.assert_allclose(info.direction * info.spacing, RAS_TO_LPS @ affine[:3, :3],
                               atol=1e-6)
    np.testing.assert_allclose(info.origin, RAS_TO_LPS @ affine[:3, 3], atol=1e-5)
    assert info.time_spacing == pytest.approx(750.0)  # seconds become ms


def test_nibabel_vectors_rgb_and_scaling(tmp_path):
    nib = pytest.importorskip("nibabel")
    vec = sample("float32", (6, 5, 4, 1, 3), seed=3)
    img = nib.Nifti1Image(vec, np.eye(4))
    img.header.set_intent("vector")
    nib.save(img, str(tmp_path / "vec.nii"))
    arr, info = load(tmp_path / "vec.nii")
    assert info.shape == (4, 5, 6) and info.channels == 3
    assert info.properties["nifti.intent_code"] == 1007
    np.testing.assert_array_equal(arr, np.moveaxis(vec[:, :, :, 0, :], [0, 1, 2], [2, 1, 0]))
    for fields, code in ((("R", "G", "B"), 128), (("R", "G", "B", "A"), 2304)):
        dt = np.dtype([(f, "u1") for f in fields])
        rgb = sample("uint8", (6, 5, 4, len(fields)), seed=code)
        nib.save(nib.Nifti1Image(rgb.view(dt)[..., 0], np.eye(4)), str(tmp_path / "rgb.nii"))
        assert int(read_header(tmp_path / "rgb.nii")[0]["datatype"]) == code
        arr, info = load(tmp_path / "rgb.nii")
        assert info.channels == len(fields)
        np.testing.assert_array_equal(arr, np.moveaxis(rgb, [0, 1, 2], [2, 1, 0]))
    real = np.random.default_rng(4).standard_normal((6, 5, 4)) * 1000
    img = nib.Nifti1Image(real, np.eye(4))
    img.set_data_dtype(np.int16)  # nibabel picks a slope and intercept
    nib.save(img, str(tmp_path / "scaled.nii"))
    ref = nib.load(str(tmp_path / "scaled.nii"))
    assert ref.dataobj.slope != 1
    arr, _ = load(tmp_path / "scaled.nii")
    np.testing.assert_allclose(arr, ref.get_fdata().T, rtol=6e-8)
    raw, info = load(tmp_path / "scaled.nii", apply_scaling=False)
    np.testing.assert_array_equal(raw, np.asanyarray(ref.dataobj.get_unscaled()).T)


@pytest.mark.parametrize("ext", [".nii", ".nii.gz", ".hdr"])
@pytest.mark.parametrize("version", [1, 2])
def test_nibabel_reads_what_we_write(tmp_path, ext, version):
    nib = pytest.importorskip("nibabel")
    shear = np.array([[1.0, 0.2, 0.0], [0.0, 1.0, 0.1], [0.0, 0.0, 1.0]])
    cases = [("float32", 1, shear), ("int16", 1, rotation(0.5) @ np.diag([1.0, 1.0, -1.0])),
             ("uint64", 1, np.eye(3)), ("complex64", 1, rotation(2.0, 0)),
             ("float64", 2, rotation(0.3)), ("uint8", 3, np.eye(3))]
    for name, channels, direction in cases:
        shape = (4, 3, 5, 6) + ((channels,) if channels > 1 else ())
        arr = sample(name, shape, seed=channels)
        unit = direction / np.linalg.norm(direction, axis=0)
        path = tmp_path / f"x{ext}"
        save(path, arr, channels, spacing=(1.5, 2.0, 2.5), origin=(1.0, 2.0, 3.0),
             direction=unit, time_spacing=250.0, time_origin=4.0, nifti_version=version,
             properties={"nifti.descrip": "from mitk"})
        ref = nib.load(str(path))
        assert isinstance(ref.header, nib.Nifti2Header if version == 2 else nib.Nifti1Header)
        data = np.asanyarray(ref.dataobj)
        if channels == 3 and name == "uint8":  # RGB24: a structured dtype in nibabel
            data = np.stack([data[f] for f in data.dtype.names], axis=-1)
            expected = np.moveaxis(arr, [0, 1, 2, 3], [3, 2, 1, 0])
        elif channels > 1:  # (x, y, z, t, c) with the vector intent
            assert ref.header.get_intent()[0] == "vector"
            expected = np.moveaxis(arr, [0, 1, 2, 3], [3, 2, 1, 0])
        else:
            expected = arr.T
        np.testing.assert_array_equal(data, expected)
        lps = RAS_TO_LPS @ ref.affine[:3, :3]
        np.testing.assert_allclose(lps, unit * (1.5, 2.0, 2.5), atol=1e-6)
        np.testing.assert_allclose(RAS_TO_LPS @ ref.affine[:3, 3], (1.0, 2.0, 3.0), atol=1e-6)
        assert ref.header.get_xyzt_units() == ("mm", "msec")
        assert float(ref.header["pixdim"][4]) == 250.0 and float(ref.header["toffset"]) == 4.0
        assert ref.header["descrip"].item() == b"from mitk"
        orthonormal = np.allclose(unit.T @ unit, np.eye(3))
        assert int(ref.header["qform_code"]) == (1 if orthonormal else 0)
        if orthonormal:
            np.testing.assert_allclose(ref.get_qform(), ref.get_sform(), atol=1e-6)


def test_simpleitk_round_trips(tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    rng = np.random.default_rng(7)
    direction = rotation(0.3) @ rotation(0.2, 0)
    cases = [(rng.integers(-500, 500, (4, 5, 6)).astype(np.int16), False),
             ((rng.standard_normal((4, 5, 6)) * 100).astype(np.float32), False),
             (rng.integers(0, 255, (4, 5, 6, 3)).astype(np.uint8), True),
             ((rng.standard_normal((4, 5, 6, 2))).astype(np.float64), True)]
    for i, (arr, vector) in enumerate(cases):
        for ext in (".nii", ".nii.gz"):
            image = sitk.GetImageFromArray(arr, isVector=vector)
            image.SetSpacing((0.4, 0.5, 0.6))
            image.SetOrigin((-10.0, 20.0, 30.5))
            image.SetDirection(tuple(direction.ravel()))
            theirs = str(tmp_path / f"sitk{i}{ext}")
            sitk.WriteImage(image, theirs)
            ours, info = load(theirs)
            assert ours.tobytes() == arr.tobytes() and ours.dtype == arr.dtype
            assert info.channels == (arr.shape[-1] if vector else 1)
            assert_geometry(info, (0.4, 0.5, 0.6), (-10.0, 20.0, 30.5), direction, atol=1e-5)
            mine = tmp_path / f"mitk{i}{ext}"
            save(mine, arr, arr.shape[-1] if vector else 1, spacing=(0.4, 0.5, 0.6),
                 origin=(-10.0, 20.0, 30.5), direction=direction)
            ref = sitk.ReadImage(str(mine))
            assert ref.GetNumberOfComponentsPerPixel() == (arr.shape[-1] if vector else 1)
            np.testing.assert_array_equal(sitk.GetArrayFromImage(ref), arr)
            np.testing.assert_allclose(ref.GetSpacing(), (0.4, 0.5, 0.6), rtol=1e-6)
            np.testing.assert_allclose(ref.GetOrigin(), (-10.0, 20.0, 30.5), atol=1e-5)
            np.testing.assert_allclose(np.reshape(ref.GetDirection(), (3, 3)), direction,
                                       atol=1e-6)


def test_simpleitk_2d_and_4d(tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    flat = np.arange(30, dtype=np.uint16).reshape(5, 6)
    save(tmp_path / "flat.nii", flat, spacing=(0.5, 0.25, 1.0), origin=(3.0, 4.0, 0.0))
    ref = sitk.ReadImage(str(tmp_path / "flat.nii"))
    assert ref.GetDimension() == 2 and ref.GetSpacing() == (0.5, 0.25)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ref), flat)
    image = sitk.GetImageFromArray(flat.astype(np.float32))
    image.SetSpacing((0.5, 0.25))
    sitk.WriteImage(image, str(tmp_path / "sitk2d.nii"))
    arr, info = load(tmp_path / "sitk2d.nii")
    assert info.ndim == 2 and info.spacing[:2] == (0.5, 0.25)
    np.testing.assert_array_equal(arr, flat)
    series = np.arange(3 * 4 * 5 * 6, dtype=np.int32).reshape(3, 4, 5, 6)
    save(tmp_path / "t.nii.gz", series, time_spacing=2.5, time_origin=10.0)
    ref = sitk.ReadImage(str(tmp_path / "t.nii.gz"))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ref), series)
    assert ref.GetSpacing()[3] == pytest.approx(0.0025)  # ITK keeps time in seconds
    assert ref.GetOrigin()[3] == pytest.approx(0.010)


def test_huge_but_regular_sform_is_not_singular(tmp_path):
    # The one singularity rule (mitk._geometry_rules.is_singular) rescales columns first: the
    # determinant of axis vectors around 1e103 overflowed to inf in a NIfTI-only copy of the
    # rule, which called this regular NIfTI-2 grid singular.
    data = np.zeros(24, np.int16)
    sform = dict(sform_code=1, srow_x=[1e103, 0, 0, 0], srow_y=[0, 2e103, 0, 0],
                 srow_z=[0, 0, 3e103, 5])
    _, info = load(nifti_file(tmp_path / "huge.nii", data, version=2, **sform))
    np.testing.assert_allclose(info.spacing, (1e103, 2e103, 3e103))
    np.testing.assert_array_equal(info.direction, np.diag([-1.0, -1.0, 1.0]))
    assert info.origin == (0.0, 0.0, 5.0)
    # Up to the largest doubles, as NRRD and MetaImage read them.
    for name, fields in (("sform", dict(sform_code=1, srow_x=[1e300, 0, 0, 0],
                                        srow_y=[0, 1e300, 0, 0], srow_z=[0, 0, 1e300, 0])),
                         ("analyze", dict(pixdim=[1, 1e300, 1e300, 1e300, 0, 0, 0, 0]))):
        _, info = load(nifti_file(tmp_path / f"{name}.nii", data, version=2, **fields))
        np.testing.assert_allclose(info.spacing, (1e300,) * 3)
    # A singular one is still refused, whatever its scale.
    flat = dict(sform, srow_z=[1e103, 0, 0, 5])
    refuse = pytest.raises(CorruptFileError, match="singular")
    with refuse:
        load(nifti_file(tmp_path / "flat.nii", data, version=2, **flat))


@pytest.mark.parametrize("name", ["slabs.nii", "slabs.nii.gz", "slabs.hdr"])
def test_channels_are_written_a_slab_at_a_time(tmp_path, monkeypatch, name):
    # NIfTI stores each component as one volume (the 5th dimension); the writer copies it out of
    # the interleaved image a slab of rows at a time, never a whole component volume.
    import mitk
    from mitk.io.nifti import _writer

    monkeypatch.setattr(_writer, "_SLAB", 4096)
    data = np.random.default_rng(8).random((2, 6, 20, 30, 3)).astype(np.float32)
    parts = []
    real = _writer._volumes

    def recorded(array, comps):
        for part in real(array, comps):
            parts.append(len(part))
            yield part

    monkeypatch.setattr(_writer, "_volumes", recorded)
    mitk.Image(data, channels=3).save(tmp_path / name)
    assert max(parts) <= 4096 and sum(parts) == data.nbytes
    assert np.array_equal(mitk.Image(tmp_path / name).array, data)


@pytest.mark.parametrize("cuts", [(0,), (100,), (10, 10, 400), (351,), (352, 353)])
def test_a_header_across_gzip_members_is_read(tmp_path, cuts):
    """An empty first member, or a header split between members (what concatenating gzip
    files gives): the header is read across them, by a full load and by mitk.open."""
    import mitk

    data = sample("int16", (3, 4, 5))
    path = tmp_path / "m.nii.gz"
    mitk.Image(data).save(path)
    raw = gzip.decompress(path.read_bytes())
    bounds = [0, *cuts, len(raw)]
    path.write_bytes(b"".join(gzip.compress(raw[a:b]) for a, b in zip(bounds, bounds[1:]))
                     + b"\n")  # and what follows the last member is not one
    assert np.array_equal(np.asarray(mitk.Image(path)), data)
    assert np.array_equal(mitk.open(path)[...], data)
