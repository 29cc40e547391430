"""Keys: validation (traversal, absolute paths, symlink escapes), resolution of keys without
extensions, ambiguity, and what readers see while a key changes format."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import pytest

import aiostore
from aiostore import errors
from aiostore.formats import default_registry
from aiostore.storage.base import ObjectInfo
from aiostore.store.keys import Candidate, StoreKey, choose, matches, parse_key

pytestmark = pytest.mark.anyio


async def _keys(store: aiostore.Store, prefix: str = "") -> list[str]:
    return [key async for key in store.keys(prefix)]

BAD_KEYS = ["", "/abs", "../up", "a/../../b", "a//b", "a/./b", "a/", ".aiostore.lock",
            "x/.aiostore-thing", "f.aiostore-tmp", "conf.aiostore-replace", "a\x00b"]


# --- pure rules ------------------------------------------------------------------------------
def _info(key: str) -> ObjectInfo:
    import datetime as dt

    return ObjectInfo(key=key, size=1, etag=key, mtime=dt.datetime.now(dt.timezone.utc))


def test_parse_key_splits_the_longest_known_extension() -> None:
    reg = default_registry()
    assert parse_key("frame", reg) == StoreKey("frame", "")
    assert parse_key("a/b.sparse.npz", reg) == StoreKey("a/b", ".sparse.npz")
    assert parse_key("a/b.npz", reg) == StoreKey("a/b", ".npz")
    assert parse_key("conf.YAML", reg) == StoreKey("conf", ".yaml")
    assert parse_key("v1.2", reg) == StoreKey("v1.2", "")  # not a known extension
    for bad in BAD_KEYS:
        with pytest.raises(errors.InvalidKeyError):
            parse_key(bad, reg)
    with pytest.raises(errors.InvalidTypeError):
        parse_key(3, reg)


def test_resolution_rule() -> None:
    reg = default_registry()
    listing = [_info(k) for k in ["conf.aiostore-replace", "conf.d/x.json", "conf.json",
                                  "conf.json.bak", "conf.yaml", "confx.json"]]
    found, marker = matches(listing, "conf", reg)
    assert [c.info.key for c in found] == ["conf.json", "conf.yaml"]
    assert marker is not None and marker.key == "conf.aiostore-replace"
    key = StoreKey("conf", "")
    with pytest.raises(errors.AmbiguousKeyError, match=r"conf\.json, conf\.yaml"):
        choose(key, found, None)  # two objects, no replace in progress
    with pytest.raises(errors.AmbiguousKeyError):
        choose(key, found, ".toml")  # the marker names neither
    assert choose(key, found, ".yaml").info.key == "conf.yaml"
    assert choose(key, found, ".json").info.key == "conf.json"
    assert choose(StoreKey("conf", ".json"), found, ".yaml").info.key == "conf.json"
    one = [Candidate(_info("conf.json"), ".json")]
    assert choose(key, one, ".yaml").info.key == "conf.json"  # the new one is not there yet
    with pytest.raises(errors.KeyNotFoundError):
        choose(key, [], None)
    with pytest.raises(errors.KeyNotFoundError):
        choose(StoreKey("conf", ".toml"), found, None)


# --- on a store --------------------------------------------------------------------------------
async def test_invalid_keys_are_refused_before_any_io(root: str, options: dict[str, Any]
                                                      ) -> None:
    async with aiostore.Store(root, storage_options=options) as store:
        for bad in BAD_KEYS:
            with pytest.raises(errors.InvalidKeyError):
                await store.set(bad, 1)
            with pytest.raises(errors.InvalidKeyError):
                await store.get(bad)
            with pytest.raises(errors.InvalidKeyError):
                await store.contains(bad)
            with pytest.raises(errors.InvalidKeyError):
                await store.delete(bad)
        with pytest.raises(errors.InvalidKeyError):
            await store.copy("../x", "y")
        with pytest.raises(errors.InvalidKeyError):
            await _keys(store, "../")
        assert [info async for info in store.storage.list()] == []


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_symlink_escapes_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "data"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text('{"secret": 1}')
    root.mkdir()
    os.symlink(outside, root / "link")
    os.symlink(outside / "secret.json", root / "alias.json")
    async with aiostore.Store(root) as store:
        with pytest.raises(errors.InvalidKeyError, match="outside"):
            await store.set("link/x", {"a": 1})
        with pytest.raises(errors.InvalidKeyError, match="outside"):
            await store.get("link/secret")
        # a link leading out of the root is no object of the store: it is not listed, so no
        # key resolves to it
        for key in ("alias", "alias.json"):
            with pytest.raises(errors.KeyNotFoundError):
                await store.get(key)
            with pytest.raises(errors.KeyNotFoundError):
                await store.copy(key, "stolen")
        with pytest.raises(errors.InvalidKeyError):
            await store.set("alias", {"overwritten": True})
    assert sorted(p.name for p in outside.iterdir()) == ["secret.json"]
    assert (outside / "secret.json").read_text() == '{"secret": 1}'
    assert not (root / "stolen.json").exists()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_keys_do_not_list_through_symlinks_out_of_the_root(tmp_path: Path) -> None:
    root = tmp_path / "data"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text("{}")
    root.mkdir()
    os.symlink(outside, root / "link")
    async with aiostore.Store(root) as store:
        await store.set("mine", 1)
        assert await _keys(store) == ["mine"]


async def test_ambiguous_key(root: str, options: dict[str, Any]) -> None:
    async with aiostore.Store(root, storage_options=options) as store:
        await store.storage.put("conf.json", b'{"from": "json"}')
        await store.storage.put("conf.yaml", b"from: yaml")
        with pytest.raises(errors.AmbiguousKeyError) as caught:
            await store.get("conf")
        assert isinstance(caught.value, errors.InvalidKeyError)
        assert "conf.json" in str(caught.value) and "conf.yaml" in str(caught.value)
        with pytest.raises(errors.AmbiguousKeyError):
            await store.info("conf")
        assert await store.get("conf.json") == {"from": "json"}  # naming it is exact
        assert await store.get("conf.yaml") == {"from": "yaml"}
        assert await store.contains("conf")
        assert await _keys(store) == ["conf"]
        # setting the key resolves the ambiguity: one object is left
        await store.set("conf", {"from": "set"})
        assert [i.key async for i in store.storage.list()] == ["conf.json"]
        assert await store.get("conf") == {"from": "set"}
        await store.storage.put("conf.yaml", b"from: yaml")
        await store.delete("conf")  # deletes every object of the key
        assert [i.key async for i in store.storage.list()] == []


async def test_replacing_a_format_leaves_one_object(root: str, options: dict[str, Any]
                                                     ) -> None:
    async with aiostore.Store(root, storage_options=options) as store:
        await store.set("conf", {"v": 1})
        await store.set("conf.yaml", {"v": 2})
        assert [i.key async for i in store.storage.list()] == ["conf.yaml"]
        assert await store.get("conf") == {"v": 2}
        await store.set("conf", {"v": 3})  # the type's format again: json
        assert [i.key async for i in store.storage.list()] == ["conf.json"]
        assert await store.get("conf") == {"v": 3}
        await store.set("conf", "now a string")
        assert [i.key async for i in store.storage.list()] == ["conf.txt"]
        assert await store.get("conf") == "now a string"


async def test_readers_between_publish_and_delete_see_the_new_object(
        root: str, options: dict[str, Any]) -> None:
    """The states a replace of conf.json by conf.yaml goes through, as a reader sees them."""
    async with aiostore.Store(root, storage_options=options) as store:
        await store.set("conf", {"v": "old"})
        st = store.storage
        await st.put("conf.aiostore-replace", b".yaml")  # 1. the marker
        assert await store.get("conf") == {"v": "old"}  # the new one is not there yet
        await st.put("conf.yaml", b"v: new")  # 2. the new object
        assert await store.get("conf") == {"v": "new"}  # both there: the marker decides
        assert await store.info("conf") == await store.info("conf.yaml")
        # a writer that died here leaves that state; the next set cleans it up
        await store.set("conf", {"v": "newest"})
        assert [i.key async for i in st.list()] == ["conf.json"]
        await st.delete("conf.json")
        await st.put("conf.aiostore-replace", b".yaml")  # a stale marker, alone
        assert not await store.contains("conf")
        await store.set("conf.yaml", {"v": 1})
        assert [i.key async for i in st.list()] == ["conf.yaml"]  # the marker went too


async def test_concurrent_readers_during_format_changes_never_fail(
        root: str, options: dict[str, Any]) -> None:
    """A writer flips a key between JSON and YAML while readers read it: every read returns a
    whole value of one of the versions — never an ambiguity, a missing key or a torn value."""
    rounds = 30 if root.startswith("s3://") else 60
    async with aiostore.Store(root, storage_options=options) as writer, \
            aiostore.Store(root, storage_options=options) as reader:
        await writer.set("conf", {"round": 0})
        done = anyio.Event()
        seen: list[int] = []

        async def write() -> None:
            for i in range(1, rounds + 1):
                await writer.set("conf.yaml" if i % 2 else "conf.json", {"round": i})
            done.set()

        async def read() -> None:
            while not done.is_set():
                value = await reader.get("conf")
                assert isinstance(value, dict) and set(value) == {"round"}
                seen.append(value["round"])

        async with anyio.create_task_group() as tg:
            tg.start_soon(write)
            for _ in range(3):
                tg.start_soon(read)
        assert await reader.get("conf") == {"round": rounds}
        assert len(seen) > 0
        assert [i.key async for i in writer.storage.list()] == ["conf.json"]


async def test_a_failed_encoding_changes_nothing(root: str, options: dict[str, Any]) -> None:
    async with aiostore.Store(root, storage_options=options) as store:
        await store.set("conf", {"v": 1})
        with pytest.raises(errors.SerializationError):
            await store.set("conf.yaml", {"v": object()})
        assert [i.key async for i in store.storage.list()] == ["conf.json"]
        assert await store.get("conf") == {"v": 1}
