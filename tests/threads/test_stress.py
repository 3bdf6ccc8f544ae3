"""Thread stress: readers, writers, frame views, direct views and save/load on one image at once.

Every worker runs for a bounded time and checks invariants as it goes:

- a writer increments one time frame under the write lock, in two halves (first the upper half
  of the frame, then the lower); a reader under the read lock must never see the two halves of
  a frame differ (no half-written stripe);
- no lost writes: at the end each frame holds exactly the number of increments the writers
  counted for it;
- values only grow: a thread reading the same pixel twice (locked or through a direct view)
  never sees it go back;
- a save holds the read lock, so every file written is a consistent snapshot: each frame of a
  file loaded back is uniform;
- no deadlock: every lock wait has a timeout, every join is bounded and checked.

The budget is short by default; ``MITK_STRESS_SECONDS`` makes it longer, and running this file
as a script prints operations per second::

    python tests/threads/test_stress.py --seconds 30
"""

from __future__ import annotations

import collections
import os
import sys
import tempfile
import threading
import time

import numpy as np
import numpy.random  # noqa: F401  (imported here, not lazily by the first worker: see _Run.running)

import mitk

#: Frames, depth, rows, columns of the shared 4D image (int64, so element reads never tear).
SHAPE = (4, 6, 32, 64)
#: Lock waits are bounded: a deadlock shows up as a LockTimeout recorded as a failure.
LOCK_TIMEOUT = 20.0
#: Workers per run: 2 writers, 2 whole-image readers, 2 frame readers, 1 direct viewer, 2 savers.
THREADS = 9


def _budget() -> float:
    return float(os.environ.get("MITK_STRESS_SECONDS", "1.5"))


class _Run:
    """Shared state of one stress run: the image, the deadline, failures and counters."""

    def __init__(self, seconds: float, directory: str):
        self.image = mitk.Image(np.zeros(SHAPE, np.int64), spacing=(1.0, 1.0, 1.0))
        self.deadline = time.monotonic() + seconds
        self.directory = directory
        self.failures: list = []
        self.ops = collections.Counter()
        self.increments = [collections.Counter() for _ in range(SHAPE[0])]
        self._lock = threading.Lock()

    def running(self) -> bool:
        # Workers loop ``while True: ...; if not run.running(): break``, so each kind of operation
        # runs at least once even when its first call is slow: on a free-threaded build an import
        # made while other threads spin (mitk.io on the first save) can take seconds, and a run
        # whose budget ended before every kind ran would test nothing.
        return time.monotonic() < self.deadline and not self.failures

    def fail(self, message: str) -> None:
        with self._lock:
            self.failures.append(message)

    def record_writes(self, writer: int, per_frame: collections.Counter) -> None:
        with self._lock:
            for t, n in per_frame.items():
                self.increments[t][writer] += n
            self.ops["write"] += sum(per_frame.values())

    def count(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self.ops[kind] += n


def _uniform_frames(array: np.ndarray) -> np.ndarray | None:
    """The value of each frame if every frame is uniform, else None."""
    first = array.reshape(array.shape[0], -1)[:, :1]
    if (array.reshape(array.shape[0], -1) == first).all():
        return first[:, 0].copy()
    return None


def _writer(run: _Run, seed: int) -> None:
    rng = np.random.default_rng(seed)
    mine = collections.Counter()
    half = SHAPE[1] // 2
    while True:
        t = int(rng.integers(SHAPE[0]))
        with run.image.write(timeout=LOCK_TIMEOUT, time_step=t) as acc:
            frame = acc.array
            value = frame[0, 0, 0]
            if not (frame == value).all():
                run.fail(f"writer found frame {t} not uniform before writing")
            frame[:half] = value + 1
            frame[half:] = value + 1  # a reader must never see the halves differ
            del frame
        mine[t] += 1
        if not run.running():
            break
    run.record_writes(seed, mine)


def _reader(run: _Run) -> None:
    last = np.zeros(SHAPE[0], np.int64)
    n = 0
    while True:
        with run.image.read(timeout=LOCK_TIMEOUT) as acc:
            values = _uniform_frames(acc.array)
        if values is None:
            run.fail("a reader saw a half-written frame")
            break
        if (values < last).any():
            run.fail(f"frame values went back: {last} -> {values}")
        last = values
        n += 1
        if not run.running():
            break
    run.count("read (whole image)", n)


def _frame_reader(run: _Run, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 0
    while True:
        t = int(rng.integers(SHAPE[0]))
        with run.image.read(timeout=LOCK_TIMEOUT, time_step=t) as acc:
            frame = acc.array
            ok = frame.shape == SHAPE[1:] and (frame == frame[0, 0, 0]).all()
            del frame
        if not ok:
            run.fail(f"a frame reader saw frame {t} half-written")
            break
        n += 1
        if not run.running():
            break
    run.count("read (one frame)", n)


def _direct_viewer(run: _Run) -> None:
    # Direct views take no lock: they may see a write in progress, but each int64 element is
    # read whole and only ever grows.
    previous = None
    n = 0
    while True:
        view = run.image.as_numpy()
        corners = view[:, [0, -1], 0, 0].copy()
        if view.shape != SHAPE or view.flags.writeable:
            run.fail("a direct view has the wrong shape or is writable")
        if previous is not None and (corners < previous).any():
            run.fail("a direct view saw a pixel go back")
        previous = corners
        frame = run.image.as_numpy(time_step=n % SHAPE[0])
        if frame.shape != SHAPE[1:]:
            run.fail("a per-time-step view has the wrong shape")
        n += 1
        if not run.running():
            break
    run.count("direct view", 2 * n)


def _saver(run: _Run, ext: str) -> None:
    path = os.path.join(run.directory, f"stress-{threading.get_ident()}{ext}")
    last = np.zeros(SHAPE[0], np.int64)
    n = 0
    while True:
        run.image.save(path, timeout=LOCK_TIMEOUT, fsync=False)
        values = _uniform_frames(mitk.Image(path).as_numpy())
        if values is None:
            run.fail(f"a saved {ext} file holds a half-written frame")
            break
        if (values < last).any():
            run.fail(f"a later save holds older values ({ext})")
        last = values
        n += 1
        if not run.running():
            break
    run.count("save + load", n)


def run_stress(seconds: float, directory: str) -> dict:
    """Run every worker against one image for ``seconds``; returns counts and failures."""
    run = _Run(seconds, directory)
    workers = (
        [(_writer, (run, s)) for s in range(2)]
        + [(_reader, (run,)) for _ in range(2)]
        + [(_frame_reader, (run, s)) for s in (7, 8)]
        + [(_direct_viewer, (run,))]
        + [(_saver, (run, ext)) for ext in (".nrrd", ".nii")]
    )

    def guarded(target, args):
        try:
            target(*args)
        except BaseException as exc:  # a LockTimeout here means a deadlock
            run.fail(f"{target.__name__}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=guarded, args=w, daemon=True) for w in workers]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 2 * LOCK_TIMEOUT)
    elapsed = time.monotonic() - start
    alive = [t for t in threads if t.is_alive()]
    final = _uniform_frames(run.image.as_numpy())
    expected = [sum(c.values()) for c in run.increments]
    return {
        "seconds": elapsed,
        "ops": dict(run.ops),
        "failures": run.failures + [f"{len(alive)} thread(s) still running"] * bool(alive),
        "final": None if final is None else final.tolist(),
        "expected": expected,
    }


def test_stress_mixed_workers_keep_every_invariant(tmp_path):
    # Under pytest-run-parallel several copies run at once, each with its own image.
    result = run_stress(_budget(), str(tmp_path))
    assert result["failures"] == []
    assert result["final"] == result["expected"], "lost writes"
    for kind in ("write", "read (whole image)", "read (one frame)", "direct view", "save + load"):
        assert result["ops"].get(kind, 0) > 0, f"no {kind} ran: {result['ops']}"


def main(argv: list) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        result = run_stress(args.seconds, d)
    total = sum(result["ops"].values())
    print(f"{args.seconds:.0f} s budget, {result['seconds']:.2f} s elapsed, {THREADS} threads")
    for kind, n in sorted(result["ops"].items()):
        print(f"  {kind:20s} {n:9d} ops  {n / result['seconds']:10.0f} ops/s")
    print(f"  {'total':20s} {total:9d} ops  {total / result['seconds']:10.0f} ops/s")
    ok = not result["failures"] and result["final"] == result["expected"]
    print("invariants:", "held" if ok else f"BROKEN {result['failures']} "
          f"final={result['final']} expected={result['expected']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
