"""File I/O benchmarks: every format and encoding against np.fromfile/tofile, zlib and bz2.

Volumes are int16, 80 MiB (8 MiB with ``--quick``; bzip2 cases use 16 MiB, 4 MiB quick, since
bzip2 runs at a few MB/s), written to a temporary directory and synced before any read is
timed.  References, all measured in the same run on the same bytes:

- raw reads: ``np.fromfile``; raw writes: ``ndarray.tofile`` (our default saves fsync, so they
  are compared with ``tofile`` plus ``os.fsync``; ``fsync=False`` saves with plain ``tofile``);
- gzip reads and writes: ``zlib.decompress`` / ``zlib.compress`` at level 1; our rows force
  plain zlib so that the comparison is like for like, and the accelerator rows show ``isal``
  and ``zlib-ng`` against the same zlib reference;
- bzip2: ``bz2.decompress`` / ``bz2.compress`` at level 1;
- the default install (its accelerator where one has wheels): SimpleITK on the same one-stream
  .nii.gz with ``peers=True``, else zlib;
- peak memory: the payload size (growth of the resident high-water mark in a fresh process).

With ``peers=True`` SimpleITK, ITK, nibabel (``mmap=False``, so that it really reads) and pynrrd
read and write the same files where they are importable, and the upstream ``mitk-python`` too when an interpreter for it is configured
(:mod:`mitk._bench.upstream`).
"""

from __future__ import annotations

import bz2
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import zlib

import numpy as np

from mitk.io._streams import deflate_backend

from . import upstream
from .results import Result
from .timing import best_time, peak_growth

MiB = 1 << 20

#: (label, file name, save options) of each raw encoding: attached and detached, every format.
RAW = [(".nrrd", "raw.nrrd", {}), (".nhdr", "raw.nhdr", {}), (".nii", "raw.nii", {}),
       (".hdr/.img", "raw.hdr", {}), (".mha", "raw.mha", {}), (".mhd", "raw.mhd", {})]
GZIP = [(".nrrd", "gz.nrrd", {"compression": "gzip"}),
        (".nhdr", "gz.nhdr", {"compression": "gzip"}),
        (".nii.gz", "gz.nii.gz", {}),
        (".mha", "gz.mha", {"compression": "gzip"}),
        (".mhd/.zraw", "gz.mhd", {"compression": "gzip"})]
BZIP2 = [(".nrrd", "bz.nrrd", {"compression": "bzip2"}),
         (".nhdr", "bz.nhdr", {"compression": "bzip2"})]


def _volume(mib: int) -> np.ndarray:
    n = mib * MiB // 2
    rng = np.random.default_rng(0)
    # Smooth-ish data with noise, so that the compressors have realistic work to do.
    base = (np.arange(n, dtype=np.int64) % 4096).astype(np.int16)
    return (base + rng.integers(0, 64, n, dtype=np.int16)).reshape(-1, 256, 256)


def _gbps(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e9


def _repeat(quick: bool) -> int:
    return 3 if quick else 5


@contextlib.contextmanager
def _workspace():
    d = tempfile.mkdtemp(prefix="mitk-bench-")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


# -- peers ------------------------------------------------------------------------------------

def _version(module) -> str:
    for attr in ("__version__", "version"):
        v = getattr(module, attr, None)
        if isinstance(v, str):
            return v
    try:
        return module.Version.VersionString()  # SimpleITK
    except AttributeError:
        return ""


def _import(name: str):
    try:
        return __import__(name)
    except Exception:  # a missing or broken peer is left out of the table
        return None


def _peer_readers(path: str) -> dict:
    """name -> (module, read function) of each importable peer that reads ``path``."""
    low = path.lower()
    out = {}
    sitk = _import("SimpleITK")
    if sitk is not None:
        out["SimpleITK"] = (sitk, lambda p: sitk.GetArrayViewFromImage(sitk.ReadImage(p)))
    itk = _import("itk")
    if itk is not None:
        out["ITK"] = (itk, lambda p: itk.array_view_from_image(itk.imread(p)))
    if ".nii" in low or low.endswith(".hdr"):
        nib = _import("nibabel")
        if nib is not None:
            # mmap=False: a real read (a memory map would defer every byte to first use).
            out["nibabel"] = (nib, lambda p: np.asanyarray(nib.load(p, mmap=False).dataobj))
    if low.endswith((".nrrd", ".nhdr")):
        nrrd = _import("nrrd")
        if nrrd is not None:
            out["pynrrd"] = (nrrd, lambda p: nrrd.read(p))
    return out


def _peer_writers(path: str, arr: np.ndarray, compressed: bool) -> dict:
    """name -> (module, write function of the path) of each peer that writes ``path``'s format."""
    low = path.lower()
    out = {}
    sitk = _import("SimpleITK")
    if sitk is not None and not low.endswith(".hdr"):
        image = sitk.GetImageFromArray(arr)
        out["SimpleITK"] = (sitk, lambda p: sitk.WriteImage(image, p, compressed, 1))
    if ".nii" in low:
        nib = _import("nibabel")
        if nib is not None:
            nimg = nib.Nifti1Image(arr.T, np.eye(4))
            out["nibabel"] = (nib, lambda p: nib.save(nimg, p))
    if low.endswith(".nrrd"):
        nrrd = _import("nrrd")
        if nrrd is not None:
            header = {"encoding": "gzip" if compressed else "raw"}
            out["pynrrd"] = (nrrd, lambda p: nrrd.write(p, arr.T, header, compression_level=1))
    return out


def _peers(measure, nbytes: int, repeat: int, unit: str = "GB/s") -> dict:
    """Time each (name, module, fn) of ``measure`` and return the table's peer entries."""
    peers = {}
    for name, (module, fn) in measure.items():
        try:
            t = best_time(fn, repeat=repeat)
        except Exception:  # a peer that cannot handle the file is left out
            continue
        peers[name] = {"version": _version(module), "value": _gbps(nbytes, t), "unit": unit}
    return peers


def _upstream_peer(results: list, ops: list, repeat: int, convert) -> None:
    """Add upstream mitk-python figures (when configured) to the rows named by the ops' keys."""
    got = upstream.measure(ops, repeat)
    if got is None:
        return
    version, values = got
    rows = {r.case: r for r in results}
    for op in ops:
        if op["key"] in values and op["key"] in rows:
            rows[op["key"]].peers["mitk-python (upstream)"] = {
                "version": version, **convert(values[op["key"]])}


# -- cases ------------------------------------------------------------------------------------

def _case(prefix: str, label: str) -> str:
    return f"io.{prefix}{label.split('/')[0]}"


def raw_files(quick: bool, peers: bool = False) -> list:
    """Raw reads and writes of every format, attached and detached."""
    import mitk

    arr = _volume(8 if quick else 80)
    img = mitk.Image(arr)
    nbytes, repeat = arr.nbytes, _repeat(quick)
    out: list = []
    with _workspace() as tmp:
        ref = os.path.join(tmp, "ref.bin")
        arr.tofile(ref)
        paths = [(label, os.path.join(tmp, name)) for label, name, _ in RAW]
        for _, path in paths:
            img.save(path)
        os.sync()  # reads are timed with no writeback in flight
        t_fromfile = best_time(lambda: np.fromfile(ref, dtype=np.int16), repeat=repeat)
        for label, path in paths:
            t = best_time(lambda: mitk.Image(path), repeat=repeat)
            out.append(Result(_case("read_raw", label), "io",
                              f"read raw {label}, {nbytes // MiB} MiB", _gbps(nbytes, t), "GB/s",
                              "np.fromfile", _gbps(nbytes, t_fromfile), "GB/s", ">= 0.9x",
                              peers=_peers({n: (m, lambda f=f: f(path)) for n, (m, f) in
                                            _peer_readers(path).items()}, nbytes, repeat)
                              if peers else {}))

        def tofile_fsync():
            with open(ref, "wb") as f:
                arr.tofile(f)
                f.flush()
                os.fsync(f.fileno())

        t_durable = best_time(tofile_fsync, repeat=repeat)
        t_tofile = best_time(lambda: arr.tofile(ref), repeat=repeat)
        for label, path in paths:
            # The fsync=False saves of the row before leave writeback in flight (ext4 starts it
            # at once for a file renamed over another), which the next fsync would wait for; the
            # reference ran without any.
            os.sync()
            t = best_time(lambda: img.save(path), repeat=repeat)
            out.append(Result(_case("write_raw", label), "io",
                              f"write raw {label} (atomic, fsync)", _gbps(nbytes, t), "GB/s",
                              "ndarray.tofile + os.fsync", _gbps(nbytes, t_durable), "GB/s",
                              ">= 0.8x",
                              peers=_peers({n: (m, lambda f=f: f(path)) for n, (m, f) in
                                            _peer_writers(path, arr, False).items()},
                                           nbytes, repeat) if peers else {}))
            t = best_time(lambda: img.save(path, fsync=False), repeat=repeat)
            out.append(Result(_case("write_raw_nofsync", label), "io",
                              f"write raw {label}, fsync=False (atomic)", _gbps(nbytes, t),
                              "GB/s", "ndarray.tofile", _gbps(nbytes, t_tofile), "GB/s",
                              ">= 0.8x"))
        if peers:
            ops = [{"key": _case("read_raw", label), "kind": "read", "path": path}
                   for label, path in paths]
            ops += [{"key": _case("write_raw", label), "kind": "write", "source": paths[0][1],
                     "path": os.path.join(tmp, "up-" + os.path.basename(path))}
                    for label, path in paths if not label.startswith(".hdr")]
            _upstream_peer(out, ops, repeat,
                           lambda s: {"value": _gbps(nbytes, s), "unit": "GB/s"})
    return out


def gzip_files(quick: bool, peers: bool = False) -> list:
    """gzip (deflate) reads and writes of every format, with plain zlib inside mitk."""
    import mitk

    arr = _volume(8 if quick else 80)
    img = mitk.Image(arr)
    nbytes, repeat = arr.nbytes, _repeat(quick)
    out: list = []
    with _workspace() as tmp, deflate_backend("zlib"):
        paths = [(label, os.path.join(tmp, name), opts) for label, name, opts in GZIP]
        for _, path, opts in paths:
            img.save(path, **opts)
        # The same .nii.gz as other software writes it: one deflate stream, no block index, so
        # it inflates on one thread (the read rows before it read the files mitk writes).
        single = _single_stream_copy(paths[2][1], os.path.join(tmp, "single.nii.gz"))
        os.sync()
        stream = zlib.compress(arr.tobytes(), 1)
        t_ref = best_time(lambda: zlib.decompress(stream), repeat=repeat)
        for label, path, _ in paths:
            t = best_time(lambda: mitk.Image(path), repeat=repeat)
            out.append(Result(_case("read_gzip", label), "io", f"read gzip {label}",
                              _gbps(nbytes, t), "GB/s", "zlib.decompress, same data",
                              _gbps(nbytes, t_ref), "GB/s", ">= 1.0x",
                              peers=_peers({n: (m, lambda f=f: f(path)) for n, (m, f) in
                                            _peer_readers(path).items()}, nbytes, repeat)
                              if peers else {}))
        t = best_time(lambda: mitk.Image(single), repeat=repeat)
        out.append(Result("io.read_gzip_single_stream.nii", "io",
                          "read gzip .nii.gz, one stream (no block index)",
                          _gbps(nbytes, t), "GB/s", "zlib.decompress, same data",
                          _gbps(nbytes, t_ref), "GB/s", ">= 1.0x",
                          peers=_peers({n: (m, lambda f=f: f(single)) for n, (m, f) in
                                        _peer_readers(single).items()}, nbytes, repeat)
                          if peers else {}))
        t_ref = best_time(lambda: zlib.compress(memoryview(arr).cast("B"), 1), repeat=repeat)
        for label, path, opts in paths:
            t = best_time(lambda: img.save(path, **opts), repeat=repeat)
            out.append(Result(_case("write_gzip", label), "io", f"write gzip {label}, level 1",
                              _gbps(nbytes, t), "GB/s", "zlib.compress level 1",
                              _gbps(nbytes, t_ref), "GB/s", ">= 0.95x",
                              peers=_peers({n: (m, lambda f=f: f(path)) for n, (m, f) in
                                            _peer_writers(path, arr, True).items()},
                                           nbytes, repeat) if peers else {}))
        if peers:
            ops = [{"key": _case("read_gzip", label), "kind": "read", "path": path}
                   for label, path, _ in paths]
            ops.append({"key": "io.read_gzip_single_stream.nii", "kind": "read",
                        "path": single})
            ops.append({"key": "io.write_gzip.nii", "kind": "write", "source": paths[2][1],
                        "path": os.path.join(tmp, "up.nii.gz")})
            _upstream_peer(out, ops, repeat,
                           lambda s: {"value": _gbps(nbytes, s), "unit": "GB/s"})
    return out


def _single_stream_copy(path: str, copy: str) -> str:
    """Write ``path``'s uncompressed bytes to ``copy`` as one gzip stream, level 1, as the gzip
    module (nibabel, most tools) writes it; returns ``copy``."""
    import gzip

    with gzip.open(path, "rb") as src, open(copy, "wb") as f:
        f.write(gzip.compress(src.read(), compresslevel=1, mtime=0))
    return copy


def deflate_accelerators(quick: bool) -> list:
    """gzip reads and writes with isal and zlib-ng inside mitk, against plain zlib."""
    import mitk
    from mitk.io import _codecs

    arr = _volume(8 if quick else 80)
    img = mitk.Image(arr)
    nbytes, repeat = arr.nbytes, _repeat(quick)
    available = _codecs.accelerators_installed()
    out: list = []
    with _workspace() as tmp:
        path = os.path.join(tmp, "acc.nii.gz")
        with deflate_backend("zlib"):
            img.save(path)
        single = _single_stream_copy(path, os.path.join(tmp, "single.nii.gz"))
        os.sync()
        stream = zlib.compress(arr.tobytes(), 1)
        t_read_ref = best_time(lambda: zlib.decompress(stream), repeat=repeat)
        t_write_ref = best_time(lambda: zlib.compress(memoryview(arr).cast("B"), 1),
                                repeat=repeat)
        for name, read_target in (("isal", ">= 2.0x"), ("zlib-ng", ">= 1.0x")):
            if not available[name]:
                out.append(Result(f"io.read_gzip_{name}", "io",
                                  f"gzip with {name}: not installed (mitk-core[fast] has both)",
                                  float("nan"), ""))
                continue
            with deflate_backend(name):
                t_read = best_time(lambda: mitk.Image(path), repeat=repeat)
                t_single = best_time(lambda: mitk.Image(single), repeat=repeat)
                out_path = os.path.join(tmp, f"w-{name}.nii.gz")
                t_write = best_time(lambda: img.save(out_path), repeat=repeat)
            out.append(Result(f"io.read_gzip_{name}", "io", f"read gzip .nii.gz with {name}",
                              _gbps(nbytes, t_read), "GB/s", "zlib.decompress, same data",
                              _gbps(nbytes, t_read_ref), "GB/s", read_target))
            out.append(Result(f"io.read_gzip_single_stream_{name}", "io",
                              f"read gzip .nii.gz with {name}, one stream (no block index)",
                              _gbps(nbytes, t_single), "GB/s", "zlib.decompress, same data",
                              _gbps(nbytes, t_read_ref), "GB/s", read_target))
            out.append(Result(f"io.write_gzip_{name}", "io",
                              f"write gzip .nii.gz with {name}, level 1",
                              _gbps(nbytes, t_write), "GB/s", "zlib.compress level 1",
                              _gbps(nbytes, t_write_ref), "GB/s", ">= 2.0x"))
    return out


def bzip2_files(quick: bool, peers: bool = False) -> list:
    """bzip2 NRRD (attached and detached) reads and writes, against bz2 at level 1.

    Ours and the reference run the same single-threaded libbz2 and spend nearly all their time
    in it (a bzip2 stream cannot be cut into independently decodable pieces the way our deflate
    blocks are), so parity is what can be expected: the targets allow 5% either way, as noise.
    """
    import mitk

    arr = _volume(4 if quick else 16)
    img = mitk.Image(arr)
    nbytes, repeat = arr.nbytes, 3
    out: list = []
    with _workspace() as tmp:
        paths = [(label, os.path.join(tmp, name), opts) for label, name, opts in BZIP2]
        for _, path, opts in paths:
            img.save(path, **opts)
        stream = bz2.compress(arr.tobytes(), 1)
        t_ref = best_time(lambda: bz2.decompress(stream), repeat=repeat)
        for label, path, _ in paths:
            t = best_time(lambda: mitk.Image(path), repeat=repeat)
            readers = {n: (m, lambda f=f: f(path)) for n, (m, f) in _peer_readers(path).items()
                       if n == "pynrrd"}  # the ITKs read no bzip2 NRRD
            out.append(Result(_case("read_bzip2", label), "io",
                              f"read bzip2 {label}, {nbytes // MiB} MiB", _gbps(nbytes, t),
                              "GB/s", "bz2.decompress, same data", _gbps(nbytes, t_ref), "GB/s",
                              ">= 0.95x", peers=_peers(readers, nbytes, repeat) if peers else {}))
        t_ref = best_time(lambda: bz2.compress(memoryview(arr).cast("B"), 1), repeat=repeat)
        for label, path, opts in paths:
            t = best_time(lambda: img.save(path, **opts), repeat=repeat)
            out.append(Result(_case("write_bzip2", label), "io", f"write bzip2 {label}, level 1",
                              _gbps(nbytes, t), "GB/s", "bz2.compress level 1",
                              _gbps(nbytes, t_ref), "GB/s", ">= 0.95x"))
    return out


def _both(read, paths: list) -> None:
    ts = [threading.Thread(target=read, args=(p,)) for p in paths]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def memcpy_scaling(quick: bool) -> Result:
    """Two threads copying two buffers, against one: the machine's ceiling for the read rows.

    A read from the page cache is a copy in the kernel, so two threads reading cannot scale
    better than two threads copying memory; this row shows how far that goes here.
    """
    n = (8 if quick else 80) * MiB
    src = [np.ones(n, np.uint8) for _ in range(2)]
    dst = [np.empty(n, np.uint8) for _ in range(2)]
    repeat = _repeat(quick) + 2
    t_one = best_time(lambda: np.copyto(dst[0], src[0]), repeat=repeat)
    t_two = best_time(lambda: _both(lambda i: np.copyto(dst[i], src[i]), [0, 1]),
                      repeat=repeat)
    return Result("io.two_thread_memcpy", "io",
                  f"2 threads copying 2 buffers of {n // MiB} MiB (memcpy: the ceiling)",
                  _gbps(2 * n, t_two), "GB/s", "1 thread copying 1 buffer", _gbps(n, t_one),
                  "GB/s")


def two_thread_reads(quick: bool, peers: bool = False) -> list:
    """Two threads reading two raw .nii files, against one thread reading one."""
    import mitk

    arr = _volume(8 if quick else 80)
    nbytes, repeat = arr.nbytes, _repeat(quick) + 2
    with _workspace() as tmp:
        paths = [os.path.join(tmp, f"thread{i}.nii") for i in range(2)]
        for p in paths:
            mitk.Image(arr).save(p)
        os.sync()
        t_one = best_time(lambda: mitk.Image(paths[0]), repeat=repeat)
        t_two = best_time(lambda: _both(mitk.Image, paths), repeat=repeat)
        result = Result("io.two_thread_reads", "io", "2 threads reading 2 raw .nii files",
                        _gbps(2 * nbytes, t_two), "GB/s", "1 thread reading 1 file",
                        _gbps(nbytes, t_one), "GB/s", ">= 1.85x")
        if peers:
            # A peer's ratio here is its own scaling (its 2 threads over its 1 thread).
            for name, (module, read) in _peer_readers(paths[0]).items():
                try:
                    one = best_time(lambda: read(paths[0]), repeat=repeat)
                    two = best_time(lambda: _both(read, paths), repeat=repeat)
                except Exception:
                    continue
                result.peers[name] = {"version": _version(module),
                                      "value": _gbps(2 * nbytes, two), "unit": "GB/s",
                                      "ratio": 2 * one / two}
            got = upstream.measure(
                [{"key": "one", "kind": "read", "path": paths[0]},
                 {"key": "two", "kind": "two_reads", "paths": paths}], repeat)
            if got is not None and {"one", "two"} <= set(got[1]):
                one, two = got[1]["one"], got[1]["two"]
                result.peers["mitk-python (upstream)"] = {
                    "version": got[0], "value": _gbps(2 * nbytes, two), "unit": "GB/s",
                    "ratio": 2 * one / two}
        plain = _plain_readinto_scaling(paths, nbytes, repeat)
    return [result, plain, memcpy_scaling(quick)]


def _plain_readinto_scaling(paths: list, nbytes: int, repeat: int) -> Result:
    """The same files read by bare ``readinto`` into preallocated arrays: the OS's ceiling."""
    size = os.path.getsize(paths[0])
    out = [np.empty(size, np.uint8) for _ in paths]

    def read(i):
        with open(paths[i], "rb", buffering=0) as f:
            f.readinto(out[i])

    t_one = best_time(lambda: read(0), repeat=repeat)
    t_two = best_time(lambda: _both(read, [0, 1]), repeat=repeat)
    return Result("io.two_thread_readinto", "io",
                  "2 threads: bare readinto of the same files into preallocated arrays",
                  _gbps(2 * nbytes, t_two), "GB/s", "1 thread, 1 file", _gbps(nbytes, t_one),
                  "GB/s")


_PEER_MODULES = {"SimpleITK": "SimpleITK", "nibabel": "nibabel", "pynrrd": "nrrd"}
_PEER_PEAK = {
    "SimpleITK": ("import SimpleITK as sitk",
                  "a = sitk.GetArrayViewFromImage(sitk.ReadImage({path!r}))"),
    "nibabel": ("import nibabel as nib",
                "a = numpy.asanyarray(nib.load({path!r}, mmap=False).dataobj)"),
    "pynrrd": ("import nrrd", "a = nrrd.read({path!r})"),
}


def _peak_bytes(setup: str, load: str, exe: str = sys.executable) -> int:
    return peak_growth(setup, load, exe=exe)[0]


def peak_memory(quick: bool, peers: bool = False) -> list:
    """Peak resident memory growth of one read in a fresh interpreter, over the payload."""
    if not os.path.exists("/proc/self/status"):
        return [Result("io.peak_memory", "io", "peak memory: needs Linux /proc", float("nan"), "")]
    import mitk

    arr = _volume(8 if quick else 80)
    img = mitk.Image(arr)
    out = []
    with _workspace() as tmp:
        for name, opts in (("raw.nii", {}), ("gz.nii.gz", {}), ("gz.nrrd", {"compression": "gzip"}),
                           ("gz.mha", {"compression": "gzip"}), ("bz.nrrd", {"compression": "bzip2"}),
                           ("gz.mhd", {"compression": "gzip"}), ("single.nii.gz", None)):
            path = os.path.join(tmp, name)
            if opts is None:  # one gzip stream without a block index, as other tools write
                _single_stream_copy(os.path.join(tmp, "gz.nii.gz"), path)
            else:
                img.save(path, **opts)
            grown = _peak_bytes("import mitk, mitk.io.nifti, mitk.io.nrrd, mitk.io.metaimage",
                                f"img = mitk.Image({path!r})")
            result = Result(f"io.peak_memory.{name}", "io", f"peak memory growth of a read, {name}",
                            grown / 1e6, "MB", "the payload", arr.nbytes / 1e6, "MB", "<= 1.1x")
            if peers and not name.startswith("bz"):
                for peer, (setup, load) in _PEER_PEAK.items():
                    if peer == "nibabel" and ".nii" not in name or \
                            peer == "pynrrd" and not name.endswith(".nrrd"):
                        continue
                    try:
                        b = _peak_bytes(setup, load.format(path=path))
                    except (subprocess.CalledProcessError, ValueError):
                        continue
                    module = _import(_PEER_MODULES[peer])
                    result.peers[peer] = {"version": _version(module) if module else "",
                                          "value": b / 1e6, "unit": "MB"}
                exe = upstream.interpreter()
                if exe is not None:
                    got = upstream.measure([{"key": "peak", "kind": "peak", "path": path}], 1)
                    if got is not None and "peak" in got[1]:
                        result.peers["mitk-python (upstream)"] = {
                            "version": got[0], "value": got[1]["peak"] / 1e6, "unit": "MB"}
            out.append(result)
    return out


def default_install(quick: bool, peers: bool = False) -> list:
    """The default install's gzip (its accelerator, or zlib where none has wheels) on a foreign
    one-stream .nii.gz (as nibabel writes it), read and write; with ``peers``, against
    SimpleITK on the same file and data (the figures it must match), else against zlib."""
    import mitk
    from mitk.io._streams import accelerator

    arr = _volume(4 if quick else 20)  # 20 MiB int16: the volume of the figures
    img = mitk.Image(arr)
    nbytes, repeat, mib = arr.nbytes, _repeat(quick), arr.nbytes // MiB
    sitk = _import("SimpleITK") if peers else None
    with _workspace() as tmp:
        path, copy = os.path.join(tmp, "d.nii.gz"), os.path.join(tmp, "w.nii.gz")
        img.save(path)
        single = _single_stream_copy(path, os.path.join(tmp, "single.nii.gz"))
        os.sync()
        t_read = best_time(lambda: mitk.Image(single), repeat=repeat)
        t_write = best_time(lambda: img.save(copy), repeat=repeat)
        if sitk is not None:
            simg = sitk.GetImageFromArray(arr)
            refs = [f"SimpleITK {_version(sitk)} ReadImage, same file",
                    f"SimpleITK {_version(sitk)} WriteImage, level 1"]
            t_refs = [best_time(lambda: sitk.GetArrayViewFromImage(sitk.ReadImage(single)),
                                repeat=repeat),
                      best_time(lambda: sitk.WriteImage(simg, copy, True, 1), repeat=repeat)]
            target, note = ">= 1.0x", ""
        else:
            stream = zlib.compress(arr.tobytes(), 1)
            refs = ["zlib.decompress, same data", "zlib.compress level 1"]
            t_refs = [best_time(lambda: zlib.decompress(stream), repeat=repeat),
                      best_time(lambda: zlib.compress(memoryview(arr).cast("B"), 1),
                                repeat=repeat)]
            target, note = "", " (target vs SimpleITK: run with --peers)"
    backend = accelerator()
    return [Result("io.default_read_gzip_single_stream.nii", "io",
                   f"default install ({backend}): read a one-stream .nii.gz, {mib} MiB{note}",
                   _gbps(nbytes, t_read), "GB/s", refs[0], _gbps(nbytes, t_refs[0]), "GB/s",
                   target),
            Result("io.default_write_gzip.nii", "io",
                   f"default install ({backend}): write .nii.gz, level 1, {mib} MiB{note}",
                   _gbps(nbytes, t_write), "GB/s", refs[1], _gbps(nbytes, t_refs[1]), "GB/s",
                   target)]


#: (name, function) of every I/O case, in table order.
CASES = [
    ("io.raw", raw_files),
    ("io.gzip", gzip_files),
    ("io.deflate_accelerators", deflate_accelerators),
    ("io.default_install", default_install),
    ("io.bzip2", bzip2_files),
    ("io.two_thread_reads", two_thread_reads),
    ("io.peak_memory", peak_memory),
]
