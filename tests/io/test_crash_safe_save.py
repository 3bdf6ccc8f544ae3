"""Crash-safe saves: a kill or a failure leaves the complete old file or the complete new one.

SPEC section 6.2 ("Atomic save") and section 11 item 13.  A child process
(``save_loop_child.py``) saves one 4 MiB image to one path in a loop, one *generation* after the
other; the test SIGKILLs it at a random moment and then checks that the path loads as exactly the
generation before the interrupted save or the interrupted save's own, bit for bit.  A killed
process cannot remove its temporary file, so a stale ``.mitk-tmp-*`` is allowed after a kill, but
it must carry the prefix and never be read as data.  A save that fails with an exception, on the
other hand, must leave no temporary file and the old file(s) byte for byte.

Detached pairs write the data file first and the header last.  ``.nhdr`` and ``.mhd`` give the
new data a name no file has yet (``x.raw``, then ``x.1.raw``, ...), so the old pair is intact
until the new header replaces it.  A NIfTI ``.hdr``/``.img`` pair cannot: the format fixes the
data file's name, so a window remains between its two renames in which the old header sits
beside the new data (documented in ``mitk.io.nifti``); the strict xfail tests below hit it on
purpose.  The random-kill loop also alternates raw and gzip for ``.nhdr``/``.mhd``.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import os
import random
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from mitk_testing import join_all, sample_array, start_thread

import mitk
from mitk.errors import LockTimeout, UnsupportedFormatError
from mitk.io import _replace, _streams, metaimage, nifti, nrrd
from mitk.io._replace import TEMP_PREFIX

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL") or sys.platform == "win32",
                                reason="needs POSIX processes and SIGKILL")

CHILD = Path(__file__).with_name("save_loop_child.py")
_spec = importlib.util.spec_from_file_location("save_loop_child", CHILD)
child = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(child)

#: (extension, naming of the child's saves, data files a complete save may leave beside it).
FORMATS = {
    ".nrrd": ("same", ()),
    ".nii": ("same", ()),
    ".nii.gz": ("same", ()),
    ".mha": ("same", ()),
    ".nhdr": ("alternate", (".raw", ".raw.gz")),
    ".mhd": ("alternate", (".raw", ".zraw")),
}
KILLS_PER_FORMAT = 12
#: Kills per format that must land inside a save (after ``start g``, before ``done g``).
MIN_MID_SAVE = 9
# The requirement: at least 50 kills in total, and they must not all miss the saves.
assert len(FORMATS) * MIN_MID_SAVE >= 50

#: Bound on any wait for the child (startup, readiness, exit); nothing may hang CI.
CHILD_TIMEOUT = 60.0


# -- the child process ------------------------------------------------------------------------

def _spawn(target: Path, naming: str, *extra: str) -> subprocess.Popen:
    # One BLAS thread: the child does no linear algebra, and on 2 cores idle threads only cost.
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-P", str(CHILD), str(target), naming, *extra],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, bufsize=0, env=env)


def _wait_until_ready(proc: subprocess.Popen) -> bytes:
    """Read the child's stdout until ``done 0`` (a complete file exists); returns what was read."""
    fd = proc.stdout.fileno()
    seen = b""
    deadline = time.monotonic() + CHILD_TIMEOUT
    while b"done 0\n" not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"child not ready within {CHILD_TIMEOUT} s: {seen!r}"
        readable, _, _ = select.select([fd], [], [], remaining)
        if readable:
            chunk = os.read(fd, 4096)
            if not chunk:
                proc.wait(CHILD_TIMEOUT)
                pytest.fail(f"child exited ({proc.returncode}) before its first save: "
                            f"{proc.stderr.read().decode(errors='replace')}")
            seen += chunk
    return seen


def _finish(proc: subprocess.Popen, seen: bytes) -> list:
    """Collect the rest of the child's output after its death; returns its lines."""
    out, err = proc.communicate(timeout=CHILD_TIMEOUT)
    assert proc.returncode == -signal.SIGKILL, (
        f"child ended with {proc.returncode}, not by SIGKILL: {err.decode(errors='replace')}")
    return (seen + out).decode("ascii").split()


def _last_event(lines: list) -> tuple:
    """("start", g) or ("done", g) from the child's tokenised output."""
    assert len(lines) >= 2 and len(lines) % 2 == 0, lines[-6:]
    return lines[-2], int(lines[-1])


# -- checking what a kill left ----------------------------------------------------------------

_BASE = child.pattern()


def _generation(img: mitk.Image, ext: str) -> int:
    if ext.startswith(".nii") or ext == ".hdr":
        descrip = img.properties["nifti.descrip"]
        assert descrip.startswith("generation "), descrip
        return int(descrip.split()[1])
    return int(img.properties["crash.generation"])


def _load_generation(target: Path, ext: str) -> int:
    """Load ``target``, assert it is bit-exactly one complete generation, return its number."""
    img = mitk.Image(target)
    g = _generation(img, ext)
    arr = img.as_numpy()
    assert arr.dtype == np.int16 and arr.shape == child.SHAPE, (arr.dtype, arr.shape)
    expected = child.expected_pixels(_BASE, g)
    if not np.array_equal(arr, expected):
        wrong = int(np.count_nonzero(arr != expected))
        pytest.fail(f"{target.name} claims generation {g} but {wrong} of {arr.size} pixels "
                    "differ from it (a mix of two saves, or a partial file)")
    return g


def _stale_temporaries(directory: Path, target: Path, data_suffixes: tuple) -> list:
    """Names a kill left behind; asserts each is a prefixed temporary and never loads as data."""
    stem = target.name[: -len(_ext_of(target))]
    ours = {target.name} | {stem + s for s in data_suffixes}
    stale = sorted(n for n in os.listdir(directory) if n not in ours)
    for name in stale:
        assert name.startswith(TEMP_PREFIX), f"unexpected file after a kill: {name}"
        # The content is never sniffed: a temporary is refused by its name alone.
        with pytest.raises(UnsupportedFormatError):
            mitk.Image(directory / name)
    if data_suffixes:
        assert TEMP_PREFIX not in target.read_text("utf-8", errors="replace")
    return stale


def _ext_of(path: Path) -> str:
    name = path.name
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix


def _save_seconds(directory: Path, ext: str, naming: str) -> float:
    """How long one save of the child's image takes here (sets the spread of kill delays)."""
    img = mitk.Image(child.expected_pixels(_BASE, 0))
    target = directory / f"calibrate{ext}"
    options = {"compression": "gzip"} if naming == "alternate" else {}
    img.save(target)
    start = time.perf_counter()
    img.save(target, **options)
    elapsed = time.perf_counter() - start
    for name in os.listdir(directory):
        os.unlink(directory / name)
    return elapsed


@pytest.mark.parametrize("ext", list(FORMATS))
def test_sigkill_at_random_points_leaves_the_old_or_the_new_file(tmp_path, ext):
    naming, data_suffixes = FORMATS[ext]
    rng = random.Random(f"crash-safe {ext}")  # fixed delays; the timing itself still varies
    # Kills spread over about three saves: every phase of a save (header, pixels, fsync, rename,
    # directory fsync) gets its share, whatever this machine's save speed.
    span = max(0.03, 3 * _save_seconds(tmp_path, ext, naming))
    target = tmp_path / f"image{ext}"
    mid_save = with_temporary = new_in_place = 0
    stale_total = 0
    for _ in range(KILLS_PER_FORMAT):
        proc = _spawn(target, naming)
        try:
            seen = _wait_until_ready(proc)
            time.sleep(rng.uniform(0.0, span))
            proc.send_signal(signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
        lines = _finish(proc, seen)
        event, g = _last_event(lines)
        stale = _stale_temporaries(tmp_path, target, data_suffixes)
        loaded = _load_generation(target, ext)
        if event == "start":  # killed inside save(g): the old file or the new one
            mid_save += 1
            assert loaded in (g - 1, g), (event, g, loaded)
            with_temporary += bool(stale)
            new_in_place += loaded == g
        else:  # killed between two saves: the last one is complete
            assert loaded == g, (event, g, loaded)
        stale_total += len(stale)
        for name in os.listdir(tmp_path):  # the next child starts from an empty directory
            os.unlink(tmp_path / name)
    print(f"{ext}: {KILLS_PER_FORMAT} kills, {mid_save} mid-save ({with_temporary} with a "
          f"temporary on disk, {new_in_place} after the rename), {stale_total} stale temporaries")
    assert mid_save >= MIN_MID_SAVE, f"only {mid_save} of {KILLS_PER_FORMAT} kills hit a save"
    # At least one kill interrupted the writing itself (the temporary existed), not only the
    # bookkeeping around it.
    assert with_temporary >= 1


# -- the window between a pair's two renames, hit deterministically -------------------------

_PAIR_WINDOW = ("documented window of NIfTI pairs: the .img keeps its name, so the old .hdr "
                "ends up over the new data (SPEC 6.2: old pair or new pair)")
# What the window looks like to these tests (anything else, e.g. a crash, is a real failure).
_WINDOW_SYMPTOMS = (AssertionError, pytest.fail.Exception)


def _kill_between_renames(tmp_path: Path, ext: str, naming: str) -> Path:
    target = tmp_path / f"pair{ext}"
    proc = _spawn(target, naming, "kill-after-data")
    try:
        seen = _wait_until_ready(proc)
    except BaseException:
        proc.kill()
        raise
    lines = _finish(proc, seen)  # the child kills itself; _finish checks that it did
    assert _last_event(lines) == ("start", 1), lines
    return target


@pytest.mark.parametrize("ext", [".nhdr", ".mhd"])
def test_kill_between_the_renames_keeps_the_old_pair_when_the_data_name_changes(tmp_path, ext):
    # Generation 1 is gzip: its data file has a new name, the old header's data file stays.
    target = _kill_between_renames(tmp_path, ext, "alternate")
    assert _load_generation(target, ext) == 0


_NIFTI_PAIR = pytest.mark.xfail(strict=True, raises=_WINDOW_SYMPTOMS, reason=_PAIR_WINDOW)


@pytest.mark.parametrize("ext", [".nhdr", ".mhd", pytest.param(".hdr", marks=_NIFTI_PAIR)])
def test_kill_between_the_renames_keeps_the_old_pair(tmp_path, ext):
    target = _kill_between_renames(tmp_path, ext, "same")
    assert _load_generation(target, ext) == 0


# -- failed saves: no temporary file, the old file(s) byte for byte -------------------------

_SINGLE = (".nrrd", ".nii", ".nii.gz", ".mha")
_PAIRS = {".nhdr": (nrrd, ".raw"), ".mhd": (metaimage, ".raw"), ".hdr": (nifti, ".img")}
_WRITERS = {".nrrd": nrrd, ".nii": nifti, ".nii.gz": nifti, ".mha": metaimage}


def _snapshot(directory: Path) -> dict:
    return {p.name: p.read_bytes() for p in directory.iterdir()}


def _old_and_new(ext: str):
    old = mitk.Image(sample_array(np.int16, (3, 8, 9), seed=1))
    new = mitk.Image(sample_array(np.int16, (3, 8, 9), seed=2))
    for img, g in ((old, 0), (new, 1)):
        img.properties["crash.generation"] = g
        img.properties["nifti.descrip"] = f"generation {g}"
    return old, new


def _fail_before_rename_of(monkeypatch, module, suffix: str) -> None:
    # The injected error comes after the last byte, where a real fsync reports EIO or a
    # delayed-allocation ENOSPC: the temporary is complete and must still be removed.
    # Every format writes its files through mitk.io._replace.atomic_write.
    real = _replace.atomic_write

    @contextlib.contextmanager
    def failing(path, **kwargs):
        with real(path, **kwargs) as f:
            yield f
            if os.fspath(path).endswith(suffix):
                raise OSError(errno.EIO, "injected I/O error before the rename", path)

    monkeypatch.setattr(_replace, "atomic_write", failing)


def _fail_while_writing(monkeypatch) -> None:
    def failing(f, *args, **kwargs):
        f.write(b"\0" * 1000)  # a partial payload in the temporary
        raise OSError(errno.ENOSPC, "injected: no space left on device")

    monkeypatch.setattr(_streams, "write_from", failing)
    monkeypatch.setattr(_streams, "compress_from", failing)


def _hold_write_lock(img: mitk.Image):
    held, release = threading.Event(), threading.Event()

    def holder():
        with img.write():
            held.set()
            release.wait(30)

    thread = start_thread(holder)
    assert held.wait(30)
    return thread, release


_CASES = [(ext, stage) for ext in _SINGLE
          for stage in ("while writing", "before the rename", "lock timeout")]
_CASES += [(ext, stage) for ext in _PAIRS
           for stage in ("while writing", "before the data rename", "lock timeout")]
_CASES += [pytest.param(ext, "before the header rename",
                        marks=[_NIFTI_PAIR] if ext == ".hdr" else [])
           for ext in _PAIRS]


@pytest.mark.thread_unsafe  # monkeypatches the writers' module globals
@pytest.mark.parametrize("ext, stage", _CASES)
def test_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, ext, stage):
    old, new = _old_and_new(ext)
    target = tmp_path / f"image{ext}"
    old.save(target)
    before = _snapshot(tmp_path)
    thread = None
    if stage == "while writing":
        _fail_while_writing(monkeypatch)
        expected = OSError
    elif stage == "lock timeout":
        thread, release = _hold_write_lock(new)
        expected = LockTimeout
    elif ext in _SINGLE:
        _fail_before_rename_of(monkeypatch, _WRITERS[ext], ext)
        expected = OSError
    else:
        module, data_suffix = _PAIRS[ext]
        _fail_before_rename_of(monkeypatch, module,
                               data_suffix if stage == "before the data rename" else ext)
        expected = OSError
    try:
        with pytest.raises(expected):
            new.save(target, timeout=0.05)
    finally:
        if thread is not None:
            release.set()
            join_all([thread])
    monkeypatch.undo()
    assert not [n for n in os.listdir(tmp_path) if n.startswith(TEMP_PREFIX)]
    assert _snapshot(tmp_path) == before
    back = mitk.Image(target)
    np.testing.assert_array_equal(back.as_numpy(), old.as_numpy())
