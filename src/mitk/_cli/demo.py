"""``python -m mitk demo``: a realistic threaded pipeline on data it makes itself.

A loader thread synthesises a 4D acquisition frame by frame, writing each frame under the image's
write lock (a frame accessor), while worker threads wait for frames and measure them under read
locks.  The volume is then saved in every format, loaded back by a second loader thread while the
workers re-check the frames, and compared bit for bit.  Everything it reports is measured.
"""

from __future__ import annotations

import os
import queue
import shutil
import statistics
import tempfile
import threading
import time

import numpy as np

__all__ = ["run_demo"]


def _phantom_frame(t: int, size: int) -> np.ndarray:
    # A bright sphere moving along x through a noisy background: something worth measuring.
    z, y, x = np.ogrid[:size, :size, :size]
    cx = size * (0.3 + 0.4 * t / 7.0)
    r2 = (x - cx) ** 2 + (y - size / 2) ** 2 + (z - size / 2) ** 2
    rng = np.random.default_rng(t)
    frame = 100.0 * (r2 < (size / 5) ** 2) + rng.normal(0, 5, (size, size, size))
    return frame.astype(np.float32)


def _measure(frame: np.ndarray) -> tuple[float, float]:
    mask = frame > 50
    xs = np.nonzero(mask.any(axis=(0, 1)))[0]
    return float(frame.mean()), float(xs.mean()) if xs.size else float("nan")


def _pipeline(image, frames: int, size: int, workers: int, out) -> dict:
    ready: queue.Queue = queue.Queue()
    waits: list[float] = []
    results: dict[int, tuple] = {}
    lock = threading.Lock()

    def loader():
        for t in range(frames):
            data = _phantom_frame(t, size)
            with image.write(timeout=30, time_step=t) as acc:
                acc[...] = data
            ready.put(t)
        for _ in range(workers):
            ready.put(None)

    def worker():
        while True:
            t = ready.get(timeout=60)
            if t is None:
                return
            t0 = time.perf_counter()
            with image.read(timeout=30, time_step=t) as acc:
                waited = time.perf_counter() - t0
                stats = _measure(acc.array)
            with lock:
                waits.append(waited)
                results[t] = stats

    t0 = time.perf_counter()
    threads = [threading.Thread(target=loader, name="loader")]
    threads += [threading.Thread(target=worker, name=f"worker-{i}") for i in range(workers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
        if th.is_alive():
            raise RuntimeError(f"{th.name} did not finish")
    elapsed = time.perf_counter() - t0
    return {"elapsed": elapsed, "waits": waits, "results": results}


def _entries(directory: str) -> dict[str, tuple[int, int, int]]:
    # (inode, size, mtime) per file: an atomic save renames a new file into place, so every
    # file it wrote differs here from what was there before.
    return {e.name: (e.inode(), e.stat().st_size, e.stat().st_mtime_ns)
            for e in os.scandir(directory) if e.is_file()}


def run_demo(frames: int = 8, size: int = 96, workers: int = 2, keep: str | None = None) -> int:
    """Run the demo and print what happened; returns 0 on success, 1 if a check failed."""
    import mitk

    if frames < 1 or size < 8 or workers < 1:
        raise mitk.ArgumentError("demo needs --frames >= 1, --size >= 8 and --workers >= 1")
    out = print
    mb = frames * size**3 * 4 / 1e6
    out(f"mitk {mitk.__version__} demo: {frames} frames of {size}^3 float32 ({mb:.1f} MB), "
        f"1 loader + {workers} worker threads")

    image = mitk.Image()
    image.initialize("float32", dimensions=[size, size, size, frames])
    image.spacing = (0.8, 0.8, 1.5)
    image.origin = (-40.0, -40.0, -70.0)
    image.properties["demo.description"] = "moving sphere phantom"

    run = _pipeline(image, frames, size, workers, out)
    waits = sorted(run["waits"])
    out(f"  acquisition: loader wrote {frames} frames under frame write locks while workers read "
        f"them in {run['elapsed'] * 1e3:.1f} ms")
    out(f"  read-lock waits: median {statistics.median(waits) * 1e6:.1f} us, "
        f"max {waits[-1] * 1e6:.1f} us over {len(waits)} acquisitions")
    for t in sorted(run["results"]):
        mean, cx = run["results"][t]
        out(f"    frame {t}: mean {mean:7.3f}, sphere centre at x = {cx:5.1f} voxels")

    failures = 0
    directory = keep or tempfile.mkdtemp(prefix="mitk-demo-")
    os.makedirs(directory, exist_ok=True)
    reference = np.array(image)  # a private copy to compare against
    targets = [("volume.nrrd", {"compression": "gzip"}), ("volume.nii.gz", {}),
               ("volume.mha", {}), ("volume.nhdr", {})]
    # A temporary folder is removed at the end, so its name would be of no use to the reader.
    out(f"  files in {directory} (kept):" if keep else
        "  files in a temporary folder, removed when the demo ends (--keep DIR keeps them):")
    saved: list[str] = []
    for name, options in targets:
        path = os.path.join(directory, name)
        before = _entries(directory)
        t0 = time.perf_counter()
        image.save(path, **options)
        dt = time.perf_counter() - t0
        saved.append(path)
        # What the save wrote: a detached header (.nhdr) is a few hundred bytes; the pixels
        # are in the data file written beside it.
        written = sorted((n for n, stat in _entries(directory).items() if before.get(n) != stat),
                         key=lambda n: (n != name, n))
        size = sum(os.path.getsize(os.path.join(directory, n)) for n in written)
        files = " + ".join(written) if len(written) > 1 else ""
        out(f"    saved {name:<14} {size / 1e6:7.2f} MB in {dt * 1e3:7.1f} ms"
            + (f" ({files})" if files else ""))

    loaded: dict[str, object] = {}

    def reload(path):
        loaded[path] = mitk.Image.load(path)

    t0 = time.perf_counter()
    readers = [threading.Thread(target=reload, args=(p,)) for p in saved]
    for th in readers:
        th.start()
    for th in readers:
        th.join(120)
    dt = time.perf_counter() - t0
    out(f"  reloaded {len(saved)} files in parallel threads in {dt * 1e3:.1f} ms")
    for path in saved:
        back = loaded.get(path)
        ok = (back is not None and back.shape == image.shape
              and np.array_equal(np.asarray(back), reference)
              and np.allclose(back.spacing, image.spacing)
              and np.allclose(back.origin, image.origin))
        failures += not ok
        out(f"    {os.path.basename(path):<14} {'identical' if ok else 'DIFFERENT'}")
    if not keep:
        shutil.rmtree(directory, ignore_errors=True)
    out("demo finished: " + ("all checks passed" if not failures else f"{failures} check(s) failed"))
    return 1 if failures else 0
