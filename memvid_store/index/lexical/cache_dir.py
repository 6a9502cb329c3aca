"""The directory that holds unpacked lexical indexes: private to its user, bounded, and
never a reason for a read to fail.

* The default (``config.default_cache_root``) is ``<system temp>/memvid-cache-<uid>``,
  created with mode 0700: users of one machine never share (or block) each other's copies.
* A directory that cannot be used (owned by another user, not writable, on a full or
  read-only disk) is replaced by a private temporary one for this process, removed at exit.
* After a new unpack (at most once every ``PRUNE_EVERY_S`` per process, in a background
  thread: a directory of thousands of copies never slows an open), copies unused for
  ``MAX_AGE_S`` go, then the least recently used until the directory holds at most its
  limit (``MEMVID_CACHE_DIR_LIMIT``, default 2 GiB).
  Using a copy touches it; copies touched in the last ``RECENT_S`` seconds are never removed
  (another process may be opening them), and neither are writers' work directories.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import threading
import time

from ...config import parse_size
from .unpack import discard, read_marker

DEFAULT_LIMIT = 2 * 1024**3
MAX_AGE_S = 14 * 24 * 3600.0
RECENT_S = 300.0
PRUNE_EVERY_S = 600.0

_pruned_at: dict[str, float] = {}  # root -> when this process last started pruning it
_prune_lock = threading.Lock()

_fallback: str | None = None
_fallback_lock = threading.Lock()


def usable_root(root: str) -> str:
    """``root`` created private (0700) if it can hold this user's copies, else this
    process's own temporary directory."""
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
        st = os.stat(root)
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            return _fallback_root()
        if st.st_mode & 0o077:
            os.chmod(root, 0o700)
        if not os.access(root, os.W_OK | os.X_OK):
            return _fallback_root()
        return root
    except OSError:
        return _fallback_root()


def _fallback_root() -> str:
    global _fallback
    with _fallback_lock:
        if _fallback is None or not os.path.isdir(_fallback):
            _fallback = tempfile.mkdtemp(prefix="memvid-cache-")
            atexit.register(shutil.rmtree, _fallback, True)
        return _fallback


def touch(path: str) -> None:
    """Mark a copy as used now (pruning removes the least recently used first)."""
    with contextlib.suppress(OSError):
        os.utime(path)


def limit_from_env() -> int:
    """``MEMVID_CACHE_DIR_LIMIT`` (bytes, or a size such as ``500MB``), else 2 GiB."""
    raw = os.environ.get("MEMVID_CACHE_DIR_LIMIT")
    if not raw:
        return DEFAULT_LIMIT
    return parse_size(raw, "MEMVID_CACHE_DIR_LIMIT")


def prune_soon(root: str) -> threading.Thread | None:
    """Prune ``root`` in a background thread, unless this process did in the last
    ``PRUNE_EVERY_S``; the thread started (None: not now)."""
    now = time.monotonic()
    with _prune_lock:
        last = _pruned_at.get(root)
        if last is not None and now - last < PRUNE_EVERY_S:
            return None
        _pruned_at[root] = now
    thread = threading.Thread(target=prune_unused, args=(root,), name="memvid-cache-prune",
                              daemon=True)
    thread.start()
    return thread


def prune_unused(root: str, limit: int | None = None, max_age_s: float = MAX_AGE_S,
                 now: float | None = None) -> list[str]:
    """Remove unpacked copies unused for ``max_age_s``, then the least recently used until
    the copies take at most ``limit`` bytes; returns the names removed."""
    limit = limit_from_env() if limit is None else limit
    now = time.time() if now is None else now
    copies: list[tuple[float, int, str]] = []  # (last use, bytes, name)
    try:
        names = os.listdir(root)
    except OSError:
        return []
    for name in names:
        path = os.path.join(root, name)
        marker = read_marker(path)
        if marker is None or marker.get("kind") != "cache":
            continue  # a writer's work directory, a temp dir, or not ours
        try:
            used = os.stat(path).st_mtime
        except OSError:
            continue
        copies.append((used, _size(path), name))
    copies.sort()
    total = sum(size for _, size, _ in copies)
    removed = []
    for used, size, name in copies:
        if now - used < RECENT_S:
            break
        if now - used < max_age_s and total <= limit:
            break
        discard(os.path.join(root, name))
        removed.append(name)
        total -= size
    return removed


def _size(path: str) -> int:
    total = 0
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
    except OSError:
        pass
    return total
