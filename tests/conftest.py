"""Shared fixtures: every async test marked ``anyio`` runs on asyncio, uvloop and trio.

S3: ``s3_server`` is one real SeaweedFS server for the session (started the first time a test
asks for it), ``s3_bucket`` a fresh, empty bucket on it for one test, ``s3_options`` the
connection options (endpoint, credentials, region, path addressing).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

# No test may reach beyond this machine: without credentials object_store would ask the
# instance metadata service (169.254.169.254); with this set, aiostore refuses instead.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

from aiostore._io.base import use_fs
from aiostore._io.faulty import FaultyFileSystem

if TYPE_CHECKING:
    from aiostore.testing import SeaweedFS

T = TypeVar("T")

BACKENDS: list[Any] = [
    pytest.param(("asyncio", {}), id="asyncio"),
    pytest.param(("trio", {}), id="trio"),
]
if sys.platform != "win32":
    BACKENDS.insert(1, pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"))


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    """asyncio, asyncio with uvloop, and trio."""
    return request.param


@pytest.fixture
def asyncio_only() -> Any:
    """For tests that use asyncio-specific APIs (native cancellation)."""
    return ("asyncio", {})


@pytest.fixture
def faulty(tmp_path: Path) -> Iterator[FaultyFileSystem]:
    """A fault-injecting file system rooted at ``tmp_path``, active for the test."""
    fs = FaultyFileSystem(tmp_path)
    with use_fs(fs):
        yield fs


def temp_files(directory: Path) -> list[str]:
    """aiostore temp files left in ``directory`` (recursively)."""
    found = []
    for dirpath, _, names in os.walk(directory):
        found += [os.path.join(dirpath, n) for n in names if n.endswith(".aiostore-tmp")]
    return found


async def wait_until(condition: Callable[[], bool], timeout: float = 10) -> None:
    """Poll ``condition`` (state changed by worker threads) until true; fail after ``timeout``."""
    import anyio

    with anyio.fail_after(timeout):
        while not condition():  # noqa: ASYNC110 - the state is changed by other threads
            await anyio.sleep(0.001)


class Gate:
    """Holds every call of one file-system method until released (wraps ``fs.inner``)."""

    def __init__(self, fs: FaultyFileSystem, method: str) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        real = getattr(fs.inner, method)

        def gated(*args: Any) -> Any:
            self.entered.set()
            self.release.wait(10)
            return real(*args)

        setattr(fs.inner, method, gated)


# --- S3 ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def s3_server() -> Iterator[SeaweedFS]:
    """One real S3 server (SeaweedFS ``weed mini`` on 127.0.0.1) for the whole session.

    Started only when a test asks for it (~0.9 s); its data lives in a temporary directory,
    which is deleted with the server at the end of the session (a kill: no graceful stop).
    """
    from aiostore.testing import SeaweedFS

    with SeaweedFS() as server:
        yield server


@pytest.fixture
def s3_options(s3_server: SeaweedFS) -> dict[str, str]:
    """``s3_server.storage_options()``: endpoint_url, credentials, region, path addressing."""
    return s3_server.storage_options()


def run_in_new_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a fresh asyncio loop in a helper thread.

    For sync fixtures: it leaves the test's own event loop (asyncio, uvloop or trio) alone.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=run, name="s3-fixture")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


async def _create_bucket(server: SeaweedFS, name: str) -> None:
    async with server.client() as s3:
        await s3.create_bucket(Bucket=name)


async def _delete_bucket(server: SeaweedFS, name: str) -> None:
    async with server.client() as s3:
        with contextlib.suppress(s3.exceptions.NoSuchBucket):  # the test deleted it
            await s3.delete_bucket(Bucket=name)  # SeaweedFS deletes a non-empty bucket too


@pytest.fixture
def s3_bucket(s3_server: SeaweedFS, request: pytest.FixtureRequest) -> Iterator[str]:
    """A new, empty bucket on ``s3_server`` (named after the test), deleted after the test.

    Deleting matters: every SeaweedFS bucket holds a volume of its own. The first write into
    a new bucket takes ~0.2 s (SeaweedFS grows that volume); later writes take a few ms.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{slug or 'test'}-{uuid.uuid4().hex[:12]}"
    run_in_new_loop(_create_bucket(s3_server, name))
    yield name
    run_in_new_loop(_delete_bucket(s3_server, name))
