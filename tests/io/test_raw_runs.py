"""Raw byte runs: the compiled positioned-read loop and the Python fallback give the same bytes,
refuse runs outside the result, and report a file that ends early as CorruptFileError."""

import errno
import os
import types

import numpy as np
import pytest

import mitk
from mitk._core import _positioned
from mitk.io import _raw_runs

needs_pread = pytest.mark.skipif(not _positioned.HAVE_PREAD, reason="no pread on this platform")


def _file(tmp_path, size=1 << 16, seed=0):
    data = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)
    path = tmp_path / "data.raw"
    path.write_bytes(data.tobytes())
    return path, data


def _random_runs(rng, size, out_size, n):
    lengths = rng.integers(0, 300, n)
    offsets = np.array([rng.integers(0, size - ln + 1) for ln in lengths], dtype=np.int64)
    dests = np.cumsum(np.r_[0, lengths[:-1]]).astype(np.int64)
    assert dests[-1] + lengths[-1] <= out_size
    return offsets, lengths.astype(np.int64), dests


@pytest.fixture(params=["compiled", "fallback"])
def positioned(request, monkeypatch):
    if request.param == "compiled":
        if not _positioned.HAVE_PREAD:
            pytest.skip("no pread on this platform")
    else:  # what a platform without pread (and preadv) runs
        monkeypatch.setattr(_raw_runs, "_positioned", types.SimpleNamespace(HAVE_PREAD=False))
        monkeypatch.delattr(os, "pread", raising=False)
        monkeypatch.delattr(os, "preadv", raising=False)
    return request.param


def test_runs_land_where_they_belong(tmp_path, positioned):
    path, data = _file(tmp_path)
    rng = np.random.default_rng(1)
    offsets, lengths, dests = _random_runs(rng, data.size, 1 << 16, 200)
    out = np.zeros(1 << 16, np.uint8)
    fd = os.open(path, os.O_RDONLY)
    try:
        _raw_runs.read_runs(fd, offsets, lengths, dests, out, "data.raw")
    finally:
        os.close(fd)
    expected = np.zeros_like(out)
    for o, n, d in zip(offsets, lengths, dests):
        expected[d:d + n] = data[o:o + n]
    assert np.array_equal(out, expected)


def test_a_file_that_ends_early_is_corrupt(tmp_path, positioned):
    path, data = _file(tmp_path, size=1000)
    out = np.zeros(300, np.uint8)
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(mitk.CorruptFileError,
                           match=r"data\.raw: data end at byte 1000, before the 100 bytes "
                                 r"from byte 950"):
            _raw_runs.read_runs(fd, np.array([0, 950, 10]), np.array([100, 100, 100]),
                                np.array([0, 100, 200]), out, "data.raw")
    finally:
        os.close(fd)
    assert np.array_equal(out[:100], data[:100])
    assert np.array_equal(out[100:150], data[950:1000])


@needs_pread
def test_the_compiled_loop_checks_every_run_before_reading(tmp_path):
    path, _ = _file(tmp_path, size=1000)
    out = np.zeros(100, np.uint8)
    fd = os.open(path, os.O_RDONLY)
    try:
        i64 = lambda *v: np.array(v, dtype=np.int64)  # noqa: E731
        bad = [
            (i64(0, 0), i64(10, 91), i64(0, 10)),   # past the end of the result
            (i64(-1), i64(10), i64(0)),             # negative offset
            (i64(0), i64(-5), i64(0)),              # negative length
            (i64(0), i64(10), i64(-1)),             # negative destination
            (i64(0, 1), i64(10), i64(0, 10)),       # lists of different lengths
        ]
        for offsets, lengths, dests in bad:
            with pytest.raises(ValueError, match="read_runs"):
                _positioned.read_runs(fd, offsets, lengths, dests, out)
        assert not out.any(), "nothing is read when a run is refused"
        assert _positioned.read_runs(fd, i64(5, 0), i64(0, 0), i64(100, 100), out) is None
        assert _positioned.read_runs(fd, i64(0, 990), i64(10, 20), i64(0, 10), out) == (1, 10)
    finally:
        os.close(fd)
    with pytest.raises(OSError):
        _positioned.read_runs(fd, np.zeros(1, np.int64), np.ones(1, np.int64),
                              np.zeros(1, np.int64), out)  # closed descriptor: EBADF


# Planes of 300 x 300 int16 (176 KiB) are further apart than GAP, so these keys read many runs:
# a row of every plane, or the same box in every plane (a batch of spans).  An x-column's runs
# are close together: one span, like a run of whole planes.
MANY_RUNS = [(slice(None), 7), (slice(None), 150, slice(10, 290)),
             (slice(0, 8, 3), slice(4, 200, 7), slice(1, 280, 2)),
             (slice(None, None, -2), slice(9, 40), slice(3, 9)),
             (slice(1, 7), slice(100, 140), slice(100, 140))]
FEW_RUNS = [(5,), (slice(2, 4),), (slice(None, 1), slice(0, 10)), (slice(None), slice(None), 3)]


@pytest.mark.parametrize("key", MANY_RUNS + FEW_RUNS)
def test_regions_of_a_raw_file_both_ways(tmp_path, positioned, monkeypatch, key):
    arr = np.random.default_rng(2).integers(-999, 999, (8, 300, 300), dtype=np.int16)
    for name in ("a.nrrd", "a.nii", "a.mha"):
        mitk.Image(arr).save(tmp_path / name)
    calls = []
    if positioned == "compiled":
        # How many runs or rows each compiled call reads: (index of the runs or plane starts,
        # index of the rows per plane or None) in its arguments.
        counts = {"read_runs": (1, None), "read_rows": (1, 2), "read_file_rows": (5, 7)}
        for name, (at, per) in counts.items():
            real = getattr(_positioned, name)
            monkeypatch.setattr(_positioned, name,
                                lambda *args, real=real, name=name, at=at, per=per:
                                calls.append((name, len(args[at]) * (1 if per is None
                                                                     else args[per])))
                                or real(*args))
    for name in ("a.nrrd", "a.nii", "a.mha"):
        assert np.array_equal(mitk.open(tmp_path / name)[key], arr[key]), name
    if positioned == "compiled":
        # A compiled loop reads every list of more than one run or row (and only those).
        assert bool(calls) == (key in MANY_RUNS), calls
        assert all(n > 1 for _, n in calls), calls


# Keys that select one run of bytes (whole planes, whole rows of one plane): read with one
# positioned read, without the general plan.  The others are several runs.
ONE_RUN = [(5,), (-1,), (slice(2, 4),), (3, 7), (slice(None, 1), slice(0, 10)), (0, 299, ...)]
NOT_ONE_RUN = [(slice(1, 3), 5), (slice(None, None, 2),), (2, slice(None), 4), (slice(None),
                                                                               slice(1, 300))]


@pytest.mark.parametrize("key", ONE_RUN + NOT_ONE_RUN)
def test_one_run_keys_take_one_read(tmp_path, positioned, monkeypatch, key):
    from mitk.io import _box_runs, _regions

    arr = np.random.default_rng(3).integers(-999, 999, (8, 300, 300), dtype=np.int16)
    names = ("a.nrrd", "a.nii", "a.mha")
    for name in names:
        mitk.Image(arr).save(tmp_path / name)
    # the same pixels big-endian, with a byte skip, one file per plane
    for k in range(8):
        (tmp_path / f"p{k}.raw").write_bytes(b"\0" * 3 + arr[k].astype(">i2").tobytes())
    (tmp_path / "planes.nhdr").write_text(
        "NRRD0004\ntype: int16\ndimension: 3\nsizes: 300 300 8\nendian: big\nencoding: raw\n"
        "byte skip: 3\ndata file: p%d.raw 0 7 1\n")
    plans = []
    real = _box_runs.one_run
    monkeypatch.setattr(_regions, "one_run", lambda *a: plans.append(real(*a)) or plans[-1])
    for name in (*names, "planes.nhdr"):
        got = mitk.open(tmp_path / name)[key]
        assert got.tobytes() == np.ascontiguousarray(arr[key]).tobytes(), name
        assert got.shape == arr[key].shape and got.flags.writeable, name
    assert len(plans) == 4
    # two planes are two files of planes.nhdr: two runs there
    expected = [key in ONE_RUN] * 3 + [key in ONE_RUN and key != (slice(2, 4),)]
    assert [plan is not None for plan in plans] == expected, plans


def _spans_reference(starts, lengths, gap, most):
    """Spans by the definition: cut at gaps over ``gap``, then greedily at ``most`` bytes."""
    ends = starts + lengths
    groups, lo = [], 0
    for k in range(1, starts.size + 1):
        if k == starts.size or starts[k] - ends[k - 1] > gap:
            groups.append((lo, k))
            lo = k
    out = []
    for lo, hi in groups:
        while lo < hi:
            top = lo + 1
            while top < hi and ends[top] - starts[lo] <= most:
                top += 1
            out.append((lo, top))
            lo = top
    return [a for a, _ in out], [b for _, b in out]


def _regular_reference(los, his, starts, lengths, dests):
    k = int(his[0] - los[0])
    if k < 2 or any(h - lo != k for lo, h in zip(los, his)):
        return None
    length = int(lengths[0])
    if any(int(d) != i * length for i, d in enumerate(dests)) or any(lengths != length):
        return None
    rel = starts.reshape(len(los), k) - starts[::k, None]
    step = int(rel[0, 1])
    if step < length or not np.array_equal(rel, np.broadcast_to(np.arange(k) * step, rel.shape)):
        return None
    return k, step, (k - 1) * step + length


def test_span_plan_matches_its_definition():
    from mitk._core import _run_plan

    rng = np.random.default_rng(7)
    for _ in range(300):
        n = int(rng.integers(1, 60))
        lengths = rng.integers(0, 400, n).astype(np.int64)
        gaps = rng.choice([0, 1, 50, 99, 100, 101, 3000], n).astype(np.int64)
        starts = np.cumsum(np.r_[0, lengths[:-1] + gaps[:-1]]).astype(np.int64)
        gap, most = int(rng.choice([0, 100])), int(rng.choice([300, 1000, 1 << 20]))
        los, his = _run_plan.spans(starts, lengths, gap, most)
        assert (los.tolist(), his.tolist()) == _spans_reference(starts, lengths, gap, most)
        assert los.dtype == his.dtype == np.int64
        dests = np.cumsum(np.r_[0, lengths[:-1]]).astype(np.int64)
        assert _run_plan.regular(los, his, starts, lengths, dests) == \
            _regular_reference(los, his, starts, lengths, dests)
    # boxes: k rows of one length, equally spaced, in planes far apart; then one flaw each
    k, step, length = 5, 300, 80
    starts = (np.arange(4)[:, None] * 100000 + np.arange(k) * step).reshape(-1).astype(np.int64)
    lengths = np.full(starts.size, length, np.int64)
    dests = np.arange(starts.size, dtype=np.int64) * length
    los, his = _run_plan.spans(starts, lengths, 1000, 1 << 20)
    assert his.tolist() == [5, 10, 15, 20]
    assert _run_plan.regular(los, his, starts, lengths, dests) == (k, step, (k - 1) * step + length)
    flawed = [(starts + np.isin(np.arange(20), [7]) * 8, lengths, dests),   # one row moved
              (starts, lengths - np.isin(np.arange(20), [12]), dests),      # one row shorter
              (starts, lengths, dests + np.isin(np.arange(20), [19]) * 8)]  # one row elsewhere
    for s, ln, d in flawed:
        assert _run_plan.regular(los, his, s, ln, d) is None
    with pytest.raises(ValueError):
        _run_plan.spans(starts[:0], lengths[:0], 1000, 1 << 20)
    with pytest.raises(ValueError):
        _run_plan.spans(starts, lengths[:3], 1000, 1 << 20)
    with pytest.raises(TypeError):
        _run_plan.spans(starts, lengths, 1000.5, 1 << 20)


def _stored(shape, itemsize, pieces=1):
    from mitk.io import _regions
    from mitk.io._data_files import Piece

    total = int(np.prod(shape)) * itemsize
    cuts = np.linspace(0, total, pieces + 1).astype(int)
    return _regions.Stored([Piece(src=f"f{k}", label=f"f{k}", start=3, nbytes=int(b - a),
                                  encoding="raw") for k, (a, b) in enumerate(zip(cuts, cuts[1:]))],
                           np.dtype(f"i{itemsize}"), tuple(shape))


def _random_box(rng, shape):
    box = []
    for n in shape:
        kind = rng.integers(0, 4)
        if kind == 0:
            box.append((0, n, 1))
        elif kind == 1:
            i = int(rng.integers(0, n))
            box.append((i, i + 1, 1))
        else:
            a = int(rng.integers(0, n))
            box.append((a, int(rng.integers(a + 1, n + 1)), int(rng.integers(1, 4)) if kind == 3
                        else 1))
    return box


def test_the_row_plan_reads_what_the_general_plan_reads():
    """Where the short plan of a block or a y-plane applies, it reads the general plan's runs
    in the general plan's spans: one per plane (joined) or one per row."""
    from mitk.io import _box_runs

    rng = np.random.default_rng(11)
    taken = {True: 0, False: 0}
    shapes = [(40, 300, 300), (6, 5, 700, 40), (3, 2000, 20), (1, 64, 64), (300, 300), (9, 2, 3)]
    for _ in range(3000):
        shape = shapes[int(rng.integers(0, len(shapes)))]
        stored = _stored(shape, int(rng.choice([1, 2, 8])), pieces=int(rng.choice([1, 1, 3])))
        box = _random_box(rng, shape)
        plan = _box_runs.row_plan(stored, box)
        if plan is None:
            continue
        p, planes, k, step, length, joined = plan
        starts, run_length, read_shape, subsample = _box_runs.runs(stored, box)
        assert subsample is None and run_length == length and k >= 2
        assert read_shape == tuple(len(range(*b)) for b in box)
        rows = (planes[:, None] + np.arange(k) * step).reshape(-1)
        assert np.array_equal(rows + stored.bounds[p], starts), (shape, box)
        assert rows[-1] + length <= stored.pieces[p].nbytes
        los, his = _raw_runs.spans(starts, np.full(starts.size, length, dtype=np.int64))
        assert set((his - los).tolist()) == ({k} if joined else {1}), (shape, box)
        taken[joined] += 1
    assert taken[True] > 300 and taken[False] > 30, taken


def test_the_row_plan_at_its_boundaries():
    """Rows exactly GAP apart are joined, one byte more are not; planes exactly GAP apart would
    join one span (no row plan), one byte more are read apart; a plane over SPAN is no row plan.
    Each against the spans of the general plan."""
    from mitk.io import _box_runs

    gap, most = _raw_runs.GAP, _raw_runs.SPAN

    def check(shape, box):
        stored = _stored(shape, 1)
        plan = _box_runs.row_plan(stored, box)
        starts, length, _, _ = _box_runs.runs(stored, box)
        los, his = _raw_runs.spans(starts, np.full(starts.size, length, dtype=np.int64))
        if plan is not None:
            k = plan[2]
            assert set((his - los).tolist()) == ({k} if plan[-1] else {1})
        return plan, (his - los).tolist()

    rows = [(0, 3, 1), (0, 2, 1), (0, 100, 1)]
    plan, _ = check((3, 3, gap + 100), rows)              # rows exactly GAP apart
    assert plan is not None and plan[-1] is True
    plan, _ = check((3, 3, gap + 101), rows)              # one byte more
    assert plan is not None and plan[-1] is False
    # 42 rows of 100 bytes per plane, 2 read: planes GAP apart with 4 bytes a row, GAP + 1 with 3
    plan, spans = check((3, 42, 100), [(0, 3, 1), (0, 2, 1), (0, 4, 1)])
    assert plan is None and spans == [6]
    plan, spans = check((3, 42, 100), [(0, 3, 1), (0, 2, 1), (0, 3, 1)])
    assert plan is not None and plan[-1] is True and spans == [2, 2, 2]
    # a plane's rows over SPAN: more than one span a plane, which only the general plan reads
    assert (4999 * 1000 + 10 > most) and (3999 * 1000 + 10 <= most)
    plan, _ = check((2, 6000, 1000), [(0, 2, 1), (0, 5000, 1), (0, 10, 1)])
    assert plan is None
    plan, _ = check((2, 6000, 1000), [(0, 2, 1), (0, 4000, 1), (0, 10, 1)])
    assert plan is not None and plan[-1] is True


@pytest.mark.parametrize("key, joined", [((slice(None), 7), False),
                                         ((slice(1, 7), slice(100, 140), slice(100, 140)), True),
                                         ((slice(0, 8, 3), slice(4, 200, 7), slice(1, 280)),
                                          True)])
def test_blocks_and_planes_take_the_row_plan(tmp_path, positioned, monkeypatch, key, joined):
    from mitk.io import _box_runs, _regions

    arr = np.random.default_rng(4).integers(-999, 999, (8, 300, 300), dtype=np.int16)
    plans = []
    real = _box_runs.row_plan
    monkeypatch.setattr(_regions, "row_plan", lambda *a: plans.append(real(*a)) or plans[-1])
    for name in ("a.nrrd", "a.nii", "a.mha"):
        mitk.Image(arr).save(tmp_path / name)
        assert np.array_equal(mitk.open(tmp_path / name)[key], arr[key]), name
    assert len(plans) == 3 and all(p is not None and p[-1] is joined for p in plans), plans


@pytest.mark.parametrize("joined", [True, False])
def test_rows_past_the_end_of_the_file_are_corrupt(tmp_path, positioned, joined):
    from mitk.io._data_files import Piece

    path, data = _file(tmp_path, size=50_000)
    piece = Piece(src=str(path), label="rows.raw", start=100, nbytes=49_900, encoding="raw")
    planes = np.array([0, 20_000, 45_000], dtype=np.int64)  # the last plane's rows pass the end
    out = np.zeros(3 * 4 * 30, dtype=np.uint8)
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(mitk.CorruptFileError, match="rows.raw"):
            _raw_runs.read_rows(fd, piece, planes, 4, 3000, 30, joined, out)
        _raw_runs.read_rows(fd, piece, planes[:2], 4, 3000, 30, joined, out)
    finally:
        os.close(fd)
    rows = 100 + (planes[:2, None] + np.arange(4) * 3000).reshape(-1)
    expected = np.concatenate([data[r:r + 30] for r in rows])
    assert np.array_equal(out[:expected.size], expected)


def _identity(path):
    """What the compiled calls that open a file check it against: os.stat's size, mtime in
    ns, inode and device."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev


def _rows_by_path(path):
    """read_rows's signature, read through read_file_rows (the file opened, checked and closed
    by the call), the planes counted from a base of half the first plane's offset."""
    ident = _identity(path)

    def read(fd, planes, k, step, length, joined, out):
        base = int(planes[0]) // 2 if planes.size else 0
        got = _positioned.read_file_rows(os.fsencode(path), *ident, planes - base, base, k,
                                         step, length, joined, out)
        return None if got == _positioned.WHOLE else got

    return read


@needs_pread
@pytest.mark.parametrize("by_path", [False, True], ids=["descriptor", "path"])
@pytest.mark.parametrize("joined", [True, False])
def test_the_compiled_row_reader_against_slicing(tmp_path, joined, by_path):
    path, data = _file(tmp_path, size=1 << 17, seed=5)
    rng = np.random.default_rng(9)
    read_rows = _rows_by_path(path) if by_path else _positioned.read_rows
    fd = os.open(path, os.O_RDONLY)
    try:
        for _ in range(200):
            k, length = int(rng.integers(1, 12)), int(rng.integers(0, 200))
            step = length + int(rng.integers(0, 300))
            n = int(rng.integers(1, 6))
            reach = (k - 1) * step + length
            planes = np.sort(rng.integers(0, data.size - reach + 1, n)).astype(np.int64)
            out = np.full(n * k * length + 7, 0xAB, dtype=np.uint8)
            assert read_rows(fd, planes, k, step, length, joined, out) is None
            rows = (planes[:, None] + np.arange(k) * step).reshape(-1)
            expected = np.concatenate([data[r:r + length] for r in rows] + [np.zeros(0, np.uint8)])
            assert np.array_equal(out[:expected.size], expected)
            assert np.all(out[expected.size:] == 0xAB)  # nothing written past the rows
        # a file that ends inside the rows: the first row it cuts, and what that row got
        for _ in range(200):
            k, length = int(rng.integers(1, 12)), int(rng.integers(1, 200))
            step = length + int(rng.integers(0, 300))
            reach = (k - 1) * step + length
            planes = np.array([data.size - reach - int(rng.integers(1, 500)),
                               data.size - int(rng.integers(1, reach + 1))], dtype=np.int64)
            planes = planes[planes >= 0]
            out = np.zeros(planes.size * k * length, dtype=np.uint8)
            rows = (planes[:, None] + np.arange(k) * step).reshape(-1)
            cut = int(np.argmax(rows + length > data.size))
            assert rows[cut] + length > data.size
            got = read_rows(fd, planes, k, step, length, joined, out)
            assert got == (cut, max(0, data.size - int(rows[cut]))), (k, step, length, planes)
            whole = out[:cut * length]
            assert np.array_equal(whole, np.concatenate(
                [data[r:r + length] for r in rows[:cut]] + [np.zeros(0, np.uint8)]))
    finally:
        os.close(fd)


@needs_pread
def test_the_compiled_row_reader_refuses_what_does_not_fit(tmp_path):
    path, _ = _file(tmp_path)
    out = np.zeros(100, dtype=np.uint8)
    one = np.zeros(1, dtype=np.int64)
    fd = os.open(path, os.O_RDONLY)
    try:
        for planes, k, step, length in [(one, 0, 10, 5), (one, 2, 4, 5), (one, 2, 10, -1),
                                        (np.array([0, 5], np.int64), 6, 10, 10),
                                        (np.array([-1], np.int64), 2, 10, 5),
                                        (one, 3, 1 << 62, 1), (one, 5, 1 << 62, 1),
                                        (np.array([(1 << 63) - 10], np.int64), 2, 10, 5)]:
            with pytest.raises(ValueError, match="read_rows"):
                _positioned.read_rows(fd, planes, k, step, length, True, out)
        assert np.all(out == 0)
    finally:
        os.close(fd)
    with pytest.raises(OSError):
        _positioned.read_rows(fd, one, 2, 10, 5, True, out)  # closed descriptor: EBADF
    with pytest.raises(OSError) as caught:
        _positioned.read_rows(-1, one, 2, 10, 5, True, out)  # no descriptor: never an open
    assert caught.value.errno == errno.EBADF


@needs_pread
def test_a_run_read_in_one_compiled_call_checks_the_file_and_reports_where_it_ends(tmp_path):
    path, data = _file(tmp_path, size=1000)
    name, ident = os.fsencode(path), _identity(path)
    out = np.zeros(200, np.uint8)
    assert _positioned.read_file_run(name, *ident, 100, out) == _positioned.WHOLE
    assert np.array_equal(out, data[100:300])
    out[:] = 0
    assert _positioned.read_file_run(name, *ident, 900, out) == 100  # the file ends 100 in
    assert np.array_equal(out[:100], data[900:]) and not out[100:].any()
    assert _positioned.read_file_run(name, *ident, 1000, out) == 0
    assert _positioned.read_file_run(name, *ident, 0, out[:0]) == _positioned.WHOLE
    for i in range(4):  # size, mtime, inode, device: any one differing is another file
        other = list(ident)
        other[i] += 1
        assert _positioned.read_file_run(name, *other, 0, out) == _positioned.CHANGED
    assert _positioned.read_file_run(name + b".gone", *ident, 0, out) == _positioned.GONE
    assert _positioned.read_file_run(name + b"/below", *ident, 0, out) == _positioned.GONE
    with pytest.raises(ValueError, match="null byte"):
        _positioned.read_file_run(name + b"\0x", *ident, 0, out)
    with pytest.raises(ValueError):
        _positioned.read_file_run(name, *ident, -1, out)
    d = os.stat(tmp_path)  # a directory that is "the file described": reading it fails
    with pytest.raises(OSError):
        _positioned.read_file_run(os.fsencode(tmp_path), d.st_size, d.st_mtime_ns, d.st_ino,
                                  d.st_dev, 0, out)


@needs_pread
def test_a_file_run_makes_a_new_array_each_read_or_none_for_the_general_read(tmp_path):
    path, data = _file(tmp_path, size=1000)
    name, ident = os.fsencode(path), _identity(path)
    run = _positioned.FileRun(name, *ident, 100, (5, 20), np.dtype("<u2"))
    assert (run.path, run.shape, run.dtype) == (name, (5, 20), np.dtype("<u2"))
    first, second = run.read(), run.read()
    assert first is not second and not np.shares_memory(first, second)
    expected = data[100:300].view("<u2").reshape(5, 20)
    for got in (first, second):
        assert got.dtype == np.dtype("<u2") and got.shape == (5, 20)
        assert got.flags.c_contiguous and got.flags.writeable and got.flags.owndata
        assert np.array_equal(got, expected)
    first[...] = 0  # the arrays are the caller's
    assert np.array_equal(run.read(), expected)
    assert _positioned.FileRun(name, *ident, 1000, (0,), np.dtype("u1")).read().shape == (0,)
    # not the file described, no file, a file that ends first: None (the general read says)
    for i in range(4):
        other = list(ident)
        other[i] += 1
        assert _positioned.FileRun(name, *other, 0, (10,), np.dtype("u1")).read() is None
    for missing in (name + b".gone", name + b"/below"):
        assert _positioned.FileRun(missing, *ident, 0, (10,), np.dtype("u1")).read() is None
    assert _positioned.FileRun(name, *ident, 990, (20,), np.dtype("u1")).read() is None
    with pytest.raises(ValueError, match="null byte"):
        _positioned.FileRun(name + b"\0x", *ident, 0, (10,), np.dtype("u1"))
    with pytest.raises(ValueError, match="offset"):
        _positioned.FileRun(name, *ident, -1, (10,), np.dtype("u1"))
    with pytest.raises(OverflowError):  # st_mtime_ns past 2262: the caller reads another way
        _positioned.FileRun(name, ident[0], 1 << 63, *ident[2:], 0, (10,), np.dtype("u1"))
    with pytest.raises(ValueError, match="FileRun.read"):  # past the largest file offset
        _positioned.FileRun(name, *ident, (1 << 63) - 5, (10,), np.dtype("u1")).read()
    d = os.stat(tmp_path)  # a directory that is "the file described": reading it fails
    with pytest.raises(OSError):
        _positioned.FileRun(os.fsencode(tmp_path), d.st_size, d.st_mtime_ns, d.st_ino,
                            d.st_dev, 0, (10,), np.dtype("u1")).read()


@needs_pread
def test_rows_read_in_one_compiled_call_check_the_file_first(tmp_path):
    path, data = _file(tmp_path, size=1000)
    name, ident = os.fsencode(path), _identity(path)
    planes = np.array([0, 300], np.int64)
    out = np.zeros(2 * 3 * 20, np.uint8)
    assert _positioned.read_file_rows(name, *ident, planes, 100, 3, 50, 20, True,
                                      out) == _positioned.WHOLE
    rows = [100, 150, 200, 400, 450, 500]
    assert np.array_equal(out, np.concatenate([data[r:r + 20] for r in rows]))
    for i in range(4):  # size, mtime, inode, device: any one differing is another file
        other = list(ident)
        other[i] += 1
        for planes_read in (planes, planes[:0]):  # checked even when there is nothing to read
            assert _positioned.read_file_rows(name, *other, planes_read, 0, 3, 50, 20, False,
                                              out) == _positioned.CHANGED
    for missing in (name + b".gone", name + b"/below"):
        assert _positioned.read_file_rows(missing, *ident, planes, 0, 3, 50, 20, False,
                                          out) == _positioned.GONE
    with pytest.raises(ValueError, match="null byte"):
        _positioned.read_file_rows(name + b"\0x", *ident, planes, 0, 3, 50, 20, False, out)
    # what does not fit is refused before the file is opened: a path that is not there
    for base, k, step, length, size in ((-1, 3, 50, 20, 120), (0, 3, 10, 20, 120),
                                        (0, 3, 50, 20, 119), (2**63 - 200, 3, 50, 20, 120)):
        with pytest.raises(ValueError, match="read_file_rows"):
            _positioned.read_file_rows(name + b".gone", *ident, planes, base, k, step, length,
                                       False, np.zeros(size, np.uint8))
    d = os.stat(tmp_path)  # a directory that is "the file described": reading it fails
    with pytest.raises(OSError):
        _positioned.read_file_rows(os.fsencode(tmp_path), d.st_size, d.st_mtime_ns, d.st_ino,
                                   d.st_dev, planes, 0, 3, 50, 20, True, out)


@needs_pread
def test_a_raw_slice_is_one_compiled_call_and_a_changed_file_is_still_corrupt(tmp_path,
                                                                            monkeypatch):
    from mitk.io import _regions

    # planes of 6000 bytes, further apart than GAP: a block is rows of planes read apart
    arr = np.arange(4 * 50 * 60, dtype=np.int16).reshape(4, 50, 60)
    mitk.Image(arr).save(tmp_path / "s.nii")
    lz = mitk.open(tmp_path / "s.nii")
    opened = []
    real = os.open
    monkeypatch.setattr(_regions.os, "open", lambda *a, **k: opened.append(a) or real(*a, **k))
    # a slice, a y-plane (a row of every plane), a block (rows of planes, read joined)
    keys = [(2,), (-1,), (slice(None), 1), (slice(1, 3), slice(1, 4), slice(2, 5))]
    for key in keys:
        assert np.array_equal(lz[key], arr[key]), key
    assert opened == []  # opened, checked, read and closed by the compiled calls
    monkeypatch.undo()
    os.replace(tmp_path / "s.nii", tmp_path / "old.nii")
    for key in keys:
        with pytest.raises(mitk.CorruptFileError, match="gone"):
            lz[key]
    # the same bytes in another file (the old one is kept, so its inode is not reused)
    (tmp_path / "new.nii").write_bytes((tmp_path / "old.nii").read_bytes())
    os.replace(tmp_path / "new.nii", tmp_path / "s.nii")
    for key in keys:
        with pytest.raises(mitk.CorruptFileError, match="replaced"):
            lz[key]


@pytest.mark.parametrize("seconds", [10_400_000_000, -2_000_000_000])
def test_a_raw_slice_of_a_file_dated_far_from_now_is_read(tmp_path, seconds):
    # Past 2262 st_mtime_ns is beyond C's int64 (the compiled read cannot take it; the Python
    # read does); before 1970 it is negative, with nanoseconds that floor, as Python's do.
    arr = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    path = tmp_path / "old.nii"
    mitk.Image(arr).save(path)
    when = seconds * 10**9 + 123
    try:
        os.utime(path, ns=(when, when))
    except (OSError, OverflowError, ValueError):
        pytest.skip("this file system cannot date a file so far from now")
    if os.stat(path).st_mtime_ns != when:
        pytest.skip("this file system stores another date than the one set")
    lz = mitk.open(path)
    assert np.array_equal(lz[1], arr[1]) and np.array_equal(lz[:, 1], arr[:, 1])
    os.utime(path, ns=(when + 1, when + 1))  # a nanosecond later: another file
    with pytest.raises(mitk.CorruptFileError, match="modified"):
        lz[1]
