"""The cache of a remote store, on a real S3 server: validated by ETag (another writer's change
is seen), no download when valid, ttl, LRU eviction, one download for concurrent gets, entries
from a set, cleanup that removes only provable entries."""

from __future__ import annotations

import json
import os
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pandas as pd
import pytest

import aiostore
from aiostore import errors
from aiostore.store.cache import MAGIC
from aiostore.store.fetch import range_plan

pytestmark = pytest.mark.anyio


class Calls:
    """Counts the requests a store sends through its storage (get, head, list)."""

    def __init__(self, store: aiostore.Store) -> None:
        self.counts = {"get": 0, "head": 0, "list": 0}
        st = store.storage
        for name in self.counts:
            real = getattr(st, name)
            setattr(st, name, self._counting(name, real))

    def _counting(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        if name == "list":
            def listing(*args: Any, **kwargs: Any) -> Any:
                self.counts[name] += 1
                return real(*args, **kwargs)

            return listing

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.counts[name] += 1
            return await real(*args, **kwargs)

        return call

    def take(self) -> dict[str, int]:
        out = dict(self.counts)
        for name in self.counts:
            self.counts[name] = 0
        return out


def _entries(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("*.entry"))


def _exists(path: str | Path) -> bool:
    return Path(path).exists()


def _read(path: str | Path) -> bytes:
    return Path(path).read_bytes()


def _entry(store: aiostore.Store, key: str) -> Path:
    assert store._cache is not None
    return Path(store._cache.path(key))


async def test_another_writers_change_is_seen(s3_root: str, s3_store_options: dict[str, Any],
                                              tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    async with aiostore.Store(s3_root, storage_options=s3_store_options, cache=cache) as a, \
            aiostore.Store(s3_root, storage_options=s3_store_options) as b:
        calls = Calls(a)
        await b.set("conf", {"v": 1})
        assert await a.get("conf") == {"v": 1}  # resolved by a listing, downloaded
        assert calls.take() == {"list": 1, "get": 1, "head": 1}
        assert await a.get("conf") == {"v": 1}
        assert calls.take() == {"list": 0, "get": 0, "head": 1}  # validated by one HEAD
        await b.set("conf", {"v": 2})  # same size, same key: only the ETag differs
        assert await a.get("conf") == {"v": 2}
        assert calls.take() == {"list": 1, "get": 1, "head": 2}  # changed: listed again
        await b.set("conf.yaml", {"v": 3})  # another format: the old object is gone
        assert await a.get("conf") == {"v": 3}
        assert await a.get("conf.yaml") == {"v": 3}
        calls.take()
        assert await a.get("conf.yaml") == {"v": 3}  # a key naming its object: one HEAD
        assert calls.take() == {"list": 0, "get": 0, "head": 1}
        await b.delete("conf")
        with pytest.raises(KeyError):
            await a.get("conf")
        with pytest.raises(KeyError):
            await a.get("conf.yaml")


async def test_a_key_that_became_ambiguous(s3_root: str, s3_store_options: dict[str, Any],
                                           tmp_path: Path) -> None:
    """A cached store validates a key it resolved before with a HEAD of that object: a second
    object appearing beside it is reported by every listing-based resolution, and by this
    store's gets as soon as the object it resolved to changes or goes."""
    async with aiostore.Store(s3_root, storage_options=s3_store_options,
                              cache=tmp_path / "cache") as a, \
            aiostore.Store(s3_root, storage_options=s3_store_options) as b:
        await b.set("conf", {"v": 1})
        assert await a.get("conf") == {"v": 1}
        await b.storage.put("conf.yaml", b"v: 2")  # a foreign tool adds a second object
        assert await a.get("conf") == {"v": 1}  # still the object it resolved to, validated
        with pytest.raises(errors.AmbiguousKeyError):
            await b.get("conf")  # a store without it resolves by listing
        with pytest.raises(errors.AmbiguousKeyError):
            await a.info("conf")  # info, contains and keys always list
        await b.storage.put("conf.json", b'{"v": 3}')  # the resolved object changes
        with pytest.raises(errors.AmbiguousKeyError):
            await a.get("conf")


async def test_a_set_through_the_store_becomes_the_entry(
        s3_root: str, s3_store_options: dict[str, Any], tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": np.arange(50_000), "b": np.arange(50_000) * 0.5})
    async with aiostore.Store(s3_root, storage_options=s3_store_options,
                              cache=tmp_path / "cache") as store:
        calls = Calls(store)
        await store.set("conf", {"v": 1})  # a whole put
        await store.set("frame", frame)  # streamed (the frame encoder always streams)
        calls.take()
        assert await store.get("conf") == {"v": 1}
        pd.testing.assert_frame_equal(await store.get("frame"), frame)
        assert calls.take() == {"list": 0, "get": 0, "head": 2}
        await store.set("conf", {"v": 2})
        assert await store.get("conf") == {"v": 2}
        assert calls.take()["get"] == 0
        # the entry file is the object's bytes, then a trailer naming it
        raw = _read(_entry(store, "conf.json"))
        assert raw.startswith(await store.storage.get("conf.json"))
        length, magic = struct.unpack("<Q16s", raw[-24:])
        assert magic == MAGIC
        trailer = json.loads(raw[-24 - length:-24])
        assert trailer["key"] == "conf.json"
        assert trailer["etag"] == (await store.storage.head("conf.json")).etag


async def test_concurrent_gets_download_once(s3_root: str, s3_store_options: dict[str, Any],
                                             tmp_path: Path) -> None:
    payload = os.urandom(3 << 20)
    async with aiostore.Store(s3_root, storage_options=s3_store_options,
                              cache=tmp_path / "cache") as a, \
            aiostore.Store(s3_root, storage_options=s3_store_options) as b:
        await b.set("blob", payload)
        calls = Calls(a)
        results: list[bytes] = []

        async def get() -> None:
            results.append(await a.get("blob"))

        async with anyio.create_task_group() as tg:
            for _ in range(16):
                tg.start_soon(get)
        assert results == [payload] * 16
        assert calls.take()["get"] == 1


async def test_large_objects_are_read_in_ranges_into_the_entry(
        s3_root: str, s3_store_options: dict[str, Any], tmp_path: Path) -> None:
    array = np.random.default_rng(1).random(3 << 20)  # 24 MiB and a header
    async with aiostore.Store(s3_root, storage_options=s3_store_options,
                              cache=tmp_path / "cache") as a, \
            aiostore.Store(s3_root, storage_options=s3_store_options) as b:
        await b.set("arr", array)
        calls = Calls(a)
        got = await a.get("arr")
        assert np.array_equal(got, array) and got.flags.writeable  # a view of the buffer
        size, concurrency = range_plan(a.storage)
        assert concurrency == 2  # the storage's max_concurrency
        assert calls.take()["get"] == -(-(array.nbytes + 128) // size)
        assert np.array_equal(await a.get("arr"), array)
        assert calls.take()["get"] == 0


async def test_cache_ttl_skips_revalidation(s3_root: str, s3_store_options: dict[str, Any],
                                            tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    async with aiostore.Store(s3_root, storage_options=s3_store_options, cache=cache,
                              cache_ttl=3600) as lazy, \
            aiostore.Store(s3_root, storage_options=s3_store_options, cache=cache,
                           cache_ttl=0.5) as brief, \
            aiostore.Store(s3_root, storage_options=s3_store_options) as other:
        await other.set("conf", {"v": 1})
        assert await lazy.get("conf") == {"v": 1}
        assert await brief.get("conf") == {"v": 1}
        await other.set("conf", {"v": 2})
        calls = Calls(lazy)
        assert await lazy.get("conf") == {"v": 1}  # stale, as accepted: no request at all
        assert calls.take() == {"list": 0, "get": 0, "head": 0}
        await anyio.sleep(0.6)
        assert await brief.get("conf") == {"v": 2}  # its ttl ran out: validated again
        await other.set("conf", {"v": 3})
        brief_calls = Calls(brief)
        assert await brief.get("conf") == {"v": 2}  # validated just now: served for 0.5 s
        assert brief_calls.take() == {"list": 0, "get": 0, "head": 0}
        await anyio.sleep(0.6)
        assert await brief.get("conf") == {"v": 3}
        assert brief_calls.take()["head"] >= 1
        await anyio.sleep(0.6)
        assert await brief.get("conf") == {"v": 3}  # validated by a HEAD: fresh again
        assert brief_calls.take() == {"list": 0, "get": 0, "head": 1}
        assert await brief.get("conf") == {"v": 3}
        assert brief_calls.take() == {"list": 0, "get": 0, "head": 0}


async def test_max_bytes_evicts_the_least_recently_used(
        s3_root: str, s3_store_options: dict[str, Any], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    size = 100_000
    async with aiostore.Store(s3_root, storage_options=s3_store_options, cache=cache,
                              max_bytes=int(size * 2.5)) as store:
        await store.set("a", os.urandom(size))
        await store.set("b", os.urandom(size))
        time.sleep(0.01)
        await store.get("a")  # a is now more recently used than b
        time.sleep(0.01)
        await store.set("c", os.urandom(size))  # over the limit: b goes
        assert _exists(_entry(store, "a.bin")) and _exists(_entry(store, "c.bin"))
        assert not _exists(_entry(store, "b.bin"))
        await store.set("huge", os.urandom(size * 3))  # never fits: not cached
        assert not _exists(_entry(store, "huge.bin"))
        assert sum(p.stat().st_size for p in _entries(cache)) <= size * 2.5


async def test_cleanup_removes_only_provable_entries(
        s3_root: str, s3_store_options: dict[str, Any], s3_bucket: str, tmp_path: Path
        ) -> None:
    cache = tmp_path / "cache"
    async with aiostore.Store(s3_root, storage_options=s3_store_options, cache=cache) as mine, \
            aiostore.Store(f"s3://{s3_bucket}/elsewhere", storage_options=s3_store_options,
                           cache=cache) as neighbour, \
            aiostore.Store(s3_root, storage_options=s3_store_options) as other:
        for key in ("keep", "changed", "gone"):
            await mine.set(key, {"k": key})
        await neighbour.set("gone", {"theirs": True})
        await other.set("changed", {"k": "new"})
        await other.delete("gone")
        assert mine.cache_dir is not None and neighbour.cache_dir is not None
        ns = Path(mine.cache_dir)
        keep_entry = _entry(mine, "keep.json")
        shard = keep_entry.parent
        foreign = [
            cache / "notes.txt",  # the user's own file
            ns / "README",
            shard / ("0" * 62 + ".entry"),  # named like an entry, but not one
            shard / "other.entry",
            ns / "zz" / ("1" * 62 + ".entry"),
            shard / f".{'2' * 62}.entry.notapid.0123abcd.aiostore-tmp",
        ]
        for path in foreign:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"not a cache entry" + MAGIC)
        # a copy of a valid entry under another entry's name: its key does not hash to it
        misnamed = shard / ("3" * 62 + ".entry")
        misnamed.write_bytes(_read(keep_entry))
        foreign.append(misnamed)
        # temp files of downloads: one of a dead process, one of a live one (this one)
        dead_pid = 2 ** 22 + 12345
        dead = shard / f".{keep_entry.name}.{dead_pid}.0123abcd.aiostore-tmp"
        live = shard / f".{keep_entry.name}.{os.getpid()}.0123abcd.aiostore-tmp"
        dead.write_bytes(b"partial")
        live.write_bytes(b"partial")

        removed = await mine.cleanup_cache()
        assert removed == 3  # changed, gone, the dead temp file
        assert _exists(keep_entry) and _exists(live) and not _exists(dead)
        assert not _exists(_entry(mine, "changed.json"))
        assert not _exists(_entry(mine, "gone.json"))
        assert _exists(_entry(neighbour, "gone.json"))
        for path in foreign:
            assert _exists(path), path
        assert await mine.get("keep") == {"k": "keep"}

        # entries not served for a while
        time.sleep(0.05)
        assert await mine.cleanup_cache(unused_for=0.01) == 1
        assert not _exists(keep_entry)
        for path in foreign:
            assert _exists(path), path
        assert await mine.get("keep") == {"k": "keep"}  # downloaded again


async def test_no_cache_for_a_local_root(tmp_path: Path) -> None:
    async with aiostore.Store(tmp_path / "data", cache=tmp_path / "cache") as store:
        await store.set("a", 1)
        assert await store.get("a") == 1
        assert store.cache_dir is None
        assert await store.cleanup_cache() == 0
    assert not (tmp_path / "cache").exists()


async def test_default_cache_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                       s3_root: str, s3_store_options: dict[str, Any]) -> None:
    monkeypatch.setenv("AIOSTORE_CACHE_DIR", str(tmp_path / "env-cache"))
    async with aiostore.Store(s3_root, storage_options=s3_store_options, cache=True) as store:
        await store.set("a", 1)
        assert store.cache_dir is not None
        assert Path(store.cache_dir).parent == tmp_path / "env-cache"
        assert len(_entries(tmp_path / "env-cache")) == 1
    monkeypatch.delenv("AIOSTORE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    from aiostore.store.cache import default_cache_dir

    assert default_cache_dir() == str(tmp_path / "xdg" / "aiostore")
