"""Helpers for the CLI tests: every command runs as a real subprocess
(``python -m aiostore.cli``), several at once where they do not depend on each other."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import aiostore


@dataclass
class Result:
    """A finished command."""

    args: list[str]
    code: int
    out: str
    err: str
    raw: bytes

    def ok(self) -> Result:
        """Itself, after checking it succeeded quietly."""
        assert self.code == 0, f"{self.args}: exit {self.code}\n{self.err}"
        return self

    def lines(self) -> list[str]:
        """stdout's lines."""
        return self.out.splitlines()


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a command: no progress forcing, no AWS settings of the machine
    (no instance metadata look-ups either), ``extra`` on top."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "AIOSTORE_"))}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env.update(extra or {})
    return env


class Cli:
    """Runs ``aiostore`` commands in ``cwd`` with an environment."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.env = env

    def __call__(self, *args: str, env: dict[str, str] | None = None,
                 timeout: float = 60) -> Result:
        cmd = [sys.executable, "-m", "aiostore.cli", *args]
        proc = subprocess.run(cmd, cwd=self.cwd, env={**self.env, **(env or {})},
                              capture_output=True, timeout=timeout)
        return Result(list(args), proc.returncode, proc.stdout.decode("utf-8", "replace"),
                      proc.stderr.decode("utf-8", "replace"), proc.stdout)

    def many(self, *commands: Sequence[str]) -> list[Result]:
        """Run independent commands concurrently (each a list of arguments)."""
        with ThreadPoolExecutor(4) as pool:
            return list(pool.map(lambda c: self(*c), commands))


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """Commands run in ``tmp_path`` (HOME too: no ~/.aws of the machine)."""
    return Cli(tmp_path, clean_env({"HOME": str(tmp_path)}))


@pytest.fixture
def s3_cli(tmp_path: Path, s3_server: Any) -> Cli:
    """Commands with the SeaweedFS server's credentials in the standard AWS variables; the
    endpoint is given with ``--endpoint-url`` by each test (``s3_endpoint``)."""
    opts = s3_server.storage_options()
    return Cli(tmp_path, clean_env({"HOME": str(tmp_path),
                                    "AWS_ACCESS_KEY_ID": opts["aws_access_key_id"],
                                    "AWS_SECRET_ACCESS_KEY": opts["aws_secret_access_key"],
                                    "AWS_REGION": opts["region_name"]}))


@pytest.fixture
def s3_endpoint(s3_server: Any) -> list[str]:
    """``["--endpoint-url", URL]`` of the test server."""
    return ["--endpoint-url", s3_server.storage_options()["endpoint_url"]]


def assert_usage_error(result: Result, *needles: str, code: int = 2) -> None:
    """Exit ``code``, one line on stderr naming the problem, nothing on stdout, no
    traceback."""
    assert result.code == code, f"{result.args}: exit {result.code}\n{result.err}"
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1, f"{result.args}: not one line:\n{result.err}"
    assert lines[0].startswith("aiostore: "), lines[0]
    assert "Traceback" not in result.err
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"


def build_db(path: Path, items: int = 120, max_file_size: int = 1024
             ) -> list[aiostore.ItemLocation]:
    """A SegmentDB of several segments: ``items`` items ``b"item N"``, then a transaction
    of two items (``b"tx a"``, ``b"tx b"``); returns every location in order."""

    async def make() -> list[aiostore.ItemLocation]:
        async with aiostore.SegmentDB(path, max_file_size=max_file_size) as db:
            locs = [await db.add(b"item %d" % i) for i in range(items)]
            async with db.transaction() as tx:
                tx.add(b"tx a")
                tx.add(b"tx b")
            return locs + list(tx.locations or [])

    return asyncio.run(make())


def segment_file(db: Path, index: int) -> Path:
    """The file of segment ``index``."""
    return db / f"data{index:05d}.dat"
