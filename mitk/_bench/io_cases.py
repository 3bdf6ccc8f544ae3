"""File I/O benchmarks: each format and encoding against np.fromfile/tofile and zlib, plus peers.

Volumes are int16 (80 MiB; 8 MiB with ``--quick``), written to a temporary directory.  Raw reads
are compared with ``np.fromfile`` of the same bytes, raw writes with ``ndarray.tofile``, gzip
reads with ``zlib`` decompressing the same stream into memory, gzip writes with ``zlib`` at the
same level.  Peak memory of a read is measured in a fresh subprocess (``ru_maxrss`` growth over
the payload).  With ``peers=True`` SimpleITK, nibabel and pynrrd read the same files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zlib

import numpy as np

from .results import Result
from .timing import best_time

MiB = 1 << 20


def _volume(quick: bool) -> np.ndarray:
    n = (8 if quick else 80) * MiB // 2
    rng = np.random.default_rng(0)
    # Smooth-ish data with noise, so that deflate has realistic work to do.
    base = (np.arange(n, dtype=np.int64) % 4096).astype(np.int16)
    return (base + rng.integers(0, 64, n, dtype=np.int16)).reshape(-1, 256, 256)


def _gbps(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e9


def _peer_reads(path: str, nbytes: int, repeat: int) -> dict:
    peers = {}
    low = path.lower()
    try:
        import SimpleITK as sitk

        t = best_time(lambda: sitk.GetArrayViewFromImage(sitk.ReadImage(path)), repeat=repeat)
        peers["SimpleITK"] = {"version": sitk.Version.VersionString(), "value": _gbps(nbytes, t),
                              "unit": "GB/s"}
    except Exception:  # a missing or failing peer is left out of the table
        pass
    if ".nii" in low:
        try:
            import nibabel as nib

            t = best_time(lambda: np.asanyarray(nib.load(path).dataobj), repeat=repeat)
            peers["nibabel"] = {"version": nib.__version__, "value": _gbps(nbytes, t),
                                "unit": "GB/s"}
        except Exception:
            pass
    if low.endswith(".nrrd"):
        try:
            import nrrd

            t = best_time(lambda: nrrd.read(path), repeat=repeat)
            peers["pynrrd"] = {"version": nrrd.__version__, "value": _gbps(nbytes, t),
                               "unit": "GB/s"}
        except Exception:
            pass
    return peers


def io_reads_writes(quick: bool, peers: bool = False) -> list:
    """Raw and gzip reads and writes of every format."""
    import mitk

    arr = _volume(quick)
    img = mitk.Image(arr)
    nbytes = arr.nbytes
    repeat = 3 if quick else 5
    out: list = []
    tmp = tempfile.mkdtemp(prefix="mitk-bench-")
    raw = [(ext, os.path.join(tmp, "raw" + ext), {}) for ext in (".nrrd", ".nii", ".mha")]
    gz = [(ext, os.path.join(tmp, "gz" + ext), opts) for ext, opts in
          ((".nrrd", {"compression": "gzip"}), (".nii.gz", {}), (".mha", {"compression": "gzip"}))]
    try:
        # Every file first, then a sync: reads are timed with no writeback in flight, and the
        # reference and mitk see the same page-cache state.
        ref_file = os.path.join(tmp, "ref.bin")
        arr.tofile(ref_file)
        for _, path, opts in raw + gz:
            img.save(path, **opts)
        threads = _two_thread_files(tmp, img)
        os.sync()
        t_fromfile = best_time(lambda: np.fromfile(ref_file, dtype=np.int16), repeat=repeat)
        for ext, path, _ in raw:
            t_read = best_time(lambda: mitk.Image(path), repeat=repeat)
            out.append(Result(f"io.read_raw{ext}", "io", f"read raw {ext}, {nbytes // MiB} MiB",
                              _gbps(nbytes, t_read), "GB/s", "np.fromfile",
                              _gbps(nbytes, t_fromfile), "GB/s", ">= 0.9x",
                              peers=_peer_reads(path, nbytes, repeat) if peers else {}))
        stream = zlib.compress(arr.tobytes(), 1)
        t_zlib_d = best_time(lambda: zlib.decompress(stream), repeat=repeat)
        for ext, path, _ in gz:
            t_read = best_time(lambda: mitk.Image(path), repeat=repeat)
            out.append(Result(f"io.read_gzip{ext}", "io", f"read gzip {ext}",
                              _gbps(nbytes, t_read), "GB/s", "zlib.decompress, same data",
                              _gbps(nbytes, t_zlib_d), "GB/s", ">= 1.0x",
                              peers=_peer_reads(path, nbytes, repeat) if peers else {}))
        out.append(_two_thread_reads(threads, nbytes, repeat))
        for path in (gz[1][1], raw[0][1]):
            out.append(_peak_memory(path, nbytes))
        # Writes last.  Ours fsync (atomic save); tofile does not, so the reference is the
        # speed of handing the bytes to the page cache.
        t_tofile = best_time(lambda: arr.tofile(ref_file), repeat=repeat)
        for ext, path, _ in raw:
            t_write = best_time(lambda: img.save(path), repeat=repeat)
            out.append(Result(f"io.write_raw{ext}", "io", f"write raw {ext} (atomic, fsync)",
                              _gbps(nbytes, t_write), "GB/s", "ndarray.tofile (no fsync)",
                              _gbps(nbytes, t_tofile), "GB/s", ">= 0.8x"))
        t_zlib_c = best_time(lambda: zlib.compress(memoryview(arr).cast("B"), 1),
                             repeat=repeat)
        for ext, path, opts in gz:
            t_write = best_time(lambda: img.save(path, **opts), repeat=repeat)
            out.append(Result(f"io.write_gzip{ext}", "io", f"write gzip {ext}, level 1",
                              _gbps(nbytes, t_write), "GB/s", "zlib.compress level 1",
                              _gbps(nbytes, t_zlib_c), "GB/s", ">= 0.95x"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _two_thread_files(tmp: str, img) -> list:
    paths = [os.path.join(tmp, f"thread{i}.nii") for i in range(2)]
    for p in paths:
        img.save(p)
    return paths


def _two_thread_reads(paths: list, nbytes: int, repeat: int) -> Result:
    """Two threads reading two raw .nii files, against one thread reading one."""
    import mitk

    def both():
        ts = [threading.Thread(target=mitk.Image, args=(p,)) for p in paths]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    t_one = best_time(lambda: mitk.Image(paths[0]), repeat=repeat)
    t_two = best_time(both, repeat=repeat)
    return Result("io.two_thread_reads", "io", "2 threads reading 2 raw .nii files",
                  _gbps(2 * nbytes, t_two), "GB/s", "1 thread reading 1 file",
                  _gbps(nbytes, t_one), "GB/s", ">= 1.85x")


def _peak_memory(path: str, nbytes: int) -> Result:
    """Peak resident memory growth of one read in a fresh interpreter, over the payload."""
    # VmHWM (the high-water mark of resident memory) is exact at the time it is read, unlike
    # getrusage's ru_maxrss, which Linux updates lazily.  Linux only; elsewhere: not measured.
    code = (
        "import numpy, mitk, mitk.io.nifti, mitk.io.nrrd, mitk.io.metaimage\n"
        "def hwm():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmHWM:'):\n"
        "            return int(line.split()[1]) * 1024\n"
        "before = hwm()\n"
        f"img = mitk.Image({path!r})\n"
        "print(hwm() - before)\n"
    )
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True,
                         check=True)
    grown = int(out.stdout)
    return Result(f"io.peak_memory{os.path.splitext(path)[1]}", "io",
                  f"peak memory growth of a read, {os.path.basename(path)}", grown / 1e6, "MB",
                  "the payload", nbytes / 1e6, "MB", "<= 1.1x")


CASES = [("io.formats", io_reads_writes)]
