"""The built-in handlers for arrays and images: numpy arrays (``.npy``), dicts of arrays
(``.npz``), scipy sparse matrices (``.sparse.npz``) and PIL images (``.png``, ``.jpg``,
``.webp``). Each library is optional and imported only when its objects are written or read;
a missing one is an error naming the extra. Everything here runs in worker threads.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from typing import Any

from .._io.base import Buffer
from ..errors import SerializationError
from .basic import import_optional
from .handler import BuiltinHandler, FormatOptions, Sink

__all__ = ["ImageHandler", "NpyHandler", "NpzHandler", "SparseHandler"]

_STREAM_ABOVE = 64 << 20  # arrays larger than this are encoded piece by piece


class _Writer(io.RawIOBase):
    """A write-only file object that hands every write to ``sink`` (copied: callers reuse
    their buffers), calling ``check`` first."""

    def __init__(self, sink: Sink, check: Callable[[], None]) -> None:
        super().__init__()
        self._sink = sink
        self._check = check

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._check()
        chunk = bytes(data)
        self._sink(chunk)
        return len(chunk)


def _ndarray(obj: object) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.ndarray)


def _load_npy(np: Any, data: Buffer) -> Any:
    """The array in ``.npy`` bytes — over ``data`` itself when it is writable (a bytearray:
    no copy), else a copy."""
    fmt = np.lib.format
    stream = io.BytesIO(memoryview(data)[:1 << 16].tobytes())
    version = fmt.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = fmt.read_array_header_1_0(stream)
    else:
        shape, fortran, dtype = fmt.read_array_header_2_0(stream)
    if dtype.hasobject:
        raise SerializationError("the .npy holds Python objects (pickled): refused")
    count = 1
    for n in shape:
        count *= n
    view = memoryview(data)
    arr = np.frombuffer(view, dtype=dtype, count=count, offset=stream.tell())
    arr = arr.reshape(shape, order="F" if fortran else "C")
    return arr if not view.readonly else arr.copy()


class NpyHandler(BuiltinHandler):
    """A numpy ``ndarray`` → ``.npy`` (no pickled object arrays)."""

    extensions = (".npy",)
    priority = 20
    name = "npy"
    requires = ("numpy", "arrays")
    zero_copy = True  # decodes over the caller's buffer when it is writable

    def can_handle(self, obj: object) -> bool:
        """A numpy array."""
        return _ndarray(obj)

    def dump_chunks(self, obj: object, ext: str, options: FormatOptions) -> list[Buffer]:
        """The ``.npy`` bytes: header, then the array's memory."""
        chunks: list[Buffer] = []
        self.encode_stream(obj, ext, chunks.append, options, lambda: None)
        return chunks

    def streams(self, obj: object, ext: str) -> bool:
        """Large arrays are written piece by piece."""
        return bool(getattr(obj, "nbytes", 0) > _STREAM_ABOVE)

    def encode_stream(self, obj: object, ext: str, sink: Sink, options: FormatOptions,
                      check: Callable[[], None]) -> None:
        """``numpy.lib.format.write_array`` into ``sink`` (16 MiB at a time)."""
        np = import_optional("numpy", "arrays", "numpy arrays")
        if getattr(obj, "dtype", None) is not None and obj.dtype.hasobject:  # type: ignore[attr-defined]
            raise SerializationError("an array of Python objects cannot be written as .npy "
                                     "(it would need pickle)")
        try:
            np.lib.format.write_array(_Writer(sink, check), obj, allow_pickle=False)
        except (ValueError, TypeError) as exc:
            raise SerializationError(f"cannot write the array as npy: {exc}") from exc

    def decode(self, data: bytes, ext: str, options: FormatOptions) -> object:
        """The array."""
        np = import_optional("numpy", "arrays", "numpy arrays")
        try:
            return _load_npy(np, data)
        except (ValueError, EOFError) as exc:
            raise SerializationError(f"cannot read the data as npy: {exc}") from exc


class NpzHandler(BuiltinHandler):
    """A dict of numpy arrays (str keys) → ``.npz`` (compressed)."""

    extensions = (".npz",)
    priority = 25
    name = "npz"
    requires = ("numpy", "arrays")

    def can_handle(self, obj: object) -> bool:
        """A non-empty dict whose keys are str and values numpy arrays."""
        return isinstance(obj, dict) and bool(obj) and all(
            isinstance(k, str) and _ndarray(v) for k, v in obj.items())

    def dump_chunks(self, obj: object, ext: str, options: FormatOptions) -> list[Buffer]:
        """``numpy.savez_compressed``."""
        np = import_optional("numpy", "arrays", "numpy arrays")
        assert isinstance(obj, dict)
        buf = io.BytesIO()
        try:
            np.savez_compressed(buf, **obj)
        except (ValueError, TypeError) as exc:
            raise SerializationError(f"cannot write the arrays as npz: {exc}") from exc
        return [buf.getbuffer()]

    def decode(self, data: bytes, ext: str, options: FormatOptions) -> object:
        """A dict of the arrays (no pickled objects)."""
        np = import_optional("numpy", "arrays", "numpy arrays")
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (ValueError, OSError, EOFError) as exc:
            raise SerializationError(f"cannot read the data as npz: {exc}") from exc


class SparseHandler(BuiltinHandler):
    """A scipy sparse matrix or array → ``.sparse.npz`` (``scipy.sparse.save_npz``)."""

    extensions = (".sparse.npz",)
    priority = 25
    name = "sparse"
    requires = ("scipy", "arrays")

    def can_handle(self, obj: object) -> bool:
        """A scipy sparse matrix or array."""
        sparse = sys.modules.get("scipy.sparse")
        return sparse is not None and bool(sparse.issparse(obj))

    def dump_chunks(self, obj: object, ext: str, options: FormatOptions) -> list[Buffer]:
        """``scipy.sparse.save_npz`` (compressed)."""
        sparse = import_optional("scipy.sparse", "arrays", "sparse matrices")
        buf = io.BytesIO()
        try:
            sparse.save_npz(buf, obj, compressed=True)
        except (ValueError, TypeError, NotImplementedError) as exc:
            raise SerializationError(f"cannot write the matrix as sparse npz: {exc}") from exc
        return [buf.getbuffer()]

    def decode(self, data: bytes, ext: str, options: FormatOptions) -> object:
        """The sparse matrix or array."""
        sparse = import_optional("scipy.sparse", "arrays", "sparse matrices")
        try:
            return sparse.load_npz(io.BytesIO(data))
        except (ValueError, OSError, EOFError, KeyError) as exc:
            raise SerializationError(f"cannot read the data as sparse npz: {exc}") from exc


class ImageHandler(BuiltinHandler):
    """A PIL image → ``.png`` (``.jpg``/``.jpeg``, ``.webp`` by extension)."""

    extensions = (".png", ".jpg", ".jpeg", ".webp")
    priority = 20
    name = "png"
    formats = {".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp"}  # noqa: RUF012
    requires = ("PIL", "images")
    _PIL_FORMAT = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}  # noqa: RUF012

    def can_handle(self, obj: object) -> bool:
        """A PIL image."""
        image = sys.modules.get("PIL.Image")
        return image is not None and isinstance(obj, image.Image)

    def dump_chunks(self, obj: object, ext: str, options: FormatOptions) -> list[Buffer]:
        """``Image.save`` in the extension's format (``writer_kwargs``: ``quality=``...)."""
        import_optional("PIL.Image", "images", "images")
        buf = io.BytesIO()
        image: Any = obj
        if self._PIL_FORMAT[ext] == "JPEG" and image.mode not in ("RGB", "L", "CMYK"):
            image = image.convert("RGB")  # JPEG has no alpha channel
        try:
            image.save(buf, format=self._PIL_FORMAT[ext], **options.writer_kwargs)
        except (OSError, ValueError, KeyError) as exc:
            raise SerializationError(f"cannot write the image as {ext[1:]}: {exc}") from exc
        return [buf.getbuffer()]

    def decode(self, data: bytes, ext: str, options: FormatOptions) -> object:
        """The image, fully loaded."""
        image = import_optional("PIL.Image", "images", "images")
        try:
            img = image.open(io.BytesIO(data))
            img.load()
            return img
        except (OSError, ValueError, image.DecompressionBombError) as exc:
            raise SerializationError(f"cannot read the data as an image: {exc}") from exc
