"""Every atomic-writer capability in one runnable script.

``python examples/atomic_writes.py [DIRECTORY]`` (default: a temporary directory).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiostore
from aiostore import errors


async def main(root: Path) -> None:
    """Show bytes/text/JSON/JSONL writes, streaming, frames, errors and the temp sweep."""
    # whole-file writes: old or new content, never torn; durable when the call returns
    await aiostore.write_bytes(root / "blob.bin", b"\x00\x01\x02")
    await aiostore.write_text(root / "greeting.txt", "grüß dich", encoding="utf-8")
    await aiostore.write_json(root / "state.json", {"step": 1}, sort_keys=True)
    await aiostore.write_bytes(root / "scratch.bin", b"fast", durable=False)  # atomic only
    await aiostore.write_bytes(root / "private.key", b"secret", mode=0o600)

    # JSON lines from an async generator, streamed with bounded memory
    async def events() -> AsyncIterator[dict[str, int]]:
        for i in range(5000):
            yield {"seq": i}

    n = await aiostore.write_jsonl(root / "events.jsonl", events())
    print(f"{n} events written")

    # streaming: published on clean exit only; an exception or cancellation discards it
    async with aiostore.atomic_open(root / "log.txt", "w") as f:
        await f.write("first line\n")
        await f.write("second line\n")
    try:
        async with aiostore.atomic_open(root / "log.txt", "w") as f:
            await f.write("this never appears\n")
            raise RuntimeError("simulated failure")
    except RuntimeError:
        pass
    print("log.txt still holds:", (await aiostore.read(root / "log.txt")).splitlines())

    # one call for any object: the suffix picks the format
    await aiostore.write({"any": ["json", "value"]}, root / "value.json")
    await aiostore.write([{"a": 1}, {"a": 2}], root / "rows.jsonl")
    try:
        import pandas as pd

        df = pd.DataFrame({"x": range(100_000), "y": [1.5] * 100_000})
        seen: list[int] = []
        await aiostore.write(df, root / "frame.parquet", progress=lambda d, t: seen.append(d))
        await aiostore.write(df, root / "frame.csv")
        await aiostore.write(df, root / "frame.feather")
        print("frame written in", len(seen), "steps; csv rows:",
              len(await aiostore.read(root / "frame.csv")))
    except ImportError:
        print("(pandas not installed: pip install 'aiostore[frames]')")

    # bad input: a typed error, nothing changed
    try:
        await aiostore.write_json(root / "state.json", {"bad": object()})
    except errors.SerializationError as exc:
        print("refused:", exc)
    print("state.json intact:", await aiostore.read(root / "state.json"))
    try:
        await aiostore.write(object(), root / "x.unknown")
    except errors.AiostoreError as exc:
        print("refused:", type(exc).__name__, exc)

    # temp files of writers that were SIGKILLed are removed by the sweep
    removed = await aiostore.sweep_temp_files(root, older_than=timedelta(hours=1))
    print("stale temp files removed:", removed)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        asyncio.run(main(Path(sys.argv[1])))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(main(Path(tmp)))
