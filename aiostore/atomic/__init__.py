"""Atomic writers: a reader sees the old file or the new one, never a torn or missing one.

* :mod:`.publish` — the recipe (temp sibling, fsync, rename, directory fsync), in one hop.
* :mod:`.writers` — ``write_bytes``/``write_text``/``write_json``/``write_jsonl``.
* :mod:`.stream` — ``atomic_open``, the streaming writer.
* :mod:`.formats` / :mod:`.frames` / :mod:`.dispatch` — ``write``/``read`` of any object.
* :mod:`.sweep` — removal of temp files left by dead writers.
"""

from .dispatch import read as read
from .dispatch import write as write
from .stream import AtomicFile as AtomicFile
from .stream import atomic_open as atomic_open
from .sweep import sweep_temp_files as sweep_temp_files
from .writers import write_bytes as write_bytes
from .writers import write_json as write_json
from .writers import write_jsonl as write_jsonl
from .writers import write_text as write_text

__all__ = [
    "AtomicFile",
    "atomic_open",
    "read",
    "sweep_temp_files",
    "write",
    "write_bytes",
    "write_json",
    "write_jsonl",
    "write_text",
]
