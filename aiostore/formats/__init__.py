"""Formats: one registry of handlers for the whole package, and the destinations encoded
bytes are published to.

* :mod:`.handler` — what a handler is (:class:`Handler`), :class:`FormatOptions`.
* :mod:`.registry` — :class:`Registry`: choosing a handler by object or extension; encode,
  decode, and the one write path (handler -> encoder -> destination).
* :mod:`.destination` — :class:`LocalDestination` (the publish recipe) and
  :class:`ObjectDestination` (a put or a multipart upload).
* :mod:`.basic` — bytes, text, JSON, JSON lines, YAML, dataclass/pydantic models, pickle.
* :mod:`.arrays` — numpy arrays, dicts of arrays, scipy sparse matrices, PIL images.
* :mod:`.frame_handler` with :mod:`.frames`, :mod:`.encoders`, :mod:`.frame_json` — frames
  (pandas, pyarrow, polars) as Parquet, CSV, Arrow/Feather, Excel, JSON and JSON lines.
* :mod:`.batch` — group commit of concurrent whole-file local writes.
"""

from .destination import Destination as Destination
from .destination import LocalDestination as LocalDestination
from .destination import ObjectDestination as ObjectDestination
from .handler import FormatOptions as FormatOptions
from .handler import Handler as Handler
from .registry import Registry as Registry
from .registry import default_registry as default_registry

__all__ = ["Destination", "FormatOptions", "Handler", "LocalDestination", "ObjectDestination",
           "Registry", "default_registry"]
