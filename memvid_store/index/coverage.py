"""What an index segment covers: the versions below its ``covered`` gid.

The BM25 index and the HNSW graph are keyed by gid and cover the versions below a
``covered`` gid (in their TOC entry's meta). Versions above it, the *tail*, are searched
exactly by readers (an in-memory BM25, a float32 scan) and indexed by later commits.
"""

from __future__ import annotations

from ..engine.format import SegmentRef
from ..engine.records import Version
from ..engine.snapshot import Snapshot


def covered_gid(ref: SegmentRef | None) -> int:
    """First gid an index segment does not cover (0 without one)."""
    return int(ref.meta.get("covered", 0)) if ref is not None else 0


def graph_count(ref: SegmentRef | None) -> int:
    """Vectors a graph segment holds (0 without one)."""
    return int(ref.meta["count"]) if ref is not None else 0


def tail_versions(snap: Snapshot, covered: int, *, committed: bool = False) -> list[Version]:
    """Versions with gid >= ``covered`` (only committed ones, or with the WAL delta)."""
    end = snap.toc.next_gid + (0 if committed else len(snap.delta))
    return [snap.load(snap.locate(gid)) for gid in range(covered, end)]
