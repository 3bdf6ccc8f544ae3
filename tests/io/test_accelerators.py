"""The optional deflate accelerators (isal, zlib-ng) write and read the same formats as zlib.

These tests run where the accelerators are installed (CI installs them for one interpreter and
runs this module again); elsewhere they are skipped with the reason.
"""

import gzip
import importlib.util
import zlib

import numpy as np
import pytest
from mitk_testing import sample_array

import mitk
from mitk.io._streams import deflate_backend
from mitk.io import _streams

BACKENDS = [
    pytest.param("isal", marks=pytest.mark.skipif(
        importlib.util.find_spec("isal") is None, reason="isal is not installed")),
    pytest.param("zlib-ng", marks=pytest.mark.skipif(
        importlib.util.find_spec("zlib_ng") is None, reason="zlib-ng is not installed")),
    "zlib",
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,opts", [("a.nii.gz", {}), ("a.nrrd", {"compression": "gzip"}),
                                       ("a.mha", {"compression": "gzip"}),
                                       ("a.nhdr", {"compression": "gzip"})])
def test_round_trip_with_each_backend(tmp_path, backend, name, opts):
    arr = sample_array(np.int16, (5, 64, 48))
    path = tmp_path / name
    with deflate_backend(backend):
        assert _streams.accelerator() == backend
        mitk.Image(arr).save(path, **opts)
        np.testing.assert_array_equal(mitk.Image(path).as_numpy(), arr)
    # Read back with plain zlib: the accelerators write the standard stream format.
    with deflate_backend("zlib"):
        np.testing.assert_array_equal(mitk.Image(path).as_numpy(), arr)


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_backend_reads_what_plain_gzip_wrote(tmp_path, backend):
    arr = sample_array(np.float32, (3, 40, 30))
    mitk.Image(arr).save(tmp_path / "a.nii")
    (tmp_path / "b.nii.gz").write_bytes(gzip.compress((tmp_path / "a.nii").read_bytes(), 6))
    with deflate_backend(backend):
        np.testing.assert_array_equal(mitk.Image(tmp_path / "b.nii.gz").as_numpy(), arr)


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_backend_reports_corrupt_streams(tmp_path, backend):
    arr = sample_array(np.uint8, (4, 64, 64))
    path = tmp_path / "a.nii.gz"
    mitk.Image(arr).save(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    with deflate_backend(backend), pytest.raises(mitk.CorruptFileError, match="a.nii.gz"):
        mitk.Image(path)


def test_plain_zlib_stream_is_standard(tmp_path):
    # What the zlib backend writes is decodable by the standard library alone.
    arr = sample_array(np.int16, (2, 16, 16))
    with deflate_backend("zlib"):
        mitk.Image(arr).save(tmp_path / "a.nii.gz")
    raw = zlib.decompress((tmp_path / "a.nii.gz").read_bytes(), 31)
    assert raw[-arr.nbytes:] == arr.tobytes()


def _mha(path, stream, dims):
    path.write_bytes(
        b"ObjectType = Image\nNDims = 3\nDimSize = %d %d %d\nElementType = MET_USHORT\n"
        b"BinaryData = True\nCompressedData = True\nCompressedDataSize = %d\n"
        b"ElementDataFile = LOCAL\n" % (*dims, len(stream)) + stream)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("extra", [1, 10, 5000, 300_000])
def test_each_backend_ignores_bytes_the_stream_holds_past_the_data(tmp_path, backend, extra):
    # SPEC 6.2: what follows the declared payload is ignored.  isal's decoder holds output it
    # decoded past what was asked, with no input left: it is asked for it, not taken for a
    # stream with no end.
    vol = np.arange(8 * 16 * 16, dtype=np.uint16).reshape(8, 16, 16)
    more = np.random.default_rng(extra).integers(0, 256, extra, dtype=np.uint8).tobytes()
    _mha(tmp_path / "a.mha", zlib.compress(vol.tobytes() + more), (16, 16, 8))
    # NRRD: the data after a byte skip, and its last bytes found by counting (byte skip -1)
    skipped = gzip.compress(b"\x07" * 7 + vol.tobytes() + more)
    (tmp_path / "a.nrrd").write_bytes(
        b"NRRD0004\ntype: uint16\ndimension: 3\nsizes: 16 16 8\nendian: little\n"
        b"encoding: gzip\nbyte skip: 7\n\n" + skipped)
    (tmp_path / "last.nrrd").write_bytes(
        b"NRRD0004\ntype: uint16\ndimension: 3\nsizes: 16 16 8\nendian: little\n"
        b"encoding: gzip\nbyte skip: -1\n\n" + gzip.compress(more + vol.tobytes()))
    with deflate_backend(backend):
        for name in ("a.mha", "a.nrrd", "last.nrrd"):
            np.testing.assert_array_equal(mitk.Image(tmp_path / name).as_numpy(), vol, name)
            np.testing.assert_array_equal(mitk.open(tmp_path / name).load().as_numpy(), vol)


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_backend_reports_a_stream_with_no_end(tmp_path, backend):
    vol = np.arange(8 * 16 * 16, dtype=np.uint16).reshape(8, 16, 16)
    more = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    whole = zlib.compress(vol.tobytes() + more)
    # cut inside the (incompressible) bytes past the data, or its checksum: the data is there,
    # the end of the stream is not
    for cut in (len(whole) - 2, len(whole) - 30, len(whole) - 3000):
        _mha(tmp_path / "a.mha", whole[:cut], (16, 16, 8))
        with deflate_backend(backend), pytest.raises(mitk.CorruptFileError, match="truncated"):
            mitk.Image(tmp_path / "a.mha")
    (tmp_path / "last.nrrd").write_bytes(
        b"NRRD0004\ntype: uint16\ndimension: 3\nsizes: 16 16 8\nendian: little\n"
        b"encoding: gzip\nbyte skip: -1\n\n" + gzip.compress(more + vol.tobytes())[:-8])
    with deflate_backend(backend), pytest.raises(mitk.CorruptFileError, match="truncated"):
        mitk.Image(tmp_path / "last.nrrd")
