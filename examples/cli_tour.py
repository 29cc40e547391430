"""A tour of the ``aiostore`` command: every command once, run for real, printed as a shell
session (the transcripts in docs/cli.md come from this script).

``python examples/cli_tour.py [DIRECTORY]`` builds a SegmentDB, a table and a CSV file in
DIRECTORY (a temporary one by default), starts a local SeaweedFS server for the S3 commands
(``pip install 'aiostore[test]'``; the credentials and endpoint go into the standard
``AWS_*`` variables) and runs the commands there. Needs the ``cli`` extra.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import aiostore


async def build(directory: Path) -> list[aiostore.ItemLocation]:
    """A database of three segments (one flipped byte comes later), a table of three
    versions, a CSV file."""
    import pandas as pd

    async with aiostore.SegmentDB(directory / "log", max_file_size=4096) as db:
        locs = [await db.add(b'{"event": "page view", "n": %d}' % i) for i in range(300)]
        async with db.transaction() as tx:
            tx.add(b"debit account 1")
            tx.add(b"credit account 2")
        db.enable_overwrite()
        await db.ltrim(locs[20].index, locs[20].position)  # retention: forget items 0..19
    async with aiostore.open_table(str(directory / "events")) as t:
        await t.append(pd.DataFrame({"id": [1, 2, 3], "kind": ["view", "click", "view"]}))
        await t.append(pd.DataFrame({"id": [4], "kind": ["buy"]}))
        await t.overwrite(pd.DataFrame({"id": [5], "kind": ["view"], "ms": [12.5]}),
                          schema_mode="merge")
    rows = 200_000
    pd.DataFrame({"id": range(rows), "amount": [i % 1000 / 10 for i in range(rows)],
                  "who": [f"user{i % 97}" for i in range(rows)]}
                 ).to_csv(directory / "sales.csv", index=False)
    (directory / "notes").mkdir()
    (directory / "notes" / "todo.txt").write_text("ship the CLI\n")
    (directory / "notes" / "done.txt").write_text("write the tests\n")
    return locs


def run(directory: Path, env: dict[str, str], command: str) -> None:
    """Print ``$ command``, run it, print what it wrote (stderr after stdout)."""
    print(f"$ {command}")
    proc = subprocess.run(command, shell=True, cwd=directory, env=env, capture_output=True,
                          text=True)
    if proc.stdout:
        print(proc.stdout, end="" if proc.stdout.endswith("\n") else "\n")
    if proc.stderr:
        print(proc.stderr, end="" if proc.stderr.endswith("\n") else "\n")
    if proc.returncode:
        print(f"[exit status {proc.returncode}]")
    print()


def flip_a_byte(directory: Path, loc: aiostore.ItemLocation) -> None:
    """Damage one item's payload, as a failing disk would."""
    path = directory / "log" / f"data{loc.index:05d}.dat"
    data = bytearray(path.read_bytes())
    data[loc.position + 12 + 5] ^= 0x20
    path.write_bytes(bytes(data))


def tour(directory: Path) -> None:
    from aiostore.testing import SeaweedFS

    locs = asyncio.run(build(directory))
    bin_dir = os.path.dirname(sys.executable)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AIOSTORE_"))}
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    with SeaweedFS() as server:
        opts = server.storage_options()
        env.update(AWS_ACCESS_KEY_ID=opts["aws_access_key_id"],
                   AWS_SECRET_ACCESS_KEY=opts["aws_secret_access_key"],
                   AWS_REGION=opts["region_name"], AWS_ENDPOINT_URL=opts["endpoint_url"],
                   AWS_EC2_METADATA_DISABLED="true", HOME=str(directory))

        async def bucket() -> None:
            async with server.client() as s3:
                await s3.create_bucket(Bucket="demo")

        asyncio.run(bucket())
        mid = locs[150]
        sh = shlex.quote
        for command in [
            "aiostore db info log",
            "aiostore db scan log --limit 3",
            f"aiostore db scan log --from {mid.index}:{mid.position} --limit 2 --format hex",
            f"aiostore db get log {mid.index}:{mid.position}:{mid.size}",
            "aiostore db scan log --json --limit 1",
            "aiostore db verify log",
        ]:
            run(directory, env, command)
        flip_a_byte(directory, locs[100])
        for command in [
            "aiostore db verify log",
            "aiostore db verify log --json",
            f"aiostore db get log {locs[100].index}:{locs[100].position}:{locs[100].size}",
            "aiostore db get log 1:2",
            "aiostore table history events",
            "aiostore table show events",
            "aiostore table show events --version 1 --columns kind --json",
            "aiostore table schema events --version 0",
            "aiostore table show events --version 9",
            "aiostore table restore events --version 1",
            "aiostore table vacuum events --retain 0s --dry-run",
            "aiostore table vacuum events --retain 7d",
            "aiostore cp sales.csv s3://demo/in/sales.csv",
            "aiostore cp --recursive notes s3://demo/notes",
            "aiostore ls s3://demo",
            "aiostore ls --recursive s3://demo --json",
            f"aiostore ls s3://demo/in --endpoint-url {sh(opts['endpoint_url'])}",
            "aiostore cat s3://demo/notes/todo.txt",
            "aiostore cat s3://demo/in/sales.csv | wc -c",
            "aiostore cp s3://demo/notes/ back/ --recursive",
            "aiostore convert sales.csv s3://demo/out/sales.parquet",
            "aiostore convert s3://demo/out/sales.parquet sales.jsonl",
            "head -2 sales.jsonl",
            "aiostore rm s3://demo/notes/done.txt",
            "aiostore rm --recursive s3://demo/out",
            "aiostore ls s3://demo/out",
            "aiostore cat gs://demo/x",
            "aiostore db info notes",
        ]:
            run(directory, env, command)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        tour(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            tour(Path(tmp))
