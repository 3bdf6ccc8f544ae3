"""Bad DICOM input: each case raises the SPEC's error naming the file and the tag, or is skipped.

Nothing crashes, hangs or allocates before the headers are validated.
"""

import os
import shutil
import warnings

import numpy as np
import pytest

import mitk


def _plane(seed=0):
    return np.random.default_rng(seed).integers(0, 1000, size=(4, 5)).astype(np.int16)


def _series(dcm, folder, n=3, **kwargs):
    vol = np.stack([_plane(k) for k in range(n)])
    return dcm.series(folder, vol, **kwargs)


def test_directory_without_dicom(tmp_path):
    (tmp_path / "readme.txt").write_text("hello")
    (tmp_path / "sub").mkdir()
    with pytest.raises(mitk.UnsupportedFormatError, match="no DICOM image files"):
        mitk.IOUtil.load(tmp_path)
    with pytest.raises(mitk.UnsupportedFormatError, match="no DICOM image files"):
        mitk.dicom.scan(tmp_path)


def test_empty_directory(tmp_path):
    with pytest.raises(mitk.UnsupportedFormatError):
        mitk.Image(tmp_path)


def test_truncated_pixel_data(tmp_path, dcm):
    paths = _series(dcm, tmp_path)
    size = os.path.getsize(paths[1])
    with open(paths[1], "r+b") as f:
        f.truncate(size - 7)
    with pytest.raises(mitk.CorruptFileError) as info:
        mitk.Image(tmp_path)
    assert paths[1] in str(info.value) and "PixelData (7FE0,0010)" in str(info.value)


def test_truncated_header(tmp_path, dcm):
    path = dcm.slice(tmp_path / "a.dcm", _plane())
    with open(path, "r+b") as f:
        data = f.read()
        cut = data.index(b"\x28\x00\x10\x00") + 6  # inside the Rows element
        f.truncate(cut)
    with pytest.raises(mitk.CorruptFileError, match="truncated DICOM header") as info:
        mitk.Image(path)
    assert path in str(info.value)


def test_file_without_pixel_data(tmp_path, dcm):
    pydicom = pytest.importorskip("pydicom")
    paths = _series(dcm, tmp_path / "s")
    ds = pydicom.dcmread(paths[0])
    del ds.PixelData
    lone = tmp_path / "nopixels.dcm"
    ds.SeriesInstanceUID = "1.2.3.99"
    ds.save_as(lone)
    with pytest.raises(mitk.UnsupportedFormatError, match="without pixel data"):
        mitk.Image(lone)
    shutil.copy(lone, tmp_path / "s" / "nopixels.dcm")
    assert mitk.Image(tmp_path / "s").shape == (3, 4, 5)  # skipped in a directory


def test_pixel_data_shorter_than_rows_times_columns(tmp_path, dcm):
    pydicom = pytest.importorskip("pydicom")
    path = dcm.slice(tmp_path / "a.dcm", _plane())
    ds = pydicom.dcmread(path)
    ds.Rows = 40
    ds.save_as(path)
    with pytest.raises(mitk.CorruptFileError) as info:
        mitk.Image(path)
    assert path in str(info.value) and "Rows x Columns" in str(info.value)


def test_multiframe_count_disagrees_with_data(tmp_path, dcm):
    path = dcm.slice(tmp_path / "a.dcm", _plane(), extra={"NumberOfFrames": 3})
    with pytest.raises(mitk.CorruptFileError, match="frames"):
        mitk.Image(path)


def _patch_position(path, text):
    """Overwrite the ImagePositionPatient value in place with ``text`` (same length, padded)."""
    with open(path, "r+b") as f:
        data = f.read()
        at = data.index(b"\x20\x00\x32\x00DS")
        length = int.from_bytes(data[at + 6:at + 8], "little")
        value = text.encode().ljust(length)
        assert len(value) == length, "the test's value must fit the written one"
        f.seek(at + 8)
        f.write(value)


@pytest.mark.parametrize("value", ["nan\\0\\0", "1\\2", "1\\x\\3", "inf\\0\\0"])
def test_bad_position_strings(tmp_path, dcm, value):
    paths = _series(dcm, tmp_path, origin=(100.25, 200.5, 300.75))
    _patch_position(paths[1], value)
    with pytest.raises(mitk.CorruptFileError) as info:
        mitk.Image(tmp_path)
    assert paths[1] in str(info.value) and "ImagePositionPatient" in str(info.value)


def test_empty_position_string(tmp_path, dcm):
    pydicom = pytest.importorskip("pydicom")
    paths = _series(dcm, tmp_path)
    ds = pydicom.dcmread(paths[0])
    ds.ImagePositionPatient = None
    ds.save_as(paths[0])
    with pytest.raises(mitk.CorruptFileError) as info:
        mitk.Image(tmp_path)
    assert paths[0] in str(info.value) and "ImagePositionPatient" in str(info.value)


def test_zero_pixel_spacing(tmp_path, dcm):
    paths = _series(dcm, tmp_path, spacing=(0.0, 0.5))
    with pytest.raises(mitk.CorruptFileError, match=r"PixelSpacing \(0028,0030\)") as info:
        mitk.Image(tmp_path)
    assert any(p in str(info.value) for p in paths)


def test_duplicate_positions(tmp_path, dcm):
    _series(dcm, tmp_path)
    dcm.slice(tmp_path / "dup.dcm", _plane(7), position=(0.0, 0.0, 2.0), instance=9)
    with pytest.raises(mitk.CorruptFileError, match="duplicate slice position") as info:
        mitk.Image(tmp_path)
    assert "dup.dcm" in str(info.value) and "ImagePositionPatient" in str(info.value)


def test_identical_copies_at_every_position(tmp_path, dcm):
    _series(dcm, tmp_path / "a")
    _series(dcm, tmp_path / "b")
    with pytest.raises(mitk.CorruptFileError, match="no time tag"):
        mitk.Image(tmp_path)


def test_symlink_loop_in_recursive_scan(tmp_path, dcm):
    vol_paths = _series(dcm, tmp_path / "data")
    os.symlink(tmp_path, tmp_path / "data" / "loop")
    os.symlink(tmp_path / "data", tmp_path / "data" / "self")
    series = mitk.dicom.scan(tmp_path)
    assert len(series) == 1 and sorted(series[0].files) == sorted(vol_paths)


def test_dicomdir_pointing_outside_its_tree(tmp_path, pydicom_files):
    pydicom = pytest.importorskip("pydicom")
    root = tmp_path / "tree"
    shutil.copytree(os.path.join(pydicom_files, "dicomdirtests"), root)
    ds = pydicom.dcmread(root / "DICOMDIR")
    record = next(r for r in ds.DirectoryRecordSequence if "ReferencedFileID" in r)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns that ".." is not a valid CS value
        record.ReferencedFileID = ["..", "..", "outside"]
        ds.save_as(root / "DICOMDIR")
    with pytest.raises(mitk.CorruptFileError, match="outside the DICOMDIR"):
        mitk.IOUtil.load(root / "DICOMDIR")


def test_uneven_error_lists_gaps_and_files(tmp_path, dcm):
    planes = [_plane(k) for k in range(4)]
    for k, z in enumerate([0.0, 2.0, 4.0, 9.0]):
        dcm.slice(tmp_path / f"s{k}.dcm", planes[k], position=(0, 0, z))
    with pytest.raises(mitk.CorruptFileError) as info:
        mitk.Image(tmp_path)
    text = str(info.value)
    assert "uneven slice spacing 2-5 mm" in text and "s2.dcm" in text and "s3.dcm" in text
    parts = mitk.IOUtil.load(tmp_path, uneven="split")
    assert [p.shape for p in parts] == [(3, 4, 5), (4, 5)]


def test_unknown_extension_without_dicm_is_refused(tmp_path):
    path = tmp_path / "image.xyz"
    path.write_bytes(b"\0" * 200)
    with pytest.raises(mitk.UnsupportedFormatError, match="unknown or missing file extension"):
        mitk.Image(path)


def test_undecodable_transfer_syntax(tmp_path, dcm):
    pydicom = pytest.importorskip("pydicom")
    path = dcm.slice(tmp_path / "a.dcm", _plane())
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG-2
    ds.PixelData = pydicom.encaps.encapsulate([b"\0" * 8])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(mitk.UnsupportedFormatError) as info:
        mitk.Image(path)
    assert "1.2.840.10008.1.2.4.100" in str(info.value) and path in str(info.value)


def test_mixed_sizes_in_one_stack_split(tmp_path, dcm):
    _series(dcm, tmp_path)
    dcm.slice(tmp_path / "big.dcm", np.zeros((6, 5), np.int16), position=(0, 0, 50.0))
    shapes = sorted(im.shape for im in mitk.IOUtil.load(tmp_path))
    assert shapes == [(3, 4, 5), (6, 5)]


def test_mixed_sizes_among_the_slices_of_one_volume(tmp_path, dcm):
    _series(dcm, tmp_path)
    dcm.slice(tmp_path / "odd.dcm", np.zeros((6, 5), np.int16), position=(0, 0, 3.0))
    with pytest.raises(mitk.CorruptFileError, match="mixed slices in one volume") as info:
        mitk.Image(tmp_path)
    assert "odd.dcm" in str(info.value)


def test_deflated_dataset_bomb_is_refused(tmp_path, dcm):
    import zlib

    path = dcm.slice(tmp_path / "a.dcm", _plane())
    with open(path, "rb") as f:
        data = f.read()
    meta_end = data.index(b"\x08\x00")  # the dataset starts with the first group 0008 tag
    meta = bytearray(data[:meta_end])
    at = meta.index(b"1.2.840.10008.1.2.1")
    ts = b"1.2.840.10008.1.2.1.99"
    length = int.from_bytes(meta[at - 2:at], "little")
    meta[at - 2:at + length] = len(ts).to_bytes(2, "little") + ts
    group_length = meta.index(b"\x02\x00\x00\x00UL")
    meta[group_length + 8:group_length + 12] = (len(meta) - group_length - 12).to_bytes(4, "little")
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = bomb.compress(b"\0" * (64 << 20)) + bomb.flush()
    with open(path, "wb") as f:
        f.write(bytes(meta) + payload)
    with pytest.raises(mitk.CorruptFileError, match=r"misplaced tag \(0000,0000\)") as info:
        mitk.Image(path)
    assert path in str(info.value)


@pytest.mark.parametrize("seed", range(4))
def test_corrupted_files_raise_only_mitk_errors(tmp_path, shared, pydicom_data, seed):
    # Random byte changes and truncations of real files: a clean mitk error or a load, never
    # another exception, a warning (errors under pytest's filterwarnings) or output.
    import random

    sources = [shared("dcm_qa_ts", "In", "1.dcm"), shared("dcm_qa_ts", "In", "2.dcm"),
               shared("dcm_qa_ts", "In", "3.dcm"), shared("dcm_qa_ts", "In", "9.dcm"),
               os.path.join(pydicom_data, "emri_small_RLE.dcm"),
               os.path.join(pydicom_data, "eCT_Supplemental.dcm"),
               shared("dcm_qa_enh", "In", "Philips", "IM_0027_fMAP.dcm")]
    rng = random.Random(seed)
    for i in range(50):
        with open(rng.choice(sources), "rb") as f:
            data = bytearray(f.read())
        if rng.random() < 0.5:
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(128, min(len(data), 6000))] = rng.randrange(256)
        else:
            data = data[:rng.randrange(128, len(data))]
        path = tmp_path / f"case{i}.dcm"
        path.write_bytes(bytes(data))
        try:
            mitk.IOUtil.load(path)
        except (mitk.CorruptFileError, mitk.UnsupportedFormatError, mitk.ArgumentError):
            pass


def test_enhanced_per_frame_garbage_names_the_file(tmp_path, pydicom_data):
    with open(os.path.join(pydicom_data, "eCT_Supplemental.dcm"), "rb") as f:
        data = bytearray(f.read())
    at = data.index(b"\x20\x00\x32\x00DS")  # the first ImagePositionPatient: in a frame's groups
    length = int.from_bytes(data[at + 6:at + 8], "little")
    data[at + 8:at + 8 + length] = b"x" * length
    path = tmp_path / "garbage.dcm"
    path.write_bytes(bytes(data))
    with pytest.raises(mitk.CorruptFileError) as info:
        mitk.Image(path)
    assert str(path) in str(info.value)


def test_sideways_jump_between_even_slices(tmp_path, dcm):
    for k, shift in enumerate([0.0, 0.0, 3.0, 0.0]):
        dcm.slice(tmp_path / f"s{k}.dcm", _plane(k), position=(shift, 0.0, 2.0 * k))
    with pytest.raises(mitk.CorruptFileError, match="off the line") as info:
        mitk.Image(tmp_path)
    assert "s2.dcm" in str(info.value)
