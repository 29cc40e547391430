"""The storage contract, run identically over a local directory and a real S3 server."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest

import aiostore
from aiostore import Storage, errors

pytestmark = pytest.mark.asyncio

MiB = 1 << 20


async def _keys(st: Storage, prefix: str = "") -> list[str]:
    return [info.key async for info in st.list(prefix)]


Uploads = Callable[[], Awaitable[list[str]]]


async def test_put_get_head_roundtrip(storage: Storage) -> None:
    info = await storage.put("a/b/c.bin", b"hello world")
    assert info.key == "a/b/c.bin" and info.size == 11 and info.etag
    assert isinstance(info.mtime, datetime) and info.mtime.tzinfo is not None
    assert await storage.get("a/b/c.bin") == b"hello world"
    head = await storage.head("a/b/c.bin")
    assert (head.size, head.etag) == (11, info.etag)
    assert await storage.get("a/b/c.bin", byte_range=(6, None)) == b"world"
    assert await storage.get("a/b/c.bin", byte_range=(0, 5)) == b"hello"
    assert await storage.get("a/b/c.bin", byte_range=(3, 3)) == b""
    assert await storage.get("a/b/c.bin", byte_range=(20, None)) == b""
    await storage.put("m", memoryview(b"view"))
    await storage.put("ba", bytearray(b"array"))
    await storage.put("empty", b"")
    assert [await storage.get(k) for k in ("m", "ba", "empty")] == [b"view", b"array", b""]
    await storage.put("chunks", [b"a", b"b", b"c"])
    assert await storage.get("chunks") == b"abc"


async def test_missing_objects_are_not_found(storage: Storage) -> None:
    with pytest.raises(errors.NotFoundError):
        await storage.get("nope")
    with pytest.raises(errors.NotFoundError):
        await storage.head("nope/deeper")
    await storage.delete("nope")  # deleting a missing key is fine (as on S3)
    with pytest.raises(errors.NotFoundError):
        await storage.copy("nope", "dst")


async def test_overwrite_replaces_and_changes_the_etag(storage: Storage) -> None:
    first = await storage.put("k", b"one")
    second = await storage.put("k", b"two")
    assert first.etag != second.etag
    assert await storage.get("k") == b"two"


async def test_if_none_match_creates_only_if_absent(storage: Storage) -> None:
    await storage.put("log/00000.json", b"first", if_none_match=True)
    with pytest.raises(errors.PreconditionFailedError):
        await storage.put("log/00000.json", b"second", if_none_match=True)
    assert await storage.get("log/00000.json") == b"first"


async def test_if_match_is_compare_and_swap(storage: Storage) -> None:
    v1 = await storage.put("state", b"1")
    v2 = await storage.put("state", b"2", if_match=v1.etag)
    with pytest.raises(errors.PreconditionFailedError):
        await storage.put("state", b"3", if_match=v1.etag)  # stale
    assert await storage.get("state") == b"2"
    assert (await storage.head("state")).etag == v2.etag
    with pytest.raises(errors.PreconditionFailedError):
        await storage.put("absent", b"x", if_match=v2.etag)
    with pytest.raises(errors.NotFoundError):
        await storage.get("absent")


async def test_racing_creators_have_exactly_one_winner(storage: Storage) -> None:
    async def create(n: int) -> bool:
        try:
            await storage.put("race/next", b"writer %d" % n, if_none_match=True)
        except errors.PreconditionFailedError:
            return False
        return True

    results = await asyncio.gather(*(create(n) for n in range(4)))
    assert sum(results) == 1
    assert await storage.get("race/next") == b"writer %d" % results.index(True)


async def test_compare_and_swap_loses_no_update(storage: Storage) -> None:
    await storage.put("counter", b"0")

    async def increment(times: int) -> None:
        for _ in range(times):
            while True:
                info = await storage.head("counter")
                value = int(await storage.get("counter"))
                try:
                    await storage.put("counter", b"%d" % (value + 1), if_match=info.etag)
                    break
                except errors.PreconditionFailedError:
                    continue

    await asyncio.gather(*(increment(3) for _ in range(4)))
    assert await storage.get("counter") == b"12"


async def test_list_by_prefix_in_key_order(storage: Storage) -> None:
    for key in ("b/2", "a/1", "a/10", "a/2", "ab", "c"):
        await storage.put(key, key.encode())
    assert await _keys(storage) == ["a/1", "a/10", "a/2", "ab", "b/2", "c"]
    assert await _keys(storage, "a/") == ["a/1", "a/10", "a/2"]
    assert await _keys(storage, "a") == ["a/1", "a/10", "a/2", "ab"]
    assert await _keys(storage, "a/1") == ["a/1", "a/10"]
    assert await _keys(storage, "zzz") == []
    for key in ("obj/0", "obj/00", "obj/0.json", "obj/1", "obj/-"):
        await storage.put(key, b"x")
    # a prefix ending in "0": its start-after would be "obj//" (an empty path segment)
    assert await _keys(storage, "obj/0") == ["obj/0", "obj/0.json", "obj/00"]
    assert await _keys(storage, "obj/") == ["obj/-", "obj/0", "obj/0.json", "obj/00",
                                            "obj/1"]
    infos = [info async for info in storage.list("b/")]
    assert infos[0].size == 3 and infos[0].etag == (await storage.head("b/2")).etag


async def test_delete_and_copy(storage: Storage) -> None:
    await storage.put("src", b"payload")
    copied = await storage.copy("src", "dst/copy")
    assert await storage.get("dst/copy") == b"payload" and copied.size == 7
    await storage.put("src", b"changed")
    assert await storage.get("dst/copy") == b"payload"  # an independent object
    await storage.delete("src")
    assert await _keys(storage) == ["dst/copy"]


async def test_streaming_writer_publishes_whole_or_nothing(storage: Storage,
                                                          pending_uploads: Uploads) -> None:
    chunk = os.urandom(MiB)
    async with storage.open_writer("stream/big", if_none_match=True) as writer:
        for _ in range(12):  # 12 MiB: a multipart upload on S3 (5 MiB parts)
            await writer.write(chunk)
    assert await storage.get("stream/big") == chunk * 12
    assert (await storage.head("stream/big")).size == 12 * MiB

    with pytest.raises(RuntimeError):
        async with storage.open_writer("stream/failed") as writer:
            for _ in range(12):
                await writer.write(chunk)
            raise RuntimeError("the producer failed")
    with pytest.raises(errors.NotFoundError):
        await storage.head("stream/failed")

    writer = storage.open_writer("stream/aborted")
    await writer.write(chunk * 7)
    await writer.abort()
    await writer.abort()  # idempotent
    with pytest.raises(errors.NotFoundError):
        await storage.head("stream/aborted")
    with pytest.raises(errors.PreconditionFailedError):
        async with storage.open_writer("stream/big", if_none_match=True) as writer:
            await writer.write(chunk * 6)
    assert await storage.get("stream/big") == chunk * 12
    assert await pending_uploads() == []
    assert await _keys(storage) == ["stream/big"]


async def test_large_put_and_get(storage: Storage, pending_uploads: Uploads) -> None:
    data = os.urandom(17 * MiB + 123)  # multipart on S3 (threshold 5 MiB), ranged get
    info = await storage.put("large", data)
    assert info.size == len(data)
    assert await storage.get("large") == data
    assert await storage.get("large", byte_range=(5 * MiB - 3, 5 * MiB + 3)) == \
        data[5 * MiB - 3:5 * MiB + 3]
    assert await pending_uploads() == []


async def _chunks(n: int, fail_at: int | None = None,
                  gate: asyncio.Event | None = None) -> AsyncIterator[bytes]:
    for i in range(n):
        if i == fail_at:
            raise OSError("the source broke")
        if gate is not None and i == 8:
            gate.set()
            await asyncio.Event().wait()  # hang until cancelled
        yield bytes([i]) * MiB


async def test_a_failed_or_cancelled_stream_leaves_nothing(storage: Storage,
                                                           pending_uploads: Uploads) -> None:
    with pytest.raises(OSError, match="source broke"):
        await storage.put("broken", _chunks(20, fail_at=11))
    gate = asyncio.Event()
    task = asyncio.create_task(storage.put("cancelled", _chunks(20, gate=gate)))
    await gate.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _keys(storage) == []
    assert await pending_uploads() == []


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "..", "a//b", "./x", "a/.", "x\x00y",
                                 ".aiostore.lock", "d/f.aiostore-tmp", "k" * 1025])
async def test_invalid_keys_are_refused(storage: Storage, key: str) -> None:
    with pytest.raises(errors.InvalidKeyError):
        await storage.put(key, b"x")
    with pytest.raises(errors.InvalidKeyError):
        await storage.get(key)
    assert await _keys(storage) == []


async def test_bad_arguments(storage: Storage) -> None:
    with pytest.raises(errors.InvalidTypeError):
        await storage.put(42, b"x")  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidArgumentError):
        await storage.get("k", byte_range=(5, 2))
    with pytest.raises(errors.InvalidArgumentError):
        await storage.get("k", byte_range=(-1, None))


async def test_closed_storage_refuses(storage_url: str, storage_options: dict[str, Any]) -> None:
    st = aiostore.open_storage(storage_url, **storage_options)
    async with st:
        await st.put("k", b"v")
    with pytest.raises(errors.ClosedError):
        await st.get("k")
