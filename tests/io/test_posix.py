"""The real file system's primitives: full writes, no-clobber publish, hole punching, locks."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest

from aiostore._io.posix import PosixFileSystem


def test_pwritev_writes_more_buffers_than_iov_max(tmp_path: Path) -> None:
    fs = PosixFileSystem()
    fd = fs.open(str(tmp_path / "f"), os.O_RDWR | os.O_CREAT)
    try:
        buffers = [bytes([i % 256]) * 7 for i in range(3000)]
        fs.pwritev(fd, buffers, 10)
        assert fs.pread(fd, 3000 * 7, 10) == b"".join(buffers)
        assert fs.fstat(fd).st_size == 10 + 3000 * 7
    finally:
        fs.close(fd)


@pytest.mark.parametrize("use_renameat2", [True, False], ids=["renameat2", "link"])
def test_rename_noreplace_has_exactly_one_winner(tmp_path: Path, use_renameat2: bool) -> None:
    fs = PosixFileSystem()
    fs._renameat2_ok = fs._renameat2_ok and use_renameat2
    target = str(tmp_path / "target")
    for round_ in range(20):
        sources = []
        for i in range(8):
            src = str(tmp_path / f"src{round_}-{i}")
            Path(src).write_bytes(f"{i}".encode())
            sources.append(src)
        wins: list[str] = []
        losses: list[int] = []
        barrier = threading.Barrier(8)

        def race(src: str, barrier: threading.Barrier = barrier, wins: list[str] = wins,
                 losses: list[int] = losses) -> None:
            barrier.wait()
            try:
                fs.rename_noreplace(src, target)
                wins.append(src)
            except FileExistsError as exc:
                losses.append(exc.errno or 0)

        threads = [threading.Thread(target=race, args=(s,)) for s in sources]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(wins) == 1 and losses == [errno.EEXIST] * 7
        winner = wins[0]
        assert Path(target).read_bytes() == winner.rsplit("-", 1)[1].encode()
        os.unlink(target)
        for s in sources:
            if s != winner:
                assert Path(s).exists()  # losers keep their source
                os.unlink(s)


def test_punch_hole_keeps_size_and_other_bytes(tmp_path: Path) -> None:
    fs = PosixFileSystem()
    path = tmp_path / "holey"
    fd = fs.open(str(path), os.O_RDWR | os.O_CREAT)
    try:
        fs.write(fd, b"a" * (1 << 20) + b"b" * (1 << 20))
        fs.fsync(fd)
        blocks_before = fs.fstat(fd).st_blocks
        if not fs.punch_hole(fd, 0, 1 << 20):
            pytest.skip("file system without FALLOC_FL_PUNCH_HOLE")
        st = fs.fstat(fd)
        assert st.st_size == 2 << 20
        assert st.st_blocks < blocks_before
        assert fs.pread(fd, 16, 0) == b"\0" * 16
        assert fs.pread(fd, 16, 1 << 20) == b"b" * 16
    finally:
        fs.close(fd)


def test_lock_is_exclusive_across_descriptors(tmp_path: Path) -> None:
    fs = PosixFileSystem()
    a = fs.open(str(tmp_path / "LOCK"), os.O_RDWR | os.O_CREAT)
    b = fs.open(str(tmp_path / "LOCK"), os.O_RDWR)
    try:
        fs.lock(a)
        with pytest.raises(BlockingIOError):
            fs.lock(b)
        fs.close(a)
        a = -1
        fs.lock(b)  # released when the holder's descriptor closes
    finally:
        if a >= 0:
            fs.close(a)
        fs.close(b)


def test_read_file_and_fsync_dir(tmp_path: Path) -> None:
    fs = PosixFileSystem()
    (tmp_path / "f").write_bytes(b"x" * 3_000_000)
    assert fs.read_file(str(tmp_path / "f")) == b"x" * 3_000_000
    fs.fsync_dir(str(tmp_path))
    with pytest.raises(NotADirectoryError):
        fs.fsync_dir(str(tmp_path / "f"))
