"""mitk.dask (SPEC 13): LazyImage.to_dask, from_files and save, and a distributed LocalCluster
computing per-frame statistics with results equal to NumPy's."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import mitk

da = pytest.importorskip("dask.array")


def frames(shape=(5, 6, 7, 8), seed=0, dtype=np.int16):
    rng = np.random.default_rng(seed)
    return rng.integers(-1000, 1000, shape).astype(dtype)


@pytest.mark.parametrize("name", ["d.nii", "d.nii.gz", "d.nrrd", "d.mha"])
def test_to_dask_equals_the_image_and_reads_nothing_to_build(tmp_path, monkeypatch, name):
    data = frames()
    mitk.Image(data).save(tmp_path / name)
    lz = mitk.open(tmp_path / name)
    from mitk.io import _regions

    real = _regions.read_planned
    monkeypatch.setattr(_regions, "read_planned", lambda *a, **k: pytest.fail("read pixels"))
    arr = lz.to_dask(chunks=(2, 3, -1, -1))
    arr2 = lz.to_dask()
    # Each task holds a path, options, identities and a region: a few hundred bytes.
    for task in dict(arr.__dask_graph__()).values():
        assert len(pickle.dumps(task)) < 2000
    monkeypatch.setattr(_regions, "read_planned", real)
    assert arr.chunks[0] == (2, 2, 1) and arr.dtype == data.dtype
    assert np.array_equal(arr.compute(scheduler="threads"), data)
    assert np.array_equal(arr2[:, 2].compute(scheduler="sync"), data[:, 2])
    assert float(arr.mean().compute(scheduler="sync")) == pytest.approx(data.mean())


def test_auto_chunks_are_whole_slices(tmp_path):
    mitk.Image(np.zeros((4, 64, 512, 512), np.int16)).save(tmp_path / "big.nrrd")
    lz = mitk.open(tmp_path / "big.nrrd")
    chunks = lz.to_dask().chunks
    assert chunks[2:] == ((512,), (512,))  # whole z-slices
    assert chunks[:2] == ((1, 1, 1, 1), (64,))  # one 32 MiB frame per chunk
    from mitk.lazy import _auto_chunk

    assert _auto_chunk((2, 80, 512, 512), 2) == [1, 64, 512, 512]  # frames of 40 MiB: split
    assert _auto_chunk((3, 4, 5), 8) == [3, 4, 5]


def test_iter_chunks_cover_the_image_in_order(tmp_path):
    data = frames((3, 7, 9))
    mitk.Image(data).save(tmp_path / "i.mha")
    lz = mitk.open(tmp_path / "i.mha")
    seen = np.zeros(data.shape, bool)
    starts = []
    for region, block in lz.iter_chunks((2, -1, 4)):
        assert np.array_equal(block, data[region])
        assert not seen[region].any()
        seen[region] = True
        starts.append(tuple(s.start for s in region))
    assert seen.all() and starts == sorted(starts)
    assert sum(1 for _ in lz.iter_chunks()) == 1
    with pytest.raises(mitk.ArgumentError):
        next(lz.iter_chunks((1, 1)))


def test_from_files_stacks_and_names_the_first_file_that_differs(tmp_path):
    paths = []
    for i in range(3):
        p = tmp_path / f"s{i}.nii"
        mitk.Image(frames((4, 5, 6), seed=i), spacing=(1, 2, 3)).save(p)
        paths.append(p)
    stack, geometries = mitk.dask.from_files(paths)
    assert stack.shape == (3, 4, 5, 6) and len(geometries) == 3
    assert geometries[1].spacing == (1.0, 2.0, 3.0)
    assert np.array_equal(stack.compute(scheduler="sync"),
                          np.stack([frames((4, 5, 6), seed=i) for i in range(3)]))
    mitk.Image(frames((4, 5, 6)), spacing=(1, 2, 4)).save(tmp_path / "other.nii")
    mitk.Image(frames((4, 5, 7))).save(tmp_path / "wide.nii")
    for bad in ("other.nii", "wide.nii"):
        with pytest.raises(mitk.ArgumentError, match=bad):
            mitk.dask.from_files(paths[:2] + [tmp_path / bad] + paths[2:])
    with pytest.raises(mitk.ArgumentError):
        mitk.dask.from_files([])
    # what differs is said: a direction; a time geometry (4-D files of other step durations)
    mitk.Image(frames((4, 5, 6)), spacing=(1, 2, 3),
               direction=np.diag([-1.0, -1.0, 1.0])).save(tmp_path / "turned.nii")
    with pytest.raises(mitk.ArgumentError, match="turned.nii.*direction"):
        mitk.dask.from_files([paths[0], tmp_path / "turned.nii"])
    for name, duration in (("t1.nii", 1.0), ("t2.nii", 2.5)):
        image = mitk.Image(frames((3, 2, 2, 2)))
        image.time_geometry.step_duration = duration
        image.save(tmp_path / name)
    with pytest.raises(mitk.ArgumentError, match="t2.nii.*time geometry"):
        mitk.dask.from_files([tmp_path / "t1.nii", tmp_path / "t2.nii"])


@pytest.mark.parametrize("name, channels", [("o.nrrd", 1), ("o.nii", 3), ("o.mha", 2),
                                            ("o.nii", 1)])
def test_save_writes_chunks_at_their_offsets(tmp_path, name, channels):
    shape = (3, 8, 9, 10) + ((channels,) if channels > 1 else ())
    data = frames(shape, dtype=np.float32)
    like = mitk.Image(data, spacing=(1, 2, 3), origin=(4, 5, 6),
                      channels=channels if channels > 1 else None)
    (tmp_path / name).write_bytes(b"old")
    arr = da.from_array(data, chunks=(1, 3, 4, 10) + shape[4:])
    mitk.dask.save(arr * 2, tmp_path / name, like=like)
    back = mitk.Image(tmp_path / name)
    assert np.array_equal(back.array, data * 2)
    assert back.spacing == (1.0, 2.0, 3.0) and back.origin == (4.0, 5.0, 6.0)
    assert back.channels == channels and back.time_steps == 3
    assert os.listdir(tmp_path) == [name]  # no temporary left
    # like may be a LazyImage
    mitk.dask.save(arr, tmp_path / "again.nrrd", like=mitk.open(tmp_path / name))
    assert np.array_equal(mitk.Image(tmp_path / "again.nrrd").array, data)


@pytest.mark.parametrize("name, options", [
    ("c.nii.gz", {}), ("c.nrrd", {"compression": "gzip"}), ("c.nrrd", {"compression": "bzip2"}),
    ("c.mha", {"compression": "gzip"}), ("c.nhdr", {}), ("c.nhdr", {"compression": "gzip"}),
    ("c.hdr", {}), ("c.mhd", {"compression": "gzip"}), ("c.img", {})])
@pytest.mark.parametrize("channels", [1, 3])
def test_save_stages_compressed_and_detached_files(tmp_path, name, options, channels):
    shape = (2, 5, 6, 7) + ((channels,) if channels > 1 else ())
    data = frames(shape, seed=channels, dtype=np.float32)
    like = mitk.Image(data, spacing=(0.5, 2, 3), origin=(-4, 5, 6),
                      channels=channels if channels > 1 else None)
    like.properties["study"] = "dask staged"
    arr = da.from_array(data, chunks=(1, 2, 6, 4) + shape[4:])
    mitk.dask.save(arr - 1, tmp_path / name, like=like, **options)
    back = mitk.Image(tmp_path / name)
    assert np.array_equal(back.array, data - 1)
    assert back.spacing == (0.5, 2.0, 3.0) and back.origin == (-4.0, 5.0, 6.0)
    assert back.channels == channels and back.time_steps == 2
    # the same bytes as saving the computed image with the same options (header, properties the
    # format keeps, payload)
    computed = mitk.Image(data - 1, spacing=(0.5, 2, 3), origin=(-4, 5, 6),
                          channels=channels if channels > 1 else None)
    computed.properties["study"] = "dask staged"
    (tmp_path / "ref").mkdir()
    computed.save(tmp_path / "ref" / name, **options)
    written = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert written == sorted(p.name for p in (tmp_path / "ref").iterdir())  # no temporaries
    for f in written:
        assert (tmp_path / f).read_bytes() == (tmp_path / "ref" / f).read_bytes(), f


def test_staged_save_of_a_block_indexed_gzip_file(tmp_path):
    # 32 MiB of int16: the staged writer deflates it in independent 1 MiB blocks with the index,
    # so region reads of the result inflate only the blocks they touch.
    data = (np.arange(64 * 512 * 512, dtype=np.int64).reshape(64, 512, 512) % 4093 - 2000
            ).astype(np.int16)
    like = mitk.Image(data, spacing=(1, 1, 2.5))
    arr = da.from_array(data, chunks=(8, 512, 512))
    mitk.dask.save(arr, tmp_path / "big.nii.gz", like=like, compression_block_size=1 << 20)
    lz = mitk.open(tmp_path / "big.nii.gz")
    assert np.array_equal(lz[40], data[40])
    # one z-slice (512 KiB) touches one or two 1 MiB blocks, not the 32 MiB stream
    assert lz.read_cost((40,)) <= 2 << 20, lz.read_cost((40,))
    assert np.array_equal(mitk.Image(tmp_path / "big.nii.gz").array, data)


def test_save_of_a_2d_itk_metaimage_keeps_its_2d_fields(tmp_path):
    # ITK writes "CenterOfRotation = 0 0" for 2-D images; the format's checks must see a 2-D
    # image, as Image.save does, not a 3-D probe.
    data = np.arange(12, dtype=np.int16).reshape(3, 4)
    header = ("ObjectType = Image\nNDims = 2\nBinaryData = True\nBinaryDataByteOrderMSB = False"
              "\nCompressedData = False\nTransformMatrix = 1 0 0 1\nOffset = 0 0\n"
              "CenterOfRotation = 0 0\nElementSpacing = 1 1\nDimSize = 4 3\n"
              "ElementType = MET_SHORT\nElementDataFile = LOCAL\n")
    (tmp_path / "itk.mha").write_bytes(header.encode() + data.tobytes())
    like = mitk.Image(tmp_path / "itk.mha")
    for name, options in (("o.mha", {}), ("z.mha", {"compression": "gzip"}), ("o.mhd", {}),
                          ("o.nii.gz", {})):
        mitk.dask.save(da.from_array(data, chunks=2), tmp_path / name, like=like, **options)
        assert np.array_equal(mitk.Image(tmp_path / name).array, data), name


def test_save_chooses_the_nifti_version_of_the_whole_image(tmp_path):
    # One axis longer than NIfTI-1 allows: Image.save writes NIfTI-2, and so must dask.save
    # (its early checks run on a small probe that must not look like a NIfTI-1 image).
    like = mitk.Image(np.zeros((1, 2, 40000), np.uint8))
    like.properties["nifti.slice_end"] = 39999
    arr = da.from_array(np.ones((1, 2, 40000), np.uint8), chunks=(1, 2, 10000))
    for name in ("long.nii", "long.nii.gz"):
        mitk.dask.save(arr, tmp_path / name, like=like)
        back = mitk.Image(tmp_path / name)
        assert back.properties["nifti.version"] == 2 and int(back.array.sum()) == 80000
    with pytest.raises(mitk.UnsupportedFormatError, match="40000"):
        mitk.dask.save(arr, tmp_path / "v1.nii", like=like, nifti_version=1)
    assert not (tmp_path / "v1.nii").exists()


@pytest.mark.parametrize("name, options", [("n.nrrd", {}), ("n.nii.gz", {}),
                                           ("n.mha", {"compression": "gzip"})])
def test_save_writes_chunks_in_the_files_dtype(tmp_path, name, options):
    data = frames((2, 3, 4), seed=3)
    like = mitk.Image(data)
    # a big-endian Dask array: written as native int16, as mitk.Image(array) would hold it
    mitk.dask.save(da.from_array(data.astype(">i2"), chunks=1), tmp_path / name, like=like,
                   **options)
    back = mitk.Image(tmp_path / name)
    assert back.dtype == np.int16 and np.array_equal(back.array, data)
    # chunks of another type than the array declares are cast, never reinterpreted
    lying = da.from_array(data, chunks=1).map_blocks(lambda b: b.astype(np.float64),
                                                     dtype=np.int16)
    mitk.dask.save(lying, tmp_path / name, like=like, **options)
    assert np.array_equal(mitk.Image(tmp_path / name).array, data)


@pytest.mark.parametrize("options", [{}, {"compression": "gzip"}])
def test_save_keeps_mode_and_follows_symlinks_as_image_save(tmp_path, options):
    data = frames((2, 3, 4), seed=4)
    like = mitk.Image(data)
    arr = da.from_array(data, chunks=1)
    (tmp_path / "sub").mkdir()
    real = tmp_path / "sub" / "real.nrrd"
    real.write_bytes(b"old")
    os.chmod(real, 0o640)
    os.symlink(real, tmp_path / "link.nrrd")
    mitk.dask.save(arr, tmp_path / "link.nrrd", like=like, **options)
    assert os.path.islink(tmp_path / "link.nrrd")
    assert np.array_equal(mitk.Image(real).array, data)
    assert (os.stat(real).st_mode & 0o777) == 0o640
    mitk.dask.save(arr, tmp_path / "new.nrrd", like=like, **options)
    umask = os.umask(0)
    os.umask(umask)
    assert (os.stat(tmp_path / "new.nrrd").st_mode & 0o777) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.nrrd", "new.nrrd", "sub"]
    # a detached pair through a link into another directory: refused before any chunk
    os.symlink(tmp_path / "sub" / "pair.nhdr", tmp_path / "pair.nhdr")
    computed = []
    with pytest.raises(mitk.UnsupportedFormatError, match="another directory"):
        mitk.dask.save(arr.map_blocks(lambda b: computed.append(b.shape) or b, dtype=arr.dtype),
                       tmp_path / "pair.nhdr", like=like)
    assert [s for s in computed if s == (1, 3, 4)] == []


def test_a_failed_staged_write_leaves_usable_views_and_no_temporaries(tmp_path, monkeypatch):
    from mitk.io import _streams

    data = frames((4, 30, 40), seed=6)
    like = mitk.Image(data)
    (tmp_path / "keep.nrrd").write_bytes(b"old")
    real = _streams.compress_from

    def full_disk(f, payload, *args, **kwargs):
        if sum(len(p) for p in (payload if isinstance(payload, list) else [payload])) > 1000:
            raise OSError(28, "No space left on device")  # the probe's 8 bytes pass
        return real(f, payload, *args, **kwargs)

    monkeypatch.setattr(_streams, "compress_from", full_disk)
    with pytest.raises(OSError, match="No space") as caught:
        mitk.dask.save(da.from_array(data, chunks=2), tmp_path / "keep.nrrd", like=like,
                       compression="gzip")
    # Debuggers and error reporters read the frames' locals: the staged pixels must still be
    # readable there (not unmapped under them).
    seen = 0
    tb = caught.value.__traceback__
    while tb is not None:
        for value in tb.tb_frame.f_locals.values():
            if isinstance(value, np.ndarray) and value.size == data.size:
                assert int(value.astype(np.int64).sum()) == int(data.astype(np.int64).sum())
                seen += 1
        tb = tb.tb_next
    assert seen > 0
    assert (tmp_path / "keep.nrrd").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.nrrd"]


def test_probe_errors_name_the_users_file(tmp_path):
    data = frames((2, 3, 4))
    like = mitk.Image(data)
    arr = da.from_array(data, chunks=1).astype(np.float16)
    with pytest.raises(mitk.UnsupportedFormatError) as caught:
        mitk.dask.save(arr, tmp_path / "half.nrrd", like=like, compression="gzip")
    assert str(tmp_path / "half.nrrd") in str(caught.value)
    assert ".mitk-tmp" not in str(caught.value)
    with pytest.raises(FileNotFoundError) as missing:
        mitk.dask.save(arr, tmp_path / "nope" / "x.nrrd", like=like)
    assert ".mitk-tmp" not in str(missing.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, options", [("w.nrrd", {}), ("w.nii.gz", {}),
                                           ("w.mhd", {"compression": "gzip"})])
@pytest.mark.parametrize("change", ["fewer", "more"])
def test_a_chunk_of_another_shape_than_its_block_is_refused(tmp_path, name, options, change):
    # A map_blocks that changes a chunk's shape without saying so: an error (as da.store's),
    # not a write that never ends (fewer bytes) or one cut short (more).
    data = frames((4, 6, 5))
    blocks = da.from_array(data, chunks=(2, 6, 5))
    bad = blocks.map_blocks(lambda b: b[:, :3] if change == "fewer"
                            else np.concatenate([b, b], axis=1), dtype=data.dtype)
    (tmp_path / name).write_bytes(b"old")
    with pytest.raises(mitk.ArgumentError, match="chunk of shape"):
        mitk.dask.save(bad, tmp_path / name, like=mitk.Image(data), **options)
    assert (tmp_path / name).read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("shape", [(1, 3, 4, 2), (1, 2, 3, 4, 3)])
@pytest.mark.parametrize("chunks", [1, -1])
def test_save_of_one_slice_or_one_time_step_with_channels_to_nii(tmp_path, shape, chunks):
    # NIfTI reads such an image back with fewer axes: the raw payload cannot be placed through
    # that description, so the array is staged and written as Image.save writes it.
    data = np.arange(np.prod(shape), dtype=np.int16).reshape(shape)
    like = mitk.Image(data, channels=shape[-1])
    like.save(tmp_path / "ref.nii")
    mitk.dask.save(da.from_array(data, chunks=chunks), tmp_path / "o.nii", like=like)
    assert np.array_equal(np.asarray(mitk.Image(tmp_path / "o.nii")),
                          np.asarray(mitk.Image(tmp_path / "ref.nii")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.nii", "ref.nii"]


def test_a_file_removed_after_to_dask_is_corrupt_in_any_process(tmp_path):
    # A worker that has not read the file yet checks the files before parsing the header.
    from mitk import dask as mdask

    mitk.Image(frames((3, 4, 5))).save(tmp_path / "x.nrrd")
    arr = mitk.open(tmp_path / "x.nrrd").to_dask()
    os.unlink(tmp_path / "x.nrrd")
    mdask._OPENED.clear()  # as in a fresh worker process
    with pytest.raises(mitk.CorruptFileError, match="since the Dask array was made"):
        arr.compute(scheduler="sync")


def test_save_refuses_what_it_cannot_write_and_keeps_the_old_file(tmp_path):
    data = frames((2, 3, 4))
    like = mitk.Image(data)
    arr = da.from_array(data, chunks=1)
    slabs = da.from_array(data, chunks=(1, 3, 4))
    (tmp_path / "keep.nrrd").write_bytes(b"old")
    with pytest.raises(mitk.ArgumentError, match="lzma"):
        mitk.dask.save(arr, tmp_path / "keep.nrrd", like=like, compression="lzma")
    with pytest.raises(mitk.UnsupportedFormatError):
        mitk.dask.save(arr, tmp_path / "x.dcm", like=like)
    computed = []

    def spy(block):
        if block.shape == (1, 3, 4):  # a chunk, not Dask's probes of the function
            computed.append(block.shape)
        return block

    # what the format refuses is found before any chunk is computed
    with pytest.raises(mitk.UnsupportedFormatError, match="float16"):
        mitk.dask.save(slabs.astype(np.float16).map_blocks(spy), tmp_path / "keep.nrrd",
                       like=like, compression="gzip")
    with pytest.raises(mitk.ArgumentError):
        mitk.dask.save(slabs.map_blocks(spy), tmp_path / "keep.nrrd", like=like,
                       compression="gzip", compression_level=12)
    assert computed == []
    mitk.dask.save(slabs.map_blocks(spy), tmp_path / "spied.nrrd", like=like, compression="gzip")
    assert computed == [(1, 3, 4)] * 2  # the spy sees chunks when they are computed
    os.unlink(tmp_path / "spied.nrrd")
    with pytest.raises(mitk.ArgumentError):
        mitk.dask.save(arr[:1], tmp_path / "keep.nrrd", like=like)
    with pytest.raises(TypeError):
        mitk.dask.save(arr, tmp_path / "keep.nrrd", like=data)
    with pytest.raises(TypeError):
        mitk.dask.save(arr, tmp_path / "keep.nrrd", like=like, no_such_option=1)

    def boom(block):
        raise RuntimeError("worker failed")

    with pytest.raises(RuntimeError):
        mitk.dask.save(arr.map_blocks(boom, dtype=arr.dtype), tmp_path / "keep.nrrd", like=like)
    with pytest.raises(RuntimeError):  # the staged path cleans up too
        mitk.dask.save(arr.map_blocks(boom, dtype=arr.dtype), tmp_path / "keep.nrrd", like=like,
                       compression="gzip")
    assert (tmp_path / "keep.nrrd").read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["keep.nrrd"]


# The README's "Larger than memory" example, run as written in a fresh interpreter.
def _readme_example() -> str:
    """The README's cluster example (its section "Larger than memory"), as it stands there."""
    import re
    from pathlib import Path

    readme = Path(__file__).resolve().parent.parent / "README.md"
    if not readme.exists():
        pytest.skip("needs the source tree's README")
    section = readme.read_text(encoding="utf-8").split("## Larger than memory", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)




def _run_cluster(path, timeout):
    script = _readme_example().replace('"fmri.nii.gz"', repr(str(path)))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=timeout, cwd=os.path.dirname(path))
    assert out.returncode == 0, out.stderr[-3000:]
    return eval(out.stdout.strip().splitlines()[-1])  # noqa: S307 - our own script's repr


@pytest.mark.parametrize("name", ["small.nii", "small.nii.gz"])
def test_local_cluster_per_frame_statistics(tmp_path, name):
    data = frames((6, 16, 32, 32), seed=5)
    mitk.Image(data).save(tmp_path / name)
    means, peaks = _run_cluster(tmp_path / name, timeout=240)
    assert np.allclose(means, data.mean(axis=(1, 2, 3)), rtol=0, atol=1e-9)
    assert peaks == data.max(axis=(1, 2, 3)).tolist()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["big.nii", "big.nii.gz"])
def test_local_cluster_on_a_gigabyte(tmp_path, name):
    t, shape = 16, (128, 512, 512)  # 16 frames of 64 MiB of int16: 1 GiB
    image = mitk.Image()
    image.initialize(np.int16, shape[::-1] + (t,))
    with image.write() as acc:
        for k in range(t):
            acc.array[k] = (np.arange(shape[0], dtype=np.int16)[:, None, None] * (k + 1)) % 977
    image.save(tmp_path / name)
    means, peaks = _run_cluster(tmp_path / name, timeout=1800)
    pixels = image.array
    assert np.allclose(means, [pixels[k].mean(dtype=np.float64) for k in range(t)])
    assert peaks == [int(pixels[k].max()) for k in range(t)]


def test_dask_is_a_lazily_imported_submodule():
    code = textwrap.dedent("""
        import sys, mitk
        assert "mitk.dask" not in sys.modules and "dask" not in sys.modules
        mitk.open, mitk.LazyImage
        assert "dask" not in sys.modules
        assert mitk.dask.from_files and "mitk.dask" in sys.modules
        assert "open" not in mitk.__all__ and "LazyImage" in mitk.__all__
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
