"""Series written with pydicom for what the real files lack: tilt, 4D, rescale rules, options."""

import logging
import os
import subprocess
import sys

import numpy as np
import pytest

import mitk


def _volume(shape=(4, 6, 5), dtype=np.int16, seed=0):
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -2000), min(info.max, 4000), size=shape).astype(dtype)


def test_series_sorted_along_normal_not_by_name(tmp_path, dcm):
    vol = _volume()
    dcm.series(tmp_path, vol, step=(0.0, 0.0, -2.5), origin=(10.0, 20.0, 30.0))
    img = mitk.Image(tmp_path)
    # Ascending along the normal: the last written slice comes first.
    np.testing.assert_array_equal(img.array, vol[::-1])
    assert img.origin == pytest.approx((10.0, 20.0, 30.0 - 3 * 2.5))
    assert img.spacing == pytest.approx((0.5, 0.5, 2.5))
    np.testing.assert_allclose(img.direction, np.eye(3))
    assert img.dtype == np.int16


def test_gantry_tilt_is_kept_as_a_shear(tmp_path, dcm):
    vol = _volume()
    angle = np.radians(18.5)
    step = (0.0, 2.0 * np.tan(angle), 2.0)  # y shifts per slice: a tilted gantry
    dcm.series(tmp_path, vol, step=step)
    img = mitk.Image(tmp_path)
    np.testing.assert_allclose(img.direction[:, 2] * img.spacing[2], step, atol=1e-9)
    for k in range(vol.shape[0]):
        world = img.index_to_world((0, 0, k))
        np.testing.assert_allclose(tuple(world), np.asarray(step) * k, atol=1e-9)
    series = mitk.dicom.scan(tmp_path)
    assert series[0].problems == ["gantry tilt 18.5 deg (kept as a sheared geometry)"]
    with pytest.raises(mitk.UnsupportedFormatError, match="gantry tilt 18.5 deg"):
        mitk.Image.load(tmp_path, tilt="error")


def test_4d_by_trigger_time(tmp_path, dcm):
    vol = _volume((3, 4, 6, 5))
    for t, frame in enumerate(vol):
        for k, plane in enumerate(frame):
            dcm.slice(tmp_path / f"t{t}z{k}.dcm", plane, position=(0, 0, 3.0 * k),
                      instance=100 - (t * 4 + k), extra={"TriggerTime": 250.0 * t})
    img = mitk.Image(tmp_path)
    assert img.shape == (3, 4, 6, 5)
    np.testing.assert_array_equal(img.array, vol)
    tg = img.time_geometry
    assert isinstance(tg, mitk.ProportionalTimeGeometry)
    assert [tg.get_time_bounds(t) for t in range(3)] == [(0.0, 250.0), (250.0, 500.0),
                                                           (500.0, 750.0)]


def test_4d_with_uneven_times_is_arbitrary(tmp_path, dcm):
    vol = _volume((3, 2, 6, 5))
    times = ["120000.000", "120002.000", "120007.500"]
    for t, frame in enumerate(vol):
        for k, plane in enumerate(frame):
            dcm.slice(tmp_path / f"t{t}z{k}.dcm", plane, position=(0, 0, 3.0 * k),
                      extra={"AcquisitionNumber": t + 1, "AcquisitionTime": times[t]})
    img = mitk.Image(tmp_path)
    np.testing.assert_array_equal(img.array, vol)
    tg = img.time_geometry
    assert isinstance(tg, mitk.ArbitraryTimeGeometry)
    assert [tg.get_time_bounds(t)[0] for t in range(3)] == [0.0, 2000.0, 7500.0]


def test_repeated_positions_without_time_tags_use_instance_number(tmp_path, dcm):
    vol = _volume((2, 3, 6, 5))
    for t, frame in enumerate(vol):
        for k, plane in enumerate(frame):
            dcm.slice(tmp_path / f"{k}_{t}.dcm", plane, position=(0, 0, 3.0 * k),
                      instance=1 + t * 3 + k)
    img = mitk.Image(tmp_path)
    np.testing.assert_array_equal(img.array, vol)


@pytest.mark.parametrize("stored, bits, slope, intercept, expected", [
    (np.uint16, 12, 1, -1024, np.int16),       # CT: uint16 12-bit, intercept -1024
    (np.uint16, 16, 1, -1024, np.int32),       # all 16 bits used: int16 cannot hold 64511
    (np.int16, 12, 1, -1024, np.int16),
    (np.uint16, 12, 1, 0, np.uint16),
    (np.uint16, 12, 2, 5, np.uint16),          # 0..8195 still fits uint16
    (np.uint8, 8, 1, -100, np.int16),
    (np.uint16, 12, 0.5, 0, np.float32),
    (np.int16, 16, 1.0, -0.5, np.float32),
])
def test_rescale_dtype_rule(tmp_path, dcm, stored, bits, slope, intercept, expected):
    rng = np.random.default_rng(1)
    hi = (1 << bits) - 1 if np.dtype(stored).kind == "u" else (1 << (bits - 1)) - 1
    lo = 0 if np.dtype(stored).kind == "u" else -(1 << (bits - 1))
    vol = rng.integers(lo, hi + 1, size=(3, 4, 5)).astype(stored)
    vol[0, 0, 0], vol[0, 0, 1] = lo, hi
    dcm.series(tmp_path, vol, slope=slope, intercept=intercept, bits_stored=bits)
    img = mitk.Image(tmp_path)
    assert img.dtype == expected
    np.testing.assert_array_equal(img.array, (vol.astype(np.float64) * slope + intercept)
                                  .astype(expected))
    raw = mitk.Image.load(tmp_path, rescale=False)
    assert raw.dtype == stored
    np.testing.assert_array_equal(raw.array, vol)
    assert raw.properties["dicom.RescaleSlope"] == slope
    assert raw.properties["dicom.RescaleIntercept"] == intercept
    assert mitk.dicom.scan(tmp_path)[0].dtype == expected


def test_per_slice_scaling_is_honoured(tmp_path, dcm):
    vol = _volume((3, 4, 5), np.uint16)
    for k, plane in enumerate(vol):
        dcm.slice(tmp_path / f"{k}.dcm", plane, position=(0, 0, k), slope=k + 1, intercept=-k,
                  bits_stored=12)
    img = mitk.Image(tmp_path)
    expected = np.stack([vol[k].astype(np.int64) * (k + 1) - k for k in range(3)])
    np.testing.assert_array_equal(img.array, expected)
    assert img.dtype == np.int16  # results run from -2 to 12283: the smallest signed type
    raw = mitk.Image.load(tmp_path, rescale=False)
    assert raw.properties["dicom.RescaleSlope"] == [1.0, 2.0, 3.0]


def test_signed_bits_stored_are_sign_extended(tmp_path, dcm):
    vol = np.array([[[-5, 7], [-2048, 2047]]], dtype=np.int16)
    garbage = vol.view(np.uint16) & 0x0FFF  # 12-bit two's complement, high bits clear
    dcm.slice(tmp_path / "a.dcm", garbage.astype(np.uint16)[0], bits_stored=12, signed=1)
    np.testing.assert_array_equal(mitk.Image(tmp_path).array, vol[0])


def test_big_endian_series(tmp_path, dcm):
    vol = _volume((2, 4, 5))
    dcm.series(tmp_path, vol, little=False)
    np.testing.assert_array_equal(mitk.Image(tmp_path).array, vol)


def test_missing_geometry_gives_single_2d_images(tmp_path, dcm):
    vol = _volume((3, 4, 5))
    for k, plane in enumerate(vol):
        dcm.slice(tmp_path / f"{k}.dcm", plane, position=None, orientation=None, instance=k)
    images = mitk.IOUtil.load(tmp_path)
    assert [im.shape for im in images] == [(4, 5)] * 3
    np.testing.assert_array_equal(np.stack([im.array for im in images]), vol)


def test_series_are_ordered_and_listed(tmp_path, dcm):
    dcm.series(tmp_path / "b", _volume((2, 4, 5)), series="1.2.3.2", number=7,
               extra={"SeriesDescription": "second"})
    dcm.series(tmp_path / "a", _volume((3, 4, 5)), series="1.2.3.1", number=2,
               extra={"SeriesDescription": "first"})
    images = mitk.IOUtil.load(tmp_path)
    assert [im.properties["dicom.SeriesDescription"] for im in images] == ["first", "second"]
    with pytest.raises(mitk.ArgumentError) as info:
        mitk.Image(tmp_path)
    text = str(info.value)
    for needle in ("1.2.3.1", "1.2.3.2", "series 2", "series 7", "'first'", "(3, 4, 5)",
                   "IOUtil.load", "mitk.dicom.scan"):
        assert needle in text
    series = mitk.dicom.scan(tmp_path)
    assert [(s.uid, s.number, s.shape, s.time_steps) for s in series] == [
        ("1.2.3.1", 2, (3, 4, 5), 1), ("1.2.3.2", 7, (2, 4, 5), 1)]
    assert [os.path.basename(f) for f in series[0].files] == ["im0003.dcm", "im0002.dcm",
                                                             "im0001.dcm"]
    np.testing.assert_array_equal(series[1].load().array, images[1].array)


def test_file_without_extension_is_sniffed_as_dicom(tmp_path, dcm):
    path = dcm.slice(tmp_path / "IM0001", _volume((1, 4, 5))[0])
    assert mitk.Image(path).shape == (4, 5)


def test_options_are_checked(tmp_path, dcm):
    dcm.series(tmp_path, _volume((2, 4, 5)))
    with pytest.raises(TypeError, match="unknown DICOM read option"):
        mitk.Image.load(tmp_path, shear=True)
    with pytest.raises(mitk.ArgumentError, match="tilt"):
        mitk.Image.load(tmp_path, tilt="maybe")
    with pytest.raises(mitk.ArgumentError, match="uneven"):
        mitk.Image.load(tmp_path, uneven="merge")
    with pytest.raises(TypeError, match="rescale"):
        mitk.Image.load(tmp_path, rescale="yes")


def test_saving_dicom_is_refused(tmp_path):
    with pytest.raises(mitk.UnsupportedFormatError, match="writing DICOM is not supported"):
        mitk.Image(np.zeros((2, 3), np.int16)).save(tmp_path / "out.dcm")
    assert not os.listdir(tmp_path)


def test_import_mitk_does_not_import_pydicom():
    code = ("import sys, mitk; assert 'pydicom' not in sys.modules; "
            "assert 'mitk.dicom' not in sys.modules; mitk.dicom.scan; "
            "assert 'mitk.dicom' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_non_dicom_files_are_skipped_and_logged(tmp_path, dcm, caplog):
    vol = _volume((2, 4, 5))
    dcm.series(tmp_path, vol)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "blob.dcm").write_bytes(b"\0" * 300)
    with caplog.at_level(logging.DEBUG, logger="mitk"):
        img = mitk.Image(tmp_path)
    np.testing.assert_array_equal(img.array, vol)
    skipped = " ".join(r.getMessage() for r in caplog.records)
    assert "notes.txt" in skipped and "blob.dcm" in skipped


def test_without_pydicom_the_extra_is_named(tmp_path, dcm):
    dcm.series(tmp_path, _volume((2, 4, 5)))
    code = ("import sys; sys.modules['pydicom'] = None\n"
            "import mitk\n"
            "try:\n"
            f"    mitk.Image({str(tmp_path)!r})\n"
            "except mitk.UnsupportedFormatError as exc:\n"
            "    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert 'pip install "mitk-core[dicom]"' in out.stdout and out.stderr == ""


def test_no_worker_thread_outlives_a_load(tmp_path, dcm):
    import threading

    dcm.series(tmp_path, _volume((40, 4, 5)))
    before = threading.active_count()
    mitk.dicom.scan(tmp_path)
    mitk.Image(tmp_path)
    assert threading.active_count() == before
    assert not [t for t in threading.enumerate() if t.name.startswith("mitk-dicom")]


def test_bench_case_reads_what_it_wrote():
    from mitk._bench import dicom_cases

    rows = dicom_cases.read_ct(quick=True)
    assert rows[0].case == "dicom.read_ct" and rows[0].unit == "ms"
    assert all(np.isfinite(r.value) and np.isfinite(r.reference_value) for r in rows)


def test_echoes_and_localizers_split_into_volumes(tmp_path, dcm):
    vol = _volume((2, 3, 4, 5))
    for e in range(2):
        dcm.series(tmp_path / f"echo{e}", vol[e], extra={"EchoNumbers": e + 1,
                                                       "EchoTime": 5.0 + 10 * e})
    scout = dcm.slice(tmp_path / "scout.dcm", _volume((1, 4, 5), seed=9)[0],
                      position=(0, 0, 1.0),
                      extra={"ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"]})
    images = mitk.IOUtil.load(tmp_path)
    shapes = sorted(im.shape for im in images)
    assert shapes == [(3, 4, 5), (3, 4, 5), (4, 5)]
    by_echo = {im.properties.get("dicom.EchoTime"): im for im in images if im.ndim == 3}
    np.testing.assert_array_equal(by_echo["5"].array, vol[0])
    np.testing.assert_array_equal(by_echo["15"].array, vol[1])
    lone = [im for im in images if im.ndim == 2][0]
    np.testing.assert_array_equal(lone.array, mitk.Image(scout).array)


def test_series_load_of_an_uneven_stack(tmp_path, dcm):
    planes = _volume((4, 4, 5))
    for k, z in enumerate([0.0, 2.0, 4.0, 9.0]):
        dcm.slice(tmp_path / f"s{k}.dcm", planes[k], position=(0, 0, z))
    (series,) = mitk.dicom.scan(tmp_path)
    assert series.problems == ["uneven slice spacing 2-5 mm"]
    assert series.shape == (4, 4, 5)
    with pytest.raises(mitk.CorruptFileError, match="uneven"):
        series.load()
    with pytest.raises(mitk.ArgumentError, match="2 volumes"):
        series.load(uneven="split")


def test_monochrome1_is_not_inverted(tmp_path, dcm):
    plane = _volume((1, 4, 5), np.uint16)[0]
    dcm.slice(tmp_path / "a.dcm", plane, extra={"PhotometricInterpretation": "MONOCHROME1"})
    img = mitk.Image(tmp_path / "a.dcm")
    np.testing.assert_array_equal(img.array, plane)
    assert img.properties["dicom.PhotometricInterpretation"] == "MONOCHROME1"


def test_classic_multiframe_keeps_stored_order_at_its_position(tmp_path, dcm):
    vol = _volume((3, 4, 5))
    path = dcm.slice(tmp_path / "mf.dcm", vol[0], position=(5.0, 6.0, 7.0),
                     orientation=(0, 1, 0, 0, 0, -1), extra={"NumberOfFrames": 3,
                                                            "SpacingBetweenSlices": 2.5})
    with open(path, "r+b") as f:  # append the other two frames to the pixel data
        data = bytearray(f.read())
        at = data.rindex(b"\xe0\x7f\x10\x00OW")
        data[at + 8:at + 12] = (vol.nbytes).to_bytes(4, "little")
        data[at + 12:] = vol.tobytes()
        f.seek(0)
        f.write(data)
    img = mitk.Image(path)
    np.testing.assert_array_equal(img.array, vol)
    assert img.origin == (5.0, 6.0, 7.0) and img.spacing[2] == 2.5
    np.testing.assert_allclose(img.direction, [[0, 0, -1], [1, 0, 0], [0, -1, 0]], atol=1e-12)
