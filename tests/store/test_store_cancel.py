"""Cancellation: a set cancelled before its publish changes nothing a reader can see (whole or
streamed, local or S3); a get cancelled mid-download leaves no cache entry."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

import aiostore

pytestmark = pytest.mark.anyio


class Slow:
    """An object only :class:`SlowHandler` takes."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload


class SlowHandler:
    """``.slow`` files; encoding blocks (in its worker thread) until ``release`` is set. With
    ``stream=True`` it encodes through the streaming path and, after its first chunk, waits
    for the set to be cancelled (checking for it, as a frame encoder does between batches)."""

    extensions = (".slow",)
    priority = 50

    def __init__(self, stream: bool) -> None:
        self.stream = stream
        self.entered = threading.Event()
        self.release = threading.Event()

    def can_handle(self, obj: object) -> bool:
        return isinstance(obj, Slow)

    def dumps(self, obj: object, ext: str) -> bytes:
        assert isinstance(obj, Slow)
        self.entered.set()
        self.release.wait(10)
        return obj.payload

    def loads(self, data: bytes, ext: str) -> object:
        return Slow(data)

    def streams(self, obj: object, ext: str) -> bool:
        return self.stream

    def encode_stream(self, obj: object, ext: str, sink: Callable[[bytes], None],
                      options: object, check: Callable[[], None]) -> None:
        assert isinstance(obj, Slow)
        sink(obj.payload[:1000])
        self.entered.set()
        for _ in range(2000):  # until the set is cancelled (check raises), at most 10 s
            check()
            time.sleep(0.005)
        sink(obj.payload[1000:])


async def _wait(event: threading.Event) -> None:
    with anyio.fail_after(10):
        while not event.is_set():  # noqa: ASYNC110 - set by a worker thread
            await anyio.sleep(0.005)


def _tree(root: str) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file())


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_a_set_cancelled_before_its_publish_changes_nothing(
        stream: bool, root: str, options: dict[str, Any]) -> None:
    handler = SlowHandler(stream)
    async with aiostore.Store(root, storage_options=options) as store:
        store.register_handler(handler)
        await store.set("doc", {"v": "old"})  # doc.json
        payload = b"x" * (12 << 20)  # streamed: a multipart upload on S3

        async with anyio.create_task_group() as tg:
            tg.start_soon(store.set, "doc", Slow(payload))
            await _wait(handler.entered)
            tg.cancel_scope.cancel()
            handler.release.set()  # (the set waits for its worker thread to stop)

        # one whole object: the old one — or, where the encoder's thread could not be
        # abandoned (trio waits for it), the new one, published, with the replace completed
        value = await store.get("doc")
        keys = [i.key async for i in store.storage.list()]
        if isinstance(value, Slow):
            assert value.payload == payload and keys == ["doc.slow"]
        else:
            assert value == {"v": "old"}
            assert "doc.slow" not in keys and "doc.json" in keys
        if not root.startswith("s3://"):
            assert not [f for f in _tree(root) if f.endswith(".aiostore-tmp")]
        # the next set of the key cleans up after the cancelled one
        await store.set("doc", {"v": "new"})
        assert [i.key async for i in store.storage.list()] == ["doc.json"]
        assert await store.get("doc") == {"v": "new"}


async def test_a_get_cancelled_mid_download_leaves_no_entry(
        s3_root: str, s3_store_options: dict[str, Any], tmp_path: Path) -> None:
    payload = bytes(range(256)) * (48 << 12)  # 12 MiB: ranged reads
    async with aiostore.Store(s3_root, storage_options=s3_store_options,
                              cache=tmp_path / "cache") as store, \
            aiostore.Store(s3_root, storage_options=s3_store_options) as other:
        await other.set("blob", payload)
        real_get = store.storage.get
        started = anyio.Event()

        async def stalled(key: str, **kwargs: Any) -> bytes:
            if kwargs.get("byte_range", (0, 0))[0] > 0:
                started.set()
                await anyio.sleep_forever()
            return await real_get(key, **kwargs)

        store.storage.get = stalled  # type: ignore[method-assign]
        async with anyio.create_task_group() as tg:
            tg.start_soon(store.get, "blob")
            await started.wait()
            tg.cancel_scope.cancel()
        assert not list((tmp_path / "cache").rglob("*.entry"))
        assert not list((tmp_path / "cache").rglob("*.aiostore-tmp"))
        store.storage.get = real_get  # type: ignore[method-assign]
        assert await store.get("blob") == payload
