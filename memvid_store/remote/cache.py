"""Chunks of remote objects on local disk, bounded in bytes and shared by processes.

Layout under the cache directory: ``<object>/<version>/<index>`` holds chunk ``index`` of
one version of one object (``<object>`` hashes the URL and endpoint, ``<version>`` the
ETag), ``<object>/<version>/p<offset>-<length>`` a piece of it smaller than the chunks
it touches (a few rows, a frame's payload), and ``<object>/current`` the ETag and size
last seen, which the next open asks the store to confirm (``If-None-Match``) instead of
downloading anything. A version's bytes never change, so a chunk on disk is valid for as
long as it exists. Files are written
under a temporary name and renamed into place. When the directory grows past its bound,
the least recently used chunks (by modification time, touched on first use in a process)
are deleted (a process keeps the chunks it copied into its memory). A
directory that belongs to another user, or that others may write, is not used.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import hashlib
import json
import os
import re
import threading
import weakref
from typing import NamedTuple

from ..atomic_write import write_atomic

_CURRENT = "current"
_PIECE = re.compile(r"p(\d+)-(\d+)")


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


class Seen(NamedTuple):
    """A version of an object: its ETag, size and version id (None: the store keeps no
    versions)."""

    etag: str
    size: int
    version: str | None = None


class ChunkCache:
    """The chunk files of every object under ``root``, at most ``limit`` bytes in all."""

    def __init__(self, root: str, limit: int) -> None:
        self.root = root
        self.limit = limit if _private(root) else 0  # never trust another user's files
        self._used: int | None = None  # bytes of chunk files, counted on first store
        self._lock = threading.Lock()
        # files to write, by a thread that runs while there are some (``flush`` waits)
        self._queued: collections.deque[tuple[str, str, bytes | memoryview]] = \
            collections.deque()
        self._writing = False
        self._idle = threading.Condition(self._lock)

    def object_dir(self, name: str) -> str:
        return os.path.join(self.root, _digest(name))

    def remembered(self, object_dir: str) -> Seen | None:
        """The version last seen of this object, if any."""
        if self.limit <= 0:
            return None
        try:
            with open(os.path.join(object_dir, _CURRENT)) as f:
                seen = json.load(f)
            version = seen.get("version")
            return Seen(str(seen["etag"]), int(seen["size"]),
                        version if isinstance(version, str) else None)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def remember(self, object_dir: str, seen: Seen) -> None:
        if self.limit <= 0:
            return
        with contextlib.suppress(OSError):
            os.makedirs(object_dir, exist_ok=True)
            write_atomic(os.path.join(object_dir, _CURRENT), json.dumps(
                {"etag": seen.etag, "size": seen.size, "version": seen.version}).encode())

    @staticmethod
    def version_dir(object_dir: str, etag: str) -> str:
        return os.path.join(object_dir, _digest(etag))

    def load(self, version_dir: str, index: int, into: memoryview) -> bool:
        """Copy chunk ``index`` into ``into``; False if it is not cached (or has another
        length than ``into``: a damaged file, deleted)."""
        if self.limit <= 0:
            return False
        return self._load(os.path.join(version_dir, str(index)), into)

    def _load(self, path: str, into: memoryview) -> bool:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return False
        try:
            if os.fstat(fd).st_size != len(into):
                with contextlib.suppress(OSError):
                    os.unlink(path)
                return False
            with contextlib.suppress(OSError):
                os.utime(fd)  # recently used: evicted last
            return os.readv(fd, [into]) == len(into)
        except OSError:
            return False
        finally:
            os.close(fd)

    def store(self, version_dir: str, index: int, data: bytes | memoryview) -> None:
        """Keep a downloaded chunk (best effort: a full or read-only disk only costs a
        later download), then trim the cache to its bound. The file is written by a
        background thread, off the path of the read that downloaded it; ``data`` must not
        change meanwhile."""
        self._store(version_dir, str(index), data)

    def flush(self) -> None:
        """Wait until every file stored so far is written."""
        with self._lock:
            while self._writing:
                self._idle.wait()

    def _store(self, version_dir: str, name: str, data: bytes | memoryview) -> None:
        if self.limit <= 0:
            return
        with self._lock:
            self._queued.append((version_dir, name, data))
            if not self._writing:
                self._writing = True
                _WRITING.add(self)
                threading.Thread(target=self._drain, name="memvid-s3-cache", daemon=True).start()

    def _drain(self) -> None:
        _lowest_priority()
        while True:
            with self._lock:
                if not self._queued:
                    self._writing = False
                    self._idle.notify_all()
                    return
                item = self._queued.popleft()
            self._write(*item)

    def _write(self, version_dir: str, name: str, data: bytes | memoryview) -> None:
        try:
            os.makedirs(version_dir, exist_ok=True)
            write_atomic(os.path.join(version_dir, name), data)
        except OSError:
            return
        with self._lock:
            if self._used is None:
                self._used = sum(size for _, size, _ in self._chunks())
            else:
                self._used += len(data)
            if self._used > self.limit:
                self._used = self._trim()

    def pieces(self, version_dir: str) -> list[tuple[int, int]]:
        """(offset, length) of the piece files of one version, sorted."""
        if self.limit <= 0:
            return []
        try:
            names = os.listdir(version_dir)
        except OSError:
            return []
        found = (_PIECE.fullmatch(name) for name in names)
        return sorted((int(m.group(1)), int(m.group(2))) for m in found if m)

    def load_piece(self, version_dir: str, offset: int, into: memoryview) -> bool:
        """Copy the piece at ``offset`` (``len(into)`` bytes) into ``into``."""
        return self._load(os.path.join(version_dir, f"p{offset}-{len(into)}"), into)

    def store_piece(self, version_dir: str, offset: int, data: bytes | memoryview) -> None:
        """Keep a downloaded piece (see ``store``)."""
        self._store(version_dir, f"p{offset}-{len(data)}", data)

    def _chunks(self) -> list[tuple[float, int, str]]:
        """(mtime, size, path) of every chunk and piece file under the root."""
        out = []
        for folder, _, names in os.walk(self.root):
            for name in names:
                if not name.isdigit() and not _PIECE.fullmatch(name):
                    continue
                path = os.path.join(folder, name)
                with contextlib.suppress(OSError):
                    st = os.stat(path)
                    out.append((st.st_mtime, st.st_size, path))
        return out

    def _trim(self) -> int:
        """Delete the least recently used chunks down to 90 % of the bound; returns the
        bytes left."""
        chunks = sorted(self._chunks())
        used = sum(size for _, size, _ in chunks)
        target = self.limit * 9 // 10
        for _, size, path in chunks:
            if used <= target:
                break
            with contextlib.suppress(OSError):
                os.unlink(path)
                used -= size
        return used


def _lowest_priority() -> None:
    """Give the calling thread the lowest CPU priority (Linux schedules threads on their
    own): copying a first answer's downloads into the page cache then waits for the
    query's threads instead of taking a core from them."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


_WRITING: weakref.WeakSet[ChunkCache] = weakref.WeakSet()  # caches with writes queued


@atexit.register
def _flush_all() -> None:
    """At exit, finish the files queued (a process that answered and exits still leaves
    its chunks for the next one)."""
    for cache in list(_WRITING):
        cache.flush()


def _private(root: str) -> bool:
    """Create ``root`` (and its parent) private to this user; False if it is not ours."""
    try:
        os.makedirs(os.path.dirname(root), mode=0o700, exist_ok=True)
        os.makedirs(root, mode=0o700, exist_ok=True)
        st = os.stat(root)
    except OSError:
        return False
    return not hasattr(os, "getuid") or (st.st_uid == os.getuid() and not st.st_mode & 0o022)


__all__ = ["ChunkCache", "Seen"]
