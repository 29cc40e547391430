"""The built-in handlers for plain Python data: bytes, text, JSON, JSON lines, YAML, models
(dataclasses and pydantic) and pickle (off unless allowed). Standard library only, except
YAML (``pyyaml``, the ``yaml`` extra). Everything here runs in worker threads.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import pickle
import sys
from typing import Any

from .._io.base import Buffer
from ..errors import InvalidArgumentError, SerializationError
from .handler import BuiltinHandler, FormatOptions

__all__ = ["BytesHandler", "JsonHandler", "JsonlHandler", "ModelHandler", "PickleHandler",
           "TextHandler", "YamlHandler", "import_optional"]

_JSON_TYPES = (dict, list, tuple, str, int, float, bool, type(None))
_BYTES = (bytes, bytearray, memoryview)


def import_optional(module: str, extra: str, what: str) -> Any:
    """Import ``module`` or raise :class:`~aiostore.errors.InvalidArgumentError` naming the
    extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise InvalidArgumentError(f"{what} needs {module.split('.')[0]!r}: pip install "
                                   f"'aiostore[{extra}]'") from exc


def dumps_json(obj: object, kwargs: dict[str, Any]) -> str:
    """``json.dumps`` with a :class:`~aiostore.errors.SerializationError` on failure."""
    try:
        return json.dumps(obj, **kwargs)
    except (TypeError, ValueError, RecursionError) as exc:
        raise SerializationError(f"object is not JSON serialisable: {exc}") from exc


def _loads_json(data: bytes, ext: str, kwargs: dict[str, Any]) -> Any:
    try:
        return json.loads(data, **kwargs)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SerializationError(f"cannot read the data as json: {exc}") from exc


def is_model(obj: object) -> bool:
    """A dataclass instance or a pydantic model instance."""
    if isinstance(obj, type):
        return False
    if dataclasses.is_dataclass(obj):
        return True
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(obj, pydantic.BaseModel)


def build_model(model: type, value: object) -> object:
    """``model`` (a dataclass or pydantic class) built from decoded JSON ``value``."""
    pydantic = sys.modules.get("pydantic")
    try:
        if pydantic is not None and isinstance(model, type) and issubclass(model,
                                                                           pydantic.BaseModel):
            return model.model_validate(value)  # type: ignore[attr-defined]
        if dataclasses.is_dataclass(model) and isinstance(value, dict):
            return model(**value)
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"cannot build {model.__name__} from the data: {exc}") from exc
    raise InvalidArgumentError(f"model must be a dataclass or a pydantic model class, not "
                               f"{model!r}")


class BytesHandler(BuiltinHandler):
    """bytes-like → the bytes as they are (``.bin``; under any extension)."""

    extensions = (".bin",)
    priority = 30
    name = "bytes"
    wildcard = True

    def can_handle(self, obj: object) -> bool:
        """bytes, bytearray or memoryview."""
        return isinstance(obj, _BYTES)

    def dump_chunks(self, obj: object, ext: str, options: FormatOptions) -> list[Buffer]:
        """The bytes themselves (no copy)."""
        assert isinstance(obj, _BYTES)
        return [obj]

    def decode(self, data: bytes, ext: str, options: FormatOptions) -> object:
        """The bytes."""
        return data


class TextHandler(BuiltinHandler):
    """str → UTF-8 text (``.txt``, ``.md``, ``.log``, ``.html``; a str under any extension
    unless ``format=`` says otherwise)."""

    extensions = (".txt", ".md", ".log", ".html")
    priority = 20
    name = "text"
    wildcard = True

    def can_handle(self, obj: object) -> bool:
        """A str."""
        return isinstance(obj, str)

    def dump_chunks(self, obj: object, ext: str, options: FormatOptions) -> list[Buffer]:
        """The text encoded (``writer_kwargs`` ``encoding``, default UTF-8)."""
        assert isinstance(obj, str)
        return [obj.encode(options.writer_kwargs.get("encoding", "utf-8"))]

    def decode(self, data: bytes, ext: str, options: FormatOptions) -> object:
        """The text (``reader_kwargs`` ``encoding``, default UTF-8)."""
        try:
            return data.decode(options.reader_kwargs.get("encoding", "utf-8"))
        except UnicodeDecodeError as exc:
            raise SerializationError(f"cannot read the data as text: {exc}") from exc


class JsonHandler(BuiltinHandler):
    """JSON-able data (dict, list, numbers, str, bool, None) → ``.json``; also written as JSON
    into text files and under extensions no handler claims."""

    extensions = (".json", ".txt", ".md", ".log", ".bin")
    priority = 10
    name = "json"
    formats = {".txt": "text", ".md": "text", ".log": "text", ".bin": "bytes"}  # noqa: RUF012
    fallback = True

    def can_handle(self, obj: object) -> bool:
        """JSON types at the top level (nested values are checked when encoding)."""
        return isinstance(obj, _JSON_TYPES)

    def dump_chunks(self, obj: object, ext: str, options: FormatOptions) -> list[Buffer]:
        """``json.dumps(obj, **writer_kwargs)`` in UTF-8."""
        return [dumps_json(obj, options.writer_kwargs).encode("utf-8")]

    def decode(self, data: bytes, ext: str, options: FormatOptions) -> object:
        """The decoded JSON (``model=``: built into that class)."""
        value = _loads_json(data, ext, options.reader_kwargs)
        return build_model(options.model, value) if options.model is not None else value


class JsonlHandler(BuiltinHandler):
    """A list of records (dicts) → JSON lines (``.jsonl``, ``.ndjson``)."""

    extensions = (".jsonl", ".ndjson")
    priority = 15
    name = "jsonl"

    def can_handle(self, obj: object) -> bool:
        """A non-empty list or tuple of dicts."""
        return isinstance(obj, (list, tuple)) and bool(obj) and all(
            isinstance(r, dict) for r in obj)

    def can_write(self, obj: object, ext: str) -> bool:
        """Under its own extensions, any list or tuple (each item one line)."""
        return isinstance(obj, (list, tuple))

    def dump_chunks(self, obj: object, ext: str, options: FormatOptions) -> list[Buffer]:
        """One compact JSON document per line."""
        assert isinstance(obj, (list, tuple))
        kwargs = dict(options.writer_kwargs)
        if kwargs.get("indent") is not None:
            raise InvalidArgumentError("JSON lines are one line per record: indent is not "
                                       "allowed")
        kwargs.setdefault("separators", (",", ":"))
        lines = [dumps_json(r, kwargs) for r in obj]
        lines.append("")
        return ["\n".join(lines).encode("utf-8")]

    def decode(self, data: bytes, ext: str, options: FormatOptions) -> object:
        """A list with one decoded item per non-blank line."""
        try:
            return [json.loads(line, **options.reader_kwargs) for line in data.splitlines()
                    if line.strip()]
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SerializationError(f"cannot read the data as jsonl: {exc}") from exc


class ModelHandler(BuiltinHandler):
    """Dataclass and pydantic model instances → ``.json`` (read back as a dict, or as the
    class with ``model=``)."""

    extensions = (".json",)
    priority = 12
    name = "json"

    def can_handle(self, obj: object) -> bool:
        """A dataclass or pydantic model instance."""
        return is_model(obj)

    def dump_chunks(self, obj: object, ext: str, options: FormatOptions) -> list[Buffer]:
        """The model's fields as JSON."""
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            value: object = dataclasses.asdict(obj)
        else:
            value = obj.model_dump(mode="json")  # type: ignore[attr-defined]
        return [dumps_json(value, options.writer_kwargs).encode("utf-8")]

    decode = JsonHandler.decode


class YamlHandler(BuiltinHandler):
    """JSON-like data → YAML (``.yaml``, ``.yml``; safe dump and load only)."""

    extensions = (".yaml", ".yml")
    priority = 5
    name = "yaml"
    requires = ("yaml", "yaml")

    def can_handle(self, obj: object) -> bool:
        """Data YAML's safe dumper takes (dict, list, scalars)."""
        return isinstance(obj, _JSON_TYPES)

    def dump_chunks(self, obj: object, ext: str, options: FormatOptions) -> list[Buffer]:
        """``yaml.safe_dump`` in UTF-8."""
        yaml = import_optional("yaml", "yaml", "YAML")
        try:
            text = yaml.safe_dump(obj, sort_keys=False, allow_unicode=True,
                                  **options.writer_kwargs)
        except yaml.YAMLError as exc:
            raise SerializationError(f"cannot write the object as yaml: {exc}") from exc
        return [text.encode("utf-8")]

    def decode(self, data: bytes, ext: str, options: FormatOptions) -> object:
        """``yaml.safe_load`` (``model=``: built into that class)."""
        yaml = import_optional("yaml", "yaml", "YAML")
        try:
            value = yaml.safe_load(bytes(data) if not isinstance(data, bytes) else data)
        except yaml.YAMLError as exc:
            raise SerializationError(f"cannot read the data as yaml: {exc}") from exc
        return build_model(options.model, value) if options.model is not None else value


class PickleHandler(BuiltinHandler):
    """Any picklable object → ``.pkl`` — only with ``allow_pickle=True``: unpickling data from
    a shared folder or bucket runs whatever code its writer put there."""

    extensions = (".pkl", ".pickle")
    priority = -100
    name = "pickle"
    pickle = True

    def can_handle(self, obj: object) -> bool:
        """Anything (pickling may still fail)."""
        return True

    def dump_chunks(self, obj: object, ext: str, options: FormatOptions) -> list[Buffer]:
        """``pickle.dumps`` (highest protocol)."""
        try:
            return [pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)]
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as exc:
            raise SerializationError(f"cannot pickle the object: {exc}") from exc

    def decode(self, data: bytes, ext: str, options: FormatOptions) -> object:
        """``pickle.loads`` (runs code from the data: allowed explicitly only)."""
        try:
            return pickle.loads(data)
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError,
                IndexError, TypeError, ValueError) as exc:
            raise SerializationError(f"cannot unpickle the data: {exc}") from exc
