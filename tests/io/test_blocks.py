"""Block-parallel inflate of indexed deflate streams: exact results, never a trusted lie.

A stream we write in blocks carries a block index (gzip: an extra header field; MetaImage: a
header line).  These tests check that our reader uses it (several threads, straight into the
buffer), that other readers are not disturbed by it, and that an index that does not describe
its stream (hostile, stale, truncated) changes nothing: the read then gives exactly what a serial
read gives, data or CorruptFileError.
"""

import gzip
import io
import os
import random
import struct
import tracemalloc
import zlib

import numpy as np
import pytest

import mitk
from mitk.errors import CorruptFileError, UnsupportedFormatError
from mitk.io import _parallel_deflate as _blocks, _streams


@pytest.fixture
def small_blocks(monkeypatch):
    # The block path at test sizes: 64 KiB payloads and up, in 16 KiB blocks, on 2 threads
    # (forced, so the parallel path runs even on a one-CPU machine).
    monkeypatch.setattr(_blocks, "PARALLEL_MIN", 64 << 10)
    monkeypatch.setattr(_blocks, "DEFLATE_BLOCK", 16 << 10)
    monkeypatch.setattr(_blocks, "available_threads", lambda: 2)


@pytest.fixture
def inflate_calls(monkeypatch):
    """Counts block-parallel inflates that succeeded (returned a checksum)."""
    calls = []
    real = _blocks.inflate

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append(args[2])  # the index
        return result

    monkeypatch.setattr(_blocks, "inflate", spy)
    return calls


def _payload(n, seed=3):
    rng = np.random.default_rng(seed)
    return ((np.arange(n // 2) % 977) + rng.integers(0, 8, n // 2)).astype(np.int16).tobytes()


def _write_stream(path, data, codec, level=1):
    with open(path, "wb") as f:
        _streams.compress_from(f, [memoryview(data)], codec, level)
    return path.read_bytes()


def _read(path, size, codec, **kwargs):
    out = bytearray(size)
    with open(path, "rb", buffering=0) as f:
        _streams.decompress_into(f, memoryview(out), codec, path=str(path), **kwargs)
    return bytes(out)


def _fails_as_a_serial_read(path, size):
    """Reading the gzip file ``path`` fails with exactly the serial read's CorruptFileError."""
    with pytest.raises(CorruptFileError) as parallel:
        _read(path, size, "gzip")
    with pytest.raises(CorruptFileError) as serial:
        _streams.decompress_into(io.BytesIO(path.read_bytes()), memoryview(bytearray(size)),
                                 "gzip", path=str(path))
    assert str(parallel.value) == str(serial.value)


# -- checksums -------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(20))
def test_checksum_combination_matches_the_checksum_of_the_whole(seed):
    rng = random.Random(seed)
    a = rng.randbytes(rng.choice([0, 1, 7, 1000, 70_000]))
    b = rng.randbytes(rng.choice([0, 1, 3, 5552, 65521, 200_000]))
    assert _blocks.crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)
    assert (_blocks.adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b))
            == zlib.adler32(a + b))


def test_crc_combination_over_lengths_beyond_32_bits():
    # Appending n zero bytes to A: crc32(A + zeros) from crc32(zeros), however long.
    a = b"mitk"
    zeros = bytes(1 << 20)
    crc_zeros = zlib.crc32(zeros)
    whole = zlib.crc32(a + zeros)
    assert _blocks.crc32_combine(zlib.crc32(a), crc_zeros, len(zeros)) == whole
    # Lengths past 2**32 take the same path as short ones (no overflow in Python ints).
    long = (1 << 33) + 5
    c1 = _blocks.crc32_combine(zlib.crc32(a), 0, long)
    assert 0 <= c1 < 1 << 32


# -- the gzip header -------------------------------------------------------------------------------

def test_gzip_header_round_trip():
    index = _blocks.BlockIndex(1 << 20, (5 << 20) + 3, (10, 20, 30, 40, 50, 60),
                               (1, 2, 3, 0xFFFFFFFF, 0, 7))
    head = bytearray(_blocks.gzip_header(1, 6))
    field = _blocks.gzip_index_field(index)
    assert len(head) == _blocks.GZIP_INDEX_OFFSET + len(field)  # the room reserved, exactly
    head[_blocks.GZIP_INDEX_OFFSET:] = field
    assert _blocks.parse_gzip_header(bytes(head) + b"deflate data") == (len(head), index)
    # Zeros (a header whose blocks were never written) are no index.
    assert _blocks.parse_gzip_header(_blocks.gzip_header(1, 6))[1] is None
    assert _blocks.parse_gzip_header(_blocks.gzip_header(1, 0)) == (10, None)
    # The index alone (as written before the checksums were added): an index without crcs;
    # checksums of another count than the blocks: the same
    sub = field[:-(4 + 4 * 6)]
    for extra in (b"MB" + struct.pack("<H", len(sub)) + sub,
                  b"MB" + struct.pack("<H", len(sub)) + sub + b"MC" + struct.pack("<H", 4)
                  + b"\1\2\3\4"):
        old = b"\x1f\x8b\x08\x04\0\0\0\0\x04\xff" + struct.pack("<H", len(extra)) + extra
        assert _blocks.parse_gzip_header(old + b"data") == (len(old), index._replace(crcs=None))


def _with_header_crc(header):
    return header + struct.pack("<H", zlib.crc32(header) & 0xFFFF)


def test_gzip_headers_of_other_writers_are_skipped_exactly():
    data = b"some bytes " * 50
    for member in (
        gzip.compress(data),
        # FNAME + FCOMMENT + FHCRC + an FEXTRA with a foreign subfield (dictzip's "RA")
        _with_header_crc(b"\x1f\x8b\x08\x1e\0\0\0\0\0\x03" + struct.pack("<H", 8) + b"RA"
                         + struct.pack("<H", 4) + b"abcd" + b"name.nii\0" + b"a comment\0"),
    ):
        parsed = _blocks.parse_gzip_header(member)
        assert parsed is not None and parsed[1] is None
    assert _blocks.parse_gzip_header(gzip.compress(data))[0] == 10
    # Truncated or not gzip: None, and the serial pass reports what is wrong.
    for bad in (b"", b"\x1f\x8b\x08", b"\x1f\x8b\x08\x04" + bytes(6) + b"\xff\x00",
                b"\x1f\x8b\x08\x08" + bytes(6) + b"no end", b"\x78\x01", b"\x1f\x8b\x09" + bytes(7),
                b"\x1f\x8b\x08\xe0" + bytes(6)):
        assert _blocks.parse_gzip_header(bad) is None


def test_block_sizes_keep_the_index_in_a_gzip_header():
    assert _blocks.block_size(80 << 20) == _blocks.DEFLATE_BLOCK == 1 << 20
    assert _blocks.block_count(80 << 20) == 80
    assert _blocks.block_count(80 << 20, 4 << 20) == 20
    assert _blocks.block_count(1 << 20) == 0  # below PARALLEL_MIN: one plain stream
    for total in (64 << 30, (1 << 40) + 1):
        assert _blocks.block_count(total) <= _blocks.MAX_INDEXED_BLOCKS
        assert _blocks.block_size(total) % (1 << 20) == 0


# -- parallel inflate ------------------------------------------------------------------------------

@pytest.mark.parametrize("codec", ["gzip", "zlib"])
@pytest.mark.parametrize("accel", ["zlib", "isal", "zlib-ng"])
def test_indexed_streams_inflate_in_parallel(small_blocks, inflate_calls, tmp_path, codec, accel):
    data = _payload(300_001 * 2)
    try:
        with _streams.deflate_backend(accel):
            indexes = []
            with open(tmp_path / "s", "wb") as f:
                _streams.compress_from(f, [memoryview(data)], codec, 1, on_index=indexes.append)
            index = None if codec == "gzip" else indexes[0]
            assert _read(tmp_path / "s", len(data), codec, index=index) == data
    except LookupError:
        pytest.skip(f"{accel} is not installed")
    assert len(inflate_calls) == 1 and len(inflate_calls[0].sizes) == 37
    # Every other reader reads the same bytes.
    blob = (tmp_path / "s").read_bytes()
    assert (gzip.decompress(blob) if codec == "gzip" else zlib.decompress(blob)) == data


def test_a_skipped_prefix_is_checked_not_copied(small_blocks, inflate_calls, tmp_path):
    # NIfTI: the header is the stream's first bytes, the image starts at vox_offset.
    data = _payload(200_000)
    _write_stream(tmp_path / "s.gz", data, "gzip")
    for skip in (0, 1, 352, 16 << 10, (16 << 10) + 5, 100_000):
        assert _read(tmp_path / "s.gz", len(data) - skip, "gzip", skip=skip) == data[skip:]
    assert len(inflate_calls) == 6


def test_one_thread_reads_serially(small_blocks, inflate_calls, monkeypatch, tmp_path):
    monkeypatch.setattr(_blocks, "available_threads", lambda: 1)
    data = _payload(200_000)
    _write_stream(tmp_path / "s.gz", data, "gzip")
    assert _read(tmp_path / "s.gz", len(data), "gzip") == data
    assert inflate_calls == []


def _index_offset(blob):
    assert blob[3] == 0x04 and blob[12:14] == _blocks.GZIP_SUBFIELD
    return _blocks.GZIP_INDEX_OFFSET


def _mutations(blob):
    """Gzip files whose index lies about a valid stream, one way each."""
    at = _index_offset(blob)
    _, block, total = struct.unpack_from("<BIQ", blob, at)
    sizes_at = at + 13
    n = (struct.unpack_from("<H", blob, 14)[0] - 13) // 4
    sizes = list(struct.unpack_from(f"<{n}I", blob, sizes_at))

    def with_sizes(new):
        return blob[:sizes_at] + struct.pack(f"<{n}I", *new) + blob[sizes_at + 4 * n:]

    yield "sizes shifted", with_sizes([sizes[0] + 1, sizes[1] - 1] + sizes[2:])
    yield "sizes swapped", with_sizes([sizes[1], sizes[0]] + sizes[2:])
    yield "one size too long", with_sizes(sizes[:-1] + [sizes[-1] + 3])
    yield "one size too short", with_sizes(sizes[:-1] + [sizes[-1] - 3])
    yield "huge size", with_sizes([0xFFFFFFFF] + sizes[1:])
    yield "block size", blob[:at + 1] + struct.pack("<I", block * 2) + blob[at + 5:]
    yield "block size off by one", blob[:at + 1] + struct.pack("<I", block - 1) + blob[at + 5:]
    yield "total", blob[:at + 5] + struct.pack("<Q", total + 1) + blob[at + 13:]
    yield "version", blob[:at] + b"\x02" + blob[at + 1:]
    yield "count", blob[:at + 5] + struct.pack("<Q", total - block) + blob[at + 13:]


def test_an_index_that_lies_about_a_valid_stream_changes_nothing(small_blocks, inflate_calls,
                                                                    tmp_path):
    data = _payload(200_000)
    blob = _write_stream(tmp_path / "good.gz", data, "gzip")
    for label, bad in _mutations(blob):
        path = tmp_path / "bad.gz"
        path.write_bytes(bad)
        assert gzip.decompress(bad) == data, label  # still a valid stream for everyone
        assert _read(path, len(data), "gzip") == data, label
    assert inflate_calls == []  # never taken for true


@pytest.mark.parametrize("damage", ["data", "crc", "isize", "truncated", "cut index"])
def test_a_damaged_indexed_stream_fails_as_a_serial_read_does(small_blocks, tmp_path, damage):
    data = _payload(200_000)
    blob = bytearray(_write_stream(tmp_path / "s.gz", data, "gzip"))
    if damage == "data":
        blob[len(blob) // 2] ^= 0x55
    elif damage == "crc":
        blob[-8] ^= 1
    elif damage == "isize":
        blob[-1] ^= 1
    elif damage == "truncated":
        del blob[-3:]
    else:
        del blob[20:]
    (tmp_path / "s.gz").write_bytes(bytes(blob))
    _fails_as_a_serial_read(tmp_path / "s.gz", len(data))


def test_hostile_index_fuzz(small_blocks, tmp_path):
    # Random bytes in the index of a valid stream, and random damage to the stream with a
    # valid index: the parallel reader agrees with the serial one every time.
    rng = random.Random(7)
    data = _payload(150_000)
    blob = _write_stream(tmp_path / "s.gz", data, "gzip")
    at = _index_offset(blob)
    field_len = struct.unpack_from("<H", blob, 14)[0]
    path = tmp_path / "f.gz"
    for trial in range(200):
        bad = bytearray(blob)
        if trial % 2:
            for _ in range(rng.randint(1, 4)):
                bad[at + rng.randrange(field_len)] = rng.randrange(256)
        else:
            bad[rng.randrange(at + field_len, len(bad))] = rng.randrange(256)
        path.write_bytes(bytes(bad))
        expected = bytearray(len(data))
        try:
            _streams.decompress_into(io.BytesIO(bytes(bad)), memoryview(expected), "gzip",
                                     path=str(path))
        except CorruptFileError as exc:
            with pytest.raises(CorruptFileError) as got:
                _read(path, len(data), "gzip")
            assert str(got.value) == str(exc)
        else:
            assert _read(path, len(data), "gzip") == bytes(expected)


def test_workers_stop_after_a_failed_block(small_blocks, tmp_path, monkeypatch):
    # A failing block sets the shared flag; the other workers stop at their next piece instead
    # of inflating the rest of the file (the serial pass then reports the error).
    monkeypatch.setattr(_blocks, "_PIECE", 1 << 10)
    data = _payload(400_000)
    blob = bytearray(_write_stream(tmp_path / "s.gz", data, "gzip"))
    reads = []
    real_pread = os.pread

    def counting_pread(fd, n, offset):
        reads.append(n)
        return real_pread(fd, n, offset)

    monkeypatch.setattr(_blocks.os, "pread", counting_pread)
    assert _read(tmp_path / "s.gz", len(data), "gzip") == data
    whole = len(reads)
    assert whole > 100  # 1 KiB pieces of every block
    blob[_blocks.parse_gzip_header(bytes(blob))[0] + 50] ^= 0xFF  # inside the first block
    (tmp_path / "s.gz").write_bytes(bytes(blob))
    reads.clear()
    with pytest.raises(CorruptFileError):
        _read(tmp_path / "s.gz", len(data), "gzip")
    # Far fewer than all: on a loaded machine the worker holding block 0 may be descheduled
    # while the other inflates a few blocks before it sees the flag.
    assert len(reads) < whole // 2


def _raw_deflate(data, final, level=1):
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)


def _inflate_indexed(tmp_path, stream, index, out_size, skip=0):
    path = tmp_path / "raw.deflate"
    path.write_bytes(stream)
    out = bytearray(out_size)
    fd = os.open(path, os.O_RDONLY)
    try:
        return _blocks.inflate(fd, 0, index, memoryview(out), skip, "gzip", zlib, (zlib.error,))
    finally:
        os.close(fd)


def test_a_block_boundary_inside_a_stored_block_is_refused(small_blocks, tmp_path):
    # Block 0 ends just after the header of a stored block; the stored bytes that follow are
    # themselves a deflate stream.  A serial pass copies them as they are; a fresh decoder started
    # at the boundary decodes them, and each block inflates to the size the index gives it.  A
    # crafted file can also make the total size and the trailer's checksum agree (a payload that
    # deflates to its own length, a few bytes chosen for the CRC), so the boundary itself must be
    # checked.
    rng = random.Random(5)
    first, second = rng.randbytes(1000), rng.randbytes(600)
    coded = _raw_deflate(second, final=False)
    block0 = _raw_deflate(first, final=False) + b"\x00" + struct.pack("<HH", len(coded),
                                                                      0xFFFF ^ len(coded))
    block1 = coded + _raw_deflate(b"", final=True)
    stream = block0 + block1
    serial = zlib.decompressobj(-15)
    assert serial.decompress(stream) == first + coded and serial.eof  # what every reader reads
    index = _blocks.BlockIndex(len(first), len(first) + len(second), (len(block0), len(block1)))
    with pytest.raises(_blocks.IndexMismatch):
        _inflate_indexed(tmp_path, stream, index, index.total)


@pytest.mark.parametrize("accel", ["zlib", "isal", "zlib-ng"])
def test_blocks_that_are_not_one_valid_stream_fail_as_a_serial_read_does(small_blocks, tmp_path,
                                                                          accel):
    # The empty stored block of each sync flush removed, the index shortened to match: each
    # block still inflates on its own and the trailer still matches, but the whole is not valid
    # deflate, so the read must fail exactly as a serial one does.
    data = _payload(200_000)
    try:
        with _streams.deflate_backend(accel):
            blob = _write_stream(tmp_path / "s.gz", data, "gzip")
    except LookupError:
        pytest.skip(f"{accel} is not installed")
    head, index = _blocks.parse_gzip_header(blob)
    blocks, pos = [], head
    for size in index.sizes:
        blocks.append(blob[pos:pos + size])
        pos += size
    assert all(b.endswith(b"\x00\x00\xff\xff") for b in blocks[:-1])
    cut = [b[:-4] for b in blocks[:-1]] + blocks[-1:]
    shorter = index._replace(sizes=tuple(len(b) for b in cut))
    bad = bytearray(blob[:head] + b"".join(cut) + blob[pos:])
    at = _blocks.GZIP_INDEX_OFFSET
    bad[at:at + len(_blocks.gzip_index_field(shorter))] = _blocks.gzip_index_field(shorter)
    (tmp_path / "bad.gz").write_bytes(bytes(bad))
    with _streams.deflate_backend(accel):
        _fails_as_a_serial_read(tmp_path / "bad.gz", len(data))
    with pytest.raises(Exception):
        gzip.decompress(bytes(bad))  # nobody else reads it either


@pytest.mark.parametrize("header_crc", ["right", "wrong"])
def test_a_header_crc_is_checked_before_the_index_is_used(small_blocks, inflate_calls, tmp_path,
                                                          header_crc):
    data = _payload(200_000)
    blob = _write_stream(tmp_path / "s.gz", data, "gzip")
    head, _ = _blocks.parse_gzip_header(blob)
    header = bytearray(blob[:head])
    header[3] |= 0x02  # FHCRC
    crc = zlib.crc32(bytes(header)) & 0xFFFF
    if header_crc == "wrong":
        crc ^= 1
    marked = bytes(header) + struct.pack("<H", crc) + blob[head:]
    (tmp_path / "h.gz").write_bytes(marked)
    if header_crc == "right":
        assert gzip.decompress(marked) == data
        assert _read(tmp_path / "h.gz", len(data), "gzip") == data
        assert len(inflate_calls) == 1
        return
    _fails_as_a_serial_read(tmp_path / "h.gz", len(data))
    assert inflate_calls == []


def test_a_short_block_allocates_nothing_near_its_declared_size(tmp_path):
    # One block said to hold 4 GB (most of it a prefix the image skips), with a stream that
    # ends after 100 KB: refused without ever asking for a buffer of the declared size.
    total = 4_000_000_000
    stream = _raw_deflate(random.Random(1).randbytes(100_000), final=True, level=0)
    index = _blocks.BlockIndex(total, total, (len(stream),))
    tracemalloc.start()
    try:
        with pytest.raises(_blocks.IndexMismatch):
            _inflate_indexed(tmp_path, stream, index, 256, skip=total - 256)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20


# -- through the formats ---------------------------------------------------------------------------

FORMATS = [("a.nrrd", {"compression": "gzip"}), ("a.nhdr", {"compression": "gzip"}),
           ("a.nii.gz", {}), ("a.mha", {"compression": "gzip"}),
           ("a.mhd", {"compression": "gzip"})]


def _image():
    arr = np.frombuffer(_payload(600_000), np.int16).reshape(15, 100, 200)
    return arr, mitk.Image(arr)


@pytest.mark.parametrize("name,opts", FORMATS)
def test_formats_read_their_blocks_in_parallel(small_blocks, inflate_calls, tmp_path, name, opts):
    arr, img = _image()
    img.save(tmp_path / name, **opts)
    back = mitk.Image(tmp_path / name)
    np.testing.assert_array_equal(back.as_numpy(), arr)
    assert len(inflate_calls) == 1
    assert not any("MitkDeflate" in str(k) for k in back.properties)


@pytest.mark.parametrize("name,opts", FORMATS)
def test_other_readers_read_indexed_files(small_blocks, tmp_path, name, opts):
    arr, img = _image()
    img.save(tmp_path / name, **opts)
    sitk = pytest.importorskip("SimpleITK")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / name))),
                                  arr)
    if name.endswith(".nii.gz"):
        nib = pytest.importorskip("nibabel")
        np.testing.assert_array_equal(
            np.asanyarray(nib.load(str(tmp_path / name)).dataobj).transpose(2, 1, 0), arr)
    if name.endswith((".nrrd", ".nhdr")):
        nrrd = pytest.importorskip("nrrd")
        np.testing.assert_array_equal(nrrd.read(str(tmp_path / name), index_order="C")[0], arr)


def test_a_stale_metaimage_index_is_ignored(small_blocks, inflate_calls, tmp_path, caplog):
    # SimpleITK keeps unknown MetaImage fields and writes them back over its own, unblocked
    # stream: the index then describes another stream.  Saying so is a DEBUG log, not output.
    sitk = pytest.importorskip("SimpleITK")
    arr, img = _image()
    img.save(tmp_path / "a.mha", compression="gzip")
    image = sitk.ReadImage(str(tmp_path / "a.mha"))
    assert image.HasMetaDataKey("MitkDeflateBlocks")
    sitk.WriteImage(image, str(tmp_path / "b.mha"), useCompression=True)
    header = (tmp_path / "b.mha").read_bytes()[:2000]
    assert b"MitkDeflateBlocks" in header
    with caplog.at_level("DEBUG", logger="mitk"):
        np.testing.assert_array_equal(mitk.Image(tmp_path / "b.mha").as_numpy(), arr)
    assert inflate_calls == []
    assert any("b.mha" in r.getMessage() and "block index not used" in r.getMessage()
               for r in caplog.records)


@pytest.mark.parametrize("value", ["", "x", "4194304", "16384 600000", "16384 600000 1 2",
                                   "0 600000 5", "16384 -600000 " + "1 " * 37, "1e3 5 5",
                                   "16384 600000 " + "99999999999 " * 37,
                                   "16384 600000 " + "\u00b2 " * 37,  # isdigit() but not int()
                                   "16384 600000 " + "\u0663 " * 37])  # an Arabic-Indic 3
def test_a_malformed_metaimage_index_is_ignored(small_blocks, inflate_calls, tmp_path, value):
    arr, img = _image()
    img.save(tmp_path / "a.mhd", compression="gzip")
    header = (tmp_path / "a.mhd").read_text()
    lines = [f"MitkDeflateBlocks = {value}" if line.startswith("MitkDeflateBlocks") else line
             for line in header.splitlines()]
    (tmp_path / "a.mhd").write_text("\n".join(lines) + "\n")
    np.testing.assert_array_equal(mitk.Image(tmp_path / "a.mhd").as_numpy(), arr)
    assert inflate_calls == []


@pytest.mark.parametrize("value", ["", "zz", "0000000", "00000000 " * 36, "00000000 " * 38,
                                   "0000000g " * 37])
def test_a_malformed_metaimage_crc_line_leaves_an_index_without_crcs(small_blocks, inflate_calls,
                                                                     tmp_path, value):
    arr, img = _image()
    img.save(tmp_path / "a.mhd", compression="gzip")
    header = (tmp_path / "a.mhd").read_text()
    assert "MitkDeflateBlockCRC32 = " in header
    lines = [f"MitkDeflateBlockCRC32 = {value}" if line.startswith("MitkDeflateBlockCRC32")
             else line for line in header.splitlines()]
    (tmp_path / "a.mhd").write_text("\n".join(lines) + "\n")
    np.testing.assert_array_equal(mitk.Image(tmp_path / "a.mhd").as_numpy(), arr)
    assert len(inflate_calls) == 1  # the full read needs no block checksums
    lz = mitk.open(tmp_path / "a.mhd")
    assert lz._d.stored.pieces[0].index.crcs is None  # regions then read it as any stream
    np.testing.assert_array_equal(lz[7], arr[7])


@pytest.mark.parametrize("field", ["MitkDeflateBlocks", "MitkDeflateBlockCRC32"])
def test_the_index_fields_are_not_properties(tmp_path, field):
    img = mitk.Image(np.zeros((2, 3, 4), np.int16))
    img.properties[field] = "1 2 3"
    with pytest.raises(UnsupportedFormatError, match=field):
        img.save(tmp_path / "a.mha")
    assert not os.path.exists(tmp_path / "a.mha")


def test_small_images_carry_no_index(tmp_path):
    img = mitk.Image(np.zeros((2, 3, 4), np.int16))
    img.save(tmp_path / "a.mha", compression="gzip")
    img.save(tmp_path / "a.nii.gz")
    assert b"MitkDeflateBlocks" not in (tmp_path / "a.mha").read_bytes()
    assert (tmp_path / "a.nii.gz").read_bytes()[3] == 0  # no extra field


def test_bytes_after_an_indexed_stream_are_ignored_and_it_is_still_read_in_parallel(
        small_blocks, inflate_calls, tmp_path):
    # SPEC 6.2: what follows the stream (a newline some writers append) is not ours to read.
    data = _payload(200_000)
    blob = _write_stream(tmp_path / "s.gz", data, "gzip")
    (tmp_path / "s.gz").write_bytes(blob + b"\n")
    assert _read(tmp_path / "s.gz", len(data), "gzip") == data
    assert len(inflate_calls) == 1


@pytest.mark.parametrize("name, opts", [("a.nii.gz", {}), ("a.nrrd", {"compression": "gzip"}),
                                        ("a.mha", {"compression": "gzip"}),
                                        ("a.mhd", {"compression": "gzip"})])
def test_the_block_size_is_a_save_option(small_blocks, inflate_calls, tmp_path, name, opts):
    # Smaller blocks make region reads cheaper (a region inflates only the blocks it touches);
    # the file stays one standard stream, and our reader still inflates its blocks in parallel.
    arr, img = _image()
    img.save(tmp_path / name, compression_block_size=64 << 10, **opts)
    np.testing.assert_array_equal(mitk.Image(tmp_path / name).as_numpy(), arr)
    assert inflate_calls and inflate_calls[-1].block == 64 << 10
    for bad, error in ((1000, mitk.ArgumentError), (1 << 30, mitk.ArgumentError),
                       (True, TypeError), ("4M", TypeError)):
        with pytest.raises(error, match="compression_block_size"):
            img.save(tmp_path / f"b{name}", compression_block_size=bad, **opts)
    with pytest.raises(mitk.ArgumentError, match="compression_block_size"):
        img.save(tmp_path / "raw.nrrd", compression_block_size=1 << 20)


def test_parts_made_on_the_way_are_drawn_a_few_at_a_time(tmp_path, small_blocks):
    """An iterable of views with its total (NIfTI's component volumes, made a slab at a time) is
    drawn from only as the blocks in flight reach it, and gives the same stream as a list."""
    data = _payload(400 << 10)
    slab = 8 << 10
    made, written = [], []

    def slabs():
        for start in range(0, len(data), slab):
            made.append(start)
            yield memoryview(data)[start:start + slab]

    class Recording(io.BytesIO):
        def write(self, b):
            written.append(len(made))  # slabs made when each piece of output was written
            return super().write(b)

    out = Recording()
    _streams.compress_from(out, slabs(), "gzip", 1, total=len(data))
    listed = io.BytesIO()
    _streams.compress_from(listed, [memoryview(data)], "gzip", 1)
    assert out.getvalue() == listed.getvalue()
    assert gzip.decompress(out.getvalue()) == data
    assert _blocks.parse_gzip_header(out.getvalue()[:70000])[1] is not None
    # The header went out before any slab was made, and each 16 KiB block written had at most
    # the blocks in flight (2 per thread) and one more ahead of it made: never all 50 slabs.
    assert written[0] == 0
    per_block = (16 << 10) // slab
    assert max(w - i * per_block for i, w in enumerate(written[1:-2])) <= (2 * 2 + 1) * per_block
