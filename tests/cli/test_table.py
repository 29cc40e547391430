"""``aiostore table ...`` as real processes, on a local table and one in the S3 bucket."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import aiostore

from .conftest import Cli, assert_usage_error, build_db

pd = pytest.importorskip("pandas")


def build_table(url: str, storage_options: dict[str, Any] | None = None) -> None:
    """Versions 0 (3 rows), 1 (+1 row), 2 (an overwrite with 1 row and a new column)."""

    async def make() -> None:
        async with aiostore.open_table(url, storage_options=storage_options) as t:
            await t.append(pd.DataFrame({"id": [1, 2, 3], "name": ["a", "b", "c"]}))
            await t.append(pd.DataFrame({"id": [4], "name": ["d"]}))
            await t.overwrite(pd.DataFrame({"id": [9], "name": ["z"], "score": [0.5]}),
                              schema_mode="merge")

    asyncio.run(make())


def test_history_show_schema_restore_vacuum(cli: Cli, tmp_path: Path) -> None:
    build_table(str(tmp_path / "t"))
    history, history_json, show, show_v1, show_cols, schema, schema_v0 = cli.many(
        ["table", "history", "t"], ["table", "history", "t", "--json"],
        ["table", "show", "t"], ["table", "show", "t", "--version", "1", "--json"],
        ["table", "show", "t", "--version", "1", "--columns", "name", "--limit", "2"],
        ["table", "schema", "t"], ["table", "schema", "t", "--version", "0", "--json"])

    lines = history.ok().lines()
    assert lines[0].split() == ["VERSION", "TIMESTAMP", "OPERATION", "ROWS+", "ROWS-",
                                "FILES+", "FILES-"]
    assert [line.split()[0] for line in lines[1:]] == ["2", "1", "0"]
    entries = [json.loads(line) for line in history_json.ok().lines()]
    assert [(e["version"], e["rows_added"], e["rows_removed"]) for e in entries] == [
        (2, 1, 4), (1, 1, 0), (0, 3, 0)]
    assert all(e["timestamp"].endswith("+00:00") for e in entries)
    assert show.ok().lines() == ["id  name  score", "9   z     0.5"]
    assert [json.loads(line) for line in show_v1.ok().lines()] == [
        {"id": i, "name": n} for i, n in [(1, "a"), (2, "b"), (3, "c"), (4, "d")]]
    assert show_cols.ok().lines() == ["name", "a", "b"]
    assert schema.ok().lines() == ["COLUMN  TYPE    NULLABLE", "id      int64   True",
                                   "name    string  True", "score   double  True"]
    assert [json.loads(line)["column"] for line in schema_v0.ok().lines()] == ["id", "name"]

    restored = cli("table", "restore", "t", "--version", "1", "--json").ok()
    assert json.loads(restored.out) == {"restored": 1, "new_version": 3}
    assert len(cli("table", "show", "t", "--json").ok().lines()) == 4

    dry = json.loads(cli("table", "vacuum", "t", "--retain", "0s", "--json",
                         "--dry-run").ok().out)
    assert dry["dry_run"] is True and dry["expired_versions"] == [0, 1, 2]
    assert dry["oldest_kept"] == 3 and len(dry["data_files"]) == 1  # the overwrite's file
    assert (tmp_path / "t" / dry["data_files"][0]).exists()
    done = cli("table", "vacuum", "t", "--retain", "0s").ok()
    assert "expired versions:" in done.out and "0, 1, 2" in done.out
    assert not (tmp_path / "t" / dry["data_files"][0]).exists()
    after = cli("table", "show", "t", "--version", "1")
    assert_usage_error(after, "no such version")


def test_a_table_in_the_bucket(s3_cli: Cli, s3_bucket: str, s3_endpoint: list[str],
                               s3_options: dict[str, str]) -> None:
    url = f"s3://{s3_bucket}/events"
    build_table(url, s3_options)
    history, show = s3_cli.many(["table", "history", url, *s3_endpoint, "--json"],
                                ["table", "show", url, "--version", "0", *s3_endpoint])
    assert [json.loads(line)["version"] for line in history.ok().lines()] == [2, 1, 0]
    assert show.ok().lines() == ["id  name", "1   a", "2   b", "3   c"]


def test_table_commands_reject_bad_input_with_one_line(cli: Cli, tmp_path: Path) -> None:
    build_table(str(tmp_path / "t"))
    build_db(tmp_path / "log", items=3)
    (tmp_path / "file.txt").write_text("x")
    results = cli.many(
        ["table", "history", "missing"],
        ["table", "show", "log"],
        ["table", "schema", "file.txt"],
        ["table", "show", "t", "--version", "7"],
        ["table", "schema", "t", "--version", "-1"],
        ["table", "restore", "t", "--version", "12"],
        ["table", "show", "t", "--as-of", "yesterday-ish"],
        ["table", "show", "t", "--as-of", "2001-01-01T00:00:00Z"],
        ["table", "show", "t", "--columns", "nope"],
        ["table", "vacuum", "t", "--retain", "seven days"],
        ["table", "vacuum", "t"],
        ["table", "history", "gs://bucket/t"],
        ["table", "show", "t", "--version", "1", "--as-of", "0"],
    )
    expected = [
        ("not a table", "missing"), ("not a table", "log"), ("not a table",),
        ("no such version", "7", "latest version is 2"), ("--version", "-1"),
        ("no such version", "12"), ("bad time 'yesterday-ish'",),
        ("no such version", "2001"), ("no such column", "nope"),
        ("bad duration 'seven days'",), ("Missing option '--retain'",),
        ("unsupported storage URI scheme 'gs'",), ("--version or --as-of, not both",),
    ]
    for result, needles in zip(results, expected, strict=True):
        assert_usage_error(result, *needles)
