"""Shared fixtures: every async test marked ``anyio`` runs on asyncio, uvloop and trio."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aiostore._io.base import use_fs
from aiostore._io.faulty import FaultyFileSystem

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
