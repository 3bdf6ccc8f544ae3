"""Atomic replacement: the old file survives a failure and no temporary file is left behind."""

import errno
import os
import stat

import numpy as np
import pytest
from mitk_testing import sample_array

from mitk.io._replace import TEMP_PREFIX, atomic_write


def _leftovers(directory):
    return [p for p in os.listdir(directory) if p.startswith(TEMP_PREFIX)]


def test_success_replaces(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with atomic_write(target) as f:
        f.write(b"new contents")
    assert target.read_bytes() == b"new contents"
    assert _leftovers(tmp_path) == []


def test_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(target) as f:
            f.write(b"partial")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_failure_without_an_old_file_leaves_nothing(tmp_path):
    target = tmp_path / "new.bin"
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(target) as f:
            f.write(b"x")
            raise KeyboardInterrupt
    assert not target.exists()
    assert os.listdir(tmp_path) == []


def test_missing_directory_raises_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        with atomic_write(tmp_path / "missing" / "out.bin") as f:
            f.write(b"x")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="needs POSIX permissions and a non-root user")
def test_unwritable_directory_raises_permission_error(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(PermissionError):
            with atomic_write(d / "out.bin") as f:
                f.write(b"x")
    finally:
        d.chmod(stat.S_IRWXU)


def test_new_file_gets_ordinary_permissions(tmp_path):
    target = tmp_path / "perm.bin"
    with atomic_write(target) as f:
        f.write(b"x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


# -- the fsync option and preallocation, through Image.save ---------------------------------

_EXTENSIONS = (".nrrd", ".nhdr", ".nii", ".hdr", ".mha", ".mhd")


def _count_fsyncs(monkeypatch):
    calls = []
    real = os.fsync

    def counting(fd):
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return calls


@pytest.mark.parametrize("ext", _EXTENSIONS)
def test_saves_fsync_by_default(tmp_path, monkeypatch, ext):
    import mitk

    calls = _count_fsyncs(monkeypatch)
    mitk.Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4)).save(tmp_path / f"a{ext}")
    # One per written file (two for detached pairs) plus the directory.
    assert len(calls) >= 2


@pytest.mark.parametrize("ext", _EXTENSIONS)
def test_fsync_false_skips_fsync_and_stays_atomic(tmp_path, monkeypatch, ext):
    import mitk

    arr = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    target = tmp_path / f"a{ext}"
    mitk.Image(arr * 0).save(target)
    calls = _count_fsyncs(monkeypatch)
    mitk.Image(arr).save(target, fsync=False)
    assert calls == []
    np.testing.assert_array_equal(mitk.Image(target).as_numpy(), arr)
    assert _leftovers(tmp_path) == []


def test_fsync_false_does_not_leak_into_other_saves(tmp_path, monkeypatch):
    import mitk

    img = mitk.Image(np.zeros((2, 3, 4), np.uint8))
    img.save(tmp_path / "a.nrrd", fsync=False)
    calls = _count_fsyncs(monkeypatch)
    img.save(tmp_path / "b.nrrd")
    assert calls


def test_fsync_option_must_be_a_bool(tmp_path):
    import mitk

    img = mitk.Image(np.zeros((2, 3, 4), np.uint8))
    with pytest.raises(TypeError, match="fsync"):
        img.save(tmp_path / "a.nrrd", fsync="no")
    with pytest.raises(TypeError, match="fsync"):  # listed among the accepted options
        img.save(tmp_path / "a.nrrd", fsink=False)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("ext", _EXTENSIONS)
def test_large_raw_saves_have_the_exact_size(tmp_path, ext):
    # Payloads of 1 MiB and more are preallocated: the file must still end at the last byte.
    import mitk

    arr = sample_array(np.int16, (3, 512, 700))
    target = tmp_path / f"big{ext}"
    mitk.Image(arr).save(target)
    back = mitk.Image(target)
    np.testing.assert_array_equal(back.as_numpy(), arr)
    sizes = {p.suffix: p.stat().st_size for p in tmp_path.iterdir()}
    data_size = max(sizes.values())
    header = data_size - arr.nbytes
    assert 0 <= header < 4096, sizes  # header bytes only, no preallocated tail


@pytest.mark.parametrize("errno_value", [errno.EOPNOTSUPP, errno.EINVAL])
def test_save_works_where_preallocation_is_unsupported(tmp_path, monkeypatch, errno_value):
    import mitk

    def unsupported(fd, offset, length):
        raise OSError(errno_value, os.strerror(errno_value))

    monkeypatch.setattr(os, "posix_fallocate", unsupported, raising=False)
    arr = sample_array(np.uint8, (4, 512, 600))
    mitk.Image(arr).save(tmp_path / "a.nii")
    np.testing.assert_array_equal(mitk.Image(tmp_path / "a.nii").as_numpy(), arr)


def test_a_full_disk_fails_the_save_before_writing(tmp_path, monkeypatch):
    import mitk

    target = tmp_path / "a.mha"
    old = sample_array(np.uint8, (4, 512, 600), seed=1)
    mitk.Image(old).save(target)

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full, raising=False)
    with pytest.raises(OSError) as info:
        mitk.Image(sample_array(np.uint8, (4, 512, 600))).save(target)
    assert info.value.errno == errno.ENOSPC
    np.testing.assert_array_equal(mitk.Image(target).as_numpy(), old)
    assert _leftovers(tmp_path) == []


# -- detached pairs: the new data never overwrite the old pair's (or another header's) --------

@pytest.mark.parametrize("ext,suffix", [(".nhdr", ".raw"), (".mhd", ".raw")])
def test_pair_saves_alternate_data_names_and_remove_the_old_one(tmp_path, ext, suffix):
    import mitk

    target = tmp_path / f"img{ext}"
    seen = []
    for seed in range(4):
        arr = sample_array(np.int16, (3, 8, 9), seed=seed)
        mitk.Image(arr).save(target)
        data = sorted(p.name for p in tmp_path.iterdir() if p.name != target.name)
        assert len(data) == 1, data  # the old pair's data file is gone
        seen.append(data[0])
        np.testing.assert_array_equal(mitk.Image(target).as_numpy(), arr)
    assert seen == [f"img{suffix}", f"img.1{suffix}"] * 2


def test_a_pair_never_overwrites_another_headers_data_file(tmp_path):
    import mitk

    a = sample_array(np.int16, (3, 8, 9), seed=1)
    b = sample_array(np.int16, (3, 8, 9), seed=2)
    mitk.Image(a).save(tmp_path / "img.nhdr")   # data in img.raw
    mitk.Image(b).save(tmp_path / "img.mhd")    # img.raw is taken: img.1.raw
    np.testing.assert_array_equal(mitk.Image(tmp_path / "img.nhdr").as_numpy(), a)
    np.testing.assert_array_equal(mitk.Image(tmp_path / "img.mhd").as_numpy(), b)
    mitk.Image(b).save(tmp_path / "img.mhd")    # replaces its own pair only
    np.testing.assert_array_equal(mitk.Image(tmp_path / "img.nhdr").as_numpy(), a)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.2.raw", "img.mhd", "img.nhdr",
                                                          "img.raw"]


def test_a_save_never_deletes_a_data_file_it_did_not_name(tmp_path):
    import mitk

    # A header written elsewhere, naming a data file of another name: the file is left alone.
    arr = sample_array(np.uint8, (2, 4, 5))
    (tmp_path / "shared.raw").write_bytes(arr.tobytes())
    (tmp_path / "img.mhd").write_text(
        "ObjectType = Image\nNDims = 3\nDimSize = 5 4 2\nElementType = MET_UCHAR\n"
        "ElementDataFile = shared.raw\n")
    mitk.Image(arr).save(tmp_path / "img.mhd")
    assert (tmp_path / "shared.raw").read_bytes() == arr.tobytes()
    np.testing.assert_array_equal(mitk.Image(tmp_path / "img.mhd").as_numpy(), arr)


EXTS = [".nrrd", ".nhdr", ".nii", ".nii.gz", ".hdr", ".mha", ".mhd"]


def _files(directory):
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("ext", EXTS)
def test_saving_over_a_private_file_keeps_it_private(tmp_path, ext):
    # A 0600 file (patient data) became 0644 when a save replaced it; a pair's new data file
    # takes its header's mode.
    import mitk

    img = mitk.Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4))
    path = tmp_path / f"p{ext}"
    img.save(path)
    for name in _files(tmp_path):
        os.chmod(tmp_path / name, 0o600)
    img.save(path)
    modes = {name: stat.S_IMODE(os.stat(tmp_path / name).st_mode) for name in _files(tmp_path)}
    assert set(modes.values()) == {0o600}, modes
    assert len(modes) == (2 if ext in (".nhdr", ".hdr", ".mhd") else 1)


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
@pytest.mark.parametrize("ext", EXTS)
def test_saving_through_a_symlink_replaces_its_target(tmp_path, ext):
    # A symlink was replaced by a regular file; now the file it leads to is replaced, in its
    # own directory, and the link stays a link.
    import mitk

    real = tmp_path / "store"
    real.mkdir()
    first = mitk.Image(np.zeros((2, 3, 4), np.int16))
    first.save(real / f"scan{ext}")
    second = mitk.Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4))
    if ext in (".nhdr", ".mhd"):
        # A detached header names its data file relative to where it is read from (as teem and
        # MetaIO do; DataLad relies on it): a link beside its target works, a link from another
        # directory could not serve both places and is refused before anything is written.
        os.symlink(f"scan{ext}", real / f"alias{ext}")
        second.save(real / f"alias{ext}")
        assert (real / f"alias{ext}").is_symlink()
        for name in (f"scan{ext}", f"alias{ext}"):
            np.testing.assert_array_equal(np.asarray(mitk.Image(real / name)),
                                          np.asarray(second))
        links = tmp_path / "links"
        links.mkdir()
        (links / f"scan{ext}").symlink_to(real / f"scan{ext}")
        before = _files(real)
        with pytest.raises(mitk.UnsupportedFormatError, match="another directory"):
            first.save(links / f"scan{ext}")
        assert _files(real) == before and _files(links) == [f"scan{ext}"]
        return
    links = tmp_path / "links"
    links.mkdir()
    for name in _files(real):
        (links / name).symlink_to(real / name)
    second.save(links / f"scan{ext}")
    assert all((links / name).is_symlink() for name in _files(links))
    for where in (real, links):
        np.testing.assert_array_equal(np.asarray(mitk.Image(where / f"scan{ext}")),
                                      np.asarray(second))


@pytest.mark.parametrize("ext", EXTS)
def test_a_missing_directory_names_the_users_path(tmp_path, ext):
    import mitk

    target = tmp_path / "no" / "such" / f"x{ext}"
    with pytest.raises(FileNotFoundError) as err:
        mitk.Image(np.zeros((2, 2), np.uint8)).save(target)
    assert TEMP_PREFIX not in str(err.value)
    assert str(tmp_path / "no" / "such") in str(err.value)
