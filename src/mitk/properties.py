"""PropertyMap: the metadata an image carries through copies, pickling and file I/O."""

from __future__ import annotations

import threading
from collections.abc import ItemsView, Mapping, MutableMapping, ValuesView
from typing import Any, Iterator

import numpy as np

__all__ = ["PropertyMap"]

_ACCEPTED = "str, int, float, bool, or a list/tuple of those"


def _scalar(value: Any) -> Any:
    """``value`` as an exact str/int/float/bool, or None if it is not one of those kinds."""
    if isinstance(value, np.generic):
        value = value.item()  # NumPy scalars become the matching Python type
    if isinstance(value, bool):
        return value
    # Subclasses (enums, NumPy's str_) are stored as the plain type, so they pickle and
    # compare as what file formats give back.
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    return None


def _check_value(key: str, value: Any) -> Any:
    scalar = _scalar(value)
    if scalar is not None:
        return scalar
    if isinstance(value, (list, tuple)):
        items = []
        for i, item in enumerate(value):
            converted = _scalar(item)
            if converted is None:
                raise TypeError(f"property {key!r}: item {i} is a {type(item).__name__}; list "
                                "items must be str, int, float or bool")
            items.append(converted)
        return tuple(items) if isinstance(value, tuple) else items
    raise TypeError(f"property {key!r}: value of type {type(value).__name__} is not "
                    f"supported; expected {_ACCEPTED}")


class _ItemsView(ItemsView[str, Any]):
    __slots__ = ()

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return iter(self._mapping._snapshot().items())  # type: ignore[attr-defined]


class _ValuesView(ValuesView[Any]):
    __slots__ = ()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._mapping._snapshot().values())  # type: ignore[attr-defined]


class PropertyMap(MutableMapping[str, Any]):
    """A mapping from ``str`` keys to ``str``, ``int``, ``float``, ``bool`` or lists of those.

    Parameters
    ----------
    items : mapping or iterable of (key, value) pairs, optional
        Initial contents.
    **kwargs
        More initial contents.

    Raises
    ------
    TypeError
        A key that is not a ``str``, or a value of another type (the message names the key
        and the type).  NumPy scalars are stored as the matching Python type; lists and tuples
        keep their kind and may hold only the scalar types (no nesting).

    Notes
    -----
    Every single operation is atomic, including ``pop``, ``setdefault``, ``popitem``,
    ``clear``, ``update`` and :meth:`copy`: one lock (never held while waiting for anything
    else) guards the dict, on free-threaded CPython too.  Iteration walks a snapshot, so it
    never fails while another thread changes the map.  ``dict(pm)`` reads key by key; use
    :meth:`copy` or :meth:`to_dict` for a consistent snapshot.  The map compares equal to any
    mapping with the same items, pickles, and deep-copies.

    File formats write plain keys and read them back as strings; keys such as
    ``nrrd.space`` or ``nifti.descrip`` hold header fields of that format.
    """

    __slots__ = ("_data", "_lock")

    def __init__(self, items: Any = None, /, **kwargs: Any) -> None:
        self._data: dict[str, Any] = {}
        self._lock = threading.Lock()
        if items is not None:
            self.update(items)
        if kwargs:
            self.update(kwargs)

    @staticmethod
    def _check_key(key: Any) -> str:
        if not isinstance(key, str):
            raise TypeError(f"property key {key!r} is a {type(key).__name__}; keys must be str")
        return str.__str__(key)

    def _snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._data)

    def __getitem__(self, key: str) -> Any:
        with self._lock:
            return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        key = self._check_key(key)
        value = _check_value(key, value)
        with self._lock:
            self._data[key] = value

    def __delitem__(self, key: str) -> None:
        with self._lock:
            del self._data[key]

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._data

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(list(self._data))

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` if it is missing."""
        with self._lock:
            return self._data.get(key, default)

    def items(self) -> ItemsView[str, Any]:
        """A view of the ``(key, value)`` pairs; iterating it walks a snapshot."""
        return _ItemsView(self)

    def values(self) -> ValuesView[Any]:
        """A view of the values; iterating it walks a snapshot."""
        return _ValuesView(self)

    _MISSING = object()

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value (or ``default``; KeyError without one)."""
        with self._lock:
            if default is PropertyMap._MISSING:
                return self._data.pop(key)
            return self._data.pop(key, default)

    def popitem(self) -> tuple[str, Any]:
        """Remove and return the most recently inserted ``(key, value)`` (KeyError if empty)."""
        with self._lock:
            return self._data.popitem()

    def setdefault(self, key: str, default: Any = None) -> Any:
        """Return the value of ``key``, first storing ``default`` (type-checked) if missing."""
        key = self._check_key(key)
        with self._lock:
            if key in self._data:
                return self._data[key]
        value = _check_value(key, default)
        with self._lock:
            return self._data.setdefault(key, value)

    def clear(self) -> None:
        """Remove every property."""
        with self._lock:
            self._data.clear()

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Add or replace properties from a mapping or ``(key, value)`` pairs, and keywords.

        Every key and value is checked first: on a TypeError nothing changes.
        """
        if isinstance(other, PropertyMap):
            pairs = list(other._snapshot().items())
        elif isinstance(other, Mapping):
            pairs = [(k, other[k]) for k in other.keys()]
        elif hasattr(other, "keys"):
            pairs = [(k, other[k]) for k in other.keys()]
        else:
            pairs = list(other)
        pairs.extend(kwargs.items())
        checked = {}
        for pair in pairs:
            try:
                key, value = pair
            except (TypeError, ValueError):
                raise TypeError(f"update needs (key, value) pairs, got {pair!r}") from None
            key = self._check_key(key)
            checked[key] = _check_value(key, value)
        with self._lock:
            self._data.update(checked)

    def to_dict(self) -> dict[str, Any]:
        """A plain ``dict`` snapshot of the properties (lists inside are shared)."""
        return self._snapshot()

    def copy(self) -> PropertyMap:
        """An independent copy (lists inside are copied too).

        Returns
        -------
        PropertyMap
        """
        snapshot = self._snapshot()
        new = PropertyMap()
        new._data = {k: list(v) if isinstance(v, list) else v for k, v in snapshot.items()}
        return new

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PropertyMap):
            return self._snapshot() == other._snapshot()
        if isinstance(other, Mapping):
            return self._snapshot() == dict(other.items())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"PropertyMap({self._snapshot()!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return PropertyMap, (self._snapshot(),)
