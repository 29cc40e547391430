"""The CLI's pieces in-process: parsing, error messages and exit codes, the record walk of
:mod:`aiostore.cli.inspect_db` (large records, damage at window edges), JSON conversion."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import errno
from pathlib import Path

import pytest

import aiostore
from aiostore import errors as E
from aiostore._io.base import current_fs
from aiostore._io.faulty import FaultyFileSystem
from aiostore.cli import inspect_db
from aiostore.cli.common import parse_duration, parse_location, parse_time, parse_url
from aiostore.cli.errors import (
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_PROBLEM,
    EXIT_USAGE,
    CliError,
    describe,
)
from aiostore.cli.output import jsonable, payload_fields, text_of


def test_urls() -> None:
    assert parse_url("dir/x").path == "dir/x" and not parse_url("dir/x").remote
    assert parse_url("file:///tmp/x").path == "/tmp/x"
    t = parse_url("s3://my-bucket/a/b.csv")
    assert (t.bucket, t.key, t.root, t.remote) == ("my-bucket", "a/b.csv", "s3://my-bucket", True)
    assert parse_url("s3://my-bucket").key == ""
    for bad, why in [("", "empty"), ("gs://b/k", "unsupported scheme"), ("s3://", "no bucket"),
                     ("s3:///k", "no bucket"), ("s3://UPPER/k", "not a valid S3 bucket"),
                     ("s3://b_b/k", "not a valid"), ("s3://bucket//k", "empty path segment"),
                     ("file://", "needs a path")]:
        with pytest.raises(CliError, match=why):
            parse_url(bad)


def test_locations_durations_times() -> None:
    assert parse_location("3:96:10", with_size=True) == aiostore.ItemLocation(3, 96, 10)
    assert parse_location("3", with_size=False) == aiostore.ItemLocation(3, 0, 0)
    assert parse_location("3:96", with_size=False) == aiostore.ItemLocation(3, 96, 0)
    for bad in ("3:96", "3:-1:2", "a:b:c", "1:2:3:4", "", "٣:1:1"):
        with pytest.raises(CliError, match="bad location"):
            parse_location(bad, with_size=True)
    assert parse_duration("7d") == dt.timedelta(days=7)
    assert parse_duration("1w2d3h") == dt.timedelta(days=9, hours=3)
    assert parse_duration("90") == dt.timedelta(seconds=90)
    assert parse_duration("1.5h") == dt.timedelta(minutes=90)
    for bad in ("", "7 days", "d", "7x", "-1d"):
        with pytest.raises(CliError, match="bad duration"):
            parse_duration(bad)
    utc = dt.timezone.utc
    assert parse_time("2026-12-04T16:00:00Z") == dt.datetime(2026, 12, 4, 16, tzinfo=utc)
    assert parse_time("2026-12-04 16:00") == dt.datetime(2026, 12, 4, 16, tzinfo=utc)
    assert parse_time("0") == dt.datetime(1970, 1, 1, tzinfo=utc)
    with pytest.raises(CliError, match="bad time"):
        parse_time("yesterday")


def test_every_error_becomes_one_line_and_an_exit_code() -> None:
    cases: list[tuple[BaseException, int, str]] = [
        (CliError("bad thing"), EXIT_USAGE, "bad thing"),
        (CliError("found damage", EXIT_PROBLEM), EXIT_PROBLEM, "found damage"),
        (E.CorruptionError("the item at x fails\nits checksum"), EXIT_PROBLEM,
         "damaged data: the item at x fails its checksum"),
        (E.VersionNotFoundError("v 9"), EXIT_USAGE, "no such version: v 9"),
        (E.InvalidLocationError("loc"), EXIT_USAGE, "bad location: loc"),
        (E.UnknownFormatError("fmt"), EXIT_USAGE, "unknown format: fmt"),
        (E.SerializationError("not csv"), EXIT_USAGE, "not csv"),
        (E.storage_error(OSError(errno.ENOENT, "No such file or directory"), "stat", "/x"),
         EXIT_USAGE, "not found: no such file or directory: /x"),
        (E.storage_error(OSError(errno.EACCES, "Permission denied"), "open", "/y"),
         EXIT_USAGE, "access denied: permission denied: /y"),
        (PermissionError(errno.EACCES, "Permission denied", "/z"), EXIT_USAGE,
         "access denied: permission denied: /z"),
        (E.BucketNotFoundError(errno.ENOENT, "no such bucket", "s3://b"), EXIT_USAGE,
         "no such bucket: s3://b"),
        (E.storage_error(OSError(errno.ENOTDIR, "Not a directory"), "open", "/f/x"),
         EXIT_USAGE, "not a directory: /f/x"),
        (E.StorageUnavailableError(errno.ECONNREFUSED, "connection refused", "s3://b"),
         EXIT_FAILED, "unreachable: connection refused: s3://b"),
        (E.storage_error(OSError(errno.ENOSPC, "No space left on device"), "write", "/d"),
         EXIT_FAILED, "disk full: no space left on device: /d"),
        (E.CommitConflictError("raced"), EXIT_FAILED, "conflict: raced"),
        (OSError(errno.EIO, "Input/output error"), EXIT_FAILED, "input/output error"),
        (E.DatabaseLockedError("locked"), EXIT_FAILED, "locked"),
        (ModuleNotFoundError("No module named 'obstore'", name="obstore"), EXIT_USAGE,
         "pip install 'aiostore[s3]'"),
        (ZeroDivisionError("division by zero"), EXIT_INTERNAL,
         "internal error (a bug in aiostore, please report it): ZeroDivisionError"),
    ]
    for exc, code, text in cases:
        got_code, message = describe(exc)
        assert (got_code, "\n" in message) == (code, False), exc
        assert text in message, (text, message)


def test_output_conversions() -> None:
    assert text_of(b"plain text") == "plain text"
    assert text_of(b"a\nb\x00\xff") == "a\\nb\\x00\\xff"
    assert payload_fields(b"hi") == {"text": "hi"}
    assert payload_fields(b"\xff\x00") == {"base64": "/wA="}
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    assert jsonable({"t": when, "d": decimal.Decimal("1.10"), "n": float("nan"), "b": b"\x01",
                     "l": (1, dt.date(2026, 1, 2)), 3: None}) == {
        "t": "2026-01-02T03:04:05+00:00", "d": "1.10", "n": None, "b": "AQ==",
        "l": [1, "2026-01-02"], "3": None}


def test_walk_checks_records_larger_than_the_window(tmp_path: Path) -> None:
    big = bytes(range(256)) * ((5 << 20) // 256 + 3)  # > the 4 MiB window

    async def make() -> list[aiostore.ItemLocation]:
        async with aiostore.SegmentDB(tmp_path / "db", max_file_size=32 << 20) as db:
            return [await db.add(b"small"), await db.add(big), await db.add(b"after")]

    locs = asyncio.run(make())
    fs = current_fs()
    layout = inspect_db.open_layout(fs, str(tmp_path / "db"), "data")
    report = inspect_db.walk_segment(fs, layout, 0, last=True, verify=True)
    assert (report.items, report.problems, report.tail) == (3, [], None)
    path = tmp_path / "db" / "data00000.dat"
    data = bytearray(path.read_bytes())
    data[locs[1].position + 12 + (4 << 20) + 7] ^= 0x80  # past the first window of the item
    path.write_bytes(bytes(data))
    report = inspect_db.walk_segment(fs, layout, 0, last=False, verify=True)
    assert [(p.location, p.reason) for p in report.problems] == [
        (locs[1], "checksum mismatch")]
    assert report.items == 2


def test_the_fault_injecting_file_system_reaches_the_cli(
        faulty: FaultyFileSystem, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from aiostore.cli import main

    async def make() -> None:
        async with aiostore.SegmentDB(tmp_path / "db", max_file_size=4096) as db:
            for i in range(100):
                await db.add(b"item %d" % i)

    asyncio.run(make())
    capsys.readouterr()
    faulty.fail("pread", nth=3, times=1000)  # (the first two read /proc/locks)
    assert main(["db", "verify", str(tmp_path / "db")]) == EXIT_FAILED
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("aiostore: input/output error (injected): ")
    faulty.fail("pread", nth=1)  # a local source of cp
    (tmp_path / "src.txt").write_bytes(b"data")
    assert main(["cp", str(tmp_path / "src.txt"), str(tmp_path / "dst.txt")]) == EXIT_FAILED
    assert "input/output error (injected)" in capsys.readouterr().err
    assert not (tmp_path / "dst.txt").exists()  # nothing published
