"""mitk.properties: the typed metadata mapping an image carries."""

import copy
import enum
import pickle
import threading
from collections.abc import Mapping, MutableMapping

import numpy as np
import pytest

from mitk_testing import join_all, start_thread

from mitk.properties import PropertyMap


class Color(enum.Enum):
    RED = 1


class Mode(str, enum.Enum):
    FAST = "fast"


class Level(enum.IntEnum):
    HIGH = 3


def test_is_a_mutable_mapping():
    pm = PropertyMap()
    assert isinstance(pm, MutableMapping) and isinstance(pm, Mapping)
    assert len(pm) == 0 and list(pm) == [] and pm == {}


@pytest.mark.parametrize("value", ["text", "", 0, -3, 2**70, 1.5, float("inf"), True, False,
                                   [1, 2.5, "x", True], ("a", 1), [], ()])
def test_accepted_values_round_trip(value):
    pm = PropertyMap()
    pm["key"] = value
    assert pm["key"] == value and type(pm["key"]) is type(value)


def test_nan_is_kept():
    pm = PropertyMap(x=float("nan"))
    assert pm["x"] != pm["x"]


@pytest.mark.parametrize("value, expected", [
    (np.int64(5), 5), (np.uint8(200), 200), (np.float32(0.5), 0.5), (np.float64(2.25), 2.25),
    (np.bool_(True), True), (np.str_("abc"), "abc"), (Mode.FAST, "fast"), (Level.HIGH, 3),
])
def test_numpy_scalars_and_subclasses_become_plain_types(value, expected):
    pm = PropertyMap()
    pm["k"] = value
    assert pm["k"] == expected and type(pm["k"]) is type(expected)


def test_list_items_are_converted_and_kinds_kept():
    pm = PropertyMap()
    pm["l"] = [np.int16(1), np.float32(2.5), np.bool_(False), np.str_("s")]
    assert pm["l"] == [1, 2.5, False, "s"]
    assert [type(v) for v in pm["l"]] == [int, float, bool, str]
    pm["t"] = (np.int8(1), 2)
    assert pm["t"] == (1, 2) and type(pm["t"]) is tuple


def test_stored_lists_are_not_the_caller_object():
    source = [1, 2]
    pm = PropertyMap(l=source)
    source.append(3)
    assert pm["l"] == [1, 2]


@pytest.mark.parametrize("value, type_name", [
    (None, "NoneType"), ({"a": 1}, "dict"), (b"raw", "bytes"), (1 + 2j, "complex"),
    ({1, 2}, "set"), (np.zeros(3), "ndarray"), (object(), "object"), (Color.RED, "Color"),
    (np.complex64(1), "complex"), (np.bytes_(b"x"), "bytes"),
])
def test_unsupported_values_name_key_and_type(value, type_name):
    pm = PropertyMap()
    with pytest.raises(TypeError) as info:
        pm["my.key"] = value
    assert "'my.key'" in str(info.value) and type_name in str(info.value)
    assert "my.key" not in pm


@pytest.mark.parametrize("value", [[[1, 2]], [1, None], (1, (2,)), [{"a": 1}], [b"x"]])
def test_nested_or_bad_list_items(value):
    with pytest.raises(TypeError, match="'k': item"):
        PropertyMap()["k"] = value


@pytest.mark.parametrize("key", [1, None, b"key", ("a",), 1.5])
def test_non_str_keys(key):
    pm = PropertyMap()
    with pytest.raises(TypeError, match=f"{key!r}.*{type(key).__name__}"):
        pm[key] = "v"
    with pytest.raises(TypeError):
        PropertyMap({key: "v"})
    assert len(pm) == 0


def test_str_subclass_keys_become_str():
    pm = PropertyMap()
    pm[np.str_("name")] = 1
    assert [type(k) for k in pm] == [str] and pm["name"] == 1


def test_construction_forms():
    assert PropertyMap({"a": 1}, b=2) == {"a": 1, "b": 2}
    assert PropertyMap([("a", 1), ("b", "x")]) == {"a": 1, "b": "x"}
    assert PropertyMap(PropertyMap(a=1.5)) == {"a": 1.5}
    assert PropertyMap(items=1) == {"items": 1}  # keyword names are plain keys
    with pytest.raises(TypeError):
        PropertyMap([("a", 1, 2)])


def test_mapping_operations():
    pm = PropertyMap(a=1, b="two", c=[3])
    assert len(pm) == 3 and list(pm) == ["a", "b", "c"]
    assert "a" in pm and "z" not in pm and 5 not in pm
    assert pm.get("b") == "two" and pm.get("z") is None and pm.get("z", 0) == 0
    assert list(pm.keys()) == ["a", "b", "c"]
    assert list(pm.values()) == [1, "two", [3]]
    assert list(pm.items()) == [("a", 1), ("b", "two"), ("c", [3])]
    assert ("a", 1) in pm.items() and "two" in pm.values()
    del pm["a"]
    assert "a" not in pm and len(pm) == 2
    with pytest.raises(KeyError):
        del pm["a"]
    with pytest.raises(KeyError):
        pm["a"]


def test_views_are_live():
    pm = PropertyMap(a=1)
    keys, items, values = pm.keys(), pm.items(), pm.values()
    pm["b"] = 2
    assert len(keys) == len(items) == len(values) == 2
    assert "b" in keys and ("b", 2) in items and 2 in values


def test_pop_popitem_setdefault_clear():
    pm = PropertyMap(a=1, b=2, c=3)
    assert pm.pop("a") == 1 and "a" not in pm
    assert pm.pop("a", "gone") == "gone"
    assert pm.pop("a", None) is None
    with pytest.raises(KeyError):
        pm.pop("a")
    assert pm.popitem() == ("c", 3)
    assert pm.setdefault("b", 99) == 2
    assert pm.setdefault("d", np.int32(4)) == 4 and type(pm["d"]) is int
    with pytest.raises(TypeError, match="'e'"):
        pm.setdefault("e")  # None is not a property value
    assert "e" not in pm
    with pytest.raises(TypeError):
        pm.setdefault(5, 1)
    pm.clear()
    assert len(pm) == 0
    with pytest.raises(KeyError):
        pm.popitem()


def test_update_is_all_or_nothing():
    pm = PropertyMap(a=1)
    pm.update({"b": 2}, c=3)
    pm.update([("d", 4)])
    assert pm == {"a": 1, "b": 2, "c": 3, "d": 4}
    with pytest.raises(TypeError, match="'f'"):
        pm.update({"e": 5, "f": None})
    with pytest.raises(TypeError):
        pm.update({7: "seven"})
    assert pm == {"a": 1, "b": 2, "c": 3, "d": 4}


def test_equality():
    pm = PropertyMap(a=1, b=[1, 2])
    assert pm == {"a": 1, "b": [1, 2]} and {"a": 1, "b": [1, 2]} == pm
    assert pm == PropertyMap(b=[1, 2], a=1)
    assert pm != {"a": 1} and pm != {"a": 2, "b": [1, 2]} and pm != {"a": 1, "b": (1, 2)}
    assert pm != [("a", 1), ("b", [1, 2])] and pm != "a"
    assert not (pm != {"a": 1, "b": [1, 2]})
    with pytest.raises(TypeError):
        hash(pm)


def test_copy_is_independent():
    pm = PropertyMap(a=1, l=[1, 2])
    dup = pm.copy()
    assert dup == pm and dup is not pm and type(dup) is PropertyMap
    dup["a"] = 2
    dup["l"].append(3)
    assert pm == {"a": 1, "l": [1, 2]}
    snapshot = pm.to_dict()
    assert type(snapshot) is dict and snapshot == {"a": 1, "l": [1, 2]}
    snapshot["a"] = 5
    assert pm["a"] == 1


def test_repr():
    assert repr(PropertyMap(a=1, b="x")) == "PropertyMap({'a': 1, 'b': 'x'})"


def test_pickle_and_deepcopy():
    pm = PropertyMap({"s": "text", "i": 3, "f": 0.25, "b": True, "l": [1, "x"], "t": (1.5,)})
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(pm, protocol))
        assert type(back) is PropertyMap and back == pm
        assert type(back["t"]) is tuple and type(back["b"]) is bool
        back["new"] = 1  # the restored map has its own working lock
        assert "new" not in pm
    deep = copy.deepcopy(pm)
    deep["l"].append(2)
    assert pm["l"] == [1, "x"]
    shallow = copy.copy(pm)
    shallow["s"] = "changed"
    assert pm["s"] == "text"


def test_iteration_while_other_threads_change_the_map():
    pm = PropertyMap({f"k{i}": i for i in range(50)})
    stop = threading.Event()
    errors = []

    def mutate():
        n = 0
        while not stop.is_set():
            pm[f"x{n % 100}"] = n
            pm.pop(f"x{(n + 50) % 100}", None)
            n += 1

    def iterate():
        try:
            for _ in range(300):
                items = list(pm.items())
                assert all(isinstance(k, str) for k, _ in items)
                list(pm.values())
                list(pm)
                pm.copy()
                repr(pm)
        except Exception as exc:  # noqa: BLE001 - collected for the main thread's assertion
            errors.append(exc)

    writers = [start_thread(mutate) for _ in range(2)]
    readers = [start_thread(iterate) for _ in range(3)]
    join_all(readers)
    stop.set()
    join_all(writers)
    assert errors == []
    assert all(pm[f"k{i}"] == i for i in range(50))


def test_setdefault_is_atomic_across_threads():
    pm = PropertyMap()
    results = []
    barrier = threading.Barrier(8)

    def claim(n):
        barrier.wait(10)
        results.append(pm.setdefault("owner", n))

    join_all([start_thread(claim, n) for n in range(8)])
    assert len(results) == 8 and len(set(results)) == 1 and pm["owner"] == results[0]
