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
