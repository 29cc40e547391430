"""The ``storage`` fixture: the same contract tests over a local directory and a real S3 server
(SeaweedFS on 127.0.0.1, started once per session by ``s3_server``) through both S3 backends,
obstore (the default) and aiobotocore."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

import aiostore
from aiostore import Storage

#: small multipart settings, so that tests exercise multipart uploads with a few MiB
SMALL_PARTS = {"multipart_threshold": 5 << 20, "part_size": 5 << 20, "max_concurrency": 3}


#: the S3 transports, by the backend id the tests use
S3_BACKENDS = {"s3-obstore": "obstore", "s3-aiobotocore": "aiobotocore"}


@pytest.fixture(params=["local", *S3_BACKENDS])
def backend(request: pytest.FixtureRequest) -> str:
    """Which backend a contract test runs on: local, s3-obstore or s3-aiobotocore."""
    return str(request.param)


@pytest.fixture
def storage_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The root URL of a fresh, empty storage on ``backend``."""
    if backend == "local":
        return str(tmp_path / "root")
    bucket: str = request.getfixturevalue("s3_bucket")
    return f"s3://{bucket}/root"


@pytest.fixture
def storage_options(backend: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """The options ``open_storage`` needs for ``backend``."""
    if backend == "local":
        return {}
    options: dict[str, Any] = dict(request.getfixturevalue("s3_options"))
    options.update(SMALL_PARTS, backend=S3_BACKENDS[backend])
    return options


@pytest.fixture
def pending_uploads(backend: str, request: pytest.FixtureRequest
                    ) -> Callable[[], Awaitable[list[str]]]:
    """``await pending_uploads()``: the keys of multipart uploads left open in the test's bucket
    (asked with a separate client; always [] locally)."""
    if backend == "local":
        async def nothing() -> list[str]:
            return []

        return nothing
    server = request.getfixturevalue("s3_server")
    bucket: str = request.getfixturevalue("s3_bucket")

    async def left() -> list[str]:
        async with server.client() as s3:
            response = await s3.list_multipart_uploads(Bucket=bucket)
        return [u["Key"] for u in response.get("Uploads") or []]

    return left


@pytest_asyncio.fixture
async def storage(storage_url: str, storage_options: dict[str, Any]) -> AsyncIterator[Storage]:
    """An open storage on a fresh root, closed after the test."""
    async with aiostore.open_storage(storage_url, **storage_options) as st:
        yield st
