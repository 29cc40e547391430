"""atomic_open: streaming writes published on clean exit only."""

from __future__ import annotations

import asyncio
import gc
import re
import warnings
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

import aiostore
from aiostore import errors
from aiostore._io.faulty import FaultyFileSystem
from tests.conftest import Gate, temp_files

pytestmark = pytest.mark.anyio


async def test_clean_exit_publishes(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    async with aiostore.atomic_open(target, "wb", buffer_size=4) as f:
        await f.write(b"abc")
        await f.write(bytearray(b"defgh"))  # type: ignore[arg-type]
        await f.writelines([b"1", b"2"])
        assert target.read_bytes() == b"old"  # nothing visible before the commit
        assert len(temp_files(tmp_path)) == 1
    assert target.read_bytes() == b"abcdefgh12"
    assert f.closed and f.bytes_written == 10
    assert temp_files(tmp_path) == []


async def test_text_mode_and_incremental_encoding(tmp_path: Path) -> None:
    async with aiostore.atomic_open(tmp_path / "t.txt", "w", encoding="utf-16") as f:
        await f.write("héllo ")
        await f.write("wörld")
    assert (tmp_path / "t.txt").read_text(encoding="utf-16") == "héllo wörld"


async def test_exception_discards(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        async with aiostore.atomic_open(target, buffer_size=2) as f:
            await f.write(b"partial data")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert temp_files(tmp_path) == []
    with pytest.raises(errors.ClosedError):
        await f.write(b"more")


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_cancellation_inside_block_discards(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with anyio.CancelScope() as scope:
        async with aiostore.atomic_open(target, buffer_size=2) as f:
            await f.write(b"partial data")
            scope.cancel()
            await anyio.sleep(1)
    assert scope.cancelled_caught
    assert target.read_bytes() == b"old"
    assert temp_files(tmp_path) == []


async def test_awaitable_with_explicit_commit_and_discard(tmp_path: Path) -> None:
    f = await aiostore.atomic_open(tmp_path / "a", "wb")
    await f.write(b"x")
    await f.commit()
    assert (tmp_path / "a").read_bytes() == b"x"
    with pytest.raises(errors.ClosedError, match="committed"):
        await f.commit()
    g = await aiostore.atomic_open(tmp_path / "b", "wb", buffer_size=1)
    await g.write(b"y")
    await g.discard()
    await g.discard()  # idempotent
    assert not (tmp_path / "b").exists()
    assert temp_files(tmp_path) == []


async def test_exclusive_modes(tmp_path: Path) -> None:
    (tmp_path / "exists").write_bytes(b"keep")
    with pytest.raises(errors.AlreadyExistsError):
        async with aiostore.atomic_open(tmp_path / "exists", "xb") as f:
            await f.write(b"x")
    assert (tmp_path / "exists").read_bytes() == b"keep"
    async with aiostore.atomic_open(tmp_path / "fresh", "x") as t:
        await t.write("new")
    assert (tmp_path / "fresh").read_text() == "new"
    assert temp_files(tmp_path) == []


async def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidArgumentError, match="mode"):
        aiostore.atomic_open(tmp_path / "x", "r")  # type: ignore[call-overload]
    with pytest.raises(errors.InvalidArgumentError, match="encoding"):
        aiostore.atomic_open(tmp_path / "x", "w", encoding="nope")
    async with aiostore.atomic_open(tmp_path / "x", "w") as t:
        with pytest.raises(errors.SerializationError, match="must be str"):
            await t.write(b"bytes")  # type: ignore[arg-type]
    async with aiostore.atomic_open(tmp_path / "y", "wb") as b:
        with pytest.raises(errors.SerializationError, match="bytes-like"):
            await b.write("str")  # type: ignore[arg-type]


async def test_failed_commit_keeps_old(tmp_path: Path, faulty: FaultyFileSystem) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    faulty.fail("fsync")
    with pytest.raises(errors.DurabilityError):
        async with aiostore.atomic_open(target) as f:
            await f.write(b"new")
    assert target.read_bytes() == b"old"
    assert temp_files(tmp_path) == []
    assert f.closed


async def test_leaked_handle_warns(tmp_path: Path) -> None:
    f = await aiostore.atomic_open(tmp_path / "leak", buffer_size=1)
    await f.write(b"x")  # a temp file now exists
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del f
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) for w in caught)
    assert len(temp_files(tmp_path)) == 1
    await aiostore.sweep_temp_files(tmp_path, older_than=timedelta(0))


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_native_cancel_during_commit_completes(tmp_path: Path,
                                                     faulty: FaultyFileSystem) -> None:
    """A task cancelled while its commit runs: the commit finishes, then CancelledError."""
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    gate = Gate(faulty, "fsync")

    async def writer() -> None:
        async with aiostore.atomic_open(target) as f:
            await f.write(b"new")

    task = asyncio.ensure_future(writer())
    await anyio.to_thread.run_sync(gate.entered.wait)
    task.cancel()
    await asyncio.sleep(0)
    assert not task.done()
    gate.release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert target.read_bytes() == b"new"
    assert temp_files(tmp_path) == []


async def test_commit_refuses_a_temp_file_whose_directory_was_replaced(tmp_path: Path) -> None:
    # the directory is swapped for a copy while the write is open: the descriptor still writes
    # into the old temp file, so publishing the copy's (stale) temp would report a success for
    # bytes that are not there
    import os
    import shutil

    folder = tmp_path / "d"
    folder.mkdir()
    target = folder / "out.bin"
    f = await aiostore.atomic_open(target, "wb", buffer_size=1)
    await f.write(b"first")
    shutil.copytree(folder, tmp_path / "copy")
    os.rename(folder, tmp_path / "old")
    os.rename(tmp_path / "copy", folder)
    (stale,) = map(Path, temp_files(folder))
    await f.write(b" second")
    with pytest.raises(errors.CorruptionError, match=re.escape(stale.name)):
        await f.commit()
    assert not target.exists()
    assert stale.read_bytes() == b"first"  # not ours any more: left as it is
    assert f.closed


async def test_discard_leaves_a_file_that_replaced_the_temp(tmp_path: Path) -> None:
    import os

    target = tmp_path / "out.bin"
    f = await aiostore.atomic_open(target, "wb", buffer_size=1)
    await f.write(b"ours")
    (temp,) = map(Path, temp_files(tmp_path))
    (tmp_path / "theirs").write_bytes(b"theirs")
    os.replace(tmp_path / "theirs", temp)
    await f.discard()
    assert temp.read_bytes() == b"theirs"
    assert not target.exists()


async def test_commit_after_the_temp_file_was_swept_fails(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    f = await aiostore.atomic_open(target, "wb", buffer_size=1)
    await f.write(b"new")
    assert await aiostore.sweep_temp_files(tmp_path, older_than=timedelta(0)) == 1
    with pytest.raises(errors.NotFoundError, match="removed before the commit"):
        await f.commit()
    assert target.read_bytes() == b"old"
