"""Region reads of :func:`mitk.open` (SPEC 13), each beside a reference measured in the same run.

A 256^3 int16 volume (128^3 with ``--quick``), warm page cache:

* raw ``.nrrd``/``.nii``/``.mha``: a z-slice, a y-plane and a 40^3 block, against copying the
  same region out of ``np.load(..., mmap_mode="r")`` (peer: SimpleITK's ImageFileReader with an
  extract region, which streams ``.nrrd`` and ``.mha``); and the floor of any read without a
  memory map: the region's positioned reads alone, on a file kept open, and for a z-slice
  (one run) also with the open, check and close that a read without a file kept open adds;
* a z-slice of our block-indexed ``.nii.gz``, against nibabel with ``indexed_gzip`` (its index
  built beforehand, ``keep_file_open=True``);
* a foreign single-stream ``.nii.gz``: the first region (a fresh ``LazyImage``) against one full
  ``zlib`` decompress of the file, and a later region (from a checkpoint) against that first one;
* the deflate block size: a z-slice of ``.nii.gz`` files written with 1, 4 and 16 MiB blocks,
  against a full read of the same file (the description gives the compressed size);
* peak memory growth of a y-plane read in a fresh interpreter, against the region plus 16 MiB.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import tempfile
import zlib

import numpy as np

from .results import Result
from .timing import best_time, peak_growth, per_call

MiB = 1 << 20


def _volume(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    z, y, x = np.indices((n, n, n), dtype=np.int16)
    return (z + 2 * y - x + rng.integers(0, 32, (n, n, n), dtype=np.int16)).astype(np.int16)


def _regions(n: int) -> dict:
    c = n // 2
    return {"zslice": (c,), "yplane": (slice(None), c),
            "block40": (slice(c - 20, c + 20), slice(c - 20, c + 20), slice(c - 20, c + 20))}


@contextlib.contextmanager
def _workspace():
    d = tempfile.mkdtemp(prefix="mitk-bench-regions-")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _sitk_region(path: str, key: tuple, n: int):
    """A SimpleITK ImageFileReader call that reads ``key`` (z, y, x slices) of ``path``."""
    try:
        import SimpleITK as sitk
    except ImportError:
        return None
    lo, size = [], []
    for k in reversed(tuple(key) + (slice(None),) * (3 - len(key))):
        if isinstance(k, int):
            lo.append(k), size.append(1)
        else:
            a, b, _ = k.indices(n)
            lo.append(a), size.append(b - a)

    def read():
        r = sitk.ImageFileReader()
        r.SetFileName(path)
        r.SetExtractIndex(lo)
        r.SetExtractSize(size)
        return sitk.GetArrayFromImage(r.Execute())

    return read, sitk.Version.VersionString()


def _stored_box(lz, key: tuple) -> tuple:
    """(box, stored array, stored box) of ``lz[key]``: what its reads are planned from."""
    from mitk import _lazy_keys

    box, _ = _lazy_keys.normalize(key, lz.shape)
    return box, lz._d.stored, lz._stored_box(box)


def _pread_floor(lz, key: tuple):
    """A call that makes only the reads of ``lz[key]`` (a raw file) into a result made once, on
    a descriptor kept open: one ``os.preadv`` for one run, else one compiled call; no key,
    plan, check, open or result to make.

    What reading without a memory map costs at least, whatever the layers above do.  None
    where the platform has no positioned reads.
    """
    from mitk._core import _positioned
    from mitk.io import _box_runs, _raw_runs

    if not (_positioned.HAVE_PREAD and hasattr(os, "preadv")):
        return None

    box, stored, sbox = _stored_box(lz, key)
    out = np.empty(int(np.prod([len(range(*b)) for b in box])) * stored.dtype.itemsize, np.uint8)
    run = _box_runs.one_run(stored, sbox)
    rows = _box_runs.row_plan(stored, sbox) if run is None else None
    piece = stored.pieces[run[0] if run is not None else rows[0] if rows is not None else 0]
    fd = os.open(piece.src, os.O_RDONLY)
    if run is not None:
        view = memoryview(out)[:run[2]]
        return (lambda: os.preadv(fd, [view], piece.start + run[1])), fd
    if rows is not None:
        _, planes, k, step, length, joined = rows
        offsets = np.ascontiguousarray(planes + piece.start)
        return (lambda: _positioned.read_rows(fd, offsets, k, step, length, joined, out)), fd
    # The general plan (one piece here): its spans, read into scratch as read_raw reads them.
    starts, length, _, _ = _box_runs.runs(stored, sbox)
    lengths = np.full(starts.size, length, dtype=np.int64)
    los, his = _raw_runs.spans(starts, lengths)
    offsets = starts[los] + piece.start
    sizes = starts[his - 1] + lengths[his - 1] - starts[los]
    dests = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    scratch = np.empty(int(sizes.sum()), np.uint8)
    return (lambda: _positioned.read_runs(fd, offsets, sizes, dests, scratch)), fd


def _open_read_floor(lz, key: tuple):
    """A call that opens, checks, reads and closes the file as ``lz[key]`` does when ``key``
    is one run of a raw file (a slice), into a result made once: ``lz[key]`` without its key,
    its array and its Python.  None for other keys, or without the compiled read."""
    from mitk._core import _positioned
    from mitk.io import _box_runs

    _, stored, sbox = _stored_box(lz, key)
    run = _box_runs.one_run(stored, sbox)
    if run is None or not _positioned.HAVE_PREAD:
        return None
    piece = stored.pieces[run[0]]
    name, expected = os.fsencode(piece.src), stored.identities[piece.src]
    out = np.empty(run[2], np.uint8)
    return lambda: _positioned.read_file_run(name, *expected, piece.start + run[1], out)


def raw_regions(quick: bool, peers: bool = False) -> list:
    """Raw region reads of every single-file format against a copy out of a memory map, and
    the floor of reading without one (the same reads, from compiled code, nothing else)."""
    import mitk

    n = 128 if quick else 256
    arr = _volume(n)
    out = []
    with _workspace() as tmp:
        ref = os.path.join(tmp, "ref.npy")
        np.save(ref, arr)
        mm = np.load(ref, mmap_mode="r")
        for name in ("raw.nrrd", "raw.nii", "raw.mha"):
            mitk.Image(arr).save(os.path.join(tmp, name))
        for region, key in _regions(n).items():
            t_ref = per_call(lambda: np.array(mm[key]))
            floor = _pread_floor(mitk.open(os.path.join(tmp, "raw.nrrd")), key)
            if floor is not None:
                read, fd = floor
                try:
                    t_floor = per_call(read)
                finally:
                    os.close(fd)
                out.append(Result(f"regions.{region}.pread_floor", "regions",
                                  f"{region}: its positioned reads alone (file kept open)",
                                  t_floor * 1e3, "ms", "copy out of np.load(mmap_mode='r')",
                                  t_ref * 1e3, "ms"))
            opened = _open_read_floor(mitk.open(os.path.join(tmp, "raw.nrrd")), key)
            if opened is not None:
                out.append(Result(f"regions.{region}.open_read_floor", "regions",
                                  f"{region}: open, check, read, close alone (compiled)",
                                  per_call(opened) * 1e3, "ms",
                                  "copy out of np.load(mmap_mode='r')", t_ref * 1e3, "ms"))
            for name in ("raw.nrrd", "raw.nii", "raw.mha"):
                path = os.path.join(tmp, name)
                lz = mitk.open(path)
                assert np.array_equal(lz[key], arr[key])
                t = per_call(lambda: lz[key])
                result = Result(f"regions.{region}.{name}", "regions",
                                f"{region} of a raw {n}^3 int16 {name[4:]}", t * 1e3, "ms",
                                "copy out of np.load(mmap_mode='r')", t_ref * 1e3, "ms",
                                "<= 1.2x")
                if peers and not name.endswith(".nii"):
                    found = _sitk_region(path, key, n)
                    if found is not None:
                        read, version = found
                        result.peers["SimpleITK"] = {"version": version, "unit": "ms",
                                                     "value": per_call(read, repeat=3) * 1e3}
                out.append(result)
    return out


def _nibabel_indexed(path: str, key: tuple):
    """nibabel with indexed_gzip, index prebuilt and the file kept open; None if missing."""
    try:
        import indexed_gzip
        import nibabel  # noqa: F401  (the reader measured)
    except ImportError:
        return None
    f = indexed_gzip.IndexedGzipFile(path, spacing=1 * MiB)
    f.build_full_index()
    img = _nibabel_image(f)
    # NIfTI is x fastest: our (z, y, x) key is (x, y, z) reversed for nibabel.
    rev = tuple(reversed(key + (slice(None),) * (3 - len(key))))
    return (lambda: np.asarray(img.dataobj[rev])), f, indexed_gzip.__version__


def _nibabel_image(f):
    import nibabel as nib

    return nib.Nifti1Image.from_file_map(
        {"header": nib.FileHolder(fileobj=f), "image": nib.FileHolder(fileobj=f)},
        keep_file_open=True)


def compressed_regions(quick: bool, peers: bool = False) -> list:
    """Indexed and foreign gzip regions, and the deflate block size's trade-off."""
    import mitk
    from mitk.io import _parallel_deflate

    # The block index needs 16 MiB of payload: 256^3 int16 even with --quick.
    n = 256
    arr = _volume(n)
    key = (n // 2,)
    out = []
    with _workspace() as tmp:
        ours = os.path.join(tmp, "ours.nii.gz")
        mitk.Image(arr).save(ours)
        lz = mitk.open(ours)
        assert np.array_equal(lz[key], arr[key])
        t = per_call(lambda: lz[key], repeat=3 if quick else 5)
        found = _nibabel_indexed(ours, key)
        if found is not None:
            read, f, version = found
            assert np.array_equal(read(), arr[key].T)
            t_ref = per_call(read, repeat=3 if quick else 5)
            f.close()
            out.append(Result("regions.zslice.indexed_nii_gz", "regions",
                              f"z-slice of our {n}^3 int16 .nii.gz (block index)", t * 1e3, "ms",
                              f"nibabel + indexed_gzip {version} (index prebuilt)",
                              t_ref * 1e3, "ms", "<= 0.25x"))
            # Slices 37 apart (4.6 MiB): no cache, ours or theirs, holds the next one.
            cycle = [(z,) for z in range(5, n, 37)]
            state = {"i": 0}

            def ours_cycle():
                state["i"] += 1
                return lz[cycle[state["i"] % len(cycle)]]

            found = _nibabel_indexed(ours, cycle[0])
            if found is not None:
                _, f2, _ = found
                img = _nibabel_image(f2)

                def theirs_cycle():
                    state["i"] += 1
                    z = cycle[state["i"] % len(cycle)][0]
                    return np.asarray(img.dataobj[:, :, z])

                t = best_time(ours_cycle, repeat=3 * len(cycle))
                t_ref = best_time(theirs_cycle, repeat=3 * len(cycle))
                f2.close()
                out.append(Result("regions.zslice_cycle.indexed_nii_gz", "regions",
                                  "z-slices 37 apart of our .nii.gz (no cache hit)", t * 1e3,
                                  "ms", f"nibabel + indexed_gzip {version}, same slices",
                                  t_ref * 1e3, "ms", "<= 0.25x"))

        else:
            out.append(Result("regions.zslice.indexed_nii_gz", "regions",
                              f"z-slice of our {n}^3 int16 .nii.gz (indexed_gzip missing)",
                              t * 1e3, "ms"))

        # A single gzip stream, as other tools write it (no block index).
        foreign = os.path.join(tmp, "foreign.nii.gz")
        with gzip.open(ours, "rb") as src, open(foreign, "wb") as dst:
            dst.write(zlib.compress(src.read(), 6, wbits=31))
        blob = open(foreign, "rb").read()
        t_zlib = best_time(lambda: zlib.decompress(blob, wbits=31), repeat=3)
        last = (n - 1,)
        t_first = best_time(lambda: mitk.open(foreign)[last], repeat=3)
        out.append(Result("regions.foreign_gz.first", "regions",
                          "last z-slice of a foreign .nii.gz, first read (fresh open)",
                          t_first * 1e3, "ms", "zlib.decompress of the whole file",
                          t_zlib * 1e3, "ms", "<= 1.0x"))
        warm = mitk.open(foreign)
        warm[last]
        t_later = best_time(lambda: warm[(n - 3,)], repeat=3)
        out.append(Result("regions.foreign_gz.later", "regions",
                          "a later z-slice of the same LazyImage (from a checkpoint)",
                          t_later * 1e3, "ms", "the first read", t_first * 1e3, "ms",
                          "<= 0.5x"))

        def every_slice():
            lz_loop = mitk.open(foreign)
            for z in range(n):
                lz_loop[z]

        t_loop = best_time(every_slice, repeat=3)
        out.append(Result("regions.foreign_gz.slice_loop", "regions",
                          f"every z-slice of a foreign .nii.gz in order ({n} reads, fresh open)",
                          t_loop * 1e3, "ms", "zlib.decompress of the whole file",
                          t_zlib * 1e3, "ms"))

        # Block size: what a region costs against a full read, and what the index costs.
        saved = _parallel_deflate.DEFLATE_BLOCK
        for mib in (1, 4, 16):
            path = os.path.join(tmp, f"b{mib}.nii.gz")
            # Benchmark only: no other thread saves meanwhile (the size is not a save option).
            _parallel_deflate.DEFLATE_BLOCK = mib * MiB
            try:
                mitk.Image(arr).save(path)
            finally:
                _parallel_deflate.DEFLATE_BLOCK = saved
            b = mitk.open(path)
            # Slices 37 apart, so that no region comes from the block kept by the one before.
            turn = {"i": 0}

            def next_slice(b=b):
                turn["i"] += 1
                return b[(5 + 37 * (turn["i"] % 7),)]

            t_region = best_time(next_slice, repeat=21)
            t_full = best_time(lambda: mitk.Image(path), repeat=3)
            out.append(Result(f"regions.block_size.{mib}MiB", "regions",
                              f"z-slice of .nii.gz in {mib} MiB blocks "
                              f"({os.path.getsize(path) / MiB:.2f} MiB compressed)",
                              t_region * 1e3, "ms", "full read of the same file",
                              t_full * 1e3, "ms"))
    return out


def peak_memory(quick: bool, peers: bool = False) -> list:
    """Peak resident growth of one region read (fresh interpreter) over the region + 16 MiB."""
    if not os.path.exists("/proc/self/status"):
        return [Result("regions.peak_memory", "regions", "peak memory: needs Linux /proc",
                       float("nan"), "")]
    import mitk

    n = 128 if quick else 256
    out = []
    with _workspace() as tmp:
        for name, key in (("raw.nii", "slice(None), 7"), ("raw.nii", "..., 9"),
                          ("gz.nii.gz", "slice(None), 7")):
            path = os.path.join(tmp, name)
            if not os.path.exists(path):
                mitk.Image(_volume(n)).save(path)
            grown, region = peak_growth("import mitk, mitk.lazy, mitk.io.nifti, mitk.io._regions",
                                        f"lz = mitk.open({path!r})\na = lz[{key}]",
                                        report=["a.nbytes"])
            out.append(Result(f"regions.peak_memory.{name}[{key}]", "regions",
                              f"peak memory growth of mitk.open and lz[{key}] of a {n}^3 {name}",
                              grown / 1e6, "MB", "the region + 16 MiB",
                              (region + 16 * MiB) / 1e6, "MB", "<= 1.0x"))
    return out


CASES = [
    ("regions.raw", raw_regions),
    ("regions.compressed", compressed_regions),
    ("regions.peak_memory", peak_memory),
]
