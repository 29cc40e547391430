"""The fault-injecting double models a crash as LevelDB's fault-injection Env does."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from aiostore._io.faulty import FaultyFileSystem, SimulatedCrash


def _write(fs: FaultyFileSystem, path: Path, data: bytes, *, sync: bool) -> None:
    fd = fs.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    fs.write(fd, data)
    if sync:
        fs.fsync(fd)
    fs.close(fd)


def test_preexisting_files_survive_and_unsynced_data_is_lost(tmp_path: Path) -> None:
    (tmp_path / "old").write_bytes(b"before")
    fs = FaultyFileSystem(tmp_path)
    _write(fs, tmp_path / "new", b"never synced", sync=False)
    fs.fsync_dir(str(tmp_path))  # the name is durable, its data is not
    fd = fs.open(str(tmp_path / "old"), os.O_WRONLY | os.O_APPEND)
    fs.write(fd, b" and after")
    fs.close(fd)
    fs.crash()
    assert (tmp_path / "old").read_bytes() == b"before"
    assert (tmp_path / "new").read_bytes() == b""


def test_synced_data_survives_only_with_its_name(tmp_path: Path) -> None:
    fs = FaultyFileSystem(tmp_path)
    _write(fs, tmp_path / "a", b"synced, name not", sync=True)
    _write(fs, tmp_path / "b", b"synced, name too", sync=True)
    assert fs.durable_content(tmp_path / "b") is None
    fs.fsync_dir(str(tmp_path))
    _write(fs, tmp_path / "c", b"after the dir sync", sync=True)
    assert fs.durable_content(tmp_path / "b") == b"synced, name too"
    fs.crash()
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]
    assert (tmp_path / "b").read_bytes() == b"synced, name too"


def test_rename_and_unlink_revert_without_directory_fsync(tmp_path: Path) -> None:
    (tmp_path / "target").write_bytes(b"old")
    (tmp_path / "gone").write_bytes(b"still here")
    fs = FaultyFileSystem(tmp_path)
    _write(fs, tmp_path / "tmp", b"new", sync=True)
    fs.replace(str(tmp_path / "tmp"), str(tmp_path / "target"))
    fs.unlink(str(tmp_path / "gone"))
    assert (tmp_path / "target").read_bytes() == b"new"
    fs.crash()
    assert (tmp_path / "target").read_bytes() == b"old"
    assert (tmp_path / "gone").read_bytes() == b"still here"
    assert not (tmp_path / "tmp").exists()


def test_new_directory_needs_its_parent_synced(tmp_path: Path) -> None:
    fs = FaultyFileSystem(tmp_path)
    fs.mkdir(str(tmp_path / "d"))
    _write(fs, tmp_path / "d" / "f", b"x", sync=True)
    fs.fsync_dir(str(tmp_path / "d"))
    fs.crash()
    assert not (tmp_path / "d").exists()


def test_fail_nth_call(tmp_path: Path) -> None:
    fs = FaultyFileSystem(tmp_path)
    fs.fail("fsync", nth=2, errno=errno.EIO)
    _write(fs, tmp_path / "1", b"x", sync=True)
    with pytest.raises(OSError, match="injected") as info:
        _write(fs, tmp_path / "2", b"x", sync=True)
    assert info.value.errno == errno.EIO
    _write(fs, tmp_path / "3", b"x", sync=True)  # only the 2nd failed
    assert fs.calls["fsync"] == 3


def test_crash_at_stops_everything(tmp_path: Path) -> None:
    fs = FaultyFileSystem(tmp_path, crash_at=3)  # open_create, write, [crash before fsync]
    with pytest.raises(SimulatedCrash):
        _write(fs, tmp_path / "f", b"x", sync=True)
    assert fs.crashed
    with pytest.raises(SimulatedCrash):
        fs.unlink(str(tmp_path / "f"))
    assert [op for op, _ in fs.log] == ["open_create", "write"]
    fs.crash()
    assert os.listdir(tmp_path) == []
