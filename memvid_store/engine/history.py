"""Walking the chain of commits: every TOC points at the one before it."""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import CorruptFileError, HistoryUnavailableError, InvalidInputError
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
    """(generation, commit time µs) of every commit this file remembers, oldest first."""
    log = [(toc.generation, toc.commit_time_us) for toc in iter_tocs(snap)]
    return sorted(set(log) | set(_compacted_log(snap)))


def commit_time_of(snap: Snapshot, generation: int) -> int:
    """Record time of commit ``generation``: as_of(generation) == as_of(that time)."""
    newest = snap.toc.generation
    if generation > newest or generation < 1:
        raise InvalidInputError(
            f"generation {generation} does not exist; this snapshot's generations "
                         f"run up to {newest}")
    for toc in iter_tocs(snap):
        if toc.generation == generation:
            return toc.commit_time_us
    for gen, when in _compacted_log(snap):
        if gen == generation:
            return when
    raise HistoryUnavailableError(f"generation {generation} is older than the kept history")
