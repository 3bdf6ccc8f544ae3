"""Sphinx configuration of the mitk documentation.

Build: ``python -m sphinx -W -b html docs docs/_build/html`` (warnings are errors, references are
checked).  The examples run with ``python -m sphinx -W -b doctest docs docs/_build/doctest``.
Figures are drawn at build time from the installed package and ``benchmarks/results/*.json``.
"""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil
import sys

import mitk
import mitk._core

# Sphinx 9's autodoc loads a native module from its .pyi stub beside it (and registers the stub
# in sys.modules) when the module is not imported yet: in an installed package the stubs of
# mitk._core sit beside the extensions, and the stub would replace the real module for every
# later import.  Importing the extensions first makes autodoc document the real ones.
for _info in pkgutil.iter_modules(mitk._core.__path__, "mitk._core."):
    importlib.import_module(_info.name)

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "_ext"))

project = "mitk"
author = "the mitk-core authors"
copyright = "the mitk-core authors"
release = mitk.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "mitk_docs",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "_generated/*.md", "README.md"]
templates_path: list[str] = []

# Every cross-reference must resolve.
nitpicky = True

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# The build must work offline, so intersphinx has no inventories to fetch; references to Python,
# NumPy and other projects are plain text (see nitpick_ignore below).
intersphinx_mapping: dict = {}

autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# Names of other projects and docstring type vocabulary: no inventory is available offline.
nitpick_ignore_regex = [
    ("py:class", r"(numpy|np|os|collections\.abc|typing|threading|concurrent)\..*"),
    ("py:class", r"(int|float|str|bytes|bool|tuple|list|dict|object|None|type|Exception)"),
    ("py:class", r"(ValueError|IndexError|RuntimeError|TimeoutError|TypeError|BufferError)"),
    ("py:func", r"numpy\..*"),
    # Private bases, and public helpers that docstrings name without their module.
    ("py:class", r"(mitk\._core\.accessor\.(Read|Write)Accessor|mitk\.geometry\._Triple|abc\.ABC)"),
    ("py:func", r"validate_(spacing|origin|direction)"),
    # Private modules and mixins that public docstrings name (their public names are documented
    # where the user meets them), and the tuple methods' own docstrings that numpydoc reads as
    # types.
    ("py:class", r"(mitk\.vectors\._Triple|mitk\._step_table\.StepTable|"
                 r"mitk\._image_geometry\.ImageGeometry|mitk\._image_transport\.ImageTransport|"
                 r"mitk\._image_views\.ImageViews|"
                 r"Vector3D|integer -- .*)"),
    ("py:func", r"(mitk\.image_accessors\.)?check_timeout"),
    ("py:meth", r"copy"),
    ("py:mod", r"(mitk\._threads|contextvars)"),
    ("py:mod", r"mitk\.io"),
    ("py:exc", r"(ValueError|IndexError|RuntimeError|TimeoutError|TypeError|BufferError|"
               r"FileNotFoundError|OSError|MemoryError|KeyError|AttributeError)"),
]

html_theme = "furo"
html_title = f"mitk {release}"
html_static_path: list[str] = []
html_show_sourcelink = False
# Furo uses the system font stack, so nothing is fetched from a font CDN.
html_theme_options = {"navigation_with_keys": True}

# The doctest builder runs every page's examples in a fresh temporary directory per document
# with generated input files (see mitk_docs.doctest_setup).
doctest_global_setup = "from mitk_docs import doctest_setup as _setup; _setup(globals())"
doctest_global_cleanup = "from mitk_docs import doctest_cleanup as _cleanup; _cleanup(globals())"
doctest_test_doctest_blocks = ""
# Messages shown in examples are checked too (Sphinx ignores exception details by default).
doctest_default_flags = doctest.ELLIPSIS | doctest.DONT_ACCEPT_TRUE_FOR_1
