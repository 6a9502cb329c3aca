"""Reports a handle returns on request: the change feed, file statistics, verification.

Kept apart from :mod:`.types` so that opening a file and searching it do not define them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .types import Frame, from_us

if TYPE_CHECKING:
    from .engine.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class Change:
    """One recorded write: a frame version stored (``put``) or a frame deleted.

    ``recorded_at`` is record time; ``frame`` is the stored version (``None`` for a delete);
    ``collection`` the collection of the frame.
    """

    kind: str
    id: str
    recorded_at: datetime
    frame: Frame | None = None
    collection: str = "default"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Result of ``Memory.verify()``: ``ok`` is False when any problem was found.
    ``notices`` are not damage but worth acting on (each says what to do)."""

    ok: bool
    problems: list[str]
    checked: dict[str, int]
    notices: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True, slots=True)
class Stats:
    """A summary of a memory file as seen by one handle or view.

    ``text_bytes`` is the UTF-8 size of the sealed frames' text, ``payload_bytes`` that of
    text + metadata + tags before compression, ``stored_bytes`` their compressed size.
    ``file_bytes`` includes the WAL region, allocated sparsely at create time;
    ``live_bytes`` are those the newest commit reads (the rest is dead space left by merges
    and index rebuilds, which ``compact()`` reclaims while keeping all history).
    ``vectors`` are the stored embeddings (every version's), ``graph_vectors`` those the
    HNSW graph holds; the others are scanned exactly (``build_index()`` adds them).
    """

    path: str
    frames: int
    versions: int
    deleted: int
    generation: int
    dim: int | None
    file_bytes: int
    text_bytes: int
    payload_bytes: int
    stored_bytes: int
    wal_bytes: int
    wal_size: int
    wal_records: int
    runs: int
    created_at: datetime
    history_floor: datetime | None
    readonly: bool
    mmap: bool
    uuid: str
    tiers: dict[str, str] = field(default_factory=dict)  # warmup state per index tier
    vectors: int = 0
    graph_vectors: int = 0
    live_bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        out = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out


def file_notices(snap: Snapshot, path: str, file_bytes: int) -> list[str]:
    """What ``verify()`` reports beside damage: a graph worth rebuilding, much dead space."""
    from .index.vector.graph_health import graph_notices
    from .space import space_notices

    return graph_notices(snap, path) + space_notices(snap, file_bytes)


def file_stats(snap: Snapshot, *, path: str, file_bytes: int, wal_bytes: int,
               readonly: bool, tiers: dict[str, str]) -> Stats:
    """``Stats`` of a handle reading ``snap`` (its WAL delta counted in)."""
    from .index.coverage import graph_count
    from .space import live_bytes

    counters = snap.counters()
    header, floor = snap.header, snap.toc.history_floor_us
    return Stats(
        path=path, frames=counters["live"], versions=counters["versions"],
        deleted=counters["tombstones"], generation=snap.public_generation, dim=snap.dim,
        file_bytes=file_bytes, text_bytes=counters["text_bytes"],
        payload_bytes=counters["payload_bytes"], stored_bytes=counters["stored_bytes"],
        wal_bytes=wal_bytes, wal_size=header.wal_size, wal_records=len(snap.delta),
        runs=len(snap.runs), created_at=from_us(header.created_at_us),
        history_floor=None if floor is None else from_us(floor), readonly=readonly,
        mmap=snap.view.mmapped, uuid=header.uuid.hex(), tiers=tiers,
        vectors=counters.get("vectors", 0), graph_vectors=graph_count(snap.toc.find("ann")),
        live_bytes=live_bytes(snap))
