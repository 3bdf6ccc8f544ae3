"""Streaming decompression into a buffer and compression from one: exact sizes, no bombs."""

import bz2
import gzip
import io
import zlib

import numpy as np
import pytest

from mitk.errors import ArgumentError, CorruptFileError
from mitk.io import _codecs, _parallel_deflate as _blocks, _streams

PAYLOAD = np.random.default_rng(3).integers(0, 40, 400_000, dtype=np.int16).tobytes()
_CACHE: dict = {}


def _cached(fn):
    # Compressing the same payload once per codec keeps the module fast (bzip2 is slow).
    def compress(data):
        key = (fn, len(data), hash(data))
        if key not in _CACHE:
            _CACHE[key] = fn(data)
        return _CACHE[key]

    return compress


COMPRESSORS = {"gzip": _cached(gzip.compress), "zlib": _cached(zlib.compress),
               "bzip2": _cached(bz2.compress)}


def _decompress(blob, size, codec, **kw):
    out = bytearray(size)
    _streams.decompress_into(io.BytesIO(blob), memoryview(out), codec, path="f", **kw)
    return bytes(out)


@pytest.mark.parametrize("codec", sorted(COMPRESSORS))
def test_exact_round_trip(codec):
    assert _decompress(COMPRESSORS[codec](PAYLOAD), len(PAYLOAD), codec) == PAYLOAD
    f = io.BytesIO()
    n = _streams.compress_from(f, memoryview(PAYLOAD), codec, level=1)
    assert n == len(f.getvalue())
    assert _decompress(f.getvalue(), len(PAYLOAD), codec) == PAYLOAD


@pytest.mark.parametrize("codec", ["gzip", "bzip2"])
def test_multi_member_streams(codec):
    comp = COMPRESSORS[codec]
    blob = comp(PAYLOAD[:777]) + comp(PAYLOAD[777:100_000]) + comp(PAYLOAD[100_000:])
    assert _decompress(blob, len(PAYLOAD), codec) == PAYLOAD


@pytest.mark.parametrize("codec", sorted(COMPRESSORS))
def test_what_follows_the_payload_is_ignored(codec):
    # SPEC 6.2: the reader stops after the declared payload (teem and nifti_clib do the same);
    # real files carry more decompressed bytes, or bytes after the member.
    blob = COMPRESSORS[codec](PAYLOAD)
    assert _decompress(blob, len(PAYLOAD) - 1, codec) == PAYLOAD[:-1]
    assert _decompress(blob, 1000, codec) == PAYLOAD[:1000]
    assert _decompress(blob + b"\n", len(PAYLOAD), codec) == PAYLOAD
    assert _decompress(blob + b"junk" * 1000, len(PAYLOAD), codec) == PAYLOAD


@pytest.mark.parametrize("codec", sorted(COMPRESSORS))
def test_a_damaged_stream_that_still_yields_the_payload_fails_its_checksum(codec):
    # The member is finished after the payload (within a bound), so its checksum is checked.
    blob = bytearray(COMPRESSORS[codec](PAYLOAD + b"tail"))
    trailer = {"gzip": 8, "zlib": 4, "bzip2": 1}[codec]
    if codec == "bzip2":
        blob[-6] ^= 1  # the stream CRC, before the final padding byte
    else:
        blob[-trailer] ^= 1
    with pytest.raises(CorruptFileError):
        _decompress(bytes(blob), len(PAYLOAD), codec)


@pytest.mark.parametrize("codec", sorted(COMPRESSORS))
def test_shorter_stream_is_refused(codec):
    with pytest.raises(CorruptFileError, match="ends after"):
        _decompress(COMPRESSORS[codec](PAYLOAD), len(PAYLOAD) + 1, codec)


@pytest.mark.parametrize("codec", sorted(COMPRESSORS))
@pytest.mark.parametrize("cut", [0.1, 0.5, 0.99])
def test_truncated_stream(codec, cut):
    blob = COMPRESSORS[codec](PAYLOAD)
    with pytest.raises(CorruptFileError):
        _decompress(blob[: int(len(blob) * cut)], len(PAYLOAD), codec)


@pytest.mark.parametrize("codec", sorted(COMPRESSORS))
def test_garbage(codec):
    with pytest.raises(CorruptFileError, match="invalid"):
        _decompress(b"this is not compressed at all" * 10, 100, codec)


def test_a_missing_trailer_is_still_an_error():
    blob = gzip.compress(PAYLOAD)
    with pytest.raises(CorruptFileError, match="truncated"):
        _decompress(blob[:-8], len(PAYLOAD), "gzip")


@pytest.mark.parametrize("codec", sorted(COMPRESSORS))
def test_skip(codec):
    blob = COMPRESSORS[codec](PAYLOAD)
    assert _decompress(blob, len(PAYLOAD) - 100, codec, skip=100) == PAYLOAD[100:]
    assert _decompress(blob, 1000, codec, skip=5) == PAYLOAD[5:1005]


def test_bomb_check():
    _streams.check_compressed_size(1032 * 1000, 1000, "gzip", path="f")
    with pytest.raises(CorruptFileError, match="1032"):
        _streams.check_compressed_size(10**12, 1000, "gzip", path="f")
    _streams.check_compressed_size(10**12, 1000, "bzip2", path="f")  # bzip2 has no fixed bound


def test_a_bomb_never_expands_past_the_declared_size(monkeypatch):
    # 64 MiB of zeros in ~64 KiB, read as 1 MiB: at most a bounded amount more is decompressed.
    produced = []
    real = _codecs.new_decompressor

    class Counting:
        def __init__(self, codec):
            self._d = real(codec)

        def decompress(self, data, max_length=0):
            out = self._d.decompress(data, max_length)
            produced.append(len(out))
            return out

        def __getattr__(self, name):
            return getattr(self._d, name)

    monkeypatch.setattr(_codecs, "new_decompressor", Counting)
    assert _decompress(gzip.compress(bytes(64 << 20)), 1 << 20, "gzip") == bytes(1 << 20)
    assert sum(produced) <= 4 << 20


def test_read_exact_into():
    out = bytearray(10)
    _streams.read_exact_into(io.BytesIO(b"0123456789abc"), memoryview(out), path="f")
    assert out == b"0123456789"
    with pytest.raises(CorruptFileError, match="truncated.*expected 10 bytes, found 4"):
        _streams.read_exact_into(io.BytesIO(b"0123"), memoryview(bytearray(10)), path="f")


def test_levels():
    assert _streams.validate_level(None, "gzip") == 1
    assert _streams.validate_level(9, "gzip") == 9
    for bad in (0, 10, -1):
        with pytest.raises(ArgumentError):
            _streams.validate_level(bad, "gzip")
    with pytest.raises(ArgumentError, match="raw"):
        _streams.validate_level(3, None)
    with pytest.raises(TypeError):
        _streams.validate_level(1.5, "gzip")
    with pytest.raises(TypeError):
        _streams.validate_level(True, "gzip")


def test_write_from_large_views():
    data = bytes(range(256)) * 1000
    f = io.BytesIO()
    _streams.write_from(f, memoryview(data))
    assert f.getvalue() == data


# -- block-parallel deflate ----------------------------------------------------------------

@pytest.fixture
def small_blocks(monkeypatch):
    # The block path at test sizes: 64 KiB payloads and up, in 16 KiB blocks.
    monkeypatch.setattr(_blocks, "PARALLEL_MIN", 64 << 10)
    monkeypatch.setattr(_blocks, "DEFLATE_BLOCK", 16 << 10)


def _payload(n):
    rng = np.random.default_rng(3)
    return ((np.arange(n // 2) % 977) + rng.integers(0, 8, n // 2)).astype(np.int16).tobytes()


@pytest.mark.parametrize("codec", ["gzip", "zlib"])
@pytest.mark.parametrize("level", range(1, 10))
def test_block_parallel_streams_are_standard(small_blocks, codec, level):
    data = _payload(300_000)
    parts = [memoryview(b"a header"), memoryview(data)]
    f = io.BytesIO()
    n = _streams.compress_from(f, parts, codec, level)
    out = f.getvalue()
    assert n == len(out)
    back = gzip.decompress(out) if codec == "gzip" else zlib.decompress(out)
    assert back == b"a header" + data
    if codec == "zlib":
        assert (out[0] << 8 | out[1]) % 31 == 0 and out[0] == 0x78
    else:  # with the block index in an extra field (FLG.FEXTRA)
        assert out[:4] == b"\x1f\x8b\x08\x04"
    # And our own reader, straight into a buffer.
    dest = bytearray(len(back))
    _streams.decompress_into(io.BytesIO(out), memoryview(dest), codec, path="x")
    assert bytes(dest) == back


@pytest.mark.parametrize("codec", ["gzip", "zlib"])
def test_block_parallel_output_does_not_depend_on_threads(small_blocks, monkeypatch, codec):
    data = memoryview(_payload(200_000))
    outputs = set()
    for threads in (1, 2, 4):
        monkeypatch.setattr(_blocks, "DEFLATE_THREADS", threads)
        f = io.BytesIO()
        _streams.compress_from(f, data, codec, 1)
        outputs.add(f.getvalue())
    assert len(outputs) == 1


def test_block_parallel_errors_propagate(small_blocks, monkeypatch):
    def broken(pieces, lib, level, last):
        raise MemoryError("injected")

    monkeypatch.setattr(_blocks, "_deflate_block", broken)
    with pytest.raises(MemoryError, match="injected"):
        _streams.compress_from(io.BytesIO(), memoryview(_payload(200_000)), "gzip", 1)


def test_block_parallel_below_threshold_is_one_stream(small_blocks):
    # Below PARALLEL_MIN one compressor writes the stream, exactly as zlib would.
    from mitk.io._streams import deflate_backend

    data = _payload(1000)
    f = io.BytesIO()
    with deflate_backend("zlib"):  # the optional accelerators write other (valid) bytes
        _streams.compress_from(f, memoryview(data), "zlib", 1)
    assert f.getvalue() == zlib.compress(data, 1)


def test_block_parallel_files_read_in_other_readers(small_blocks, tmp_path):
    import mitk

    arr = np.frombuffer(_payload(400_000), np.int16).reshape(10, 100, 200)
    img = mitk.Image(arr)
    img.save(tmp_path / "a.nii.gz")
    img.save(tmp_path / "a.nrrd", compression="gzip")
    img.save(tmp_path / "a.mha", compression="gzip")
    for name in ("a.nii.gz", "a.nrrd", "a.mha"):
        np.testing.assert_array_equal(mitk.Image(tmp_path / name).as_numpy(), arr)
    sitk = pytest.importorskip("SimpleITK")
    for name in ("a.nii.gz", "a.nrrd", "a.mha"):
        np.testing.assert_array_equal(
            sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / name))), arr)
    nib = pytest.importorskip("nibabel")
    np.testing.assert_array_equal(
        np.asanyarray(nib.load(str(tmp_path / "a.nii.gz")).dataobj).transpose(2, 1, 0), arr)
    nrrd = pytest.importorskip("nrrd")
    np.testing.assert_array_equal(nrrd.read(str(tmp_path / "a.nrrd"), index_order="C")[0], arr)
