"""A fault-injecting file system for tests, modelled on LevelDB's fault-injection Env.

It forwards every call to a real file system and additionally

* fails the Nth call of a given kind with an ``OSError`` of your choice (:meth:`fail`);
* tracks what is *durable*: a file's content as of its last ``fsync``/``fdatasync`` and a
  directory's entries as of its last directory fsync (files that existed when the double was
  created count as durable);
* simulates a crash (:meth:`crash`): the tree under ``root`` is rewritten to exactly its
  durable state — unsynced data is lost, names created, renamed or removed since the last
  fsync of their directory revert — as after a power loss;
* can crash by itself just before the Nth state-changing call (``crash_at``), after which
  every call raises :class:`SimulatedCrash` so no clean-up code can "survive" the crash.

Usage::

    fs = FaultyFileSystem(tmp_path, crash_at=5)
    with use_fs(fs):
        with pytest.raises(SimulatedCrash):
            await aiostore.write_bytes(tmp_path / "f", b"new")
    fs.crash()            # the disk now holds only what was durable
"""

from __future__ import annotations

import os
import shutil
import stat as stat_mod
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from .base import Buffer, FileSystem
from .posix import PosixFileSystem

MUTATING = frozenset({
    "open_create", "write", "pwritev", "fsync", "fdatasync", "fsync_dir", "fchmod", "ftruncate",
    "punch_hole", "mkdir", "replace", "rename_noreplace", "unlink", "rmdir",
})


class SimulatedCrash(Exception):
    """The simulated machine has crashed; no file-system call succeeds any more."""


@dataclass
class _Fault:
    op: str
    nth: int
    errno: int
    times: int
    seen: int = 0


@dataclass
class _Entry:
    kind: str  # "f" file, "d" directory, "l" symlink
    ino: int = 0
    target: str = ""


@dataclass
class _Durable:
    dirs: dict[str, dict[str, _Entry]] = field(default_factory=dict)
    data: dict[int, tuple[bytes, int]] = field(default_factory=dict)  # ino -> (content, mode)


class FaultyFileSystem(FileSystem):
    """Fault-injecting, crash-simulating wrapper of a real file system, confined to ``root``."""

    def __init__(self, root: str | os.PathLike[str], *, inner: FileSystem | None = None,
                 crash_at: int | None = None) -> None:
        self.root = os.path.realpath(os.fspath(root))
        self.inner = inner or PosixFileSystem()
        self.crash_at = crash_at
        self.mutations = 0
        self.crashed = False
        self.calls: Counter[str] = Counter()
        self.log: list[tuple[str, str]] = []  # (op, path) of every state-changing call
        self._faults: list[_Fault] = []
        self._lock = threading.RLock()
        self._fd_path: dict[int, str] = {}
        self._durable = _Durable()
        self._snapshot(self.root)

    # --- configuration -----------------------------------------------------------------------
    def fail(self, op: str, *, nth: int = 1, errno: int = 5, times: int = 1) -> None:
        """Make the ``nth`` call of ``op`` (counted from now) and the ``times - 1`` after it fail.

        ``op`` is a method name (``"write"``, ``"fsync"``, ``"fsync_dir"``, ``"replace"``, ...)
        or ``"open_create"`` for opens with ``O_CREAT``. ``errno`` defaults to ``EIO``.
        """
        with self._lock:
            self._faults.append(_Fault(op, nth, errno, times))

    # --- bookkeeping -------------------------------------------------------------------------
    def _inside(self, path: str) -> bool:
        p = os.path.abspath(path)
        return p == self.root or p.startswith(self.root + os.sep)

    def _enter(self, op: str, path: str = "") -> None:
        with self._lock:
            if self.crashed:
                raise SimulatedCrash(f"{op} after the simulated crash")
            self.calls[op] += 1
            for fault in self._faults:
                if fault.op == op:
                    fault.seen += 1
                    if fault.nth <= fault.seen < fault.nth + fault.times:
                        raise OSError(fault.errno, f"{os.strerror(fault.errno)} (injected)",
                                      path or None)
            if op in MUTATING:
                self.mutations += 1
                if self.crash_at is not None and self.mutations >= self.crash_at:
                    self.crashed = True
                    raise SimulatedCrash(f"crashed before {op} {path}")
                self.log.append((op, path))

    def _snapshot(self, top: str) -> None:
        """Record everything under ``top`` as durable (the state before the test begins)."""
        for dirpath, dirnames, filenames in os.walk(top):
            entries: dict[str, _Entry] = {}
            for name in dirnames + filenames:
                full = os.path.join(dirpath, name)
                st = os.lstat(full)
                if stat_mod.S_ISLNK(st.st_mode):
                    entries[name] = _Entry("l", target=os.readlink(full))
                elif stat_mod.S_ISDIR(st.st_mode):
                    entries[name] = _Entry("d")
                else:
                    entries[name] = _Entry("f", st.st_ino)
                    with open(full, "rb") as f:
                        self._durable.data[st.st_ino] = (f.read(), stat_mod.S_IMODE(st.st_mode))
            self._durable.dirs[dirpath] = entries

    def durable_content(self, path: str | os.PathLike[str]) -> bytes | None:
        """What ``path`` would hold after a crash now (None: it would not exist)."""
        p = os.path.abspath(os.fspath(path))
        entry = self._durable.dirs.get(os.path.dirname(p), {}).get(os.path.basename(p))
        if entry is None or entry.kind != "f":
            return None
        return self._durable.data.get(entry.ino, (b"", 0))[0]

    # --- crash -------------------------------------------------------------------------------
    def crash(self) -> None:
        """Crash now: rewrite the tree under ``root`` to its durable state. Final."""
        with self._lock:
            self.crashed = True
            for name in os.listdir(self.root):
                full = os.path.join(self.root, name)
                if os.path.isdir(full) and not os.path.islink(full):
                    shutil.rmtree(full)
                else:
                    os.unlink(full)
            self._restore(self.root)

    def _restore(self, dirpath: str) -> None:
        for name, entry in self._durable.dirs.get(dirpath, {}).items():
            full = os.path.join(dirpath, name)
            if entry.kind == "d":
                os.mkdir(full)
                self._restore(full)
            elif entry.kind == "l":
                os.symlink(entry.target, full)
            else:
                content, mode = self._durable.data.get(entry.ino, (b"", 0o644))
                with open(full, "wb") as f:
                    f.write(content)
                os.chmod(full, mode)

    # --- the FileSystem interface ------------------------------------------------------------
    def open(self, path: str, flags: int, mode: int = 0o666) -> int:
        self._enter("open_create" if flags & os.O_CREAT else "open", path)
        fd = self.inner.open(path, flags, mode)
        with self._lock:
            self._fd_path[fd] = path
        return fd

    def close(self, fd: int) -> None:
        with self._lock:
            self._fd_path.pop(fd, None)
        if self.crashed:
            os.close(fd)  # release the descriptor even after the crash
            raise SimulatedCrash("close after the simulated crash")
        self._enter("close")
        self.inner.close(fd)

    def write(self, fd: int, data: Buffer) -> None:
        self._enter("write", self._fd_path.get(fd, ""))
        self.inner.write(fd, data)

    def pwritev(self, fd: int, buffers: Sequence[Buffer], offset: int) -> None:
        self._enter("pwritev", self._fd_path.get(fd, ""))
        self.inner.pwritev(fd, buffers, offset)

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        self._enter("pread", self._fd_path.get(fd, ""))
        return self.inner.pread(fd, size, offset)

    def _record_file(self, fd: int, op: str) -> None:
        self._enter(op, self._fd_path.get(fd, ""))
        getattr(self.inner, op)(fd)
        st = os.fstat(fd)
        path = self._fd_path.get(fd, "")
        if stat_mod.S_ISREG(st.st_mode) and self._inside(path or self.root):
            with open(f"/proc/self/fd/{fd}", "rb") as f:  # works for write-only descriptors
                content = f.read()
            with self._lock:
                self._durable.data[st.st_ino] = (content, stat_mod.S_IMODE(st.st_mode))

    def pread_nowait(self, fd: int, size: int, offset: int) -> bytes | None:
        self._enter("pread", self._fd_path.get(fd, ""))
        return self.inner.pread_nowait(fd, size, offset)

    def fsync(self, fd: int) -> None:
        self._record_file(fd, "fsync")

    def fdatasync(self, fd: int) -> None:
        self._record_file(fd, "fdatasync")

    def fstat(self, fd: int) -> os.stat_result:
        self._enter("fstat")
        return self.inner.fstat(fd)

    def fchmod(self, fd: int, mode: int) -> None:
        self._enter("fchmod", self._fd_path.get(fd, ""))
        self.inner.fchmod(fd, mode)

    def ftruncate(self, fd: int, size: int) -> None:
        self._enter("ftruncate", self._fd_path.get(fd, ""))
        self.inner.ftruncate(fd, size)

    def punch_hole(self, fd: int, offset: int, length: int) -> bool:
        self._enter("punch_hole", self._fd_path.get(fd, ""))
        return self.inner.punch_hole(fd, offset, length)

    def lock(self, fd: int, *, exclusive: bool = True, blocking: bool = False) -> None:
        self._enter("lock", self._fd_path.get(fd, ""))
        self.inner.lock(fd, exclusive=exclusive, blocking=blocking)

    def stat(self, path: str, *, follow_symlinks: bool = True) -> os.stat_result:
        self._enter("stat", path)
        return self.inner.stat(path, follow_symlinks=follow_symlinks)

    def readlink(self, path: str) -> str:
        self._enter("readlink", path)
        return self.inner.readlink(path)

    def listdir(self, path: str) -> list[str]:
        self._enter("listdir", path)
        return self.inner.listdir(path)

    def mkdir(self, path: str, mode: int = 0o777) -> None:
        self._enter("mkdir", path)
        self.inner.mkdir(path, mode)

    def replace(self, src: str, dst: str) -> None:
        self._enter("replace", dst)
        self.inner.replace(src, dst)

    def rename_noreplace(self, src: str, dst: str) -> None:
        self._enter("rename_noreplace", dst)
        self.inner.rename_noreplace(src, dst)

    def unlink(self, path: str) -> None:
        self._enter("unlink", path)
        self.inner.unlink(path)

    def rmdir(self, path: str) -> None:
        self._enter("rmdir", path)
        self.inner.rmdir(path)

    def fsync_dir(self, path: str) -> None:
        self._enter("fsync_dir", path)
        self.inner.fsync_dir(path)
        full = os.path.abspath(path)
        if not self._inside(full):
            return
        entries: dict[str, _Entry] = {}
        for name in os.listdir(full):
            st = os.lstat(os.path.join(full, name))
            if stat_mod.S_ISLNK(st.st_mode):
                entries[name] = _Entry("l", target=os.readlink(os.path.join(full, name)))
            elif stat_mod.S_ISDIR(st.st_mode):
                entries[name] = _Entry("d")
            else:
                entries[name] = _Entry("f", st.st_ino)
        with self._lock:
            self._durable.dirs[full] = entries

    def writeback(self, fd: int, *, wait: bool) -> None:
        self._enter("writeback", self._fd_path.get(fd, ""))  # a hint: nothing becomes durable
        self.inner.writeback(fd, wait=wait)
