"""``aiostore ls|cp|cat|rm``: local paths and ``s3://bucket/key`` objects alike.

Local paths go through aiostore's I/O core (:mod:`.files`, ``atomic_open``), S3 through
:func:`aiostore.open_storage`. ``cp`` streams in chunks of :data:`~.files.CHUNK` bytes (a
ranged read, then a write into a temp file or a multipart upload) and publishes atomically:
the destination appears whole or not at all.
"""

from __future__ import annotations

import asyncio
import errno
import os
import posixpath
import stat as stat_mod
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import click

from .._io.offload import run_sync
from .._progress import Bar
from ..atomic import atomic_open
from ..errors import NotFoundError, storage_error
from ..storage import Storage, open_storage
from . import files
from .common import Target, json_option, parse_url, run, s3_options
from .errors import EXIT_OK, CliError
from .output import Output

__all__ = ["cat", "cp", "ls", "rm"]


@dataclass(frozen=True)
class Entry:
    """A file or an object found under a target: ``rel`` is its path below the target."""

    rel: str
    size: int
    mtime: datetime | None
    url: str


class Stores:
    """One open :class:`Storage` per bucket for the whole command, closed at its end."""

    def __init__(self, stack: AsyncExitStack, options: dict[str, Any]) -> None:
        self._stack = stack
        self._options = options
        self._open: dict[str, Storage] = {}

    async def get(self, target: Target) -> Storage:
        """The storage of ``target``'s bucket."""
        assert target.bucket is not None
        storage = self._open.get(target.bucket)
        if storage is None:
            storage = open_storage(target.root, **self._options)
            await self._stack.enter_async_context(storage)
            self._open[target.bucket] = storage
        return storage


def _not_found(what: str, where: str) -> NotFoundError:
    return NotFoundError(errno.ENOENT, what, where)


def _s3_url(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


async def _entries(stores: Stores, target: Target, *, recursive: bool,
                   want_dir: bool | None = None) -> tuple[bool, list[Entry]]:
    """What ``target`` names: ``(is_dir, entries)``. A file or object is one entry (``rel``
    its name); a directory or prefix lists everything below it (``rel`` relative to it).
    :class:`~aiostore.errors.NotFoundError` when nothing is there."""
    if not target.remote:
        assert target.path is not None
        st = await files.stat(target.path)
        if not stat_mod.S_ISDIR(st.st_mode):
            return False, [Entry(os.path.basename(target.path), st.st_size,
                                 datetime.fromtimestamp(st.st_mtime, tz=timezone.utc),
                                 target.path)]
        found = []
        async with open_storage(target.path) as storage:
            async for info in storage.list():
                found.append(Entry(info.key, info.size, info.mtime,
                                   os.path.join(target.path, *info.key.split("/"))))
        return True, found
    storage = await stores.get(target)
    assert target.bucket is not None
    key = target.key
    exact: Entry | None = None
    if key and not key.endswith("/") and want_dir is not True:
        try:
            info = await storage.head(key)
            exact = Entry(posixpath.basename(key), info.size, info.mtime,
                          _s3_url(target.bucket, key))
        except NotFoundError:
            pass  # a prefix, perhaps
    if exact is not None and not recursive:
        return False, [exact]
    prefix = key if not key or key.endswith("/") else key + "/"
    found = [Entry(info.key[len(prefix):], info.size, info.mtime,
                   _s3_url(target.bucket, info.key))
             async for info in storage.list(prefix)]
    if not found and exact is not None:
        return False, [exact]
    if not found and key:
        raise _not_found("no such object or prefix", target.text)
    return True, found


def _collapse(entries: Sequence[Entry]) -> list[Entry | str]:
    """Non-recursive listing: entries directly below, and each subdirectory once."""
    out: list[Entry | str] = []
    seen: set[str] = set()
    for e in entries:
        head, sep, _ = e.rel.partition("/")
        if sep:
            if head not in seen:
                seen.add(head)
                out.append(head + "/")
        else:
            out.append(e)
    return out


# --- ls --------------------------------------------------------------------------------------
@click.command()
@click.argument("url")
@click.option("-r", "--recursive", is_flag=True, help="List everything below, not only the "
              "first level.")
@s3_options
@json_option
def ls(url: str, recursive: bool, storage_options: dict[str, Any], as_json: bool) -> int:
    """List a local directory or file, or s3://bucket/prefix: size, time, name."""
    target = parse_url(url)
    return run(_ls(target, recursive, storage_options, Output(as_json)))


async def _ls(target: Target, recursive: bool, options: dict[str, Any], out: Output) -> int:
    async with AsyncExitStack() as stack:
        stores = Stores(stack, options)
        _, entries = await _entries(stores, target, recursive=recursive)
    shown = list(entries) if recursive else _collapse(entries)
    rows: list[dict[str, Any]] = []
    for e in shown:
        if isinstance(e, str):
            rows.append({"name": e, "type": "dir", "size": None, "mtime": None, "url": None})
        else:
            rows.append({"name": e.rel, "type": "file", "size": e.size, "mtime": e.mtime,
                         "url": e.url})
    if out.json:
        for row in rows:
            out.record(row)
        return EXIT_OK
    for row in rows:
        when = row["mtime"].strftime("%Y-%m-%d %H:%M:%S") if row["mtime"] else ""
        size = "DIR" if row["type"] == "dir" else str(row["size"])
        out.line(f"{when:19}  {size:>12}  {row['name']}")
    return EXIT_OK


# --- cp --------------------------------------------------------------------------------------
async def _concurrently(jobs: int, work: Sequence[Callable[[], Awaitable[None]]]) -> None:
    """Run ``work`` with at most ``jobs`` at a time; the first failure cancels the rest."""
    queue = list(reversed(work))

    async def worker() -> None:
        while queue:
            await queue.pop()()

    tasks = [asyncio.ensure_future(worker()) for _ in range(min(jobs, len(work)))]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _chunks(stores: Stores, src: Target, entry: Entry) -> AsyncIterator[bytes]:
    if src.remote:
        storage = await stores.get(src)
        key = entry.url[len(src.root) + 1:]
        async for chunk in files.read_chunks(storage=storage, key=key, size=entry.size):
            yield chunk
    else:
        async for chunk in files.read_chunks(path=entry.url, size=entry.size):
            yield chunk


async def _copy_one(stores: Stores, src: Target, entry: Entry, dst: Target, bar: Bar,
                    *, make_parents: bool) -> None:
    if dst.remote:
        storage = await stores.get(dst)
        if src.remote and src.bucket == dst.bucket:  # one bucket: the server copies
            await storage.copy(entry.url[len(src.root) + 1:], dst.key)
            bar.update(entry.size)
            return
        async with storage.open_writer(dst.key) as writer:
            async for chunk in _chunks(stores, src, entry):
                await writer.write(chunk)
                bar.update(len(chunk))
        return
    assert dst.path is not None
    if make_parents:
        await files.make_parents(dst.path)
    async with atomic_open(dst.path, "wb") as f:
        async for chunk in _chunks(stores, src, entry):
            await f.write(chunk)
            bar.update(len(chunk))


def _join(dst: Target, rel: str) -> Target:
    if dst.remote:
        assert dst.bucket is not None
        key = posixpath.join(dst.key, rel) if dst.key else rel
        return Target(_s3_url(dst.bucket, key), bucket=dst.bucket, key=key)
    assert dst.path is not None
    path = os.path.join(dst.path, *rel.split("/"))
    return Target(path, path=path)


@click.command()
@click.argument("src")
@click.argument("dst")
@click.option("-r", "--recursive", is_flag=True,
              help="Copy everything below SRC (a directory or prefix) to below DST.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=8, show_default=True,
              help="Objects copied at once with --recursive.")
@s3_options
@json_option
def cp(src: str, dst: str, recursive: bool, jobs: int, storage_options: dict[str, Any],
       as_json: bool) -> int:
    """Copy a file or object: local <-> S3 <-> local, streamed, atomic at the destination.

    DST ending in '/' (or an existing directory) receives SRC under its own name. Prints one
    line per copy; a progress bar of bytes on stderr.
    """
    return run(_cp(parse_url(src), parse_url(dst), recursive, jobs, storage_options,
                   Output(as_json)))


async def _cp(src: Target, dst: Target, recursive: bool, jobs: int, options: dict[str, Any],
              out: Output) -> int:
    async with AsyncExitStack() as stack:
        stores = Stores(stack, options)
        is_dir, entries = await _entries(stores, src, recursive=recursive,
                                         want_dir=True if recursive else None)
        if is_dir and not recursive:
            raise CliError(f"{src.text} is a directory or prefix: use --recursive to copy "
                           "what is below it")
        if not is_dir and recursive:
            raise CliError(f"{src.text} is a single file or object: copy it without "
                           "--recursive")
        if is_dir:
            pairs = [(e, _join(dst, e.rel)) for e in entries]
        else:
            entry = entries[0]
            into = dst.text.endswith("/") or (dst.remote and not dst.key) or (
                not dst.remote and dst.path is not None and await files.is_dir(dst.path))
            pairs = [(entry, _join(dst, entry.rel) if into else dst)]
        bar = Bar("copying", total=sum(e.size for e, _ in pairs), unit="B")
        done: list[tuple[Entry, Target]] = []

        def job(entry: Entry, target: Target) -> Callable[[], Awaitable[None]]:
            async def go() -> None:
                await _copy_one(stores, src, entry, target, bar, make_parents=is_dir)
                done.append((entry, target))
                if out.json:
                    out.record({"copied": entry.url, "to": target.text, "size": entry.size})
                else:
                    out.line(f"copied {entry.url} -> {target.text} ({entry.size} bytes)")
            return go

        try:
            await _concurrently(jobs, [job(e, t) for e, t in pairs])
        finally:
            bar.close()
    return EXIT_OK


# --- cat -------------------------------------------------------------------------------------
@click.command()
@click.argument("url")
@s3_options
def cat(url: str, storage_options: dict[str, Any]) -> int:
    """Write a file's or object's bytes to stdout (streamed)."""
    return run(_cat(parse_url(url), storage_options))


async def _cat(target: Target, options: dict[str, Any]) -> int:
    async with AsyncExitStack() as stack:
        stores = Stores(stack, options)
        is_dir, entries = await _entries(stores, target, recursive=False)
        if is_dir:
            raise storage_error(OSError(errno.EISDIR, "is a directory or prefix"), "cat",
                                target.text)
        sys.stdout.flush()
        out = sys.stdout.buffer
        async for chunk in _chunks(stores, target, entries[0]):
            await run_sync(out.write, chunk)
        await run_sync(out.flush)
    return EXIT_OK


# --- rm --------------------------------------------------------------------------------------
@click.command()
@click.argument("url")
@click.option("-r", "--recursive", is_flag=True,
              help="Remove everything below a directory or prefix.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=8, show_default=True,
              help="Objects removed at once with --recursive.")
@s3_options
@json_option
def rm(url: str, recursive: bool, jobs: int, storage_options: dict[str, Any],
       as_json: bool) -> int:
    """Remove a file or object (with --recursive: everything below a directory or prefix).
    Prints one line per removal."""
    return run(_rm(parse_url(url), recursive, jobs, storage_options, Output(as_json)))


async def _rm(target: Target, recursive: bool, jobs: int, options: dict[str, Any],
              out: Output) -> int:
    async with AsyncExitStack() as stack:
        stores = Stores(stack, options)
        is_dir, entries = await _entries(stores, target, recursive=recursive,
                                         want_dir=True if recursive else None)
        if is_dir and not recursive:
            raise storage_error(OSError(errno.EISDIR, "is a directory or prefix (use "
                                        "--recursive)"), "rm", target.text)

        def job(entry: Entry) -> Callable[[], Awaitable[None]]:
            async def go() -> None:
                if target.remote:
                    storage = await stores.get(target)
                    await storage.delete(entry.url[len(target.root) + 1:])
                else:
                    await files.remove_file(entry.url)
                if out.json:
                    out.record({"removed": entry.url, "size": entry.size})
                else:
                    out.line(f"removed {entry.url}")
            return go

        await _concurrently(jobs, [job(e) for e in entries])
        if is_dir and not target.remote:
            assert target.path is not None
            await files.remove_empty_dirs(target.path)
    return EXIT_OK

