"""MetaImage properties: header fields the image does not model, read as ``meta.<Field>`` (MetaIO's
own fields) or plain properties (user fields, as ITK writes its metadata), and written back."""

from __future__ import annotations

from typing import Any

from ...errors import UnsupportedFormatError
from .._text_header import check_line
from ._header import _BLANKS, _NUMERIC_FIELDS, _STRUCTURAL, METAIO_FIELDS, _Header


def _properties(h: _Header) -> dict:
    props: dict = {}
    for key, value in h.fields.items():
        if key in _STRUCTURAL:
            continue
        if key == "ElementSize" and "ElementSpacing" not in h.fields:
            continue  # it gave the spacing
        props[f"meta.{key}" if key in METAIO_FIELDS else key] = value
    return props


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return str(value)


def _numbers_ok(text: str, count: int) -> bool:
    tokens = text.split()
    if len(tokens) < count:
        return False
    try:
        for t in tokens[:count]:
            float(t)
    except ValueError:
        return False
    return True


def _header_properties(path: str, properties: dict, ndims: int) -> list[str]:
    lines: list[str] = []
    seen: dict[str, str] = {}
    for key, value in properties.items():
        if not isinstance(key, str):
            raise UnsupportedFormatError(f"{path}: property key {key!r} is not a str")
        if key.startswith(("nrrd.", "nifti.")):
            continue  # another format's header field
        field = key[5:] if key.startswith("meta.") else key
        if field in _STRUCTURAL:
            if key.startswith("meta."):
                continue  # written from the image itself
            raise UnsupportedFormatError(
                f"{path}: property {key!r} would be written as the MetaImage field {field!r}, "
                "which mitk writes from the image itself; rename the property")
        if (not field or any(c in field for c in "=:\n\r") or field != field.strip()
                or not field.isprintable()):
            raise UnsupportedFormatError(
                f"{path}: property key {key!r} cannot be a MetaImage header field (it is empty, "
                "contains '=', ':' or a line break, or starts or ends with a blank)")
        text = _text(value)
        # A line break, a NUL (SimpleITK's reader stops there; ours refuses it) or text that is
        # not UTF-8 cannot be in a header line.
        check_line(path, "MetaImage", f"the value of property {key!r}", text)
        if text.lstrip(_BLANKS)[:1] in ("=", ":"):
            # MetaIO skips every separator after the field name (MET_SkipToVal), so the value
            # would read back without them, here and in ITK.
            raise UnsupportedFormatError(
                f"{path}: the value of property {key!r} starts with {text.lstrip(_BLANKS)[0]!r}, "
                "which MetaIO reads as part of the separator after the field name; "
                "change the value")
        want = _NUMERIC_FIELDS.get(field)
        if want is not None:
            count = ndims if want == "n" else want
            if not _numbers_ok(text, count):
                raise UnsupportedFormatError(
                    f"{path}: property {key!r} is {text[:60]!r}, but MetaIO reads the field "
                    f"{field!r} as {count} number(s) for this {ndims}-D image; fix or remove it")
        if field in seen:
            raise UnsupportedFormatError(f"{path}: properties {seen[field]!r} and {key!r} would "
                                         f"both write the MetaImage field {field!r}")
        seen[field] = key
        lines.append(f"{field} = {text}")
    return lines

