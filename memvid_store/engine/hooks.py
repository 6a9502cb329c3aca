"""What a commit asks of the layers above the engine.

The engine owns the write path; derived indexes (BM25, HNSW) ride along in the same
commit through one hook the engine defines and the index layer implements
(``memvid_store.index.maintain.IndexMaintainer``). The engine never imports the index
layer: the facade hands a hook to the writer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .format import SegmentRef
    from .records import Version
    from .snapshot import Snapshot



@dataclass(frozen=True, slots=True)
class Pieces:
    """Bytes a commit writes a piece at a time, never holding them whole (a large
    segment streamed from elsewhere): ``pieces()`` yields them in order, ``length`` bytes
    in all. It is called once per write, so it must yield the same bytes each time."""

    length: int
    pieces: Callable[[], Iterable[bytes | memoryview]]

    def __len__(self) -> int:
        return self.length

    def crc32(self) -> int:
        """CRC-32 of the bytes, in one pass over them."""
        from .format import crc32

        crc = 0
        for piece in self.pieces():
            crc = crc32(piece, crc)
        return crc


Append = Callable[["bytes | Pieces"], tuple[int, int]]
"""Queues bytes to be written after the committed end; returns their (offset, length)."""

# What a commit asks of the derived indexes (``full`` of ``CommitHook.on_commit``):
AUTO = 0  # an automatic commit: an index catches up once its uncovered tail is long
SEAL = 1  # seal() / close(): every index up to date, the graph within a bounded cost
DUE = 2  # build_index(complete=False): also a due graph extension, whatever it costs
ALL = 3  # build_index() / compact(): every index up to date, whatever it costs


class CommitHook(Protocol):
    """Adds derived-index segments to a commit, and says when they lag behind the data."""

    def prepare(self, snap: Snapshot, versions: list[Version], *, next_gid: int,
                full: int) -> None:
        """Called as a commit begins, with ``on_commit``'s arguments: work on the
        indexes may start here, beside the engine's own (``on_commit`` finishes it). A
        commit that fails before ``on_commit`` is followed by another ``prepare``."""
        ...

    def on_commit(self, snap: Snapshot, versions: list[Version],
                  segments: list[SegmentRef], write: Append, *, next_gid: int,
                  vectors_total: int, full: int) -> list[SegmentRef]:
        """Return ``segments`` with the index entries this commit needs.

        ``snap`` is the state before the commit, ``versions`` the versions it adds
        (gids from ``snap.toc.next_gid``), ``write`` appends index bytes to the commit,
        ``full`` is ``AUTO``, ``SEAL``, ``DUE`` or ``ALL``: how far each index is brought
        up to date. An index prepared in the background (``ready``) is added to any commit.
        """
        ...

    def behind(self, snap: Snapshot, full: int) -> bool:
        """True when a commit at level ``full`` would add to an index."""
        ...

    def ready(self) -> bool:
        """True when an index prepared in the background waits for a commit."""
        ...

    def committed(self, snap: Snapshot) -> None:
        """Called after every commit with the new snapshot (starts background work)."""
        ...

    def close(self) -> None:
        """Stop background work: the writer is closing or moving to another file."""
        ...

    def compacting(self, old: Snapshot, kept: Sequence[int], memory_limit: int) -> bool:
        """Compaction is writing a new file through this hook. Take the old file's indexes
        that can be renumbered rather than rebuilt (``kept``: the old gids of the versions
        kept, ascending; a version's new gid is its position there) into the next commit,
        and build no index whose memory would exceed ``memory_limit`` bytes. True when an
        index was taken."""
        ...


def appender(writes: list[tuple[int, bytes | Pieces]], start: int
             ) -> tuple[Append, Callable[[], int]]:
    """An ``Append`` that queues aligned writes from ``start``; and the next free offset."""
    from .format import align

    state = {"pos": start}

    def write(data: bytes | Pieces) -> tuple[int, int]:
        off = state["pos"]
        writes.append((off, data))
        state["pos"] = align(off + len(data))
        return off, len(data)

    return write, lambda: state["pos"]
