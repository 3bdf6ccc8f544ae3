"""Streaming decompression into a buffer and compression from one: exact sizes, no bombs."""

import bz2
import gzip
import io
import zlib

import numpy as np
import pytest

from mitk.errors import ArgumentError, CorruptFileError
from mitk.io import _streams

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
def test_longer_stream_is_refused(codec):
    with pytest.raises(CorruptFileError, match="more than|continues"):
        _decompress(COMPRESSORS[codec](PAYLOAD), len(PAYLOAD) - 1, codec)


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


def test_trailing_garbage_after_stream_is_refused():
    with pytest.raises(CorruptFileError):
        _decompress(gzip.compress(PAYLOAD) + b"junk", len(PAYLOAD), "gzip")


@pytest.mark.parametrize("codec", sorted(COMPRESSORS))
def test_skip_and_allow_trailing(codec):
    blob = COMPRESSORS[codec](PAYLOAD)
    assert _decompress(blob, len(PAYLOAD) - 100, codec, skip=100) == PAYLOAD[100:]
    assert _decompress(blob, 1000, codec, allow_trailing=True) == PAYLOAD[:1000]


def test_bomb_check():
    _streams.check_compressed_size(1032 * 1000, 1000, "gzip", path="f")
    with pytest.raises(CorruptFileError, match="1032"):
        _streams.check_compressed_size(10**12, 1000, "gzip", path="f")
    _streams.check_compressed_size(10**12, 1000, "bzip2", path="f")  # bzip2 has no fixed bound


def test_a_bomb_never_expands_past_the_declared_size():
    blob = gzip.compress(bytes(50 << 20))  # 50 MiB of zeros in ~50 KiB
    with pytest.raises(CorruptFileError):
        _decompress(blob, 1 << 20, "gzip")


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
