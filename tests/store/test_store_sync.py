"""``Store.sync``: the blocking dict-syntax facade, its refusal inside a running event loop, and
its lifecycle (closed by ``with``, by ``close()``, by garbage collection, at exit)."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import trio

import aiostore
from aiostore import errors


def _portal_threads() -> int:
    return sum(1 for t in threading.enumerate() if "portal" in t.name)


def test_dict_syntax(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1, 2]})
    with aiostore.Store.sync(tmp_path / "data") as s:
        s["frame"] = frame
        s["conf.yaml"] = {"a": 1}
        s["runs/1"] = [1, 2, 3]
        pd.testing.assert_frame_equal(s["frame"], frame)
        assert s["conf"] == {"a": 1}
        assert "frame" in s and "conf.yaml" in s and "nope" not in s and 3 not in s
        assert list(s.keys()) == ["conf", "frame", "runs/1"]
        assert s.keys("runs/") == ["runs/1"]
        assert list(s) == ["conf", "frame", "runs/1"] and len(s) == 3
        with pytest.raises(KeyError):
            s["nope"]
        assert s.get("nope") is None and s.get("nope", 5) == 5
        assert s.get("frame", output="polars").shape == (2, 1)
        assert s.info("frame").object_key == "frame.parquet"
        s.copy("conf", "backup/conf")
        s.move("backup/conf", "old/conf")
        del s["frame"]
        with pytest.raises(errors.KeyNotFoundError):
            del s["frame"]
        s.delete("frame", missing_ok=True)
        assert list(s.keys()) == ["conf", "old/conf", "runs/1"]
        assert s.cleanup_cache() == 0
        assert "data" in repr(s)
    with pytest.raises(errors.ClosedError):
        s["conf"]
    s.close()  # idempotent


def test_on_trio(tmp_path: Path) -> None:
    with aiostore.Store.sync(tmp_path, backend="trio") as s:
        s["a"] = {"x": 1}
        assert s["a"] == {"x": 1}
    with pytest.raises(errors.InvalidArgumentError):
        aiostore.Store.sync(tmp_path, backend="curio")


def test_on_s3(s3_bucket: str, s3_options: dict[str, Any], tmp_path: Path) -> None:
    with aiostore.Store.sync(f"s3://{s3_bucket}/p", storage_options=s3_options,
                             cache=tmp_path / "cache") as s:
        s["conf"] = {"a": 1}
        assert s["conf"] == {"a": 1} and list(s.keys()) == ["conf"]


def test_refused_inside_a_running_loop(tmp_path: Path) -> None:
    outside = aiostore.Store.sync(tmp_path)
    outside["a"] = 1

    async def inside() -> None:
        with pytest.raises(errors.RunningLoopError, match="async API"):
            aiostore.Store.sync(tmp_path)
        with pytest.raises(errors.RunningLoopError):
            outside["a"]  # would block this loop: refused at once, no deadlock
        with pytest.raises(errors.RunningLoopError):
            outside["b"] = 2
        with pytest.raises(RuntimeError):  # (it is a RuntimeError too)
            list(outside.keys())

    asyncio.run(inside())
    trio.run(inside)
    assert outside["a"] == 1  # still usable from plain code
    outside.close()


def test_closed_when_garbage_collected(tmp_path: Path) -> None:
    before = _portal_threads()
    s = aiostore.Store.sync(tmp_path)
    s["a"] = 1
    assert _portal_threads() == before + 1
    del s
    gc.collect()
    assert _portal_threads() == before


def test_interpreter_exit_with_a_store_left_open(tmp_path: Path) -> None:
    code = ("import aiostore, sys; s = aiostore.Store.sync(sys.argv[1]); s['a'] = {'x': 1}; "
            "print(s['a'])")
    result = subprocess.run([sys.executable, "-W", "error::ResourceWarning", "-c", code,
                             str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "{'x': 1}"
    assert result.stderr == ""
