"""Walking the chain of commits: every TOC points at the one before it."""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import HistoryUnavailableError
from .format import Toc, crc32
from .snapshot import Snapshot
from ..errors import CorruptFileError


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


def commit_log(snap: Snapshot) -> list[tuple[int, int]]:
    """(generation, commit time µs) of every commit this file remembers, oldest first."""
    log: list[tuple[int, int]] = []
    first = snap.toc
    for toc in iter_tocs(snap):
        log.append((toc.generation, toc.commit_time_us))
        first = toc
    log.extend(tuple(x) for x in first.commit_log)
    return sorted(set(log))


def commit_time_of(snap: Snapshot, generation: int) -> int:
    """Record time of commit ``generation``: as_of(generation) == as_of(that time)."""
    newest = snap.toc.generation
    if generation > newest or generation < 1:
        raise ValueError(f"generation {generation} does not exist; this snapshot's generations "
                         f"run up to {newest}")
    first = snap.toc
    for toc in iter_tocs(snap):
        if toc.generation == generation:
            return toc.commit_time_us
        first = toc
    for gen, when in first.commit_log:
        if gen == generation:
            return when
    raise HistoryUnavailableError(f"generation {generation} is older than the kept history")
