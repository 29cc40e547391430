"""S3 specifics on a real server: credentials, missing buckets, unreachable endpoints and leaks
through both backends; retries of transient failures and conditional writes whose response was
lost through the aiobotocore backend (its client's methods are wrapped; the obstore backend's
are in test_obstore.py, injected on the wire)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

import aiostore
from aiostore import errors
from aiostore.storage.obstore_s3 import ObstoreStorage
from aiostore.storage.s3 import S3Storage

pytestmark = pytest.mark.asyncio


def _client_error(code: str, status: int) -> Exception:
    from botocore.exceptions import ClientError

    error: Exception = ClientError({"Error": {"Code": code, "Message": "injected"},
                                    "ResponseMetadata": {"HTTPStatusCode": status}}, "Injected")
    return error


class Faults:
    """Wraps one client method: ``plan`` is a list of actions for successive calls —
    "ok", "fail-before" (raise without sending), "lose-response" (send, then raise as if the
    connection dropped), or an exception to raise."""

    def __init__(self, st: S3Storage, method: str, plan: list[Any]) -> None:
        self.calls = 0
        client = st._client
        assert client is not None
        real: Callable[..., Awaitable[Any]] = getattr(client, method)
        self.plan = plan

        async def wrapped(**kwargs: Any) -> Any:
            step = self.plan[self.calls] if self.calls < len(self.plan) else "ok"
            self.calls += 1
            if step == "fail-before":
                raise ConnectionResetError("injected: reset before sending")
            if isinstance(step, Exception):
                raise step
            result = await real(**kwargs)
            if step == "lose-response":
                raise ConnectionResetError("injected: the response was lost")
            return result

        setattr(client, method, wrapped)


@pytest_asyncio.fixture
async def s3(s3_bucket: str, s3_options: dict[str, Any]) -> AsyncIterator[S3Storage]:
    async with aiostore.open_storage(f"s3://{s3_bucket}", backend="aiobotocore",
                                     **s3_options) as st:
        assert isinstance(st, S3Storage)
        yield st


async def test_a_lost_response_of_a_conditional_put_is_resolved_not_retried(s3: S3Storage
                                                                             ) -> None:
    faults = Faults(s3, "put_object", ["lose-response"])
    info = await s3.put("log/0.json", b"mine", if_none_match=True)  # our write did land
    assert faults.calls == 1 and info.size == 4
    assert await s3.get("log/0.json") == b"mine"

    Faults(s3, "put_object", ["fail-before", "ok"])
    await s3.put("log/1.json", b"mine", if_none_match=True)  # never sent: safely retried
    assert await s3.get("log/1.json") == b"mine"

    await s3.put("log/2.json", b"theirs")
    Faults(s3, "put_object", ["fail-before"])
    with pytest.raises(errors.PreconditionFailedError):  # someone else's object is there
        await s3.put("log/2.json", b"mine", if_none_match=True)
    assert await s3.get("log/2.json") == b"theirs"

    v1 = await s3.head("log/2.json")
    Faults(s3, "put_object", ["lose-response"])
    await s3.put("log/2.json", b"swapped", if_match=v1.etag)
    assert await s3.get("log/2.json") == b"swapped"


async def test_a_lost_completion_of_a_multipart_upload_is_resolved(s3: S3Storage) -> None:
    s3.options.multipart_threshold = s3.options.part_size = 5 << 20
    Faults(s3, "complete_multipart_upload", ["lose-response"])
    data = bytes(range(256)) * (48 << 10)  # 12 MiB
    await s3.put("big", data, if_none_match=True)
    assert await s3.get("big") == data


async def test_transient_errors_are_retried(s3: S3Storage) -> None:
    await s3.put("k", b"v")
    faults = Faults(s3, "get_object", [_client_error("SlowDown", 503),
                                       _client_error("InternalError", 500), "ok"])
    assert await s3.get("k") == b"v"
    assert faults.calls == 3
    Faults(s3, "get_object", [_client_error("SlowDown", 503)] * 10)
    with pytest.raises(errors.StorageError):
        await s3.get("k")
    Faults(s3, "put_object", [_client_error("AccessDenied", 403)])
    with pytest.raises(errors.AccessDeniedError):  # not transient: no retry
        await s3.put("k2", b"v")


BACKENDS = pytest.mark.parametrize("s3_backend", ["obstore", "aiobotocore"])


@BACKENDS
async def test_bad_credentials_are_access_denied(s3_bucket: str, s3_options: dict[str, Any],
                                                 s3_backend: str) -> None:
    options = dict(s3_options, aws_secret_access_key="wrong", backend=s3_backend)
    async with aiostore.open_storage(f"s3://{s3_bucket}", **options) as st:
        with pytest.raises(errors.AccessDeniedError):
            await st.put("k", b"v")
        with pytest.raises(errors.AccessDeniedError):
            await st.get("k")


@BACKENDS
async def test_a_missing_bucket_is_a_clear_error(s3_options: dict[str, Any],
                                                 s3_backend: str) -> None:
    async with aiostore.open_storage("s3://no-such-bucket-here/x", backend=s3_backend,
                                     **s3_options) as st:
        with pytest.raises(errors.BucketNotFoundError, match="no such bucket"):
            await st.get("k")
        with pytest.raises(errors.BucketNotFoundError):
            await st.head("k")
        with pytest.raises(errors.BucketNotFoundError):
            _ = [info async for info in st.list()]
        with pytest.raises(errors.BucketNotFoundError):
            await st.delete("k")
        # (no put here: SeaweedFS creates a missing bucket on PUT, where AWS says NoSuchBucket)


@BACKENDS
async def test_an_unreachable_endpoint_is_storage_unavailable(s3_options: dict[str, Any],
                                                              s3_backend: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    options = dict(s3_options, endpoint_url=f"http://127.0.0.1:{port}", retries=2,
                   backend=s3_backend)
    async with aiostore.open_storage("s3://bucket", **options) as st:
        with pytest.raises(errors.StorageUnavailableError):
            await st.get("k")
        with pytest.raises(errors.StorageUnavailableError):
            await st.put("k", b"v", if_none_match=True)


@BACKENDS
async def test_options_are_validated(s3_backend: str) -> None:
    with pytest.raises(errors.InvalidArgumentError, match=r"unknown storage_options \['endp"):
        aiostore.open_storage("s3://b", endpoint="http://x", backend=s3_backend)
    with pytest.raises(errors.InvalidArgumentError, match="part_size"):
        aiostore.open_storage("s3://b", part_size=1024, backend=s3_backend)
    with pytest.raises(errors.InvalidArgumentError, match="addressing_style"):
        aiostore.open_storage("s3://b", addressing_style="sideways", backend=s3_backend)
    with pytest.raises(errors.InvalidArgumentError, match="bucket"):
        aiostore.open_storage("s3:///key", backend=s3_backend)
    with pytest.raises(errors.InvalidArgumentError, match="region_name"):
        aiostore.open_storage("s3://b", region_name=3, backend=s3_backend)
    with pytest.raises(errors.InvalidArgumentError, match="unknown S3 backend 'boto'"):
        aiostore.open_storage("s3://b", backend="boto")
    with pytest.raises(errors.InvalidArgumentError, match="no backend"):
        aiostore.open_storage("/tmp/x", backend=s3_backend)


async def test_the_default_backend_is_obstore(s3_bucket: str, s3_options: dict[str, Any]
                                              ) -> None:
    async with aiostore.open_storage(f"s3://{s3_bucket}", **s3_options) as st:
        assert isinstance(st, ObstoreStorage)
    async with aiostore.open_storage(f"s3://{s3_bucket}", backend="aiobotocore",
                                     **s3_options) as st:
        assert isinstance(st, S3Storage)


async def test_a_leaked_storage_warns(s3_bucket: str, s3_options: dict[str, Any]) -> None:
    obstore_st = aiostore.open_storage(f"s3://{s3_bucket}", **s3_options)
    await obstore_st.put("k", b"v")
    with pytest.warns(ResourceWarning, match="never closed"):
        del obstore_st
    st = aiostore.open_storage(f"s3://{s3_bucket}", backend="aiobotocore", **s3_options)
    await st.put("k", b"v")  # opens the client on first use
    client_cm = st._client_cm  # type: ignore[attr-defined]
    with pytest.warns(ResourceWarning, match="never closed"):
        del st  # (the last reference: CPython finalises it here)
    await client_cm.__aexit__(None, None, None)
    await asyncio.sleep(0)

