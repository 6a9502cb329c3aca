"""Compaction: rewrite the live data (and retained history) into a new file.

The new file is built under a temporary name, locked before anyone can see it, fsynced,
then renamed over the original. Readers holding the old file keep reading it; writers
waiting for the old file's lock notice the replacement and reopen the path.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from ..config import StoreConfig
from ..heap import release_free_heap
from . import _faults, lock
from .format import TIME_MAX
from .history import commit_log, state_at
from .hooks import ALL, AUTO, DUE, CommitHook
from .keys import SEP
from .records import COUNTERS, Version
from .snapshot import Snapshot
from .store import (
    Committer,
    fsync_dir,
    make_snapshot,
    merge_filled,
    read_state,
    unfilled,
    write_empty,
)

CHUNK_BYTES: int | None = None  # a fixed chunk size; None: 1/32 of the memory bound
RUN_BYTES: int | None = None  # a fixed size runs are filled to; None: 1/8 of the bound


class Kept:
    """The versions compaction keeps, streamed in gid order (renumbered from 0) in chunks of
    about ``chunk_bytes``, the counters of those streamed so far and their old gids
    (``old_gids``: a kept version's new gid is its position there)."""

    def __init__(self, snap: Snapshot, floor: int | None, chunk_bytes: int) -> None:
        self.snap, self.floor, self.chunk_bytes = snap, floor, chunk_bytes
        self.counters: dict[str, Any] = {k: 0 for k in COUNTERS}
        self.dropped = 0  # the highest version number dropped (0: none)
        self.count = 0
        self.old_gids = array("q")

    def chunks(self) -> Iterator[list[Version]]:
        snap, floor = self.snap, self.floor
        out: list[Version] = []
        size = 0
        for ref in snap.iter_all():
            vfrom, vto = snap.valid_from(ref), snap.valid_to(ref)
            if snap.is_tombstone(ref):
                keep = floor is None or vfrom > floor
            else:
                keep = floor is None or vto > floor
            if not keep:
                self.dropped = max(self.dropped, snap.version_number(ref))
                continue
            v = snap.load(ref, cached=False)  # a pass over every version: not cache-worthy
            kept = Version(self.count, v.id, v.version, v.created_at, v.valid_from,
                           v.tombstone, -1, False, v.text, v.metadata, v.tags,
                           snap.embedding(ref), vto)
            self._count(kept)
            self.old_gids.append(ref.gid)
            out.append(kept)
            size += len(kept.text) + len(kept.embedding or b"") + 64
            if size >= self.chunk_bytes:
                yield out
                out, size = [], 0
                # the old file's pages read for this chunk stop counting as resident memory
                snap.release_pages()
        if out:
            yield out

    def _count(self, v: Version) -> None:
        counters = self.counters
        self.count += 1
        counters["versions"] += 1
        if v.tombstone:
            counters["tombstones"] += 1
            return
        counters["text_bytes"] += len(v.text.encode())
        live = v.valid_to == TIME_MAX
        counters["live"] += live
        counters["vectors"] += bool(v.embedding)
        if SEP in v.id:
            named = counters.setdefault("collections", {})
            name = v.id.partition(SEP)[0]
            named[name] = named.get(name, 0) + live


def compact_into(path: str, snap: Snapshot, floor: int | None, config: StoreConfig,
                 wal_size: int, commit_time: int, maintainer: CommitHook | None = None,
                 before_rename: Callable[[int], None] | None = None,
                 chunk_bytes: int | None = None) -> int:
    """Write the compacted file and rename it over ``path``; returns its locked fd.

    The kept versions stream into the new file a chunk at a time, each chunk one commit
    (indexed as automatic commits index), its run merged with the chunks' before it once
    they fill a run (``merge_filled``: the file's only dead space is its chunks' runs,
    where a writer's size-tiered merges would leave each row's run several times); then the
    hook carries over the old indexes it can renumber (the graph, a commit of its own)
    and a last commit brings the indexes up to date. Until the rename the new file is a
    private temporary file, so its intermediate commits are never seen: the last TOC
    names the first (empty) one as its predecessor and every TOC carries the compacted
    file's one public generation. Memory stays within ``config.compact_memory``,
    whatever the file's size: chunks of 1/32 of it, runs filled to 1/8 of it,
    and a graph built only when it fits (the old one is carried over when it can be).
    ``before_rename(fd)`` is called with the finished, locked file just before the
    rename.
    """
    old_floor = snap.toc.history_floor_us
    if old_floor is not None and (floor is None or floor < old_floor):
        floor = old_floor
    log = commit_log(snap)
    # the writes before the floor may go: remember the state at it (as_of of later ones
    # counts writes from there)
    floor_state = None if floor is None else state_at(snap, floor)
    memory = int(config.compact_memory)
    kept = Kept(snap, floor, chunk_bytes or CHUNK_BYTES or memory // 32)
    public = snap.toc.public_generation + len(snap.delta_times) + 1
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
        first = (fresh.header.toc_offset, fresh.header.toc_len, fresh.header.toc_crc)
        committer = Committer(fd, fresh, sync=False, use_mmap=config.mmap,
                              maintainer=maintainer)
        run_bytes = RUN_BYTES or memory // 8

        def commit(versions: list[Version]) -> None:
            committer.commit(versions, checkpoint_seq=0, dim=snap.dim,
                             counters=kept.counters, commit_time=commit_time,
                             full_index=AUTO, toc_changes={"public_generation": public})
            del versions[:]  # not held through the next chunk or the indexes' build
            release_free_heap()  # the chunk's freed memory leaves the process
            committer.snapshot.release_pages()  # what the merges read of the new file

        # runs filled to 1/8 of the budget (what a merge holds), each row's rewritten once
        committer.merges = partial(merge_filled, cap=run_bytes)
        for chunk in kept.chunks():
            commit(chunk)
        committer.merges = partial(merge_filled, cap=run_bytes, final=True)
        if unfilled(committer.snapshot.runs, run_bytes) > 1:
            commit([])  # the runs left merged, in a commit of their own: not beside the carry
        # the old graph, renumbered, is carried over rather than rebuilt when it can be:
        # then only a due extension of it is built, as a writer's commits build one
        carried = (maintainer is not None
                   and maintainer.compacting(snap, kept.old_gids, memory))
        if carried:
            commit([])
        counters = dict(kept.counters)
        version_base = max(kept.dropped, snap.toc.counters.get("version_base", 0))
        if version_base:
            counters["version_base"] = version_base
        committer.sync = True  # one fsync covers every chunk's bytes, then the header
        committer.commit([], checkpoint_seq=0, dim=snap.dim, counters=counters,
                         commit_time=commit_time, full_index=DUE if carried else ALL,
                         toc_changes={"public_generation": public, "prev": first})
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
