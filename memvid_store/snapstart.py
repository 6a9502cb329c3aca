"""AWS Lambda SnapStart: warm a memory before the snapshot, reopen it after a restore.

SnapStart runs a function's init phase once, snapshots the microVM (memory and ``/tmp``)
and starts later instances from that snapshot. What the snapshot keeps is what a warm
memory costs to rebuild: the imported modules (numpy, usearch, tantivy, an embedder),
the BM25 index unpacked into the cache directory and, for an ``s3://`` memory, the chunk
cache. What it must not keep are file descriptors, mappings and connections: a restored
instance may run long after the snapshot, on another host, against a newer file.

``register(target)`` returns a ``SnapStartMemory`` holder and, when ``snapshot_restore_py``
(the ``snapshot-restore-py`` package Lambda's Python runtime ships) can be imported,
registers its two hooks:

* before the snapshot: warm the configured tiers (``Memory.warmup``), remember the file's
  version, then close the handle (file descriptors, mappings and any connection go);
* after a restore: reopen, warm again (the work done before the snapshot makes this
  cheap), and record in ``holder.last_restore`` whether the file (or object) changed
  while the snapshot waited.

Without ``snapshot_restore_py`` (a plain Lambda, a test, a laptop) registration is a
no-op: the holder keeps its memory open and ``holder.memory`` works the same. A handler
always reads ``holder.memory`` per invocation, never a module-level ``Memory``, so it
picks up the handle the restore opened.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from .errors import InvalidInputError
from .memory import Memory

Opener = Callable[[], Memory]


@dataclass(frozen=True)
class FileVersion:
    """What names the state of a memory: its generation and the file's (or object's)
    identity: ``(device, inode, size, mtime_ns)`` of a local file, the ETag of an object."""

    generation: int
    identity: str


@dataclass(frozen=True)
class RestoreReport:
    """One ``after_restore``: how long it took and whether the memory changed meanwhile."""

    seconds: float
    reopen_seconds: float
    warmup_seconds: float
    before: FileVersion | None
    after: FileVersion
    changed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def hooks_available() -> bool:
    """True when ``snapshot_restore_py`` can be imported (on a SnapStart runtime)."""
    return _hooks() is not None


def _hooks() -> tuple[Callable[..., Any], Callable[..., Any]] | None:
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:
        return None
    return register_before_snapshot, register_after_restore


def file_version(memory: Memory) -> FileVersion:
    """The generation and identity of what ``memory`` reads now."""
    generation = memory.generation
    source = getattr(getattr(memory, "_source", None), "fd", None)
    etag = getattr(source, "identity", None)  # a remote object's version (remote/source.py)
    if isinstance(etag, str):
        return FileVersion(generation, etag)
    st = os.stat(memory.path)
    return FileVersion(generation, f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}")


class SnapStartMemory:
    """Holds the ``Memory`` a handler reads, across a snapshot and its restores.

    ``target`` is a path or ``s3://`` URL (opened with ``open_options``, by default
    ``readonly=True``) or a callable returning an open ``Memory``. ``level`` and ``tiers``
    pick what ``Memory.warmup`` loads before the snapshot and after a restore
    (``level=None``: ``MEMVID_PRELOAD_LEVEL``'s tiers; ``rewarm=False`` skips the warmup
    after a restore, leaving the tiers to load on first use).
    """

    def __init__(self, target: str | os.PathLike[str] | Opener, *, level: str | None = None,
                 tiers: list[str] | None = None, rewarm: bool = True,
                 **open_options: Any) -> None:
        if callable(target):
            if open_options:
                raise InvalidInputError("open options go with a path, not with an opener")
            self._opener: Opener = target
        elif isinstance(target, str | os.PathLike):
            path, options = os.fspath(target), {"readonly": True, **open_options}
            self._opener = lambda: Memory.open(path, **options)
        else:
            raise InvalidInputError(f"target must be a path, a URL or a callable returning "
                                    f"a Memory, got {type(target).__name__}")
        self._level, self._tiers, self._rewarm = level, tiers, rewarm
        self._lock = threading.Lock()
        self._memory: Memory | None = self._opener()
        self._before: FileVersion | None = None
        self.registered = False
        self.snapshots = 0
        self.last_restore: RestoreReport | None = None

    @property
    def memory(self) -> Memory:
        """The open memory (reopened here if a snapshot closed it and no restore ran)."""
        with self._lock:
            if self._memory is None:
                self._memory = self._opener()
            return self._memory

    def warm(self) -> dict[str, str]:
        """Load the configured tiers now; each tier's state."""
        return self.memory.warmup(self._level, tiers=self._tiers)

    def before_snapshot(self) -> None:
        """Warm the tiers, remember the version, close the handle (the hook's body)."""
        self.warm()
        with self._lock:
            if self._memory is None:
                return
            self._before = file_version(self._memory)
            self._memory.close()
            self._memory = None
            self.snapshots += 1

    def after_restore(self) -> RestoreReport:
        """Reopen (seeing the newest file or object), warm, compare versions."""
        started = time.perf_counter()
        with self._lock:
            if self._memory is not None:  # no snapshot closed it: move to the newest state
                self._before = file_version(self._memory)
                self._memory.refresh()
            else:
                self._memory = self._opener()
            memory = self._memory
        reopened = time.perf_counter()
        if self._rewarm:
            memory.warmup(self._level, tiers=self._tiers)
        warmed = time.perf_counter()
        after = file_version(memory)
        report = RestoreReport(seconds=warmed - started, reopen_seconds=reopened - started,
                               warmup_seconds=warmed - reopened, before=self._before,
                               after=after, changed=after != self._before)
        self.last_restore = report
        return report

    def close(self) -> None:
        """Close the memory; ``memory`` reopens it on next use."""
        with self._lock:
            if self._memory is not None:
                self._memory.close()
                self._memory = None


def register(target: str | os.PathLike[str] | Opener | SnapStartMemory, *,
             level: str | None = None, tiers: list[str] | None = None, rewarm: bool = True,
             **open_options: Any) -> SnapStartMemory:
    """A ``SnapStartMemory`` for ``target``, its hooks registered with SnapStart.

    Call it once, at module level of the handler (the init phase). When
    ``snapshot_restore_py`` is not importable nothing is registered
    (``holder.registered`` is False) and the holder simply keeps its memory open.
    """
    holder = target if isinstance(target, SnapStartMemory) else SnapStartMemory(
        target, level=level, tiers=tiers, rewarm=rewarm, **open_options)
    hooks = _hooks()
    if hooks is not None and not holder.registered:
        before, after = hooks
        before(holder.before_snapshot)
        after(holder.after_restore)
        holder.registered = True
    return holder


__all__ = ["FileVersion", "RestoreReport", "SnapStartMemory", "file_version",
           "hooks_available", "register"]
