"""The event loop is never blocked: no file-system call and no encoding runs on its thread.

This is the deterministic form of "a heartbeat sees no gap": every blocking call is checked to
run in a worker thread. The stall itself is measured in ``benchmarks/bench_writers.py``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import aiostore
from aiostore._io.base import use_fs
from aiostore._io.posix import PosixFileSystem
from aiostore.formats import encoders

pytestmark = pytest.mark.anyio


class ThreadCheckingFS(PosixFileSystem):
    """Records any file-system call made on the event loop's thread."""

    def __init__(self, loop_thread: int) -> None:
        super().__init__()
        self.loop_thread = loop_thread
        self.on_loop: list[str] = []
        self.calls = 0

    def __getattribute__(self, name: str) -> Any:
        attr = super().__getattribute__(name)
        if callable(attr) and not name.startswith("_") and name not in ("on_loop",):
            def checked(*args: Any, **kwargs: Any) -> Any:
                self.calls += 1
                if threading.get_ident() == self.loop_thread:
                    self.on_loop.append(name)
                return attr(*args, **kwargs)
            return checked
        return attr


async def test_no_blocking_call_on_the_loop(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    fs = ThreadCheckingFS(threading.get_ident())
    encoded_on: list[int] = []
    real_encode = encoders.encode_frame

    def spy(*args: Any, **kwargs: Any) -> None:
        encoded_on.append(threading.get_ident())
        real_encode(*args, **kwargs)

    monkeypatch.setattr(encoders, "encode_frame", spy)
    df = pd.DataFrame({"a": range(200_000), "b": ["x"] * 200_000})
    with use_fs(fs):
        for i in range(50):
            await aiostore.write_json(tmp_path / f"{i}.json", {"i": i})
        await aiostore.write_text(tmp_path / "t.txt", "t")
        await aiostore.write_jsonl(tmp_path / "l.jsonl", [{"i": i} for i in range(3000)])
        async with aiostore.atomic_open(tmp_path / "s.bin", buffer_size=10) as f:
            for _ in range(5):
                await f.write(b"0123456789")
        await aiostore.write(df, tmp_path / "f.parquet")
        await aiostore.write(df, tmp_path / "f.csv")
        assert (await aiostore.read(tmp_path / "f.parquet")).shape == (200_000, 2)
        await aiostore.read(tmp_path / "0.json")
        await aiostore.sweep_temp_files(tmp_path)
    assert fs.calls > 300
    assert fs.on_loop == []
    assert len(encoded_on) == 2 and threading.get_ident() not in encoded_on
