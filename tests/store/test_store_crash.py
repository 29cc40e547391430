"""A process killed (SIGKILL) while it downloads an object into the cache, or while it writes
the cache entry, never leaves a corrupt entry: the next get returns the object's current
bytes, and cleanup_cache removes the dead download's temp file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import aiostore

pytestmark = pytest.mark.anyio

CHILD = r"""
import asyncio, json, sys, time
import aiostore
from aiostore.store import cache as cache_mod

root, options, cache_dir, phase = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]

def hang(message):
    print(message, flush=True)
    time.sleep(120)  # killed here

if phase == "entry":  # the download is done; the entry's temp file is half written
    real_write = cache_mod.TempFile.write_all
    def write_all(self, chunks, abort=None):
        data = b"".join(bytes(c) for c in chunks)
        self.write(data[: len(data) // 2])
        hang("writing")
    cache_mod.TempFile.write_all = write_all

async def main():
    async with aiostore.Store(root, storage_options=options, cache=cache_dir) as store:
        if phase == "download":  # the second range of the object never arrives
            real_get = store.storage.get
            async def get(key, **kwargs):
                if kwargs.get("byte_range", (0, 0))[0] > 0:
                    hang("downloading")
                return await real_get(key, **kwargs)
            store.storage.get = get
        await store.get("blob")

asyncio.run(main())
"""


def _files(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


def _kill_when(args: list[str], marker: str) -> None:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == marker, (line, proc.stderr.read() if proc.stderr else "")
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize("phase", ["download", "entry"])
async def test_a_killed_download_leaves_no_corrupt_entry(
        phase: str, s3_root: str, s3_store_options: dict[str, Any], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    old = os.urandom(20 << 20)
    new = os.urandom(20 << 20)  # same size: only the ETag tells them apart
    async with aiostore.Store(s3_root, storage_options=s3_store_options, cache=cache) as store:
        await store.set("blob", old)  # the entry holds the old bytes
        assert store._cache is not None
        entry = Path(store._cache.path("blob.bin"))
        async with aiostore.Store(s3_root, storage_options=s3_store_options) as other:
            await other.set("blob", new)
        before = _files(cache)

        _kill_when([sys.executable, "-c", CHILD, s3_root, json.dumps(s3_store_options),
                    str(cache), phase], "downloading" if phase == "download" else "writing")

        after = _files(cache)
        temps = [f for f in after if f.endswith(".aiostore-tmp")]
        assert [f for f in after if not f.endswith(".aiostore-tmp")] == before
        assert len(temps) == (1 if phase == "entry" else 0)
        assert _read(entry)[: len(old)] == old  # the old entry, whole and untouched
        assert await store.get("blob") == new  # validated: the old entry is not served
        assert await store.get("blob") == new  # and the new one is whole
        assert await store.cleanup_cache() == len(temps)
        assert not [f for f in _files(cache) if f.endswith(".aiostore-tmp")]


def _read(path: Path) -> bytes:
    return path.read_bytes()
