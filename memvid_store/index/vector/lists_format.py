"""The ``lists`` segment: the index's vectors grouped by their nearest centroid.

A query reads the centroids, picks the lists of the few nearest, and scores only their
rows (:mod:`.lists_search`): from object storage it downloads those lists (a few MiB at
1M frames). The vector index of cosine and ip memories, recorded by an ``ann`` segment
of backend ``lists`` (or beside an HNSW graph built before), over the same vectors
(:mod:`.lists_build`).

Layout (little-endian), after a 64-byte header (magic ``MV2LST``, version u16, metric
code u8, dim u32, nlist u32, count u64, covered u64, CRC-32 of the directory and the
centroids u32):

* the directory: per list, its first row u64, its rows u32 and the CRC-32 of its rows u32;
* the centroids: ``nlist x dim`` float32, unit length;
* the lists, one after the other, each ``rows`` rows as columns: their gids (i64), their
  scales (f32), their codes (``rows x dim`` int8). A row's approximate score is
  ``scale * codes . query`` (for the cosine metric the codes are of the unit vector). A
  list starting at row ``s`` starts ``s * (12 + dim)`` bytes after the first.

Numpy-free: the header and the directory are read before numpy is imported.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...errors import CorruptFileError

if TYPE_CHECKING:
    from ...config import IndexConfig
    from ...engine.format import SegmentRef
    from ...engine.snapshot import Snapshot

KIND = "lists"
METRICS = {"cosine": 0, "ip": 1}  # metrics whose lists are built (an l2 graph has none)
MIN_ROWS = 1_000  # fewer vectors: no lists (the graph is fetched whole, a few MB at most)
_MAGIC = b"MV2LST\x00\x00"
_VERSION = 1
# magic, version, metric, dim, nlist, count, covered, head crc
HEADER = struct.Struct("<8sHBxIIQQI24x")
ENTRY = struct.Struct("<QII")  # first row, rows, crc of the rows
assert HEADER.size == 64


DEPTH = 20  # a query's first-round candidates for k = 10 (graph_depth(10, "lists")): it
# reads the calibrated ``nprobe`` lists at this depth, more for a deeper round (``probes``).
# Twice k: the int8 products rank every row of the lists read, so the true top 10 among
# them lie in the top 20 (1M x 128, 20 lists read: recall 0.974 at depth 20 as at 40,
# docs/architecture.md)


def probes(nprobe: int, depth: int, nlist: int) -> int:
    """Lists a round asking for ``depth`` candidates reads: the calibrated ``nprobe`` at
    :data:`DEPTH`, growing with the square root of the depth ratio as a graph's search
    width does (``hnsw_format.round_width``): twice the lists for four times the
    candidates (a widened round; a hybrid query's 100: 2.2 times)."""
    return min(nlist, math.ceil(nprobe * math.sqrt(max(depth, DEPTH) / DEPTH)))


def far_from_lists(best: float, floor: float | None) -> bool:
    """Whether a query whose nearest centroid scores ``best`` (unit query) lies farther
    from the lists than the rows they were calibrated on (``floor``: TOC meta
    ``centroid_floor``): its neighbours are weak matches spread over many lists, which
    the calibrated number of lists does not hold, so it reads more (:func:`widenings`)."""
    return floor is not None and best < floor


def widenings(probe: int, nlist: int) -> list[tuple[int, int]]:
    """The batches a query far from the lists reads after its first ``probe`` lists, as
    ``[start, end)`` among the others in order of their centroids' scores: as many lists
    again each time (``probe``, ``2 * probe``, ...) until all are read. It stops after a
    batch that changed none of its candidates."""
    out, start, size = [], 0, max(1, probe)
    while start < nlist - probe:
        out.append((start, min(nlist - probe, start + size)))
        start, size = start + size, 2 * size
    return out


def head_bytes(meta: dict[str, Any], dim: int | None) -> int:
    """The bytes before the first row, from the TOC's list count (the header alone when
    that is missing)."""
    nlist = meta.get("nlist")
    if not dim or not isinstance(nlist, int) or isinstance(nlist, bool) or nlist < 1:
        return HEADER.size
    return HEADER.size + nlist * (ENTRY.size + 4 * dim)


def row_bytes(dim: int) -> int:
    """Bytes a row takes: its gid, scale and ``dim`` int8 codes."""
    return 12 + dim


@dataclass(frozen=True, slots=True)
class ListsHeader:
    metric: str
    dim: int
    nlist: int
    count: int
    covered: int
    head_crc: int

    @property
    def centroids_at(self) -> int:
        """Offset of the centroids in the segment."""
        return HEADER.size + self.nlist * ENTRY.size

    @property
    def rows_at(self) -> int:
        """Offset of the first row in the segment."""
        return self.centroids_at + self.nlist * self.dim * 4


def pack_header(metric: str, dim: int, nlist: int, count: int, covered: int,
                head_crc: int) -> bytes:
    return HEADER.pack(_MAGIC, _VERSION, METRICS[metric], dim, nlist, count, covered,
                       head_crc)


def unpack_header(data: Any, length: int) -> ListsHeader:
    """The header of a segment of ``length`` bytes; CorruptFileError if malformed or
    inconsistent with that length."""
    view = memoryview(data)
    if view.nbytes < HEADER.size:
        raise corrupt("the cluster lists are truncated")
    magic, version, metric, dim, nlist, count, covered, head_crc = HEADER.unpack_from(view)
    names = {code: name for name, code in METRICS.items()}
    if magic != _MAGIC or version != _VERSION or metric not in names:
        raise corrupt("not cluster lists of a known version")
    header = ListsHeader(names[metric], dim, nlist, count, covered, head_crc)
    if not dim or not nlist or header.rows_at + count * row_bytes(dim) != length:
        raise corrupt("the cluster lists' header does not match their length")
    return header


def corrupt(message: str) -> CorruptFileError:
    return CorruptFileError(message, "segment:lists")


@dataclass(frozen=True, slots=True)
class ListsHead:
    """What a search needs before the rows: the header, the directory ((first row, rows,
    CRC) per list, checked against the row count), the centroids (``nlist x dim``
    float32 memoryview), the calibrated number of lists a query reads, and the score
    below which a query's nearest centroid marks it far from the lists (None: lists
    built before it was recorded)."""

    ref: SegmentRef
    header: ListsHeader
    directory: list[tuple[int, int, int]]
    centroids: memoryview
    nprobe: int
    floor: float | None = None

    def span(self, j: int) -> tuple[int, int]:
        """(offset in the file, size) of list ``j``."""
        start, rows, _ = self.directory[j]
        width = row_bytes(self.header.dim)
        return self.ref.offset + self.header.rows_at + start * width, rows * width

    def read_list(self, view: Any, j: int) -> memoryview:
        """The bytes of list ``j`` read from ``view``, its CRC checked (CorruptFileError)."""
        offset, size = self.span(j)
        data = memoryview(view.read(offset, size, "segment:lists")).cast("B")
        if zlib.crc32(data) != self.directory[j][2]:
            raise CorruptFileError(f"cluster list {j} fails its checksum", "segment:lists",
                                   offset)
        return data


def read_head(view: Any, ref: SegmentRef, metric: str, dim: int | None,
              runs: Sequence[Any] = ()) -> ListsHead:
    """The head of the lists segment ``ref`` (one read, sized from the TOC's list count),
    checked: CorruptFileError when it is malformed, fails its checksum or does not
    describe ``metric`` and ``dim``. From remote bytes, the vector references of
    ``runs`` a search reads (``vrow``) come in the head's round."""
    if runs and view.batches:
        from ...engine.runs import part_spans

        view.ahead(part_spans(runs, "vrow"), "segment:run")
    head = view.read(ref.offset, min(ref.length, head_bytes(ref.meta, dim)), "segment:lists")
    header = unpack_header(head, ref.length)
    if header.metric != metric or (dim is not None and header.dim != dim):
        raise corrupt("the cluster lists do not match the file's vectors")
    if len(head) < header.rows_at:  # the TOC's list count was not the header's
        head = view.read(ref.offset, header.rows_at, "segment:lists")
    rest = memoryview(head)[HEADER.size : header.rows_at].cast("B")
    if zlib.crc32(rest) != header.head_crc:
        raise corrupt("the cluster lists' directory fails its checksum")
    directory = list(struct.iter_unpack(ENTRY.format, rest[: header.nlist * ENTRY.size]))
    if sum(rows for _, rows, _ in directory) != header.count or any(
            start + rows > header.count for start, rows, _ in directory):
        raise corrupt("the cluster lists' directory does not match their rows")
    centroids = rest[header.nlist * ENTRY.size :].cast("f", (header.nlist, header.dim))
    nprobe = ref.meta.get("nprobe")
    nprobe = nprobe if isinstance(nprobe, int) and not isinstance(nprobe, bool) else 8
    return ListsHead(ref, header, directory, centroids, max(1, min(header.nlist, nprobe)),
                     score_floor(ref.meta))


def score_floor(meta: dict[str, Any]) -> float | None:
    """The TOC's ``centroid_floor`` (a cosine, in [-1, 1]), or None when missing or not one."""
    floor = meta.get("centroid_floor")
    if isinstance(floor, bool) or not isinstance(floor, int | float):
        return None
    return float(floor) if -1.0 <= floor <= 1.0 else None


def fetch_lists(snap: Snapshot, spans: list[tuple[int, int]]) -> None:
    """Remote bytes: download these lists in one round, with the columns that place their
    candidates' vectors (``vrow``, ``vcrc``, whole, as with a graph: the rescoring reads
    them next, and by the page they would take a round of their own)."""
    if spans and snap.view.batches:
        from ...engine.runs import part_spans

        snap.view.fetch(spans + part_spans(snap.runs, "vrow"), "segment:lists", gap=0)


def lists_segment(snap: Snapshot, config: IndexConfig) -> SegmentRef | None:
    """The snapshot's ``lists`` segment when it belongs to the snapshot's graph (built
    with it: the same ``covered``) and ``config`` uses lists, else None."""
    ref = snap.toc.find(KIND)
    graph = snap.toc.find("ann")
    if ref is None or graph is None or config.ann_backend == "none" or not config.ann_lists:
        return None
    return ref if ref.meta.get("covered") == graph.meta.get("covered") else None


__all__ = ["DEPTH", "KIND", "MIN_ROWS", "ListsHead", "ListsHeader", "far_from_lists",
           "fetch_lists", "head_bytes", "lists_segment", "pack_header", "probes", "read_head",
           "row_bytes", "score_floor", "unpack_header", "widenings"]
