"""Pixel types: dtype <-> PEP 3118 format, and the refusal of unsupported dtypes."""

import numpy as np
import pytest

from mitk._core import SUPPORTED, check_dtype, pep3118_format
from mitk_testing import PIXEL_TYPES

import mitk


def test_supported_list_matches_spec():
    assert [d.name for d in SUPPORTED] == list(PIXEL_TYPES)


@pytest.mark.parametrize("name", PIXEL_TYPES)
def test_format_round_trips_through_numpy(name):
    dt = np.dtype(name)
    fmt = pep3118_format(dt)
    # NumPy reads our format back as exactly the same dtype.
    assert np.dtype(np.asarray(memoryview(np.zeros(1, dt))).dtype) == dt
    arr = np.frombuffer(bytes(dt.itemsize), dtype=dt)
    assert memoryview(arr).itemsize == dt.itemsize
    if dt.kind == "c":
        assert fmt == "Z" + np.dtype(dt.char.lower()).char
    else:
        assert fmt == dt.char


@pytest.mark.parametrize("name", [">f4", "<i2", ">u8", ">c16"])
def test_non_native_dtypes_map_to_native(name):
    dt = np.dtype(name)
    assert check_dtype(dt) == dt.newbyteorder("=")
    assert check_dtype(dt).isnative


@pytest.mark.parametrize("bad", [object, "U4", "S3", "V8", "M8[s]", "m8[s]", np.longdouble,
                                 np.dtype([("a", "f4")]), "floaty", 3.5])
def test_unsupported_dtype_is_type_error_naming_it(bad):
    if np.dtype(np.longdouble) == np.dtype(np.float64) and bad is np.longdouble:
        pytest.skip("longdouble is float64 on this platform")
    with pytest.raises(TypeError, match="supported"):
        check_dtype(bad)


def test_make_pixel_type():
    pt = mitk.make_pixel_type("uint8", 3)
    assert pt == mitk.PixelType(np.dtype("uint8"), 3)
    assert pt.dtype == np.uint8 and pt.components == 3
    with pytest.raises(TypeError):
        mitk.make_pixel_type("object")
    with pytest.raises(mitk.ArgumentError):
        mitk.make_pixel_type("uint8", 0)
    with pytest.raises(TypeError):
        mitk.make_pixel_type("uint8", 1.5)
