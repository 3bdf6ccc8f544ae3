"""NRRD properties: header fields the image does not model, read into ``nrrd.*`` properties and
written back (SPEC 6.4); ``key:=value`` pairs as plain properties."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import CorruptFileError, UnsupportedFormatError
from ._header import _Header, _axis_tokens, _fail, _quoted, _vec, _vector_list
from ._vocabulary import (_DOMAIN_KINDS, _FIELDS, _KIND_SIZE, _KINDS, _LENGTH_TO_MM, _MODELLED,
                          _PER_AXIS_PROPS, _SCALAR_PROPS, _TIME_TO_MS, _canonical_field, _escape)

if TYPE_CHECKING:
    from ._layout import _Layout


def _writer_axes(L: _Layout) -> list:
    """File axes in the order the writer writes them: component, x, y, z, time."""
    order = [a for a in (L.complex_axis, L.comp_axis) if a is not None]
    order += L.spatial
    if L.time_axis is not None:
        order.append(L.time_axis)
    return order


def _properties(h: _Header, L: _Layout, flips: tuple, space_dim: int,
                units: list | None) -> dict:
    props: dict = dict(h.keyvalues)
    F = h.fields
    order = _writer_axes(L)
    for field in _SCALAR_PROPS:
        if field in F:
            props[f"nrrd.{field}"] = F[field]
    for field in _PER_AXIS_PROPS:
        if field not in F or (field == "kinds" and L.channels == 1):
            continue
        tokens = _axis_tokens(field, F[field])
        if tokens is not None and len(tokens) == L.dim:
            props[f"nrrd.{field}"] = " ".join(tokens[a] for a in order)
        else:
            props[f"nrrd.{field}"] = F[field]
    if "space units" in F and units is None:
        props["nrrd.space units"] = F["space units"]
    if "measurement frame" in F:
        vectors = _vector_list(h.path, "measurement frame", F["measurement frame"], space_dim,
                               space_dim)
        if any(v is None for v in vectors):
            raise _fail(h.path, "measurement frame", "holds 'none'; expected one vector per "
                        "space dimension")
        lps = [[c * (flips[j] if j < 3 else 1) for j, c in enumerate(v)] for v in vectors]
        props["nrrd.measurement frame"] = " ".join(_vec(v) for v in lps)
    for field, value in h.unknown.items():
        props[f"nrrd.{field}"] = value
    return props


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(_text(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (str, int)):  # bool is an int
        return str(value)
    raise TypeError(f"property values must be str, int, float, bool or a list/tuple of them, "
                    f"not {type(value).__name__}")


def _header_text(path: str, what: str, text: str) -> str:
    if "\r" in text:
        raise UnsupportedFormatError(f"{path}: {what} holds a carriage return, which a NRRD "
                                     "header line cannot hold")
    if "\0" in text:  # the reader refuses a header line with a NUL, as teem does
        raise UnsupportedFormatError(f"{path}: {what} holds a NUL character, which a NRRD "
                                     "header line cannot hold")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsupportedFormatError(f"{path}: {what} is not valid UTF-8 text") from None
    return text


def _fit_frame(text: str, dim: int) -> list | None:
    """Measurement frame vectors resized to ``dim`` (identity where added); None if impossible."""
    try:
        n = len(re.findall(r"\(", text))
        vectors = _vector_list("", "", text, n, n)
    except CorruptFileError:
        return None
    if n == 0 or any(v is None for v in vectors):
        return None
    if n <= dim:
        return [v + [0.0] * (dim - n) for v in vectors] + \
            [[1.0 if r == c else 0.0 for r in range(dim)] for c in range(n, dim)]
    for c, v in enumerate(vectors):
        tail = v[dim:] if c < dim else [x for r, x in enumerate(v) if r != c]
        if any(tail) or (c >= dim and v[c] != 1.0):
            return None
    return [v[:dim] for v in vectors[:dim]]


def _component_kind(props: dict, channels: int, component: np.dtype) -> str:
    wanted = str(props.get("nrrd.kinds", "")).split()[:1]
    kind = _KINDS.get(wanted[0].lower()) if wanted else None
    if kind and kind not in _DOMAIN_KINDS and kind not in ("time", "complex") and \
            _KIND_SIZE[kind] in (None, channels):
        return kind
    if component == np.uint8 and channels in (3, 4):
        return "RGB-color" if channels == 3 else "RGBA-color"
    return "vector"


def _field_line(path: str, key: str, field: str, text: str, ndim_written: int,
                space_dim: int) -> str | None:
    """The header line of a ``nrrd.<field>`` property; None when it no longer fits the image."""
    if "\n" in text:
        raise UnsupportedFormatError(f"{path}: property {key!r} holds a line break, which a NRRD "
                                     "field cannot hold")
    _header_text(path, f"property {key!r}", text)
    if field in ("min", "max", "old min", "old max"):
        try:
            float(text)
        except ValueError:
            raise UnsupportedFormatError(f"{path}: property {key!r} is {text!r}; NRRD field "
                                         f"'{field}' must be a number") from None
    if field in _PER_AXIS_PROPS or field == "space units":
        tokens = _axis_tokens(field, text)
        if field == "centers" and any(t.lower() not in ("cell", "node", "???", "none")
                                      for t in tokens):
            raise UnsupportedFormatError(f"{path}: property {key!r} is {text!r}; NRRD centers "
                                         "are 'cell', 'node' or '???'")
        if tokens is None or len(tokens) != (space_dim if field == "space units"
                                             else ndim_written):
            return None  # it described axes this image no longer has
        if field == "space units" and all(
                (_TIME_TO_MS if c == 3 else _LENGTH_TO_MM).get(u.strip().lower()) is not None
                for c, u in enumerate(_quoted(text) or [])):
            # Units the reader converts: the geometry written here is already in mm (and ms),
            # and writing them would scale it again on reading.  Only units mitk cannot
            # convert (kept as this property on reading, the values used as they are) go back.
            return None
    return f"{field}: {text}"


def _property_lines(path: str, props: dict, ndim_written: int, space_dim: int) -> tuple:
    """(field lines, key/value lines) from the properties, validated."""
    fields, pairs = [], []
    for key, value in props.items():
        if not isinstance(key, str):
            raise TypeError(f"property keys must be str, not {type(key).__name__}")
        text = _text(value)
        if key.startswith(("nifti.", "meta.")):
            continue  # another format's fields (SPEC section 6.4)
        if key.startswith("nrrd."):
            field = _canonical_field(key[5:])
            if field in _MODELLED or field in ("kinds", "measurement frame"):
                continue  # written from the image model
            if field in _FIELDS:
                fields.append(_field_line(path, key, field, text, ndim_written, space_dim))
                continue
            # an unknown field goes out as a key/value, which teem-based readers accept
        if not key or ":=" in key or "=" in key or "\n" in key or key.startswith("#") or \
                key.lstrip() != key:
            raise UnsupportedFormatError(
                f"{path}: property key {key!r} cannot be written to NRRD (it is empty, starts "
                "with '#' or a blank, or contains ':=', '=' or a line break)")
        colon = key.find(": ")
        if colon > 0 and _canonical_field(key[:colon]) in _FIELDS:
            raise UnsupportedFormatError(
                f"{path}: property key {key!r} would be read back as the NRRD field "
                f"'{key[:colon]}'; choose a key without ': '")
        _header_text(path, f"property {key!r}", key + text)
        pairs.append(f"{_escape(key)}:={_escape(text)}")
    return fields, pairs

