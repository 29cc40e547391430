"""``PosixFileSystem.pread_nowait`` never returns a short read (issue 11).

``preadv(..., RWF_NOWAIT)`` stops at the first page that is not in the page cache and returns
what it got: a short count that is not the end of the file. ``pread_nowait`` must answer only
with every requested byte (or the same bytes ``os.pread`` returns when the end of the file cuts
the range), and None otherwise.

The page-cache states are made by the test: drop the file from the cache, then read back the
wanted pages one at a time through a descriptor with ``POSIX_FADV_RANDOM`` (no read-ahead).
``POSIX_FADV_DONTNEED`` on a small range alone is not enough everywhere: it only drops whole
folios, and a file written in one go may sit in the cache as large folios. Each test first
checks with a raw ``RWF_NOWAIT`` read that the state it needs was really made, and skips if
the file system cannot produce it (tmpfs, for one, has no page cache to drop).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable
from pathlib import Path

import pytest

from aiostore._io.posix import PosixFileSystem

PAGE = os.sysconf("SC_PAGE_SIZE")
MiB = 1 << 20

pytestmark = pytest.mark.skipif(
    not hasattr(os, "RWF_NOWAIT") or not hasattr(os, "posix_fadvise"),
    reason="needs RWF_NOWAIT and posix_fadvise (Linux)")


def _write(path: Path, size: int) -> bytes:
    data = random.Random(size).randbytes(size)
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())  # clean pages: they can be dropped
    return data


def _cache_only(path: Path, pages: Iterable[int]) -> None:
    """Leave exactly ``pages`` of the file in the page cache (as far as the kernel allows)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        # a blocking read of everything first: read-ahead still in flight (a RWF_NOWAIT miss
        # starts some) holds its pages locked, and DONTNEED skips them
        os.pread(fd, os.fstat(fd).st_size, 0)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        for page in pages:
            os.pread(fd, PAGE, page * PAGE)
    finally:
        os.close(fd)


def _raw_nowait(fd: int, size: int, offset: int) -> int | None:
    """What ``preadv(RWF_NOWAIT)`` itself returns: the count, or None for EAGAIN."""
    try:
        return os.preadv(fd, [bytearray(size)], offset, os.RWF_NOWAIT)
    except BlockingIOError:
        return None


def test_part_of_the_range_cached_is_none_or_all_of_it(tmp_path: Path) -> None:
    path = tmp_path / "f"
    data = _write(path, MiB)
    fs = PosixFileSystem()
    fd = fs.open(str(path), os.O_RDONLY)
    try:
        fs.pread(fd, MiB, 0)  # all cached, then a middle range dropped (DONTNEED alone)
        os.posix_fadvise(fd, 2 * PAGE, 64 * PAGE, os.POSIX_FADV_DONTNEED)
        if _raw_nowait(fd, 2 * PAGE, PAGE) != PAGE:
            _cache_only(path, range(2))  # large folios: drop the lot, bring pages 0-1 back
        if _raw_nowait(fd, 2 * PAGE, PAGE) != PAGE:
            pytest.skip("could not leave page 1 cached and page 2 not on this file system")
        _cache_only(path, range(2))  # again: the probe may have started read-ahead
        got = fs.pread_nowait(fd, 2 * PAGE, PAGE)  # page 1 cached, page 2 not
        assert got is None or got == data[PAGE:3 * PAGE], (
            f"a short read of {len(got)} bytes for {2 * PAGE} requested")
        # whatever it answered, the blocking read has every byte
        assert fs.pread(fd, 2 * PAGE, PAGE) == data[PAGE:3 * PAGE]
    finally:
        fs.close(fd)


def test_fully_cached_range_is_served(tmp_path: Path) -> None:
    path = tmp_path / "f"
    data = _write(path, MiB)
    fs = PosixFileSystem()
    fd = fs.open(str(path), os.O_RDONLY)
    try:
        fs.pread(fd, MiB, 0)
        if _raw_nowait(fd, 2 * PAGE, PAGE) != 2 * PAGE:
            pytest.skip("RWF_NOWAIT reads are refused here even from the page cache")
        assert fs.pread_nowait(fd, 2 * PAGE, PAGE) == data[PAGE:3 * PAGE]
        assert fs.pread_nowait(fd, 100, 12345) == data[12345:12445]
    finally:
        fs.close(fd)


@pytest.mark.parametrize(("size", "offset"), [
    (8192, 8192),  # the end of the file cuts the range: a tail of 1808 bytes
    (8192, 10000),  # starts exactly at the end of the file
    (8192, 20000),  # starts past it
    (1, 9999),  # the last byte
    (10000, 0),  # the whole file, exactly
    (10001, 0),  # the whole file and one byte more
])
def test_at_the_end_of_the_file_it_agrees_with_pread(tmp_path: Path, size: int,
                                                      offset: int) -> None:
    path = tmp_path / "f"
    _write(path, 10000)
    fs = PosixFileSystem()
    fd = fs.open(str(path), os.O_RDONLY)
    try:
        expected = os.pread(fd, size, offset)  # (and everything is cached now)
        got = fs.pread_nowait(fd, size, offset)
        assert got is None or got == expected, (
            f"{len(got)} bytes where os.pread returns {len(expected)}")
        assert fs.pread(fd, size, offset) == expected
    finally:
        fs.close(fd)


def test_random_ranges_over_random_cache_holes(tmp_path: Path) -> None:
    """Any range over a file with holes in its page cache, ending anywhere (also past the
    end of the file): None, or exactly the bytes ``os.pread`` returns."""
    path = tmp_path / "f"
    size = 48 * PAGE + 1234  # a partial last page
    _write(path, size)
    pages = -(-size // PAGE)
    rng = random.Random(11)
    fs = PosixFileSystem()
    fd = fs.open(str(path), os.O_RDONLY)
    partial = answered = 0
    try:
        for _ in range(12):
            cached = [p for p in range(pages) if rng.random() < 0.5]
            for _ in range(12):
                _cache_only(path, cached)
                offset = rng.randrange(size + PAGE)
                n = rng.randint(1, 4 * PAGE)
                raw = _raw_nowait(fd, n, offset)
                _cache_only(path, cached)  # (the probe may have started read-ahead)
                got = fs.pread_nowait(fd, n, offset)
                expected = os.pread(fd, n, offset)
                assert got is None or got == expected, (
                    f"pread_nowait({n}, {offset}) returned {len(got)} bytes, "
                    f"os.pread {len(expected)}")
                partial += raw is not None and raw < len(expected)
                answered += got is not None
    finally:
        fs.close(fd)
    if not partial:
        pytest.skip("no partly cached range was produced on this file system")
    assert answered  # and the fast path still serves what is cached
