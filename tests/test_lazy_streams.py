"""Regions of compressed streams (SPEC 13): mitk's block-indexed gzip/zlib inflates only the
blocks a region touches; other gzip/zlib/bzip2 streams are read once up to the region's last
byte, and later regions start from a checkpoint of that pass."""

from __future__ import annotations

import gzip
import os
import types

import numpy as np
import pytest

import mitk
from mitk.io import _parallel_deflate, _raw_runs, _regions, _stream_regions

# 16 MiB of int16: the smallest payload mitk writes with a block index (1 MiB blocks by default).
SHAPE = (128, 256, 256)
BLOCK = _parallel_deflate.DEFLATE_BLOCK


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    rng = np.random.default_rng(7)
    # Compressible but not trivial: smooth ramps plus a little noise.
    z, y, x = np.indices(SHAPE, dtype=np.int16)
    return (z * 3 + y - x + rng.integers(0, 4, SHAPE, dtype=np.int16)).astype(np.int16)


def _keys(shape):
    rng = np.random.default_rng(3)
    z, y, x = shape
    keys = [(5,), (z - 1,), (slice(None), y // 2), (..., 17),
            (slice(z // 4, z // 2), slice(2, y // 3), slice(x - 40, x - 1))]
    for _ in range(8):
        a = int(rng.integers(0, shape[0] - 1))
        keys.append((slice(a, a + int(rng.integers(1, 20)), int(rng.integers(1, 4))),
                     slice(None, None, -3), int(rng.integers(0, shape[2]))))
    return keys


@pytest.mark.parametrize("name, options", [("v.nii.gz", {}), ("v.nrrd", {"compression": "gzip"}),
                                           ("v.mha", {"compression": "gzip"})])
def test_indexed_streams_inflate_only_the_blocks_touched(tmp_path, volume, name, options):
    path = tmp_path / name
    mitk.Image(volume).save(path, **options)
    lz = mitk.open(path)
    # A z-slice of 128 KiB lies in one or two blocks, never the whole 16 MiB stream.
    cost = lz.read_cost((64,))
    assert BLOCK <= cost <= 2 * BLOCK
    assert lz.read_cost((slice(None), 3)) >= volume.nbytes  # a y-plane touches every block
    for key in _keys(volume.shape):
        assert np.array_equal(lz[key], volume[key]), key
    with mitk.num_threads(1):
        assert np.array_equal(lz[70:90:3, 5], volume[70:90:3, 5])


def test_a_nifti_with_channels_is_written_in_indexed_blocks(tmp_path):
    """NIfTI stores each component as a whole volume: the writer makes them a slab at a time,
    and the stream still gets independent blocks and their index, so a region inflates only
    the blocks of its rows in each component volume."""
    rng = np.random.default_rng(5)
    arr = rng.integers(0, 60, (2, 48, 256, 128, 3)).astype(np.int16)  # 18 MiB in all
    path = tmp_path / "vec.nii.gz"
    mitk.Image(arr, channels=3).save(path)
    parsed = _parallel_deflate.parse_gzip_header(path.read_bytes()[:70000])
    assert parsed is not None and parsed[1] is not None
    assert gzip.decompress(path.read_bytes())[352:] == np.moveaxis(arr, -1, 0).tobytes()
    lz = mitk.open(path)
    assert lz.read_cost((1, 20)) <= 3 * 2 * BLOCK < arr.nbytes
    for key in ((1, 20), (0, slice(3, 9), slice(None), 7), (slice(None), 47, 200, slice(None, 50)),
                (..., 2)):
        assert np.array_equal(lz[key], arr[key]), key
    assert np.array_equal(np.asarray(mitk.Image(path)), arr)


def test_an_index_the_stream_does_not_confirm_is_not_used(tmp_path, volume):
    path = tmp_path / "bad.nii.gz"
    mitk.Image(volume).save(path)
    raw = bytearray(path.read_bytes())
    parsed = _parallel_deflate.parse_gzip_header(bytes(raw[:70000]))
    assert parsed is not None and parsed[1] is not None
    # Swap the compressed sizes of the first two blocks: each is still a plausible index.
    field = _parallel_deflate.GZIP_INDEX_OFFSET + 13
    first, second = raw[field:field + 4], raw[field + 4:field + 8]
    assert first != second
    raw[field:field + 4], raw[field + 4:field + 8] = second, first
    path.write_bytes(bytes(raw))
    lz = mitk.open(path)
    for key in ((1,), (40,), (slice(None), 9)):
        assert np.array_equal(lz[key], volume[key]), key


def _stream_start(path, blob: bytes) -> int:
    name = str(path)
    if name.endswith(".nii.gz"):
        return 0
    if name.endswith(".nrrd"):
        return blob.index(b"\n\n") + 2
    return blob.index(b"ElementDataFile = LOCAL\n") + len("ElementDataFile = LOCAL\n")


def _flip_a_stored_byte(path) -> None:
    """Flip one byte of pixel data inside a stored deflate block in the middle of the file:
    the stream stays valid deflate and only its checksum tells (what a region read that
    inflates its block without the whole stream's checksum would never see)."""
    import zlib

    blob = bytearray(path.read_bytes())
    start = _stream_start(path, blob)
    for at in range((start + len(blob)) // 2, len(blob), 4099):
        blob[at] ^= 0x5A
        try:
            zlib.decompressobj(47).decompress(bytes(blob[start:]))
        except zlib.error as exc:
            if "incorrect data check" in str(exc):
                path.write_bytes(bytes(blob))
                return
        blob[at] ^= 0x5A
    raise AssertionError("no stored byte found")


@pytest.mark.parametrize("name, options, tail", [
    ("v.nii.gz", {}, b""), ("v.nrrd", {"compression": "gzip"}, b""),
    ("v.mha", {"compression": "gzip"}, b""),
    # bytes after a gzip stream (ignored, SPEC 6.2) leave its own index and checks as they are
    ("v.nii.gz", {}, bytes(16)), ("v.nrrd", {"compression": "gzip"}, b"\n")])
def test_a_corrupt_block_is_caught_by_its_crc(tmp_path, name, options, tail):
    # Noise does not compress: deflate stores it, and a flipped byte there decodes as well.
    noise = np.random.default_rng(1).integers(-2**15, 2**15, SHAPE, dtype=np.int16)
    path = tmp_path / name
    mitk.Image(noise).save(path, **options)
    _flip_a_stored_byte(path)
    with open(path, "ab") as f:
        f.write(tail)
    with pytest.raises(mitk.CorruptFileError):
        mitk.Image(path)  # the stream's checksum
    lz = mitk.open(path)
    bad = []
    for z in range(SHAPE[0]):
        try:
            got = lz[z]
        except mitk.CorruptFileError as exc:
            assert "CRC-32" in str(exc) and name in str(exc)
            bad.append(z)
            continue
        assert np.array_equal(got, noise[z]), z  # every other slice is right
    # the slices of one block (1 MiB: 8 of 128 KiB, 9 when NIfTI's header shifts them)
    assert 1 <= len(bad) <= 9 and bad == list(range(bad[0], bad[-1] + 1)), bad
    around = slice(max(bad[0] - 2, 0), bad[-1] + 2)
    for key in ((slice(None), 3), (around,), (around, slice(None, None, -2)), (...,)):
        with pytest.raises(mitk.CorruptFileError, match="CRC-32"):
            lz[key]
    with pytest.raises(mitk.CorruptFileError):
        lz.load()


def _without_crcs(path) -> None:
    # The gzip header of a file written before the checksums were added: the block index alone.
    import struct

    blob = path.read_bytes()
    hlen, index = _parallel_deflate.parse_gzip_header(blob)
    assert index.crcs is not None and len(index.crcs) == len(index.sizes)
    field = _parallel_deflate.gzip_index_field(index)[:-(4 + 4 * len(index.sizes))]
    extra = b"MB" + struct.pack("<H", len(field)) + field
    path.write_bytes(blob[:3] + b"\x04" + blob[4:10] + struct.pack("<H", len(extra)) + extra
                     + blob[hlen:])
    assert _parallel_deflate.parse_gzip_header(path.read_bytes())[1] == index._replace(crcs=None)


def test_an_index_without_crcs_still_serves_regions(tmp_path, volume):
    # As mitk wrote it before the checksums: only the blocks touched, unchecked.
    path = tmp_path / "v.nii.gz"
    mitk.Image(volume).save(path)
    _without_crcs(path)
    lz = mitk.open(path)
    assert BLOCK <= lz.read_cost((64,)) <= 2 * BLOCK
    for key in _keys(volume.shape):
        assert np.array_equal(lz[key], volume[key]), key
    assert np.array_equal(mitk.Image(path).as_numpy(), volume)


@pytest.mark.parametrize("name, options", [("v.nii.gz", {}), ("v.mha", {"compression": "gzip"})])
def test_a_damaged_block_of_another_size_is_corrupt_not_read_unchecked(tmp_path, volume, name,
                                                                        options):
    # A flipped bit in compressed data mostly inflates to another size, or is not deflate:
    # the block is not what the index says.  With the index written with the stream, that is
    # damage (CorruptFileError), never a serial read that returns the damaged pixels.
    path = tmp_path / name
    mitk.Image(volume).save(path, **options)
    good = path.read_bytes()
    offsets = mitk.open(path)  # where block 6 lies in the file
    _, index, starts = _stream_regions.stream_plan(
        os.open(path, os.O_RDONLY), offsets._d.stored, offsets._d.stored.pieces[0], None)[1]
    rng = np.random.default_rng(5)
    z_of_block = (6 * BLOCK - offsets._d.stored.pieces[0].skip) // volume[0].nbytes + 2
    for _ in range(12):
        blob = bytearray(good)
        at = int(rng.integers(int(starts[6]) + 50, int(starts[7]) - 50))
        blob[at] ^= 1 << int(rng.integers(0, 8))
        path.write_bytes(bytes(blob))
        lz = mitk.open(path)
        try:
            whole = mitk.Image(path).as_numpy()
        except mitk.CorruptFileError:
            with pytest.raises(mitk.CorruptFileError, match="CRC-32|invalid"):
                lz[z_of_block]
        else:  # a bit no decoder reads (padding before a sync flush): the same pixels
            assert np.array_equal(whole, volume)
            assert np.array_equal(lz[z_of_block], volume[z_of_block])
        for z in (0, z_of_block - 12, z_of_block + 12, SHAPE[0] - 1):  # other blocks: intact
            assert np.array_equal(lz[z], volume[z]), z


def test_a_metaimage_index_over_another_writers_stream_is_not_damage(tmp_path, volume):
    # SimpleITK keeps our index lines over its own stream, and its own (changed) pixels: the
    # blocks do not fit, and that is read as a stream, not refused.
    sitk = pytest.importorskip("SimpleITK")
    mitk.Image(volume).save(tmp_path / "a.mha", compression="gzip")
    image = sitk.ReadImage(str(tmp_path / "a.mha"))
    image[3, 4, 5] = 12345
    sitk.WriteImage(image, str(tmp_path / "b.mha"), useCompression=True)
    assert b"MitkDeflateBlockCRC32" in (tmp_path / "b.mha").read_bytes()[:4000]
    changed = volume.copy()
    changed[5, 4, 3] = 12345
    lz = mitk.open(tmp_path / "b.mha")
    for key in ((5,), (slice(None), 4), (64,)):
        assert np.array_equal(lz[key], changed[key]), key


def test_the_block_plan_is_worked_out_once_and_a_cached_slice_still_sees_a_change(
        tmp_path, volume, monkeypatch):
    path = tmp_path / "plan.nii.gz"
    mitk.Image(volume).save(path)
    plans = []
    real = _stream_regions._block_plan
    monkeypatch.setattr(_stream_regions, "_block_plan",
                        lambda *a: plans.append(real(*a)) or plans[-1])
    lz = mitk.open(path)
    for key in ((64,), (64,), (3,), (slice(None), 5), (64,)):
        assert np.array_equal(lz[key], volume[key]), key
    assert lz.read_cost((64,)) <= 2 * BLOCK
    assert len(plans) == 1 and plans[0] is not None
    # the slice read again comes from the block cache, but the file is still checked first
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    with pytest.raises(mitk.CorruptFileError, match="modified"):
        lz[64]
    with pytest.raises(mitk.CorruptFileError, match="modified"):
        lz.read_cost((64,))


def _counting_opens(monkeypatch) -> list:
    opened: list = []
    real = os.open
    monkeypatch.setattr(_regions.os, "open", lambda *a, **k: opened.append(a[0]) or real(*a, **k))
    return opened


def test_a_slice_read_again_opens_no_file_yet_sees_every_change(tmp_path, volume, monkeypatch):
    """A slice in one cached block is copied from the cache after a stat of the file: no
    open, but a file replaced (same size and mtime, another inode) or removed is still seen."""
    path = tmp_path / "again.nii.gz"
    mitk.Image(volume).save(path)
    lz = mitk.open(path)
    first = lz[64]
    first[...] = -1  # the caller's array is its own, not the cached block
    opened = _counting_opens(monkeypatch)
    for key in ((64,), (64, slice(3, 9)), (64, 200)):
        got = lz[key]
        assert got.flags.writeable and got.flags.c_contiguous
        assert np.array_equal(got, volume[key]), key
    assert opened == []
    assert np.array_equal(lz[100], volume[100]) and opened == [str(path)]  # not cached: opened
    copy = tmp_path / "copy.nii.gz"
    copy.write_bytes(path.read_bytes())
    os.utime(copy, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns))
    os.replace(copy, path)
    with pytest.raises(mitk.CorruptFileError, match="replaced"):
        lz[64]
    path.unlink()
    with pytest.raises(mitk.CorruptFileError, match="gone"):
        lz[64]


def test_a_directory_replaced_by_a_file_is_corrupt(tmp_path, volume):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "v.nii.gz"
    mitk.Image(volume).save(path)
    lz = mitk.open(path)
    assert np.array_equal(lz[64], volume[64])  # cached: the next read only stats the file
    (tmp_path / "sub").rename(tmp_path / "old")
    (tmp_path / "sub").write_bytes(b"not a directory")
    for key in ((64,), (3,), (slice(0, 0),)):
        with pytest.raises(mitk.CorruptFileError):
            lz[key]


def test_a_big_endian_slice_from_the_cache(tmp_path, volume, monkeypatch):
    path = tmp_path / "be.nrrd"
    mitk.Image(volume.byteswap()).save(path, compression="gzip")
    head, sep, rest = path.read_bytes().partition(b"\n\n")
    assert b"endian: little" in head
    path.write_bytes(head.replace(b"endian: little", b"endian: big") + sep + rest)
    lz = mitk.open(path)
    assert np.array_equal(lz[64], volume[64])
    opened = _counting_opens(monkeypatch)
    assert np.array_equal(lz[64], volume[64]) and np.array_equal(lz[64, 7], volume[64, 7])
    assert opened == []


def test_foreign_gzip_checkpoints_make_later_regions_cheaper(tmp_path, volume):
    nib = pytest.importorskip("nibabel")
    path = tmp_path / "foreign.nii.gz"
    nib.save(nib.Nifti1Image(volume.transpose(2, 1, 0), np.eye(4)), path)
    lz = mitk.open(path)
    full = np.asarray(mitk.Image(path))
    assert np.array_equal(full, volume[:, :, :])
    last = (SHAPE[0] - 1,)
    # No index: the last slice costs (about) the whole stream the first time ...
    first_cost = lz.read_cost(last)
    assert first_cost >= volume.nbytes
    assert np.array_equal(lz[last], volume[last])
    # ... and after that pass, at most the distance from the nearest checkpoint.
    later = lz.read_cost(last)
    assert later <= _stream_regions.CHECKPOINT_EVERY + volume[last].nbytes
    assert np.array_equal(lz[last], volume[last])
    assert lz.read_cost((64,)) <= _stream_regions.CHECKPOINT_EVERY + volume[64].nbytes
    for key in _keys(volume.shape):
        assert np.array_equal(lz[key], volume[key]), key
    # A pickled copy starts without checkpoints but reads the same.
    import pickle

    copy = pickle.loads(pickle.dumps(lz))
    assert copy.read_cost(last) == first_cost
    assert np.array_equal(copy[50:52], volume[50:52])


def test_slices_in_order_of_a_foreign_stream_go_on_where_the_last_ended(tmp_path, volume):
    """A loop over the slices of a .nii.gz other tools wrote (one stream, no index)
    decompresses the stream about once, not from the nearest checkpoint for every slice."""
    path = tmp_path / "seq.nii.gz"
    mitk.Image(volume).save(path)
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()), 6))  # no block index
    lz = mitk.open(path)
    one = volume[0].nbytes
    assert lz.read_cost((0,)) > one  # the header before it
    for z in range(48):
        assert np.array_equal(lz[z], volume[z]), z
        assert lz.read_cost((z + 1,)) == one, z
        assert lz.read_cost((z + 2,)) == 2 * one, z
    # The pass left a checkpoint every CHECKPOINT_EVERY bytes (a 16 MiB stream), exactly.
    points = lz._points[0]
    assert points.every == _stream_regions.CHECKPOINT_EVERY
    assert len(points._outs) == 48 * one // points.every
    assert np.all(np.diff([0, *points._outs]) == points.every)
    # An earlier slice starts from a checkpoint (or the start), and is still right.
    for z in range(48):
        assert lz.read_cost((z,)) <= points.every + one, z
    assert np.array_equal(lz[3], volume[3])
    assert np.array_equal(lz[4:6, 7], volume[4:6, 7])
    assert np.array_equal(lz[100:102], volume[100:102])


def test_the_block_cache_keeps_the_last_used_blocks_within_its_bytes(monkeypatch):
    monkeypatch.setattr(_stream_regions, "CACHED_BYTES", 4 * 100)
    cache = _stream_regions.BlockCache()
    blocks = {k: bytearray([k]) * 100 for k in range(6)}
    for k in range(4):
        cache.put(k, blocks[k])
    assert cache.get(3) is blocks[3] and cache.get(3) is blocks[3]  # the newest, twice
    assert cache.get(0) is blocks[0]  # now the newest: 1 is the oldest
    cache.put(4, blocks[4])
    assert cache.get(1) is None and cache.get(0) is blocks[0]
    cache.put(5, blocks[5])  # evicts 2, the least recently used
    assert [cache.get(k) is not None for k in range(6)] == [True, False, False, True, True, True]
    cache.put(9, bytearray(401))  # larger than the cache: not kept
    assert cache.get(9) is None and cache.get(5) is blocks[5]


def test_checkpoint_spacing_bounds_their_memory():
    # 1 MiB apart, or 256 over a longer stream (each holds about 40 KB of decoder state).
    assert _stream_regions.Checkpoints(0).every == _stream_regions.CHECKPOINT_EVERY == 1 << 20
    assert _stream_regions.Checkpoints(200 << 20).every == 1 << 20
    assert _stream_regions.Checkpoints(1 << 30).every == 4 << 20
    assert _stream_regions.Checkpoints((1 << 30) + 1).every == (4 << 20) + 1


def _gzip_nrrd(path, shape, payload: bytes) -> None:
    z, y, x = shape
    path.write_bytes(f"NRRD0004\ntype: int16\ndimension: 3\nsizes: {x} {y} {z}\n"
                     "endian: little\nencoding: gzip\n\n".encode() + payload)


def test_the_last_byte_checks_the_crc_as_a_full_load_does(tmp_path):
    """A stream holding more than the header declares: the region with the data's last byte
    decodes on (within 1 MiB, as a full load) to the member's end and its check."""
    vol = np.arange(31 * 32 * 512, dtype=np.int16).reshape(31, 32, 512)
    extra = np.random.default_rng(1).bytes(300 << 10)
    damaged = bytearray(gzip.compress(vol.tobytes() + extra, 0))  # stored blocks
    damaged[500000] ^= 0xFF  # inside the payload: only the CRC can tell
    _gzip_nrrd(tmp_path / "bad.nrrd", vol.shape, bytes(damaged))
    _gzip_nrrd(tmp_path / "cut.nrrd", vol.shape, gzip.compress(vol.tobytes() + extra)[:-5])
    _gzip_nrrd(tmp_path / "ok.nrrd", vol.shape, gzip.compress(vol.tobytes() + extra))
    for name, match in (("bad.nrrd", "data check|checksum"), ("cut.nrrd", "truncated")):
        with pytest.raises(mitk.CorruptFileError, match=match):
            mitk.Image(tmp_path / name)
        lz = mitk.open(tmp_path / name)
        for key in ((-1,), (...,), (slice(20, None), -1, -1)):
            with pytest.raises(mitk.CorruptFileError, match=match):
                lz[key]
    assert np.array_equal(mitk.open(tmp_path / "cut.nrrd")[3], vol[3])  # before the end
    lz = mitk.open(tmp_path / "ok.nrrd")
    assert np.array_equal(lz[-1], vol[-1]) and np.array_equal(lz[...], vol)


def test_a_member_that_ends_where_a_checkpoint_is_due(tmp_path):
    """Two gzip members split at 1 MiB, where the first checkpoint is due: it is still made
    (a fresh decoder at the next member), and the next ones 1 MiB apart, however many regions
    cross the boundary."""
    rng = np.random.default_rng(4)
    vol = rng.integers(0, 9, (64, 128, 512)).astype(np.int16)  # 8 MiB, 128 KiB a slice
    data = vol.tobytes()
    cut = _stream_regions.CHECKPOINT_EVERY
    members = gzip.compress(data[:cut]) + gzip.compress(data[cut:])
    _gzip_nrrd(tmp_path / "m.nrrd", vol.shape, members)
    lz = mitk.open(tmp_path / "m.nrrd")
    assert np.array_equal(lz[-1], vol[-1])
    points = lz._points[0]
    mib = _stream_regions.CHECKPOINT_EVERY
    assert points._outs == [k * mib for k in range(1, 9)]
    for z in range(vol.shape[0]):
        assert lz.read_cost((z,)) <= mib + vol[0].nbytes, z
    for y in range(0, 128, 3):  # regions that end just past the boundary, each elsewhere
        assert np.array_equal(lz[0:9, y, :y + 1], vol[0:9, y, :y + 1]), y
    assert points._outs == [k * mib for k in range(1, 9)]


@pytest.mark.parametrize("per_image, every", [(256, 4096), (4, 24576)])
def test_snapshots_of_many_small_streams_are_bounded_per_image(tmp_path, monkeypatch,
                                                               per_image, every):
    """A NRRD LIST of gzip files: the spacing comes from the whole image, and the image keeps
    one snapshot where its last region ended, not one per file (a thousand files, a thousand
    snapshots of 40 KB, otherwise)."""
    monkeypatch.setattr(_stream_regions, "CHECKPOINT_EVERY", 4096)
    monkeypatch.setattr(_stream_regions, "CHECKPOINTS_PER_IMAGE", per_image)
    data = np.random.default_rng(8).integers(0, 99, (12, 64, 64)).astype(np.int16)
    names = []
    for z in range(12):  # 8 KiB a file, 96 KiB in all
        names.append(f"s{z:02d}.raw.gz")
        (tmp_path / names[-1]).write_bytes(gzip.compress(data[z].tobytes()))
    (tmp_path / "l.nhdr").write_text(
        "NRRD0004\ntype: int16\ndimension: 3\nsizes: 64 64 12\nendian: little\n"
        "encoding: gzip\ndata file: LIST\n" + "\n".join(names) + "\n")
    lz = mitk.open(tmp_path / "l.nhdr")
    assert np.array_equal(lz[:, 5], data[:, 5]) and np.array_equal(lz[:, 9:11], data[:, 9:11])
    points = [v for v in lz._points.values() if isinstance(v, _stream_regions.Checkpoints)]
    assert len(points) == 12 and {p.every for p in points} == {every}
    held = lz._points["last"].value
    assert held is not None and held[0] is points[-1]  # the last file read: one snapshot
    assert sum(len(p._outs) for p in points) <= 12 * 8192 // every
    # The next region of that file goes on from it; another file's starts over, still right.
    assert lz.read_cost((11, 11)) == data[0, 0].nbytes
    assert np.array_equal(lz[11, 11], data[11, 11]) and np.array_equal(lz[3, 40:], data[3, 40:])


def test_a_region_read_stops_after_its_last_byte(tmp_path, volume, monkeypatch):
    nib = pytest.importorskip("nibabel")
    path = tmp_path / "stop.nii.gz"
    nib.save(nib.Nifti1Image(volume.transpose(2, 1, 0), np.eye(4)), path)
    lz = mitk.open(path)
    produced = []
    real = _stream_regions.Scatter.put

    def counting(self, pos, chunk):
        produced.append(pos + len(chunk))
        return real(self, pos, chunk)

    monkeypatch.setattr(_stream_regions.Scatter, "put", counting)
    assert np.array_equal(lz[2], volume[2])
    # slice 2 ends at 3 * 128 KiB (after the 352-byte header): decoding stops there exactly
    assert max(produced) == 3 * volume[0].nbytes


def test_bzip2_and_multi_member_gzip(tmp_path, volume):
    small = volume[:8, :64, :64].copy()
    mitk.Image(small).save(tmp_path / "b.nrrd", compression="bzip2")
    lz = mitk.open(tmp_path / "b.nrrd")
    for key in _keys(small.shape):
        assert np.array_equal(lz[key], small[key]), key
    assert lz.read_cost((0,)) == small[0].nbytes  # from the start, no further
    # Two gzip members (as pigz or bgzip write), in a detached NRRD.
    data = small.tobytes()
    half = len(data) // 2
    (tmp_path / "m.raw.gz").write_bytes(gzip.compress(data[:half]) + gzip.compress(data[half:]))
    (tmp_path / "m.nhdr").write_text(
        "NRRD0004\ntype: int16\ndimension: 3\nsizes: 64 64 8\nendian: little\n"
        "encoding: gzip\ndata file: m.raw.gz\n")
    lz = mitk.open(tmp_path / "m.nhdr")
    for key in _keys(small.shape):
        assert np.array_equal(lz[key], small[key]), key
    # Slice after slice across the members' boundary: each goes on where the last ended.
    lz = mitk.open(tmp_path / "m.nhdr")
    for z in range(small.shape[0]):
        assert lz.read_cost((z,)) == small[0].nbytes, z
        assert np.array_equal(lz[z], small[z]), z


def test_a_truncated_stream_is_corrupt_where_the_region_needs_it(tmp_path, volume):
    small = volume[:8].copy()
    path = tmp_path / "cut.nrrd"
    mitk.Image(small).save(path, compression="gzip")
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(size // 2)
        f.write(bytes(64))  # damage in place: same size, but a new mtime
    with pytest.raises(mitk.CorruptFileError):
        mitk.open(path)[-1]
    # Cut inside the trailer: the data are all there, but the last slice reads on to the
    # member's end, whose check is missing; an earlier slice stops before it.
    path = tmp_path / "trailer.nii.gz"
    mitk.Image(small).save(path)
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()))[:-5])
    lz = mitk.open(path)
    assert np.array_equal(lz[0], small[0]) and np.array_equal(lz[6], small[6])
    for key in ((-1,), (-1, -1), (..., -1)):  # each holds the data's last byte
        with pytest.raises(mitk.CorruptFileError, match="truncated"):
            lz[key]


def test_without_positioned_reads(tmp_path, volume, monkeypatch):
    # Windows has neither os.pread nor os.preadv: each read seeks its own descriptor instead,
    # and indexed streams are read in one pass.
    small = volume[:40].copy()  # 5 MiB
    for name, opts in (("w.nii", {}), ("w.nii.gz", {}), ("w.mha", {"compression": "gzip"})):
        mitk.Image(small).save(tmp_path / name, **opts)
    big = tmp_path / "big.nrrd"
    mitk.Image(volume).save(big, compression="gzip")  # indexed
    monkeypatch.delattr(os, "pread", raising=False)
    monkeypatch.delattr(os, "preadv", raising=False)
    # ... nor the compiled positioned reads of raw runs.
    monkeypatch.setattr(_raw_runs, "_positioned", types.SimpleNamespace(HAVE_PREAD=False))
    for name in ("w.nii", "w.nii.gz", "w.mha"):
        lz = mitk.open(tmp_path / name)
        for key in _keys(small.shape):
            assert np.array_equal(lz[key], small[key]), (name, key)
    lz = mitk.open(big)
    assert lz.read_cost((100,)) >= 100 * volume[0].nbytes  # the serial pass, not one block
    assert np.array_equal(lz[100], volume[100])


@pytest.mark.parametrize("name, options", [("v.nii.gz", {}), ("v.mha", {"compression": "gzip"})])
def test_a_damaged_crc_in_the_index_is_settled_by_the_streams_checksum(tmp_path, volume, name,
                                                                       options):
    # The data are intact, one CRC-32 of the index is not: mitk.Image reads the file, and so
    # does every region (the stream's own checksum decides), bit for bit.
    path = tmp_path / name
    mitk.Image(volume).save(path, **options)
    blob = bytearray(path.read_bytes())
    if name.endswith(".gz"):
        _, index = _parallel_deflate.parse_gzip_header(bytes(blob[:70000]))
        at = blob.index(b"MC") + 4 + 4 * 6  # block 6's CRC-32
        blob[at] ^= 0xFF
    else:
        line = b"MitkDeflateBlockCRC32 = "
        at = blob.index(line) + len(line) + 9 * 6  # block 6's eight hex digits
        blob[at:at + 1] = b"0" if blob[at:at + 1] != b"0" else b"1"
    path.write_bytes(bytes(blob))
    assert np.array_equal(mitk.Image(path).as_numpy(), volume)
    lz = mitk.open(path)
    z = (6 * BLOCK - lz._d.stored.pieces[0].skip) // volume[0].nbytes + 2
    for key in ((z,), (0,), (slice(None), 3), (z, slice(2, 9)), (slice(z - 3, z + 3),)):
        assert np.array_equal(lz[key], volume[key]), key
