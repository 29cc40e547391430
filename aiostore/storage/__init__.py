"""Storage: one contract, a local directory or an S3 bucket behind it.

* :mod:`.base` — the contract (:class:`Storage`, :class:`ObjectInfo`, :class:`ObjectWriter`)
  and key validation.
* :mod:`.local` — ``LocalStorage``: files below a directory, through the I/O core.
* :mod:`.s3base` — what both S3 backends share: options, key mapping, write tokens.
* :mod:`.obstore_s3` — ``ObstoreStorage``: S3 through obstore (Rust ``object_store``), the
  default; :mod:`.obstore_writer` its streaming upload, :mod:`.obstore_errors` its error
  translation, :mod:`.aws_config` its credentials (environment, ``~/.aws`` files, profiles).
* :mod:`.s3` — ``S3Storage``: S3 through aiobotocore (``backend="aiobotocore"``).
* :mod:`.multipart` — aiobotocore's streaming S3 upload (bounded memory, concurrent parts,
  abort, conditional completion).
* :mod:`.retry` — transient-failure retries and botocore error translation.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import InvalidArgumentError
from .base import ObjectInfo as ObjectInfo
from .base import ObjectWriter as ObjectWriter
from .base import Storage as Storage

__all__ = ["ObjectInfo", "ObjectWriter", "Storage", "is_remote", "open_storage", "split_url"]


def is_remote(url: object) -> bool:
    """Whether ``url`` names an object store (``s3://...``) rather than a local path."""
    return isinstance(url, str) and url.startswith("s3://")


def split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/a/b.json`` -> (``s3://bucket/a``, ``b.json``): the storage root to open
    and the object key in it."""
    bucket, _, key = url[len("s3://"):].partition("/")
    if not bucket or not key or key.endswith("/"):
        raise InvalidArgumentError(f"an object URI is s3://bucket/key, not {url!r}")
    head, _, name = key.rpartition("/")
    return (f"s3://{bucket}/{head}" if head else f"s3://{bucket}"), name


#: the S3 transports ``open_storage(..., backend=...)`` accepts; the first is the default
S3_BACKENDS = ("obstore", "aiobotocore")


def _default_backend() -> str:
    """obstore when it is installed (it needs Python 3.11+), else aiobotocore."""
    import importlib.util

    return "obstore" if importlib.util.find_spec("obstore") is not None else "aiobotocore"


def open_storage(url: str | os.PathLike[str], *, backend: str | None = None,
                 **storage_options: Any) -> Storage:
    """The storage at ``url``: ``s3://bucket/prefix`` or a local directory path.

    ::

        async with aiostore.open_storage("s3://bucket/prefix", endpoint_url=...) as st:
            await st.put("a/b.json", b"{}", if_none_match=True)
            data = await st.get("a/b.json")

    ``backend`` picks the S3 transport: ``"obstore"`` (the default: Rust ``object_store``,
    native signing, HTTP and retries; on Python 3.10, where obstore does not install, the
    default is aiobotocore) or ``"aiobotocore"`` (botocore's credential chain — SSO,
    ``credential_process``, assumed roles — and its other features); see ``docs/s3.md``.

    ``storage_options`` configure S3 (see :class:`~aiostore.storage.s3base.S3Options`:
    ``endpoint_url``, ``region_name``, credentials, ``profile``, ``addressing_style``,
    ``max_pool_connections``, ``retries``, ``multipart_threshold``, ``part_size``,
    ``max_concurrency``, timeouts); the standard AWS environment variables and the shared
    config / credentials files apply too. A local path takes neither. Nothing is opened until
    ``async with`` (or the first call); close it with ``async with`` or
    :meth:`~Storage.aclose`.

    Errors: :class:`~aiostore.errors.InvalidArgumentError` for an unknown scheme, backend or
    option. S3 needs the ``s3`` extra (``pip install 'aiostore[s3]'``) and asyncio (or
    uvloop).
    """
    if isinstance(url, str) and "://" in url:
        scheme = url.split("://", 1)[0]
        if scheme == "s3":
            bucket, _, prefix = url[len("s3://"):].partition("/")
            if backend is None:
                backend = _default_backend()
            if backend == "obstore":
                from .obstore_s3 import ObstoreStorage

                return ObstoreStorage(bucket, prefix, storage_options)
            if backend == "aiobotocore":
                from .s3 import S3Storage

                return S3Storage(bucket, prefix, storage_options)
            raise InvalidArgumentError(f"unknown S3 backend {backend!r}: use one of "
                                       f"{list(S3_BACKENDS)}")
        if scheme != "file":
            raise InvalidArgumentError(f"unsupported storage URI scheme {scheme!r}: use s3:// "
                                       "or a local path")
        url = url[len("file://"):]
    if backend is not None:
        raise InvalidArgumentError(f"a local storage takes no backend, got {backend!r}")
    if storage_options:
        raise InvalidArgumentError(f"a local storage takes no storage_options, got "
                                   f"{sorted(storage_options)}")
    try:
        path = os.fspath(url)
    except TypeError:
        raise InvalidArgumentError(f"url must be a str or os.PathLike, not "
                                   f"{type(url).__name__}") from None
    if not isinstance(path, str) or not path:
        raise InvalidArgumentError(f"not a storage location: {url!r}")
    from .local import LocalStorage

    return LocalStorage(path)
