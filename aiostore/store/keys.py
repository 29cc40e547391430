"""Store keys: how a key names a stored object, and which object a key resolves to.

A *store key* is an object key (validated like one: :func:`aiostore.storage.base.check_key`)
with or without a known extension. ``"frame"`` and ``"frame.parquet"`` are the same key; the
object is stored as ``stem + extension`` (``frame.parquet``), the extension chosen by the
object's type unless the key names one. A key without extension resolves to *the one* stored
object whose name minus a known extension equals it (``a.sparse.npz`` is ``a``: the longest
known extension counts).

Replacing an object by one of another format (``conf.json`` by ``conf.yaml``) writes the new
object first and deletes the old one after; between the two, a *replace marker*
(``conf.aiostore-replace``, holding ``.yaml``) names the winner. The rule (:func:`choose`):

* one object → that object;
* two or more → the one the marker names, if there is a marker and that object exists;
* otherwise → :class:`~aiostore.errors.AmbiguousKeyError` (it is not a replace in progress,
  or the replacing write never published: the objects are genuinely ambiguous).

So a reader during a replace sees the old object (before the new one is published) or the
new one (from then on) — never an error, never a guess.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from datetime import datetime

from ..errors import AmbiguousKeyError, InvalidKeyError, KeyNotFoundError
from ..formats import Registry
from ..storage.base import ObjectInfo, check_key

__all__ = ["MARKER_SUFFIX", "Candidate", "KeyInfo", "StoreKey", "choose", "marker_key",
           "matches", "parse_key"]

#: the suffix of a replace marker: ``<stem>.aiostore-replace`` (never a store key)
MARKER_SUFFIX = ".aiostore-replace"


@dataclass(frozen=True)
class StoreKey:
    """A parsed store key: ``stem`` (the key without extension) and ``ext`` (the known
    extension it names, lower case with its dot, or ``""``)."""

    stem: str
    ext: str

    @property
    def name(self) -> str:
        """The key as the store reports it (without extension)."""
        return self.stem

    def object_key(self, ext: str) -> str:
        """The object key of this key stored with extension ``ext``."""
        return self.stem + ext


@dataclass(frozen=True)
class Candidate:
    """A stored object that a key's stem matches: its info and its (lower-case) extension."""

    info: ObjectInfo
    ext: str


@dataclass(frozen=True)
class KeyInfo:
    """What :meth:`aiostore.Store.info` reports about a key."""

    #: the store key, without extension (``"frame"``)
    key: str
    #: the stored object's key relative to the store root (``"frame.parquet"``)
    object_key: str
    #: where the object is: the store root joined with the object key
    url: str
    #: the extension, lower case with its dot (``".parquet"``)
    extension: str
    #: the format's name (``"parquet"``, ``"json"``, ...)
    format: str
    #: the size of the stored object in bytes
    size: int
    #: the object's ETag (changes with every write)
    etag: str
    #: when the object was last written (timezone-aware, UTC)
    modified: datetime


def parse_key(key: object, registry: Registry) -> StoreKey:
    """``key`` split into stem and known extension, after validation.

    Raises :class:`~aiostore.errors.InvalidKeyError` (``InvalidTypeError`` for a non-str)
    for a key that is not a valid object key (empty, absolute, ``..``, reserved names) or that
    ends in the replace marker's suffix.
    """
    check_key(key)
    assert isinstance(key, str)
    if key.endswith(MARKER_SUFFIX):
        raise InvalidKeyError(f"keys ending in {MARKER_SUFFIX!r} are reserved for the store's "
                              f"replace markers: {key!r}")
    stem, ext = registry.split_extension(key)
    return StoreKey(stem, ext)


def marker_key(stem: str) -> str:
    """The replace marker of ``stem``."""
    return stem + MARKER_SUFFIX


def matches(listing: list[ObjectInfo], stem: str, registry: Registry
            ) -> tuple[list[Candidate], ObjectInfo | None]:
    """The objects of ``listing`` whose name minus a known extension is ``stem``, and the
    replace marker of ``stem`` if listed."""
    found: list[Candidate] = []
    marker: ObjectInfo | None = None
    for info in listing:
        if info.key == marker_key(stem):
            marker = info
            continue
        base, ext = registry.split_extension(info.key)
        if ext and base == stem:
            found.append(Candidate(info, ext))
    return found, marker


def not_found(key: str) -> KeyNotFoundError:
    """The error for a key with no stored object."""
    return KeyNotFoundError(errno.ENOENT, f"no object for key {key!r}")


def choose(key: StoreKey, found: list[Candidate], marker_ext: str | None) -> Candidate:
    """The object ``key`` resolves to among ``found`` (see the module docstring).

    ``marker_ext`` is what the stem's replace marker names (None without a marker). A key
    naming an extension resolves to the object with exactly that extension. Raises
    :class:`~aiostore.errors.KeyNotFoundError` or
    :class:`~aiostore.errors.AmbiguousKeyError`.
    """
    if key.ext:
        found = [c for c in found if c.ext == key.ext]
        if len(found) > 1:  # the same extension in two spellings (a.json, a.JSON)
            raise _ambiguous(key.stem + key.ext, found)
    if not found:
        raise not_found(key.stem + key.ext)
    if len(found) == 1:
        return found[0]
    winners = [c for c in found if c.ext == marker_ext]
    if len(winners) == 1:
        return winners[0]
    raise _ambiguous(key.stem, found)


def _ambiguous(key: str, found: list[Candidate]) -> AmbiguousKeyError:
    names = ", ".join(sorted(c.info.key for c in found))
    return AmbiguousKeyError(f"key {key!r} matches {len(found)} stored objects ({names}); "
                             f"name the extension (e.g. {found[0].info.key!r}) or delete all "
                             "but one")
