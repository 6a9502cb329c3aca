"""Generations: which state of the file a public generation names, and its record time.

A public generation (``Memory.generation``) names one state of the file. Every write (one
WAL record, or one batch committed directly) makes one, and so does every commit. The
TOC of a commit records the commit's public generation and commit time; the WAL delta
adds one per record (``Snapshot.public_generation``). The states between two commits are
the later commit's writes, in write order, and each write has a record time of its own
(strictly increasing across the file's life), so state ``commit_gen + i`` is the state as
of the i-th distinct record time after that commit's time. Record times are
non-decreasing in gid order (gids are handed out in write order; merges and compaction
keep that order), so that time is found by binary search in the runs' ``vfrom`` columns.

Files written before public generations existed have a TOC without one: their commit
counter is their public generation, with no states between two commits.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from itertools import islice, takewhile

from ..errors import CorruptFileError, HistoryUnavailableError, InvalidInputError
from ..types import from_us
from .format import Toc, crc32, decode_commit_log
from .snapshot import Snapshot


def iter_tocs(snap: Snapshot) -> Iterator[Toc]:
    """The snapshot's TOC, then each earlier one, newest first."""
    toc = snap.toc
    yield toc
    while toc.prev is not None:
        off, length, crc = toc.prev
        raw = bytes(snap.view.read(off, length, "toc"))
        if crc32(raw) != crc:
            raise CorruptFileError(f"TOC at offset {off} checksum mismatch", "toc", off)
        toc = Toc.decode(raw, off)
        yield toc


def _compacted_log(snap: Snapshot) -> list[tuple[int, int]]:
    """Commits from before the last compaction (the ``commits`` segment), if any."""
    ref = snap.toc.find("commits")
    if ref is None:
        return []
    raw = bytes(snap.view.read(ref.offset, ref.length, "segment:commits"))
    if crc32(raw) != ref.crc:
        raise CorruptFileError(f"commit log segment at offset {ref.offset} checksum mismatch",
                               "segment:commits", ref.offset)
    return decode_commit_log(raw)


def commit_log(snap: Snapshot) -> list[tuple[int, int]]:
    """(public generation, commit time µs) of every commit this file remembers, oldest
    first."""
    log = [(toc.public_generation, toc.commit_time_us) for toc in iter_tocs(snap)]
    return sorted(set(log) | set(_compacted_log(snap)))


def _marks(snap: Snapshot) -> list[tuple[int, int]]:
    """States whose record time the file stores: the commits, and the newest state at or
    before the history floor (compaction may have dropped the writes before it)."""
    marks = commit_log(snap)
    floor = snap.toc.floor_state
    return marks if floor is None or floor in marks else sorted([*marks, floor])


def record_times_after(snap: Snapshot, after: int) -> Iterator[int]:
    """The distinct record times later than ``after``, oldest first: one per write."""
    for run in snap.runs:
        vfrom = run.part("vfrom")
        pos = bisect_right(vfrom, after)
        while pos < run.n:
            after = vfrom[pos]
            yield after
            pos = bisect_right(vfrom, after, pos)
    for t in snap.delta_times:
        if t > after:
            yield t


def state_time(snap: Snapshot, generation: int) -> int:
    """Record time of public generation ``generation``: ``as_of(generation)`` is
    ``as_of(that time)``, the state right after that write or commit.

    Raises:
        InvalidInputError: the snapshot has no such generation (yet).
        HistoryUnavailableError: compaction dropped the writes that place it.
    """
    newest = snap.public_generation
    if not 1 <= generation <= newest:
        raise InvalidInputError(
            f"generation {generation} does not exist: generations here run from 1 to "
            f"{newest} (Memory.generation; a reader sees newer ones after refresh())")
    committed = snap.toc.public_generation
    if generation > committed:
        return snap.delta_times[generation - committed - 1]
    if generation == committed:
        return snap.toc.commit_time_us
    marks = _marks(snap)
    i = bisect_left(marks, (generation,))
    if marks[i][0] == generation:
        return marks[i][1]
    floor = snap.toc.floor_state
    if i == 0 or (floor is not None and generation < floor[0]):
        raise _unavailable(snap, generation)
    # one of the writes committed by marks[i]: count them from the state before it
    start, after = marks[i - 1]
    found = next(islice(record_times_after(snap, after), generation - start - 1, None), None)
    if found is None or found > marks[i][1]:
        raise _unavailable(snap, generation)
    return found


def state_at(snap: Snapshot, t: int) -> tuple[int, int] | None:
    """(public generation, record time) of the newest state at or before record time
    ``t``; None before the file's first state."""
    marks = _marks(snap)
    i = bisect_right([when for _, when in marks], t)
    if i == 0:
        return None
    gen, when = marks[i - 1]
    # the writes after that state, up to the next stored one (old files number none)
    room = (marks[i][0] if i < len(marks) else snap.public_generation + 1) - gen - 1
    later = list(islice(takewhile(lambda x: x <= t, record_times_after(snap, when)), room))
    return (gen + len(later), later[-1]) if later else (gen, when)


def _unavailable(snap: Snapshot, generation: int) -> HistoryUnavailableError:
    floor = snap.toc.history_floor_us
    since = "" if floor is None else f" (history is kept from {from_us(floor).isoformat()})"
    return HistoryUnavailableError(
        f"generation {generation} is older than the history kept by compaction{since}: "
        "read as of a later generation or time")
