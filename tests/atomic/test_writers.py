"""write_bytes / write_text / write_json / write_jsonl: contents, options and bad input."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import aiostore
from aiostore import errors
from aiostore._io.faulty import FaultyFileSystem
from tests.conftest import temp_files

pytestmark = pytest.mark.anyio


async def test_write_bytes_creates_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    await aiostore.write_bytes(target, b"one")
    assert target.read_bytes() == b"one"
    await aiostore.write_bytes(str(target), bytearray(b"two"))
    assert target.read_bytes() == b"two"
    await aiostore.write_bytes(target, memoryview(b"three"))
    assert target.read_bytes() == b"three"
    assert temp_files(tmp_path) == []


async def test_write_text_json_jsonl(tmp_path: Path) -> None:
    await aiostore.write_text(tmp_path / "t.txt", "héllo", encoding="latin-1")
    assert (tmp_path / "t.txt").read_bytes() == "héllo".encode("latin-1")
    await aiostore.write_json(tmp_path / "j.json", {"b": [1, 2]}, indent=2, sort_keys=True)
    assert json.loads((tmp_path / "j.json").read_text()) == {"b": [1, 2]}
    assert "\n  " in (tmp_path / "j.json").read_text()
    n = await aiostore.write_jsonl(tmp_path / "l.jsonl", [{"i": i} for i in range(2500)])
    assert n == 2500
    lines = (tmp_path / "l.jsonl").read_text().splitlines()
    assert [json.loads(x)["i"] for x in lines] == list(range(2500))


async def test_write_jsonl_async_iterable(tmp_path: Path) -> None:
    async def gen() -> AsyncIterator[dict[str, int]]:
        for i in range(1500):
            yield {"i": i}

    assert await aiostore.write_jsonl(tmp_path / "l.jsonl", gen()) == 1500
    assert len((tmp_path / "l.jsonl").read_text().splitlines()) == 1500
    assert await aiostore.write_jsonl(tmp_path / "empty.jsonl", []) == 0
    assert (tmp_path / "empty.jsonl").read_bytes() == b""


async def test_overwrite_false_is_no_clobber(tmp_path: Path) -> None:
    target = tmp_path / "f"
    await aiostore.write_bytes(target, b"first", overwrite=False)
    with pytest.raises(errors.AlreadyExistsError) as info:
        await aiostore.write_bytes(target, b"second", overwrite=False)
    assert isinstance(info.value, FileExistsError)
    assert "overwrite=False" in str(info.value)
    assert target.read_bytes() == b"first"
    assert temp_files(tmp_path) == []


async def test_missing_parents_are_created_durably(tmp_path: Path) -> None:
    fs = FaultyFileSystem(tmp_path)
    from aiostore._io.base import use_fs

    with use_fs(fs):
        await aiostore.write_bytes(tmp_path / "a" / "b" / "c.txt", b"deep")
    fs.crash()  # only what was made durable survives
    assert (tmp_path / "a" / "b" / "c.txt").read_bytes() == b"deep"


async def test_existing_permissions_are_kept(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    await aiostore.write_bytes(target, b"new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    await aiostore.write_text(target, "newer", mode=0o640)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


async def test_new_file_mode_follows_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        await aiostore.write_bytes(tmp_path / "n", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "n").stat().st_mode) == 0o640


async def test_symlink_is_followed_and_kept(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to("real.json")
    await aiostore.write_json(link, {"v": 2})
    assert link.is_symlink()
    assert json.loads(real.read_text()) == {"v": 2}
    dangling = tmp_path / "dangling"
    dangling.symlink_to("sub/created.txt")
    await aiostore.write_text(dangling, "made")
    assert (tmp_path / "sub" / "created.txt").read_text() == "made"
    assert dangling.is_symlink()


async def test_durable_false_skips_fsync(tmp_path: Path, faulty: FaultyFileSystem) -> None:
    await aiostore.write_bytes(tmp_path / "fast", b"x", durable=False)
    assert (tmp_path / "fast").read_bytes() == b"x"
    assert faulty.calls["fsync"] == 0 and faulty.calls["fsync_dir"] == 0
    await aiostore.write_bytes(tmp_path / "slow", b"x")
    assert faulty.calls["fsync"] == 1 and faulty.calls["fsync_dir"] == 1


async def test_publish_recipe_order(tmp_path: Path, faulty: FaultyFileSystem) -> None:
    """temp created O_EXCL beside the target, written, fsynced, renamed, then the dir fsynced."""
    await aiostore.write_bytes(tmp_path / "f", b"data")
    ops = [op for op, _ in faulty.log]
    assert ops == ["open_create", "write", "fsync", "replace", "fsync_dir"]
    created = faulty.log[0][1]
    assert os.path.dirname(created) == str(tmp_path)
    name = os.path.basename(created)
    assert name.startswith(".f.") and f".{os.getpid()}." in name
    assert name.endswith(".aiostore-tmp")


@pytest.mark.parametrize("bad", [object(), {1, 2}, float("nan") + 0j])
async def test_unserialisable_json_leaves_old_file(tmp_path: Path, bad: object) -> None:
    target = tmp_path / "j.json"
    target.write_text('{"old": true}')
    with pytest.raises(errors.SerializationError, match="not JSON serialisable"):
        await aiostore.write_json(target, {"x": bad})
    assert target.read_text() == '{"old": true}'
    assert temp_files(tmp_path) == []


async def test_bad_record_in_jsonl_leaves_old_file(tmp_path: Path) -> None:
    target = tmp_path / "l.jsonl"
    target.write_text("old\n")
    records: list[object] = [{"i": i} for i in range(1500)] + [object()]
    with pytest.raises(errors.SerializationError):
        await aiostore.write_jsonl(target, records)
    assert target.read_text() == "old\n"
    assert temp_files(tmp_path) == []


async def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(errors.SerializationError, match="bytes-like"):
        await aiostore.write_bytes(tmp_path / "x", "text")  # type: ignore[arg-type]
    with pytest.raises(errors.SerializationError, match="must be str"):
        await aiostore.write_text(tmp_path / "x", b"bytes")  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidArgumentError, match="path must be"):
        await aiostore.write_bytes(123, b"x")  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidArgumentError, match="mode must be"):
        await aiostore.write_bytes(tmp_path / "x", b"x", mode=0o10000)
    with pytest.raises(errors.SerializationError, match="cannot encode"):
        await aiostore.write_text(tmp_path / "x", "€", encoding="ascii")
    with pytest.raises(errors.InvalidArgumentError, match="indent"):
        await aiostore.write_jsonl(tmp_path / "x", [1], indent=2)
    assert not (tmp_path / "x").exists()


async def test_directory_target_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(errors.IsADirectoryTargetError) as info:
        await aiostore.write_bytes(tmp_path / "d", b"x")
    assert isinstance(info.value, IsADirectoryError)
    assert temp_files(tmp_path) == []


async def test_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(errors.NotADirectoryTargetError):
        await aiostore.write_bytes(tmp_path / "file" / "x", b"x")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits")
async def test_missing_permission(tmp_path: Path) -> None:  # pragma: no cover - non-root only
    d = tmp_path / "ro"
    d.mkdir()
    (d / "f").write_bytes(b"old")
    os.chmod(d, 0o500)
    try:
        with pytest.raises(errors.AccessDeniedError):
            await aiostore.write_bytes(d / "f", b"new")
    finally:
        os.chmod(d, 0o700)
    assert (d / "f").read_bytes() == b"old"


async def test_permission_denied_by_injected_error(tmp_path: Path,
                                                   faulty: FaultyFileSystem) -> None:
    """EACCES on creating the temp file (what a read-only directory gives a non-root user)."""
    import errno

    (tmp_path / "f").write_bytes(b"old")
    faulty.fail("open_create", errno=errno.EACCES)
    with pytest.raises(errors.AccessDeniedError) as info:
        await aiostore.write_bytes(tmp_path / "f", b"new")
    assert isinstance(info.value, PermissionError)
    assert "create temp file failed" in str(info.value)
    assert (tmp_path / "f").read_bytes() == b"old"


@pytest.mark.parametrize("op", ["write", "fsync", "replace"])
async def test_disk_full_and_io_errors_keep_old_content(tmp_path: Path, faulty: FaultyFileSystem,
                                                        op: str) -> None:
    import errno

    (tmp_path / "f").write_bytes(b"old")
    faulty.fail(op, errno=errno.ENOSPC if op == "write" else errno.EIO)
    with pytest.raises(errors.StorageError) as info:
        await aiostore.write_bytes(tmp_path / "f", b"new")
    if op == "write":
        assert isinstance(info.value, errors.DiskFullError)
    if op == "fsync":
        assert isinstance(info.value, errors.DurabilityError)
    assert (tmp_path / "f").read_bytes() == b"old"
    assert temp_files(tmp_path) == []


async def test_failed_directory_fsync_is_a_durability_error(tmp_path: Path,
                                                            faulty: FaultyFileSystem) -> None:
    faulty.fail("fsync_dir")
    with pytest.raises(errors.DurabilityError, match="may not survive a crash"):
        await aiostore.write_bytes(tmp_path / "f", b"new")


async def test_temp_file_names_are_refused_as_targets(tmp_path: Path) -> None:
    # a file published under a temp name would be taken for a dead writer's temp file and
    # removed by sweep_temp_files: the names are aiostore's alone
    from datetime import timedelta

    target = tmp_path / ".report.csv.123.0123abcd.aiostore-tmp"
    with pytest.raises(errors.InvalidArgumentError, match="reserved"):
        await aiostore.write_bytes(target, b"the user's data")
    with pytest.raises(errors.InvalidArgumentError, match="reserved"):
        async with aiostore.atomic_open(target, "wb", buffer_size=1) as f:
            await f.write(b"the user's data")
    assert not target.exists()
    assert await aiostore.sweep_temp_files(tmp_path, older_than=timedelta(0)) == 0
