"""Child process of ``test_crash_safe_save.py``: save one image to one path, over and over.

Run as ``python -P save_loop_child.py TARGET NAMING [kill-after-data]``.  The script is not a
test module (pytest does not collect it) and imports nothing from ``tests/``, so it runs in a
bare interpreter with only the installed ``mitk``.

Every save writes *generation* ``g`` (0, 1, 2, ...): the property ``crash.generation = g``
(and, because NIfTI drops plain properties, ``nifti.descrip = "generation g"``) and the pixels
``pattern + g % 2``.  ``pattern`` is a fixed pseudo-random int16 volume of 4 MiB, so ``.nii.gz``
data do not compress to nothing, and every pixel differs between two consecutive generations.
The two pixel sets are built once: between two saves the child only sets two properties, so
nearly all of its time is spent inside ``save`` and a kill at a random moment lands mid-save.
A loaded file says which generation it claims to be, and :func:`expected_pixels` gives its
exact pixels.

Progress goes to stdout, unbuffered, one line per event: ``start g`` just before ``save`` is
called and ``done g`` just after it returns.  ``done 0`` doubles as the readiness signal: from
then on a complete file exists at TARGET.  The parent SIGKILLs the child at some point and uses
the last line to know which save the kill interrupted.

NAMING ``same`` saves every generation the same way.  ``alternate`` gives odd generations
``compression="gzip"``: for a detached pair that moves the data file to another name
(``.raw``/``.raw.gz`` for ``.nhdr``, ``.raw``/``.zraw`` for ``.mhd``) on every save, so the old
header never points at the new data file.

With ``kill-after-data`` the child saves generation 0 normally, then SIGKILLs itself right after
the *data* file of generation 1 has been renamed into place and before the header is: the window
between the two renames of a detached pair, hit deterministically.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

import numpy as np

SHAPE = (32, 256, 256)
#: Largest generation a child may write (pixels stay well inside int16).
MAX_GENERATION = 10_000


def pattern() -> np.ndarray:
    """The generation-0 pixels (the parent computes the same array to check a loaded file)."""
    return np.random.default_rng(20240613).integers(0, 20_000, SHAPE, dtype=np.int16)


def expected_pixels(base: np.ndarray, generation: int) -> np.ndarray:
    """The exact pixels of ``generation``, given ``base = pattern()``."""
    return base + np.int16(generation % 2)


def _data_file_hook(module, data_suffixes: tuple) -> None:
    # Wraps the writers' atomic_write (every format writes through mitk.io._replace): once a
    # data file (not the header) is in place, die.
    real = module.atomic_write

    @contextlib.contextmanager
    def dying(path, **kwargs):
        with real(path, **kwargs) as f:
            yield f
        if os.fspath(path).endswith(data_suffixes):
            os.kill(os.getpid(), signal.SIGKILL)

    module.atomic_write = dying


def main(argv: list) -> None:
    import mitk
    from mitk.io import _replace

    target, naming = argv[1], argv[2]
    kill_after_data = argv[3:] == ["kill-after-data"]
    base = pattern()
    images = [mitk.Image(expected_pixels(base, g)) for g in (0, 1)]

    def say(text: str) -> None:
        os.write(1, (text + "\n").encode("ascii"))

    def save(g: int) -> None:
        img = images[g % 2]
        img.properties["crash.generation"] = g
        img.properties["nifti.descrip"] = f"generation {g}"
        options = {"compression": "gzip"} if naming == "alternate" and g % 2 else {}
        say(f"start {g}")
        img.save(target, **options)
        say(f"done {g}")

    save(0)
    if kill_after_data:
        _data_file_hook(_replace, (".raw", ".raw.gz", ".zraw", ".img"))
        save(1)
        say("survived")  # the hook did not fire: the parent reports it
        return
    for g in range(1, MAX_GENERATION + 1):
        save(g)


if __name__ == "__main__":
    main(sys.argv)
