"""Atomic replacement: the old file survives a failure and no temporary file is left behind."""

import os
import stat

import pytest

from mitk.io._atomic import TEMP_PREFIX, atomic_write


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
