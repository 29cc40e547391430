"""The obstore backend's specifics on a real server: lost answers of conditional and multipart
writes (faults injected on the wire by a proxy), retries, cancellation with parts in flight,
asyncio/uvloop only."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

import aiostore
from aiostore import errors
from aiostore.storage.obstore_s3 import ObstoreStorage
from aiostore.testing import SeaweedFS
from tests.conftest import wait_until
from tests.storage.faultproxy import FaultProxy

MiB = 1 << 20
SMALL = {"multipart_threshold": 5 * MiB, "part_size": 5 * MiB, "max_concurrency": 2}


@pytest.fixture
def proxy(s3_server: SeaweedFS) -> Iterator[FaultProxy]:
    with FaultProxy(s3_server.endpoint_url) as p:
        yield p


@pytest_asyncio.fixture
async def st(s3_bucket: str, s3_options: dict[str, Any], proxy: FaultProxy
             ) -> AsyncIterator[ObstoreStorage]:
    """An obstore storage that reaches the server through ``proxy``."""
    options = dict(s3_options, endpoint_url=proxy.endpoint_url, **SMALL)
    async with aiostore.open_storage(f"s3://{s3_bucket}/p", **options) as storage:
        assert isinstance(storage, ObstoreStorage)
        yield storage


async def _uploads(server: SeaweedFS, bucket: str) -> list[str]:
    async with server.client() as s3:
        response = await s3.list_multipart_uploads(Bucket=bucket)
    return [u["Key"] for u in response.get("Uploads") or []]


@pytest.mark.parametrize("fault", ["forward-then-503", "lose"])
@pytest.mark.asyncio
async def test_a_create_that_landed_is_reported_as_ours(st: ObstoreStorage, proxy: FaultProxy,
                                                        fault: str) -> None:
    # forward-then-503: object_store retries the PUT and gets 412 (its own object);
    # lose: the outcome is unknown. Both are settled by the token in the object.
    proxy.add("PUT", "/p/log/0.json", fault)
    info = await st.put("log/0.json", b"mine", if_none_match=True)
    assert info.size == 4 and info.etag == (await st.head("log/0.json")).etag
    assert await st.get("log/0.json") == b"mine"
    assert next(proxy.requests("PUT", "/p/log/0.json")) == fault
    with pytest.raises(errors.PreconditionFailedError):  # and a second create still loses
        await st.put("log/0.json", b"again", if_none_match=True)


@pytest.mark.parametrize("fault", ["forward-then-503", "lose"])
@pytest.mark.asyncio
async def test_a_swap_that_landed_is_reported_as_ours(st: ObstoreStorage, proxy: FaultProxy,
                                                      fault: str) -> None:
    v1 = await st.put("state", b"1")
    proxy.add("PUT", "/p/state", fault)
    v2 = await st.put("state", b"2", if_match=v1.etag)
    assert await st.get("state") == b"2" and v2.etag == (await st.head("state")).etag
    with pytest.raises(errors.PreconditionFailedError):
        await st.put("state", b"3", if_match=v1.etag)


@pytest.mark.asyncio
async def test_an_unsent_create_is_retried_and_another_writers_object_wins(
        st: ObstoreStorage, proxy: FaultProxy) -> None:
    proxy.add("PUT", "/p/a", "503")  # refused before the server saw it: retried, lands
    await st.put("a", b"mine", if_none_match=True)
    assert await st.get("a") == b"mine"
    await st.put("b", b"theirs")
    proxy.add("PUT", "/p/b", "503")
    with pytest.raises(errors.PreconditionFailedError):
        await st.put("b", b"mine", if_none_match=True)
    assert await st.get("b") == b"theirs"


@pytest.mark.asyncio
async def test_a_lost_multipart_completion_is_resolved(st: ObstoreStorage, proxy: FaultProxy,
                                                       s3_server: SeaweedFS,
                                                       s3_bucket: str) -> None:
    data = os.urandom(12 * MiB)
    proxy.add("POST", "uploadId=", "forward-then-503", "forward-then-503")
    info = await st.put("big", data)
    assert info.size == len(data)
    assert await st.get("big") == data
    assert next(proxy.requests("POST", "uploadId=")) == "forward-then-503"
    assert await _uploads(s3_server, s3_bucket) == []


@pytest.mark.asyncio
async def test_transient_errors_are_retried_then_reported(s3_bucket: str,
                                                          s3_options: dict[str, Any],
                                                          proxy: FaultProxy) -> None:
    options = dict(s3_options, endpoint_url=proxy.endpoint_url, retries=3)
    async with aiostore.open_storage(f"s3://{s3_bucket}", **options) as storage:
        await storage.put("k", b"v")
        proxy.add("GET", "/k", "503", "503")
        assert await storage.get("k") == b"v"
        assert list(proxy.requests("GET", "/k")) == ["503", "503", "ok"]
        proxy.add("GET", "/k", *["503"] * 3)
        with pytest.raises(errors.StorageError, match="503"):
            await storage.get("k")


async def _chunks(n: int, then_hang: bool) -> AsyncIterator[bytes]:
    for i in range(n):
        yield bytes([i]) * MiB
    if then_hang:
        await asyncio.Event().wait()  # the producer has more to say: never the last chunk


@pytest.mark.asyncio
async def test_cancelling_an_upload_with_parts_in_flight_aborts_it(
        st: ObstoreStorage, proxy: FaultProxy, s3_server: SeaweedFS, s3_bucket: str) -> None:
    proxy.add("PUT", "partNumber=", "hold", "hold")
    task = asyncio.ensure_future(st.put("held", _chunks(7, then_hang=True)))
    await wait_until(proxy.holding.is_set)  # a part is on the wire, held by the proxy
    assert await _uploads(s3_server, s3_bucket) == ["p/held"]
    task.cancel()
    proxy.release()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _uploads(s3_server, s3_bucket) == []
    with pytest.raises(errors.NotFoundError):
        await st.head("held")


@pytest.mark.asyncio
async def test_cancelling_after_the_last_chunk_finishes_the_upload(
        st: ObstoreStorage, proxy: FaultProxy, s3_server: SeaweedFS, s3_bucket: str) -> None:
    proxy.add("PUT", "partNumber=", "hold", "hold")
    task = asyncio.ensure_future(st.put("whole", _chunks(8, then_hang=False)))
    # both parts held: the last one is only sent after the last chunk was handed over
    await wait_until(lambda: proxy.held == 2)
    task.cancel()
    proxy.release()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await st.get("whole") == b"".join(bytes([i]) * MiB for i in range(8))
    assert await _uploads(s3_server, s3_bucket) == []


@pytest.mark.asyncio
async def test_a_failing_part_aborts_the_upload(st: ObstoreStorage, proxy: FaultProxy,
                                                s3_server: SeaweedFS, s3_bucket: str) -> None:
    proxy.add("PUT", "partNumber=2", *["503"] * 10)
    writer = st.open_writer("fails")
    with pytest.raises(errors.StorageError, match="503"):
        for _ in range(20):
            await writer.write(os.urandom(MiB))
        await writer.close()
    with pytest.raises(errors.ClosedError):
        await writer.write(b"more")
    assert await _uploads(s3_server, s3_bucket) == []
    with pytest.raises(errors.NotFoundError):
        await st.head("fails")


@pytest.mark.asyncio
async def test_a_conditional_multipart_write_goes_through_aiobotocore(st: ObstoreStorage,
                                                                      proxy: FaultProxy
                                                                      ) -> None:
    # object_store cannot send a condition with CompleteMultipartUpload
    data = os.urandom(11 * MiB)
    await st.put("cond", data, if_none_match=True)
    assert await st.get("cond") == data
    with pytest.raises(errors.PreconditionFailedError):
        await st.put("cond", data, if_none_match=True)
    complete = [t for m, t, _ in proxy.log if m == "POST" and "uploadId=" in t]
    assert len(complete) == 2  # both completions were sent, with the condition
    assert st._botocore is not None
    await st.aclose()
    assert st._botocore is None


@pytest.mark.asyncio
async def test_unbounded_ranges_and_prefixes(st: ObstoreStorage) -> None:
    data = os.urandom(11 * MiB + 5)  # three ranges of 5 MiB
    await st.put("r", data)
    assert await st.get("r", byte_range=(MiB, None)) == data[MiB:]
    assert await st.get("r", byte_range=(3, 6 * MiB)) == data[3:6 * MiB]
    for key in ("x/é", "x/a b", "x/%41", "x/a+b", "x/\u00ff", "y"):
        await st.put(key, key.encode())
        assert await st.get(key) == key.encode()
    assert [i.key async for i in st.list("x/")] == sorted(["x/é", "x/a b", "x/%41", "x/a+b",
                                                           "x/\u00ff"],
                                                          key=lambda k: k.encode())
    assert [i.key async for i in st.list("x/a")] == ["x/a b", "x/a+b"]


@pytest.mark.asyncio
async def test_one_client_per_configuration(s3_bucket: str, s3_options: dict[str, Any]) -> None:
    # writers on URIs open a storage per call: they reuse the client and its connections
    async with aiostore.open_storage(f"s3://{s3_bucket}", **s3_options) as a, \
            aiostore.open_storage(f"s3://{s3_bucket}/other", **s3_options) as b, \
            aiostore.open_storage(f"s3://{s3_bucket}", **dict(s3_options, retries=2)) as c:
        assert isinstance(a, ObstoreStorage) and isinstance(b, ObstoreStorage)
        assert isinstance(c, ObstoreStorage)
        assert a._store is b._store and c._store is not a._store
        await b.put("k", b"v")
        assert await a.get("other/k") == b"v"


def test_trio_is_refused_with_a_clear_error(s3_bucket: str, s3_options: dict[str, Any]) -> None:
    import trio

    async def main() -> None:
        async with aiostore.open_storage(f"s3://{s3_bucket}", **s3_options) as storage:
            await storage.get("k")

    with pytest.raises(errors.InvalidArgumentError, match="asyncio or uvloop"):
        trio.run(main)


def test_uvloop(s3_bucket: str, s3_options: dict[str, Any]) -> None:
    uvloop = pytest.importorskip("uvloop")

    async def main() -> None:
        options = dict(s3_options, **SMALL)
        async with aiostore.open_storage(f"s3://{s3_bucket}", **options) as storage:
            data = os.urandom(12 * MiB)
            await storage.put("u", data)
            assert await storage.get("u") == data
            await storage.put("c", b"1", if_none_match=True)
            with pytest.raises(errors.PreconditionFailedError):
                await storage.put("c", b"2", if_none_match=True)

    uvloop.run(main())


def test_concat_joins_any_buffers_into_bytes() -> None:
    from aiostore._io.base import Buffer
    from aiostore.storage.s3base import PIECE, concat, copy_pieces

    big = bytearray(range(256)) * (PIECE // 64 + 3)  # not a multiple of PIECE
    chunks: list[Buffer] = [b"head", big, memoryview(b"view"), memoryview(big)[5:PIECE + 7]]
    joined = concat(chunks)
    assert type(joined) is bytes and joined == b"".join(chunks)
    pieces = copy_pieces(big, 1000)
    assert all(type(p) is bytes for p in pieces) and b"".join(pieces) == big
    assert [len(p) for p in pieces[:-1]] == [1000] * (len(pieces) - 1)
    assert concat([b"only"]) == b"only"


EXITER = r"""
import asyncio, json, sys
import aiostore
async def main():
    async with aiostore.open_storage(sys.argv[1], **json.loads(sys.argv[2])) as st:
        await st.put("k", b"v")
        for _ in range(5):
            await asyncio.gather(*(st.head("k") for _ in range(50)))
asyncio.run(main())
"""


def test_processes_that_used_obstore_exit_cleanly(s3_bucket: str,
                                                  s3_options: dict[str, Any]) -> None:
    # without aiostore's atexit grace, obstore's native threads abort 10-50% of such processes
    # (SIGABRT while the interpreter finalizes)
    import json
    import subprocess
    import sys

    procs = [subprocess.Popen([sys.executable, "-c", EXITER, f"s3://{s3_bucket}",
                               json.dumps(s3_options)], stderr=subprocess.PIPE, text=True)
             for _ in range(10)]
    codes = [(p.wait(120), p.stderr.read() if p.stderr else "") for p in procs]
    for p in procs:
        if p.stderr:
            p.stderr.close()
    assert [c for c, _ in codes] == [0] * 10, codes
