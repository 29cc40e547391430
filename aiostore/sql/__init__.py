"""Frames into SQL tables and back: SQLite (aiosqlite) and PostgreSQL (asyncpg).

The ``sql`` extra (``pip install 'aiostore[sql]'``: SQLAlchemy, asyncpg, aiosqlite); nothing
here is imported by ``import aiostore`` until ``aiostore.write_sql``/``read_sql`` is used.

* :mod:`.write` — ``write_sql`` (arguments, the frame, the column types).
* :mod:`.read` — ``read_sql``.
* :mod:`.staging` — the write protocol: fail / append / replace through a staging table,
  one transaction, the sweep of leftover staging tables.
* :mod:`.postgres` — catalog, DDL, binary COPY in (raced against connection loss), CSV COPY
  out; :mod:`.pg_copy` — the binary COPY encoder (Arrow columns -> bytes).
* :mod:`.sqlite` — catalog, DDL, multi-row INSERT encoding.
* :mod:`.chunks` — frames cut into chunks and encoded in worker threads.
* :mod:`.types` — the Arrow <-> SQL type mapping; :mod:`.names` — quoting and staging names.
* :mod:`.connect` — ``con`` (URL, AsyncEngine, AsyncConnection) to a driver connection.
"""

from .read import read_sql as read_sql
from .write import write_sql as write_sql

__all__ = ["read_sql", "write_sql"]
