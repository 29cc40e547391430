"""What the commands share: S3 options, ``--json``, URL and location parsing, and running
a command's coroutine on a fresh event loop."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import click

from ..segments import ItemLocation
from .errors import CliError

__all__ = ["Target", "json_option", "parse_duration", "parse_location", "parse_time",
           "parse_url", "run", "s3_options"]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

#: S3 bucket names: 3-63 characters, lower-case letters, digits, dots and hyphens
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine on a new asyncio loop (S3 and tables are asyncio-only)."""
    return asyncio.run(coro)


def s3_options(f: F) -> F:
    """``--endpoint-url``, ``--region``, ``--profile``: the ``storage_options`` of the API.
    Unset ones are left to the standard AWS environment variables and files, which
    :func:`aiostore.open_storage` reads. The command receives ``storage_options`` (a dict)."""

    @click.option("--endpoint-url", metavar="URL", default=None,
                  help="S3 endpoint (e.g. http://127.0.0.1:8333); default: "
                       "AWS_ENDPOINT_URL, the profile's, or AWS itself.")
    @click.option("--region", metavar="NAME", default=None,
                  help="S3 region; default: AWS_REGION / AWS_DEFAULT_REGION or the profile's.")
    @click.option("--profile", metavar="NAME", default=None,
                  help="A profile of ~/.aws/credentials and ~/.aws/config; default: "
                       "AWS_PROFILE.")
    @functools.wraps(f)
    def wrapper(*args: Any, endpoint_url: str | None, region: str | None,
                profile: str | None, **kwargs: Any) -> Any:
        options = {"endpoint_url": endpoint_url, "region_name": region, "profile": profile}
        kwargs["storage_options"] = {k: v for k, v in options.items() if v is not None}
        return f(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def json_option(f: F) -> F:
    """``--json``: print JSON lines instead of columns for people."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Print JSON lines (one object per line) instead of columns.")(f)


@dataclass(frozen=True)
class Target:
    """A place named on the command line: a local path, or ``s3://bucket/key``."""

    text: str
    #: the local path, or None for S3
    path: str | None = None
    bucket: str | None = None
    #: the key (or prefix) in the bucket: "" for the whole bucket
    key: str = ""

    @property
    def remote(self) -> bool:
        """Whether it is in S3."""
        return self.bucket is not None

    @property
    def root(self) -> str:
        """The bucket's URL (``s3://bucket``)."""
        return f"s3://{self.bucket}"


def parse_url(text: str) -> Target:
    """A local path, ``file://PATH`` or ``s3://bucket[/key]``; anything else is a usage
    error naming what is wrong."""
    if not text:
        raise CliError("bad URL: empty")
    if "://" not in text:
        return Target(text, path=text)
    scheme, _, rest = text.partition("://")
    if scheme == "file":
        if not rest:
            raise CliError(f"bad URL {text!r}: file:// needs a path")
        return Target(text, path=rest)
    if scheme != "s3":
        raise CliError(f"bad URL {text!r}: unsupported scheme {scheme!r} (use s3://bucket/key "
                       "or a local path)")
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise CliError(f"bad URL {text!r}: no bucket (use s3://bucket/key)")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise CliError(f"bad URL {text!r}: {bucket!r} is not a valid S3 bucket name")
    if "//" in key or key.startswith("/"):
        raise CliError(f"bad URL {text!r}: empty path segment in the key")
    return Target(text, bucket=bucket, key=key)


def parse_location(text: str, *, with_size: bool) -> ItemLocation:
    """``INDEX:POSITION:SIZE`` (``with_size``) or ``INDEX[:POSITION]`` (position 0 when left
    out: the start of the segment); the size is 0 when not given."""
    parts = text.split(":")
    want = "INDEX:POSITION:SIZE" if with_size else "INDEX[:POSITION]"
    if (with_size and len(parts) != 3) or (not with_size and len(parts) not in (1, 2)) \
            or not all(p.isdigit() and p.isascii() for p in parts):
        raise CliError(f"bad location {text!r}: expected {want} (non-negative integers, "
                       "as printed by 'aiostore db scan')")
    numbers = [int(p) for p in parts] + [0] * (3 - len(parts))
    return ItemLocation(numbers[0], numbers[1], numbers[2])


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|h|d|w)")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``7d``, ``12h``, ``30m``, ``1w2d``, ``90s`` or plain seconds."""
    t = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        return timedelta(seconds=float(t))
    pos, seconds = 0, 0.0
    for m in _DURATION.finditer(t):
        if m.start() != pos:
            break
        seconds += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not t or pos != len(t):
        raise CliError(f"bad duration {text!r}: use a number with a unit, like 7d, 12h, 30m, "
                       "1w or 90s")
    return timedelta(seconds=seconds)


def parse_time(text: str) -> datetime:
    """ISO 8601 (``2026-12-04T16:00:00Z``; without a zone: UTC) or POSIX seconds."""
    t = text.strip()
    try:
        if re.fullmatch(r"\d+(\.\d+)?", t):
            return datetime.fromtimestamp(float(t), tz=timezone.utc)
        value = datetime.fromisoformat(t[:-1] + "+00:00" if t.endswith(("Z", "z")) else t)
    except (ValueError, OverflowError, OSError):
        raise CliError(f"bad time {text!r}: use ISO 8601 (2026-12-04T16:00:00Z) or POSIX "
                       "seconds") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
