"""Argument checks shared by the writers."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidArgumentError

StrPath = str | os.PathLike[str]


def fspath(path: object) -> str:
    """``path`` as a ``str``; a clear error for anything that is not a local path."""
    if isinstance(path, bytes):
        raise InvalidArgumentError("path must be str or os.PathLike[str], not bytes")
    try:
        p = os.fspath(path)  # type: ignore[call-overload]
    except TypeError:
        raise InvalidArgumentError(
            f"path must be str or os.PathLike, not {type(path).__name__}") from None
    if not isinstance(p, str):
        raise InvalidArgumentError("path must be str or os.PathLike[str], not bytes")
    if not p:
        raise InvalidArgumentError("path must not be empty")
    if "\x00" in p:
        raise InvalidArgumentError("path must not contain NUL characters")
    return p


def check_mode(mode: object) -> int | None:
    """Validate a permission-bits argument."""
    if mode is None:
        return None
    if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 0o7777:
        raise InvalidArgumentError(f"mode must be permission bits like 0o644, not {mode!r}")
    return mode


def check_remote(path: str, mode: object, storage_options: Mapping[str, Any] | None) -> bool:
    """Whether ``path`` is an ``s3://`` URI; ``storage_options`` only go with one, and
    permission bits never do."""
    if path.startswith("s3://"):
        if mode is not None:
            raise InvalidArgumentError("mode (permission bits) does not apply to s3:// objects")
        return True
    if storage_options:
        raise InvalidArgumentError(f"storage_options apply to s3:// URIs only, not {path!r}")
    return False
