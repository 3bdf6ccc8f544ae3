"""Data files named by a header: one set of limits and lazy names for NRRD and MetaImage.

Regression tests for the drift between the formats' copies of this code (see
mitk.io._data_files): NRRD expanded a pattern with no cap on name length or total size, both
formats resolved every name before checking the first file, and NRRD read ASCII data whole.
"""

from __future__ import annotations

import os
import tracemalloc

import numpy as np
import pytest

import mitk
from mitk.io import _ascii


def _peak(func) -> int:
    tracemalloc.start()
    try:
        func()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _refused(path, match) -> int:
    """Peak memory of a load that must fail with CorruptFileError/FileNotFoundError."""
    def load():
        with pytest.raises((mitk.CorruptFileError, mitk.UnsupportedFormatError,
                            FileNotFoundError), match=match):
            mitk.Image(path)
    return _peak(load)


def test_nrrd_pattern_names_are_capped_like_metaimage(tmp_path):
    # A 200 KB header once cost about 765 MiB of names before NRRD refused it.
    long_name = "n" * 4000 + "%d.raw"
    path = tmp_path / "long.nhdr"
    path.write_text("NRRD0004\ntype: uchar\ndimension: 3\nsizes: 1 1 1000000\nencoding: raw\n"
                    f"data file: {long_name} 1 1000000 1 2\n")
    assert _refused(path, "data file") < 8 << 20
    # Within the per-name limit but over the total: 1e6 names of 200 bytes is 200 MB of names.
    path = tmp_path / "many.nhdr"
    path.write_text("NRRD0004\ntype: uchar\ndimension: 3\nsizes: 1 1 1000000\nencoding: raw\n"
                    f"data file: {'n' * 190}%08d.raw 1 1000000 1 2\n")
    assert _refused(path, "bytes of names") < 8 << 20


@pytest.mark.parametrize("ext, header", [
    (".nhdr", "NRRD0004\ntype: uchar\ndimension: 3\nsizes: 1 1 1048576\nencoding: raw\n"
              "data file: slice%07d.raw 1 1048576 1 2\n"),
    (".mhd", "NDims = 3\nDimSize = 1 1 1048576\nElementType = MET_UCHAR\n"
             "ElementDataFile = slice%07d.raw 1 1048576 1\n"),
])
def test_the_first_missing_data_file_is_reported_at_once(tmp_path, ext, header):
    # A 100-byte header naming 2**20 files: every name was made and resolved (17-18 s, hundreds
    # of MB) before the first file was looked at.  Names are now made one at a time.
    path = tmp_path / f"h{ext}"
    path.write_text(header)
    assert _refused(path, "slice0000001.raw") < 4 << 20


def test_the_first_missing_list_file_is_reported_without_resolving_the_others(tmp_path):
    # The header's 200,000 names themselves take about 13 MB; resolving them all first took
    # 40 MB more.
    (tmp_path / "a.raw").write_bytes(b"\x01")
    names = "\n".join(["a.raw", "gone.raw"] + [f"f{i}.raw" for i in range(200_000)])
    path = tmp_path / "l.nhdr"
    path.write_text("NRRD0004\ntype: uchar\ndimension: 3\nsizes: 1 1 200002\nencoding: raw\n"
                    f"data file: LIST 2\n{names}\n")
    assert _refused(path, "gone.raw") < 24 << 20


def test_nrrd_ascii_data_are_read_in_chunks(tmp_path, monkeypatch):
    # 11 MB of ASCII values peaked at 126 MiB when NRRD read the text whole (MetaImage, reading
    # in chunks, 23 MiB): the tokens of a whole file cost about 10x its size.  With 64 KiB
    # chunks, 2.4 MB of text must take little more than the image.
    monkeypatch.setattr(_ascii, "CHUNK", 64 << 10, raising=False)
    n = 1_200_000
    path = tmp_path / "a.nrrd"
    path.write_bytes(f"NRRD0004\ntype: uchar\ndimension: 2\nsizes: {n} 1\nencoding: ascii\n\n"
                     .encode() + b"7 " * n)
    box = []
    peak = _peak(lambda: box.append(mitk.Image(path)))
    assert box[0].shape == (1, n) and np.all(np.asarray(box[0]) == 7)
    assert peak < n + (8 << 20), peak  # the image plus bounded working memory


@pytest.mark.parametrize("ext", [".nhdr", ".mhd", ".nii"])
def test_numpy_bools_are_accepted_as_flags_by_every_format(tmp_path, ext):
    # NIfTI took np.bool_ for apply_scaling while NRRD and MetaImage refused it for
    # allow_external_data: options are checked in one place now (mitk.io._options).
    img = mitk.Image(np.arange(6, dtype=np.int16).reshape(2, 3))
    img.save(tmp_path / f"x{ext}", fsync=np.bool_(False))
    option = "apply_scaling" if ext == ".nii" else "allow_external_data"
    back = mitk.Image.load(tmp_path / f"x{ext}", **{option: np.bool_(True)})
    np.testing.assert_array_equal(np.asarray(back), np.asarray(img))
    with pytest.raises(TypeError, match=option):
        mitk.Image.load(tmp_path / f"x{ext}", **{option: 1})


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="symlinks")
@pytest.mark.parametrize("ext", [".nhdr", ".mhd"])
def test_symlinks_are_followed_and_only_the_header_text_is_confined(tmp_path, ext):
    # The rule (README, "Files"): allow_external_data confines what the header's text names
    # (no absolute name, no '..' out of the header's directory); symlinks inside that directory
    # are followed, wherever they lead.  git-annex and DataLad datasets keep every data file as
    # a symlink into .git/annex, outside the header's directory: resolving symlinks would refuse
    # them all.  So a directory's symlinks are trusted as its files are.
    arr = (np.arange(24) % 7).astype(np.int16).reshape(2, 3, 4)
    store = tmp_path / "dataset" / ".git" / "annex" / "objects" / "Xk" / "7q"
    store.mkdir(parents=True)
    anat = tmp_path / "dataset" / "sub-01" / "anat"
    anat.mkdir(parents=True)
    mitk.Image(arr).save(anat / f"T1{ext}")
    data = next(p for p in anat.iterdir() if not p.name.endswith(ext))
    os.replace(data, store / "SHA256E-s48--key.raw")
    os.symlink(os.path.relpath(store / "SHA256E-s48--key.raw", anat), data)
    np.testing.assert_array_equal(np.asarray(mitk.Image(anat / f"T1{ext}")), arr)
    # A symlinked directory is followed the same way ...
    outside = tmp_path / "outside"
    outside.mkdir()
    os.replace(os.path.realpath(data), outside / data.name)
    os.unlink(data)
    os.symlink(outside, anat / "up")
    header = (anat / f"T1{ext}").read_text()
    (anat / f"T2{ext}").write_text(header.replace(data.name, f"up/{data.name}"))
    np.testing.assert_array_equal(np.asarray(mitk.Image(anat / f"T2{ext}")), arr)
    # ... while the same file named through '..' by the header's text is refused.
    (anat / f"T3{ext}").write_text(header.replace(data.name, f"../../../outside/{data.name}"))
    with pytest.raises(mitk.CorruptFileError, match="allow_external_data"):
        mitk.Image(anat / f"T3{ext}")
    np.testing.assert_array_equal(
        np.asarray(mitk.Image.load(anat / f"T3{ext}", allow_external_data=True)), arr)


def test_hostile_patterns_and_paths_give_documented_errors(tmp_path):
    # A range past sys.maxsize made len() raise a bare OverflowError; a NUL in a path gave
    # Python's ValueError after the whole image was written.
    path = tmp_path / "huge.nhdr"
    path.write_text("NRRD0004\ntype: uchar\ndimension: 3\nsizes: 2 2 2\nencoding: raw\n"
                    "data file: f%03d.raw 0 100000000000000000000 1\n")
    with pytest.raises(mitk.UnsupportedFormatError, match="files"):
        mitk.Image(path)
    img = mitk.Image(np.zeros((2, 2), np.uint8))
    for ext in (".nrrd", ".nhdr", ".nii", ".mha"):
        with pytest.raises(mitk.ArgumentError, match="NUL"):
            img.save(str(tmp_path / f"x\0y{ext}"))
    assert sorted(os.listdir(tmp_path)) == ["huge.nhdr"]
    with pytest.raises(FileNotFoundError) as err:  # names the header the user gave
        img.save(tmp_path / "missing" / "e.nhdr")
    assert err.value.filename == str(tmp_path / "missing" / "e.nhdr")


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("ext", [".nhdr", ".mhd", ".hdr"])
def test_a_new_pairs_data_file_gets_ordinary_permissions(tmp_path, ext):
    # The data file's reserved placeholder (0600) was taken as the model: header 0644, data 0600.
    import stat

    old = os.umask(0o022)
    try:
        mitk.Image(np.zeros((2, 2), np.uint8)).save(tmp_path / f"a{ext}")
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert set(modes.values()) == {0o644}, modes


def test_a_hostile_metaimage_block_index_is_ignored(tmp_path):
    # 2**20 blocks of one byte each: every block became a task, and every failure kept a
    # decoder alive (10 GB, 90 s).  An index the writer could not have made is not used.
    import zlib

    from mitk.io.metaimage._data import _block_index
    from mitk.io.metaimage._header import _Header

    n = 1 << 24
    sizes = " ".join(["1"] * (n // 16))
    header = _Header("x.mha", {"MitkDeflateBlocks": f"16 {n} {sizes}"}, 0)
    assert _block_index(header, n) is None
    header = _Header("x.mha", {"MitkDeflateBlocks": "4 8 " + "9" * 5000}, 0)
    assert _block_index(header, 8) is None  # int() refuses 4300+ digits: ignored, not raised
    data = zlib.compress(bytes(64))
    path = tmp_path / "h.mha"
    path.write_bytes(b"NDims = 2\nDimSize = 8 8\nElementType = MET_UCHAR\nCompressedData = True\n"
                     b"MitkDeflateBlocks = 4 64 " + b"9" * 5000 + b"\nElementDataFile = LOCAL\n"
                     + data)
    assert np.asarray(mitk.Image(path)).sum() == 0


@pytest.mark.parametrize("ext", [".nrrd", ".mha", ".mhd"])
def test_the_whole_written_header_is_within_the_readers_limit(tmp_path, monkeypatch, ext):
    # The check ran before the last lines were added (the blank line of a .nrrd, the size,
    # block index and data file lines of a MetaImage): a header a little over the limit was
    # written and then refused on load.
    from mitk.io import _text_header

    monkeypatch.setattr(_text_header, "MAX_HEADER", 4096)
    img = mitk.Image(np.zeros((2, 2), np.uint8))
    for size in range(3500, 4096, 7):
        img.properties["note"] = "x" * size
        try:
            img.save(tmp_path / f"a{ext}", compression="gzip")
        except mitk.UnsupportedFormatError:
            continue
        mitk.Image(tmp_path / f"a{ext}")  # whatever was written loads
