"""Shared fixtures for the mitk test suite (helpers live in mitk_testing.py)."""

from __future__ import annotations

import pytest

from mitk_testing import PIXEL_TYPES


@pytest.fixture(params=PIXEL_TYPES)
def pixel_type(request) -> str:
    """Each supported pixel type name in turn."""
    return request.param
