"""Large objects stream with bounded memory: a 512 MiB numpy array set through a cached S3 store
(a multipart upload, and the cache entry written from the same chunks) and read back in another
process (ranged reads into one buffer, then the cache entry) — each process's peak RSS grows by
less than 3 part sizes plus the array's own size. ``AIOSTORE_STORE_MEMORY_MIB`` changes the size.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.anyio

MIB = int(os.environ.get("AIOSTORE_STORE_MEMORY_MIB", "512"))
PART = 32 << 20

CHILD = r"""
import asyncio, gc, json, resource, sys
import numpy as np
import aiostore

root, options, cache, phase, mib = (sys.argv[1], json.loads(sys.argv[2]), sys.argv[3],
                                    sys.argv[4], int(sys.argv[5]))

def peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

async def main() -> None:
    async with aiostore.Store(root, storage_options=options, cache=cache) as store:
        # imports, connections and worker threads exist before the baseline
        await store.set("warm", np.arange(1 << 20))
        await store.get("warm")
        gc.collect()
        base = peak()
        if phase == "set":
            array = np.ones((mib << 20) // 8)
            await store.set("big", array)
        else:
            array = await store.get("big")
            assert array.shape == ((mib << 20) // 8,) and float(array[-1]) == 1.0
            assert float(array[::4096].sum()) == array.shape[0] / 4096
        print(json.dumps({"base": base, "peak": peak(), "nbytes": array.nbytes}))

asyncio.run(main())
"""


def _run(root: str, options: dict[str, Any], cache: Path, phase: str) -> dict[str, int]:
    result = subprocess.run([sys.executable, "-c", CHILD, root, json.dumps(options), str(cache),
                             phase, str(MIB)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    out: dict[str, int] = json.loads(result.stdout)
    return out


def test_a_large_array_round_trips_with_bounded_memory(s3_bucket: str,
                                                        s3_options: dict[str, str],
                                                        tmp_path: Path) -> None:
    root = f"s3://{s3_bucket}/big"
    # one part in flight: the bound is about the parts buffered, not the upload's parallelism
    options = {**s3_options, "part_size": PART, "multipart_threshold": PART,
               "max_concurrency": 1}
    for phase, cache in (("set", tmp_path / "writer-cache"), ("get", tmp_path / "reader-cache")):
        r = _run(root, options, cache, phase)
        assert r["nbytes"] == MIB << 20
        growth = r["peak"] - r["base"]
        assert growth < 3 * PART + r["nbytes"], (
            f"{phase}: peak RSS grew by {growth / 2**20:.0f} MiB for a {MIB} MiB array "
            f"(limit {(3 * PART + r['nbytes']) / 2**20:.0f} MiB)")
        entries = list(cache.rglob("*.entry"))
        assert [e.name for e in entries if e.stat().st_size > r["nbytes"]], \
            f"{phase}: the array's cache entry was not written"
