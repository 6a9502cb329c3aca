"""tantivy's files on disk: the writer's workdir and the readers' content-addressed cache.

tantivy cannot open an index from bytes or from a read-only directory, so readers unpack
the manifest's files into ``<cache_root>/<key>/`` (:func:`unpack`) and reuse it in later
processes. A directory is complete when its marker file names the manifest's identity and
every file has the size the marker records; the marker is written last. Concurrent
processes may race to unpack the same key: each writes a private temp dir and renames it
into place; the loser drops its copy and uses the winner's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

from ...errors import DamagedIndexError, MemvidError
from .manifest import LexManifest

MARKER = ".memvid-lex.json"
KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
SEGMENT_FILE_RE = re.compile(r"([0-9a-f]{32})(?:\.[A-Za-z0-9_]+)+")  # never "/", ".." or NUL


def segment_ids(meta: str) -> set[str]:
    return {s["segment_id"].replace("-", "") for s in json.loads(meta)["segments"]}


def needed_files(path: str, meta: str) -> list[str]:
    ids = segment_ids(meta)
    out = []
    for name in os.listdir(path):
        m = SEGMENT_FILE_RE.fullmatch(name)
        if m and m.group(1) in ids:
            out.append(name)
    return sorted(out)


def read_marker(path: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(path, MARKER), encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def write_marker(path: str, identity: str, sizes: dict[str, int], kind: str,
                 deferred: list[str] | tuple[()] = ()) -> None:
    """Mark ``path`` complete; ``deferred``: its positions files written as their tails
    alone (:func:`write_files`), whole once :func:`fill_files` has written them. Such a
    copy's marker names another identity (``DEFERRED``), which code unaware of deferred
    files never takes for complete."""
    tmp = os.path.join(path, MARKER + f".{os.getpid()}-{threading.get_ident()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"identity": identity + (DEFERRED if deferred else ""), "sizes": sizes,
                   "kind": kind, "deferred": list(deferred)}, fh)
    os.replace(tmp, os.path.join(path, MARKER))


DEFERRED = "+deferred"  # the identity of a copy whose positions files are tails


def deferred_files(path: str) -> list[str]:
    """The files of the unpacked index at ``path`` written as their tails alone."""
    marker = read_marker(path) or {}
    names = marker.get("deferred", [])
    return [n for n in names if isinstance(n, str) and SEGMENT_FILE_RE.fullmatch(n)]


def complete(path: str, identity: str, check_owner: bool = False,
             deferred: bool = False) -> bool:
    """True when ``path`` holds a fully written copy of the index ``identity`` (with
    ``deferred``, perhaps its positions files as their tails: :func:`deferred_files`)."""
    marker = read_marker(path)
    if marker is None or marker.get("identity") not in (
            identity, identity + DEFERRED if deferred else identity):
        return False
    if check_owner and hasattr(os, "getuid"):
        try:
            if os.stat(path).st_uid != os.getuid():
                return False
        except OSError:
            return False
    try:
        return all(os.path.getsize(os.path.join(path, n)) == size
                   for n, size in marker.get("sizes", {}).items())
    except OSError:
        return False


def write_files(path: str, manifest: LexManifest,
                 read_file: Callable[[str], bytes | memoryview],
                 done: Callable[[str], None] | None = None,
                 read_tail: Callable[[str], bytes | memoryview] | None = None
                 ) -> dict[str, int]:
    """Write every manifest file (length and crc checked) and meta.json into ``path``;
    ``done(name)`` is told when a file's bytes are no longer needed. With ``read_tail``
    (a file's last bytes), the positions files the manifest has tails of are written as
    those alone, checked, the rest of each left a hole of its length (only phrase
    queries read it: :func:`fill_files` writes it first)."""
    sizes = {}
    deferred = set(manifest.deferred()) if read_tail is not None else set()
    for name, (off, length, crc) in sorted(manifest.files.items()):
        if not SEGMENT_FILE_RE.fullmatch(name):
            raise DamagedIndexError(f"lexical index manifest names a bad file {name!r}",
                                    "segment:lex")
        if name in deferred:
            size, tail_crc = manifest.tails[name]
            data = _checked(name, read_tail(name), size, tail_crc, off + length - size)
            at = length - size
        else:
            data, at = _checked(name, read_file(name), length, crc, off), 0
        with open(os.path.join(path, name), "wb") as fh:
            fh.truncate(length)
            fh.seek(at)
            fh.write(data)
        del data
        if done is not None:
            done(name)
        sizes[name] = length
    with open(os.path.join(path, "meta.json"), "w", encoding="utf-8") as fh:
        fh.write(manifest.meta)
    return sizes


class PinnedFiles:
    """The files of the index unpacked at ``path`` that :func:`write_files` left as their
    tails, known by their inodes from before the index opened them: :meth:`fill` writes
    only into those files (the ones the index maps), never into a copy that replaced them
    (pruned, or unpacked again by another process)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.inodes = {name: _inode(os.stat(os.path.join(path, name)))
                       for name in deferred_files(path)}

    def unchanged(self) -> bool:
        """Whether the directory still holds the files known (the index opened them)."""
        try:
            return all(_inode(os.stat(os.path.join(self.path, name))) == inode
                       for name, inode in self.inodes.items())
        except OSError:
            return False

    def fill(self, manifest: LexManifest,
             read_file: Callable[[str], bytes | memoryview]) -> bool:
        """Write the known files whole, checked (DamagedIndexError), and mark the copy
        complete; False when one is no longer the file known (nothing more is written:
        the index must be opened from a whole copy)."""
        for name, inode in self.inodes.items():
            try:
                fd = os.open(os.path.join(self.path, name), os.O_RDWR)
            except OSError:
                return False
            try:
                if _inode(os.fstat(fd)) != inode:
                    return False
                off, length, crc = manifest.files[name]
                data = memoryview(_checked(name, read_file(name), length, crc, off)).cast("B")
                done = 0
                while done < len(data):
                    done += os.pwrite(fd, data[done:], done)
            finally:
                os.close(fd)
        if self.unchanged():
            marker = read_marker(self.path) or {}
            write_marker(self.path, manifest.identity(), marker.get("sizes", {}),
                         str(marker.get("kind", "cache")))
        return True


def _inode(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _checked(name: str, data: bytes | memoryview, length: int, crc: int, offset: int
             ) -> bytes | memoryview:
    """``data``, the ``length`` bytes of file ``name`` (or of its tail) at ``offset`` of
    the .mv2, when they match the manifest's CRC; DamagedIndexError otherwise."""
    if len(data) != length or (zlib.crc32(data) & 0xFFFFFFFF) != crc:
        raise DamagedIndexError(
            f"lexical index file {name} does not match its manifest entry "
            f"(length {len(data)} vs {length})", "segment:lex", offset)
    return data


def rmtree(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)

def prune_cache(cache_root: str, prefix: str, keep: str | None = None,
                min_age_s: float = 300.0) -> list[str]:
    """Delete unpacked copies (and abandoned temp dirs) in ``cache_root`` whose name starts
    with ``prefix``, except ``keep`` and any touched in the last ``min_age_s`` seconds (other
    processes may be about to open them). Writer workdirs are never touched. Processes that
    already opened a deleted copy keep working (POSIX); returns the names deleted."""
    removed: list[str] = []
    now = time.time()
    try:
        names = os.listdir(cache_root)
    except OSError:
        return removed
    for name in names:
        if name == keep or not (name.startswith(prefix) or name.startswith("." + prefix)):
            continue
        path = os.path.join(cache_root, name)
        try:
            if now - os.stat(path).st_mtime < min_age_s or not os.path.isdir(path):
                continue
        except OSError:
            continue
        temp = name.startswith(".") and name.endswith(".tmp")
        marker = read_marker(path)
        if temp or (marker is not None and marker.get("kind") == "cache"):
            discard(path)
            removed.append(name)
    return removed


def discard(path: str) -> None:
    """Move ``path`` aside atomically, then delete it (other processes may hold it open)."""
    trash = f"{path}.stale-{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}"
    try:
        os.rename(path, trash)
    except OSError:
        return
    rmtree(trash)


def unpack(manifest: LexManifest, read_file: Callable[[str], bytes | memoryview],
           cache_root: str, key: str, done: Callable[[str], None] | None = None,
           read_tail: Callable[[str], bytes | memoryview] | None = None
           ) -> tuple[str, bool]:
    """Ensure ``<cache_root>/<key>`` holds the manifest's index; return (path, unpacked).
    ``read_tail``: its positions files may be unpacked as their tails (:func:`write_files`);
    without it, a copy holding them so is replaced by a whole one."""
    final = os.path.join(cache_root, key)
    identity = manifest.identity()
    deferring = read_tail is not None
    if complete(final, identity, check_owner=True, deferred=deferring):
        return final, False
    try:
        os.makedirs(cache_root, mode=0o700, exist_ok=True)
        for _attempt in range(5):
            tmp = tempfile.mkdtemp(prefix=f".{key}.", suffix=".tmp", dir=cache_root)
            try:
                sizes = write_files(tmp, manifest, read_file, done, read_tail)
                deferred = manifest.deferred() if read_tail is not None else []
                # last: marks the copy complete
                write_marker(tmp, identity, sizes, "cache", deferred)
                try:
                    os.rename(tmp, final)
                    return final, True
                except OSError:
                    if complete(final, identity, check_owner=True, deferred=deferring):
                        return final, True  # another process won the race
                    discard(final)  # a stale or foreign copy under this key
            finally:
                if os.path.isdir(tmp):
                    rmtree(tmp)
    except OSError as exc:
        raise MemvidError(f"cannot unpack the lexical index into {final}: {exc} (free some "
                          "space or set MEMVID_CACHE_DIR to a writable directory)") from exc
    raise MemvidError(f"could not unpack the lexical index into {final} (another process "
                      "keeps replacing it? set MEMVID_CACHE_DIR to a private directory)")

