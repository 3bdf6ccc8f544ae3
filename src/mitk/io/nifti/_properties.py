"""NIfTI properties: header fields the image does not model, read into ``nifti.*`` properties
and checked and written back from them (SPEC 6.4)."""

from __future__ import annotations

import math

import numpy as np

from ...errors import UnsupportedFormatError
from ._geometry import _TIME_UNITS

_F32_MAX = float(np.finfo(np.float32).max)
# Integer header fields kept as properties, with their NIfTI-1 range (NIfTI-2 widens some).
_INT_FIELDS = {"intent_code": (-32768, 32767), "slice_code": (0, 255), "dim_info": (0, 255),
               "slice_start": (-32768, 32767), "slice_end": (-32768, 32767)}
_FLOAT_FIELDS = ("intent_p1", "intent_p2", "intent_p3", "cal_min", "cal_max", "slice_duration")
_TEXT_FIELDS = {"descrip": 80, "aux_file": 24, "intent_name": 16}


def _text(value: bytes) -> str:
    value = value.split(b"\0", 1)[0]
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _properties(hdr, version: int, units_known: bool) -> dict:
    props: dict = {}
    for key in ("descrip", "aux_file") + (("intent_name",) if version else ()):
        text = _text(bytes(hdr[key]))
        if text:
            props[f"nifti.{key}"] = text
    if version:
        props["nifti.qform_code"] = int(hdr["qform_code"])
        props["nifti.sform_code"] = int(hdr["sform_code"])
        for key in _INT_FIELDS:
            if int(hdr[key]):
                props[f"nifti.{key}"] = int(hdr[key])
        for key in _FLOAT_FIELDS:
            value = float(hdr[key])
            if key == "slice_duration" and units_known:
                # In the units of pixdim[4] (the standard compares the two), so in ms like it:
                # the writer declares ms.
                value *= _TIME_UNITS[int(hdr["xyzt_units"]) & 0x38]
            if value and math.isfinite(value):
                props[f"nifti.{key}"] = value
        if not units_known:
            props["nifti.xyzt_units"] = int(hdr["xyzt_units"])
    props["nifti.version"] = version
    return props


def _prop_int(path: str, props: dict, key: str, lo: int, hi: int) -> int | None:
    if f"nifti.{key}" not in props:
        return None
    value = props[f"nifti.{key}"]
    number = None
    if isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            pass
    if number is None or not lo <= number <= hi:
        raise UnsupportedFormatError(f"{path}: property nifti.{key} is {value!r}; NIfTI needs an "
                                     f"integer from {lo} to {hi}")
    return number


def _prop_float(path: str, props: dict, key: str, version: int) -> float | None:
    if f"nifti.{key}" not in props:
        return None
    value = props[f"nifti.{key}"]
    number = None
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            number = float(value)
        except (ValueError, OverflowError):  # not a number; an int beyond any float
            pass
    if number is None or (version == 1 and math.isfinite(number) and abs(number) > _F32_MAX):
        raise UnsupportedFormatError(f"{path}: property nifti.{key} is {value!r}; NIfTI-"
                                     f"{version} needs a number"
                                     + (" that fits float32" if version == 1 else ""))
    return number


def _prop_text(path: str, props: dict, key: str, size: int) -> bytes | None:
    if f"nifti.{key}" not in props:
        return None
    value = props[f"nifti.{key}"]
    text = value if isinstance(value, str) else str(value)
    data = _encoded(text, "utf-8")
    if data is None or len(data) > size:
        # What the reader decoded as latin-1 (bytes that are not UTF-8) goes back as it came.
        alt = _encoded(text, "latin-1")
        if alt is not None and len(alt) <= size and _encoded_as(alt, "utf-8") is None:
            data = alt
    if data is None or len(data) > size or b"\0" in data:
        got = "text that cannot be encoded" if data is None else f"{len(data)} bytes"
        raise UnsupportedFormatError(f"{path}: property nifti.{key} must be text of at most "
                                     f"{size} UTF-8 bytes without NUL characters; got {got}")
    return data  # a field filled to its width has no NUL, as the standard allows


def _encoded(text: str, encoding: str) -> bytes | None:
    try:
        return text.encode(encoding)
    except UnicodeEncodeError:
        return None


def _encoded_as(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None

