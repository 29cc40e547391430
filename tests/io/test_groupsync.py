"""Directory fsyncs are shared by concurrent publishers (group commit)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from aiostore._io.groupsync import _barriers, sync_dir
from aiostore._io.posix import PosixFileSystem


class GatedFS(PosixFileSystem):
    """fsync_dir blocks until released, and counts calls."""

    def __init__(self, fail_first: bool = False) -> None:
        super().__init__()
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_first = fail_first

    def fsync_dir(self, path: str) -> None:
        self.calls += 1
        first = self.calls == 1
        self.entered.set()
        self.release.wait(5)
        if first and self.fail_first:
            raise OSError(5, "injected EIO")
        super().fsync_dir(path)


def _wait_for(cond: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.001)


def _run_waiters(fs: GatedFS, path: str, n: int) -> tuple[list[threading.Thread], list[object]]:
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(_try(fs, path))) for _ in range(n)]
    for t in threads:
        t.start()
    return threads, results


def _try(fs: GatedFS, path: str) -> object:
    try:
        sync_dir(fs, path)
        return "ok"
    except OSError as exc:
        return exc


def test_waiters_share_the_next_fsync(tmp_path: Path) -> None:
    fs = GatedFS()
    path = str(tmp_path)
    first, first_result = _run_waiters(fs, path, 1)
    fs.entered.wait(5)  # one fsync is running
    waiters, results = _run_waiters(fs, path, 10)
    _wait_for(lambda: _barriers[("dir", id(fs), path)].issued == 11)
    fs.release.set()
    for t in first + waiters:
        t.join(5)
    assert first_result == ["ok"] and results == ["ok"] * 10
    assert fs.calls == 2  # 11 publishers, 2 fsyncs


def test_a_failed_fsync_fails_every_publisher_it_covered(tmp_path: Path) -> None:
    fs = GatedFS(fail_first=True)
    path = str(tmp_path)
    first, first_result = _run_waiters(fs, path, 1)
    fs.entered.wait(5)
    fs.release.set()
    for t in first:
        t.join(5)
    assert isinstance(first_result[0], OSError)
    assert _try(fs, path) == "ok"  # a later rename gets a fresh fsync


@pytest.mark.parametrize("n", [1, 3])
def test_sequential_calls_each_fsync(tmp_path: Path, n: int) -> None:
    fs = GatedFS()
    fs.release.set()
    for _ in range(n):
        assert _try(fs, str(tmp_path)) == "ok"
    assert fs.calls == n
