"""LocalStorage specifics: symlink escapes, crash safety of puts, what listing hides."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import pytest

import aiostore
from aiostore import errors
from aiostore._io.base import use_fs
from aiostore._io.faulty import FaultyFileSystem, SimulatedCrash

pytestmark = pytest.mark.asyncio


async def test_symlinks_cannot_escape_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    os.symlink(outside, root / "escape")
    os.symlink(outside / "secret", root / "leak")
    (root / "inner").mkdir()
    os.symlink(root / "inner", root / "alias")
    async with aiostore.open_storage(root) as st:
        for key in ("escape/secret", "escape/new", "leak"):
            with pytest.raises(errors.InvalidKeyError, match="outside the storage root"):
                await st.get(key)
            with pytest.raises(errors.InvalidKeyError):
                await st.put(key, b"x")
        await st.put("alias/ok", b"inside")  # a link that stays inside is fine
        assert (root / "inner" / "ok").read_bytes() == b"inside"
    assert sorted(os.listdir(outside)) == ["secret"]
    assert (outside / "secret").read_bytes() == b"secret"


async def test_listing_hides_the_lock_and_temp_files(tmp_path: Path) -> None:
    async with aiostore.open_storage(tmp_path) as st:
        await st.put("k", b"v", if_none_match=True)
        (tmp_path / ".k.123.0123abcd.aiostore-tmp").write_bytes(b"junk")
        assert (tmp_path / ".aiostore.lock").exists()
        assert [i.key async for i in st.list()] == ["k"]


async def test_options_and_schemes_are_checked(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidArgumentError, match="no storage_options"):
        aiostore.open_storage(tmp_path, endpoint_url="http://x")
    with pytest.raises(errors.InvalidArgumentError, match="scheme"):
        aiostore.open_storage("gs://bucket/x")
    with pytest.raises(errors.InvalidArgumentError):
        aiostore.open_storage(42)  # type: ignore[arg-type]
    async with aiostore.open_storage(f"file://{tmp_path}") as st:
        await st.put("k", b"v")
    assert (tmp_path / "k").read_bytes() == b"v"


async def _cas(root: Path, fs: FaultyFileSystem, done: list[str]) -> None:
    with use_fs(fs):
        async with aiostore.open_storage(root) as st:
            info = await st.head("state")
            await st.put("state", b"new", if_match=info.etag)
            done.append("put")
            await st.put("log/1", b"entry", if_none_match=True)
            done.append("create")


async def test_crash_at_every_step_of_conditional_puts(tmp_path: Path) -> None:
    root = tmp_path / "root"
    async with aiostore.open_storage(root) as st:
        await st.put("state", b"old")
    probe = FaultyFileSystem(tmp_path)
    await _cas(root, probe, [])
    total = probe.mutations
    assert total >= 8
    for k in range(1, total + 1):
        async with aiostore.open_storage(root) as st:
            await st.put("state", b"old")
            await st.delete("log/1")
        fs = FaultyFileSystem(tmp_path, crash_at=k)
        done: list[str] = []
        with contextlib.suppress(SimulatedCrash):
            await _cas(root, fs, done)
        fs.crash()
        async with aiostore.open_storage(root) as st:
            state = await st.get("state")
            assert state in (b"old", b"new"), f"crash at {k}: torn state {state!r}"
            if "put" in done:
                assert state == b"new", f"crash at {k}: an acknowledged put was lost"
            try:
                entry = await st.get("log/1")
            except errors.NotFoundError:
                assert "create" not in done, f"crash at {k}: an acknowledged create was lost"
            else:
                assert entry == b"entry"
            assert [i.key async for i in st.list()] in (["state"], ["log/1", "state"])


async def test_put_returns_the_etag_of_its_own_file(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # another writer publishes right after this put releases the lock: the put's info must
    # still describe the file it published (its ETag feeds if_match), not the newer one
    from aiostore.storage import local

    storage = aiostore.open_storage(str(tmp_path))
    real_locked = local.LocalStorage._locked

    @contextlib.contextmanager
    def locked(self: local.LocalStorage) -> Any:
        with real_locked(self):
            yield
        if (tmp_path / "k").exists() and not getattr(locked, "done", False):
            locked.done = True  # type: ignore[attr-defined]
            (tmp_path / "other").write_bytes(b"a concurrent writer's longer content")
            os.replace(tmp_path / "other", tmp_path / "k")

    monkeypatch.setattr(local.LocalStorage, "_locked", locked)
    async with storage:
        info = await storage.put("k", b"ours")
        assert info.size == 4
        assert info.etag != (await storage.head("k")).etag
        with pytest.raises(errors.PreconditionFailedError):
            await storage.put("k", b"lost update", if_match=info.etag)
