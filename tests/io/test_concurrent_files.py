"""Loads and saves of one path at the same time: a load is always one save's header with that
same save's pixels, and two saves never mix (SPEC 6.2).

A single file is read through one open file (a rename by a saver leaves that file as it was);
a detached pair (.nhdr, .mhd, .hdr/.img) is read under a shared lock on its directory, which
mitk's saves of a pair take exclusively (mitk.io._replace.pair_lock).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import mitk
from mitk.io._replace import TEMP_PREFIX
from mitk_testing import join_all, start_thread

HERE = os.path.dirname(os.path.abspath(__file__))
EXTS = [".nrrd", ".nhdr", ".nii", ".nii.gz", ".hdr", ".mha", ".mhd"]
SHAPE = (4, 48, 48)
BASE = (np.arange(np.prod(SHAPE)) % 997).astype(np.int16).reshape(SHAPE)


def generation_image(g: int) -> mitk.Image:
    """Pixels and header that both say ``g``: pixels are BASE + (g % 16) * 1000."""
    img = mitk.Image(BASE + np.int16((g % 16) * 1000))
    img.properties["generation"] = str(g)
    img.properties["nifti.descrip"] = f"generation {g}"
    return img


def check_one_generation(img: mitk.Image) -> int:
    """The generation both halves of a loaded image agree on (AssertionError if they do not)."""
    text = img.properties.get("nifti.descrip") or f"generation {img.properties['generation']}"
    g = int(str(text).split()[-1])
    offsets = np.unique(np.asarray(img).astype(np.int32) - BASE)
    assert offsets.tolist() == [(g % 16) * 1000], f"header says {g}, pixels {offsets[:4]}"
    return g


_CHILD = """
import sys, numpy as np, mitk
sys.path[:0] = [sys.argv[3], sys.argv[4]]
from test_concurrent_files import generation_image
target, rounds = sys.argv[1], int(sys.argv[2])
images = [generation_image(g) for g in range(16)]
print("ready", flush=True)
for g in range(rounds):
    images[g % 16].properties["generation"] = str(g)
    images[g % 16].properties["nifti.descrip"] = f"generation {g}"
    images[g % 16].save(target, fsync=False)
"""


@pytest.mark.parametrize("ext", EXTS)
def test_loads_while_another_process_saves_are_never_mixed(tmp_path, ext):
    # Before: 469 of 7,024 .nrrd loads (and 3,080 of 6,494 .hdr/.img loads) returned one save's
    # header with another's pixels, and .nhdr loads raised FileNotFoundError.
    target = tmp_path / f"x{ext}"
    generation_image(0).save(target)
    child = subprocess.Popen(
        [sys.executable, "-P", "-c", _CHILD, str(target), "100000", HERE, os.path.dirname(HERE)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        loads, seen, deadline = 0, set(), time.monotonic() + 3.0
        while time.monotonic() < deadline and child.poll() is None:
            seen.add(check_one_generation(mitk.Image(target)))
            loads += 1
    finally:
        child.kill()
        child.communicate(timeout=30)
    assert loads > 20 and len(seen) > 3, (loads, len(seen))


@pytest.mark.parametrize("ext", [".nhdr", ".mhd", ".hdr"])
def test_concurrent_saves_to_one_pair_never_mix(tmp_path, ext):
    # Before: two threads saving to one pair 300 times left 8 (.nhdr), 21 (.mhd) and 50
    # (.hdr/.img) mixed pairs: both picked the same fresh data name, or their renames
    # interleaved.  A third thread loads throughout.
    target = tmp_path / f"p{ext}"
    generation_image(0).save(target)
    errors: list[BaseException] = []
    stop = threading.Event()

    def saver(first: int) -> None:
        try:
            for g in range(first, first + 120, 2):
                generation_image(g).save(target, fsync=False)
        except BaseException as exc:
            errors.append(exc)

    def loader() -> None:
        try:
            while not stop.is_set():
                check_one_generation(mitk.Image(target))
        except BaseException as exc:
            errors.append(exc)

    reading = start_thread(loader)
    join_all([start_thread(saver, 1), start_thread(saver, 2)])
    stop.set()
    join_all([reading])
    assert errors == []
    check_one_generation(mitk.Image(target))
    leftovers = [n for n in os.listdir(tmp_path) if n.startswith(TEMP_PREFIX)]
    assert leftovers == []
    data_files = [n for n in os.listdir(tmp_path) if not n.endswith(ext)]
    assert len(data_files) == 1, data_files  # only the data file the header names


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_an_img_that_is_not_a_regular_file_is_corrupt(tmp_path, kind):
    # Was FileNotFoundError, as if it were missing.
    generation_image(0).save(tmp_path / "a.hdr")
    os.unlink(tmp_path / "a.img")
    if kind == "directory":
        os.mkdir(tmp_path / "a.img")
    else:
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs on this system")
        os.mkfifo(tmp_path / "a.img")
    with pytest.raises(mitk.CorruptFileError, match="a.img"):
        mitk.Image(tmp_path / "a.hdr")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_does_not_keep_the_pair_lock(tmp_path):
    # flock belongs to the open file, which a child inherits: a child forked while a pair was
    # being saved (a multiprocessing worker) kept every later save and load of pairs in that
    # directory waiting until it exited.
    from mitk.io._replace import pair_lock

    with pair_lock(str(tmp_path), exclusive=True):
        pid = os.fork()
        if pid == 0:  # the child lives on, doing nothing with the lock
            time.sleep(60)
            os._exit(0)
    try:
        done = threading.Event()

        def save() -> None:
            generation_image(1).save(tmp_path / "p.nhdr")
            done.set()

        saver = start_thread(save)
        assert done.wait(15), "the save waited for the forked child's copy of the lock"
        join_all([saver])
        check_one_generation(mitk.Image(tmp_path / "p.nhdr"))
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
