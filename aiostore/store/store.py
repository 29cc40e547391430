"""``Store``: an async, dict-like store of named objects over a local directory or S3.

Every operation goes through one :class:`~aiostore.Storage` (``aiostore.open_storage(root)``)
and the package's format registry: a ``set`` picks the handler for the object (or for the
key's extension), encodes off the event loop (streamed for large objects) and publishes
atomically; a ``get`` resolves the key to its stored object (:mod:`.keys`), reads it (from the
validated cache for a remote root: :mod:`.cache`) and decodes it off the loop.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio

from ..errors import (
    BucketNotFoundError,
    InvalidArgumentError,
    InvalidTypeError,
    KeyNotFoundError,
    NotFoundError,
    PreconditionFailedError,
    SerializationError,
    UnknownFormatError,
)
from ..formats import (
    Destination,
    FormatOptions,
    Handler,
    ObjectDestination,
    Registry,
    default_registry,
)
from ..storage import is_remote, open_storage
from ..storage.base import ObjectInfo, Storage, check_prefix
from .cache import Cache, default_cache_dir
from .fetch import ObjectChanged, fetch
from .gather import gather
from .keys import (
    MARKER_SUFFIX,
    Candidate,
    KeyInfo,
    StoreKey,
    choose,
    marker_key,
    matches,
    not_found,
    parse_key,
)
from .listing import Listings
from .locks import KeyLocks
from .tee import CachingDestination

if TYPE_CHECKING:
    from .sync import SyncStore

__all__ = ["Store"]

_OUTPUTS = ("pandas", "polars", "arrow")
_ATTEMPTS = 5  # resolutions of one get when the object changes under it
_REMEMBERED = 1 << 16  # resolutions a cached store remembers (least recently used forgotten)
_MISSING: Any = object()


def _seconds(value: object, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise InvalidArgumentError(f"{name} must be None, seconds >= 0 or a timedelta, not "
                                   f"{value!r}")
    return float(value)


def _check_output(output: object, name: str) -> str:
    if output not in _OUTPUTS:
        raise InvalidArgumentError(f"{name} must be one of {', '.join(_OUTPUTS)}, not "
                                   f"{output!r}")
    assert isinstance(output, str)
    return output


class Store:
    """A dict-like store of named objects in a directory or an S3 prefix; async.

    ::

        async with aiostore.Store("./data") as store:       # or "s3://bucket/prefix"
            await store.set("frame", df)                      # -> frame.parquet
            df = await store.get("frame")

    ``root`` is a local directory or ``s3://bucket/prefix``; ``storage_options`` go to
    :func:`aiostore.open_storage` (S3 endpoint, credentials, part sizes...).

    **Keys** are object keys without — or with — an extension: ``set("frame", df)`` stores
    ``frame.parquet`` (the format chosen by the object's type), ``set("conf.yaml", d)``
    stores YAML (an explicit extension wins), and ``get("frame")`` resolves the key to the
    one stored object named ``frame.<known extension>``. Keys are validated like storage keys
    (no ``..``, no absolute paths, no escape from the root through symbolic links).

    **Formats** come from the package's registry (``registry=`` for another one):
    :meth:`register_handler` adds one to this store only. Frames read back as ``frames``
    (``"pandas"``, ``"polars"`` or ``"arrow"``) unless ``get(..., output=...)`` says
    otherwise. Pickle (``.pkl``) is refused unless ``allow_pickle=True``: unpickling data
    from a shared folder or bucket runs code.

    **Cache** (remote roots only; a local root is read in place): ``cache=True`` (the
    directory ``~/.cache/aiostore``, or ``$AIOSTORE_CACHE_DIR``) or a directory path keeps
    one file per object, validated by ETag on every ``get``; ``cache_ttl`` (seconds or a
    timedelta) serves an entry validated less than that long ago without asking the store;
    ``max_bytes`` bounds the cache (least recently used entries go first). See
    ``docs/store.md`` for the guarantees.

    An async context manager: ``async with`` opens the storage and closes it (or call
    :meth:`aclose`). :meth:`sync` gives the blocking, dict-syntax facade.

    Cancellation: each method says what it guarantees; in short, reads are safe to cancel at
    any point, and a write leaves the old object or the new one — never a part, never a
    partial cache entry.
    """

    def __init__(self, root: str | os.PathLike[str], *,
                 storage_options: Mapping[str, Any] | None = None,
                 cache: bool | str | os.PathLike[str] | None = None,
                 cache_ttl: float | timedelta | None = None, max_bytes: int | None = None,
                 frames: str = "pandas", allow_pickle: bool = False,
                 registry: Registry | None = None) -> None:
        if storage_options is not None and not isinstance(storage_options, Mapping):
            raise InvalidTypeError(f"storage_options must be a mapping, not "
                                   f"{type(storage_options).__name__}")
        if max_bytes is not None and (isinstance(max_bytes, bool)
                                      or not isinstance(max_bytes, int) or max_bytes <= 0):
            raise InvalidArgumentError(f"max_bytes must be None or an int > 0, not "
                                       f"{max_bytes!r}")
        if not isinstance(allow_pickle, bool):
            raise InvalidTypeError(f"allow_pickle must be a bool, not {allow_pickle!r}")
        if registry is not None and not isinstance(registry, Registry):
            raise InvalidTypeError(f"registry must be an aiostore.formats.Registry, not "
                                   f"{type(registry).__name__}")
        ttl = _seconds(cache_ttl, "cache_ttl")
        self.frames = _check_output(frames, "frames")
        self.allow_pickle = allow_pickle
        options = dict(storage_options or {})
        self._storage: Storage = open_storage(root, **options)
        self.url: str = self._storage.url
        self._registry = registry if registry is not None else default_registry()
        self._private_registry = registry is not None
        self._cache: Cache | None = None
        if cache is not None and cache is not False and is_remote(self.url):
            directory = default_cache_dir() if cache is True else os.fspath(cache)
            if not isinstance(directory, str) or not directory:
                raise InvalidArgumentError(f"cache must be None, True or a directory, not "
                                           f"{cache!r}")
            root_id = f"{self.url}|{options.get('endpoint_url') or ''}"
            self._cache = Cache(directory, root_id, ttl=ttl, max_bytes=max_bytes)
        self._writers = KeyLocks()
        self._listings = Listings(self._storage)
        #: with a cache: stem -> (the object it resolved to, when), most recent last
        self._resolved: OrderedDict[str, tuple[Candidate, float]] = OrderedDict()

    @classmethod
    def sync(cls, root: str | os.PathLike[str], **kwargs: Any) -> SyncStore:
        """The blocking facade (``s["k"] = v``, ``s["k"]``, ``"k" in s``, ``del s["k"]``,
        ``list(s.keys())``): a :class:`~aiostore.store.SyncStore` running this store on an
        event loop in a helper thread (an anyio blocking portal). Same arguments as
        :class:`Store`, plus ``backend=`` (``"asyncio"``, the default, or ``"trio"`` for a
        local root). Raises :class:`~aiostore.errors.RunningLoopError` when called from inside
        a running event loop (use the async API there). Use it as a context manager, or call
        ``close()``.

        Cancellation: not applicable (blocking calls; a ``KeyboardInterrupt`` while one waits
        leaves it to finish on the helper thread)."""
        from .sync import SyncStore

        return SyncStore(root, **kwargs)

    # --- lifecycle -------------------------------------------------------------------------
    async def __aenter__(self) -> Store:
        await self._storage.__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the storage (its connections). Idempotent. Cancellation: the close completes
        (shielded)."""
        with anyio.CancelScope(shield=True):
            await self._storage.aclose()

    def __repr__(self) -> str:
        cache = f", cache={self._cache.directory!r}" if self._cache is not None else ""
        return f"Store({self.url!r}{cache})"

    @property
    def storage(self) -> Storage:
        """The :class:`~aiostore.Storage` every operation goes through."""
        return self._storage

    @property
    def registry(self) -> Registry:
        """The format registry this store reads and writes with."""
        return self._registry

    @property
    def cache_dir(self) -> str | None:
        """The directory of this store's cache entries (None without a cache)."""
        return self._cache.ns_dir if self._cache is not None else None

    # --- formats ---------------------------------------------------------------------------
    def register_handler(self, handler: Handler) -> None:
        """Add a format handler to this store (the package's registry is copied first, so
        other stores and ``aiostore.write`` are not affected; a ``registry=`` passed in is
        changed in place). It wins ties against the handlers registered before it.

        Raises :class:`~aiostore.errors.InvalidTypeError` for an object that is not a handler
        (see :class:`aiostore.formats.Handler`) and
        :class:`~aiostore.errors.InvalidArgumentError` for one claiming the replace marker's
        suffix. Cancellation: not applicable (synchronous)."""
        exts = getattr(handler, "extensions", ())
        if isinstance(exts, tuple) and MARKER_SUFFIX in exts:
            raise InvalidArgumentError(f"{MARKER_SUFFIX!r} is reserved for the store's replace "
                                       "markers")
        if not self._private_registry:
            self._registry = self._registry.copy()
            self._private_registry = True
        self._registry.register(handler)

    def _format_name(self, ext: str) -> str:
        try:
            h = self._registry.for_extension(ext, allow_pickle=True)
        except UnknownFormatError:
            return ext.lstrip(".")
        name = getattr(h, "format_name", None)
        return str(name(ext)) if callable(name) else ext.lstrip(".")

    def _read_options(self, ext: str, output: str | None, model: type | None) -> FormatOptions:
        """The options of a read of ``ext``: ``output`` if given, else the store's ``frames``
        for formats that hold frames; raises early for an unreadable format (pickle)."""
        options = FormatOptions(output=output, model=model)
        handler = self._registry.for_extension(ext, options, allow_pickle=self.allow_pickle)
        if output is None and getattr(handler, "holds_frames", False):
            options.output = self.frames
        return options

    # --- resolution ------------------------------------------------------------------------
    async def _listing(self, stem: str, *, confirm_empty: bool = False
                       ) -> tuple[list[Candidate], ObjectInfo | None]:
        """The objects and the replace marker of ``stem``. A listing is not a snapshot: one
        that runs during a format change can miss both the old object (deleted before it was
        reached) and the new one (published after its name was passed). With
        ``confirm_empty``, finding nothing is confirmed by a second listing, which starts
        after that change's publish."""
        found, marker = matches(await self._listings.of(stem), stem, self._registry)
        if not found and confirm_empty:
            found, marker = matches(await self._listings.of(stem), stem, self._registry)
        return found, marker

    async def _resolve(self, key: StoreKey) -> Candidate:
        """The object ``key`` resolves to now (one listing; the marker is read only when two
        objects match)."""
        found, marker = await self._listing(key.stem, confirm_empty=True)
        marker_ext: str | None = None
        if marker is not None and not key.ext and len(found) > 1:
            try:
                marker_ext = (await self._storage.get(marker.key)).decode("ascii", "replace")
            except NotFoundError:  # the replace just finished: look again
                raise ObjectChanged(marker.key) from None
        found_one = choose(key, found, marker_ext)
        self._remember(key.stem, found_one)
        return found_one

    def _remember(self, stem: str, found: Candidate | None) -> None:
        """Note (or, with None, forget) what ``stem`` resolves to; only with a cache."""
        if found is None:
            self._resolved.pop(stem, None)
        elif self._cache is not None:
            self._resolved[stem] = (found, time.monotonic())
            self._resolved.move_to_end(stem)
            if len(self._resolved) > _REMEMBERED:
                self._resolved.popitem(last=False)

    def _known(self, key: StoreKey) -> tuple[Candidate | None, str, str, float | None]:
        """What is known of ``key``'s object without a listing: (the candidate this store
        resolved it to, or None; its object key; its extension; when it was resolved). A key
        naming its extension names its object; otherwise the object is the one remembered."""
        entry = self._resolved.get(key.stem)
        if entry is not None and (not key.ext or entry[0].ext == key.ext):
            return entry[0], entry[0].info.key, entry[0].ext, entry[1]
        if key.ext:
            return None, key.object_key(key.ext), key.ext, None
        return None, "", "", None

    async def _cached(self, key: StoreKey, output: str | None, model: type | None
                      ) -> tuple[Any, str, FormatOptions] | None:
        """A cache hit found without a listing: (data, extension, read options), or None.

        The key's object is known (see :meth:`_known`). Within ``cache_ttl`` of its
        resolution its entry is served with no request; otherwise one ``head`` of the object
        validates the entry's ETag. A missing object, or one that changed, is left to the
        caller: it lists the key's objects again (the format may have changed, or the key
        become ambiguous) and downloads."""
        cache = self._cache
        assert cache is not None
        remembered, object_key, ext, when = self._known(key)
        if not object_key:
            return None
        options = self._read_options(ext, output, model)
        if remembered is not None and cache.ttl is not None and when is not None \
                and time.monotonic() - when < cache.ttl:
            data = await cache.read_fresh(object_key)
            if data is not None:
                return data, ext, options
        try:
            info = await self._storage.head(object_key)
        except NotFoundError as exc:
            if isinstance(exc, BucketNotFoundError):
                raise
            self._remember(key.stem, None)
            return None
        data = await cache.read(info)
        if data is None or (remembered is None and key.ext and not await self._sole(key, info)):
            return None
        if remembered is not None:  # validated now (for cache_ttl, and the memo's order)
            self._remember(key.stem, Candidate(info, ext))
        return data, ext, options

    async def _sole(self, key: StoreKey, info: ObjectInfo) -> bool:
        """Whether ``info`` is what ``key`` (naming its extension) resolves to: checked once
        per key and store, with a listing (another spelling of the extension would make the
        key ambiguous); remembered after."""
        try:
            found = await self._resolve(key)
        except (KeyNotFoundError, ObjectChanged):
            return False
        return found.info.key == info.key

    def _key_info(self, stem: str, found: Candidate) -> KeyInfo:
        info = found.info
        return KeyInfo(key=stem, object_key=info.key, url=f"{self.url.rstrip('/')}/{info.key}",
                       extension=found.ext, format=self._format_name(found.ext),
                       size=info.size, etag=info.etag, modified=info.mtime)

    # --- reading ---------------------------------------------------------------------------
    async def get(self, key: str, *, output: str | None = None, model: type | None = None,
                  default: Any = _MISSING) -> Any:
        """The object stored under ``key``.

        ``output`` — ``"pandas"``, ``"polars"`` or ``"arrow"``: frames (and JSON records)
        read back as that (default: the store's ``frames`` for frame formats); ``model`` — a
        dataclass or pydantic class to build from JSON; ``default`` — returned instead of
        raising when the key has no object.

        Raises :class:`~aiostore.errors.KeyNotFoundError` (a ``KeyError`` and a
        ``NotFoundError``) for a missing key, :class:`~aiostore.errors.AmbiguousKeyError` when
        a key without extension matches two objects and no replace in progress says which is
        current, :class:`~aiostore.errors.UnknownFormatError` for an extension no handler
        reads (pickle without ``allow_pickle``) — before anything is downloaded.

        A remote object is read from the cache when its entry has the ETag the store reports
        now: for a key this store resolved before (or one naming its extension), one ``head``
        of its object says so; otherwise the listing that resolves the key does. A missing or
        changed object is resolved again with a listing (its format may have changed) and
        downloaded — once for concurrent gets of one object — and becomes the entry. Decoding
        runs in the worker pool. Cancellation: safe at any point (a download in flight is
        dropped; no partial cache entry is ever published).
        """
        if output is not None:
            _check_output(output, "output")
        k = parse_key(key, self._registry)
        for _ in range(_ATTEMPTS):
            hit = await self._cached(k, output, model) if self._cache is not None else None
            if hit is not None:
                data, ext, options = hit
            else:
                try:
                    found = await self._resolve(k)
                except KeyNotFoundError:
                    if default is not _MISSING:
                        return default
                    raise
                except ObjectChanged:
                    continue
                ext = found.ext
                options = self._read_options(ext, output, model)
                try:
                    data = await self._load(found.info)
                except ObjectChanged:
                    self._remember(k.stem, None)
                    continue
                except NotFoundError as exc:
                    if isinstance(exc, BucketNotFoundError):
                        raise
                    self._remember(k.stem, None)
                    continue  # removed between the listing and the read: resolve again
            return await self._registry.decode(data, ext, options=options,
                                               allow_pickle=self.allow_pickle)
        raise PreconditionFailedError(f"{key!r} kept changing while it was read "
                                      f"({_ATTEMPTS} attempts)")

    async def _load(self, info: ObjectInfo) -> bytes | bytearray:
        """The bytes of ``info`` (the cache's entry when valid, else downloaded)."""
        cache = self._cache
        if cache is None:
            return await fetch(self._storage, info, verify=False)
        data = await cache.read(info)
        if data is not None:
            return data
        async with cache.downloads.hold(info.key):
            data = await cache.read(info)  # downloaded by a concurrent get meanwhile
            if data is not None:
                return data
            if not cache.fits(info.size):
                return await fetch(self._storage, info, verify=False)
            data = await fetch(self._storage, info, verify=True)
            with anyio.CancelScope(shield=True):
                await cache.store(info, [data])
            return data

    async def contains(self, key: str) -> bool:
        """Whether ``key`` has a stored object (one or several: an ambiguous key is there).
        One listing. Cancellation: safe."""
        k = parse_key(key, self._registry)
        found, _ = await self._listing(k.stem, confirm_empty=True)
        return any(not k.ext or c.ext == k.ext for c in found)

    async def info(self, key: str) -> KeyInfo:
        """What is stored under ``key``: the :class:`~aiostore.store.KeyInfo` (size, ETag,
        modified time, extension and format, the object key and its full URL). Errors as
        :meth:`get`. Cancellation: safe."""
        k = parse_key(key, self._registry)
        for _ in range(_ATTEMPTS):
            try:
                return self._key_info(k.stem, await self._resolve(k))
            except ObjectChanged:
                continue
        raise PreconditionFailedError(f"{key!r} kept changing while it was resolved")

    async def keys(self, prefix: str = "") -> AsyncIterator[str]:
        """The keys below ``prefix`` (a start of keys, like ``"runs/"``), without their
        extensions; each once, even when it is ambiguous. Streamed in the order of the stored
        objects' names (UTF-8 byte order: ``a.b/c.json`` comes before ``a.json``, so key
        ``a.b/c`` before ``a``). Objects whose names end in no known extension are not keys
        of the store and are skipped. Cancellation: safe."""
        check_prefix(prefix)
        open_stems: list[str] = []  # stems whose objects may still follow (contiguous in order)
        async for info in self._storage.list(prefix):
            name = info.key
            if name.endswith(MARKER_SUFFIX):
                continue
            stem, ext = self._registry.split_extension(name)
            if not ext:
                continue
            open_stems = [s for s in open_stems if name.startswith(s + ".")]
            if stem in open_stems:
                continue
            open_stems.append(stem)
            yield stem

    def __aiter__(self) -> AsyncIterator[str]:
        """``async for key in store``: every key, as :meth:`keys` lists them."""
        return self.keys()

    # --- writing ---------------------------------------------------------------------------
    async def set(self, key: str, value: object) -> KeyInfo:
        """Store ``value`` under ``key``, atomically; returns the new object's
        :class:`~aiostore.store.KeyInfo`.

        The format is the key's extension if it names one, else the best handler's for the
        object's type. Encoding runs in the worker pool (streamed, with a multipart upload on
        S3, for large objects). Readers see the old object or the new one, never a part. An
        object of another format under the same key (``conf.json`` when setting
        ``conf.yaml``) is replaced: the new object is published first, then the old one is
        deleted; a replace marker makes readers in between resolve to the new one. A remote
        store's cache entry becomes the new object (from the same bytes).

        Raises :class:`~aiostore.errors.UnknownFormatError` for an object no handler takes
        (pickle without ``allow_pickle``), :class:`~aiostore.errors.SerializationError` for
        one the key's format cannot hold — both before anything is written.

        Cancellation: before the publish, nothing changes (a streamed upload is aborted);
        once the object is published, the replace completes (old objects deleted, shielded)
        and then the cancellation propagates.
        """
        k = parse_key(key, self._registry)
        handler = self._registry.for_object(value, k.ext or None,
                                            allow_pickle=self.allow_pickle,
                                            explicit=bool(k.ext))
        ext = k.ext or handler.extensions[0]
        # never write what this store could not read back (.pkl without allow_pickle)
        self._registry.for_extension(ext, allow_pickle=self.allow_pickle)
        object_key = k.object_key(ext)
        async with self._writers.hold(k.stem):
            found, marker = await self._listing(k.stem)
            others = [c for c in found if c.info.key != object_key]
            previous = next((c.info.etag for c in found if c.info.key == object_key), None)
            if others:  # readers between the publish and the deletes: the new one wins
                await self._storage.put(marker_key(k.stem), ext.encode("ascii"))
            target = ObjectDestination(self._storage, object_key)
            dest: Destination = target
            if self._cache is not None:
                dest = CachingDestination(target, self._cache, object_key)
            try:
                info = await self._registry.write(value, dest, ext, options=FormatOptions(),
                                                  handler=handler,
                                                  allow_pickle=self.allow_pickle)
            except (SerializationError, UnknownFormatError):
                if others:  # nothing was published: the marker would name nothing
                    with anyio.CancelScope(shield=True):
                        await self._storage.delete(marker_key(k.stem))
                raise
            except BaseException:
                # cancelled or failed: if the object was published all the same (a worker
                # thread that could not be abandoned, a lost answer), finish the replace
                with anyio.CancelScope(shield=True):
                    await self._finish_if_published(k.stem, object_key, previous, others,
                                                    marker is not None)
                raise
            assert info is not None
            with anyio.CancelScope(shield=True):
                await self._finish_replace(k.stem, others,
                                           marker is not None or bool(others))
            written = Candidate(info, ext)
            self._remember(k.stem, written)
            return self._key_info(k.stem, written)

    async def _finish_if_published(self, stem: str, object_key: str, previous: str | None,
                                   others: list[Candidate], marker: bool) -> None:
        """After a failed publish: complete the replace if ``object_key`` changed anyway (its
        ETag is not ``previous``); never raises (the original error is what the caller
        sees)."""
        try:
            now = await self._storage.head(object_key)
        except Exception:
            return
        if now.etag != previous:
            with contextlib.suppress(Exception):
                await self._finish_replace(stem, others, marker or bool(others))

    async def _finish_replace(self, stem: str, others: list[Candidate], marker: bool) -> None:
        """Delete the objects replaced, then the marker (the new object is published)."""
        calls = [partial(self._storage.delete, c.info.key) for c in others]
        if self._cache is not None:
            calls += [partial(self._cache.discard, c.info.key) for c in others]
        await gather(*calls)
        if marker:
            await self._storage.delete(marker_key(stem))

    async def delete(self, key: str, *, missing_ok: bool = False) -> None:
        """Remove ``key``: every object it matches (a key naming an extension: that object
        only), and its replace marker. :class:`~aiostore.errors.KeyNotFoundError` if there is
        none, unless ``missing_ok``. Cancellation: before the first delete nothing changes;
        once deletes are sent they complete (shielded)."""
        k = parse_key(key, self._registry)
        async with self._writers.hold(k.stem):
            found, marker = await self._listing(k.stem, confirm_empty=not missing_ok)
            doomed = [c for c in found if not k.ext or c.ext == k.ext]
            if not doomed:
                if missing_ok:
                    return
                raise not_found(key)
            left = len(found) - len(doomed)
            self._remember(k.stem, None)
            with anyio.CancelScope(shield=True):
                await self._finish_replace(k.stem, doomed, marker is not None and left <= 1)

    async def copy(self, src: str, dst: str) -> KeyInfo:
        """Copy the object of ``src`` to ``dst`` (same format; ``dst`` may name the same
        extension, not another). The store copies it (server-side on S3); ``dst`` is replaced
        atomically, other formats under ``dst`` as in :meth:`set`. Returns ``dst``'s
        :class:`~aiostore.store.KeyInfo`. Errors as :meth:`get` for ``src``.

        Cancellation: before the copy, nothing changes; once it is sent the copy and the
        replace complete (shielded)."""
        s = parse_key(src, self._registry)
        d = parse_key(dst, self._registry)
        for _ in range(_ATTEMPTS):
            try:
                source = await self._same_format_source(s, d, "copy")
                return await self._copy_to(d, source)
            except ObjectChanged:
                continue
        raise PreconditionFailedError(f"{src!r} kept changing while it was copied")

    async def _same_format_source(self, s: StoreKey, d: StoreKey, verb: str) -> Candidate:
        """The object ``s`` resolves to, refused when ``d`` names another format."""
        source = await self._resolve(s)
        if d.ext and d.ext != source.ext:
            raise InvalidArgumentError(
                f"{verb} keeps the format: {source.info.key!r} is {source.ext}, not {d.ext}; "
                f"use set(...) with the value from get(...) to change it")
        return source

    async def _copy_to(self, d: StoreKey, source: Candidate) -> KeyInfo:
        object_key = d.object_key(source.ext)
        if object_key == source.info.key:
            return self._key_info(d.stem, source)
        async with self._writers.hold(d.stem):
            found, marker = await self._listing(d.stem)
            others = [c for c in found if c.info.key != object_key]
            if others:
                await self._storage.put(marker_key(d.stem), source.ext.encode("ascii"))
            with anyio.CancelScope(shield=True):
                try:
                    info = await self._storage.copy(source.info.key, object_key)
                except NotFoundError:  # the source vanished meanwhile
                    raise ObjectChanged(source.info.key) from None
                if self._cache is not None:
                    await self._cache.discard(object_key)
                await self._finish_replace(d.stem, others, marker is not None or bool(others))
            self._remember(d.stem, None)
            return self._key_info(d.stem, Candidate(info, source.ext))

    async def move(self, src: str, dst: str) -> KeyInfo:
        """:meth:`copy`, then delete the source object — only if it is still the version that
        was copied (same ETag). Not atomic: a reader may see both keys for a moment, and a
        crash between the two steps leaves both. Cancellation: as :meth:`copy`; once the copy
        is done, the delete completes (shielded)."""
        s = parse_key(src, self._registry)
        d = parse_key(dst, self._registry)
        for _ in range(_ATTEMPTS):
            try:
                source = await self._same_format_source(s, d, "move")
                if d.object_key(source.ext) == source.info.key:
                    return self._key_info(d.stem, source)
                info = await self._copy_to(d, source)
            except ObjectChanged:
                continue
            with anyio.CancelScope(shield=True):
                async with self._writers.hold(s.stem):
                    try:
                        now = await self._storage.head(source.info.key)
                    except NotFoundError:
                        return info
                    if now.etag == source.info.etag:
                        await self._storage.delete(source.info.key)
                        if self._cache is not None:
                            await self._cache.discard(source.info.key)
                    self._remember(s.stem, None)
            return info
        raise PreconditionFailedError(f"{src!r} kept changing while it was moved")

    # --- cache -----------------------------------------------------------------------------
    async def cleanup_cache(self, *, unused_for: float | timedelta | None = None) -> int:
        """Remove cache entries that can never be served again (their object was deleted or
        changed since), entries not served for ``unused_for`` (seconds or a timedelta, when
        given), and temp files of downloads whose process died. Only files provably this
        store's entries are removed — never anything else in the cache directory. Returns
        how many files were removed (0 without a cache). One ``head`` per entry.

        Cancellation: stops between entries; what was removed stays removed."""
        seconds = _seconds(unused_for, "unused_for")
        if self._cache is None:
            return 0
        return await self._cache.cleanup(self._storage, unused_for=seconds)
