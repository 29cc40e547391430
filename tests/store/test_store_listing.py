"""Resolution listings shared by concurrent resolutions in one directory: fewer requests, each
result from a listing that started after the request, a bounded shared listing, and a cancelled
leader that does not strand the others."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import aiostore
from aiostore.storage.base import ObjectInfo, Storage
from aiostore.store import listing as listing_mod
from aiostore.store.listing import Listings

pytestmark = pytest.mark.anyio


class SlowLists:
    """Wraps a storage's ``list``: records each prefix and holds every listing for ``delay``
    seconds before it reads (so that requests pile up behind it)."""

    def __init__(self, storage: Storage, delay: float = 0.05) -> None:
        self.storage = storage
        self.delay = delay
        self.prefixes: list[str] = []
        self.gate: anyio.Event | None = None
        real = storage.list

        async def slow(prefix: str = "") -> AsyncIterator[ObjectInfo]:
            self.prefixes.append(prefix)
            if self.gate is not None:
                await self.gate.wait()
            await anyio.sleep(self.delay)
            inner = real(prefix)
            try:
                async for info in inner:
                    yield info
            finally:
                await inner.aclose()  # type: ignore[attr-defined]

        storage.list = slow  # type: ignore[method-assign]


async def test_concurrent_resolutions_share_listings(tmp_path: Path) -> None:
    async with aiostore.open_storage(tmp_path) as st:
        for i in range(40):
            await st.put(f"dir/k{i:02d}.json", b"1")
        await st.put("dir/k07.yaml", b"1")
        await st.put("dir/k070.json", b"1")  # another stem, starting like k07
        await st.put("other/k00.json", b"1")
        lists = SlowLists(st)
        listings = Listings(st)
        results: dict[str, list[str]] = {}

        async def resolve(stem: str) -> None:
            results[stem] = [i.key for i in await listings.of(stem)]

        async with anyio.create_task_group() as tg:
            for i in range(40):
                tg.start_soon(resolve, f"dir/k{i:02d}")
            tg.start_soon(resolve, "other/k00")
        assert len(lists.prefixes) <= 4  # 41 resolutions: one alone per directory, then batches
        assert listings.requests == len(lists.prefixes)
        for i in range(40):
            # (a listing of "dir/k07." also returns k070: the caller filters by extension)
            expected = [f"dir/k{i:02d}.json"] + (["dir/k07.yaml"] if i == 7 else [])
            assert [k for k in results[f"dir/k{i:02d}"] if k != "dir/k070.json"] == expected
        assert results["other/k00"] == ["other/k00.json"]
        assert listings._dirs == {}


async def test_a_resolution_never_uses_a_listing_that_started_before_it(tmp_path: Path) -> None:
    async with aiostore.open_storage(tmp_path) as st:
        lists = SlowLists(st)
        lists.gate = anyio.Event()
        listings = Listings(st)
        seen: dict[str, list[str]] = {}

        async def resolve(stem: str) -> None:
            seen[stem] = [i.key for i in await listings.of(stem)]

        async with anyio.create_task_group() as tg:
            tg.start_soon(resolve, "d/a")  # its listing starts (held at the gate)
            await anyio.sleep(0.02)
            await st.put("d/b.json", b"1")  # written after that listing started...
            tg.start_soon(resolve, "d/b")  # ...so b waits for the next listing
            await anyio.sleep(0.02)
            lists.gate.set()
        assert seen == {"d/a": [], "d/b": ["d/b.json"]}
        assert lists.prefixes == ["d/a.", "d/b."]


async def test_a_shared_listing_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    monkeypatch.setattr(listing_mod, "SHARED_LIMIT", 5)
    async with aiostore.open_storage(tmp_path) as st:
        for i in range(20):
            await st.put(f"d/k{i:02d}.json", b"1")
        lists = SlowLists(st)
        lists.gate = anyio.Event()
        listings = Listings(st)
        seen: dict[str, list[str]] = {}

        async def resolve(stem: str) -> None:
            seen[stem] = [i.key for i in await listings.of(stem)]

        async with anyio.create_task_group() as tg:
            tg.start_soon(resolve, "d/k00")
            await anyio.sleep(0.02)
            for stem in ("d/k01", "d/k02", "d/k18", "d/k19"):
                tg.start_soon(resolve, stem)
            await anyio.sleep(0.02)
            lists.gate.set()
        assert seen == {f"d/k{i:02d}": [f"d/k{i:02d}.json"] for i in (0, 1, 2, 18, 19)}
        # alone; then one shared listing, cut after 5 objects (k00..k04): k18 and k19 alone
        assert lists.prefixes[:2] == ["d/k00.", "d/k"]
        assert sorted(lists.prefixes[2:]) == ["d/k18.", "d/k19."]


async def test_a_cancelled_leader_does_not_strand_its_batch(tmp_path: Path) -> None:
    async with aiostore.open_storage(tmp_path) as st:
        await st.put("d/b.json", b"1")
        lists = SlowLists(st)
        lists.gate = anyio.Event()
        listings = Listings(st)
        seen: dict[str, Any] = {}

        async def resolve(stem: str) -> None:
            seen[stem] = [i.key for i in await listings.of(stem)]

        async with anyio.create_task_group() as tg:
            tg.start_soon(resolve, "d/a")  # lists alone (held)
            await anyio.sleep(0.02)
            leader_scope = anyio.CancelScope()

            async def lead() -> None:
                with leader_scope:
                    await resolve("d/x")  # leads the next batch, then is cancelled

            tg.start_soon(lead)
            await anyio.sleep(0.02)
            tg.start_soon(resolve, "d/b")  # follows d/x's batch
            await anyio.sleep(0.02)
            leader_scope.cancel()
            await anyio.sleep(0.02)
            lists.gate.set()
        assert "d/x" not in seen
        assert seen["d/b"] == ["d/b.json"] and seen["d/a"] == []
        assert listings._dirs == {}


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_store_under_concurrency_lists_less(s3_root: str,
                                                    s3_store_options: dict[str, Any]) -> None:
    async with aiostore.Store(s3_root, storage_options=s3_store_options) as store:
        async with anyio.create_task_group() as tg:
            for i in range(64):
                tg.start_soon(store.set, f"runs/{i:02d}", {"i": i})
        assert store._listings.requests < 40
        values: dict[int, Any] = {}

        async def get(i: int) -> None:
            values[i] = await store.get(f"runs/{i:02d}")

        async with anyio.create_task_group() as tg:
            for i in range(64):
                tg.start_soon(get, i)
        assert values == {i: {"i": i} for i in range(64)}
