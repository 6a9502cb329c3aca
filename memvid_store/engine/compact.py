"""Compaction: rewrite the live data (and retained history) into a new file.

The new file is built under a temporary name, locked before anyone can see it, fsynced,
then renamed over the original. Readers holding the old file keep reading it; writers
waiting for the old file's lock notice the replacement and reopen the path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ..config import StoreConfig
from . import _faults, lock
from .format import TIME_MAX
from .history import commit_log, state_at
from .hooks import CommitHook
from .keys import SEP
from .records import COUNTERS, Version
from .snapshot import Snapshot
from .store import Committer, fsync_dir, make_snapshot, read_state, write_empty


def kept_versions(snap: Snapshot, floor: int | None) -> tuple[list[Version], int]:
    """Versions that remain after dropping those replaced at or before ``floor``, and the
    highest version number dropped (0: none)."""
    out: list[Version] = []
    dropped = 0
    for ref in snap.iter_all():
        vfrom, vto = snap.valid_from(ref), snap.valid_to(ref)
        if snap.is_tombstone(ref):
            keep = floor is None or vfrom > floor
        else:
            keep = floor is None or vto > floor
        if not keep:
            dropped = max(dropped, snap.version_number(ref))
            continue
        v = snap.load(ref)
        out.append(Version(len(out), v.id, v.version, v.created_at, v.valid_from, v.tombstone,
                           -1, False, v.text, v.metadata, v.tags, snap.embedding(ref), vto))
    return out, dropped


def compact_into(path: str, snap: Snapshot, floor: int | None, config: StoreConfig,
                 wal_size: int, commit_time: int, maintainer: CommitHook | None = None,
                 before_rename: Callable[[int], None] | None = None) -> int:
    """Write the compacted file and rename it over ``path``; returns its locked fd.

    ``before_rename(fd)`` is called with the finished, locked file just before the rename.
    """
    old_floor = snap.toc.history_floor_us
    if old_floor is not None and (floor is None or floor < old_floor):
        floor = old_floor
    log = commit_log(snap)
    # the writes before the floor may go: remember the state at it (as_of of later ones
    # counts writes from there)
    floor_state = None if floor is None else state_at(snap, floor)
    versions, dropped = kept_versions(snap, floor)
    counters: dict[str, Any] = {k: 0 for k in COUNTERS}
    version_base = max(dropped, snap.toc.counters.get("version_base", 0))
    if version_base:
        counters["version_base"] = version_base
    for v in versions:
        counters["versions"] += 1
        if v.tombstone:
            counters["tombstones"] += 1
        else:
            counters["text_bytes"] += len(v.text.encode())
            live = v.valid_to == TIME_MAX
            counters["live"] += live
            counters["vectors"] += bool(v.embedding)
            if SEP in v.id:
                named = counters.setdefault("collections", {})
                name = v.id.partition(SEP)[0]
                named[name] = named.get(name, 0) + live
    tmp = f"{path}.compact-{os.getpid()}"
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        lock.acquire(fd, tmp, 0)
        write_empty(fd, dim=snap.dim, wal_size=wal_size, options=snap.toc.options,
                    generation=snap.generation, file_uuid=snap.header.uuid,
                    public_generation=snap.toc.public_generation, floor_state=floor_state,
                    history_floor_us=floor, commit_log=log,
                    created_at_us=snap.header.created_at_us,
                    commit_time_us=snap.toc.commit_time_us)
        fresh = make_snapshot(fd, read_state(fd), config.mmap)
        committer = Committer(fd, fresh, sync=True, use_mmap=config.mmap, maintainer=maintainer)
        committer.commit(versions, checkpoint_seq=0, dim=snap.dim, counters=counters,
                         commit_time=commit_time, write_count=len(snap.delta_times))
        committer.snapshot.view.close()
        fresh.view.close()
        _faults.hit("compact.before_rename")
        if before_rename is not None:
            before_rename(fd)
        os.replace(tmp, path)
    except BaseException:
        os.close(fd)
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(path)
    return fd
