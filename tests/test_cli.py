"""The command line: every verb on real data made in the test, and its error handling."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import mitk
from mitk._bench.results import QUICK_JUDGED, Result
from mitk._bench.runner import format_table


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "-P", "-m", "mitk", *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def volume(tmp_path):
    img = mitk.Image(np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6),
                     spacing=(0.5, 0.75, 2.0), origin=(1.0, -2.0, 3.0))
    img.properties["patient"] = "anon"
    path = tmp_path / "vol.nrrd"
    img.save(path)
    return path


def test_demo_runs_and_checks_itself():
    out = run("demo", "--frames", "3", "--size", "24")
    assert out.returncode == 0, out.stderr
    assert "all checks passed" in out.stdout
    assert "frame 2" in out.stdout and "read-lock waits" in out.stdout
    assert out.stderr == ""


def _saved_sizes(stdout):
    # "    saved volume.nhdr       0.03 MB in     1.4 ms (volume.nhdr + volume.raw)"
    sizes = {}
    for line in stdout.splitlines():
        m = re.match(r"\s+saved (\S+)\s+([0-9.]+) MB in", line)
        if m:
            sizes[m[1]] = float(m[2])
    return sizes


def test_demo_names_no_folder_it_deletes():
    out = run("demo", "--frames", "2", "--size", "32")
    assert out.returncode == 0, out.stderr
    assert "temporary folder, removed" in out.stdout
    assert "mitk-demo-" not in out.stdout  # the temporary folder's name is of no use
    assert len(_saved_sizes(out.stdout)) == 4


def test_demo_keep_reports_every_file_of_a_save(tmp_path):
    keep = tmp_path / "kept"
    out = run("demo", "--frames", "2", "--size", "32", "--keep", str(keep))
    assert out.returncode == 0, out.stderr
    assert f"files in {keep} (kept)" in out.stdout
    sizes = _saved_sizes(out.stdout)
    on_disk = {p.name: p.stat().st_size for p in keep.iterdir()}
    data = [n for n in on_disk if n.startswith("volume.") and n.endswith(".raw")]
    assert len(data) == 1, on_disk
    # The detached pair: the header plus the data file it points to, not the header alone.
    assert sizes["volume.nhdr"] == pytest.approx(
        (on_disk["volume.nhdr"] + on_disk[data[0]]) / 1e6, abs=0.006)
    assert sizes["volume.nhdr"] >= 2 * 32**3 * 4 / 1e6 - 0.006  # the float32 pixels
    assert sizes["volume.mha"] == pytest.approx(on_disk["volume.mha"] / 1e6, abs=0.006)
    # Run again into the same folder: the sizes are of what this run wrote.
    again = _saved_sizes(run("demo", "--frames", "2", "--size", "32", "--keep", str(keep)).stdout)
    assert again["volume.nhdr"] == pytest.approx(sizes["volume.nhdr"], abs=0.006)


def test_info_text_and_json(volume):
    out = run("info", str(volume))
    assert out.returncode == 0, out.stderr
    assert "int16" in out.stdout and "(4, 5, 6)" in out.stdout and "patient" in out.stdout
    out = run("info", "--json", str(volume))
    data = json.loads(out.stdout)
    assert data["shape"] == [4, 5, 6] and data["pixel_type"] == "int16"
    assert data["spacing"] == [0.5, 0.75, 2.0] and data["origin"] == [1.0, -2.0, 3.0]
    assert data["properties"]["patient"] == "anon"


def test_convert_one_and_many(volume, tmp_path):
    target = tmp_path / "vol.nii.gz"
    out = run("convert", str(volume), str(target))
    assert out.returncode == 0, out.stderr
    back = mitk.Image(target)
    np.testing.assert_array_equal(back.array, mitk.Image(volume).array)
    assert back.spacing == pytest.approx((0.5, 0.75, 2.0))
    outdir = tmp_path / "many"
    outdir.mkdir()
    second = tmp_path / "second.mha"
    mitk.Image(volume).save(second)
    out = run("convert", str(volume), str(second), str(outdir), "--to", ".nrrd",
              "--compression", "gzip")
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in outdir.iterdir()) == ["second.nrrd", "vol.nrrd"]


def test_view_png(volume, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "slices.png"
    out = run("view", str(volume), "-o", str(png))
    assert out.returncode == 0, out.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def _sagittal(world):
    """An image acquired sagittally whose pixels, put in LPS order, are ``world`` (S, P, L).

    Index i runs anterior to posterior, j superior to inferior, k right to left (the slices), as
    a sagittal MR series stores them: ``arr[k, j, i] = world[S - 1 - j, i, k]``.
    """
    direction = np.array([[0.0, 0.0, 1.0],   # world x (L) is index axis k
                          [1.0, 0.0, 0.0],   # world y (P) is index axis i
                          [0.0, -1.0, 0.0]])  # world z (S) is index axis j, reversed
    arr = world.transpose(2, 0, 1)[:, ::-1, :]
    return mitk.Image(arr, spacing=(0.8, 1.1, 2.0), direction=direction)


def test_view_shows_anatomical_planes_of_a_sagittal_image():
    from mitk._cli.view import anatomical_planes

    n_s, n_p, n_l = 5, 6, 7
    world = np.arange(n_s * n_p * n_l, dtype=np.int16).reshape(n_s, n_p, n_l)
    axial, coronal, sagittal = anatomical_planes(_sagittal(world))
    # The axial panel is a plane of constant S (rows anterior->posterior, columns right->left),
    # not the middle slice of the stored array, which is sagittal.
    assert axial.name == "axial" and axial.letters == ("A", "P", "R", "L")
    np.testing.assert_array_equal(axial.pixels, world[n_s // 2])
    assert axial.aspect == pytest.approx(0.8 / 2.0)  # P spacing over L spacing
    assert coronal.name == "coronal" and coronal.letters == ("S", "I", "R", "L")
    np.testing.assert_array_equal(coronal.pixels, world[::-1, n_p // 2])
    assert coronal.aspect == pytest.approx(1.1 / 2.0)
    assert sagittal.name == "sagittal" and sagittal.letters == ("S", "I", "A", "P")
    np.testing.assert_array_equal(sagittal.pixels, world[::-1, :, n_l // 2])
    assert sagittal.aspect == pytest.approx(1.1 / 0.8)


def test_view_of_an_axial_image_is_unchanged_and_2d_gets_one_panel():
    from mitk._cli.view import anatomical_planes

    arr = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    axial, coronal, sagittal = anatomical_planes(mitk.Image(arr))
    np.testing.assert_array_equal(axial.pixels, arr[1])
    np.testing.assert_array_equal(coronal.pixels, arr[::-1, 2])
    np.testing.assert_array_equal(sagittal.pixels, arr[::-1, :, 2])
    flat, = anatomical_planes(mitk.Image(arr[0], direction=np.diag([1.0, -1.0])))
    assert flat.name == "2D" and flat.letters == ("A", "P", "R", "L")
    np.testing.assert_array_equal(flat.pixels, arr[0][::-1])


def test_view_png_of_a_sagittal_file_and_a_time_step(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from mitk._cli.view import run_view

    world = np.arange(5 * 6 * 7, dtype=np.int16).reshape(5, 6, 7)
    path = tmp_path / "sagittal.nrrd"
    _sagittal(world).save(path)
    png = tmp_path / "sagittal.png"
    out = run("view", str(path), "-o", str(png))
    assert out.returncode == 0, out.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    frames = np.stack([np.full((3, 4, 5), t, np.uint8) for t in range(3)])
    movie = tmp_path / "movie.nii.gz"
    mitk.Image(frames).save(movie)
    assert run_view(str(movie), str(tmp_path / "step.png"), time_step=2) == 0
    assert "time step 2" in capsys.readouterr().out
    out = run("view", str(movie), "-o", str(tmp_path / "cli.png"), "--time-step", "1")
    assert out.returncode == 0 and "time step 1" in out.stdout, out.stderr
    with pytest.raises(mitk.TimeStepError):
        run_view(str(movie), str(tmp_path / "bad.png"), time_step=3)
    assert not (tmp_path / "bad.png").exists()


@pytest.mark.parametrize("args,needle", [
    (["info", "missing.nrrd"], "missing.nrrd"),
    (["info", "file.xyz"], "unknown"),
    (["convert", "missing.nrrd", "out.nrrd"], "missing.nrrd"),
])
def test_user_errors_are_one_line(args, needle, tmp_path):
    if args[1] == "file.xyz":
        (tmp_path / "file.xyz").write_bytes(b"x")
    out = subprocess.run([sys.executable, "-P", "-m", "mitk", *args], capture_output=True,
                         text=True, cwd=tmp_path, timeout=60)
    assert out.returncode == 1
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in out.stderr


def test_corrupt_file_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.nrrd"
    bad.write_bytes(b"NRRD0004\ntype: float\ndimension: 3\nsizes: 10 10\nencoding: raw\n\n")
    out = run("info", str(bad))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "bad.nrrd" in out.stderr


def test_usage_errors_exit_2():
    assert run().returncode == 2
    assert run("frobnicate").returncode == 2
    assert run("view", "x.nrrd").returncode == 2  # -o is required


def _importable(name):
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_bench_quick_json(tmp_path):
    out_json = tmp_path / "bench.json"
    out = run("bench", "--quick", "--json", str(out_json), timeout=900)
    assert out.returncode == 0, out.stderr
    data = json.loads(out_json.read_text())
    assert data["schema"] == 1 and data["quick"] is True
    cases = {r["case"]: r for r in data["results"]}
    assert len(cases) == len(data["results"]), "case names must be unique"
    for name in ("core.construct_copy", "core.construct_adopt", "core.view_as_numpy",
                 "locks.accessor_view", "locks.read_accessor", "locks.reader_scaling",
                 "locks.contended", "locks.cimport_read_pair", "locks.cimport_contended",
                 "locks.cimport_shared_reads",
                 "pickle.protocol5", "import.mitk", "io.read_raw.nrrd", "io.read_raw.nhdr",
                 "io.read_raw.nii", "io.read_raw.hdr", "io.read_raw.mha", "io.read_raw.mhd",
                 "io.write_raw.nrrd", "io.write_raw_nofsync.mhd", "io.read_gzip.nii.gz",
                 "io.write_gzip.mhd", "io.read_bzip2.nhdr", "io.write_bzip2.nrrd",
                 "io.two_thread_reads", "io.two_thread_readinto", "io.two_thread_memcpy",
                 "io.peak_memory.gz.nii.gz", "io.default_read_gzip_single_stream.nii",
                 "io.default_write_gzip.nii"):
        assert name in cases, name
    for r in data["results"]:
        if r["value"] is None:
            # Only an accelerator that is really absent may leave its row empty.
            assert "not installed" in r["description"], r
            assert not _importable({"io.read_gzip_isal": "isal",
                                    "io.read_gzip_zlib-ng": "zlib_ng"}[r["case"]])
            continue
        assert np.isfinite(r["value"]) and r["value"] > 0, r
        if r["reference_value"] is not None:
            assert r["ratio"] is not None and np.isfinite(r["ratio"]), r
        assert r["quick"] is True
        # Quick figures are judged only where the quick run does the full run's work.
        if r["target"] and r["case"].startswith(QUICK_JUDGED):
            assert r["met"] in (True, False), r
        else:
            assert r["met"] is None, r
    assert "| case" in out.stdout
    assert "n/a*" in out.stdout and "not judged: quick run" in out.stdout
    out = run("bench", "--compare", str(out_json), str(out_json))
    assert out.returncode == 0 and "+0.0%" in out.stdout


def test_quick_figures_are_not_judged_against_full_size_targets():
    def row(case, quick, value=0.5):
        return Result(case, case.split(".")[0], case, value, "GB/s", "ref", 1.0, "GB/s",
                      ">= 0.9x", quick=quick)

    full, quick = row("io.read_raw.nrrd", False), row("io.read_raw.nrrd", True)
    assert full.met is False and full.judged
    assert quick.met is None and not quick.judged  # 8 MiB, not the 80 MiB of the target
    assert quick.to_json()["met"] is None and quick.to_json()["quick"] is True
    view = Result("core.view_as_numpy", "core", "view", 0.4, "us", "ref", 0.1, "us", "<= 1 us",
                  quick=True)
    assert view.judged and view.met is True  # the same per-call work at any size
    table = format_table([quick, view, row("io.read_gzip.mha", True)])
    assert "NO" not in table
    assert table.count("n/a*") == 2 and "2 row(s) not judged: quick run" in table
    assert "n/a*" not in format_table([full, view]) and "NO" in format_table([full])
    assert Result.from_json(quick.to_json()).quick is True


def _dicom_series(folder, volume, series_uid, number, description):
    pydicom = pytest.importorskip("pydicom", minversion="3")
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    for k, plane in enumerate(volume):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, generate_uid()
        ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "MR", series_uid, number
        ds.SeriesDescription = description
        ds.ImagePositionPatient = [0.0, 0.0, 1.5 * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.5, 0.5]
        ds.Rows, ds.Columns = plane.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit, ds.PixelRepresentation = 15, 1
        ds.PixelData = plane.astype("<i2").tobytes()
        ds.save_as(folder / f"{k:03d}", enforce_file_format=True)
    return pydicom


@pytest.fixture
def dicom_dir(tmp_path):
    vol = np.arange(3 * 4 * 5, dtype=np.int16).reshape(3, 4, 5)
    _dicom_series(tmp_path / "dicom" / "a", vol, "1.2.3.4.1", 3, "axial T1")
    _dicom_series(tmp_path / "dicom" / "b", vol[:2] + 7, "1.2.3.4.2", 4, "second")
    return tmp_path / "dicom", vol


def test_info_lists_dicom_series(dicom_dir):
    folder, _ = dicom_dir
    out = run("info", str(folder))
    assert out.returncode == 0, out.stderr
    assert "2 volume(s)" in out.stdout and "'axial T1'" in out.stdout
    assert "1.2.3.4.2" in out.stdout and "(3, 4, 5)" in out.stdout and "(2, 4, 5)" in out.stdout
    out = run("info", "--json", str(folder))
    data = json.loads(out.stdout)
    assert data["format"] == "dicom"
    assert [(s["uid"], s["number"], s["shape"], s["files"]) for s in data["series"]] == [
        ("1.2.3.4.1", 3, [3, 4, 5], 3), ("1.2.3.4.2", 4, [2, 4, 5], 2)]
    assert data["series"][0]["spacing"] == [0.5, 0.5, 1.5]


def test_convert_dicom_directory_writes_each_volume(dicom_dir, tmp_path):
    folder, vol = dicom_dir
    out = run("convert", str(folder / "a"), str(tmp_path / "one.nii.gz"))
    assert out.returncode == 0, out.stderr
    one = mitk.Image(tmp_path / "one.nii.gz")
    np.testing.assert_array_equal(one.array, vol)
    assert one.spacing == pytest.approx((0.5, 0.5, 1.5))
    out = run("convert", str(folder), str(tmp_path / "all.nrrd"))
    assert out.returncode == 0, out.stderr
    np.testing.assert_array_equal(mitk.Image(tmp_path / "all_1.nrrd").array, vol)
    np.testing.assert_array_equal(mitk.Image(tmp_path / "all_2.nrrd").array, vol[:2] + 7)


@pytest.mark.parametrize("duration, shown", [(2000.0, "step 2000 ms"),
                                             (2.0e6, "step 2000000 ms")])
def test_info_prints_time_step_with_its_unit(tmp_path, duration, shown):
    img = mitk.Image(np.zeros((2, 2, 3, 4), np.uint8))
    img.time_geometry.step_duration = duration
    path = tmp_path / "t.nrrd"
    img.save(path)
    out = run("info", str(path))
    assert out.returncode == 0, out.stderr
    assert shown in out.stdout and "start 0 ms" in out.stdout
