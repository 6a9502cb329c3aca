"""The next version of a file's vector index: the one it has, plus the vectors it lacks.

``prepare_graph`` builds it from a snapshot (inside a commit, or in the background
builder's process, :mod:`..graph_worker`) into a ``PreparedGraph``: the serialized graph,
the graph segment it extends (``base``), its TOC meta and its cluster lists. For cosine
and ip vectors the index is the cluster lists alone (``lists_only``): the ``ann``
segment is then a header of backend ``lists``, and no HNSW graph is built.
``graph_refs`` writes one into a commit. A prepared graph is only committed on top of the
graph it extends: a commit that changed the graph in between makes it stale.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zlib import crc32

from ...config import IndexConfig
from ...cpus import usable_cpus
from ...engine.format import SegmentRef
from ...engine.records import Version
from ...engine.snapshot import Snapshot
from ..coverage import covered_gid, graph_count
from .graph_build import GraphBlob, build_graph
from .hnsw import AnnParams, get_backend
from .hnsw_format import DEFAULT_EF_SEARCH, LISTS_ONLY, holds_graph, lists_only_header
from .lists_format import KIND, METRICS, MIN_ROWS
from .stored import embedding_rows, graph_blocks

if TYPE_CHECKING:
    from ...engine.hooks import Append
    from .calibrate import Calibration
    from .lists_build import KeptLists, ListsBlob


@dataclass(slots=True)
class PreparedGraph:
    """A graph ready to be written into a commit.

    ``base``: identity of the graph segment it extends ((offset, crc), None: no graph);
    ``blob``: its bytes; ``meta``: its TOC meta (``count``, ``covered``, calibration);
    ``lists``: the cluster lists of the same vectors (:mod:`.lists_build`), if any.
    """

    base: tuple[int, int] | None
    blob: GraphBlob
    meta: dict[str, Any]
    lists: ListsBlob | None = None


NODE_BYTES = 130  # a node's key, level, upper links and usearch's overhead, beside its row
# and level-0 links: 1M x 128 int8 at M 16 held about 390 MB while built (docs/scale.md)
_SCALAR_BYTES = {"i8": 1, "f16": 2, "f32": 4}


def graph_memory(count: int, dim: int, m: int, dtype: str) -> int:
    """Estimated bytes of a graph of ``count`` vectors while it is built in memory."""
    return count * (dim * _SCALAR_BYTES.get(dtype, 4) + 8 * m + NODE_BYTES)


def graph_identity(ref: SegmentRef | None) -> tuple[int, int] | None:
    """What a prepared graph records of the graph segment it extends."""
    return None if ref is None else (ref.offset, ref.crc)


def prepare_graph(snap: Snapshot, config: IndexConfig, scratch_dir: str, *, upto: int,
                  fresh: list[Version] | None = None, threads: int = 0
                  ) -> PreparedGraph | None:
    """The snapshot's graph extended with every vector of gid in ``[covered, upto)`` of
    its vector blocks, plus the vectors of ``fresh`` (versions a commit adds beyond the
    snapshot's WAL delta); None when there is nothing to add.

    ``threads``: build threads (0: every core).
    """
    old = snap.toc.find("ann")
    covered = covered_gid(old)
    count = graph_count(old)
    dim = snap.dim or _dim(fresh or [])
    new: list[tuple[Any, Any]] = []  # the rows to add: views of whole blocks
    held = []  # every row the graph will hold, as (matrix, gids) views
    mapped = MappedPages(snap.view)
    for matrix, gids, span in graph_blocks(snap):
        keep = gids < upto
        if not keep.all():
            block_rows = (matrix[keep], gids[keep])
        else:
            block_rows = (matrix, gids)
            mapped.add(matrix, span)
        if not len(block_rows[1]):
            continue
        held.append(block_rows)
        add = block_rows[1] >= covered
        if add.all():
            new.append(block_rows)
        elif add.any():
            new.append((block_rows[0][add], block_rows[1][add]))
    if fresh:
        rows = embedding_rows(fresh, dim)
        new.append(rows)
        held.append(rows)
    if not new:
        return None
    rows = count + sum(len(g) for _, g in new)
    kept = _kept_lists(snap, config) if old is not None else None
    if lists_only(config, old, rows):
        lists = _lists(config, held, dim, upto, scratch_dir, mapped.release, kept)
        if lists is not None:
            return lists_alone(lists, config.distance, dim, graph_identity(old))
    if old is not None and not holds_graph(old):  # lists alone before: a graph of every row
        old, count, new, kept = None, 0, held, None
    dtype = old.meta.get("dtype", "f32") if old is not None else config.graph_dtype
    params = AnnParams(M=config.ann_m, ef_construction=config.ann_ef_construction,
                       ef_search=config.ann_ef_search or DEFAULT_EF_SEARCH, dtype=dtype,
                       build_threads=threads or usable_cpus())
    previous = None
    if old is not None:
        previous = snap.view.read(old.offset, old.length, "segment:ann")
        mapped.loaded((old.offset, old.length))
    blob, calibration = build_graph(
        get_backend(config.ann_backend), previous, new, metric=config.distance, dim=dim,
        params=params, scratch_dir=scratch_dir, done=mapped.release,
        loaded=mapped.release_loaded,
        measure=lambda index, queries, labels: _calibrate(config, index, held, queries,
                                                          labels, dtype, mapped.release))
    meta = {"backend": config.ann_backend, "count": rows, "covered": upto, "M": config.ann_m,
            "ef_construction": config.ann_ef_construction, "dtype": dtype,
            **calibrated_meta(calibration, old)}
    lists = _lists(config, held, dim, upto, scratch_dir, mapped.release, kept)
    return PreparedGraph(graph_identity(snap.toc.find("ann")), blob, meta, lists)


def lists_alone(lists: ListsBlob, metric: str, dim: int, base: tuple[int, int] | None
                ) -> PreparedGraph:
    """An index that is ``lists`` alone: an ``ann`` segment of backend ``lists`` (its
    header only) recording their count and coverage."""
    count, covered = lists.meta["count"], lists.meta["covered"]
    blob = lists_only_header(metric, dim, count)
    return PreparedGraph(base, GraphBlob([blob], len(blob), crc32(blob)),
                         {"backend": LISTS_ONLY, "count": count, "covered": covered}, lists)


def lists_only(config: IndexConfig, old: SegmentRef | None, rows: int) -> bool:
    """Whether an index of ``rows`` vectors is cluster lists alone, without an HNSW graph:
    lists wanted, a metric they serve, at least ``MIN_ROWS`` vectors, and not extending a
    graph (a file whose graph was built before keeps extending it, lists beside). The
    lists answer faster than the graph at a higher recall and build ten times faster
    (docs/architecture.md, *Cluster lists without the graph*)."""
    return (config.ann_lists and config.distance in METRICS and rows >= MIN_ROWS
            and (old is None or not holds_graph(old)))


def lists_of_graph(snap: Snapshot, config: IndexConfig, scratch_dir: str
                   ) -> ListsBlob | None:
    """Cluster lists of the vectors the snapshot's graph holds (gids below its
    ``covered``), for a graph built without them."""
    graph = snap.toc.find("ann")
    if graph is None:
        return None
    covered = covered_gid(graph)
    held = []
    mapped = MappedPages(snap.view)
    for matrix, gids, span in graph_blocks(snap):
        keep = gids < covered
        if keep.all():
            held.append((matrix, gids))
            mapped.add(matrix, span)
        elif keep.any():
            held.append((matrix[keep], gids[keep]))
    if not held:
        return None
    return _lists(config, held, snap.dim or 0, covered, scratch_dir, mapped.release)


def _kept_lists(snap: Snapshot, config: IndexConfig) -> KeptLists | None:
    """The cluster lists of the graph being extended, for the next ones to keep (None:
    none, or their head is damaged)."""
    from ...errors import CorruptFileError
    from .lists_build import KeptLists, list_arrays
    from .lists_format import lists_segment, read_head

    ref = lists_segment(snap, config)
    if ref is None:
        return None
    try:
        head = read_head(snap.view, ref, config.distance, snap.dim)
    except CorruptFileError:
        return None

    def columns(j: int) -> Any:
        return list_arrays(head.read_list(snap.view, j), head.directory[j][1],
                           head.header.dim)

    return KeptLists(head, columns, lambda j: snap.view.release(*head.span(j)))


def _lists(config: IndexConfig, held: list[tuple[Any, Any]], dim: int, covered: int,
           scratch_dir: str, done: Any, kept: KeptLists | None = None) -> ListsBlob | None:
    """The cluster lists of the graph's vectors, keeping those of the graph it extends
    when they can be (None: not wanted, or, with a warning, their build failed: a graph
    never fails for them)."""
    if not config.ann_lists:
        return None
    from ...errors import CorruptFileError
    from .lists_build import build_lists

    try:
        try:
            return build_lists(held, metric=config.distance, dim=dim, covered=covered,
                               target=config.recall_target, scratch_dir=scratch_dir,
                               done=done, kept=kept)
        except CorruptFileError:
            if kept is None:
                raise
            return build_lists(held, metric=config.distance, dim=dim, covered=covered,
                               target=config.recall_target, scratch_dir=scratch_dir,
                               done=done)  # a kept list is damaged: all built anew
    except Exception as exc:
        warnings.warn(f"the vector graph's cluster lists could not be built ({exc!r}); "
                      "vector queries use the HNSW graph instead",
                      RuntimeWarning, stacklevel=2)
        return None


def graph_refs(graph: PreparedGraph, write: Append) -> list[SegmentRef]:
    """Write ``graph`` (and its cluster lists) into a commit; their TOC entries."""
    refs = [_written(write, "ann", graph.blob.parts, graph.blob.length, graph.blob.crc,
                     graph.meta)]
    if graph.lists is not None:
        refs.append(lists_ref(graph.lists, write))
    return refs


def lists_ref(lists: ListsBlob, write: Append) -> SegmentRef:
    """Write cluster lists into a commit; their TOC entry."""
    return _written(write, KIND, lists.parts, lists.length, lists.crc, lists.meta)


def _written(write: Append, kind: str, parts: list[Any], length: int, crc: int,
             meta: dict[str, Any]) -> SegmentRef:
    off, end = write(parts[0])
    end += off
    for part in parts[1:]:  # back to back: the headers keep alignment
        at, size = write(part)
        if at != end:
            raise AssertionError(f"{kind} parts must be written back to back")
        end += size
    return SegmentRef(kind, off, length, crc, meta)


class MappedPages:
    """The file spans of vector blocks read through the snapshot's map: ``release(matrix)``
    drops a block's pages from this process's resident memory once a pass is done with
    them (a graph build reads every vector twice; holding them all would add their size,
    512 MB at 1M x 128, to its peak)."""

    def __init__(self, view: Any) -> None:
        self._view = view
        self._spans: dict[int, tuple[int, int]] = {}
        self._loaded: list[tuple[int, int]] = []

    def add(self, matrix: Any, span: tuple[int, int] | None) -> None:
        if span is not None and hasattr(self._view, "release"):
            self._spans[id(matrix)] = span

    def loaded(self, span: tuple[int, int]) -> None:
        """A span the library copies whole (the graph being extended): released by
        ``release_loaded`` once copied."""
        if hasattr(self._view, "release"):
            self._loaded.append(span)

    def release_loaded(self) -> None:
        while self._loaded:
            self._view.release(*self._loaded.pop())

    def release(self, matrix: Any) -> None:
        self.release_loaded()
        span = self._spans.get(id(matrix))
        if span is not None:
            self._view.release(*span)


def _calibrate(config: IndexConfig, index: Any, blocks: list[tuple[Any, Any]], queries: Any,
               labels: Any, dtype: str, done: Any = None) -> Calibration | None:
    """The search width the new graph needs for the recall target (calibrate.py); None,
    with a warning, if measuring fails: the commit never does for it, and the graph is
    searched with the default width."""
    from .calibrate import calibrate

    try:
        return calibrate(index, blocks, queries, labels, metric=config.distance,
                         dtype=dtype, target=config.recall_target, done=done)
    except Exception as exc:  # a measurement never costs the commit
        warnings.warn(f"the vector graph's search width could not be calibrated "
                      f"({exc!r}); it is searched with the default width",
                      RuntimeWarning, stacklevel=2)
        return None


def calibrated_meta(calibration: Calibration | None, old: SegmentRef | None) -> dict[str, Any]:
    """The TOC fields of the graph's width: measured now, else kept from the graph it
    extends (too few new vectors to measure with), else none (the default width)."""
    if calibration is not None:
        return calibration.meta()
    keep = ("ef_search", "recall", "recall_sample")
    return {k: old.meta[k] for k in keep if k in old.meta} if old is not None else {}


def _dim(versions: list[Version]) -> int:
    for v in versions:
        if v.embedding:
            return len(v.embedding) // 4
    return 0
