"""mitk.time_geometry: time step checks, proportional and arbitrary time geometries."""

import copy
import pickle
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mitk
from mitk.geometry import Geometry3D
from mitk.time_geometry import (
    ArbitraryTimeGeometry,
    ProportionalTimeGeometry,
    TimeGeometry,
    check_time_step,
)

MAX = sys.float_info.max


def steps(n, **kwargs):
    """``n`` distinct geometries (origin x = step) with an extent."""
    return [Geometry3D(origin=(t, 0, 0), extent=(2, 3, 4), **kwargs) for t in range(n)]


# -- check_time_step ----------------------------------------------------------------------------


@pytest.mark.parametrize("t", [0, 1, 4, np.int64(2), np.uint8(3), np.int32(0)])
def test_check_time_step_accepts_ints(t):
    result = check_time_step(t, 5)
    assert result == int(t) and type(result) is int


@pytest.mark.parametrize("t", [True, False, 1.0, np.float64(1), "1", None, [1], np.bool_(True),
                               1 + 0j])
def test_check_time_step_non_ints_are_type_errors(t):
    with pytest.raises(TypeError, match="time_step must be an int"):
        check_time_step(t, 5)


@pytest.mark.parametrize("t, count", [(-1, 5), (5, 5), (100, 5), (1, 1), (-5, 5), (0, 0)])
def test_check_time_step_out_of_range(t, count):
    with pytest.raises(mitk.TimeStepError) as info:
        check_time_step(t, count)
    message = str(info.value)
    assert f"time_step {t}" in message
    if count:
        assert f"0 to {count - 1}" in message
    assert isinstance(info.value, IndexError) and isinstance(info.value, mitk.Exception)


# -- ProportionalTimeGeometry -------------------------------------------------------------------


def test_proportional_bounds_and_points():
    tg = ProportionalTimeGeometry(steps(4), first_time_point=10.0, step_duration=2.5)
    assert tg.count_time_steps() == 4
    assert tg.first_time_point == 10.0 and tg.step_duration == 2.5 and not tg.static
    assert [tg.get_time_bounds(t) for t in range(4)] == [(10.0, 12.5), (12.5, 15.0),
                                                         (15.0, 17.5), (17.5, 20.0)]
    assert tg.get_time_bounds() == (10.0, 20.0)
    assert tg.get_min_time_point() == 10.0 and tg.get_max_time_point() == 20.0
    assert tg.get_min_time_point(2) == 15.0 and tg.get_max_time_point(2) == 17.5
    assert [tg.time_step_to_time_point(t) for t in range(4)] == [10.0, 12.5, 15.0, 17.5]
    assert tg.time_step_to_time_point(np.int64(1)) == 12.5


def test_proportional_defaults():
    tg = ProportionalTimeGeometry(steps(3))
    assert tg.first_time_point == 0.0 and tg.step_duration == 1.0
    assert tg.get_time_bounds(2) == (2.0, 3.0)
    assert type(tg.first_time_point) is float and type(tg.step_duration) is float
    assert isinstance(tg, mitk.TimeGeometry)


def test_time_point_to_time_step_clamps():
    tg = ProportionalTimeGeometry(steps(4), first_time_point=10.0, step_duration=2.5)
    cases = {10.0: 0, 12.4999: 0, 12.5: 1, 14.0: 1, 19.99: 3, 20.0: 3, 1e9: 3, float("inf"): 3,
             9.99: 0, -1e9: 0, -float("inf"): 0, MAX: 3, -MAX: 0}
    for time_point, step in cases.items():
        assert tg.time_point_to_time_step(time_point) == step, time_point
        assert tg.get_geometry_for_time_point(time_point) is tg.get_geometry_for_time_step(step)
    assert tg.time_point_to_time_step(np.float32(15.0)) == 2
    assert tg.time_point_to_time_step(13) == 1


def test_time_point_to_time_step_bad_input():
    tg = ProportionalTimeGeometry(steps(2))
    with pytest.raises(mitk.ArgumentError, match="NaN"):
        tg.time_point_to_time_step(float("nan"))
    for bad in ("1", None, True, [1.0]):
        with pytest.raises(TypeError, match="time_point"):
            tg.time_point_to_time_step(bad)
        with pytest.raises(TypeError, match="time_point"):
            tg.get_geometry_for_time_point(bad)


def test_time_step_point_round_trip_with_awkward_durations():
    for first, duration in [(0.0, 0.1), (-7.3, 1 / 3), (1e6, 0.7), (0.3, 1e-3), (-1e-9, 3.3)]:
        tg = ProportionalTimeGeometry.from_geometry(Geometry3D(), 500, first, duration)
        for t in range(500):
            assert tg.time_point_to_time_step(tg.time_step_to_time_point(t)) == t
            lo, hi = tg.get_time_bounds(t)
            assert tg.time_point_to_time_step((lo + hi) / 2) == t
            assert tg.time_point_to_time_step(np.nextafter(lo, -np.inf)) == max(t - 1, 0)


def test_is_valid_time_step_and_point():
    tg = ProportionalTimeGeometry(steps(3), first_time_point=-1.0, step_duration=2.0)
    assert [tg.is_valid_time_step(t) for t in (0, 1, 2, np.int16(2))] == [True] * 4
    assert [tg.is_valid_time_step(t) for t in (-1, 3, 1.0, True, "0", None)] == [False] * 6
    assert tg.is_valid_time_point(-1.0) and tg.is_valid_time_point(4.999)
    assert not tg.is_valid_time_point(5.0) and not tg.is_valid_time_point(-1.0001)
    assert not tg.is_valid_time_point(float("nan"))
    assert not tg.is_valid_time_point(float("inf"))
    with pytest.raises(TypeError):
        tg.is_valid_time_point("2")


def test_geometry_for_time_step_is_live():
    geoms = steps(3)
    tg = ProportionalTimeGeometry(geoms)
    live = tg.geometries()
    assert live == geoms and tg.geometries() is not tg.geometries()
    for t in range(3):
        assert tg.get_geometry_for_time_step(t) is live[t]  # one object while it is held
    tg.get_geometry_for_time_step(1).spacing = (4, 4, 4)
    assert live[1].spacing == (4, 4, 4) and tg.get_geometry_for_time_step(1).spacing == (4,) * 3
    assert live[0].spacing == (1, 1, 1) and live[2].spacing == (1, 1, 1)  # that step only
    assert tg.get_geometry_for_time_point(1.5) is live[1]


def test_constructor_copies_the_geometries():
    # A geometry belongs to one time geometry: changing the argument later changes nothing.
    geoms = steps(2)
    tg = ProportionalTimeGeometry(geoms)
    geoms[0].spacing = (9, 9, 9)
    assert tg.get_geometry_for_time_step(0).spacing == (1, 1, 1)
    assert tg.get_geometry_for_time_step(0) is not geoms[0]
    arbitrary = ArbitraryTimeGeometry([(0, 1), (1, 2)], geoms)
    geoms[1].origin = (5, 5, 5)
    assert arbitrary.get_geometry_for_time_step(1).origin == (1, 0, 0)


@pytest.mark.parametrize("method", ["get_geometry_for_time_step", "time_step_to_time_point",
                                    "get_time_bounds", "get_min_time_point",
                                    "get_max_time_point"])
def test_step_methods_check_the_step(method):
    tg = ProportionalTimeGeometry(steps(3))
    for bad in (3, -1):  # no wrap-around
        with pytest.raises(mitk.TimeStepError, match=f"time_step {bad} .*0 to 2"):
            getattr(tg, method)(bad)
    for bad in (1.0, True):
        with pytest.raises(TypeError):
            getattr(tg, method)(bad)


def test_settable_times():
    tg = ProportionalTimeGeometry(steps(2))
    tg.first_time_point = -4
    tg.step_duration = np.float32(0.5)
    assert tg.first_time_point == -4.0 and type(tg.first_time_point) is float
    assert tg.get_time_bounds(1) == (-3.5, -3.0)
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(mitk.ArgumentError, match="step_duration"):
            tg.step_duration = bad
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(mitk.ArgumentError, match="first_time_point"):
            tg.first_time_point = bad
    for bad in ("1", None, True):
        with pytest.raises(TypeError, match="step_duration"):
            tg.step_duration = bad
        with pytest.raises(TypeError, match="first_time_point"):
            tg.first_time_point = bad
    assert tg.first_time_point == -4.0 and tg.step_duration == 0.5  # failures change nothing


@pytest.mark.parametrize("kwargs, error", [
    ({"step_duration": 0.0}, mitk.ArgumentError),
    ({"step_duration": -2.0}, mitk.ArgumentError),
    ({"first_time_point": float("nan")}, mitk.ArgumentError),
    ({"first_time_point": "0"}, TypeError),
])
def test_constructor_validates_times(kwargs, error):
    with pytest.raises(error):
        ProportionalTimeGeometry(steps(2), **kwargs)


def test_constructor_validates_geometries():
    with pytest.raises(mitk.ArgumentError, match="empty"):
        ProportionalTimeGeometry([])
    with pytest.raises(TypeError, match=r"geometries\[1\]"):
        ProportionalTimeGeometry([Geometry3D(), "geometry"])
    with pytest.raises(TypeError, match="geometries"):
        ProportionalTimeGeometry(Geometry3D())
    with pytest.raises(mitk.ArgumentError, match="static"):
        ProportionalTimeGeometry(steps(2), static=True)


def test_static_geometry():
    g = Geometry3D(extent=(4, 4, 4))
    tg = ProportionalTimeGeometry([g], static=True)
    assert tg.static and tg.count_time_steps() == 1
    assert tg.get_time_bounds(0) == (-MAX, MAX) and tg.get_time_bounds() == (-MAX, MAX)
    assert tg.get_min_time_point() == -MAX and tg.get_max_time_point(0) == MAX
    assert tg.time_step_to_time_point(0) == -MAX
    for time_point in (-1e300, 0.0, 12345.6, MAX, float("inf"), -float("inf")):
        assert tg.time_point_to_time_step(time_point) == 0
        assert tg.get_geometry_for_time_point(time_point) == g
        assert tg.get_geometry_for_time_point(time_point) is tg.get_geometry_for_time_step(0)
    assert tg.is_valid_time_point(0.0) and tg.is_valid_time_point(MAX)
    assert tg.is_valid_time_point(-MAX)
    assert not tg.is_valid_time_point(float("nan")) and not tg.is_valid_time_point(float("inf"))
    with pytest.raises(mitk.TimeStepError):
        tg.get_time_bounds(1)
    # Time settings are kept but do not move the all-time bounds.
    tg.first_time_point = 5.0
    assert tg.get_time_bounds(0) == (-MAX, MAX)
    assert tg != ProportionalTimeGeometry([g.copy()])  # one non-static step: bounds (0, 1)
    assert tg == ProportionalTimeGeometry([g.copy()], static=True)


def test_from_geometry_copies_per_step():
    g = Geometry3D(spacing=(2, 2, 2), extent=(3, 3, 3))
    tg = ProportionalTimeGeometry.from_geometry(g, 3, first_time_point=1.0, step_duration=4.0)
    geoms = tg.geometries()
    assert len(geoms) == 3 and all(x == g for x in geoms)
    assert all(x is not g for x in geoms) and len({id(x) for x in geoms}) == 3
    geoms[0].spacing = (9, 9, 9)
    assert g.spacing == (2, 2, 2) and geoms[1].spacing == (2, 2, 2)
    assert tg.get_time_bounds() == (1.0, 13.0)
    static = ProportionalTimeGeometry.from_geometry(g, 1, static=True)
    assert static.static and static.get_geometry_for_time_step(0) is not g
    assert ProportionalTimeGeometry.from_geometry(g, np.int64(2)).count_time_steps() == 2


def test_from_geometry_errors():
    g = Geometry3D()
    with pytest.raises(mitk.ArgumentError, match="time_steps"):
        ProportionalTimeGeometry.from_geometry(g, 0)
    for bad in (2.0, True, "2"):
        with pytest.raises(TypeError, match="time_steps"):
            ProportionalTimeGeometry.from_geometry(g, bad)
    with pytest.raises(TypeError, match="geometry"):
        ProportionalTimeGeometry.from_geometry("g", 2)
    with pytest.raises(mitk.ArgumentError, match="static"):
        ProportionalTimeGeometry.from_geometry(g, 2, static=True)


def test_set_extent_applies_to_every_step():
    tg = ProportionalTimeGeometry(steps(3))
    tg._set_extent((7, 8, 9))
    assert all(g.extent == (7, 8, 9) for g in tg.geometries())


def test_proportional_copy_is_deep():
    tg = ProportionalTimeGeometry(steps(3), first_time_point=2.0, step_duration=0.5)
    dup = tg.copy()
    assert dup == tg and type(dup) is ProportionalTimeGeometry
    assert all(a is not b for a, b in zip(dup.geometries(), tg.geometries()))
    dup.get_geometry_for_time_step(0).origin = (100, 0, 0)
    dup.step_duration = 1.0
    assert tg.get_geometry_for_time_step(0).origin == (0, 0, 0) and tg.step_duration == 0.5
    assert dup != tg


def test_equality():
    a = ProportionalTimeGeometry(steps(3), 1.0, 2.0)
    assert a == ProportionalTimeGeometry(steps(3), 1.0 + 5e-7, 2.0)
    assert a != ProportionalTimeGeometry(steps(3), 1.0 + 1e-5, 2.0)
    assert a != ProportionalTimeGeometry(steps(2), 1.0, 2.0)
    different = steps(3)
    different[2].spacing = (1, 1, 2)
    assert a != ProportionalTimeGeometry(different, 1.0, 2.0)
    # Equality is about content, whichever class holds it.
    assert a == ArbitraryTimeGeometry([(1, 3), (3, 5), (5, 7)], steps(3))
    assert a != "time geometry"
    with pytest.raises(TypeError):
        hash(a)


def test_proportional_pickle_and_deepcopy():
    for tg in (ProportionalTimeGeometry(steps(3), -2.5, 0.75),
               ProportionalTimeGeometry(steps(1), static=True)):
        for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
            back = pickle.loads(pickle.dumps(tg, protocol))
            assert back == tg and type(back) is ProportionalTimeGeometry
            assert back.static == tg.static
            assert back.first_time_point == tg.first_time_point
            assert back.step_duration == tg.step_duration
        deep = copy.deepcopy(tg)
        assert deep == tg
        assert deep.get_geometry_for_time_step(0) is not tg.get_geometry_for_time_step(0)


def test_proportional_repr():
    assert repr(ProportionalTimeGeometry(steps(3), 1.5, 2.0)) == (
        "ProportionalTimeGeometry(time_steps=3, first_time_point=1.5, step_duration=2.0)")
    assert repr(ProportionalTimeGeometry(steps(1), static=True)) == (
        "ProportionalTimeGeometry(time_steps=1, static=True)")


def test_time_geometry_is_abstract():
    with pytest.raises(TypeError):
        TimeGeometry()
    assert mitk.ProportionalTimeGeometry is ProportionalTimeGeometry
    assert mitk.ArbitraryTimeGeometry is ArbitraryTimeGeometry
    assert issubclass(ArbitraryTimeGeometry, mitk.TimeGeometry)


# -- ArbitraryTimeGeometry ----------------------------------------------------------------------


def test_arbitrary_bounds_gaps_and_clamping():
    geoms = steps(3)
    tg = ArbitraryTimeGeometry([(0, 1), (1, 4), (10, 10.5)], geoms)
    assert tg.count_time_steps() == 3
    assert [tg.get_time_bounds(t) for t in range(3)] == [(0.0, 1.0), (1.0, 4.0), (10.0, 10.5)]
    assert tg.get_time_bounds() == (0.0, 10.5)
    assert [tg.time_step_to_time_point(t) for t in range(3)] == [0.0, 1.0, 10.0]
    cases = {-5.0: 0, 0.0: 0, 0.99: 0, 1.0: 1, 3.99: 1, 4.0: 2, 7.0: 2, 10.0: 2, 10.5: 2,
             1e12: 2, float("inf"): 2, -float("inf"): 0}
    for time_point, step in cases.items():
        assert tg.time_point_to_time_step(time_point) == step, time_point
    assert tg.get_geometry_for_time_point(2.0) == geoms[1]
    assert tg.get_geometry_for_time_step(2) == geoms[2] != geoms[1]
    assert tg.is_valid_time_point(7.0)  # inside the whole span, in a gap
    assert not tg.is_valid_time_point(10.5) and not tg.is_valid_time_point(-0.1)
    with pytest.raises(mitk.ArgumentError):
        tg.time_point_to_time_step(float("nan"))
    with pytest.raises(mitk.TimeStepError, match="0 to 2"):
        tg.get_time_bounds(3)


def test_arbitrary_accepts_arrays_of_bounds():
    tg = ArbitraryTimeGeometry(np.array([[0.0, 0.5], [0.5, 2.0]]), steps(2))
    assert tg.get_time_bounds(1) == (0.5, 2.0)
    assert all(type(v) is float for v in tg.get_time_bounds(1))


@pytest.mark.parametrize("bounds, match", [
    ([(0, 1), (0.5, 2)], "starts before step 0 ends"),  # overlapping
    ([(2, 3), (0, 1)], "starts before"),  # decreasing
    ([(1, 1), (2, 3)], "empty"),
    ([(2, 1), (3, 4)], "empty"),
    ([(0, float("nan")), (2, 3)], "finite"),
    ([(0, 1), (2, float("inf"))], "finite"),
    ([(0, 1)], "1 time bounds for 2 geometries"),
    ([(0, 1), (1, 2), (2, 3)], "3 time bounds for 2 geometries"),
    ([(0, 1), (1, 2, 3)], r"bounds\[1\]"),
    ([(0, 1), 5], r"bounds\[1\]"),
])
def test_arbitrary_bad_bounds(bounds, match):
    with pytest.raises(mitk.ArgumentError, match=match):
        ArbitraryTimeGeometry(bounds, steps(2))


def test_arbitrary_type_errors():
    with pytest.raises(TypeError, match=r"bounds\[0\]\[1\]"):
        ArbitraryTimeGeometry([(0, "1")], steps(1))
    with pytest.raises(TypeError, match="bounds"):
        ArbitraryTimeGeometry(5, steps(1))
    with pytest.raises(TypeError, match="Geometry3D"):
        ArbitraryTimeGeometry([(0, 1)], [None])
    with pytest.raises(mitk.ArgumentError):
        ArbitraryTimeGeometry([], [])


def test_arbitrary_copy_pickle_repr():
    tg = ArbitraryTimeGeometry([(0, 1), (2, 5)], steps(2))
    dup = tg.copy()
    assert dup == tg and type(dup) is ArbitraryTimeGeometry
    dup.get_geometry_for_time_step(1).spacing = (3, 3, 3)
    assert tg.get_geometry_for_time_step(1).spacing == (1, 1, 1)
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(tg, protocol)) == tg
    assert copy.deepcopy(tg) == tg
    assert repr(tg) == "ArbitraryTimeGeometry(bounds=[(0.0, 1.0), (2.0, 5.0)])"
    assert tg != ArbitraryTimeGeometry([(0, 1), (2, 6)], steps(2))


# -- property tests ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.floats(-1e6, 1e6), st.floats(1e-3, 1e3), st.integers(1, 300), st.data())
def test_proportional_step_lookup_agrees_with_bounds(first, duration, n, data):
    tg = ProportionalTimeGeometry.from_geometry(Geometry3D(), n, first, duration)
    t = data.draw(st.integers(0, n - 1))
    lo, hi = tg.get_time_bounds(t)
    assert tg.time_point_to_time_step(lo) == t
    if np.nextafter(hi, -np.inf) > lo:
        assert tg.time_point_to_time_step(np.nextafter(hi, -np.inf)) == t
    time_point = data.draw(st.floats(-1e7, 1e7))
    step = tg.time_point_to_time_step(time_point)
    assert 0 <= step < n
    lo, hi = tg.get_time_bounds(step)
    assert (lo <= time_point < hi) or (step == 0 and time_point < lo) or \
        (step == n - 1 and time_point >= hi)


# -- issue 22 item 2: cost proportional to the payload, not to the step count --------------------

_MEMORY_PROBE = """
import gzip, pathlib, sys, tracemalloc
import mitk
steps = int(sys.argv[2])
path = pathlib.Path(sys.argv[1])
header = ("NRRD0005\\ntype: uint8\\ndimension: 4\\nspace dimension: 4\\nsizes: 1 1 1 %d\\n"
          "space directions: (1,0,0,0) (0,1,0,0) (0,0,1,0) (0,0,0,1)\\n"
          "kinds: domain domain domain domain\\nencoding: gzip\\nspace origin: (0,0,0,0)\\n\\n"
          % steps)
path.write_bytes(header.encode() + gzip.compress(bytes(steps), 1))
mitk.Image  # the import itself is not what is measured
tracemalloc.start()
img = mitk.Image(path)
img.set_spacing((2, 2, 2), time_step=steps // 2)
assert img.get_spacing(steps // 2 - 1) == (1.0, 1.0, 1.0)
tg = img.time_geometry
assert tg._first_differing_step() == steps // 2
copy = img.copy()
assert copy.time_geometry == tg
print(tracemalloc.get_traced_memory()[1])
"""


def test_many_steps_cost_what_their_pixels_cost(tmp_path):
    # Issue 22: a 1-voxel image with 10**6 steps took 276 MiB (a Geometry3D per step).  Now the
    # steps share one geometry record: the peak is the pixels (1 MB, twice with the copy) plus
    # what the reader needs, whatever the step count.
    import subprocess

    steps = 10**6
    out = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, str(tmp_path / "t.nrrd"),
                          str(steps)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    peak = int(out.stdout)
    assert peak < 8 * steps, f"peak {peak / 2**20:.1f} MiB for {steps} one-byte steps"


def test_from_geometry_shares_one_record_until_a_step_changes():
    tg = ProportionalTimeGeometry.from_geometry(Geometry3D(extent=(2, 2, 2)), 10**9)
    assert tg.count_time_steps() == 10**9
    g = tg.get_geometry_for_time_step(10**9 - 1)
    g.origin = (5, 5, 5)
    assert tg.get_geometry_for_time_step(10**9 - 2).origin == (0, 0, 0)
    assert tg.get_geometry_for_time_step(10**9 - 1).origin == (5, 5, 5)
    assert tg._first_differing_step() == 10**9 - 1
    assert len(tg._table[1]) == 1
    copied = tg.copy()
    assert copied == tg  # compares the differing steps only
    copied.get_geometry_for_time_step(0).spacing = (3, 3, 3)
    assert copied != tg and tg.get_geometry_for_time_step(0).spacing == (1, 1, 1)
    back = pickle.loads(pickle.dumps(tg))
    assert back == tg and back.get_geometry_for_time_step(10**9 - 1).origin == (5, 5, 5)
    g.origin = (0, 0, 0)  # equal to the shared record again: no per-step record left
    assert len(tg._table[1]) == 0 and tg._first_differing_step() is None


def test_arbitrary_from_geometry_shares_one_record():
    bounds = [(float(t), t + 1.0) for t in range(1000)]
    tg = ArbitraryTimeGeometry.from_geometry(Geometry3D(spacing=(2, 2, 2)), bounds)
    assert tg.count_time_steps() == 1000 and len(tg._table[1]) == 0
    assert tg.get_geometry_for_time_step(999).spacing == (2, 2, 2)
    assert tg.time_point_to_time_step(500.5) == 500
    with pytest.raises(TypeError):
        ArbitraryTimeGeometry.from_geometry("g", bounds)


# -- issue 22 item 12: time values whose bounds leave the float64 range --------------------------


@pytest.mark.parametrize("first, duration, n", [
    (0.0, 1e308, 2),            # step 1 would end at inf (its duration was inf in a save)
    (-1e308, 1e308, 3),
    (1e300, 1e300, 10**9),
    (1e308, 1e308, 1),
])
def test_time_values_beyond_float64_are_refused(first, duration, n):
    with pytest.raises(mitk.ArgumentError, match="float64"):
        ProportionalTimeGeometry.from_geometry(Geometry3D(), n, first_time_point=first,
                                               step_duration=duration)
    if n < 100:
        with pytest.raises(mitk.ArgumentError):
            ProportionalTimeGeometry([Geometry3D()] * n, first_time_point=first,
                                     step_duration=duration)
    tg = ProportionalTimeGeometry.from_geometry(Geometry3D(), n)
    with pytest.raises(mitk.ArgumentError):
        tg.first_time_point = first
        tg.step_duration = duration
    assert (tg.first_time_point, tg.step_duration) in ((0.0, 1.0), (first, 1.0))


def test_setters_check_the_span_and_change_nothing_on_failure():
    tg = ProportionalTimeGeometry.from_geometry(Geometry3D(), 4, first_time_point=1.0,
                                                step_duration=2.0)
    with pytest.raises(mitk.ArgumentError):
        tg.step_duration = 1e308
    assert tg.get_time_bounds() == (1.0, 9.0)
    tg.step_duration = 1e307
    with pytest.raises(mitk.ArgumentError):
        tg.first_time_point = 1.5e308
    assert tg.get_time_bounds() == (1.0, 1.0 + 4e307)
    static = ProportionalTimeGeometry([Geometry3D()], static=True)
    static.first_time_point = 1e308  # ignored by a static geometry's bounds
    assert static.get_time_bounds(0) == (-MAX, MAX)


def test_arbitrary_durations_must_be_finite():
    with pytest.raises(mitk.ArgumentError, match="float64"):
        ArbitraryTimeGeometry([(-1e308, 1e308)], [Geometry3D()])
    tg = ArbitraryTimeGeometry([(-1e308, 0.0), (0.0, 1e308)], steps(2))
    assert [hi - lo for lo, hi in (tg.get_time_bounds(t) for t in range(2))] == [1e308, 1e308]


def test_first_differing_step_is_the_smallest():
    tg = ProportionalTimeGeometry.from_geometry(Geometry3D(), 10)
    tg.get_geometry_for_time_step(0).spacing = (2, 2, 2)  # steps 1.. keep the shared record
    tg.get_geometry_for_time_step(5).spacing = (3, 3, 3)
    assert tg._first_differing_step() == 1
    for t in range(1, 10):
        tg.get_geometry_for_time_step(t).spacing = (2, 2, 2)
    assert tg._first_differing_step() is None
    tg.get_geometry_for_time_step(7).origin = (1, 0, 0)
    assert tg._first_differing_step() == 7


@pytest.mark.parametrize("first, duration, n", [(1e308, 1.0, 2), (1e20, 1e-3, 5)])
def test_steps_must_have_distinct_bounds(first, duration, n):
    # Time points of 1e308 with a 1 ms step: every step would have the same bounds (and a save
    # failed later with np.float64(...) in its message).
    with pytest.raises(mitk.ArgumentError, match="distinct bounds"):
        ProportionalTimeGeometry.from_geometry(Geometry3D(), n, first_time_point=first,
                                               step_duration=duration)
