"""Connection and engine resolution: whatever ``con`` is, one driver connection to work on.

``con`` may be

* a URL: ``sqlite:///relative.db``, ``sqlite:////abs/path.db`` (``sqlite+aiosqlite://`` too), or
  ``postgresql://user:pw@host:port/db`` (``postgres://``, ``postgresql+asyncpg://``; a Unix
  socket as ``?host=/dir``): aiostore opens its own aiosqlite / asyncpg connection and closes
  it afterwards;
* a SQLAlchemy ``AsyncEngine`` (drivers ``asyncpg`` or ``aiosqlite``): a connection is taken
  from its pool and given back (invalidated if it broke);
* a SQLAlchemy ``AsyncConnection``: used as it is and left open. If its driver connection is
  inside a transaction, the work *joins* it: it runs in a SAVEPOINT and is committed by the
  caller's own commit; otherwise aiostore begins and commits its own transaction.

:class:`Session` is what the rest of the package works with: the dialect, the driver
connection, and transaction helpers that emit ``BEGIN``/``COMMIT``/``ROLLBACK`` (or
``SAVEPOINT``/``RELEASE``/``ROLLBACK TO``) themselves. On SQLite aiostore's own connections run
with ``isolation_level=None`` and an explicit ``BEGIN IMMEDIATE``, so DDL such as
``CREATE TABLE`` is inside the transaction and rolled back with it.

asyncpg and aiosqlite are asyncio libraries: this part runs on asyncio (and uvloop) only.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import re
import secrets
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .._io.offload import run_sync
from ..errors import InvalidArgumentError, InvalidTypeError, StorageUnavailableError

__all__ = ["Session", "finish", "lost", "open_session", "unavailable"]

T = TypeVar("T")
ROLLBACK_TIMEOUT_S = 30.0


def unavailable(message: str, target: str | None = None) -> StorageUnavailableError:
    """The error for a database that cannot be reached (``ECONNREFUSED``)."""
    err = StorageUnavailableError(errno.ECONNREFUSED, message)
    err.filename = target
    return err


def lost(message: str) -> StorageUnavailableError:
    """The error for a connection lost mid-operation (``ECONNRESET``)."""
    return StorageUnavailableError(errno.ECONNRESET, message)


def require(module: str) -> Any:
    """Import a driver of the ``sql`` extra or explain how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise InvalidArgumentError(
            f"aiostore's SQL support needs {module}: pip install 'aiostore[sql]'") from exc


def require_asyncio() -> None:
    """asyncpg and aiosqlite run on asyncio only."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise InvalidArgumentError(
            "write_sql/read_sql run on asyncio (asyncpg and aiosqlite are asyncio libraries), "
            "not on this event loop") from None


async def finish(aw: Awaitable[T]) -> T:
    """Await ``aw`` to its end even if the caller is cancelled meanwhile; then re-raise the
    cancellation (after returning nothing). For commits and rollbacks that must not be cut."""
    task = asyncio.ensure_future(aw)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():
                if task.cancelled():
                    raise
                cancelled = True
                result = task.result()
                break
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return result


@dataclass
class Session:
    """One driver connection of a known dialect, and how to run a transaction on it."""

    dialect: str  # "postgresql" | "sqlite"
    driver: Any  # asyncpg.Connection | aiosqlite.Connection
    joined: bool = False  # inside the caller's transaction: savepoints, no commit
    own: bool = False  # aiostore opened it (and closes it)
    broken: bool = False  # lost or in an unknown state: never reuse
    _savepoint: str = field(default_factory=lambda: f"aiostore_{secrets.token_hex(6)}")

    async def execute(self, sql: str, *args: Any) -> None:
        """Run one statement, no result."""
        if self.dialect == "postgresql":
            await self.driver.execute(sql, *args)
        else:
            await self.driver.execute(sql, args)

    async def begin(self) -> None:
        """Start the write transaction (or the savepoint, when joined)."""
        if self.joined:
            await self.execute(f"SAVEPOINT {self._savepoint}")
        elif self.dialect == "sqlite":
            await self.execute("BEGIN IMMEDIATE")
        else:
            await self.execute("BEGIN")

    async def commit(self) -> None:
        """Commit (or release the savepoint: the caller's commit makes it durable)."""
        if self.joined:
            await self.execute(f"RELEASE SAVEPOINT {self._savepoint}")
        else:
            await self.execute("COMMIT")

    async def rollback(self) -> None:
        """Roll back what :meth:`begin` started; a broken connection is marked, not reused.

        Bounded (``ROLLBACK_TIMEOUT_S``); a failed rollback leaves the server to abort the
        transaction when the connection is closed (aiostore's own) or invalidated.
        """
        try:
            await asyncio.wait_for(self._rollback(), ROLLBACK_TIMEOUT_S)
        except Exception:
            self.broken = True

    async def _rollback(self) -> None:
        if self.joined:
            await self.execute(f"ROLLBACK TO SAVEPOINT {self._savepoint}")
            await self.execute(f"RELEASE SAVEPOINT {self._savepoint}")
        elif self._in_transaction():
            await self.execute("ROLLBACK")

    def _in_transaction(self) -> bool:
        if self.dialect == "postgresql":
            return not self.driver.is_closed() and bool(self.driver.is_in_transaction())
        return bool(self.driver.in_transaction)


def _dialect_of_url(url: str) -> tuple[str, str]:
    """(dialect, what the driver connects to) for a URL string."""
    m = re.match(r"([A-Za-z][A-Za-z0-9]*)(\+[A-Za-z0-9_]+)?://(.*)\Z", url, re.S)
    if m is None:
        raise InvalidArgumentError(f"not a database URL: {url!r} (expected sqlite:///path.db "
                                   "or postgresql://...)")
    scheme, driver, rest = m.group(1).lower(), (m.group(2) or "")[1:], m.group(3)
    if scheme == "sqlite":
        if driver not in ("", "aiosqlite", "pysqlite"):
            raise InvalidArgumentError(f"unsupported SQLite driver {driver!r} in {url!r}")
        if not rest.startswith("/"):
            raise InvalidArgumentError(f"a SQLite URL is sqlite:///relative.db or "
                                       f"sqlite:////absolute.db, not {url!r}")
        path = rest[1:].split("?", 1)[0]
        return "sqlite", path or ":memory:"
    if scheme in ("postgresql", "postgres"):
        if driver not in ("", "asyncpg", "psycopg", "psycopg2", "pg8000"):
            raise InvalidArgumentError(f"unsupported PostgreSQL driver {driver!r} in {url!r}")
        return "postgresql", "postgresql://" + rest
    raise InvalidArgumentError(f"unsupported database {scheme!r} in {url!r}: aiostore writes "
                               "to SQLite and PostgreSQL")


async def _connect_url(url: str) -> Session:
    dialect, target = _dialect_of_url(url)
    if dialect == "sqlite":
        aiosqlite = require("aiosqlite")
        pending = aiosqlite.connect(target, isolation_level=None, timeout=30.0)
        try:
            driver = await pending
        except Exception as exc:
            # aiosqlite stops its thread on a failed connect; let it finish while the loop
            # still runs (it reports back through the loop)
            thread = getattr(pending, "_thread", None)
            if thread is not None:
                await run_sync(thread.join, 5.0)
            raise unavailable(f"cannot open the SQLite database {target!r}: {exc}",
                              target) from exc
        return Session("sqlite", driver, own=True)
    asyncpg = require("asyncpg")
    try:
        driver = await asyncpg.connect(target)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise unavailable(f"cannot connect to PostgreSQL: {exc}") from exc
    return Session("postgresql", driver, own=True)


def _is_sqlalchemy(obj: object) -> bool:
    return type(obj).__module__.startswith("sqlalchemy.")


def _check_driver(dialect: Any) -> str:
    name, driver = dialect.name, dialect.driver
    if (name, driver) not in (("postgresql", "asyncpg"), ("sqlite", "aiosqlite")):
        raise InvalidArgumentError(
            f"aiostore needs a postgresql+asyncpg or sqlite+aiosqlite engine, not "
            f"{name}+{driver}")
    return str(name)


@contextlib.asynccontextmanager
async def open_session(con: object) -> AsyncIterator[Session]:
    """A :class:`Session` on ``con`` (see the module docstring), cleaned up on the way out.

    aiostore's own connections are closed (a broken one terminated); a pooled connection is
    given back, or invalidated when broken; a caller's ``AsyncConnection`` is left open.
    """
    require_asyncio()
    if isinstance(con, str):
        session = await _connect_url(con)
        try:
            yield session
        finally:
            await finish(_close_own(session))
        return
    if not _is_sqlalchemy(con):
        raise InvalidTypeError(
            f"con must be a database URL, a SQLAlchemy AsyncEngine or AsyncConnection, not "
            f"{type(con).__name__}")
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    if isinstance(con, AsyncEngine):
        dialect = _check_driver(con.dialect)
        conn = await con.connect()
        pooled: Session | None = None
        try:
            pooled = await _from_connection(conn, dialect)
            yield pooled
        finally:
            await finish(_release(conn, pooled is not None and pooled.broken))
        return
    if isinstance(con, AsyncConnection):
        dialect = _check_driver(con.dialect)
        session = await _from_connection(con, dialect)
        try:
            yield session
        finally:
            if session.broken:
                with contextlib.suppress(Exception):
                    await finish(con.invalidate())
        return
    raise InvalidTypeError(
        f"con must be a database URL, a SQLAlchemy AsyncEngine or AsyncConnection, not "
        f"{type(con).__name__}")


async def _from_connection(conn: Any, dialect: str) -> Session:
    """The driver connection under a SQLAlchemy ``AsyncConnection``; joined when SQLAlchemy
    or the driver is inside a transaction.

    SQLAlchemy begins lazily: its transaction may exist before the driver's. Then the driver's
    is started the way SQLAlchemy would start it (asyncpg: a first statement through
    SQLAlchemy; pysqlite: an explicit ``BEGIN``, which its commit and rollback then end), so
    that the caller's commit or rollback covers the write.
    """
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection

    def driver_in_transaction() -> bool:
        if dialect == "postgresql":
            return bool(driver.is_in_transaction())
        return bool(driver.in_transaction)

    if conn.in_transaction() and not driver_in_transaction():
        if dialect == "postgresql":
            await conn.exec_driver_sql("SELECT 1")
        else:
            await driver.execute("BEGIN")
    return Session(dialect, driver, joined=driver_in_transaction())


async def _release(conn: Any, broken: bool) -> None:
    if broken:
        with contextlib.suppress(Exception):
            await conn.invalidate()
    with contextlib.suppress(Exception):
        await conn.close()


async def _close_own(session: Session) -> None:
    driver = session.driver
    if session.dialect == "postgresql":
        if session.broken or driver.is_closed():
            driver.terminate()
            return
        try:
            await asyncio.wait_for(driver.close(), ROLLBACK_TIMEOUT_S)
        except Exception:
            driver.terminate()
        return
    with contextlib.suppress(Exception):
        await driver.close()

