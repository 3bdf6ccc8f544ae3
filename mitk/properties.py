"""PropertyMap: the metadata an image carries through copies, pickling and file I/O."""

from __future__ import annotations

import threading
from collections.abc import MutableMapping
from typing import Any, Iterator

import numpy as np

__all__ = ["PropertyMap"]

_SCALARS = (str, bool, int, float)


def _check_value(key: str, value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()  # NumPy scalars become the matching Python type
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, (list, tuple)):
        items = [v.item() if isinstance(v, np.generic) else v for v in value]
        bad = [type(v).__name__ for v in items if not isinstance(v, _SCALARS)]
        if bad:
            raise TypeError(f"property {key!r}: list items must be str, int, float or bool, "
                            f"not {bad[0]}")
        return type(value)(items)
    raise TypeError(f"property {key!r}: values must be str, int, float, bool or a list/tuple of "
                    f"those, not {type(value).__name__}")


class PropertyMap(MutableMapping):
    """A mapping from ``str`` keys to ``str``, ``int``, ``float``, ``bool`` or lists of those.

    Notes
    -----
    Each single operation is atomic (a lock guards the dict, so it stays consistent on
    free-threaded CPython too).  File formats write plain keys and read them back as strings;
    keys such as ``nrrd.space`` or ``nifti.descrip`` hold header fields of that format.
    """

    __slots__ = ("_data", "_lock")

    def __init__(self, items: Any = None, **kwargs: Any) -> None:
        self._data: dict = {}
        self._lock = threading.Lock()
        if items is not None:
            self.update(items)
        if kwargs:
            self.update(kwargs)

    def __getitem__(self, key: str) -> Any:
        with self._lock:
            return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"property keys must be str, not {type(key).__name__}")
        value = _check_value(key, value)
        with self._lock:
            self._data[key] = value

    def __delitem__(self, key: str) -> None:
        with self._lock:
            del self._data[key]

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)

    def copy(self) -> PropertyMap:
        """An independent copy."""
        with self._lock:
            return PropertyMap(dict(self._data))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PropertyMap):
            return dict(self) == dict(other)
        if isinstance(other, dict):
            return dict(self) == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PropertyMap({dict(self)!r})"

    def __reduce__(self):
        return PropertyMap, (dict(self),)
