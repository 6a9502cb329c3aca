"""One writer per file per process, shared by every writable handle of that file.

The writer lock is a ``flock``, which belongs to the open file description: a second
descriptor of the same file in the same process would wait for a lock its own process
holds. So a process keeps one ``SharedWriter`` per file, keyed by (device, inode), and
hands out counted shares of it, the way SQLite connections of one process share a file:

* ``acquire`` opens the path, finds the file's entry and takes a share of it; only when
  there is none does it take the writer lock (waiting up to ``lock_timeout`` for another
  process, as before) and let the caller start the writer.
* Every share reads the entry's current snapshot and writes through the entry's
  ``Writer`` under the entry's one ``RLock``, so each share sees the others' writes at once.
* ``compact()`` through one share moves the entry to the new file: new descriptor, new
  key. The new key is registered before the rename (``add_key``) and the old one dropped
  once the old file is released (``settle``), so an open racing with the rename finds the
  entry either way.
* ``release`` gives a share back; the last one seals (on ``close()``), closes the file
  and with it releases the lock. A share dropped without ``close()`` is released when its
  handle is collected (``dropped``, with a ``ResourceWarning``), without sealing: its
  writes are durable in the WAL.

Across processes nothing changes: one writer per file.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from . import lock
from .hooks import AUTO
from .store import Opened, open_fd, read_state, remove_stale_temp_files, same_file

if TYPE_CHECKING:
    from ..config import StoreConfig
    from .writer import Writer

T = TypeVar("T")
Key = tuple[int, int]

_guard = threading.RLock()  # reentrant: a finalizer may run while this thread holds it
_changed = threading.Condition(_guard)  # an entry was registered, released or not opened
_entries: dict[Key, SharedWriter] = {}
_opening: set[Key] = set()


def key_of(fd: int) -> Key:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


class SharedWriter:
    """The writer of one file in this process, and what its shares have in common.

    Attributes:
        path: the path the first share opened.
        fd: the file, open for writing, with the writer lock held (a new one after
            ``compact()``).
        writer: the engine ``Writer`` (started by the first share, restarted on the
            compacted file).
        lock: serializes writes, commits and snapshot switches of every share.
        refs: live shares; 0 once the last one is being released.
    """

    __slots__ = ("fd", "keys", "lock", "path", "refs", "writer")

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd
        self.writer: Writer | None = None
        self.lock = threading.RLock()
        self.refs = 1
        self.keys = [key_of(fd)]

    def add_key(self, fd: int) -> None:
        """Also name the entry by ``fd``'s file: the locked compacted file about to be
        renamed over the old one (an open racing with the rename finds the entry)."""
        key = key_of(fd)
        with _guard:
            _entries[key] = self
            self.keys.append(key)

    def settle(self) -> None:
        """Name the entry by ``fd``'s file only (after a compaction, or one that failed)."""
        key = key_of(self.fd)
        with _changed:
            for old in self.keys:
                if old != key and _entries.get(old) is self:
                    del _entries[old]
            self.keys = [key]
            _changed.notify_all()


    def load(self) -> Opened:
        """What a first share starts the writer on."""
        return read_state(self.fd)

    def compact(self, path: str, floor: int | None, config: StoreConfig,
                install: Callable[[Opened], None]) -> None:
        """Seal, write the compacted file over ``path`` and move every share to it:
        ``install`` starts the writer on the new file's state."""
        from .compact import compact_into

        with self.lock:
            writer = self.writer
            if writer.hook is not None:
                writer.hook.close()  # the compacted file gets its graph from compaction
            writer.seal(full=AUTO)
            old_fd, old_snap = self.fd, writer.snapshot
            try:  # an open racing with the rename finds the entry by either file
                fd = compact_into(path, old_snap, floor, config, old_snap.header.wal_size,
                                  writer.commit_time(), writer.hook, before_rename=self.add_key)
            except BaseException:
                self.settle()
                raise
            self.fd = fd
            install(read_state(fd))
            old_snap.close(view=True)
            lock.release(old_fd)
            os.close(old_fd)
            self.settle()


def acquire(path: str, lock_timeout: float, attach: Callable[[SharedWriter], T]) -> T:
    """``attach(entry)`` with a new share of this process's writer of ``path``.

    ``entry.writer`` is None when the share is the first: ``attach`` then starts it. The
    writer lock is taken only for a first share; another process holding it makes this
    wait up to ``lock_timeout`` s and raise MemoryLockedError, as before. A writer that
    waited while ``compact()`` replaced the file opens the new file instead.
    """
    while True:
        fd = open_fd(path, writable=True)
        key = key_of(fd)
        with _changed:
            while True:
                entry = _entries.get(key)
                if entry is not None and entry.refs > 0:
                    entry.refs += 1
                    break
                if entry is None and key not in _opening:
                    _opening.add(key)
                    break
                _changed.wait()  # being opened by another thread, or its last share closing
        if entry is not None:
            os.close(fd)
            try:
                return attach(entry)
            except BaseException:
                release(entry, None)
                raise
        try:
            lock.acquire(fd, path, lock_timeout)
            if not same_file(fd, path):
                os.close(fd)  # replaced by compact() while this waited: open the new file
                continue
            remove_stale_temp_files(path)
            return _start(SharedWriter(path, fd), attach)
        except BaseException:
            os.close(fd)
            raise
        finally:
            with _changed:
                _opening.discard(key)
                _changed.notify_all()


def create(path: str, fd: int, attach: Callable[[SharedWriter], T]) -> T:
    """The first share of a file just created (``fd`` is locked); the caller closes ``fd``
    if this raises."""
    return _start(SharedWriter(path, fd), attach)


def _start(entry: SharedWriter, attach: Callable[[SharedWriter], T]) -> T:
    handle = attach(entry)
    with _changed:
        _entries[entry.keys[0]] = entry
        _changed.notify_all()
    return handle


def release(entry: SharedWriter, seal: Callable[[Writer], object] | None) -> None:
    """Give back one share. The last one ``seal``s the writer (if given), closes its
    snapshot and the file, which releases the writer lock."""
    with _changed:
        entry.refs -= 1
        if entry.refs > 0:
            return
    with entry.lock:
        try:
            if entry.writer is not None and entry.writer.hook is not None:
                entry.writer.hook.close()  # background work stops before the last commit
            if seal is not None and entry.writer is not None:
                seal(entry.writer)
        finally:
            if entry.writer is not None:
                entry.writer.snapshot.close(view=True)  # its map holds a duplicate of fd
            lock.release(entry.fd)
            os.close(entry.fd)
            with _changed:
                for key in entry.keys:
                    if _entries.get(key) is entry:
                        del _entries[key]
                _changed.notify_all()


def commit_prepared(entry: SharedWriter) -> None:
    """Commit an index the writer's hook prepared in the background (from its thread),
    unless the writer has been released meanwhile."""
    with entry.lock:
        if entry.refs > 0 and entry.writer is not None:
            entry.writer.commit_prepared()


def dropped(entry: SharedWriter, path: str) -> None:
    """Finalizer of a handle collected without ``close()``: release its share."""
    warnings.warn(f"writable Memory of {path} was not closed; its share of the writer is "
                  "released now, without sealing (its writes are in the WAL)",
                  ResourceWarning, stacklevel=1)
    release(entry, None)


def shares(path: str) -> int:
    """Live shares of the writer of the file at ``path`` in this process (0: none)."""
    try:
        st = os.stat(path)
    except OSError:
        return 0
    with _guard:
        entry = _entries.get((st.st_dev, st.st_ino))
        return 0 if entry is None else entry.refs


__all__ = ["SharedWriter", "acquire", "commit_prepared", "create", "dropped", "key_of", "release",
           "shares"]
