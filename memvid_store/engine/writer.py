"""The write path of one file, top to bottom: record time, versions, WAL or commit.

One writer per file: the facade holds the file lock and serializes calls. A ``Writer``
turns puts, updates and deletes into versions and makes them durable:

1. **Clock** (``tick``). Every write gets a record time strictly after every earlier one in
   the file, monotonic across clock steps and restarts. A replay of history
   (``recorded_at``) keeps its own time, which must still move forward.
2. **Versions.** Each put, update or delete becomes an immutable version with the next
   gid, linked to the version of the same id it replaces (``prev_gid``). Invalid input
   raises before anything is written.
3. **WAL or direct** (``_append``). A batch of up to a quarter of the WAL is one WAL record,
   fsynced before the call returns, and joins the snapshot's in-memory delta. A larger
   batch is committed directly, as one run with the pending delta. When a record does
   not fit in the WAL, the delta is committed first and the write retried in the emptied
   WAL, restamped after that commit so that ``as_of(that generation)`` excludes it (a
   replayed write keeps its time: the delta is committed at its own last record time).
4. **Commit** (``_commit``). ``Committer.commit`` appends segments and TOC and writes the
   header (store.py); the commit hook adds the derived indexes' segments to the same
   commit. The commit checkpoints every WAL record written so far.

   Generations: every write (a WAL record, or a batch committed directly) is one public
   generation and every commit one more; the TOC records the commit's
   (``Toc.public_generation``), the delta adds one per WAL record
   (``Snapshot.public_generation``), and the header keeps its own commit counter, which
   only ever steps by one (it chooses the header slot).
5. **WAL restart.** Only once the header naming that checkpoint is durable does the WAL
   restart at its beginning. A crash before then replays the records again on top of the
   previous commit; records left behind carry sequence numbers at or below the new
   checkpoint and are never replayed on top of the new one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ..errors import FrameNotFoundError, InvalidInputError, InvalidTypeError
from ..types import from_us, to_us
from ..validate import (
    check_embedding,
    check_id,
    check_metadata,
    check_packed_size,
    check_payload_size,
    check_records,
    check_tags,
    check_text,
)
from .codec import pack_payload
from .fileio import MmapConfig
from .hooks import AUTO, CommitHook
from .keys import DEFAULT, key_of, split_key
from .records import KEEP, Version, apply_counters, encode_ops
from .snapshot import Snapshot
from .store import Committer, Opened, check_not_future, now_us, prepare_for_writing
from .wal import WalWriter

DIRECT_COMMIT_FRACTION = 4  # batches larger than wal_size / 4 are committed directly
RECORD_KEYS = frozenset({"text", "embedding", "metadata", "tags", "created_at", "id"})


class Stamp:
    """The record time of one write, and whether it replays history (``recorded_at``).

    A plain class: a dataclass would cost an open about 0.5 ms of import.
    """

    __slots__ = ("replayed", "time")

    def __init__(self, time: int, replayed: bool = False) -> None:
        self.time = time
        self.replayed = replayed


class Writer:
    """Makes writes to one open file durable; owns its snapshot while it writes.

    Args:
        fd: the file, open for writing, with the writer lock held.
        state: what ``read_state`` read at open (header, TOC, replayed WAL delta).
        snapshot: the snapshot made from ``state``.
        sync: fsync every write (False survives a process crash, not a power loss).
        use_mmap: how commits map the file they write.
        hook: adds the derived indexes to each commit (None: no indexes).
    """

    def __init__(self, fd: int, state: Opened, snapshot: Snapshot, *, sync: bool,
                 use_mmap: bool | MmapConfig, hook: CommitHook | None) -> None:
        prepare_for_writing(fd, state)
        header = state.header
        self.snapshot = snapshot
        self.hook = hook
        self._committer = Committer(fd, snapshot, sync=sync, use_mmap=use_mmap,
                                    maintainer=hook)
        self._wal = WalWriter(fd, header.wal_offset, header.wal_size, state.wal_end,
                              state.wal_last_seq + 1, state.wal_last_crc, sync=sync)
        self._last_time = max([state.toc.commit_time_us]
                              + [v.valid_from for v in state.delta[-1:]])
        self._replaying = False  # the newest write was replayed with recorded_at

    @property
    def wal_used(self) -> int:
        """Bytes of the WAL holding records not yet committed."""
        return self._wal.used

    # ------------------------------------------------------------------ 1. clock

    def tick(self, recorded_at: datetime | None = None) -> Stamp:
        """A record time strictly after every earlier one (monotonic across restarts).

        With ``recorded_at`` that time is used (a replay of history), if it is later than
        every earlier record time.

        Raises:
            InvalidInputError: ``recorded_at`` is not after the file's latest record time,
                or is in the future.
        """
        self._replaying = recorded_at is not None
        if recorded_at is None:
            self._last_time = max(now_us(), self._last_time + 1)
            return Stamp(self._last_time)
        t = check_not_future(to_us(recorded_at, "recorded_at"), "recorded_at")
        if t <= self._last_time:
            raise InvalidInputError(
                f"recorded_at {recorded_at.isoformat()} is not after the file's latest record "
                f"time {from_us(self._last_time).isoformat()}: replay history in time order")
        self._last_time = t
        return Stamp(t, replayed=True)

    # --------------------------------------------------------------- 2. versions

    def put_many(self, records: Iterable[Mapping[str, Any]],
                 recorded_at: datetime | None = None, collection: str = DEFAULT,
                 delete: Iterable[str] = ()) -> list[str]:
        """Store every record (``put``'s keys, ``text`` required) in ``collection`` or, if
        one is invalid, none; returns their ids. The current frames of the ``delete`` ids
        are deleted in the same write (ids without one are skipped).

        Raises:
            InvalidInputError: an id is both stored and deleted.
        """
        stamp = self.tick(recorded_at)
        tombstones = self._tombstones(delete, stamp, missing_ok=True, collection=collection)
        now = stamp.time
        versions: list[Version] = []
        named: list[Version] = []  # those with an id given, which may have versions
        # above any version a compaction dropped (records.apply_counters)
        first = self.snapshot.toc.counters.get("version_base", 0) + 1
        dim = self.snapshot.dim  # or the batch's first embedding's
        for i, rec in enumerate(check_records(records)):
            fid, created, text, metadata, tags, packed = check_record(i, rec)
            generated = fid is None
            fid = key_of(collection, os.urandom(16).hex() if generated else fid)
            embedding = check_embedding(rec.get("embedding"), dim)
            if embedding and dim is None:
                dim = len(embedding) // 4
            v = Version(
                gid=-1, id=fid, version=first, created_at=now if created is None else created,
                valid_from=now, tombstone=False, prev_gid=-1, prev_live=False,
                text=text, metadata=metadata, tags=tags,
                embedding=embedding,
                packed=packed,
            )
            if fid in tombstones:
                raise InvalidInputError(f"frame {split_key(fid)[1]!r} is both stored and "
                                        "deleted in one write")
            if not generated:
                named.append(v)
            versions.append(v)
        self._link_all(named)
        if versions or tombstones:
            self._append(list(tombstones.values()) + versions, stamp)
        return [split_key(v.id)[1] for v in versions]

    def update(self, id: str, *, text: Any = KEEP, metadata: Any = KEEP,
               embedding: Any = KEEP, tags: Any = KEEP, created_at: Any = KEEP,
               collection: str = DEFAULT) -> int:
        """Store a new version of a current frame, keeping fields given as ``KEEP``;
        returns its version number.

        Raises:
            FrameNotFoundError: no current frame has this id in ``collection``.
        """
        snap = self.snapshot
        key = key_of(collection, check_id(id))
        ref = snap.get(key, None)
        old = snap.load(ref)
        stamp = self.tick()
        v = Version(
            gid=-1, id=key, version=old.version + 1,
            created_at=(old.created_at if created_at is KEEP
                        else to_us(created_at, "created_at")),
            valid_from=stamp.time, tombstone=False, prev_gid=ref.gid, prev_live=True,
            text=old.text if text is KEEP else check_text(text),
            metadata=old.metadata if metadata is KEEP else check_metadata(metadata),
            tags=old.tags if tags is KEEP else check_tags(tags),
            embedding=(snap.embedding(ref) if embedding is KEEP
                       else check_embedding(embedding, snap.dim)),
        )
        check_payload_size(v.text, v.metadata, v.tags)
        self._append([v], stamp)
        return v.version

    def delete_many(self, ids: Iterable[str], *, missing_ok: bool = False,
                    recorded_at: datetime | None = None, collection: str = DEFAULT) -> int:
        """Tombstone the current version of each id, in one durable write; returns how many.

        Raises:
            FrameNotFoundError: an id has no current frame (nothing is deleted), unless
                ``missing_ok``, which skips such ids.
        """
        stamp = self.tick(recorded_at)
        tombstones = self._tombstones(ids, stamp, missing_ok=missing_ok, collection=collection)
        if tombstones:
            self._append(list(tombstones.values()), stamp)
        return len(tombstones)

    def _tombstones(self, ids: Iterable[str], stamp: Stamp, *, missing_ok: bool,
                    collection: str) -> dict[str, Version]:
        """A tombstone per distinct id (by key) for the current version of its frame."""
        snap = self.snapshot
        tombstones: dict[str, Version] = {}
        for fid in check_records(ids, "ids"):
            fid = key_of(collection, check_id(fid))
            if fid in tombstones:
                continue
            try:
                ref = snap.get(fid, None)
            except FrameNotFoundError:
                if missing_ok:
                    continue
                raise
            tombstones[fid] = Version(-1, fid, snap.load(ref).version + 1, stamp.time,
                                      stamp.time, True, ref.gid, True)
        return tombstones

    def _link_all(self, batch: list[Version]) -> None:
        """Make each version of ``batch`` (in write order) the next version of its id,
        within the batch or the file. A large batch's ids are looked up together
        (``Snapshot.may_hold``); only those the file may hold are looked up one by one."""
        snap = self.snapshot
        held = snap.may_hold([v.id for v in batch])
        pending: dict[str, Version] = {}
        for v, may_exist in zip(batch, held, strict=True):
            prev = pending.get(v.id)
            pending[v.id] = v
            if prev is not None:
                # linked to ``prev`` in _append, once gids are assigned
                v.version, v.prev_live, v.prev_gid = prev.version + 1, not prev.tombstone, -2
                continue
            ref = snap.latest(v.id, None) if may_exist else None
            if ref is not None:
                v.version = snap.version_number(ref) + 1
                v.prev_gid = ref.gid
                v.prev_live = not snap.is_tombstone(ref)

    # ---------------------------------------------------------- 3. WAL or direct

    def _append(self, versions: list[Version], stamp: Stamp) -> None:
        snap = self.snapshot
        gid = snap.toc.next_gid + len(snap.delta)
        last_by_id: dict[str, int] = {}
        for v in versions:
            v.gid = gid
            if v.prev_gid == -2:
                v.prev_gid = last_by_id[v.id]
            last_by_id[v.id] = gid
            gid += 1
        wal = self._wal
        limit = wal.size // DIRECT_COMMIT_FRACTION
        # a lower bound of the record size (the payload, metadata included, once packed)
        # avoids encoding batches that skip the WAL
        if sum(len(v.text if v.packed is None else v.packed) + len(v.embedding or b"")
               for v in versions) > limit:
            self._commit(versions, stamp)
            return
        payload = encode_ops(stamp.time, versions)
        if len(payload) > limit:
            self._commit(versions, stamp)
            return
        if not wal.fits(len(payload)):
            if stamp.replayed:
                # a replayed write keeps its time: commit the delta at its last record time
                self._commit([], stamp, commit_time=snap.delta[-1].valid_from)
                return self._append(versions, stamp)
            self.seal(full=AUTO)
            # restamp after the commit: as_of(that generation) must not include this write;
            # event times that defaulted to the record time follow it
            fresh = self.tick()
            for v in versions:
                if v.created_at == stamp.time:
                    v.created_at = fresh.time
                v.valid_from = fresh.time
            return self._append(versions, fresh)
        wal.append(payload)
        snap.add_delta(versions)

    # ------------------------------------------------ 4. commit, 5. WAL restart

    def seal(self, *, full: int) -> int:
        """Commit the WAL delta; with ``full`` (``hooks.SEAL``, ``DUE`` or ``ALL``), also
        bring the indexes up to date that far.

        Returns the new public generation (the current one when there was nothing to do).
        """
        snap = self.snapshot
        behind = self.hook is not None and self.hook.behind(snap, full)
        if snap.delta and self._replaying:
            # after replayed writes a seal records nothing new: it commits at their last
            # record time (as a WAL-full commit of a replay does), so the replay can go on
            self._commit([], Stamp(self._last_time, replayed=True), full=full,
                         commit_time=snap.delta[-1].valid_from)
        elif snap.delta or behind:
            self._commit([], self.tick(), full=full)
            # an index prepared in the background goes into a commit as it is: when it
            # lacks versions this level covers, one more commit brings it the rest
            if self.hook is not None and self.hook.behind(self.snapshot, full):
                self._commit([], self.tick(), full=full)
        return self.snapshot.public_generation

    def commit_prepared(self) -> bool:
        """Commit an index the hook prepared in the background, with the WAL delta (a
        replay in progress keeps its record times: it waits for the next commit)."""
        if self.hook is None or not self.hook.ready() or self._replaying:
            return False
        self._commit([], self.tick(), full=AUTO)
        return True

    def commit_time(self) -> int:
        """A fresh record time for a commit made outside this writer (compaction)."""
        return self.tick().time

    def _commit(self, extra: list[Version], stamp: Stamp, *, full: int = AUTO,
                commit_time: int | None = None) -> None:
        """Commit the delta plus ``extra`` (a batch too large for the WAL), checkpointing
        every WAL record written so far; then restart the WAL."""
        snap = self.snapshot
        versions = snap.delta + extra
        counters = apply_counters(snap.toc.counters, versions)
        counters["text_bytes"] += sum(len(v.text.encode()) for v in versions)
        if commit_time is None:
            # a replayed batch commits at its own record time, others now
            commit_time = (extra[-1].valid_from if stamp.replayed and extra
                           else self.tick().time)
        checkpoint = self._wal.next_seq - 1
        self._committer.snapshot = snap
        self.snapshot = self._committer.commit(
            versions, checkpoint_seq=checkpoint, dim=snap.dim or dim_of(extra),
            counters=counters, commit_time=commit_time, full_index=full,
            write_count=len(snap.delta_times) + bool(extra))
        # the header naming the checkpoint is durable: the WAL can start over
        self._wal.restart(checkpoint)
        if self.hook is not None:
            self.hook.committed(self.snapshot)


def check_record(i: int, rec: Any) -> tuple[str | None, int | None, str, dict | None,
                                              list[str] | None, bytes]:
    """Validate record ``i`` of a put (``put``'s keys, ``text`` required): its (id or None,
    created_at µs or None, text, metadata, tags, payload: ``codec.pack_payload``, within
    the size limit). The embedding is checked against the file's dimension by the
    writer.

    Raises:
        InvalidTypeError: not a dict, an unknown key, no ``text``.
        InvalidInputError: a field is invalid, or the payload is too large.
    """
    if not isinstance(rec, Mapping):
        raise InvalidTypeError(f"record {i} must be a dict, not {type(rec).__name__}")
    unknown = set(rec) - RECORD_KEYS
    if unknown:
        raise InvalidTypeError(f"record {i} has unknown key(s) {sorted(unknown)}; "
                               f"valid keys: {sorted(RECORD_KEYS)}")
    if "text" not in rec:
        raise InvalidTypeError(f"record {i} has no 'text'")
    fid = rec.get("id")
    created = rec.get("created_at")
    text, metadata = check_text(rec["text"]), check_metadata(rec.get("metadata"))
    tags = check_tags(rec.get("tags"))
    packed = pack_payload(text, metadata, tags)
    check_packed_size(len(packed))
    return (None if fid is None else check_id(fid),
            None if created is None else to_us(created, "created_at"), text, metadata, tags,
            packed)


def dim_of(versions: Sequence[Version]) -> int | None:
    """Dimension of the first embedding in ``versions`` (None without one)."""
    for v in versions:
        if v.embedding:
            return len(v.embedding) // 4
    return None
