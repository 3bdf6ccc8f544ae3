"""Shared fixtures for the mitk test suite (helpers live in mitk_testing.py)."""

from __future__ import annotations

import os
import sys
import sysconfig

import pytest

from mitk_testing import PIXEL_TYPES

# distributed's statistical profiler walks the frames of running worker threads
# (sys._current_frames()), which free-threaded CPython 3.13 does not make safe: the worker
# crashes now and then (CPython #118680 and #152355, fixed in 3.14 only). Turn it off for the
# cluster tests and the interpreters they start; docs/concurrency.md tells users the same.
if sysconfig.get_config_var("Py_GIL_DISABLED") and sys.version_info < (3, 14):
    os.environ.setdefault("DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED", "False")


@pytest.fixture(params=PIXEL_TYPES)
def pixel_type(request) -> str:
    """Each supported pixel type name in turn."""
    return request.param
