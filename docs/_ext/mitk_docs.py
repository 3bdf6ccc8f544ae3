"""Sphinx glue of the mitk documentation.

- ``doctest_setup`` / ``doctest_cleanup``: every page's examples run in a fresh temporary directory
  that holds the small input files the pages name (generated here, never shipped) and a copy of
  ``docs/examples/``.
- ``mitk-run``: runs ``mitk ...`` (as ``python -m mitk`` of the interpreter running Sphinx) while
  the page is built and shows the command with its real output; an unexpected exit status is a
  warning, so ``-W`` fails the build.
- ``bench-results`` and ``geometry-figure``: figures drawn at build time (``bench_plots``,
  ``geometry_figure``).
- A check that every Python code block on every page is a doctest block (``doctest``,
  ``testcode``): an example that is not run cannot silently stop working.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

DOCS = Path(__file__).resolve().parent.parent
ROOT = DOCS.parent
GENERATED = DOCS / "_generated"

_PYTHON_LANGUAGES = {"python", "python3", "py", "pycon", "ipython", "default"}


def make_inputs(directory: Path) -> None:
    """Write the files that the pages' examples read (small generated volumes)."""
    import numpy as np

    import mitk

    z, y, x = np.mgrid[0:32, 0:32, 0:32].astype(np.float32)
    phantom = np.exp(-((x - 16) ** 2 + (y - 14) ** 2 + (z - 18) ** 2) / 60.0).astype(np.float32)
    image = mitk.Image(phantom, spacing=(0.8, 0.8, 2.0), origin=(-12.4, -12.4, -31.0))
    image.save(directory / "input.nrrd")
    ct = mitk.Image((phantom * 1000 - 1000).astype(np.int16), spacing=(0.7, 0.7, 2.5))
    ct.properties["modality"] = "CT"
    ct.save(directory / "ct.nrrd")
    rng = np.random.default_rng(7)
    frames = rng.normal(100, 5, (4, 8, 16, 16)).astype(np.float32)
    mitk.Image(frames, spacing=(1.5, 1.5, 3.0)).save(directory / "cine.nii.gz")


def doctest_setup(globs: dict) -> None:
    """Run before each page's examples: a fresh working directory with the input files."""
    import logging as _logging

    workdir = Path(tempfile.mkdtemp(prefix="mitk-docs-"))
    make_inputs(workdir)
    # Source files that pages show with literalinclude and then build (docs/examples/).
    for source in (DOCS / "examples").iterdir():
        shutil.copy(source, workdir)
    globs["_docs_previous_cwd"] = os.getcwd()
    globs["_docs_sys_path"] = list(sys.path)
    globs["_docs_workdir"] = str(workdir)
    os.chdir(workdir)
    # An example that logs must not print; the library only uses the "mitk" logger.
    _logging.getLogger("mitk").addHandler(_logging.NullHandler())


def doctest_cleanup(globs: dict) -> None:
    """Run after each page's examples: back to the previous directory, files removed."""
    os.chdir(globs.pop("_docs_previous_cwd"))
    sys.path[:] = globs.pop("_docs_sys_path")
    shutil.rmtree(globs.pop("_docs_workdir"), ignore_errors=True)


class MitkRun(SphinxDirective):
    """``mitk-run``: run a command line of the ``mitk`` program and show it with its output.

    The argument is the command as a user types it, starting with ``mitk``.  Options:
    ``:returncode:`` (expected exit status, default 0), ``:cwd: root`` (run in the repository
    root instead of the shared scratch directory with the input files), ``:lines:`` (show only
    the first N lines of the output, followed by a ``...`` line), ``:image:`` (a PNG that the
    command wrote in the scratch directory, shown under the output).
    """

    required_arguments = 1
    final_argument_whitespace = True
    option_spec = {
        "returncode": directives.nonnegative_int,
        "cwd": directives.unchanged,
        "lines": directives.positive_int,
        "image": directives.unchanged,
    }

    def run(self) -> list[nodes.Node]:
        command = self.arguments[0]
        if self.env.app.builder.format != "html":
            return []  # run once per build, by the HTML builder
        argv = shlex.split(command)
        if not argv or argv[0] != "mitk":
            raise self.error(f"mitk-run: the command must start with 'mitk': {command!r}")
        cwd = ROOT if self.options.get("cwd") == "root" else _scratch(self.env.app)
        env = dict(os.environ, PYTHONIOENCODING="utf-8", COLUMNS="100")
        # -P: a source checkout in the working directory must not shadow the installed package.
        proc = subprocess.run([sys.executable, "-P", "-m", "mitk", *argv[1:]], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=600, check=False)
        expected = self.options.get("returncode", 0)
        if proc.returncode != expected:
            logger.warning("mitk-run: %r exited with %d (expected %d): %s", command,
                           proc.returncode, expected, (proc.stderr or proc.stdout).strip(),
                           location=self.get_location())
        output = (proc.stdout + proc.stderr).rstrip("\n")
        limit = self.options.get("lines")
        if limit and output.count("\n") >= limit:
            output = "\n".join(output.splitlines()[:limit] + ["..."])
        text = f"$ {command}\n{output}" if output else f"$ {command}"
        if expected:
            text += f"\n$ echo $?\n{proc.returncode}"
        block = nodes.literal_block(text, text, language="console")
        block["classes"].append("mitk-run")
        shown = self.options.get("image")
        if not shown:
            return [block]
        written = Path(cwd) / shown
        if not written.is_file():
            logger.warning("mitk-run: %r wrote no %s", command, shown, location=self.get_location())
            return [block]
        GENERATED.mkdir(exist_ok=True)
        target = GENERATED / f"cli-{Path(shown).name}"
        shutil.copyfile(written, target)
        return [block, nodes.image(uri=f"/_generated/{target.name}", alt=f"{shown}, written by {command}")]


def _scratch(app) -> Path:
    """One scratch directory per build with the input files, shared by every ``mitk-run``."""
    path = getattr(app, "_mitk_scratch", None)
    if path is None:
        path = Path(tempfile.mkdtemp(prefix="mitk-docs-run-"))
        make_inputs(path)
        app._mitk_scratch = path
    return path


def _remove_scratch(app, exception) -> None:
    path = getattr(app, "_mitk_scratch", None)
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


def _check_examples_run(app, doctree: nodes.document) -> None:
    """Warn about a Python code block that the doctest builder would not run."""
    for node in doctree.findall(nodes.literal_block):
        language = (node.get("language") or "default").lower()
        if language in _PYTHON_LANGUAGES and "testnodetype" not in node:
            logger.warning("a Python example that is not run: use a doctest or testcode block",
                           location=node)


def setup(app):
    from bench_plots import BenchResults
    from geometry_figure import GeometryFigure

    app.add_directive("mitk-run", MitkRun)
    app.add_directive("bench-results", BenchResults)
    app.add_directive("geometry-figure", GeometryFigure)
    app.connect("doctree-read", _check_examples_run)
    app.connect("build-finished", _remove_scratch)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
