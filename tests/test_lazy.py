"""mitk.open and LazyImage (SPEC 13): region reads equal a full load, bit for bit.

Every format and encoding mitk reads, with several dtypes, channels and 4D, files written by
mitk and by nibabel, SimpleITK and pynrrd, byte-swapped and scaled data, permuted NRRD axes and
data split over several files; each compared with ``np.asarray(mitk.Image(path))[key]`` for many
random keys.  Geometry of ``crop``; files changed after ``open``; pickling; threads.
"""

from __future__ import annotations

import errno
import os
import pickle
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import mitk
from mitk_testing import join_all, start_thread


def random_key(rng: np.random.Generator, shape: tuple) -> tuple:
    """A random basic index over ``shape``: ints, slices with any step, ``...`` and None."""
    key: list = []
    for n in shape:
        kind = rng.integers(0, 5)
        if kind == 0:
            key.append(int(rng.integers(-n, n)))
        elif kind == 1:
            key.append(slice(None))
        else:
            a, b = sorted(int(v) for v in rng.integers(-n - 1, n + 2, size=2))
            step = int(rng.choice([1, 1, 2, 3, -1, -2, 5]))
            if step < 0:
                a, b = b, a
            key.append(slice(a, b, step))
    if len(key) > 1 and rng.integers(0, 4) == 0:  # an ellipsis standing for the leading axes
        cut = int(rng.integers(1, len(key)))
        key = [Ellipsis] + key[cut:]
    if rng.integers(0, 6) == 0:
        key.insert(int(rng.integers(0, len(key) + 1)), None)
    return tuple(key)


def check_keys(path, count: int = 40, seed: int = 0, **options) -> mitk.LazyImage:
    full = np.asarray(mitk.Image.load(path, **options))
    lz = mitk.open(path, **options)
    assert lz.shape == full.shape and lz.dtype == full.dtype
    rng = np.random.default_rng(seed)
    keys = [random_key(rng, full.shape) for _ in range(count)]
    keys += [(...,), (0,), (-1,), (slice(None, None, -1),), tuple(0 for _ in full.shape)]
    for key in keys:
        got = lz[key]
        want = full[key]
        assert isinstance(got, np.ndarray) and got.flags.writeable, key
        assert got.shape == np.shape(want) and got.dtype == full.dtype, key
        assert got.tobytes() == np.asarray(want).tobytes(), (path, key)
    return lz


def sample(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if not dtype.isnative:
        return sample(dtype.newbyteorder("="), shape, seed).astype(dtype)
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    if dtype.kind == "f":
        out = rng.standard_normal(shape).astype(dtype)
        out.flat[:3] = [np.nan, np.inf, -0.0]
        return out
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)


# -- mitk's own files: every format, encoding, dtype, channels and 4D -------------------------

SAVES = [
    ("x.nrrd", {}), ("x.nrrd", {"compression": "gzip"}), ("x.nrrd", {"compression": "bzip2"}),
    ("x.nhdr", {}), ("x.nhdr", {"compression": "gzip"}),
    ("x.nii", {}), ("x.nii.gz", {}), ("x.hdr", {}),
    ("x.mha", {}), ("x.mha", {"compression": "gzip"}), ("x.mhd", {}),
    ("x.mhd", {"compression": "gzip"}),
]
IMAGES = [
    ("uint8", (5, 6, 7), 1),
    ("int16", (4, 5, 6, 7), 1),
    ("float32", (6, 9), 1),
    ("float64", (5, 6, 7), 3),
    ("int64", (3, 4, 5, 6), 2),
    ("uint8", (4, 6, 5), 3),
    ("complex64", (4, 5, 6), 1),
]


# MetaImage cannot store complex pixels (SPEC 5): those pairs are not generated.
CASES = [(n, o, d, s, c) for n, o in SAVES for d, s, c in IMAGES
         if not (d.startswith("complex") and n.startswith("x.mh"))]


@pytest.mark.parametrize("name, options, dtype, shape, channels", CASES,
                         ids=[f"{n}-{o.get('compression', 'raw')}-{d}-{len(s)}d-c{c}"
                              for n, o, d, s, c in CASES])
def test_own_files_equal_a_full_load(tmp_path, name, options, dtype, shape, channels):
    full_shape = shape + ((channels,) if channels > 1 else ())
    image = mitk.Image(sample(dtype, full_shape), channels=channels if channels > 1 else None,
                       spacing=(0.5, 1.5, 2.0))
    path = tmp_path / name
    image.save(path, **options)
    lz = check_keys(path, count=25, seed=len(shape) * 7 + channels)
    assert lz.format in ("NRRD", "NIfTI", "MetaImage")
    assert lz.ndim == image.ndim and lz.channels == image.channels
    assert lz.nbytes == image.nbytes and lz.time_steps == image.time_steps
    loaded = mitk.Image(path)
    assert lz.spacing == loaded.spacing and lz.origin == loaded.origin
    assert np.array_equal(lz.direction, loaded.direction)


def test_attributes_match_the_loaded_image(tmp_path):
    path = tmp_path / "a.nrrd"
    image = mitk.Image(np.zeros((3, 4, 5, 6), np.int16), spacing=(0.5, 0.75, 2.0),
                       origin=(1.0, -2.0, 3.0))
    image.properties["who"] = "me"
    image.save(path)
    lz = mitk.open(path)
    loaded = mitk.Image(path)
    assert lz.path == str(path) and lz.format == "NRRD"
    assert lz.shape == loaded.shape and lz.time_steps == 3
    assert lz.origin == pytest.approx(loaded.origin)
    assert lz.get_geometry(2) == loaded.get_geometry(2)
    assert lz.time_geometry.count_time_steps() == 3
    assert lz.properties["who"] == "me"
    with pytest.raises(mitk.TimeStepError):
        lz.get_geometry(3)
    with pytest.raises(AttributeError):
        lz.shape = (1, 2, 3)
    assert np.array_equal(lz.load().array, loaded.array)


# -- files of other writers, byte orders, scaling, permutations, split data --------------------

def test_nibabel_files_scaled_and_big_endian(tmp_path):
    nib = pytest.importorskip("nibabel")
    data = sample("int16", (7, 6, 5, 3), seed=3)
    affine = np.diag([-1.5, 2.0, 2.5, 1.0])
    img = nib.Nifti1Image(data, affine)
    img.header.set_slope_inter(0.25, -7.0)
    for name in ("scaled.nii", "scaled.nii.gz"):
        nib.save(img, tmp_path / name)
        check_keys(tmp_path / name, seed=1)
        check_keys(tmp_path / name, seed=2, apply_scaling=False)
    big = nib.Nifti1Image(data.astype(">f4"), affine)
    big.header.set_data_dtype(">f4")
    swapped = nib.Nifti1Image(big.get_fdata().astype(">f4"), affine,
                              header=big.header.as_byteswapped(">"))
    nib.save(swapped, tmp_path / "big.nii")
    with open(tmp_path / "big.nii", "rb") as f:
        assert f.read(4) == (348).to_bytes(4, "big")  # really big-endian
    check_keys(tmp_path / "big.nii", seed=3)


def test_nifti_component_volumes(tmp_path):
    nib = pytest.importorskip("nibabel")
    data = sample("float32", (6, 5, 4, 1, 3), seed=4)  # x, y, z, t, vector components
    img = nib.Nifti1Image(data, np.eye(4))
    img.header.set_intent("vector")
    nib.save(img, tmp_path / "vec.nii")
    lz = check_keys(tmp_path / "vec.nii", seed=4)
    assert lz.channels == 3


def test_simpleitk_files(tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    data = sample("int16", (6, 7, 8), seed=5)
    img = sitk.GetImageFromArray(data)
    img.SetSpacing((0.5, 0.7, 1.1))
    img.SetDirection((0, 1, 0, 1, 0, 0, 0, 0, -1))
    for name, compress in (("s.nrrd", False), ("s.nrrd", True), ("s.mha", True),
                           ("s.nii.gz", True), ("s.mhd", False)):
        sitk.WriteImage(img, str(tmp_path / name), compress)
        check_keys(tmp_path / name, seed=6)
    rgb = sitk.GetImageFromArray(sample("uint8", (4, 5, 6, 3), seed=7), isVector=True)
    sitk.WriteImage(rgb, str(tmp_path / "rgb.nrrd"))
    assert check_keys(tmp_path / "rgb.nrrd", seed=7).channels == 3


def test_pynrrd_files_permuted_big_endian_ascii(tmp_path):
    nrrd = pytest.importorskip("nrrd")
    # A component axis slowest in the file (pynrrd's Fortran order: data[x, y, z, c]).
    data = sample(">u2", (6, 5, 4, 3), seed=8)
    header = {"kinds": ["domain", "domain", "domain", "vector"], "space": "left-posterior-superior",
              "space directions": [[1, 0, 0], [0, 2, 0], [0, 0, 3], [np.nan] * 3],
              "endian": "big"}
    nrrd.write(str(tmp_path / "perm.nrrd"), data, header)
    lz = check_keys(tmp_path / "perm.nrrd", seed=8)
    assert lz.channels == 3 and lz.shape == (4, 5, 6, 3)
    nrrd.write(str(tmp_path / "perm.nrrd"), data, dict(header, encoding="gzip"))
    check_keys(tmp_path / "perm.nrrd", seed=9)
    nrrd.write(str(tmp_path / "text.nrrd"), sample("int16", (5, 4, 3), seed=9),
               {"encoding": "ascii"})
    lz = mitk.open(tmp_path / "text.nrrd")
    check_keys(tmp_path / "text.nrrd", seed=10)
    assert lz.read_cost((0,)) >= os.path.getsize(tmp_path / "text.nrrd") // 2  # a full pass


def _write_slices(tmp_path, data, stem):
    names = []
    for k, plane in enumerate(data):
        name = f"{stem}{k:02d}.raw"
        plane.tofile(tmp_path / name)
        names.append(name)
    return names


def test_nrrd_list_and_pattern_data_files(tmp_path):
    data = sample("<i4", (4, 5, 6), seed=11)
    names = _write_slices(tmp_path, data, "sl")
    head = ("NRRD0004\ntype: int32\ndimension: 3\nsizes: 6 5 4\nendian: little\n"
            "encoding: raw\n")
    (tmp_path / "list.nhdr").write_text(head + "data file: LIST\n" + "\n".join(names) + "\n")
    (tmp_path / "pattern.nhdr").write_text(head + "data file: sl%02d.raw 0 3 1 2\n")
    for name in ("list.nhdr", "pattern.nhdr"):
        lz = check_keys(tmp_path / name, seed=12)
        assert np.array_equal(lz[...], data)
        # one slice reads one file only
        assert lz.read_cost((2,)) == data[0].nbytes


def test_a_region_checks_the_header_and_only_the_data_files_it_reads(tmp_path, monkeypatch):
    data = sample("<i4", (4, 5, 6), seed=14)
    names = _write_slices(tmp_path, data, "sl")
    (tmp_path / "list.nhdr").write_text(
        "NRRD0004\ntype: int32\ndimension: 3\nsizes: 6 5 4\nendian: little\nencoding: raw\n"
        "data file: LIST\n" + "\n".join(names) + "\n")
    lz = mitk.open(tmp_path / "list.nhdr")
    stats = []
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda name, *a, **k: stats.append(os.fspath(name))
                        or real_stat(name, *a, **k))
    assert np.array_equal(lz[1], data[1])
    assert stats == [str(tmp_path / "list.nhdr")]  # one stat, not one per slice file
    monkeypatch.undo()
    os.truncate(tmp_path / names[3], 8)
    # the other slices are still what the files hold; the changed one, or a full load, is not
    assert np.array_equal(lz[:3], data[:3])
    for key in [(3,), (slice(2, 4),), (..., 0)]:
        with pytest.raises(mitk.CorruptFileError, match="sl03"):
            lz[key]
    with pytest.raises(mitk.CorruptFileError):
        lz.load()
    with pytest.raises(mitk.CorruptFileError):
        lz[4:]  # empty: reads nothing, but the change is reported
    (tmp_path / "list.nhdr").write_text("NRRD0004\n")
    with pytest.raises(mitk.CorruptFileError, match="list.nhdr"):
        lz[0]  # the header is always checked


def test_metaimage_list_pattern_big_endian_and_ascii(tmp_path):
    data = sample(">f8", (3, 4, 5), seed=13)
    names = _write_slices(tmp_path, data, "m")
    head = ("ObjectType = Image\nNDims = 3\nDimSize = 5 4 3\nElementType = MET_DOUBLE\n"
            "BinaryData = True\nBinaryDataByteOrderMSB = True\n")
    (tmp_path / "list.mhd").write_text(head + "ElementDataFile = LIST\n" + "\n".join(names)
                                       + "\n")
    (tmp_path / "pattern.mhd").write_text(head + "ElementDataFile = m%02d.raw 0 2 1\n")
    for name in ("list.mhd", "pattern.mhd"):
        assert np.array_equal(check_keys(tmp_path / name, seed=14)[...], data, equal_nan=True)
    values = sample("int16", (3, 4, 5), seed=15)
    text = " ".join(str(v) for v in values.ravel())
    (tmp_path / "text.mha").write_text(
        "NDims = 3\nDimSize = 5 4 3\nElementType = MET_SHORT\nBinaryData = False\n"
        "ElementDataFile = LOCAL\n" + text + "\n")
    assert np.array_equal(check_keys(tmp_path / "text.mha", seed=16)[...], values)


# -- crop ----------------------------------------------------------------------------------

def _corners(shape_xyz):
    return [tuple((n - 1) * ((c >> b) & 1) for b, n in enumerate(shape_xyz))
            for c in range(1 << len(shape_xyz))]


@pytest.mark.parametrize("key", [
    (slice(1, 9, 2), slice(None, None, -1), slice(6, 1, -3)),
    (slice(None), slice(2, 3), slice(None, None, -2)),
    (slice(8, None, -4),),
    (..., slice(3, 5)),
])
def test_crop_places_every_corner_where_it_was(tmp_path, key):
    direction = np.array([[0.0, 0.8, -0.6], [1.0, 0.0, 0.0], [0.0, 0.6, 0.8]])
    image = mitk.Image(sample("float32", (10, 7, 8)), spacing=(0.5, 1.25, 2.0),
                       origin=(10.0, -4.0, 7.5), direction=direction)
    image.save(tmp_path / "c.nii")
    lz = mitk.open(tmp_path / "c.nii")
    crop = lz.crop(key)
    full = np.asarray(mitk.Image(tmp_path / "c.nii"))
    assert np.array_equal(crop.array, full[key], equal_nan=True)
    # Where each voxel of the crop came from: index arrays cropped with the same key.
    zz, yy, xx = np.meshgrid(*(np.arange(n) for n in full.shape), indexing="ij")
    src = [a[key] for a in (xx, yy, zz)]
    loaded = mitk.Image(tmp_path / "c.nii")
    for corner in _corners(crop.array.shape[::-1]):
        i, j, k = corner
        origin_index = tuple(float(s[k, j, i]) for s in src)
        np.testing.assert_allclose(crop.index_to_world(tuple(float(v) for v in corner)),
                                   loaded.index_to_world(origin_index), atol=1e-4)


def test_crop_of_time_ranges_and_channels(tmp_path):
    image = mitk.Image(sample("int16", (6, 3, 4, 5, 2)), channels=2, spacing=(1, 2, 3))
    tg = mitk.ProportionalTimeGeometry.from_geometry(image.get_geometry(0), 6,
                                                     first_time_point=100.0, step_duration=20.0)
    image.set_time_geometry(tg)
    image.save(tmp_path / "t.nrrd")
    lz = mitk.open(tmp_path / "t.nrrd")
    crop = lz.crop((slice(1, 6, 2), slice(None), slice(None, None, -1), slice(1, 4), slice(1, 2)))
    assert crop.channels == 1 and crop.shape == (3, 3, 4, 3) and crop.time_steps == 3
    assert np.array_equal(crop.array, np.asarray(mitk.Image(tmp_path / "t.nrrd"))[
        1:6:2, :, ::-1, 1:4, 1])
    ctg = crop.time_geometry
    for t, original in enumerate((1, 3, 5)):
        assert ctg.time_step_to_time_point(t) == pytest.approx(
            tg.time_step_to_time_point(original))
    with pytest.raises(TypeError):
        lz.crop((0,))
    with pytest.raises(mitk.ArgumentError):
        lz.crop((slice(None, None, -1),))  # time cannot run backwards
    with pytest.raises(mitk.ArgumentError):
        lz.crop((slice(2, 2),))


@pytest.mark.parametrize("sizes, kinds", [
    ("1 2 4", "domain complex domain"),  # every axis faster than the pairs has size 1
    ("1 1 2 4", "domain domain complex domain"),
    ("3 2 4", "domain complex domain"),
    ("2 1 4", "complex domain domain")])
def test_nrrd_complex_pairs_on_any_axis(tmp_path, sizes, kinds):
    n = int(np.prod([int(v) for v in sizes.split()]))
    values = np.arange(1, n + 1, dtype=np.float32)
    path = tmp_path / "c.nrrd"
    path.write_bytes(f"NRRD0005\ntype: float\ndimension: {len(sizes.split())}\nsizes: {sizes}\n"
                     f"kinds: {kinds}\nencoding: raw\nendian: little\n\n".encode()
                     + values.tobytes())
    full = np.asarray(mitk.Image(path))
    assert full.dtype == np.complex64
    lz = mitk.open(path)
    for key in (..., 0, -1, (slice(None), 0), (slice(None, None, -1),)):
        got = lz[key]
        assert got.dtype == full.dtype and np.array_equal(got, full[key]), key


# -- errors, changes after open, pickling, threads ------------------------------------------------

def test_bad_keys_and_files(tmp_path):
    mitk.Image(np.zeros((3, 4, 5), np.uint8)).save(tmp_path / "e.nrrd")
    lz = mitk.open(tmp_path / "e.nrrd")
    for key in ((3,), (0, 0, 0, 0), (..., ...), (np.array([0, 1]),), (True,), (1.5,),
                (None,) * 62):  # the last: 65 axes, more than NumPy makes
        with pytest.raises(IndexError):
            lz[key]
    assert lz[(None,) * 61].shape == (1,) * 61 + (3, 4, 5)
    assert lz[0:0].shape == (0, 4, 5)
    assert lz.read_cost((slice(0, 0),)) == 0
    with pytest.raises(FileNotFoundError):
        mitk.open(tmp_path / "missing.nrrd")
    (tmp_path / "x.unknown").write_bytes(b"x")
    with pytest.raises(mitk.UnsupportedFormatError):
        mitk.open(tmp_path / "x.unknown")
    with pytest.raises(TypeError):
        mitk.open(tmp_path / "e.nrrd", apply_scaling=False)
    (tmp_path / "series").mkdir()
    with pytest.raises(mitk.UnsupportedFormatError, match="DICOM"):
        mitk.open(tmp_path / "series")  # DICOM is read whole (mitk.Image, mitk.dicom)
    (tmp_path / "short.nrrd").write_bytes(
        b"NRRD0004\ntype: uint8\ndimension: 2\nsizes: 4 4\nencoding: raw\n\n" + bytes(10))
    with pytest.raises(mitk.CorruptFileError):
        mitk.open(tmp_path / "short.nrrd")  # the data size is checked at open


@pytest.mark.parametrize("name, options", [("c.nii", {}), ("c.nii.gz", {}), ("c.nhdr", {}),
                                           ("c.mha", {"compression": "gzip"})])
def test_a_file_changed_after_open_is_corrupt(tmp_path, name, options):
    path = tmp_path / name
    mitk.Image(sample("int16", (6, 7, 8))).save(path, **options)
    lz = mitk.open(path)
    lz[1]
    data = tmp_path / "c.raw" if name == "c.nhdr" else path
    size = os.path.getsize(data)
    os.truncate(data, size // 2)
    with pytest.raises(mitk.CorruptFileError):
        lz[5]
    with pytest.raises(mitk.CorruptFileError):
        lz.load()
    # rewritten with the same size: still not the file that was opened
    mitk.Image(sample("int16", (6, 7, 8), seed=1)).save(path, **options)
    with pytest.raises(mitk.CorruptFileError):
        lz[0]
    with pytest.raises(mitk.CorruptFileError):
        pickle.loads(pickle.dumps(lz))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
@pytest.mark.parametrize("name, data", [("f.nii", "f.nii"), ("f.nhdr", "f.raw")])
def test_a_data_file_replaced_by_a_fifo_is_corrupt_not_a_hang(tmp_path, name, data):
    mitk.Image(sample("int16", (6, 7, 8))).save(tmp_path / name)
    lz = mitk.open(tmp_path / name)
    os.replace(tmp_path / data, tmp_path / "old")
    os.mkfifo(tmp_path / data)
    errors: list = []
    reader = start_thread(lambda: errors.append(pytest.raises(mitk.CorruptFileError,
                                                              lz.__getitem__, 0)))
    reader.join(20)
    if reader.is_alive():  # blocked opening the FIFO: a writer lets it go, then fail
        os.close(os.open(tmp_path / data, os.O_WRONLY))
        reader.join(20)
        pytest.fail("reading a region waited for a writer of the FIFO")
    assert len(errors) == 1, errors


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets on this platform")
@pytest.mark.parametrize("pread", [True, False])
@pytest.mark.parametrize("name, data", [("s.nii", "s.nii"), ("s.nhdr", "s.raw")])
def test_a_data_file_replaced_by_a_socket_is_corrupt(tmp_path, monkeypatch, name, data, pread):
    # open() of a socket fails with ENXIO: another file, as for the compiled reads (a slice
    # read again, a new slice, a y-plane) so for the Python ones a platform without pread takes.
    from mitk._core import _positioned

    arr = sample("int16", (6, 7, 8))
    mitk.Image(arr).save(tmp_path / name)
    lz = mitk.open(tmp_path / name)
    assert np.array_equal(lz[1], arr[1])
    if not pread:
        monkeypatch.setattr(_positioned, "HAVE_PREAD", False)
        lz = mitk.open(tmp_path / name)
    os.replace(tmp_path / data, tmp_path / "old")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / data))
        for key in (1, 2, (slice(None), 3)):
            with pytest.raises(mitk.CorruptFileError, match="replaced"):
                lz[key]


@pytest.mark.parametrize("key", [(slice(None), -1), -1])
def test_truncation_between_the_check_and_the_read_is_caught(tmp_path, monkeypatch, key):
    # A y-plane's rows and a z-slice's one run, through the Python path a platform without
    # positioned reads takes (the compiled calls that open, check and read at once are tested
    # in tests/io/test_raw_runs.py).
    path = tmp_path / "r.nii"
    mitk.Image(sample("float32", (6, 7, 8))).save(path)
    lz = mitk.open(path)
    from mitk._core import _positioned
    from mitk.io import _regions

    monkeypatch.setattr(_positioned, "HAVE_PREAD", False)
    real = _regions._open_checked

    def truncate_then_open(stored, piece):
        fd = real(stored, piece)
        os.truncate(path, 400)
        return fd

    monkeypatch.setattr(_regions, "_open_checked", truncate_then_open)
    with pytest.raises(mitk.CorruptFileError, match="data end at byte"):
        lz[key]


def test_text_data_replaced_after_the_check_is_not_read(tmp_path, monkeypatch):
    (tmp_path / "t.nhdr").write_text("NRRD0004\ntype: int16\ndimension: 2\nsizes: 3 2\n"
                                     "encoding: ascii\ndata file: t.txt\n")
    (tmp_path / "t.txt").write_text("1 2 3\n4 5 6\n")
    lz = mitk.open(tmp_path / "t.nhdr")
    from mitk.io import _regions

    real = _regions._open_checked

    def replace_after_the_check(stored, piece):
        fd = real(stored, piece)
        (tmp_path / "new.txt").write_text("7 7 7\n7 7 7\n")
        os.replace(tmp_path / "new.txt", tmp_path / "t.txt")
        return fd

    monkeypatch.setattr(_regions, "_open_checked", replace_after_the_check)
    # the file that was checked is the file that is parsed
    assert lz[1].tolist() == [4, 5, 6]


def test_pickled_lazy_image_reads_in_a_child_process(tmp_path):
    path = tmp_path / "p.nii.gz"
    mitk.Image(sample("int16", (5, 6, 7))).save(path)
    lz = mitk.open(path)
    blob = pickle.dumps(lz)
    assert len(blob) < 2000  # path, options and identities, never pixels
    want = lz[2, ::2].tobytes().hex()
    script = textwrap.dedent(f"""
        import pickle, sys
        lz = pickle.loads(bytes.fromhex({blob.hex()!r}))
        sys.stdout.write(lz[2, ::2].tobytes().hex())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout == want


def _positioned_reads() -> bool:
    from mitk._core import _positioned

    return _positioned.HAVE_PREAD


def test_four_threads_read_random_regions(tmp_path):
    path = tmp_path / "th.nii.gz"
    mitk.Image(sample("int16", (12, 20, 24), seed=3)).save(path, )
    for name, opts in (("th.nii.gz", {}), ("th.nrrd", {}), ("th.mha", {"compression": "gzip"})):
        mitk.Image(sample("int16", (12, 20, 24), seed=3)).save(tmp_path / name, **opts)
    failures: list = []

    def reader(name, seed):
        try:
            full = np.asarray(mitk.Image(tmp_path / name))
            lz = shared[name]
            rng = np.random.default_rng(seed)
            for _ in range(30):
                key = random_key(rng, full.shape)
                if lz[key].tobytes() != full[key].tobytes():
                    failures.append((name, key))
        except BaseException as exc:  # reported below, in the main thread
            failures.append(exc)

    shared = {n: mitk.open(tmp_path / n) for n in ("th.nii.gz", "th.nrrd", "th.mha")}
    threads = [start_thread(reader, name, seed) for seed, name in
               enumerate(["th.nii.gz", "th.nii.gz", "th.nrrd", "th.mha"])]
    join_all(threads)
    assert not failures, failures[:3]


def test_threads_reading_keys_again_while_the_kept_plans_are_dropped(tmp_path, monkeypatch):
    # Few plans kept, so the dicts are emptied often while other threads look keys up in them
    # (and set them): every read must still be its key's region.
    from mitk import lazy

    monkeypatch.setattr(lazy, "_KEPT_PLANS", 4)
    data = sample("int16", (10, 12, 14), seed=5)
    mitk.Image(data).save(tmp_path / "k.nii")
    lz = mitk.open(tmp_path / "k.nii")
    keys = ([z for z in range(10)] + [(z, slice(2, 9)) for z in range(10)]
            + [(slice(None), y) for y in range(12)] + [(slice(1, 8), slice(3, 9), 4)])
    failures: list = []

    def reader(seed):
        try:
            rng = np.random.default_rng(seed)
            for i in rng.integers(0, len(keys), 300).tolist():
                if not np.array_equal(lz[keys[i]], data[keys[i]]):
                    failures.append(keys[i])
        except BaseException as exc:  # reported below, in the main thread
            failures.append(exc)

    join_all([start_thread(reader, seed) for seed in range(4)])
    assert not failures, failures[:3]
    # each of the 4 threads may add one after another found the dict not yet full
    assert len(lz._key_plans) <= 4 + 3 and len(lz._box_plans) <= 4 + 3


def test_a_key_read_again_reuses_its_plan_and_gives_a_new_array(tmp_path, monkeypatch):
    from mitk import _lazy_keys, lazy
    from mitk.io import _regions

    data = sample("int16", (4, 6, 7, 8), seed=21)
    mitk.Image(data).save(tmp_path / "again.nii")
    lz = mitk.open(tmp_path / "again.nii")
    rng = np.random.default_rng(21)
    short = [(1,), 1, (2, 3), (-1, 0, 5), (slice(1, 3),), (2, slice(None), 4)]
    keys = [random_key(rng, data.shape) for _ in range(60)] + short
    for key in keys * 2:  # the second time from the kept plans
        got = lz[key]
        want = np.asarray(data[key])
        assert got.shape == want.shape and got.tobytes() == want.tobytes(), key
        got[...] = 7  # a new array each time: the next read is not affected
    planned, normalized = [], []
    real, real_normalize = _regions.plan_box, _lazy_keys.normalize
    monkeypatch.setattr(_regions, "plan_box", lambda *a: planned.append(a) or real(*a))
    monkeypatch.setattr(_lazy_keys, "normalize",
                        lambda *a: normalized.append(a) or real_normalize(*a))
    for key in short:
        assert np.array_equal(lz[key], data[key]), key
    assert planned == [] and normalized == []  # found by the key itself, slices too
    # Equal to a kept int key as dict keys, yet not indices: refused as before.
    for bad in (True, (True,), (1.0,), (np.float64(1.0),), (1, False)):
        with pytest.raises(IndexError):
            lz[bad]
    assert np.array_equal(lz[np.int64(1)], data[1])
    assert np.array_equal(lz[(np.int64(2), 3)], data[2, 3])
    # Slices are kept by their parts, and only when those are exact ints (or None).
    with pytest.raises(TypeError):
        lz[slice(1.0, 3)]
    with pytest.raises(IndexError):
        lz[2, slice(None), 4.0]
    assert np.array_equal(lz[slice(True, 3)], data[1:3])
    assert np.array_equal(lz[(2, slice(np.int64(0), None), 4)], data[2, :, 4])
    # NumPy integers are the ints they are (a loop over np.arange): kept, and found again
    for again in (False, True):
        normalized.clear()
        for z in np.arange(3, dtype=np.uint8):
            assert np.array_equal(lz[z], data[z]) and np.array_equal(lz[(z, -1)], data[z, -1])
        assert not again or normalized == []
    assert np.array_equal(lz[np.int32(2)], data[2]) and normalized == []
    for bad in (np.bool_(True), (np.bool_(True), 0)):
        with pytest.raises(IndexError):
            lz[bad]
    # At most _KEPT_PLANS are kept of each kind.
    monkeypatch.setattr(lazy, "_KEPT_PLANS", 8)
    for t in range(4):
        for z in range(6):
            assert np.array_equal(lz[t, z], data[t, z])
            assert np.array_equal(lz[t:t + 1, z], data[t:t + 1, z])
    assert 0 < len(lz._key_plans) <= 8 and 0 < len(lz._box_plans) <= 8


@pytest.mark.skipif(not _positioned_reads(), reason="no pread on this platform")
def test_a_raw_slice_is_read_by_its_kept_compiled_call_and_only_where_that_is_the_same(
        tmp_path, monkeypatch):
    from mitk import lazy
    from mitk.io import _regions

    vol = sample("int16", (5, 6, 7), seed=8)
    frames = sample("float32", (3, 4, 5, 6), seed=9)
    rgb = sample("uint8", (4, 5, 6, 3), seed=10)
    cases = {  # name: (pixels, save options, whether a slice is one compiled call)
        "v.nii": (vol, {}, True), "v.nrrd": (vol, {}, True), "v.mha": (vol, {}, True),
        "f.nii": (frames, {}, True), "c.nrrd": (rgb, {}, True),
        "v.nhdr": (vol, {}, False),  # its header is checked too
        "v.nii.gz": (vol, {}, False),  # not raw
    }
    for name, (pixels, options, compiled) in cases.items():
        mitk.Image(pixels, channels=3 if pixels is rgb else None).save(tmp_path / name,
                                                                       **options)
    # Big-endian raw data: swapped after the read, so not the compiled call's array.
    (tmp_path / "be.nrrd").write_bytes(
        b"NRRD0004\ntype: int16\ndimension: 3\nsizes: 7 6 5\nendian: big\nencoding: raw\n\n"
        + vol.astype(">i2").tobytes())
    cases["be.nrrd"] = (vol, {}, False)
    general: list = []
    real = _regions.read_planned
    monkeypatch.setattr(lazy._regions, "read_planned",
                        lambda *a: general.append(a) or real(*a))
    for name, (pixels, _, compiled) in cases.items():
        lz = mitk.open(tmp_path / name)
        for key in (1, (2,), (-1,), np.int64(0), (1, 2), (0, -1, 3)):
            for _ in range(2):
                general.clear()
                got = lz[key]
                assert got.shape == pixels[key].shape and got.dtype == pixels.dtype
                assert got.tobytes() == np.ascontiguousarray(pixels[key]).tobytes(), (name, key)
                assert got.flags.c_contiguous and got.flags.writeable
                got[...] = 0  # the caller's: the next read is not affected
                assert (general == []) == compiled, (name, key)
        direct = [entry[4] for entry in lz._key_plans.values()]
        assert all(d is not None for d in direct) if compiled else direct == [None] * len(direct)
    # A region that is not one run (a y-plane) has no compiled run; a key with ... no kept one.
    lz = mitk.open(tmp_path / "v.nii")
    assert np.array_equal(lz[:, 1], vol[:, 1]) and np.array_equal(lz[1, ...], vol[1])
    assert [entry[4] for entry in lz._key_plans.values()] == [None]


def test_a_data_file_whose_directory_became_a_file_is_corrupt(tmp_path):
    data = sample("int16", (4, 5, 6), seed=3)
    (tmp_path / "d").mkdir()
    (tmp_path / "h.nhdr").write_text(
        "NRRD0004\ntype: int16\ndimension: 3\nsizes: 6 5 4\nendian: little\nencoding: raw\n"
        "data file: d/x.raw\n")
    (tmp_path / "d" / "x.raw").write_bytes(data.astype("<i2").tobytes())
    lz = mitk.open(tmp_path / "h.nhdr")
    assert np.array_equal(lz[1], data[1])
    (tmp_path / "d").rename(tmp_path / "old")
    (tmp_path / "d").write_bytes(b"x")
    with pytest.raises(mitk.CorruptFileError):
        lz[1]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links on this platform")
@pytest.mark.parametrize("name, data, options", [
    ("l.nii", "l.nii", {}), ("l.nhdr", "l.raw", {}), ("l.nii.gz", "l.nii.gz", {}),
    ("l.nrrd", "l.nrrd", {"compression": "gzip"})])
def test_a_file_replaced_by_a_loop_of_symbolic_links_is_corrupt(tmp_path, name, data, options):
    # The open fails with ELOOP, not ENOENT: still "gone since it was opened", on every path
    # (a slice, rows of every plane, the general plan, a block cached from an earlier read).
    arr = sample("int16", (6, 70, 80))
    mitk.Image(arr).save(tmp_path / name, **options)
    lz = mitk.open(tmp_path / name)
    assert np.array_equal(lz[2], arr[2])
    os.unlink(tmp_path / data)
    os.symlink(data, tmp_path / data)
    for key in ((2,), (3,), (slice(None), 5), (slice(1, 4), slice(2, 9), slice(3, 7)),
                (slice(None, None, 2), slice(None, None, 3))):
        with pytest.raises(mitk.CorruptFileError, match="gone"):
            lz[key]
    with pytest.raises(mitk.CorruptFileError):
        lz.load()
    # opening it again says what is there: the loop's own OSError (DESIGN: OS errors other
    # than a missing file as they are), not "no such file"; for a data file, the header's
    # error naming it
    for read in (mitk.open, mitk.Image):
        with pytest.raises((OSError, mitk.CorruptFileError)) as caught:
            read(tmp_path / name)
        if name == "l.nhdr":
            assert "symbolic links" in str(caught.value)
        else:
            assert caught.value.errno == errno.ELOOP


def test_a_path_through_a_file_is_missing(tmp_path):
    (tmp_path / "f.bin").write_bytes(b"x")
    for read in (mitk.open, mitk.Image):
        with pytest.raises(FileNotFoundError):
            read(tmp_path / "f.bin" / "x.nii")


def test_the_cost_of_text_data_needs_no_file(tmp_path):
    (tmp_path / "t.nhdr").write_text("NRRD0004\ntype: int16\ndimension: 2\nsizes: 3 2\n"
                                     "encoding: ascii\ndata file: t.txt\n")
    (tmp_path / "t.txt").write_text("1 2 3\n4 5 6\n")
    lz = mitk.open(tmp_path / "t.nhdr")
    os.unlink(tmp_path / "t.txt")
    assert lz.read_cost(1) == 12  # all of the text, as recorded at open
    with pytest.raises(mitk.CorruptFileError, match="gone"):
        lz[1]


def test_a_data_file_removed_by_a_save_between_the_check_and_the_read(tmp_path):
    # A save of a detached pair deletes the old data file: a region read that passed the
    # identity check just before finds it gone, which is the same "changed since open" error.
    path = tmp_path / "gone.nhdr"
    mitk.Image(sample("int16", (4, 5, 6))).save(path)
    lz = mitk.open(path)
    os.unlink(tmp_path / "gone.raw")
    from mitk.io import _regions

    with pytest.raises(mitk.CorruptFileError, match="gone"):
        box = [(0, 1, 1), (0, 5, 1), (0, 6, 1)]
        _regions.read_planned(lz._d.stored, _regions.plan_box(lz._d.stored, box))
    with pytest.raises(mitk.CorruptFileError):
        lz[0]
