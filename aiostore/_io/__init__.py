"""The I/O core: the only code in aiostore that touches the file system.

* :mod:`.base` — the :class:`FileSystem` interface and the active instance (:func:`current_fs`).
* :mod:`.posix` — the real implementation (renameat2, punch hole, directory fsync).
* :mod:`.faulty` — the fault-injecting, crash-simulating double used by the tests.
* :mod:`.offload` — the one thread pool every blocking call goes through.
* :mod:`.groupsync` — shared (group-committed) directory fsyncs.
"""

from .base import FileSystem as FileSystem
from .base import current_fs as current_fs
from .base import use_fs as use_fs
from .offload import Abort as Abort
from .offload import Aborted as Aborted
from .offload import run_commit as run_commit
from .offload import run_sync as run_sync

__all__ = ["Abort", "Aborted", "FileSystem", "current_fs", "run_commit", "run_sync", "use_fs"]
