"""Real writer processes killed with SIGKILL at random points: never a torn or missing target.

A kill skips every ``finally``, so temp files may be left behind; ``sweep_temp_files`` removes
them. (A process kill keeps the page cache, so this tests atomicity and clean-up; the
fault-injected crashes in ``test_crash.py`` test fsync ordering.)
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

import aiostore
from tests.conftest import temp_files

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]

CHILD = r"""
import sys, anyio, aiostore
root = sys.argv[1]
def content(kind, n):
    return (f"{kind}:{n}:".encode() * 20000)[: 200_000 + n]
async def main():
    n = 0
    while True:
        n += 1
        await aiostore.write_bytes(f"{root}/bytes.bin", content("b", n))
        async with aiostore.atomic_open(f"{root}/stream.bin", "wb", buffer_size=65536) as f:
            data = content("s", n)
            for i in range(0, len(data), 50_000):
                await f.write(data[i:i + 50_000])
        await aiostore.write_json(f"{root}/doc.json", {"n": n, "pad": "x" * 5000})
        print(n, flush=True)
anyio.run(main)
"""


def _content(kind: str, n: int) -> bytes:
    return (f"{kind}:{n}:".encode() * 20000)[: 200_000 + n]


@pytest.mark.parametrize("round_", range(6))
async def test_sigkill_leaves_whole_files(tmp_path: Path, round_: int) -> None:
    rng = random.Random(round_)
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    acked = 0
    target_acks = rng.randint(1, 8)
    while acked < target_acks:
        line = proc.stdout.readline()
        assert line, "writer died"
        acked = int(line)
    # kill somewhere inside the next round of writes
    for _ in range(rng.randint(0, 3000)):
        os.stat(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rest = proc.stdout.read().split()
    proc.stdout.close()
    if rest:
        acked = int(rest[-1])

    ok = {acked, acked + 1}
    assert any((tmp_path / "bytes.bin").read_bytes() == _content("b", n) for n in ok)
    assert any((tmp_path / "stream.bin").read_bytes() == _content("s", n) for n in ok)
    import json

    assert json.loads((tmp_path / "doc.json").read_text())["n"] in ok
    leftovers = temp_files(tmp_path)
    assert len(leftovers) <= 1  # at most the write in flight
    assert await aiostore.sweep_temp_files(tmp_path, older_than=timedelta(0)) == len(leftovers)
    assert temp_files(tmp_path) == []
    assert sorted(os.listdir(tmp_path)) == ["bytes.bin", "doc.json", "stream.bin"]


async def test_sweep_respects_age_and_names(tmp_path: Path) -> None:
    old_temp = tmp_path / ".data.json.123.0badf00d.aiostore-tmp"
    new_temp = tmp_path / ".data.json.123.deadbeef.aiostore-tmp"
    lookalike = tmp_path / "data.json.aiostore-tmp"
    for p in (old_temp, new_temp, lookalike):
        p.write_bytes(b"x")
    os.utime(old_temp, (0, 0))
    (tmp_path / "sub").mkdir()
    nested = tmp_path / "sub" / ".x.1.00000000.aiostore-tmp"
    nested.write_bytes(b"x")
    os.utime(nested, (0, 0))
    assert await aiostore.sweep_temp_files(tmp_path) == 1
    assert not old_temp.exists() and new_temp.exists() and lookalike.exists()
    assert nested.exists()
    assert await aiostore.sweep_temp_files(tmp_path, older_than=timedelta(0),
                                           recursive=True) == 2
    assert lookalike.exists()
