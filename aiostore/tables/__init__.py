"""Snapshot tables: versioned Parquet tables in the Delta Lake format, local or on S3.

* :mod:`.schema` — Arrow <-> Delta schemas; enforcement and evolution.
* :mod:`.log` — the transaction log: commits, snapshots (replay), checkpoints.
* :mod:`.table` — ``Table`` and ``open_table``: writes (optimistic commits), reads, time
  travel, history, restore, expiry.

Needs the ``frames`` extra (pyarrow); S3 tables the ``s3`` extra.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from .table import ExpireReport as ExpireReport
from .table import HistoryEntry as HistoryEntry
from .table import Table as Table
from .table import _Opener
from .table import open_table as open_table

__all__ = ["ExpireReport", "HistoryEntry", "Table", "expire_snapshots", "open_table",
           "read_table", "write_snapshot"]


async def write_snapshot(data: object, table_path: str, mode: str = "append", *,
                         schema_mode: str | None = None,
                         storage_options: Mapping[str, Any] | None = None) -> int:
    """Write ``data`` as a new version of the table at ``table_path`` (atio's name):
    ``mode="append"`` or ``"overwrite"``; returns the version. Creates the table if needed.
    See :meth:`Table.append` / :meth:`Table.overwrite`."""
    if mode not in ("append", "overwrite"):
        from ..errors import InvalidArgumentError

        raise InvalidArgumentError(f"mode must be 'append' or 'overwrite', not {mode!r}")
    async with open_table(table_path, storage_options=storage_options) as table:
        if mode == "append":
            return await table.append(data, schema_mode=schema_mode)
        return await table.overwrite(data, schema_mode=schema_mode, retry=True)


async def read_table(table_path: str, version: int | None = None, output_as: str = "pandas", *,
                     columns: list[str] | None = None,
                     storage_options: Mapping[str, Any] | None = None) -> Any:
    """The rows of the table at ``table_path`` (atio's name), at ``version`` or the latest;
    ``output_as`` is "pandas", "arrow" or "polars". See :meth:`Table.read`."""
    opener = _Opener(table_path, False, storage_options, 10, load=version is None)
    async with opener as table:  # (a given version: the latest need not be loaded first)
        return await table.read(version=version, columns=columns, output=output_as)


async def expire_snapshots(table_path: str, keep_for: timedelta = timedelta(days=7),
                           keep_last: int = 1, dry_run: bool = True, *,
                           storage_options: Mapping[str, Any] | None = None) -> ExpireReport:
    """Expire old versions of the table at ``table_path`` (atio's name); see
    :meth:`Table.expire_snapshots`. ``dry_run=True`` by default."""
    async with open_table(table_path, create=False, storage_options=storage_options) as table:
        return await table.expire_snapshots(keep_for=keep_for, keep_last=keep_last,
                                            dry_run=dry_run)
