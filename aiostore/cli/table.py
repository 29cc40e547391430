"""``aiostore table``: a Delta table's history, rows and schema; vacuum and restore.

Built on :func:`aiostore.open_table` (``create=False``: a location without a table is an
error, never a new table). Needs the ``frames`` extra (pyarrow).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import click

from ..errors import NotFoundError
from .common import json_option, parse_duration, parse_time, run, s3_options
from .errors import EXIT_OK, CliError
from .output import Output, human_bytes

__all__ = ["table"]

_URL = click.argument("url")
_VERSION = click.option("--version", "version", type=click.IntRange(min=0), default=None,
                        metavar="N", help="The table as of version N (default: the latest).")


@click.group()
def table() -> None:
    """Inspect and maintain a Delta table (a directory or s3://bucket/prefix)."""


@contextlib.asynccontextmanager
async def _open(url: str, options: dict[str, Any]) -> AsyncIterator[Any]:
    """The table at ``url``; a usage error when there is none."""
    from ..tables import open_table

    try:
        t = await open_table(url, create=False, storage_options=options or None)
    except NotFoundError as exc:
        if "no Delta table" not in str(exc):
            raise
        raise CliError(f"not a table: no Delta table at {url} (no _delta_log/ there)"
                       ) from None
    except NotADirectoryError:
        raise CliError(f"not a table: {url} is a file (a table is a directory or a "
                       "prefix)") from None
    try:
        yield t
    finally:
        await t.aclose()


async def _check_version(t: Any, version: int | None) -> None:
    if version is not None and version > t.version:
        raise CliError(f"no such version: {version} (the table's latest version is "
                       f"{t.version})")


@table.command()
@_URL
@s3_options
@json_option
def history(url: str, storage_options: dict[str, Any], as_json: bool) -> int:
    """Every version still in the log, newest first: time, operation, rows and files
    added and removed."""
    return run(_history(url, storage_options, Output(as_json)))


async def _history(url: str, options: dict[str, Any], out: Output) -> int:
    async with _open(url, options) as t:
        entries = await t.history()
    rows = [{"version": e.version, "timestamp": e.timestamp, "operation": e.operation,
             "rows_added": e.rows_added, "rows_removed": e.rows_removed,
             "files_added": e.files_added, "files_removed": e.files_removed,
             "parameters": e.parameters} for e in entries]
    out.table(rows, [("version", "VERSION"), ("timestamp", "TIMESTAMP"),
                     ("operation", "OPERATION"), ("rows_added", "ROWS+"),
                     ("rows_removed", "ROWS-"), ("files_added", "FILES+"),
                     ("files_removed", "FILES-")],
              right=("version", "rows_added", "rows_removed", "files_added",
                     "files_removed"))
    return EXIT_OK


@table.command()
@_URL
@_VERSION
@click.option("--as-of", "as_of", metavar="TIME", default=None,
              help="The version current at TIME: ISO 8601 (no zone: UTC) or POSIX seconds.")
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True,
              metavar="N", help="Print at most N rows (0: all).")
@click.option("--columns", metavar="A,B,...", default=None, help="Only these columns.")
@s3_options
@json_option
def show(url: str, version: int | None, as_of: str | None, limit: int, columns: str | None,
         storage_options: dict[str, Any], as_json: bool) -> int:
    """Print the table's rows (the first --limit), read file by file: memory stays bounded
    however large the table."""
    if version is not None and as_of is not None:
        raise CliError("give --version or --as-of, not both")
    when = None if as_of is None else parse_time(as_of)
    cols = None if columns is None else [c.strip() for c in columns.split(",") if c.strip()]
    if cols == []:
        raise CliError("--columns names no column")
    return run(_show(url, version, when, limit, cols, storage_options, Output(as_json)))


async def _show(url: str, version: int | None, when: Any, limit: int,
                columns: list[str] | None, options: dict[str, Any], out: Output) -> int:
    async with _open(url, options) as t:
        await _check_version(t, version)
        if when is not None:
            version = (await t.snapshot(as_of=when)).version
        schema = await _schema(t, version)
        if columns is not None:
            missing = [c for c in columns if c not in schema.names]
            if missing:
                raise CliError(f"no such column(s): {', '.join(missing)} (the table has "
                               f"{', '.join(schema.names)})")
        names = columns or list(schema.names)
        rows: list[dict[str, Any]] = []
        count = 0
        async for batch in t.scan(version=version, columns=columns):
            take = batch if not limit else batch.slice(0, limit - count)
            for row in take.to_pylist():
                if out.json:
                    out.record(row)
                else:
                    rows.append(row)
            count += take.num_rows
            if limit and count >= limit:
                break
    if not out.json:
        out.table(rows, [(n, n) for n in names])
    return EXIT_OK


async def _schema(t: Any, version: int | None) -> Any:
    from ..tables.schema import delta_to_arrow

    if version is None:
        if t.schema is None:
            raise CliError(f"{t.uri}: the table has no version yet")
        return t.schema
    snapshot = await t.snapshot(version)
    return delta_to_arrow(snapshot.metadata["schemaString"])


@table.command()
@_URL
@_VERSION
@s3_options
@json_option
def schema(url: str, version: int | None, storage_options: dict[str, Any],
           as_json: bool) -> int:
    """The table's columns: name, Arrow type, nullable."""
    return run(_schema_cmd(url, version, storage_options, Output(as_json)))


async def _schema_cmd(url: str, version: int | None, options: dict[str, Any],
                      out: Output) -> int:
    async with _open(url, options) as t:
        await _check_version(t, version)
        s = await _schema(t, version)
    out.table([{"column": f.name, "type": str(f.type), "nullable": f.nullable} for f in s],
              [("column", "COLUMN"), ("type", "TYPE"), ("nullable", "NULLABLE")])
    return EXIT_OK


@table.command()
@_URL
@click.option("--retain", metavar="DURATION", required=True,
              help="Keep every version needed for time travel this far back: 7d, 12h, 30m.")
@click.option("--keep-last", type=click.IntRange(min=1), default=1, show_default=True,
              metavar="N", help="Always keep the newest N versions.")
@click.option("--dry-run", is_flag=True, help="Only report what would be removed.")
@s3_options
@json_option
def vacuum(url: str, retain: str, keep_last: int, dry_run: bool,
           storage_options: dict[str, Any], as_json: bool) -> int:
    """Expire old versions: remove their log entries and the data files only they use
    (aiostore's expire_snapshots). Files aiostore cannot prove it wrote are never removed."""
    keep_for = parse_duration(retain)
    return run(_vacuum(url, keep_for, keep_last, dry_run, storage_options, Output(as_json)))


async def _vacuum(url: str, keep_for: Any, keep_last: int, dry_run: bool,
                  options: dict[str, Any], out: Output) -> int:
    async with _open(url, options) as t:
        report = await t.expire_snapshots(keep_for=keep_for, keep_last=keep_last,
                                          dry_run=dry_run)
    doc = {"dry_run": report.dry_run, "expired_versions": report.expired_versions,
           "oldest_kept": report.oldest_kept, "log_files": report.log_files,
           "data_files": report.data_files, "bytes_freed": report.bytes_freed,
           "foreign_files": report.foreign_files}
    verb = "to remove" if dry_run else "removed"
    out.fields({**doc, "bytes_freed": f"{human_bytes(report.bytes_freed)} ({verb})"},
               [("dry_run", "dry run"), ("expired_versions", "expired versions"),
                ("oldest_kept", "oldest kept"), ("log_files", f"log files {verb}"),
                ("data_files", f"data files {verb}"), ("bytes_freed", "data bytes"),
                ("foreign_files", "foreign files (kept)")])
    return EXIT_OK


@table.command()
@_URL
@click.option("--version", "version", type=click.IntRange(min=0), required=True, metavar="N",
              help="The version whose contents become the new latest version.")
@s3_options
@json_option
def restore(url: str, version: int, storage_options: dict[str, Any], as_json: bool) -> int:
    """Commit a new version equal to version N (nothing is rewritten or lost)."""
    return run(_restore(url, version, storage_options, Output(as_json)))


async def _restore(url: str, version: int, options: dict[str, Any], out: Output) -> int:
    async with _open(url, options) as t:
        await _check_version(t, version)
        new = await t.restore(version)
    out.fields({"restored": version, "new_version": new},
               [("restored", "restored version"), ("new_version", "as new version")])
    return EXIT_OK
