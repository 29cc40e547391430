"""Quickstart: atomic, durable writes into a local directory (no server needed).

Run with ``make run`` (or ``python examples/quickstart.py [DIRECTORY]``).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiostore


async def main(directory: Path) -> None:
    """Write a few files atomically and read them back."""
    config = directory / "config.json"
    await aiostore.write_json(config, {"service": "demo", "replicas": 3}, indent=2)
    print(f"wrote {config}: {await aiostore.read(config)}")

    await aiostore.write_text(directory / "notes" / "hello.txt", "hello, durable world\n")
    print("wrote notes/hello.txt (parent directory created and made durable)")

    count = await aiostore.write_jsonl(directory / "events.jsonl",
                                       ({"event": i} for i in range(1000)))
    print(f"wrote {count} JSON lines")

    async with aiostore.atomic_open(directory / "report.txt", "w") as f:
        for i in range(3):
            await f.write(f"section {i}\n")
    print("streamed report.txt; it appeared whole, at the end")

    try:
        await aiostore.write_json(config, {"replicas": 5}, overwrite=False)
    except FileExistsError as exc:
        print(f"no-clobber write refused as expected: {exc}")

    try:
        import pandas as pd
    except ImportError:
        print("(install aiostore[frames] for DataFrame writes)")
    else:
        df = pd.DataFrame({"id": range(5), "name": list("abcde")})
        await aiostore.write(df, directory / "table.parquet")
        back = await aiostore.read(directory / "table.parquet")
        print(f"DataFrame round trip through Parquet: {back.shape[0]} rows, columns "
              f"{list(back.columns)}")


def show(directory: Path) -> None:
    """What was made, listed by the ``aiostore`` command (the ``cli`` extra), if installed."""
    import importlib.util
    import subprocess

    if importlib.util.find_spec("click") is None:
        return
    print(f"$ aiostore ls --recursive {directory}")
    subprocess.run([sys.executable, "-m", "aiostore.cli", "ls", "--recursive", str(directory)],
                   check=True)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("examples/data/quickstart")
    asyncio.run(main(target))
    show(target)
    print(f"done: see {target}")
