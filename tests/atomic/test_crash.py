"""Crash and I/O-error injection at every step of every writer.

For each scenario a clean run counts the state-changing calls; then, for every k, a fresh
directory is set up, the k-th call crashes the simulated machine (everything not fsynced is
lost) or fails with EIO, and the target must hold exactly the old or the new content — and the
new content whenever the write was acknowledged.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest

import aiostore
from aiostore import errors
from aiostore._io.base import use_fs
from aiostore._io.faulty import FaultyFileSystem, SimulatedCrash
from tests.conftest import temp_files

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]

OLD = b'{"version": "old"}'
NEW_BIG = b"n" * (3 << 20)  # several chunks for the streaming writer


async def _atomic_open(path: Path) -> None:
    async with aiostore.atomic_open(path, "wb", buffer_size=1 << 20) as f:
        for i in range(3):
            await f.write(NEW_BIG[i << 20:(i + 1) << 20])


async def _jsonl(path: Path) -> None:
    await aiostore.write_jsonl(path, ({"i": i} for i in range(2500)))


def _jsonl_content() -> bytes:
    return b"".join(b'{"i":%d}\n' % i for i in range(2500))


async def _frame(path: Path) -> None:
    import pyarrow as pa

    await aiostore.write(pa.table({"x": list(range(1000))}), path)


Scenario = tuple[str, str, Callable[[Path], Awaitable[None]], Callable[[Path], bool]]
SCENARIOS: list[Scenario] = [
    ("write_bytes", "f.json", lambda p: aiostore.write_bytes(p, b"new"),
     lambda p: p.read_bytes() == b"new"),
    ("write_json", "f.json", lambda p: aiostore.write_json(p, {"version": "new"}),
     lambda p: p.read_bytes() == b'{"version": "new"}'),
    ("no_clobber", "absent.json", lambda p: aiostore.write_bytes(p, b"new", overwrite=False),
     lambda p: p.read_bytes() == b"new"),
    ("nested_dirs", "a/b/c.json", lambda p: aiostore.write_bytes(p, b"new"),
     lambda p: p.read_bytes() == b"new"),
    ("atomic_open", "f.json", _atomic_open, lambda p: p.read_bytes() == NEW_BIG),
    ("jsonl", "f.json", _jsonl, lambda p: p.read_bytes() == _jsonl_content()),
    ("parquet", "f.parquet", _frame, lambda p: p.stat().st_size > 100),
]


def _setup(root: Path) -> None:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir()
    (root / "f.json").write_bytes(OLD)
    (root / "f.parquet").write_bytes(OLD)
    (root / "other").write_bytes(b"untouched")


def _check(root: Path, name: str, is_new: Callable[[Path], bool], acknowledged: bool) -> None:
    target = root / name
    existed = name in ("f.json", "f.parquet")
    if acknowledged:
        assert target.exists() and is_new(target), "an acknowledged write was lost"
    elif target.exists():
        assert target.read_bytes() == OLD or is_new(target), "torn target"
    else:
        assert not existed, "the old file went missing"
    assert (root / "other").read_bytes() == b"untouched"


async def _count_ops(root: Path, name: str, run: Callable[[Path], Awaitable[None]]) -> int:
    _setup(root)
    fs = FaultyFileSystem(root)
    with use_fs(fs):
        await run(root / name)
    return fs.mutations


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s[0] for s in SCENARIOS])
async def test_crash_at_every_step(tmp_path: Path, scenario: Scenario) -> None:
    _, name, run, is_new = scenario
    root = tmp_path / "root"
    total = await _count_ops(root, name, run)
    assert total >= 4
    for k in range(1, total + 2):
        _setup(root)
        fs = FaultyFileSystem(root, crash_at=k)
        acknowledged = False
        with use_fs(fs):
            try:
                await run(root / name)
                acknowledged = True
            except SimulatedCrash:
                pass
        assert acknowledged == (k > total)
        fs.crash()
        _check(root, name, is_new, acknowledged)
        # what a crash leaves behind is only ever our own temp files, which the sweep removes
        assert await aiostore.sweep_temp_files(root, older_than=timedelta(0),
                                               recursive=True) >= 0
        assert temp_files(root) == []
        _check(root, name, is_new, acknowledged)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s[0] for s in SCENARIOS])
async def test_io_error_at_every_step(tmp_path: Path, scenario: Scenario) -> None:
    _, name, run, is_new = scenario
    root = tmp_path / "root"
    _setup(root)
    probe = FaultyFileSystem(root)
    with use_fs(probe):
        await run(root / name)
    ops = [op for op, _ in probe.log]
    for k, op in enumerate(ops):
        _setup(root)
        fs = FaultyFileSystem(root)
        nth = ops[: k + 1].count(op)
        fs.fail(op, nth=nth, errno=errno.ENOSPC if op in ("write", "pwritev") else errno.EIO)
        with use_fs(fs), pytest.raises(errors.StorageError) as info:
            await run(root / name)
        after_publish = op == "fsync_dir" and k > ops.index("replace" if "replace" in ops
                                                            else "rename_noreplace")
        if after_publish:
            assert isinstance(info.value, errors.DurabilityError)
            assert is_new(root / name)
        else:
            _check(root, name, is_new, acknowledged=False)
        if op in ("fsync", "fdatasync", "fsync_dir"):
            assert isinstance(info.value, errors.DurabilityError)
        assert temp_files(root) == [], f"temp left after failing {op} #{nth}"
