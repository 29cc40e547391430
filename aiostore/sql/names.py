"""Names: quoting identifiers for the dialect, and the staging-table names that say they are ours.

Identifiers are always quoted (``"name"``, with ``"`` doubled), never pasted raw: a table called
``x"; DROP TABLE t; --`` is just a table with that name. Names PostgreSQL would silently
truncate (over 63 bytes) or cannot store (NUL) are refused before anything is sent.

A staging table is named ``_aiostore_staging_<tag>_<hash>_<random>``: ``tag`` is the target's
name reduced to ``[A-Za-z0-9]`` (at most 20 characters, for people reading the catalog),
``hash`` the first 8 hex digits of the SHA-256 of the target's name (which table it belongs to),
``random`` 12 random hex digits. The whole name stays within PostgreSQL's 63 bytes. A sweep
drops only tables whose names match this pattern for its own target exactly.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from ..errors import InvalidArgumentError

__all__ = ["STAGING_PREFIX", "check_name", "is_staging_for", "qualified", "quote",
           "staging_name"]

STAGING_PREFIX = "_aiostore_staging_"
PG_MAX_NAME_BYTES = 63  # NAMEDATALEN - 1: longer names are truncated by the server
_TAG_CHARS = 20
_HASH_HEX = 8
_RANDOM_HEX = 12


def check_name(name: object, what: str, dialect: str) -> str:
    """``name`` if it can be a table/column/schema name in ``dialect``, else
    :class:`~aiostore.errors.InvalidArgumentError` (nothing was sent)."""
    if not isinstance(name, str) or not name:
        raise InvalidArgumentError(f"the {what} name must be a non-empty str, not {name!r}")
    if "\x00" in name:
        raise InvalidArgumentError(f"the {what} name {name!r} contains a NUL character")
    if dialect == "postgresql" and len(name.encode("utf-8")) > PG_MAX_NAME_BYTES:
        raise InvalidArgumentError(
            f"the {what} name {name!r} is longer than PostgreSQL's {PG_MAX_NAME_BYTES} bytes "
            "(the server would truncate it)")
    return name


def quote(name: str) -> str:
    """``name`` as a quoted SQL identifier (the same rule in PostgreSQL and SQLite)."""
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str | None, name: str) -> str:
    """``"schema"."name"`` (or ``"name"``)."""
    return quote(name) if schema is None else f"{quote(schema)}.{quote(name)}"


def _stem(table: str) -> str:
    tag = re.sub(r"[^A-Za-z0-9]", "", table)[:_TAG_CHARS]
    digest = hashlib.sha256(table.encode("utf-8")).hexdigest()[:_HASH_HEX]
    return f"{STAGING_PREFIX}{tag}_{digest}_"


def staging_name(table: str) -> str:
    """A fresh staging-table name for ``table`` (at most 63 bytes)."""
    return _stem(table) + secrets.token_hex(_RANDOM_HEX // 2)


def is_staging_for(name: str, table: str) -> bool:
    """Whether ``name`` is a staging-table name :func:`staging_name` makes for ``table``."""
    stem = _stem(table)
    return (name.startswith(stem) and len(name) == len(stem) + _RANDOM_HEX
            and re.fullmatch(r"[0-9a-f]+", name[len(stem):]) is not None)
